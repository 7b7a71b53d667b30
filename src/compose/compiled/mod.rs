//! A compiled campaign: the newsletter rendered once, when sending starts,
//! into the text of every part with slots for what differs per recipient
//! (name, first name, address, attributes, the links with the token, the
//! archive link, and the subject and preheader made from them). A copy is
//! those pieces with the slots filled in one buffer, then the assembly of
//! `Prepared::message` (`Prepared::assemble`: headers, MIME, transfer
//! encoding, DKIM), so both ways give the same bytes.
//!
//! How: every template is rendered by Handlebars itself with a marker in
//! place of each recipient value (`\u{E000}ID&\u{E001}`); the `&` in it
//! comes out as `&amp;` where Handlebars escaped the value once and
//! `&amp;amp;` where twice (the subject inside the HTML `<title>`), so a
//! slot knows how often to escape what fills it. That is exact only where
//! a value is copied into the output as it is. Where the templates let a
//! recipient's value decide otherwise (`{{#each attributes}}`, a helper
//! applied to a field, `{{#if attributes.x}}` for an `x` the list does
//! not declare) the campaign is rendered per recipient
//! (`CompiledOr::PerRecipient`, with the construct that decided it); the
//! templates' syntax tree says so, not a guess.
//! `markdown::drop_space_before_empty` writes ` {{x}}!` as
//! `{{#if x}} {{/if}}{{x}}!`: that space is a slot of its own, shown when
//! x is not empty. A plain `{{#if x}}`/`{{#unless x}}` on `name`,
//! `first_name`, `email`, `archive_url` (fields often empty; the shipped
//! announcement greets by first name) or one of the list's declared
//! attributes (`{{#if attributes.region}} i {{attributes.region}}{{/if}}`)
//! compiles as variants, one per combination of the tested fields being
//! empty (Handlebars' truthiness: a missing attribute is an empty string),
//! at most `MAX_TESTED` fields, so at most 64 variants.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

mod build;
mod copy;
mod encode;
mod headers;
mod syntax;

use crate::address;
use crate::compose::mime::{
    clean, first_name, sample, sample_attributes, Envelope, Prepared, Recipient, Rendered,
};
use crate::compose::system;
use crate::daemon::lists::List;

/// Where a marker starts and ends: private-use characters. A campaign
/// whose own text holds one is rendered per recipient.
pub(super) const OPEN: char = '\u{E000}';
pub(super) const CLOSE: char = '\u{E001}';

// The slots; an attribute's is `ATTRIBUTE + its index in list.attributes`.
pub(super) const NAME: usize = 0;
pub(super) const FIRST_NAME: usize = 1;
pub(super) const EMAIL: usize = 2;
pub(super) const UNSUBSCRIBE_URL: usize = 3;
pub(super) const UNSUBSCRIBE_MAILTO: usize = 4;
pub(super) const REPLY_TO: usize = 5;
pub(super) const ARCHIVE_URL: usize = 6;
pub(super) const SUBJECT_SLOT: usize = 7;
pub(super) const PREHEADER_SLOT: usize = 8;
pub(super) const ATTRIBUTE: usize = 9;

/// The fields besides the declared attributes whose emptiness a template
/// may test; the tested ones make a campaign's `varied` slots.
pub(super) const VARIED: [(&str, usize); 4] = [
    ("name", NAME),
    ("first_name", FIRST_NAME),
    ("archive_url", ARCHIVE_URL),
    ("email", EMAIL),
];

/// How many fields the templates may test, each doubling the variants
/// compiled (and compiling runs every sending round): 6 is 64 variants.
pub const MAX_TESTED: usize = 6;

/// What the templates see of a recipient (`Prepared::fields`): a
/// condition or a helper on any of these decides per recipient.
pub(super) const RECIPIENT_FIELDS: &[&str] = &[
    "name",
    "first_name",
    "email",
    "attributes",
    "unsubscribe_url",
    "unsubscribe_mailto",
    "reply_to",
    "archive_url",
];

/// What the layouts see that was rendered from a recipient's values.
pub(super) const DERIVED_FIELDS: &[&str] = &["subject", "preheader", "body", "footnotes"];

pub(super) fn marker(slot: usize) -> String {
    format!("{OPEN}{slot}&{CLOSE}")
}

/// A piece of a compiled part: text as it is, or a slot with how many
/// times its value is HTML-escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    Text(String),
    Slot {
        slot: usize,
        escapes: u8,
    },
    /// A space when the slot is not empty: `{{#if x}} {{/if}}` as
    /// `drop_space_before_empty` writes it before `{{x}}`.
    Space(usize),
}

/// Why a campaign is rendered per recipient: the template (its file),
/// the line where the file's lines are the template's, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub file: String,
    pub line: Option<usize>,
    pub why: Why,
}

/// What in a template the slots cannot express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A construct that decides by a recipient's value, as written:
    /// `` `{{#if attributes.region}}` ``, `` `{{len name}}` ``.
    Decides(String),
    /// A partial or a decorator (`{{> x}}`, `{{* x}}`).
    Partial,
    /// A heading in the text part on or under a line with a recipient's
    /// field: its rule is as wide as that line.
    HeadingWithField,
    /// A line of the text part made of recipient fields alone: it folds
    /// away when they are empty.
    LineOfFields,
    /// The campaign's own text holds U+E000 or U+E001, the markers.
    MarkerCharacter,
    /// `{{#if}}`/`{{#unless}}` test more than `MAX_TESTED` fields: the
    /// fields, in the order found, the last one over the limit.
    TooManyTested(Vec<String>),
    /// Not the author's doing: rendering with slots failed, or a sample
    /// copy came out differently; said in English, for a bug report.
    Unexpected(String),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Decides(construct) => write!(f, "{construct}"),
            Why::Partial => write!(f, "a partial or decorator"),
            Why::HeadingWithField => {
                write!(f, "a heading with a recipient's field in the text part")
            }
            Why::LineOfFields => {
                write!(f, "a line of the text part made of recipient fields alone")
            }
            Why::MarkerCharacter => write!(f, "a private-use character U+E000 or U+E001"),
            Why::TooManyTested(fields) => write!(
                f,
                "conditions on more than {MAX_TESTED} fields ({})",
                fields.join(", ")
            ),
            Why::Unexpected(what) => write!(f, "{what}"),
        }
    }
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.why),
            None => write!(f, "{}: {}", self.file, self.why),
        }
    }
}

/// A campaign as the sender makes its copies: compiled, or rendered per
/// recipient; one `message` either way.
pub enum CompiledOr {
    Compiled(Box<Compiled>),
    PerRecipient {
        prepared: Box<Prepared>,
        why: Fallback,
    },
}

impl std::fmt::Debug for CompiledOr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompiledOr::Compiled(c) => write!(f, "Compiled({} variants)", c.variants.len()),
            CompiledOr::PerRecipient { why, .. } => write!(f, "PerRecipient({why})"),
        }
    }
}

impl CompiledOr {
    /// The same arguments and the same bytes as `Prepared::message`.
    pub fn message(
        &self,
        list: &List,
        r: &Recipient<'_>,
        env: &Envelope<'_>,
        dkim: Option<&system::DkimKeys>,
    ) -> anyhow::Result<Vec<u8>> {
        match self {
            CompiledOr::Compiled(c) => c.message(list, r, env, dkim),
            CompiledOr::PerRecipient { prepared, .. } => prepared.message(list, r, env, dkim),
        }
    }

    /// `message` appended to `out`, a buffer the caller may keep from
    /// copy to copy.
    pub fn write_message(
        &self,
        list: &List,
        r: &Recipient<'_>,
        env: &Envelope<'_>,
        dkim: Option<&system::DkimKeys>,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        match self {
            CompiledOr::Compiled(c) => c.write_message(list, r, env, dkim, out),
            CompiledOr::PerRecipient { prepared, .. } => {
                out.extend(prepared.message(list, r, env, dkim)?);
                Ok(())
            }
        }
    }

    /// Why the copies are rendered per recipient; `None` when compiled.
    pub fn fallback(&self) -> Option<&Fallback> {
        match self {
            CompiledOr::Compiled(_) => None,
            CompiledOr::PerRecipient { why, .. } => Some(why),
        }
    }

    /// The prepared campaign underneath (the archive, the HTML preview).
    pub fn prepared(&self) -> &Prepared {
        match self {
            CompiledOr::Compiled(c) => &c.prepared,
            CompiledOr::PerRecipient { prepared, .. } => prepared,
        }
    }
}

/// One combination of the tested fields being empty, compiled.
#[derive(Debug)]
pub(super) struct Variant {
    pub(super) subject: Vec<Piece>,
    pub(super) preheader: Vec<Piece>,
    pub(super) text: Vec<Piece>,
    pub(super) html: Vec<Piece>,
}

/// A campaign compiled for one list: see the module's comment.
pub struct Compiled {
    prepared: Prepared,
    /// Indexed by the bits of the empty tested fields (`variant_index`).
    variants: Vec<Variant>,
    /// The slots of the fields the templates test; bit i of a variant's
    /// index stands for `varied[i]`.
    varied: Vec<usize>,
    public: bool,
    attributes: Vec<String>,
    /// Per variant, its text and HTML part pre-encoded (`encode`).
    encoded: Vec<[encode::Part; 2]>,
    /// The MIME frame and the fixed headers (`headers`).
    frame: headers::Frame,
    kept: headers::Kept,
    /// The last copy's length, to size the next one's buffer.
    last_len: AtomicUsize,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("variants", &self.variants.len())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// This campaign compiled for `list`, or kept for rendering per
    /// recipient, with the reason.
    pub fn compile(self, list: &List) -> CompiledOr {
        CompiledOr::new(self, list)
    }
}

impl CompiledOr {
    /// Compiles `prepared` for `list`: reads the templates' syntax, renders
    /// each variant with markers, and checks each variant against a
    /// rendering of a sample recipient the ordinary way.
    pub fn new(prepared: Prepared, list: &List) -> CompiledOr {
        match build::compile(&prepared, list) {
            Ok((variants, varied)) => {
                let compiled = Compiled {
                    encoded: variants
                        .iter()
                        .map(|v| [encode::Part::new(&v.text), encode::Part::new(&v.html)])
                        .collect(),
                    frame: headers::Frame::new(&prepared.attachments),
                    kept: headers::Kept::default(),
                    last_len: AtomicUsize::new(0),
                    prepared,
                    variants,
                    varied,
                    public: list.public,
                    attributes: list.attributes.clone(),
                };
                match compiled.check_sample(list) {
                    Ok(()) => CompiledOr::Compiled(Box::new(compiled)),
                    Err(why) => CompiledOr::PerRecipient {
                        prepared: Box::new(compiled.prepared),
                        why,
                    },
                }
            }
            Err(why) => CompiledOr::PerRecipient {
                prepared: Box::new(prepared),
                why,
            },
        }
    }
}

impl Compiled {
    /// One recipient's message: the same arguments and the same bytes as
    /// `Prepared::message`.
    pub fn message(
        &self,
        list: &List,
        r: &Recipient<'_>,
        env: &Envelope<'_>,
        dkim: Option<&system::DkimKeys>,
    ) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.last_len.load(Ordering::Relaxed) + 256);
        self.write_message(list, r, env, dkim, &mut out)?;
        self.last_len.store(out.len(), Ordering::Relaxed);
        Ok(out)
    }

    /// `message` appended to `out` (a buffer the caller keeps); the copy
    /// written straight into it unless it is one for the ordinary
    /// assembly: signed with DKIM (lettre signs its own `Message`), or
    /// one `write_copy` declines.
    pub fn write_message(
        &self,
        list: &List,
        r: &Recipient<'_>,
        env: &Envelope<'_>,
        dkim: Option<&system::DkimKeys>,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        if dkim.is_none() && self.write_copy(list, r, env, out).is_some() {
            return Ok(());
        }
        let message = self.prepared.assemble(list, r, env, dkim, self.fill(r))?;
        if out.is_empty() {
            *out = message;
        } else {
            out.extend(message);
        }
        Ok(())
    }

    /// A sample copy both ways, as a last guard of the law that both give
    /// the same bytes: a difference (a flaw here) keeps the campaign per
    /// recipient.
    fn check_sample(&self, list: &List) -> Result<(), Fallback> {
        let attributes = sample_attributes(list, "Åre & <Hede>");
        let r = sample(&attributes, "Ann-Sofi \"Sofi\" Åberg");
        let env = Envelope {
            message_id: "utskick.sample.c1.r1@example.se",
            date: chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00+01:00")
                .expect("a date"),
            domain: "example.se",
        };
        let mut fast = Vec::new();
        let fast = self.write_copy(list, &r, &env, &mut fast).map(|()| fast);
        let slow = self.prepared.assemble(list, &r, &env, None, self.fill(&r));
        match (fast, slow) {
            (Some(fast), Ok(slow)) if fast != slow => Err(Fallback {
                file: String::new(),
                line: None,
                why: Why::Unexpected(
                    "a sample copy that the pre-encoded parts do not reproduce".into(),
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The three texts of one copy.
    fn fill(&self, r: &Recipient<'_>) -> Rendered {
        let mut values = values(self.public, &self.attributes, r);
        let index = variant_index(&self.varied, &values);
        texts(&self.variants[index], &mut values)
    }
}

/// Every slot's value for `r`, as `Prepared::fields` gives it to the
/// templates (the subject and preheader are filled in later).
pub(super) fn values<'a>(
    public: bool,
    attributes: &[String],
    r: &Recipient<'a>,
) -> Vec<Cow<'a, str>> {
    let name = cleaned(r.name);
    let first = match &name {
        Cow::Borrowed(name) => Cow::Borrowed(first_word(name)),
        Cow::Owned(name) => Cow::Owned(first_name(name)),
    };
    let mut values: Vec<Cow<'a, str>> = Vec::with_capacity(ATTRIBUTE + attributes.len());
    values.push(name);
    values.push(first);
    values.push(cleaned(r.email));
    values.push(Cow::Borrowed(r.unsubscribe_url));
    values.push(Cow::Borrowed(r.unsubscribe_mailto));
    values.push(Cow::Borrowed(r.reply_to));
    values.push(Cow::Borrowed(if public { r.archive_url } else { "" }));
    values.push(Cow::Borrowed(""));
    values.push(Cow::Borrowed(""));
    for key in attributes {
        values.push(match r.attributes.get(key) {
            Some(v) => cleaned(v),
            None => Cow::Borrowed(""),
        });
    }
    values
}

/// `clean(value)`, borrowed when it is clean already (most are).
fn cleaned(value: &str) -> Cow<'_, str> {
    if value.chars().any(char::is_control) {
        Cow::Owned(clean(value))
    } else {
        Cow::Borrowed(value)
    }
}

/// `first_name`, borrowed.
fn first_word(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or_default()
}

/// The subject, the text and the HTML of one copy of variant `v`.
pub(super) fn texts(v: &Variant, values: &mut Vec<Cow<'_, str>>) -> Rendered {
    let subject = address::header_safe(&fill(&v.subject, values));
    let preheader = address::header_safe(&fill(&v.preheader, values));
    values[SUBJECT_SLOT] = Cow::Owned(subject);
    values[PREHEADER_SLOT] = Cow::Owned(preheader);
    let text = fill(&v.text, values);
    let html = fill(&v.html, values);
    Rendered {
        subject: std::mem::take(&mut values[SUBJECT_SLOT]).into_owned(),
        text,
        html,
    }
}

/// The variant for these values: bit i set when the slot `varied[i]` is
/// empty (Handlebars' `#if` on a string: false when empty, so `" "` is
/// true; a missing attribute is `""` here and in `Prepared::fields`).
pub(super) fn variant_index(varied: &[usize], values: &[Cow<'_, str>]) -> usize {
    varied
        .iter()
        .enumerate()
        .filter(|(_, slot)| values[**slot].is_empty())
        .fold(0, |index, (i, _)| index | (1 << i))
}

/// `pieces` with the slots filled, in one allocation of the right size.
pub(super) fn fill(pieces: &[Piece], values: &[Cow<'_, str>]) -> String {
    let escaped = |slot: usize, escapes: u8| -> Cow<'_, str> {
        let mut value = Cow::Borrowed(values[slot].as_ref());
        for _ in 0..escapes {
            value = Cow::Owned(handlebars::html_escape(&value));
        }
        value
    };
    let mut len = 0;
    for p in pieces {
        len += match p {
            Piece::Text(t) => t.len(),
            Piece::Slot { slot, escapes: 0 } => values[*slot].len(),
            // An escaped value grows by at most 5 bytes a character
            // (`"` → `&quot;`); most grow by none.
            Piece::Slot { slot, .. } => values[*slot].len() + 16,
            Piece::Space(_) => 1,
        };
    }
    let mut out = String::with_capacity(len);
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Slot { slot, escapes } => out.push_str(&escaped(*slot, *escapes)),
            Piece::Space(slot) => {
                if !values[*slot].is_empty() {
                    out.push(' ');
                }
            }
        }
    }
    out
}
