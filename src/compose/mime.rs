//! A prepared campaign: its templates compiled once, rendered per
//! recipient, and assembled as MIME (multipart/alternative, attachments,
//! List-* headers, DKIM).

use crate::address;
use crate::compose::attachment::{encode_attachment, EncodedAttachment};
use crate::compose::error::AuthoringError;
use crate::compose::markdown::one_line;
use crate::compose::markdown::{convert, drop_space_before_empty, protect};
use crate::compose::newsletter::{attachment_name, size_text};
use crate::compose::plaintext::tidy_text;
use crate::compose::system;
use crate::daemon::lists;
use crate::daemon::lists::List;
use crate::store::{Content, Kind};
use handlebars::{Handlebars, RenderError, RenderErrorReason, TemplateError};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// Per-recipient data.
pub struct Recipient<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub attributes: &'a BTreeMap<String, String>,
    /// https link: base_url/unsubscribe/TOKEN
    pub unsubscribe_url: &'a str,
    /// mailto target: L-unsubscribe+TOKEN@D
    pub unsubscribe_mailto: &'a str,
    /// L-reply+TOKEN@D
    pub reply_to: &'a str,
    /// The campaign's page in the public archive ("View in browser"), or
    /// "" when there is none; a list that is not public never shows it.
    pub archive_url: &'a str,
}

/// Fixed per message (tests pass fixed values; the sender passes real ones).
pub struct Envelope<'a> {
    /// Without <>, e.g. "utskick.lf.c12.r34@lista.example.se".
    pub message_id: &'a str,
    pub date: chrono::DateTime<chrono::FixedOffset>,
    pub domain: &'a str,
}

// Template names inside the two registries.
pub(crate) const SUBJECT: &str = "subject";

pub(crate) const PREHEADER: &str = "preheader";

pub(crate) const BODY_HTML: &str = "body.html";

pub(crate) const BODY_TXT: &str = "body.txt";

pub(crate) const FOOTNOTES: &str = "footnotes.txt";

pub(crate) const LAYOUT_HTML: &str = "layout.html";

pub(crate) const LAYOUT_TXT: &str = "layout.txt";

macro_rules! builtin {
    ($($lang:literal / $name:literal),* $(,)?) => {
        &[$(
            ($lang, $name, include_str!(concat!("../../templates/", $lang, "/", $name, ".hbs"))),
        )*]
    };
}

/// The shipped layouts, compiled in as the fallback.
pub(crate) const BUILTIN: &[(&str, &str, &str)] = builtin![
    "sv" / "newsletter.html",
    "sv" / "newsletter.txt",
    "sv" / "announcement.html",
    "sv" / "announcement.txt",
    "sv" / "announcement.subject",
    "en" / "newsletter.html",
    "en" / "newsletter.txt",
    "en" / "announcement.html",
    "en" / "announcement.txt",
    "en" / "announcement.subject",
];

/// The compiled templates of one campaign for one list; build once per
/// campaign, render per recipient.
pub struct Prepared {
    /// Values HTML-escaped: the body and layout of the HTML part.
    pub(crate) html: Handlebars<'static>,
    /// No escaping: subject, preheader and the text part.
    pub(crate) plain: Handlebars<'static>,
    /// Where each template came from, for error messages: (file, whether
    /// Handlebars' line numbers are the file's).
    pub(crate) origins: BTreeMap<&'static str, (String, bool)>,
    pub(crate) title: String,
    pub(crate) link: Option<String>,
    pub(crate) attachments: Vec<EncodedAttachment>,
    /// For the layouts: name and size of each attachment.
    pub(crate) attachment_list: Value,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("templates", &self.origins)
            .field("title", &self.title)
            .field("attachments", &self.attachments.len())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Compiles the content and the list's layout, and renders it all with
    /// sample data in strict mode, so every authoring error surfaces here.
    pub fn new(
        content: &Content,
        list: &List,
        templates_dir: &Path,
    ) -> Result<Prepared, AuthoringError> {
        let source = content.source.as_str();
        let lang = list.language;
        let mut p = Prepared {
            html: Handlebars::new(),
            plain: Handlebars::new(),
            origins: BTreeMap::new(),
            title: content.title.clone(),
            link: content.link.clone(),
            attachments: content
                .attachments
                .iter()
                .map(|a| encode_attachment(&attachment_name(&a.filename), &a.content_type, &a.data))
                .collect(),
            attachment_list: content
                .attachments
                .iter()
                .map(|a| {
                    let size = size_text(a.data.len(), lang);
                    json!({"filename": attachment_name(&a.filename), "size": size})
                })
                .collect(),
        };
        p.html.set_strict_mode(true);
        p.plain.set_strict_mode(true);
        p.plain.register_escape_fn(handlebars::no_escape);

        let samples = [sample_attributes(list, ""), sample_attributes(list, "x")];
        let recipients = [sample(&samples[0], ""), sample(&samples[1], "Namn")];

        // 1. The Markdown as the author wrote it: balanced blocks, no
        //    triple-stash, then Handlebars syntax and fields, each with the
        //    file's line number.
        let protected = protect(source, &content.markdown)?;
        let mut check = Handlebars::new();
        check.set_strict_mode(true);
        check.register_escape_fn(handlebars::no_escape);
        check
            .register_template_string("markdown", &content.markdown)
            .map_err(|e| template_error(source, true, "", &e))?;
        for r in &recipients {
            check
                .render("markdown", &p.fields(list, r))
                .map_err(|e| render_error(source, true, "", &e, list))?;
        }

        // 2. Subject and preheader.
        let (subject, subject_origin) = if content.kind == Kind::Announcement {
            layout(templates_dir, list, "announcement.subject")?
        } else {
            (content.subject.clone(), (source.to_string(), false))
        };
        p.register(false, SUBJECT, &subject, subject_origin)?;
        p.register(
            false,
            PREHEADER,
            &content.preheader,
            (source.to_string(), false),
        )?;

        // 3. The Markdown, converted once. Fields were kept out of the
        //    converter's way, so a failure here is ours more than the
        //    author's; still say where.
        let (html, text, footnotes) = convert(&protected);
        let origin = || (source.to_string(), false);
        p.register(true, BODY_HTML, &html, origin())?;
        p.register(false, BODY_TXT, &text, origin())?;
        p.register(false, FOOTNOTES, &footnotes, origin())?;

        // 4. The layouts, and a full render of everything.
        let kind = match content.kind {
            // A post is sent as it came (`compose::post`), never through
            // these layouts.
            Kind::Newsletter | Kind::Post => "newsletter",
            Kind::Announcement => "announcement",
        };
        let (source_html, origin_html) = layout(templates_dir, list, &format!("{kind}.html"))?;
        p.register(true, LAYOUT_HTML, &source_html, origin_html)?;
        let (source_txt, origin_txt) = layout(templates_dir, list, &format!("{kind}.txt"))?;
        p.register(false, LAYOUT_TXT, &source_txt, origin_txt)?;
        for r in &recipients {
            p.render(list, r).map_err(|(name, e)| {
                let (file, lines) = p.origins.get(name).cloned().unwrap_or_default();
                let what = if matches!(name, SUBJECT | PREHEADER) {
                    format!("{name}: ")
                } else {
                    String::new()
                };
                render_error(&file, lines, &what, &e, list)
            })?;
        }
        Ok(p)
    }

    pub(crate) fn register(
        &mut self,
        html: bool,
        name: &'static str,
        template: &str,
        origin: (String, bool),
    ) -> Result<(), AuthoringError> {
        let registry = if html {
            &mut self.html
        } else {
            &mut self.plain
        };
        let what = if matches!(name, SUBJECT | PREHEADER) {
            format!("{name}: ")
        } else {
            String::new()
        };
        registry
            .register_template_string(name, drop_space_before_empty(template))
            .map_err(|e| template_error(&origin.0, origin.1, &what, &e))?;
        self.origins.insert(name, origin);
        Ok(())
    }

    /// The values every template sees.
    ///
    /// `first_name` is the name's first word, for a greeting that reads
    /// like a person's ("Hej Karin!", not "Hej Karin Åström!").
    pub(crate) fn fields(&self, list: &List, r: &Recipient<'_>) -> Value {
        let mut attributes = Map::new();
        // Every declared attribute is present, so strict mode cannot fail
        // at send time for a subscriber who never gave one.
        for key in &list.attributes {
            attributes.insert(key.clone(), Value::String(String::new()));
        }
        for (key, value) in r.attributes {
            attributes.insert(key.clone(), Value::String(clean(value)));
        }
        // A list loaded without the configuration has no sender yet; its
        // own name is the organisation's default anyway.
        let mut sender = list.sender.clone();
        if sender.organisation.is_empty() {
            sender.organisation = list.name.clone();
        }
        json!({
            "name": clean(r.name),
            "first_name": first_name(&clean(r.name)),
            "email": clean(r.email),
            "sender": sender,
            "archive_url": if list.public { r.archive_url } else { "" },
            "attributes": attributes,
            "list": {"id": list.id, "name": list.name, "description": list.description},
            "unsubscribe_url": r.unsubscribe_url,
            "unsubscribe_mailto": r.unsubscribe_mailto,
            "reply_to": r.reply_to,
            "title": self.title,
            "title_rule": "=".repeat(self.title.chars().count()),
            "link": self.link,
            "attachments": self.attachment_list,
        })
    }

    /// Renders one recipient's parts; an error names the failing template.
    pub(crate) fn render(
        &self,
        list: &List,
        r: &Recipient<'_>,
    ) -> Result<Rendered, (&'static str, RenderError)> {
        let mut data = self.fields(list, r);
        let plain =
            |name: &'static str, data: &Value| self.plain.render(name, data).map_err(|e| (name, e));
        let subject = address::header_safe(&plain(SUBJECT, &data)?);
        let preheader = address::header_safe(&plain(PREHEADER, &data)?);
        let body_html = self
            .html
            .render(BODY_HTML, &data)
            .map_err(|e| (BODY_HTML, e))?;
        let body_txt = tidy_text(&plain(BODY_TXT, &data)?);
        let footnotes = plain(FOOTNOTES, &data)?;
        let map = data.as_object_mut().expect("an object");
        map.insert("subject".into(), Value::String(subject.clone()));
        map.insert("preheader".into(), Value::String(preheader));
        map.insert("footnotes".into(), Value::String(footnotes));
        map.insert("body".into(), Value::String(body_html));
        let html = self
            .html
            .render(LAYOUT_HTML, &data)
            .map_err(|e| (LAYOUT_HTML, e))?;
        data["body"] = Value::String(body_txt);
        let text = plain(LAYOUT_TXT, &data)?;
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    pub(crate) fn render_anyhow(&self, list: &List, r: &Recipient<'_>) -> anyhow::Result<Rendered> {
        self.render(list, r).map_err(|(name, e)| {
            let (file, _) = self.origins.get(name).cloned().unwrap_or_default();
            anyhow::anyhow!("{file}: {}", one_line(&e.to_string()))
        })
    }

    /// Renders and builds the whole message for one recipient; signs it
    /// when `dkim` is set (see `system::load_dkim`, whose header list
    /// covers List-Unsubscribe and List-Unsubscribe-Post as RFC 8058 asks).
    pub fn message(
        &self,
        list: &List,
        r: &Recipient<'_>,
        env: &Envelope<'_>,
        dkim: Option<&system::DkimKeys>,
    ) -> anyhow::Result<Vec<u8>> {
        let rendered = self.render_anyhow(list, r)?;
        self.assemble(list, r, env, dkim, rendered)
    }

    /// A recipient's rendered parts as the whole message: headers, MIME,
    /// attachments, DKIM. The one assembly for both ways of rendering
    /// (`message` here, `compose::compiled` per copy), so they cannot
    /// differ in a byte.
    pub(crate) fn assemble(
        &self,
        list: &List,
        r: &Recipient<'_>,
        env: &Envelope<'_>,
        dkim: Option<&system::DkimKeys>,
        rendered: Rendered,
    ) -> anyhow::Result<Vec<u8>> {
        let message_id: String = address::header_safe(env.message_id)
            .chars()
            .filter(|c| !matches!(c, '<' | '>' | ' '))
            .collect();
        let alternative = MultiPart::alternative()
            .boundary(boundary(&message_id, "alt"))
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(body(rendered.text)),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(body(rendered.html)),
            );
        let body = if self.attachments.is_empty() {
            alternative
        } else {
            let mut mixed = MultiPart::mixed()
                .boundary(boundary(&message_id, "mix"))
                .multipart(alternative);
            for a in &self.attachments {
                mixed = mixed.singlepart(
                    SinglePart::builder()
                        .header(a.content_type.clone())
                        .header(a.disposition.clone())
                        .body(a.body.clone()),
                );
            }
            mixed
        };
        let list_address = lists::list_address(list, "", None, env.domain);
        let from = mailbox(&list.name, &list_address)?;
        let message = Message::builder()
            .from(from)
            .to(mailbox(r.name, r.email)?)
            .reply_to(mailbox("", r.reply_to)?)
            .subject(rendered.subject)
            .date(SystemTime::from(env.date))
            .message_id(Some(format!("<{message_id}>")))
            .raw_header(raw("List-Id", &system::list_id(list, env.domain)))
            .raw_header(raw(
                "List-Unsubscribe",
                &format!(
                    "<{}>, <mailto:{}>",
                    bracket_safe(r.unsubscribe_url),
                    bracket_safe(r.unsubscribe_mailto)
                ),
            ))
            .raw_header(raw("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
            .raw_header(raw("Precedence", "bulk"))
            .raw_header(raw("Auto-Submitted", "auto-generated"))
            .multipart(body)
            .map_err(|e| anyhow::anyhow!("cannot build mail to {:?}: {e}", r.email))?;
        Ok(match dkim {
            Some(dkim) => dkim.formatted(message),
            None => message.formatted(),
        })
    }

    /// The subject and the HTML body alone, without layout or footer: the
    /// public archive's page (rendered for an anonymous reader).
    pub fn archive_parts(
        &self,
        list: &List,
        r: &Recipient<'_>,
    ) -> anyhow::Result<(String, String)> {
        let data = self.fields(list, r);
        let subject = self
            .plain
            .render(SUBJECT, &data)
            .map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))?;
        let body = self
            .html
            .render(BODY_HTML, &data)
            .map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))?;
        Ok((address::header_safe(&subject), body))
    }

    /// For `preview --out x.html`: the HTML part alone for a recipient.
    pub fn html(&self, list: &List, r: &Recipient<'_>) -> anyhow::Result<String> {
        Ok(self.render_anyhow(list, r)?.html)
    }
}

/// A text part's body, encoded as lettre's `Body::new` encodes a
/// `String`, byte for byte: the transfer encoding chosen on the text as
/// it is (`email_encoding`'s chooser, no SMTPUTF8), LF made CRLF, then
/// quoted-printable or base64 by the same encoders. Done here because
/// lettre makes CRLF by inserting one `\r` at a time (a copy of the rest
/// of the text per line), which cost more than rendering the copy.
pub(crate) fn body(text: String) -> Body {
    use email_encoding::body::Encoding;
    let encoding = Encoding::choose(text.as_str(), false);
    let mut crlf = Vec::with_capacity(text.len() + text.len() / 32);
    let mut previous = 0u8;
    for &b in text.as_bytes() {
        if b == b'\n' && previous != b'\r' {
            crlf.push(b'\r');
        }
        crlf.push(b);
        previous = b;
    }
    match encoding {
        Encoding::SevenBit => Body::dangerous_pre_encoded(crlf, ContentTransferEncoding::SevenBit),
        Encoding::EightBit => Body::dangerous_pre_encoded(crlf, ContentTransferEncoding::EightBit),
        Encoding::QuotedPrintable => Body::dangerous_pre_encoded(
            quoted_printable::encode(crlf),
            ContentTransferEncoding::QuotedPrintable,
        ),
        Encoding::Base64 => {
            let mut out =
                String::with_capacity(email_encoding::body::base64::encoded_len(crlf.len()));
            email_encoding::body::base64::encode(&crlf, &mut out).expect("a String takes it");
            Body::dangerous_pre_encoded(out.into_bytes(), ContentTransferEncoding::Base64)
        }
    }
}

/// One recipient's rendered parts.
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

pub(crate) fn sample<'a>(attributes: &'a BTreeMap<String, String>, name: &'a str) -> Recipient<'a> {
    Recipient {
        email: "namn@example.se",
        name,
        attributes,
        unsubscribe_url: "https://example.se/unsubscribe/token",
        unsubscribe_mailto: "lista-unsubscribe+token@example.se",
        reply_to: "lista-reply+token@example.se",
        archive_url: "https://example.se/archive/lista/1",
    }
}

pub(crate) fn sample_attributes(list: &List, fill: &str) -> BTreeMap<String, String> {
    list.attributes
        .iter()
        .map(|a| (a.clone(), fill.to_string()))
        .collect()
}

/// A layout: the list's own, the language's, or the built-in one; with where
/// it came from.
pub(crate) fn layout(
    dir: &Path,
    list: &List,
    name: &str,
) -> Result<(String, (String, bool)), AuthoringError> {
    let lang = list.language.code();
    let file = format!("{name}.hbs");
    for path in [
        dir.join(lang).join(&list.id).join(&file),
        dir.join(lang).join(&file),
    ] {
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok((text, (path.display().to_string(), true))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(AuthoringError::new(
                    &path.display().to_string(),
                    None,
                    format!("cannot read: {e}"),
                ))
            }
        }
    }
    let builtin = BUILTIN
        .iter()
        .find(|(l, n, _)| *l == lang && *n == name)
        .map(|(_, _, text)| text.to_string())
        .unwrap_or_default();
    Ok((builtin, (format!("built-in {lang}/{file}"), true)))
}

pub(crate) fn template_error(
    source: &str,
    lines: bool,
    what: &str,
    e: &TemplateError,
) -> AuthoringError {
    AuthoringError::new(
        source,
        e.pos().map(|(l, _)| l).filter(|_| lines),
        format!("{what}{}", one_line(&e.reason().to_string())),
    )
}

pub(crate) fn render_error(
    source: &str,
    lines: bool,
    what: &str,
    e: &RenderError,
    list: &List,
) -> AuthoringError {
    let message = match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            let mut known = vec![
                "name".to_string(),
                "first_name".to_string(),
                "email".to_string(),
            ];
            known.extend(list.attributes.iter().map(|a| format!("attributes.{a}")));
            known.extend(["list.name".to_string(), "list.description".to_string()]);
            format!("unknown field `{path}` (known: {})", known.join(", "))
        }
        reason => one_line(&reason.to_string()),
    };
    AuthoringError::new(
        source,
        e.line_no.filter(|_| lines),
        format!("{what}{message}"),
    )
}

/// A value from a subscriber, for the body: one line, no control
/// characters (which also keeps `RULE_MARK` ours).
pub(crate) fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A MIME boundary that depends only on the message id, so the same
/// message renders to the same bytes (golden tests), yet differs per mail.
pub(crate) fn boundary(message_id: &str, part: &str) -> String {
    // Lower-case hex by table: `write!("{b:02x}")` went through
    // `core::fmt` twelve times a copy, most of this function's cost.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(message_id.as_bytes());
    let mut out = String::with_capacity("utskick--".len() + part.len() + 24);
    out.push_str("utskick-");
    out.push_str(part);
    out.push('-');
    for b in &digest[..12] {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

pub(crate) fn mailbox(name: &str, email: &str) -> anyhow::Result<Mailbox> {
    // Most names and addresses are header-safe already: no copies then.
    let name = match address::is_header_safe(name) {
        true => name.to_string(),
        false => address::header_safe(name),
    };
    let email_safe = match address::is_header_safe(email) {
        true => std::borrow::Cow::Borrowed(email),
        false => std::borrow::Cow::Owned(address::header_safe(email)),
    };
    let addr = email_safe
        .parse()
        .map_err(|e| anyhow::anyhow!("cannot address mail to {email:?}: {e}"))?;
    Ok(Mailbox::new((!name.is_empty()).then_some(name), addr))
}

pub(crate) fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str(name),
        address::header_safe(value),
    )
}

/// A URL or address for inside `<…>` in List-Unsubscribe.
pub(crate) fn bracket_safe(value: &str) -> String {
    address::header_safe(value).replace(['<', '>', ' ', ','], "")
}

/// The first word of `name`: the default greeting's `{{first_name}}`.
pub fn first_name(name: &str) -> String {
    name.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boundary is the part's name and the first twelve bytes of the
    /// Message-ID's SHA-256 in lower-case hex (Python's `hashlib` gave
    /// the value), so a copy's boundaries are stable and its own.
    #[test]
    fn a_boundary_is_the_message_ids_hash_in_hex() {
        assert_eq!(
            boundary("20261203.1.7@lista.example.se", "alt"),
            "utskick-alt-6bc15d02a7961f52c28b232c"
        );
        assert_eq!(boundary("", "mix"), "utskick-mix-e3b0c44298fc1c149afbf4c8");
    }

    /// `body` is lettre's `Body::new` byte for byte, in every encoding it
    /// can choose: 7bit, quoted-printable (long lines, not ASCII, a line
    /// of 75 characters that CRLF makes 76) and base64.
    #[test]
    fn body_encodes_as_lettre_does() {
        let long = "a".repeat(75);
        let texts = [
            String::new(),
            "Hej\nalla\n".to_string(),
            "\nfirst line empty\r\nmixed\rends\n\n".to_string(),
            format!("{long}\n{long}"),
            format!("{long}{long} trailing space \nand\ttab\t\n"),
            "Hälsningar från Åsa, 5 € = 5 euro; \"citat\" och 'apostrof'\n".repeat(9),
            "📬📬📬📬 ÅÄÖ 日本語 📬📬📬📬📬📬\n".repeat(5),
        ];
        for text in texts {
            let ours = body(text.clone());
            let lettres = Body::new(text.clone());
            assert_eq!(ours.encoding(), lettres.encoding(), "{text:?}");
            assert_eq!(ours.into_vec(), lettres.into_vec(), "{text:?}");
        }
    }
}
