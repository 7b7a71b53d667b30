//! Newsletters and material announcements: a campaign's content and one
//! recipient become the bytes of one personalised mail.
//!
//! The fallible work happens once per campaign, when the leader queues it:
//! `parse_newsletter` and `announcement` read what was written, and
//! `Prepared::new` turns the Markdown into an HTML and a plain-text
//! Handlebars template, wraps them in the list's layout and renders it all
//! with sample data in strict mode. A misspelt field is therefore an error
//! with its file and line at queue time, never a failed send. Per recipient
//! only rendering and building the MIME tree are left.
//!
//! Pure: no network, no store. Reading layout overrides and attachments are
//! the only file access.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use handlebars::{Handlebars, RenderError, RenderErrorReason, TemplateError};
use lettre::message::dkim::DkimConfig;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::address;
use crate::compose::system;
use crate::daemon::lists;
use crate::daemon::lists::{Language, List};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Newsletter,
    Announcement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What a campaign sends; stored with the campaign (serde), so keep it plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub kind: Kind,
    /// File name the Markdown came from, for error messages ("december.md").
    pub source: String,
    /// May contain Handlebars fields. For an announcement: its title (the
    /// subject line itself comes from `announcement.subject.hbs`).
    pub subject: String,
    /// "" when none; may contain Handlebars fields.
    pub preheader: String,
    /// The newsletter body, or the announcement's description ("" when
    /// none); may contain Handlebars fields. A newsletter's front matter is
    /// replaced by as many empty lines, so line numbers here are the file's.
    pub markdown: String,
    /// Announcement only, else "".
    pub title: String,
    /// Announcement only.
    pub link: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// An authoring error: shown to the leader at queue time, one line:
/// "december.md:12: unknown field `nmae`".
///
/// `Display` and `Error` are written out: thiserror would take a field
/// named `source` for the underlying error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoringError {
    pub source: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for AuthoringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.source, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

impl std::error::Error for AuthoringError {}

impl AuthoringError {
    fn new(source: &str, line: Option<usize>, message: impl Into<String>) -> AuthoringError {
        AuthoringError {
            source: source.to_string(),
            line,
            message: message.into(),
        }
    }
}

/// Total attachment limit default (config may change it): 10 MB.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

const NO_SUBJECT: &str = "needs a subject: front matter `subject:` or a `# heading`";

/// Parses a Markdown newsletter file: optional front matter between `---`
/// lines with `subject:`, `preheader:` and `where: key=value` (several
/// comma-separated, or repeated lines); without `subject`, the first
/// `# heading` is the subject (and stays in the body). Returns the content
/// and the `where` filters.
pub fn parse_newsletter(
    source: &str,
    text: &str,
) -> Result<(Content, Vec<(String, String)>), AuthoringError> {
    let err = |line: Option<usize>, message: String| AuthoringError::new(source, line, message);
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut subject: Option<String> = None;
    let mut preheader: Option<String> = None;
    let mut filters = Vec::new();
    let mut body_start = 0;
    if lines.first().map(|l| l.trim_end()) == Some("---") {
        let Some(end) = lines
            .iter()
            .skip(1)
            .position(|l| l.trim_end() == "---")
            .map(|p| p + 1)
        else {
            return Err(err(
                Some(1),
                "the front matter that starts here is never closed with a `---` line".into(),
            ));
        };
        for (i, line) in lines[1..end].iter().enumerate() {
            let n = i + 2;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(err(
                    Some(n),
                    format!("expected `key: value` (subject, preheader or where), found `{line}`"),
                ));
            };
            let key = key.trim().to_ascii_lowercase();
            let value = unquote(value.trim());
            match key.as_str() {
                "subject" | "preheader" => {
                    let slot = if key == "subject" {
                        &mut subject
                    } else {
                        &mut preheader
                    };
                    if slot.is_some() {
                        return Err(err(Some(n), format!("`{key}` is set twice")));
                    }
                    if value.is_empty() {
                        return Err(err(Some(n), format!("`{key}` is empty")));
                    }
                    // Syntax is checked here, where the line is known;
                    // unknown fields need the list, so `Prepared::new`
                    // checks those.
                    check_syntax(value).map_err(|m| err(Some(n), format!("{key}: {m}")))?;
                    *slot = Some(value.to_string());
                }
                "where" => {
                    let mut any = false;
                    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        match part.split_once('=') {
                            Some((k, v)) if !k.trim().is_empty() => {
                                filters.push((k.trim().to_string(), unquote(v.trim()).to_string()));
                                any = true;
                            }
                            _ => {
                                return Err(err(
                                    Some(n),
                                    format!("`where` needs key=value, such as region=Jämtland, not `{part}`"),
                                ))
                            }
                        }
                    }
                    if !any {
                        return Err(err(
                            Some(n),
                            "`where` needs key=value, such as region=Jämtland".into(),
                        ));
                    }
                }
                _ => {
                    return Err(err(
                        Some(n),
                        format!(
                            "unknown front matter key `{key}` (known: subject, preheader, where)"
                        ),
                    ))
                }
            }
        }
        body_start = end + 1;
    }
    // Empty lines stand in for the front matter, so that line numbers in
    // `markdown` (and in Handlebars errors) are the file's.
    let markdown = "\n".repeat(body_start) + &lines[body_start.min(lines.len())..].join("\n");
    if markdown.trim().is_empty() {
        return Err(err(None, "has no text".into()));
    }
    let subject = match subject {
        Some(s) => s,
        None => first_heading(source, &markdown)?.ok_or_else(|| err(None, NO_SUBJECT.into()))?,
    };
    let content = Content {
        kind: Kind::Newsletter,
        source: source.to_string(),
        subject,
        preheader: preheader.unwrap_or_default(),
        markdown,
        title: String::new(),
        link: None,
        attachments: Vec::new(),
    };
    Ok((content, filters))
}

/// A material announcement: title, optional link, optional Markdown
/// description (source name + text), attachments read by the caller.
pub fn announcement(
    title: &str,
    link: Option<&str>,
    description: Option<(&str, &str)>,
    attachments: Vec<Attachment>,
) -> Result<Content, AuthoringError> {
    // The title becomes the subject and a heading: one line.
    let title = address::header_safe(title);
    if title.is_empty() {
        return Err(AuthoringError::new(
            "--title",
            None,
            "an announcement needs a title",
        ));
    }
    let link = match link.map(str::trim) {
        None | Some("") => None,
        Some(l) => {
            let scheme_ok = ["https://", "http://"]
                .iter()
                .any(|s| l.len() > s.len() && l[..s.len()].eq_ignore_ascii_case(s));
            if !scheme_ok
                || l.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c))
            {
                return Err(AuthoringError::new(
                    "--link",
                    None,
                    format!("`{l}` is not a web address (https://…)"),
                ));
            }
            Some(l.to_string())
        }
    };
    let (source, markdown) = match description {
        Some((source, text)) => {
            let text = text
                .strip_prefix('\u{feff}')
                .unwrap_or(text)
                .replace("\r\n", "\n");
            // Checked now so a broken description is refused at once.
            protect(source, &text)?;
            check_syntax(&text).map_err(|m| AuthoringError::new(source, None, m))?;
            (source.to_string(), text)
        }
        None => ("announcement".to_string(), String::new()),
    };
    Ok(Content {
        kind: Kind::Announcement,
        source,
        subject: title.clone(),
        preheader: String::new(),
        markdown,
        title,
        link,
        attachments,
    })
}

/// Reads a file to attach: MIME type from the extension, falling back to
/// application/octet-stream. Checks the running total against `max_total`.
pub fn read_attachment(
    path: &Path,
    total_so_far: usize,
    max_total: usize,
) -> Result<Attachment, AuthoringError> {
    let source = path.display().to_string();
    let err = |m: String| AuthoringError::new(&source, None, m);
    let filename = attachment_name(
        &path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(err("is not a file".into()));
    }
    let too_big = |size: usize| {
        let already = if total_so_far > 0 {
            format!(
                " ({} already attached)",
                size_text(total_so_far, Language::En)
            )
        } else {
            String::new()
        };
        err(format!(
            "is {}, and attachments may total at most {} per mail{already}; put big files on the web and send a link with --link instead",
            size_text(size, Language::En),
            size_text(max_total, Language::En),
        ))
    };
    // Checked before reading, so a huge file is never loaded.
    let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    if total_so_far.saturating_add(size) > max_total {
        return Err(too_big(size));
    }
    let data = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if total_so_far.saturating_add(data.len()) > max_total {
        return Err(too_big(data.len()));
    }
    Ok(Attachment {
        filename,
        content_type: mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_string(),
        data,
    })
}

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
}

/// Fixed per message (tests pass fixed values; the sender passes real ones).
pub struct Envelope<'a> {
    /// Without <>, e.g. "utskick.lf.c12.r34@lista.example.se".
    pub message_id: &'a str,
    pub date: chrono::DateTime<chrono::FixedOffset>,
    pub domain: &'a str,
}

// Template names inside the two registries.
const SUBJECT: &str = "subject";
const PREHEADER: &str = "preheader";
const BODY_HTML: &str = "body.html";
const BODY_TXT: &str = "body.txt";
const FOOTNOTES: &str = "footnotes.txt";
const LAYOUT_HTML: &str = "layout.html";
const LAYOUT_TXT: &str = "layout.txt";

macro_rules! builtin {
    ($($lang:literal / $name:literal),* $(,)?) => {
        &[$(
            ($lang, $name, include_str!(concat!("../../templates/", $lang, "/", $name, ".hbs"))),
        )*]
    };
}

/// The shipped layouts, compiled in as the fallback.
const BUILTIN: &[(&str, &str, &str)] = builtin![
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

/// An attachment, encoded once per campaign rather than once per recipient.
struct EncodedAttachment {
    filename: String,
    content_type: ContentType,
    body: Body,
}

/// The compiled templates of one campaign for one list; build once per
/// campaign, render per recipient.
pub struct Prepared {
    /// Values HTML-escaped: the body and layout of the HTML part.
    html: Handlebars<'static>,
    /// No escaping: subject, preheader and the text part.
    plain: Handlebars<'static>,
    /// Where each template came from, for error messages: (file, whether
    /// Handlebars' line numbers are the file's).
    origins: BTreeMap<&'static str, (String, bool)>,
    title: String,
    link: Option<String>,
    attachments: Vec<EncodedAttachment>,
    /// For the layouts: name and size of each attachment.
    attachment_list: Value,
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

/// One recipient's rendered parts.
struct Rendered {
    subject: String,
    text: String,
    html: String,
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
                .map(|a| EncodedAttachment {
                    filename: attachment_name(&a.filename),
                    content_type: content_type(&a.content_type),
                    body: Body::new(a.data.clone()),
                })
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
            Kind::Newsletter => "newsletter",
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

    fn register(
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
            .register_template_string(name, template)
            .map_err(|e| template_error(&origin.0, origin.1, &what, &e))?;
        self.origins.insert(name, origin);
        Ok(())
    }

    /// The values every template sees.
    fn fields(&self, list: &List, r: &Recipient<'_>) -> Value {
        let mut attributes = Map::new();
        // Every declared attribute is present, so strict mode cannot fail
        // at send time for a subscriber who never gave one.
        for key in &list.attributes {
            attributes.insert(key.clone(), Value::String(String::new()));
        }
        for (key, value) in r.attributes {
            attributes.insert(key.clone(), Value::String(clean(value)));
        }
        json!({
            "name": clean(r.name),
            "email": clean(r.email),
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
    fn render(
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

    fn render_anyhow(&self, list: &List, r: &Recipient<'_>) -> anyhow::Result<Rendered> {
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
        dkim: Option<&DkimConfig>,
    ) -> anyhow::Result<Vec<u8>> {
        let rendered = self.render_anyhow(list, r)?;
        let message_id: String = address::header_safe(env.message_id)
            .chars()
            .filter(|c| !matches!(c, '<' | '>' | ' '))
            .collect();
        let alternative = MultiPart::alternative()
            .boundary(boundary(&message_id, "alt"))
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(rendered.text),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(rendered.html),
            );
        let body = if self.attachments.is_empty() {
            alternative
        } else {
            let mut mixed = MultiPart::mixed()
                .boundary(boundary(&message_id, "mix"))
                .multipart(alternative);
            for a in &self.attachments {
                mixed = mixed.singlepart(
                    lettre::message::Attachment::new(a.filename.clone())
                        .body(a.body.clone(), a.content_type.clone()),
                );
            }
            mixed
        };
        let list_address = lists::list_address(list, "", None, env.domain);
        let from = mailbox(&list.name, &list_address)?;
        let mut message = Message::builder()
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
        if let Some(dkim) = dkim {
            message.sign(dkim);
        }
        Ok(message.formatted())
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

fn sample<'a>(attributes: &'a BTreeMap<String, String>, name: &'a str) -> Recipient<'a> {
    Recipient {
        email: "namn@example.se",
        name,
        attributes,
        unsubscribe_url: "https://example.se/unsubscribe/token",
        unsubscribe_mailto: "lista-unsubscribe+token@example.se",
        reply_to: "lista-reply+token@example.se",
    }
}

fn sample_attributes(list: &List, fill: &str) -> BTreeMap<String, String> {
    list.attributes
        .iter()
        .map(|a| (a.clone(), fill.to_string()))
        .collect()
}

/// A layout: the list's own, the language's, or the built-in one; with where
/// it came from.
fn layout(dir: &Path, list: &List, name: &str) -> Result<(String, (String, bool)), AuthoringError> {
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

fn template_error(source: &str, lines: bool, what: &str, e: &TemplateError) -> AuthoringError {
    AuthoringError::new(
        source,
        e.pos().map(|(l, _)| l).filter(|_| lines),
        format!("{what}{}", one_line(&e.reason().to_string())),
    )
}

fn render_error(
    source: &str,
    lines: bool,
    what: &str,
    e: &RenderError,
    list: &List,
) -> AuthoringError {
    let message = match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            let mut known = vec!["name".to_string(), "email".to_string()];
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

/// Compiles `text` alone, for a syntax check where the line is known.
fn check_syntax(text: &str) -> Result<(), String> {
    Handlebars::new()
        .register_template_string("t", text)
        .map_err(|e| one_line(&e.reason().to_string()))
}

/// The text of the first `# heading`, fields intact.
fn first_heading(source: &str, markdown: &str) -> Result<Option<String>, AuthoringError> {
    let protected = protect(source, markdown)?;
    let mut inside = false;
    let mut text = String::new();
    for event in Parser::new_ext(&protected.text, options()) {
        match event {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H1,
                ..
            }) => inside = true,
            Event::End(TagEnd::Heading(HeadingLevel::H1)) => {
                let text = address::header_safe(&protected.restore(&text));
                return Ok((!text.is_empty()).then_some(text));
            }
            Event::Text(t) | Event::Code(t) if inside => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if inside => text.push(' '),
            _ => {}
        }
    }
    Ok(None)
}

/// Markdown with every Handlebars expression swapped for an inert word, so
/// the Markdown converter cannot escape, percent-encode or split it.
struct Protected {
    text: String,
    exprs: Vec<String>,
}

/// A placeholder: letters and digits only, which Markdown leaves alone
/// everywhere (text, URLs, emphasis).
fn placeholder(n: usize) -> String {
    format!("UTSKICKF{n}X")
}

fn protect(source: &str, markdown: &str) -> Result<Protected, AuthoringError> {
    let line_at = |offset: usize| markdown[..offset].matches('\n').count() + 1;
    let mut text = String::with_capacity(markdown.len());
    let mut exprs = Vec::new();
    let mut open: Vec<(String, &str, usize)> = Vec::new();
    let mut pos = 0;
    while let Some(found) = markdown[pos..].find("{{") {
        let at = pos + found;
        let line = line_at(at);
        let after = &markdown[at..];
        let close = if after.starts_with("{{!--") {
            "--}}"
        } else if after.starts_with("{{{") {
            "}}}"
        } else {
            "}}"
        };
        let Some(end) = after[2..].find(close).map(|e| at + 2 + e + close.len()) else {
            return Err(AuthoringError::new(
                source,
                Some(line),
                "`{{` is never closed with `}}`",
            ));
        };
        let expr = &markdown[at..end];
        // `\{{` is Handlebars for a literal `{{`: keep it, backslash included.
        let escaped = at > pos && markdown.as_bytes()[at - 1] == b'\\';
        let start = if escaped { at - 1 } else { at };
        if !escaped {
            if close == "}}}" {
                return Err(AuthoringError::new(
                    source,
                    Some(line),
                    format!("`{expr}` would put a value into the HTML unescaped; write it with two braces"),
                ));
            }
            let inner = expr[2..expr.len() - 2].trim_matches('~').trim();
            let word = |s: &str| s.split_whitespace().next().unwrap_or("").to_string();
            if let Some(rest) = inner.strip_prefix('#') {
                open.push((word(rest.trim_start_matches(['>', '*'])), expr, line));
            } else if let Some(rest) = inner.strip_prefix('^').filter(|r| !r.trim().is_empty()) {
                open.push((word(rest), expr, line));
            } else if let Some(rest) = inner.strip_prefix('/') {
                let name = word(rest);
                match open.pop() {
                    Some((opened, _, _)) if opened == name => {}
                    Some((opened, opener, from)) => {
                        return Err(AuthoringError::new(
                            source,
                            Some(line),
                            format!("`{expr}` closes `{opener}` from line {from}; expected `{{{{/{opened}}}}}`"),
                        ))
                    }
                    None => {
                        return Err(AuthoringError::new(
                            source,
                            Some(line),
                            format!("`{expr}` closes a block that was never opened"),
                        ))
                    }
                }
            }
        }
        // A block helper alone on its line becomes a paragraph of its own,
        // so the Markdown blocks it wraps stay whole (`<p>` is then dropped
        // around it) instead of the helper landing inside a paragraph.
        let line_begin = markdown[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = markdown[end..]
            .find('\n')
            .map_or(markdown.len(), |i| end + i);
        let alone = !escaped
            && is_block(expr)
            && line_begin >= pos
            && markdown[line_begin..start].trim().is_empty()
            && markdown[end..line_end].trim().is_empty();
        if alone {
            text.push_str(&markdown[pos..line_begin]);
            text.push('\n');
            text.push_str(&markdown[line_begin..start]);
            text.push_str(&placeholder(exprs.len()));
            text.push('\n');
        } else {
            text.push_str(&markdown[pos..start]);
            text.push_str(&placeholder(exprs.len()));
        }
        exprs.push(markdown[start..end].to_string());
        pos = end;
    }
    text.push_str(&markdown[pos..]);
    if let Some((name, opener, line)) = open.pop() {
        return Err(AuthoringError::new(
            source,
            Some(line),
            format!("`{opener}` is never closed with `{{{{/{name}}}}}`"),
        ));
    }
    Ok(Protected { text, exprs })
}

impl Protected {
    /// Puts the expressions back into converted output. Any `{{` the
    /// converter produced itself (from `&#123;` and the like) is escaped so
    /// Handlebars shows it as written.
    fn restore(&self, converted: &str) -> String {
        let converted = converted.replace("{{", "\\{{");
        let mut out = String::with_capacity(converted.len());
        let mut rest = converted.as_str();
        while let Some(i) = rest.find("UTSKICKF") {
            out.push_str(&rest[..i]);
            let after = &rest[i + "UTSKICKF".len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let expr = after[..digits]
                .parse::<usize>()
                .ok()
                .filter(|_| after[digits..].starts_with('X'))
                .and_then(|n| self.exprs.get(n));
            match expr {
                Some(expr) => {
                    out.push_str(expr);
                    rest = &after[digits + 1..];
                }
                None => {
                    out.push_str("UTSKICKF");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Whether a Handlebars expression opens, continues or closes a block.
fn is_block(expr: &str) -> bool {
    let inner = expr
        .trim_start_matches('{')
        .trim_start_matches('~')
        .trim_start();
    inner.starts_with(['#', '/', '^']) || inner.starts_with("else")
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

/// Inline styles for what the Markdown converter emits: many mail clients
/// drop `<style>` blocks, so each element carries its own.
const BODY_STYLES: &[(&str, &str)] = &[
    ("<p>", r#"<p style="margin:0 0 16px 0;">"#),
    (
        "<h1>",
        r#"<h1 style="margin:0 0 16px 0;font-family:Arial,Helvetica,sans-serif;font-size:24px;line-height:1.25;color:#1f2933;">"#,
    ),
    (
        "<h2>",
        r#"<h2 style="margin:24px 0 8px 0;font-family:Arial,Helvetica,sans-serif;font-size:19px;line-height:1.3;color:#1f2933;">"#,
    ),
    (
        "<h3>",
        r#"<h3 style="margin:20px 0 8px 0;font-family:Arial,Helvetica,sans-serif;font-size:17px;line-height:1.3;color:#1f2933;">"#,
    ),
    (
        "<h4>",
        r#"<h4 style="margin:16px 0 8px 0;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.3;color:#1f2933;">"#,
    ),
    (
        "<h5>",
        r#"<h5 style="margin:16px 0 8px 0;font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.3;color:#1f2933;">"#,
    ),
    (
        "<h6>",
        r#"<h6 style="margin:16px 0 8px 0;font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.3;color:#4a5560;">"#,
    ),
    (
        "<a href=",
        r#"<a style="color:#2f6b3a;text-decoration:underline;" href="#,
    ),
    (
        "<ul>",
        r#"<ul style="margin:0 0 16px 0;padding:0 0 0 22px;">"#,
    ),
    (
        "<ol>",
        r#"<ol style="margin:0 0 16px 0;padding:0 0 0 22px;">"#,
    ),
    (
        "<ol start=",
        r#"<ol style="margin:0 0 16px 0;padding:0 0 0 22px;" start="#,
    ),
    ("<li>", r#"<li style="margin:0 0 8px 0;">"#),
    (
        "<blockquote>",
        r#"<blockquote style="margin:0 0 16px 0;padding:4px 0 4px 16px;border-left:4px solid #e2ded2;color:#4a5560;">"#,
    ),
    (
        "<pre><code>",
        r#"<pre style="margin:0 0 16px 0;padding:12px 16px;background-color:#f4f2ec;border-radius:4px;white-space:pre-wrap;"><code style="font-family:Consolas,Menlo,monospace;font-size:14px;line-height:1.45;">"#,
    ),
    (
        "<pre><code class=",
        r#"<pre style="margin:0 0 16px 0;padding:12px 16px;background-color:#f4f2ec;border-radius:4px;white-space:pre-wrap;"><code style="font-family:Consolas,Menlo,monospace;font-size:14px;line-height:1.45;" class="#,
    ),
    (
        "<code>",
        r#"<code style="font-family:Consolas,Menlo,monospace;font-size:14px;background-color:#f4f2ec;padding:1px 4px;border-radius:3px;">"#,
    ),
    (
        "<hr />",
        r#"<hr style="border:0;border-top:1px solid #e2ded2;margin:24px 0;" />"#,
    ),
    (
        "<img src=",
        r#"<img style="max-width:100%;height:auto;border:0;" src="#,
    ),
    (
        "<table>",
        r#"<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="margin:0 0 16px 0;border-collapse:collapse;">"#,
    ),
    (
        "<th>",
        r#"<th style="padding:4px 8px;border:1px solid #e2ded2;text-align:left;">"#,
    ),
    (
        "<th style=\"",
        r#"<th style="padding:4px 8px;border:1px solid #e2ded2;"#,
    ),
    (
        "<td>",
        r#"<td style="padding:4px 8px;border:1px solid #e2ded2;">"#,
    ),
    (
        "<td style=\"",
        r#"<td style="padding:4px 8px;border:1px solid #e2ded2;"#,
    ),
];

/// Markdown → (HTML body, text body, text footnotes), each a Handlebars
/// template with the author's fields back in place.
fn convert(protected: &Protected) -> (String, String, String) {
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, Parser::new_ext(&protected.text, options()));
    for (plain, styled) in BODY_STYLES {
        html = html.replace(plain, styled);
    }
    // A block helper alone in its paragraph (`{{#if x}}` on a line of its
    // own between blank lines) must not leave an empty <p> behind.
    for n in (0..protected.exprs.len()).filter(|&n| is_block(&protected.exprs[n])) {
        let ph = placeholder(n);
        html = html.replace(&format!("{}{ph}</p>", BODY_STYLES[0].1), &ph);
    }
    let mut writer = TextWriter::default();
    for event in Parser::new_ext(&protected.text, options()) {
        writer.event(event);
    }
    let footnotes = writer
        .footnotes
        .iter()
        .enumerate()
        .map(|(i, url)| format!("[{}] {url}", i + 1))
        .collect::<Vec<_>>()
        .join("\n");
    (
        protected.restore(html.trim_end()),
        protected.restore(writer.out.trim_matches('\n')),
        protected.restore(&footnotes),
    )
}

/// Marks the line under a heading; `tidy_text` draws the rule once the
/// fields are filled in and the heading's width is known.
const RULE_MARK: char = '\u{1}';

/// Markdown events → readable plain text: headings underlined, lists with
/// "- ", emphasis without markup, links and images as numbered footnotes,
/// code indented, quotes with "> ".
#[derive(Default)]
struct TextWriter {
    out: String,
    /// What starts each line, one entry per open container.
    prefixes: Vec<String>,
    /// A list item's marker, shown instead of its prefix on its first line.
    marker: Option<(usize, String)>,
    line_start: bool,
    /// A blank line is due before the next block.
    blank: bool,
    /// Open lists: the next number, or None for bullets.
    lists: Vec<Option<u64>>,
    /// Open links and images: destination and where their text starts.
    links: Vec<(String, usize)>,
    footnotes: Vec<String>,
    in_tag: bool,
    cells: usize,
}

impl TextWriter {
    fn prefix(&mut self, blank_line: bool) {
        let mut prefix = String::new();
        for (i, p) in self.prefixes.iter().enumerate() {
            match &self.marker {
                Some((at, marker)) if *at == i && !blank_line => prefix.push_str(marker),
                _ => prefix.push_str(p),
            }
        }
        if blank_line {
            self.out.push_str(prefix.trim_end());
        } else {
            self.marker = None;
            self.out.push_str(&prefix);
        }
    }

    fn put(&mut self, s: &str) {
        for c in s.chars() {
            if c == '\n' {
                if self.line_start {
                    self.prefix(true);
                }
                self.out.push('\n');
                self.line_start = true;
                continue;
            }
            if self.line_start || self.out.is_empty() {
                self.prefix(false);
                self.line_start = false;
            }
            self.out.push(c);
        }
    }

    /// Called as every block starts: ends the line, and leaves a blank one
    /// after the previous paragraph, list or quote.
    fn block(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if !self.line_start {
            self.put("\n");
        }
        if self.blank {
            self.put("\n");
            self.blank = false;
        }
    }

    fn footnote(&mut self, url: &str) -> usize {
        match self.footnotes.iter().position(|u| u == url) {
            Some(i) => i + 1,
            None => {
                self.footnotes.push(url.to_string());
                self.footnotes.len()
            }
        }
    }

    /// Raw HTML in the Markdown: the text between the tags.
    fn html(&mut self, html: &str) {
        let mut text = String::new();
        let mut tag = String::new();
        for c in html.chars() {
            match c {
                '<' if !self.in_tag => {
                    self.in_tag = true;
                    tag.clear();
                }
                '>' if self.in_tag => {
                    self.in_tag = false;
                    let name = tag.trim_start_matches('/').to_ascii_lowercase();
                    if name.starts_with("br") || name.starts_with("p ") || name == "p" {
                        text.push('\n');
                    }
                }
                c if self.in_tag => tag.push(c),
                c => text.push(c),
            }
        }
        let text = text
            .replace("&nbsp;", " ")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&");
        self.put(&text);
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                self.put(&t)
            }
            Event::Html(t) | Event::InlineHtml(t) => self.html(&t),
            Event::FootnoteReference(t) => self.put(&format!("[^{t}]")),
            Event::SoftBreak | Event::HardBreak => self.put("\n"),
            Event::Rule => {
                self.block();
                self.put("* * *");
                self.blank = true;
            }
            Event::TaskListMarker(done) => self.put(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::Heading { .. } | Tag::HtmlBlock | Tag::Table(_) => self.block(),
            Tag::BlockQuote(_) => {
                self.block();
                self.prefixes.push("> ".into());
            }
            Tag::CodeBlock(_) => {
                self.block();
                self.prefixes.push("    ".into());
            }
            Tag::List(start) => {
                self.block();
                self.lists.push(start);
            }
            Tag::Item => {
                self.block();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".to_string(),
                };
                self.prefixes.push(" ".repeat(marker.chars().count()));
                self.marker = Some((self.prefixes.len() - 1, marker));
            }
            Tag::TableHead | Tag::TableRow => {
                self.block();
                self.cells = 0;
            }
            Tag::TableCell => {
                if self.cells > 0 {
                    self.put(" | ");
                }
                self.cells += 1;
            }
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                self.links.push((dest_url.to_string(), self.out.len()));
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock | TagEnd::Table => self.blank = true,
            TagEnd::Heading(level) => {
                match level {
                    HeadingLevel::H1 => self.put(&format!("\n{RULE_MARK}=")),
                    HeadingLevel::H2 => self.put(&format!("\n{RULE_MARK}-")),
                    _ => {}
                }
                self.blank = true;
            }
            TagEnd::BlockQuote(_) | TagEnd::CodeBlock => {
                self.prefixes.pop();
                self.blank = true;
            }
            TagEnd::List(_) => {
                self.lists.pop();
                self.blank = true;
            }
            TagEnd::Item => {
                if self.marker.is_some() {
                    // An empty item still shows its marker.
                    self.put(" ");
                }
                self.prefixes.pop();
            }
            TagEnd::Link | TagEnd::Image => {
                let image = tag == TagEnd::Image;
                let Some((dest, start)) = self.links.pop() else {
                    return;
                };
                let text = self.out[start..].trim().to_string();
                if dest.is_empty() || text == dest || dest.strip_prefix("mailto:") == Some(&text) {
                    // The address is already there to read.
                } else if text.is_empty() && !image {
                    self.put(&dest);
                } else {
                    let n = self.footnote(&dest);
                    let sep = if text.is_empty() { "" } else { " " };
                    self.put(&format!("{sep}[{n}]"));
                }
            }
            _ => {}
        }
    }
}

/// Finishes a rendered text body: draws heading rules as wide as the
/// rendered heading, and folds runs of blank lines (left by block helpers
/// whose content was skipped) into one.
fn tidy_text(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in text.split('\n') {
        if let Some(at) = line.find(RULE_MARK) {
            let prefix = &line[..at];
            let rule = line[at + RULE_MARK.len_utf8()..]
                .chars()
                .next()
                .unwrap_or('=');
            let width = lines
                .last()
                .map(|l| l.chars().count().saturating_sub(prefix.chars().count()))
                .unwrap_or(3)
                .max(3);
            lines.push(format!("{prefix}{}", rule.to_string().repeat(width)));
            continue;
        }
        if line.is_empty() && lines.last().is_some_and(|l| l.is_empty()) {
            continue;
        }
        lines.push(line.to_string());
    }
    lines.join("\n").trim_matches('\n').to_string()
}

/// A value from a subscriber, for the body: one line, no control
/// characters (which also keeps `RULE_MARK` ours).
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An attachment's file name, safe for a header parameter: the last path
/// component, no control characters, quotes or backslashes.
fn attachment_name(name: &str) -> String {
    let name = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = address::header_safe(name)
        .chars()
        .filter(|c| !matches!(c, '"' | '\\'))
        .collect();
    if name.is_empty() {
        "bilaga".to_string()
    } else {
        name
    }
}

/// A stored content type, or application/octet-stream if it does not parse.
fn content_type(value: &str) -> ContentType {
    ContentType::parse(value).unwrap_or_else(|_| {
        ContentType::parse("application/octet-stream").expect("a valid content type")
    })
}

/// "340 kB", "2,4 MB" (Swedish decimal comma), "10 MB".
fn size_text(bytes: usize, lang: Language) -> String {
    const MB: usize = 1024 * 1024;
    if bytes < MB {
        return format!("{} kB", bytes.div_ceil(1024).max(1));
    }
    let tenths = (bytes * 10 + MB / 2) / MB;
    let text = if tenths % 10 == 0 {
        format!("{} MB", tenths / 10)
    } else {
        format!("{}.{} MB", tenths / 10, tenths % 10)
    };
    match lang {
        Language::Sv => text.replace('.', ","),
        Language::En => text,
    }
}

/// A MIME boundary that depends only on the message id, so the same
/// message renders to the same bytes (golden tests), yet differs per mail.
fn boundary(message_id: &str, part: &str) -> String {
    let digest = Sha256::digest(message_id.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("utskick-{part}-{hex}")
}

fn mailbox(name: &str, email: &str) -> anyhow::Result<Mailbox> {
    let name = address::header_safe(name);
    let addr = address::header_safe(email)
        .parse()
        .map_err(|e| anyhow::anyhow!("cannot address mail to {email:?}: {e}"))?;
    Ok(Mailbox::new((!name.is_empty()).then_some(name), addr))
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str(name),
        address::header_safe(value),
    )
}

/// A URL or address for inside `<…>` in List-Unsubscribe.
fn bracket_safe(value: &str) -> String {
    address::header_safe(value).replace(['<', '>', ' ', ','], "")
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use mail_parser::MimeHeaders;

    const NEWSLETTER_SV: &str = "\
---
subject: Nyhetsbrev december från {{list.name}}
preheader: Handboken är klar – och vi ses i Östersund
where: region=Jämtland
---
# Nyhetsbrev december

Hej {{name}}!

Nu är **handboken** om lokala finansieringslösningar klar. Läs den
i [handboken](https://lokalfinansiering.example.se/handbok) eller
ladda ned [foldern](https://lokalfinansiering.example.se/folder.pdf).

## Det här händer

- Träff i {{#if attributes.region}}{{attributes.region}}{{else}}din region{{/if}} den 12 december
- Webbinarium om *bygdepeng* och andelsägande:
  1. anmäl dig senast 5 december
  2. titta på [presentationen](https://lokalfinansiering.example.se/presentation)

> Lokal finansiering är pengar från bygden, för bygden.

![Karta över bygderna](https://lokalfinansiering.example.se/karta.png)

Frågor? Svara på det här mejlet eller skriv till <projektledare@example.se>.
";

    const NEWSLETTER_EN: &str = "\
---
subject: December newsletter from {{list.name}}
preheader: The handbook is ready
---
# December newsletter

Hello {{name}},

The **handbook** on local financing is ready. Read it in
[the handbook](https://lokalfinansiering.example.se/handbook).

{{#if attributes.organisation}}
Greetings to everyone at {{attributes.organisation}}!
{{/if}}

Questions? Just reply to this email.
";

    fn list(lang: &str) -> List {
        List::parse(
            "lokal-finansiering",
            &format!(
                "name = \"Lokal finansiering – för landsbygdens utveckling\"\n\
                 address = \"lokal-finansiering\"\nlanguage = \"{lang}\"\n\
                 description = \"Nyheter om lokala finansieringslösningar.\"\n\
                 attributes = [\"organisation\", \"region\"]\n"
            ),
        )
        .unwrap()
    }

    fn templates() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
    }

    fn attributes() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("organisation".to_string(), "Byalaget i Hede".to_string()),
            ("region".to_string(), "Jämtland".to_string()),
        ])
    }

    fn recipient<'a>(name: &'a str, attributes: &'a BTreeMap<String, String>) -> Recipient<'a> {
        Recipient {
            email: "asa@example.org",
            name,
            attributes,
            unsubscribe_url: "https://lista.example.se/unsubscribe/abc123",
            unsubscribe_mailto: "lokal-finansiering-unsubscribe+abc123@lista.example.se",
            reply_to: "lokal-finansiering-reply+abc123@lista.example.se",
        }
    }

    fn envelope() -> Envelope<'static> {
        Envelope {
            message_id: "utskick.lokal-finansiering.c12.r34@lista.example.se",
            date: chrono::FixedOffset::east_opt(3600)
                .unwrap()
                .with_ymd_and_hms(2026, 12, 1, 8, 0, 0)
                .unwrap(),
            domain: "lista.example.se",
        }
    }

    fn newsletter(source: &str, text: &str, lang: &str) -> (List, Prepared) {
        let list = list(lang);
        let (content, _) = parse_newsletter(source, text).unwrap();
        let prepared = Prepared::new(&content, &list, templates()).unwrap();
        (list, prepared)
    }

    /// The error `parse_newsletter` or `Prepared::new` gives.
    fn prepare_error(source: &str, text: &str) -> String {
        let content = match parse_newsletter(source, text) {
            Ok((content, _)) => content,
            Err(e) => return e.to_string(),
        };
        match Prepared::new(&content, &list("sv"), templates()) {
            Ok(_) => panic!("no error for\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    /// Compares with `tests/golden/NAME.eml`; `UPDATE_EXPECT=1` rewrites it.
    fn golden(name: &str, actual: &[u8]) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let path = dir.join(format!("{name}.eml"));
        let actual_path = dir.join(format!("{name}.actual"));
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, actual).unwrap();
            let _ = std::fs::remove_file(&actual_path);
            return;
        }
        let expected = std::fs::read(&path).unwrap_or_default();
        if expected != actual {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&actual_path, actual).unwrap();
            panic!(
                "{name}: the message differs from {}; see {} (run with UPDATE_EXPECT=1 if the change is intended)",
                path.display(),
                actual_path.display()
            );
        }
        let _ = std::fs::remove_file(&actual_path);
    }

    fn headers(eml: &str) -> Vec<String> {
        eml[..eml.find("\r\n\r\n").unwrap()]
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ")
            .split("\r\n")
            .map(str::to_string)
            .collect()
    }

    fn parts(eml: &[u8]) -> (String, String) {
        let parsed = mail_parser::MessageParser::default().parse(eml).unwrap();
        (
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            parsed.body_html(0).unwrap().replace("\r\n", "\n"),
        )
    }

    fn announcement_content() -> Content {
        let pdf = Attachment {
            filename: "Handbok för lokal finansiering.pdf".into(),
            content_type: "application/pdf".into(),
            data: b"%PDF-1.4\n% utskick test\n".repeat(100),
        };
        announcement(
            "Handboken om lokala finansieringslösningar",
            Some("https://lokalfinansiering.example.se/handbok"),
            Some((
                "handbok.md",
                "Handboken visar hur bygder samlar in **eget kapital**, med\nexempel från [fem orter](https://lokalfinansiering.example.se/orter).\n",
            )),
            vec![pdf],
        )
        .unwrap()
    }

    fn check_message(eml: &[u8], greeting: &str, footer: &str) {
        let text = String::from_utf8(eml.to_vec()).unwrap();
        assert!(!text.contains("UTSKICKF"), "a placeholder leaked");
        let (plain, html) = parts(eml);
        for needle in [greeting, footer] {
            assert!(
                plain.contains(needle),
                "text part lacks {needle:?}:\n{plain}"
            );
            assert!(html.contains(needle), "html part lacks {needle:?}:\n{html}");
        }
        assert!(plain.contains("https://lista.example.se/unsubscribe/abc123"));
        assert!(html.contains("href=\"https://lista.example.se/unsubscribe/abc123\""));
        assert!(plain.contains("\n-- \n"), "signature separator:\n{plain}");
    }

    #[test]
    fn golden_newsletter_sv() {
        let (list, p) = newsletter("december.md", NEWSLETTER_SV, "sv");
        let attrs = attributes();
        let eml = p
            .message(&list, &recipient("Åsa Öberg", &attrs), &envelope(), None)
            .unwrap();
        golden("newsletter-sv", &eml);
        let text = String::from_utf8(eml.clone()).unwrap();
        assert_eq!(
            headers(&text)[..12],
            [
                "From: =?utf-8?b?TG9rYWwgZmluYW5zaWVyaW5nIOKAkyBmw7ZyIGxhbmRzYnlnZGVucyB1?= =?utf-8?b?dHZlY2tsaW5n?= <lokal-finansiering@lista.example.se>"
                    .to_string(),
                "To: =?utf-8?b?w4VzYSDDlmJlcmc=?= <asa@example.org>".into(),
                "Reply-To: lokal-finansiering-reply+abc123@lista.example.se".into(),
                "Subject: Nyhetsbrev december =?utf-8?b?ZnLDpW4=?= Lokal finansiering =?utf-8?b?4oCTIGbDtnI=?= landsbygdens utveckling".into(),
                "Date: Tue, 01 Dec 2026 07:00:00 +0000".into(),
                "Message-ID: <utskick.lokal-finansiering.c12.r34@lista.example.se>".into(),
                "List-Id: Lokal finansiering =?utf-8?b?4oCTIGbDtnI=?= landsbygdens utveckling <lokal-finansiering.lista.example.se>".into(),
                "List-Unsubscribe: <https://lista.example.se/unsubscribe/abc123>, <mailto:lokal-finansiering-unsubscribe+abc123@lista.example.se>".into(),
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click".into(),
                "Precedence: bulk".into(),
                "Auto-Submitted: auto-generated".into(),
                "MIME-Version: 1.0".into(),
            ]
        );
        check_message(
            &eml,
            "Hej Åsa Öberg!",
            "Du får det här mejlet eftersom du prenumererar på",
        );
        let (plain, html) = parts(&eml);
        assert!(plain.contains("svara med ordet avsluta"), "{plain}");
        assert!(html.contains("svara med ordet avsluta"), "{html}");
        assert!(
            plain.contains("Träff i Jämtland den 12 december"),
            "{plain}"
        );
        assert!(html.contains("Handboken är klar – och vi ses i Östersund</span>"));
        let parsed = mail_parser::MessageParser::default().parse(&eml).unwrap();
        assert_eq!(
            parsed.subject().unwrap(),
            "Nyhetsbrev december från Lokal finansiering – för landsbygdens utveckling"
        );
        assert_eq!(parsed.attachment_count(), 0);
    }

    #[test]
    fn golden_newsletter_en() {
        let (list, p) = newsletter("december-en.md", NEWSLETTER_EN, "en");
        let attrs = attributes();
        let eml = p
            .message(&list, &recipient("Åsa Öberg", &attrs), &envelope(), None)
            .unwrap();
        golden("newsletter-en", &eml);
        check_message(
            &eml,
            "Hello Åsa Öberg,",
            "You are receiving this email because you subscribe to",
        );
        let (plain, html) = parts(&eml);
        assert!(plain.contains("reply with the word unsubscribe"));
        assert!(html.contains("reply with the word unsubscribe"));
        assert!(
            plain.contains("Greetings to everyone at Byalaget i Hede!"),
            "{plain}"
        );
        // Without the attribute the block and its blank lines go away.
        let none = BTreeMap::new();
        let plain = String::from_utf8(
            p.message(&list, &recipient("", &none), &envelope(), None)
                .unwrap(),
        )
        .unwrap();
        let (plain, html) = parts(plain.as_bytes());
        assert!(!plain.contains("Greetings"), "{plain}");
        assert!(!plain.contains("\n\n\n"), "{plain:?}");
        assert!(!html.contains("Greetings"));
        assert!(
            !html.contains("<p style=\"margin:0 0 16px 0;\"></p>"),
            "{html}"
        );
    }

    #[test]
    fn golden_announcement_sv_and_en() {
        let content = announcement_content();
        let attrs = attributes();
        for (lang, greeting, footer, subject, files) in [
            (
                "sv",
                "Hej Åsa Öberg!",
                "eller svara med ordet avsluta",
                "Nytt material: Handboken om lokala finansieringslösningar",
                "Bifogade filer",
            ),
            (
                "en",
                "Hello Åsa Öberg,",
                "or reply with the word unsubscribe",
                "New material: Handboken om lokala finansieringslösningar",
                "Attached files",
            ),
        ] {
            let list = list(lang);
            let p = Prepared::new(&content, &list, templates()).unwrap();
            let eml = p
                .message(&list, &recipient("Åsa Öberg", &attrs), &envelope(), None)
                .unwrap();
            golden(&format!("announcement-{lang}"), &eml);
            check_message(&eml, greeting, footer);
            let parsed = mail_parser::MessageParser::default().parse(&eml).unwrap();
            assert_eq!(parsed.subject().unwrap(), subject);
            assert_eq!(parsed.attachment_count(), 1);
            let attachment = parsed.attachment(0).unwrap();
            assert_eq!(
                attachment.attachment_name().unwrap(),
                "Handbok för lokal finansiering.pdf"
            );
            assert_eq!(attachment.content_type().unwrap().ctype(), "application");
            assert_eq!(attachment.content_type().unwrap().subtype(), Some("pdf"));
            assert_eq!(
                attachment.contents(),
                content.attachments[0].data.as_slice()
            );
            let (plain, html) = parts(&eml);
            assert!(
                plain.contains("Handbok för lokal finansiering.pdf (3 kB)"),
                "{plain}"
            );
            assert!(html.contains(files) && plain.contains(files));
            assert!(html.contains("href=\"https://lokalfinansiering.example.se/handbok\""));
            assert!(plain.contains("fem orter [1]"), "{plain}");
            assert!(plain.contains("[1] https://lokalfinansiering.example.se/orter"));
            let text = String::from_utf8(eml.clone()).unwrap();
            assert!(text.contains("Content-Type: multipart/mixed"), "{text}");
        }
    }

    #[test]
    fn user_values_cannot_reach_other_headers() {
        let (list, p) = newsletter(
            "x.md",
            "---\nsubject: Hej {{name}} i {{attributes.region}}\n---\nHej {{name}}!\n",
            "sv",
        );
        let attrs = BTreeMap::from([("region".to_string(), "Jämtland\r\nBcc: z@y".to_string())]);
        let eml = p
            .message(
                &list,
                &recipient("Eva\r\nBcc: x@y", &attrs),
                &envelope(),
                None,
            )
            .unwrap();
        let text = String::from_utf8(eml).unwrap();
        let headers = headers(&text);
        assert!(
            !headers
                .iter()
                .any(|h| h.to_ascii_lowercase().starts_with("bcc:")),
            "{headers:#?}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.to().unwrap().first().unwrap().name().unwrap(),
            "Eva Bcc: x@y"
        );
        assert_eq!(
            parsed.subject().unwrap(),
            "Hej Eva Bcc: x@y i Jämtland Bcc: z@y"
        );
        assert!(parsed.bcc().is_none());
    }

    #[test]
    fn names_are_escaped_in_html_and_raw_in_text() {
        let (list, p) = newsletter("x.md", "# Hej\n\nHej {{name}}!\n", "sv");
        let attrs = BTreeMap::new();
        let eml = p
            .message(
                &list,
                &recipient("<b>Eva</b> & \"Bo\"", &attrs),
                &envelope(),
                None,
            )
            .unwrap();
        let (plain, html) = parts(&eml);
        assert!(plain.contains("Hej <b>Eva</b> & \"Bo\"!"), "{plain}");
        assert!(
            html.contains("Hej &lt;b&gt;Eva&lt;/b&gt; &amp; &quot;Bo&quot;!"),
            "{html}"
        );
        assert!(!html.contains("<b>Eva"));
        assert_eq!(
            p.html(&list, &recipient("<script>", &attrs))
                .unwrap()
                .matches("<script>")
                .count(),
            0
        );
    }

    #[test]
    fn field_typos_and_bad_syntax_name_the_file_and_line() {
        let text = "# Rubrik\n\nHej!\n\nEtt stycke.\n\nVi ses, {{nmae}}.\n";
        let e = prepare_error("x.md", text);
        assert!(e.starts_with("x.md:7: unknown field `nmae`"), "{e}");
        // The line counts the front matter too.
        let e = prepare_error(
            "x.md",
            "---\nsubject: S\n---\nHej\n\n{{attributes.regoin}}\n",
        );
        assert!(
            e.starts_with("x.md:6: unknown field `attributes.regoin`"),
            "{e}"
        );
        // A typo inside a branch the sample data would not take is found too.
        let e = prepare_error("x.md", "# R\n\n{{#if name}}Hej {{nmae}}{{/if}}\n");
        assert!(e.starts_with("x.md:3: unknown field `nmae`"), "{e}");
        let e = parse_newsletter("x.md", "# R\n\nHej\n{{#if name}}\nHej {{name}}\n\nSlut\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.md:4: `{{#if name}}` is never closed with `{{/if}}`");
        let e = prepare_error("x.md", "# R\n\n{{#if name}}Hej{{/each}}\n");
        assert!(e.starts_with("x.md:3: "), "{e}");
        let e = prepare_error("x.md", "# R\n\nHej {{name\n");
        assert!(e.starts_with("x.md:3: "), "{e}");
        let e = prepare_error("x.md", "# R\n\nHej {{{name}}}\n");
        assert!(e.starts_with("x.md:3: ") && e.contains("unescaped"), "{e}");
        let e = prepare_error("x.md", "---\nsubject: Hej {{nmae}}\n---\nText\n");
        assert!(e.starts_with("x.md: subject: unknown field `nmae`"), "{e}");
        let e = parse_newsletter("x.md", "---\nsubject: Hej {{#if}}\n---\nText\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        // A broken layout override names its file.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sv/lokal-finansiering")).unwrap();
        let path = dir.path().join("sv/lokal-finansiering/newsletter.txt.hbs");
        std::fs::write(&path, "{{body}}\n\n{{unsubscribe_link}}\n").unwrap();
        let (content, _) = parse_newsletter("x.md", "# R\n").unwrap();
        let e = Prepared::new(&content, &list("sv"), dir.path()).unwrap_err();
        assert_eq!(e.source, path.display().to_string());
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn front_matter() {
        let (c, w) = parse_newsletter("a.md", "# Rubrik {{name}}\n\nText\n").unwrap();
        assert_eq!(
            (c.subject.as_str(), c.preheader.as_str()),
            ("Rubrik {{name}}", "")
        );
        assert!(w.is_empty());
        assert!(c.markdown.starts_with("# Rubrik"));

        let (c, w) = parse_newsletter(
            "b.md",
            "---\nsubject: \"Nyhetsbrev: december\"\npreheader: Handboken är klar\n---\n# Rubrik\n\nText\n",
        )
        .unwrap();
        assert_eq!(c.subject, "Nyhetsbrev: december");
        assert_eq!(c.preheader, "Handboken är klar");
        assert!(w.is_empty());
        assert_eq!(c.markdown.lines().position(|l| l == "# Rubrik"), Some(4));
        assert!(c.markdown.contains("# Rubrik"), "the heading stays");

        let (_, w) = parse_newsletter(
            "c.md",
            "---\r\nsubject: S\r\nwhere: region=Jämtland\r\nwhere: role=partner, organisation = Byalaget\r\n---\r\nText\r\n",
        )
        .unwrap();
        assert_eq!(
            w,
            [
                ("region".to_string(), "Jämtland".to_string()),
                ("role".into(), "partner".into()),
                ("organisation".into(), "Byalaget".into())
            ]
        );

        let e =
            parse_newsletter("d.md", "Bara text, ingen rubrik.\n\n## Underrubrik\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.md: needs a subject: front matter `subject:` or a `# heading`"
        );
        let e = parse_newsletter("e.md", "---\nsubjekt: S\n---\n# R\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("subjekt"), "{e}");
        let e = parse_newsletter("f.md", "---\nsubject: S\n# R\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        let e =
            parse_newsletter("g.md", "---\nsubject: S\nwhere: Jämtland\n---\n# R\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("key=value"), "{e}");
        let e = parse_newsletter("h.md", "---\nsubject: S\n---\n\n").unwrap_err();
        assert!(e.message.contains("no text"), "{e}");
    }

    #[test]
    fn attachments_get_their_types_and_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut total = 0;
        for (name, expected) in [
            ("handbok.pdf", "application/pdf"),
            (
                "presentation.pptx",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            ),
            ("karta.png", "image/png"),
            ("foto.JPG", "image/jpeg"),
            ("data.okand", "application/octet-stream"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, [1u8; 100]).unwrap();
            let a = read_attachment(&path, total, DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
            assert_eq!(a.content_type, expected, "{name}");
            assert_eq!(a.filename, name);
            assert_eq!(a.data.len(), 100);
            total += a.data.len();
        }
        let big = dir.path().join("film.mp4");
        std::fs::write(&big, vec![0u8; 3 * 1024 * 1024]).unwrap();
        let e = read_attachment(&big, 8 * 1024 * 1024, DEFAULT_MAX_ATTACHMENT_BYTES).unwrap_err();
        let e = e.to_string();
        assert!(e.starts_with(&big.display().to_string()), "{e}");
        assert!(
            e.contains("3 MB") && e.contains("10 MB") && e.contains("8 MB already"),
            "{e}"
        );
        assert!(e.contains("--link"), "{e}");
        let e = read_attachment(&dir.path().join("saknas.pdf"), 0, 10).unwrap_err();
        assert!(e.message.starts_with("cannot read"), "{e}");
        assert_eq!(size_text(2_516_582, Language::Sv), "2,4 MB");
        assert_eq!(size_text(2_516_582, Language::En), "2.4 MB");
        assert_eq!(size_text(340 * 1024, Language::Sv), "340 kB");
        assert_eq!(size_text(10, Language::Sv), "1 kB");
    }

    #[test]
    fn announcement_arguments_are_checked() {
        let e = announcement(" ", None, None, vec![]).unwrap_err();
        assert!(e.to_string().starts_with("--title: "), "{e}");
        let e = announcement("T", Some("ftp://x"), None, vec![]).unwrap_err();
        assert!(e.to_string().starts_with("--link: "), "{e}");
        let e = announcement("T", None, Some(("d.md", "Hej\n{{#if name}}\n")), vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.md:2: `{{#if name}}` is never closed with `{{/if}}`"
        );
        let c = announcement("T\r\nBcc: x", None, None, vec![]).unwrap();
        assert_eq!(c.title, "T Bcc: x");
        // Without description, link or attachments it still renders.
        let list = list("sv");
        let p = Prepared::new(&c, &list, templates()).unwrap();
        let attrs = BTreeMap::new();
        let html = p.html(&list, &recipient("", &attrs)).unwrap();
        assert!(
            html.contains("Hej!") && !html.contains("Bifogade"),
            "{html}"
        );
    }

    #[test]
    fn text_part_is_readable() {
        let md = "\
# Rubrik för {{name}}

Läs [handboken](https://ex.se/h) och [foldern](https://ex.se/f), igen
[handboken](https://ex.se/h). Eller <https://ex.se/direkt>.
Skriv till [oss](mailto:info@ex.se) eller [info@ex.se](mailto:info@ex.se).

![Karta](https://ex.se/karta.png)

*kursiv*, **fet**, `kod` och ~~struken~~.

1. ett
2. två
   - a
   - b

```
rad 1
rad 2
```

> citat
> rad två

---

| A | B |
|---|---|
| 1 | 2 |
";
        let (list, p) = newsletter("t.md", md, "sv");
        let attrs = BTreeMap::new();
        let rendered = p
            .render(&list, &recipient("Eva", &attrs))
            .map_err(|(_, e)| e)
            .unwrap();
        let text = rendered.text;
        let expected_start = "\
Rubrik för Eva
==============

Läs handboken [1] och foldern [2], igen
handboken [1]. Eller https://ex.se/direkt.
Skriv till oss [3] eller info@ex.se.

Karta [4]

kursiv, fet, kod och struken.

1. ett
2. två
   - a
   - b

    rad 1
    rad 2

> citat
> rad två

* * *

A | B
1 | 2

[1] https://ex.se/h
[2] https://ex.se/f
[3] mailto:info@ex.se
[4] https://ex.se/karta.png

-- 
";
        assert!(text.starts_with(expected_start), "{text}");
        assert_eq!(rendered.subject, "Rubrik för Eva");
    }

    #[test]
    fn fields_survive_markdown_in_links_and_code() {
        let md = "# R\n\n[Min sida](https://ex.se/p?e={{email}}) och `{{name}}` och \\{{name}} och &#123;&#123;name}}.\n";
        let (list, p) = newsletter("l.md", md, "sv");
        let attrs = BTreeMap::new();
        let r = p
            .render(&list, &recipient("Eva", &attrs))
            .map_err(|(_, e)| e)
            .unwrap();
        assert!(
            r.html
                .contains("href=\"https://ex.se/p?e&#x3D;asa@example.org\"")
                || r.html
                    .contains("href=\"https://ex.se/p?e=asa@example.org\""),
            "{}",
            r.html
        );
        assert!(
            r.text.contains("[1] https://ex.se/p?e=asa@example.org"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("`Eva`") || r.text.contains(" Eva och"),
            "{}",
            r.text
        );
        assert!(r.text.contains("och {{name}} och {{name}}."), "{}", r.text);
        assert!(r.html.contains("och {{name}} och {{name}}."), "{}", r.html);
    }

    #[test]
    fn dkim_covers_the_unsubscribe_headers() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("dkim.key");
        use data_encoding::BASE64;
        std::fs::write(&key, BASE64.encode(&[7u8; 32])).unwrap();
        let dkim = system::load_dkim("s1", "lista.example.se", &key).unwrap();
        let (list, p) = newsletter("x.md", "# R\n\nHej {{name}}\n", "sv");
        let attrs = BTreeMap::new();
        let eml = p
            .message(&list, &recipient("Eva", &attrs), &envelope(), Some(&dkim))
            .unwrap();
        let text = String::from_utf8(eml).unwrap();
        let sig = headers(&text)
            .into_iter()
            .find(|h| h.starts_with("DKIM-Signature:"))
            .expect("signed");
        assert!(
            sig.contains("list-unsubscribe:list-unsubscribe-post")
                || (sig.contains("list-unsubscribe") && sig.contains("list-unsubscribe-post")),
            "{sig}"
        );
    }

    #[test]
    fn prepared_can_be_shared_between_workers() {
        fn shared<T: Send + Sync>() {}
        shared::<Prepared>();
    }
}
