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
use std::collections::BTreeMap;

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{Handlebars, Path};
use serde_json::Value;

use crate::address;
use crate::compose::mime::{
    clean, first_name, Envelope, Prepared, Recipient, Rendered, BODY_HTML, BODY_TXT, FOOTNOTES,
    LAYOUT_HTML, LAYOUT_TXT, PREHEADER, SUBJECT,
};
use crate::compose::plaintext::{tidy_text, RULE_MARK};
use crate::compose::system;
use crate::daemon::lists::List;

/// Where a marker starts and ends: private-use characters. A campaign
/// whose own text holds one is rendered per recipient.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

// The slots; an attribute's is `ATTRIBUTE + its index in list.attributes`.
const NAME: usize = 0;
const FIRST_NAME: usize = 1;
const EMAIL: usize = 2;
const UNSUBSCRIBE_URL: usize = 3;
const UNSUBSCRIBE_MAILTO: usize = 4;
const REPLY_TO: usize = 5;
const ARCHIVE_URL: usize = 6;
const SUBJECT_SLOT: usize = 7;
const PREHEADER_SLOT: usize = 8;
const ATTRIBUTE: usize = 9;

/// The fields besides the declared attributes whose emptiness a template
/// may test; the tested ones make a campaign's `varied` slots.
const VARIED: [(&str, usize); 4] = [
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
const RECIPIENT_FIELDS: &[&str] = &[
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
const DERIVED_FIELDS: &[&str] = &["subject", "preheader", "body", "footnotes"];

fn marker(slot: usize) -> String {
    format!("{OPEN}{slot}&{CLOSE}")
}

/// A piece of a compiled part: text as it is, or a slot with how many
/// times its value is HTML-escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
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
struct Variant {
    subject: Vec<Piece>,
    preheader: Vec<Piece>,
    text: Vec<Piece>,
    html: Vec<Piece>,
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
        match compile(&prepared, list) {
            Ok((variants, varied)) => CompiledOr::Compiled(Box::new(Compiled {
                prepared,
                variants,
                varied,
                public: list.public,
                attributes: list.attributes.clone(),
            })),
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
        let rendered = self.fill(r);
        self.prepared.assemble(list, r, env, dkim, rendered)
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
fn values<'a>(public: bool, attributes: &[String], r: &Recipient<'a>) -> Vec<Cow<'a, str>> {
    let name = clean(r.name);
    let first = first_name(&name);
    let mut values: Vec<Cow<'a, str>> = Vec::with_capacity(ATTRIBUTE + attributes.len());
    values.push(Cow::Owned(name));
    values.push(Cow::Owned(first));
    values.push(Cow::Owned(clean(r.email)));
    values.push(Cow::Borrowed(r.unsubscribe_url));
    values.push(Cow::Borrowed(r.unsubscribe_mailto));
    values.push(Cow::Borrowed(r.reply_to));
    values.push(Cow::Borrowed(if public { r.archive_url } else { "" }));
    values.push(Cow::Borrowed(""));
    values.push(Cow::Borrowed(""));
    for key in attributes {
        values.push(match r.attributes.get(key) {
            Some(v) => Cow::Owned(clean(v)),
            None => Cow::Borrowed(""),
        });
    }
    values
}

/// The subject, the text and the HTML of one copy of variant `v`.
fn texts(v: &Variant, values: &mut Vec<Cow<'_, str>>) -> Rendered {
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
fn variant_index(varied: &[usize], values: &[Cow<'_, str>]) -> usize {
    varied
        .iter()
        .enumerate()
        .filter(|(_, slot)| values[**slot].is_empty())
        .fold(0, |index, (i, _)| index | (1 << i))
}

/// `pieces` with the slots filled, in one allocation of the right size.
fn fill(pieces: &[Piece], values: &[Cow<'_, str>]) -> String {
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

/// Splits a text rendered with markers into pieces; `None` if a marker is
/// not whole (the campaign's own text holds a marker character).
fn pieces(text: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        if at > 0 {
            out.push(Piece::Text(rest[..at].to_string()));
        }
        let mut after = &rest[at + OPEN.len_utf8()..];
        let space = after.starts_with('s');
        if space {
            after = &after[1..];
        }
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let slot: usize = after[..digits].parse().ok()?;
        let mut tail = after[digits..].strip_prefix('&')?;
        let mut escapes = 0u8;
        while let Some(t) = tail.strip_prefix("amp;") {
            escapes += 1;
            tail = t;
        }
        rest = tail.strip_prefix(CLOSE)?;
        out.push(if space {
            Piece::Space(slot)
        } else {
            Piece::Slot { slot, escapes }
        });
    }
    if rest.contains(CLOSE) {
        return None;
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Some(out)
}

fn has_slot(pieces: &[Piece]) -> bool {
    pieces.iter().any(|p| !matches!(p, Piece::Text(_)))
}

/// Text outside the slots, whitespace aside: then the whole is never
/// empty, whatever fills the slots.
fn surely_not_empty(pieces: &[Piece]) -> bool {
    pieces
        .iter()
        .any(|p| matches!(p, Piece::Text(t) if !t.trim().is_empty()))
}

/// The fields of a path as a template wrote it (`name`, `this.name`,
/// `../attributes.x`, `@root.email`, `[name]`), the first segment; "" for
/// the whole context (`this`, `.`, `@root`).
fn first_segment(raw: &str) -> String {
    let path = without_context(raw);
    match path.as_str() {
        "@root" | "this" | "." | "" => String::new(),
        _ => path
            .split(['.', '/'])
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// A path without its brackets and its leading `this.`, `../`, `@root.`.
fn without_context(raw: &str) -> String {
    let cleaned = raw.replace(['[', ']'], "");
    let mut p = cleaned.as_str();
    loop {
        let before = p;
        for prefix in ["@root.", "@root/", "this.", "this/", "../", "./"] {
            p = p.strip_prefix(prefix).unwrap_or(p);
        }
        if p == before {
            break;
        }
    }
    p.to_string()
}

/// Does this parameter read a recipient's value? Returns the field.
fn reads(param: &Parameter, fields: &[&str]) -> Option<String> {
    match param {
        Parameter::Path(Path::Relative((_, raw))) => {
            let field = first_segment(raw);
            (field.is_empty() || fields.contains(&field.as_str())).then_some(field)
        }
        Parameter::Subexpression(sub) => match sub.as_element() {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                std::iter::once(&h.name)
                    .chain(&h.params)
                    .chain(h.hash.values())
                    .find_map(|p| reads(p, fields))
            }
            _ => Some(String::new()),
        },
        Parameter::Path(Path::Local(_)) | Parameter::Name(_) | Parameter::Literal(_) => None,
        _ => Some(String::new()),
    }
}

fn show(param: &Parameter) -> String {
    match param {
        Parameter::Name(n) => n.clone(),
        Parameter::Path(Path::Relative((_, raw))) | Parameter::Path(Path::Local((_, _, raw))) => {
            raw.clone()
        }
        Parameter::Literal(v) => v.to_string(),
        Parameter::Subexpression(sub) => {
            let params: Vec<String> = sub.params().into_iter().flatten().map(show).collect();
            format!("({} {})", sub.name(), params.join(" "))
        }
        _ => "…".into(),
    }
}

/// The construct as the author wrote it, near enough: `{{#if x.y}}`.
fn construct(block: bool, name: &Parameter, params: &[Parameter]) -> String {
    let mut words = vec![show(name)];
    words.extend(params.iter().map(show));
    let hash = if block { "#" } else { "" };
    format!("`{{{{{hash}{}}}}}`", words.join(" "))
}

/// What the syntax of the templates allows: the slots of the fields they
/// test, in the order found, and the derived fields (`subject`, `body`,
/// …) that a layout tests, with where.
#[derive(Default)]
struct Syntax {
    varied: Vec<usize>,
    derived: Vec<(String, Fallback)>,
}

/// Walks one template; `Err` names the first construct that decides by a
/// recipient's value.
fn scan(
    t: &Template,
    name: &str,
    origin: &(String, bool),
    list: &List,
    syntax: &mut Syntax,
) -> Result<(), Fallback> {
    for (i, element) in t.elements.iter().enumerate() {
        let line = t.mapping.get(i).map(|m| m.0).filter(|_| origin.1);
        let found = |why: Why| Fallback {
            file: origin.0.clone(),
            line,
            why,
        };
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h)
            | TemplateElement::HtmlExpression(h)
            | TemplateElement::HelperBlock(h) => {
                let params: Vec<&Parameter> = h.params.iter().chain(h.hash.values()).collect();
                let helper = show(&h.name);
                let condition = h.block
                    && matches!(helper.as_str(), "if" | "unless")
                    && h.params.len() == 1
                    && h.hash.is_empty();
                let name_reads = matches!(h.name, Parameter::Subexpression(_))
                    .then(|| reads(&h.name, RECIPIENT_FIELDS))
                    .flatten();
                if let Some(field) = params
                    .iter()
                    .find_map(|p| reads(p, RECIPIENT_FIELDS))
                    .or(name_reads)
                {
                    let tested = match condition {
                        true => tested(&h.params[0], field == "attributes" && h.chain, list),
                        false => None,
                    };
                    let Some(slot) = tested else {
                        return Err(found(Why::Decides(construct(h.block, &h.name, &h.params))));
                    };
                    if !syntax.varied.contains(&slot) {
                        syntax.varied.push(slot);
                        if syntax.varied.len() > MAX_TESTED {
                            let fields = syntax.varied.iter().map(|s| slot_name(*s, list));
                            return Err(found(Why::TooManyTested(fields.collect())));
                        }
                    }
                }
                if name.starts_with("layout") {
                    if let Some(field) = params.iter().find_map(|p| reads(p, DERIVED_FIELDS)) {
                        let what = found(Why::Decides(construct(h.block, &h.name, &h.params)));
                        if !condition || field.is_empty() {
                            // `{{#each this}}`, `{{len body}}`: the whole
                            // or a derived field's text decides.
                            syntax.derived.push((String::new(), what));
                        } else {
                            syntax.derived.push((field, what));
                        }
                    }
                }
                for inner in [&h.template, &h.inverse].into_iter().flatten() {
                    scan(inner, name, origin, list, syntax)?;
                }
            }
            _ => return Err(found(Why::Partial)),
        }
    }
    Ok(())
}

/// The slot of the field a condition's one parameter tests, when it is a
/// plain path to a `VARIED` field or a declared attribute
/// (`attributes.region`); `None` otherwise (`attributes.x` not declared,
/// `attributes` itself, a subexpression, an attribute in an `else if`).
fn tested(param: &Parameter, chained: bool, list: &List) -> Option<usize> {
    let Parameter::Path(Path::Relative((_, raw))) = param else {
        return None;
    };
    let field = first_segment(raw);
    if let Some((_, slot)) = VARIED.iter().find(|(f, _)| *f == field) {
        return Some(*slot);
    }
    if chained {
        return None;
    }
    let path = without_context(raw);
    let key = path
        .strip_prefix("attributes.")
        .or_else(|| path.strip_prefix("attributes/"))?;
    if key.contains(['.', '/']) {
        return None;
    }
    let i = list.attributes.iter().position(|a| a == key)?;
    Some(ATTRIBUTE + i)
}

/// A tested field as a template names it.
fn slot_name(slot: usize, list: &List) -> String {
    match VARIED.iter().find(|(_, s)| *s == slot) {
        Some((field, _)) => field.to_string(),
        None => format!("attributes.{}", list.attributes[slot - ATTRIBUTE]),
    }
}

/// The templates in the order `Prepared::render` uses them.
const TEMPLATES: [(&str, bool); 7] = [
    (SUBJECT, false),
    (PREHEADER, false),
    (BODY_HTML, true),
    (BODY_TXT, false),
    (FOOTNOTES, false),
    (LAYOUT_HTML, true),
    (LAYOUT_TXT, false),
];

/// The registries the markers are rendered with: `Prepared`'s, with each
/// `{{#if x}} {{/if}}{{x}}` that `drop_space_before_empty` wrote (x a
/// recipient's field, outside `#each` and `#with`, which change what `x`
/// names) as `{{utskick_space.sN}}{{x}}`: the space is a slot of its own.
struct Registries {
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
}

fn spaced(p: &Prepared, list: &List) -> Registries {
    let mut r = Registries {
        html: p.html.clone(),
        plain: p.plain.clone(),
    };
    for (name, html) in TEMPLATES {
        let registry = if html { &mut r.html } else { &mut r.plain };
        if let Some(t) = registry.get_template(name) {
            let rewritten = rewrite(t, list);
            registry.register_template(name, rewritten);
        }
    }
    r
}

fn rewrite(t: &Template, list: &List) -> Template {
    let mut out = t.clone();
    for i in 0..out.elements.len() {
        let space = match (&out.elements[i], out.elements.get(i + 1)) {
            (
                TemplateElement::HelperBlock(h),
                Some(TemplateElement::Expression(x) | TemplateElement::HtmlExpression(x)),
            ) => space_before(h, x, list),
            _ => None,
        };
        if let Some(slot) = space {
            let mut marker = Template::compile(&format!("{{{{utskick_space.s{slot}}}}}"))
                .expect("a plain expression");
            out.elements[i] = marker.elements.remove(0);
        } else if let TemplateElement::HelperBlock(h) = &mut out.elements[i] {
            if !matches!(show(&h.name).as_str(), "each" | "with") {
                for inner in [&mut h.template, &mut h.inverse].into_iter().flatten() {
                    *inner = rewrite(inner, list);
                }
            }
        }
    }
    out
}

/// The slot of `x` when `h` is `{{#if x}} {{/if}}` and `x` a recipient's
/// field as a plain path.
fn space_before(h: &HelperTemplate, x: &HelperTemplate, list: &List) -> Option<usize> {
    let plain = h.block
        && show(&h.name) == "if"
        && h.params.len() == 1
        && h.hash.is_empty()
        && h.inverse.is_none()
        && x.params.is_empty()
        && x.hash.is_empty()
        && h.template.as_ref()?.elements == [TemplateElement::RawString(" ".into())];
    let field = show(&h.params[0]);
    if !plain || field != show(&x.name) {
        return None;
    }
    match field.as_str() {
        "name" => Some(NAME),
        "first_name" => Some(FIRST_NAME),
        "email" => Some(EMAIL),
        "unsubscribe_url" => Some(UNSUBSCRIBE_URL),
        "unsubscribe_mailto" => Some(UNSUBSCRIBE_MAILTO),
        "reply_to" => Some(REPLY_TO),
        "archive_url" => Some(ARCHIVE_URL),
        _ => {
            let key = field.strip_prefix("attributes.")?;
            let i = list.attributes.iter().position(|a| a == key)?;
            Some(ATTRIBUTE + i)
        }
    }
}

fn compile(p: &Prepared, list: &List) -> Result<(Vec<Variant>, Vec<usize>), Fallback> {
    let registries = spaced(p, list);
    let mut syntax = Syntax::default();
    for (name, html) in TEMPLATES {
        let registry = if html {
            &registries.html
        } else {
            &registries.plain
        };
        let origin = p.origins.get(name).cloned().unwrap_or_default();
        let Some(t) = registry.get_template(name) else {
            continue;
        };
        scan(t, name, &origin, list, &mut syntax)?;
    }
    let mut variants = Vec::with_capacity(1 << syntax.varied.len());
    for index in 0..1 << syntax.varied.len() {
        let v = variant(p, &registries, list, index, &syntax)?;
        check(p, list, index, &v, &syntax.varied)?;
        variants.push(v);
    }
    Ok((variants, syntax.varied))
}

/// Renders every template with markers for the variant `index`.
fn variant(
    p: &Prepared,
    registries: &Registries,
    list: &List,
    index: usize,
    syntax: &Syntax,
) -> Result<Variant, Fallback> {
    let empty = |slot: usize| is_empty(&syntax.varied, index, slot);
    let value = |slot: usize| {
        if empty(slot) {
            String::new()
        } else {
            marker(slot)
        }
    };
    let attributes: BTreeMap<String, String> = list
        .attributes
        .iter()
        .enumerate()
        .map(|(i, a)| (a.clone(), value(ATTRIBUTE + i)))
        .collect();
    let (name, email, url, mailto, reply, archive) = (
        value(NAME),
        value(EMAIL),
        marker(UNSUBSCRIBE_URL),
        marker(UNSUBSCRIBE_MAILTO),
        marker(REPLY_TO),
        value(ARCHIVE_URL),
    );
    let r = Recipient {
        email: &email,
        name: &name,
        attributes: &attributes,
        unsubscribe_url: &url,
        unsubscribe_mailto: &mailto,
        reply_to: &reply,
        archive_url: &archive,
    };
    let mut data = p.fields(list, &r);
    data["first_name"] = Value::String(value(FIRST_NAME));
    let spaces: serde_json::Map<String, Value> = (0..ATTRIBUTE + list.attributes.len())
        .map(|slot| {
            (
                format!("s{slot}"),
                Value::String(format!("{OPEN}s{slot}&{CLOSE}")),
            )
        })
        .collect();
    data["utskick_space"] = Value::Object(spaces);
    let failed = |name: &str, e: &dyn std::fmt::Display| Fallback {
        file: p.origins.get(name).cloned().unwrap_or_default().0,
        line: None,
        why: Why::Unexpected(format!("rendering with slots failed: {e}")),
    };
    let render = |html: bool, name: &'static str, data: &Value| {
        let registry = if html {
            &registries.html
        } else {
            &registries.plain
        };
        registry.render(name, data).map_err(|e| failed(name, &e))
    };
    let parse = |name: &str, text: &str| {
        pieces(text).ok_or_else(|| Fallback {
            why: Why::MarkerCharacter,
            ..failed(name, &"")
        })
    };
    let subject = parse(SUBJECT, &render(false, SUBJECT, &data)?)?;
    let preheader = parse(PREHEADER, &render(false, PREHEADER, &data)?)?;
    let body_html = render(true, BODY_HTML, &data)?;
    let raw_txt = render(false, BODY_TXT, &data)?;
    tidy_is_exact(&raw_txt).map_err(|why| Fallback {
        file: p.origins.get(BODY_TXT).cloned().unwrap_or_default().0,
        line: None,
        why,
    })?;
    let body_txt = tidy_text(&raw_txt);
    let footnotes = render(false, FOOTNOTES, &data)?;
    // What the layouts see: a field derived from slots is a slot itself
    // (the subject and preheader, made per copy), or text with markers.
    let as_seen = |pieces: &[Piece], slot: usize, text: String| {
        if has_slot(pieces) {
            marker(slot)
        } else {
            text
        }
    };
    let subject_text = address::header_safe(&render(false, SUBJECT, &data)?);
    let preheader_text = address::header_safe(&render(false, PREHEADER, &data)?);
    let derived = [
        ("subject", subject.clone()),
        ("preheader", preheader.clone()),
        ("footnotes", parse(FOOTNOTES, &footnotes)?),
        ("body", parse(BODY_TXT, &body_txt)?),
        ("body", parse(BODY_HTML, &body_html)?),
    ];
    for (field, what) in &syntax.derived {
        let decides = field.is_empty()
            || derived
                .iter()
                .any(|(f, pieces)| f == field && has_slot(pieces) && !surely_not_empty(pieces));
        if decides {
            return Err(what.clone());
        }
    }
    let map = data.as_object_mut().expect("an object");
    map.insert(
        "subject".into(),
        Value::String(as_seen(&subject, SUBJECT_SLOT, subject_text)),
    );
    map.insert(
        "preheader".into(),
        Value::String(as_seen(&preheader, PREHEADER_SLOT, preheader_text)),
    );
    map.insert("footnotes".into(), Value::String(footnotes));
    map.insert("body".into(), Value::String(body_html));
    let html = parse(LAYOUT_HTML, &render(true, LAYOUT_HTML, &data)?)?;
    data["body"] = Value::String(body_txt);
    let text = parse(LAYOUT_TXT, &render(false, LAYOUT_TXT, &data)?)?;
    Ok(Variant {
        subject,
        preheader,
        text,
        html,
    })
}

/// `tidy_text` reads the text body's lines: a heading's rule is as wide as
/// the line above it, and empty lines fold. Both are the same for every
/// copy only if no rule sits under (or on) a line with a slot, and no line
/// is made of slots alone (it may fill empty).
fn tidy_is_exact(text: &str) -> Result<(), Why> {
    let mut last_has_slot = false;
    let mut last_empty = false;
    for line in text.split('\n') {
        let slot = line.contains(OPEN);
        if line.contains(RULE_MARK) {
            if slot || last_has_slot {
                return Err(Why::HeadingWithField);
            }
            last_has_slot = false;
            last_empty = false;
            continue;
        }
        let outside: String = pieces(line)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t),
                _ => None,
            })
            .collect();
        if slot && outside.is_empty() {
            return Err(Why::LineOfFields);
        }
        if line.is_empty() && last_empty {
            continue;
        }
        last_has_slot = slot;
        last_empty = line.is_empty();
    }
    Ok(())
}

/// Whether variant `index` is the one where `slot` is empty.
fn is_empty(varied: &[usize], index: usize, slot: usize) -> bool {
    varied
        .iter()
        .position(|s| *s == slot)
        .is_some_and(|bit| index & (1 << bit) != 0)
}

/// Renders a sample recipient of variant `index` both ways; a difference
/// (which would be a flaw here) keeps the campaign per recipient.
fn check(
    p: &Prepared,
    list: &List,
    index: usize,
    v: &Variant,
    varied: &[usize],
) -> Result<(), Fallback> {
    let empty = |slot: usize| is_empty(varied, index, slot);
    let name = match (empty(NAME), empty(FIRST_NAME)) {
        (true, _) => "",
        (false, true) => " ",
        (false, false) => "Ann-Sofi \"Sofi\" Åberg & <Co>",
    };
    // An empty attribute is missing, or "" every other one: the same to
    // `Prepared::fields` and to `values`.
    let attributes: BTreeMap<String, String> = list
        .attributes
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match empty(ATTRIBUTE + i) {
            true => (i % 2 == 1).then(|| (a.clone(), String::new())),
            false => Some((a.clone(), format!("{a} <'&'> å"))),
        })
        .collect();
    let r = Recipient {
        email: if empty(EMAIL) {
            ""
        } else {
            "a.o'b=c@example.se"
        },
        name,
        attributes: &attributes,
        unsubscribe_url: "https://example.se/unsubscribe/t?a=1&b=2",
        unsubscribe_mailto: "lista-unsubscribe+t@example.se",
        reply_to: "lista-reply+t@example.se",
        archive_url: if empty(ARCHIVE_URL) {
            ""
        } else {
            "https://example.se/archive/lista/1?x=<1>"
        },
    };
    let mut values = values(list.public, &list.attributes, &r);
    if variant_index(varied, &values) != index {
        // No recipient has this combination (a first name without a
        // name, an archive link on a list that is not public).
        return Ok(());
    }
    let filled = texts(v, &mut values);
    let wrong = |what: &str| Fallback {
        file: p.origins.get(LAYOUT_HTML).cloned().unwrap_or_default().0,
        line: None,
        why: Why::Unexpected(format!("{what} that slots do not reproduce")),
    };
    match p.render(list, &r) {
        Ok(want)
            if [&want.subject, &want.text, &want.html]
                .iter()
                .any(|t| t.contains([OPEN, CLOSE])) =>
        {
            Err(Fallback {
                file: p.origins.get(SUBJECT).cloned().unwrap_or_default().0,
                line: None,
                why: Why::MarkerCharacter,
            })
        }
        Ok(want) if want.subject != filled.subject => Err(wrong("a subject")),
        Ok(want) if want.text != filled.text => Err(wrong("a text part")),
        Ok(want) if want.html != filled.html => Err(wrong("an HTML part")),
        Ok(_) => Ok(()),
        Err((name, e)) => Err(Fallback {
            file: p.origins.get(name).cloned().unwrap_or_default().0,
            line: None,
            why: Why::Unexpected(format!("a sample recipient does not render: {e}")),
        }),
    }
}
