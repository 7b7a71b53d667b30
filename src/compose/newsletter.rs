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

use std::path::Path;

use crate::address;
use crate::compose::error::AuthoringError;
use crate::compose::markdown::{check_syntax, first_heading, protect};
use crate::daemon::lists::Language;
use crate::store::{Attachment, Content, Kind};

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
            "title",
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
                    "link",
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
            "is {}, and attachments may total at most {} per mail{already}; put big files on the web and send a link instead",
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

/// A file uploaded to attach (the workspace's form), held to the same
/// total as [`read_attachment`]; the type from its name.
pub fn uploaded_attachment(
    name: &str,
    data: Vec<u8>,
    total_so_far: usize,
    max_total: usize,
) -> Result<Attachment, AuthoringError> {
    let filename = attachment_name(name);
    if total_so_far.saturating_add(data.len()) > max_total {
        return Err(AuthoringError::new(
            &filename,
            None,
            format!(
                "is {}, and attachments may total at most {} per mail; put big files on the web and send a link instead",
                size_text(data.len(), Language::En),
                size_text(max_total, Language::En),
            ),
        ));
    }
    Ok(Attachment {
        content_type: mime_guess::from_path(&filename)
            .first_or_octet_stream()
            .essence_str()
            .to_string(),
        filename,
        data,
    })
}

/// An attachment's file name, safe for a header parameter: the last path
/// component, no control characters, quotes or backslashes.
pub(crate) fn attachment_name(name: &str) -> String {
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

/// "340 kB", "2,4 MB" (Swedish decimal comma), "10 MB".
pub(crate) fn size_text(bytes: usize, lang: Language) -> String {
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

pub(crate) fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::mime::{Envelope, Prepared, Recipient};
    use crate::compose::system;
    use crate::daemon::lists::List;
    use chrono::TimeZone;
    use mail_parser::MimeHeaders;
    use std::collections::BTreeMap;

    const NEWSLETTER_SV: &str = "\
---
subject: Nyhetsbrev december från {{list.name}}
preheader: Handboken är klar – och vi ses i Östersund
where: region=Jämtland
---
# Nyhetsbrev december

Hej {{first_name}}!

Nu är **handboken** om lokala finansieringslösningar klar. Läs den i [handboken](https://lokalfinansiering.example.se/handbok) eller ladda ned [foldern](https://lokalfinansiering.example.se/folder.pdf).

## Det här händer

- Träff i {{#if attributes.region}}{{attributes.region}}{{else}}din region{{/if}} den 12 december
- Webbinarium om *bygdepeng* och andelsägande:
  1. anmäl dig senast 5 december
  2. titta på [presentationen](https://lokalfinansiering.example.se/presentation)

> Lokal finansiering är pengar från bygden, för bygden.

![Karta över bygderna](https://lokalfinansiering.example.se/karta.png)

Frågor? Svara på det här mejlet eller skriv till <projektledare@example.se>.

Hälsningar
Karin Åström
Projektledare
";

    const NEWSLETTER_EN: &str = "\
---
subject: December newsletter from {{list.name}}
preheader: The handbook is ready
---
# December newsletter

Hello {{first_name}},

The **handbook** on local financing is ready. Read it in [the handbook](https://lokalfinansiering.example.se/handbook).

{{#if attributes.organisation}}
Greetings to everyone at {{attributes.organisation}}!
{{/if}}

![A map of the villages](https://lokalfinansiering.example.se/map.png)

Questions? Just reply to this email.

Best regards,
Karin Åström
Project lead
";

    fn list(lang: &str) -> List {
        let config = crate::daemon::config::Config {
            domain: "lista.example.se".into(),
            base_url: "https://lista.example.se".into(),
            contact: "kontakt@example.se".into(),
            ..Default::default()
        };
        let mut list = List::parse(
            "lokal-finansiering",
            &format!(
                "name = \"Lokal finansiering – för landsbygdens utveckling\"\n\
                 address = \"lokal-finansiering\"\nlanguage = \"{lang}\"\n\
                 description = \"Nyheter om lokala finansieringslösningar.\"\n\
                 attributes = [\"organisation\", \"region\"]\n"
            ),
        )
        .unwrap();
        list.resolve_sender(&config);
        list
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
            archive_url: "https://lista.example.se/archive/lokal-finansiering/12",
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
                "Handboken visar hur bygder samlar in **eget kapital**, med exempel från [fem orter](https://lokalfinansiering.example.se/orter).\n",
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
            "Hej Åsa!",
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
            "Hello Åsa,",
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
                "Hej Åsa!",
                "eller svara med ordet avsluta",
                "Nytt material: Handboken om lokala finansieringslösningar",
                "Bifogade filer",
            ),
            (
                "en",
                "Hello Åsa,",
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
        assert!(e.contains("send a link instead"), "{e}");
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
        assert!(e.to_string().starts_with("title: "), "{e}");
        let e = announcement("T", Some("ftp://x"), None, vec![]).unwrap_err();
        assert!(e.to_string().starts_with("link: "), "{e}");
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

    /// The four shipped layouts, rendered for one reader.
    fn all_layouts(name: &str, public: bool) -> Vec<(String, String, String)> {
        let attrs = attributes();
        let mut out = Vec::new();
        for lang in ["sv", "en"] {
            let mut list = list(lang);
            list.public = public;
            let markdown = if lang == "sv" {
                NEWSLETTER_SV
            } else {
                NEWSLETTER_EN
            };
            let (newsletter, _) = parse_newsletter("d.md", markdown).unwrap();
            for content in [newsletter, announcement_content()] {
                let p = Prepared::new(&content, &list, templates()).unwrap();
                let eml = p
                    .message(&list, &recipient(name, &attrs), &envelope(), None)
                    .unwrap();
                let (plain, html) = parts(&eml);
                out.push((format!("{lang} {:?}", content.kind), plain, html));
            }
        }
        out
    }

    /// Issue 18: Outlook for Windows ignored `max-width`, dropped the
    /// button's padding on `<a>` and showed images at their natural size;
    /// `word-break: break-all` split addresses mid-word on phones; there
    /// was no dark mode.
    #[test]
    fn layouts_hold_in_outlook_gmail_and_apple_mail() {
        for (which, _, html) in all_layouts("Åsa Öberg", true) {
            let open = html
                .find(r#"<!--[if mso]><table role="presentation" width="600""#)
                .unwrap_or_else(|| panic!("{which}: no MSO wrapper"));
            let card = html.find("max-width:600px").unwrap();
            let close = html
                .find("<!--[if mso]></td></tr></table><![endif]-->")
                .unwrap_or_else(|| panic!("{which}: MSO wrapper not closed"));
            assert!(open < card && card < close, "{which}");
            assert!(!html.contains("break-all"), "{which}");
            let images = html.split("<img ").skip(1).collect::<Vec<_>>();
            assert!(
                images.len() == 1 || which.ends_with("Announcement"),
                "{which}"
            );
            for img in images {
                let tag = &img[..img.find('>').unwrap()];
                assert!(tag.contains("width=\"544\""), "{which}: {tag}");
            }
            for a in html.split("<a ").skip(1) {
                let tag = &a[..a.find('>').unwrap()];
                assert!(!tag.contains("padding"), "{which}: {tag}");
            }
            assert!(html.contains(r#"<meta name="color-scheme" content="light dark">"#));
            assert!(html.contains(r#"<meta name="supported-color-schemes" content="light dark">"#));
            assert!(
                html.contains("@media (prefers-color-scheme: dark)"),
                "{which}"
            );
            if which.ends_with("Announcement") {
                assert!(
                    html.contains(r##"<td class="u-button" align="center" bgcolor="#2f6b3a" style="padding:13px 26px;"##),
                    "{which}: {html}"
                );
            }
        }
        // Not in the shipped files either, nor in the Markdown's styles.
        for lang in ["sv", "en"] {
            for name in ["newsletter.html", "announcement.html"] {
                let (text, _) =
                    crate::compose::mime::layout(templates(), &list(lang), name).unwrap();
                assert!(!text.contains("break-all"), "{lang}/{name}");
            }
        }
        assert!(crate::compose::markdown::BODY_STYLES
            .iter()
            .all(|(_, styled)| !styled.contains("break-all")));
    }

    /// Issue 18: the footer did not say who sends the mail or how to reach
    /// them; the greeting used the whole name; "Hälsningar," had a comma.
    #[test]
    fn the_footer_names_the_sender_and_the_greeting_the_reader() {
        for (which, plain, html) in all_layouts("Åsa Öberg", true) {
            let org = "Lokal finansiering – för landsbygdens utveckling";
            assert!(
                html.contains(&format!(
                    "<strong>{org}</strong> · <a href=\"mailto:kontakt@example.se\""
                )),
                "{which}: {html}"
            );
            assert!(
                plain.contains(&format!("{org} · kontakt@example.se")),
                "{which}: {plain}"
            );
            assert!(
                html.contains("href=\"https://lista.example.se/privacy\""),
                "{which}"
            );
            assert!(
                plain.contains("\nhttps://lista.example.se/privacy\n"),
                "{which}"
            );
            let greeting = if which.starts_with("sv") {
                "Hej Åsa!"
            } else {
                "Hello Åsa,"
            };
            assert!(
                plain.contains(greeting) && html.contains(greeting),
                "{which}"
            );
            assert!(
                !plain.contains("Öberg") && !html.contains("Öberg"),
                "{which}"
            );
            assert!(
                !plain.contains("Hälsningar,") && !html.contains("Hälsningar,"),
                "{which}"
            );
        }
        // A URL as the contact is a link; other text is shown as written.
        let mut list = list("en");
        list.sender.contact = "https://example.se/kontakt".into();
        let p = Prepared::new(&announcement_content(), &list, templates()).unwrap();
        let html = p.html(&list, &recipient("", &attributes())).unwrap();
        assert!(
            html.contains(r#"<a href="https://example.se/kontakt""#),
            "{html}"
        );
        list.sender.contact = "Karin på kontoret".into();
        let html = p.html(&list, &recipient("", &attributes())).unwrap();
        assert!(html.contains("</strong> · Karin på kontoret</p>"), "{html}");
    }

    /// "Hej {{first_name}}!" for a reader without a name read "Hej !".
    #[test]
    fn a_greeting_without_a_name_reads_naturally() {
        for (which, plain, html) in all_layouts("", true) {
            let greeting = if which.starts_with("sv") {
                "Hej!"
            } else {
                "Hello,"
            };
            assert!(
                plain.contains(greeting) && html.contains(greeting),
                "{which}"
            );
            for broken in ["Hej !", "Hello ,"] {
                assert!(!plain.contains(broken) && !html.contains(broken), "{which}");
            }
        }
    }

    /// Issue 18: no way to read a newsletter in a browser.
    #[test]
    fn view_in_browser_links_to_the_archive_only_for_a_public_list() {
        let url = "https://lista.example.se/archive/lokal-finansiering/12";
        for (which, plain, html) in all_layouts("Åsa", true) {
            let words = if which.starts_with("sv") {
                "Visa i webbläsaren"
            } else {
                "View in browser"
            };
            assert!(
                html.contains(&format!("<a href=\"{url}\" style=\"color:#2f6b3a;text-decoration:underline;\">{words}</a>")),
                "{which}: {html}"
            );
            assert!(
                plain.contains(&format!("{words}:\n{url}\n")),
                "{which}: {plain}"
            );
            // Before the card, where a reader looks when the mail renders badly.
            assert!(html.find(url).unwrap() < html.find("max-width:600px").unwrap());
        }
        for (which, plain, html) in all_layouts("Åsa", false) {
            for text in [&plain, &html] {
                assert!(!text.contains("/archive/"), "{which}: {text}");
                assert!(
                    !text.contains("Visa i webbläsaren") && !text.contains("View in browser"),
                    "{which}"
                );
            }
        }
    }

    /// Issue 18: attachments had only RFC 2231 continuations (older
    /// Outlook showed "ATT00001"), and an ASCII-looking PDF went
    /// 7bit / quoted-printable.
    #[test]
    fn attachments_are_named_for_every_client_and_sent_as_base64() {
        let list = list("sv");
        let p = Prepared::new(&announcement_content(), &list, templates()).unwrap();
        let eml = p
            .message(&list, &recipient("Åsa", &attributes()), &envelope(), None)
            .unwrap();
        let text = String::from_utf8(eml.clone()).unwrap();
        let part = &text[text.find("Content-Type: application/pdf").unwrap()..];
        let head = &part[..part.find("\r\n\r\n").unwrap()];
        assert_eq!(
            head,
            "Content-Type: application/pdf;\r\n\
             \x20name*=utf-8''Handbok%20f%C3%B6r%20lokal%20finansiering.pdf;\r\n\
             \x20name=\"Handbok for lokal finansiering.pdf\"\r\n\
             Content-Disposition: attachment;\r\n\
             \x20filename*=utf-8''Handbok%20f%C3%B6r%20lokal%20finansiering.pdf;\r\n\
             \x20filename=\"Handbok for lokal finansiering.pdf\"\r\n\
             Content-Transfer-Encoding: base64"
        );
        let parsed = mail_parser::MessageParser::default().parse(&eml).unwrap();
        let a = parsed.attachment(0).unwrap();
        assert_eq!(
            a.attachment_name(),
            Some("Handbok för lokal finansiering.pdf")
        );
        assert_eq!(
            a.content_type().unwrap().attribute("name"),
            Some("Handbok för lokal finansiering.pdf")
        );
        assert_eq!(
            a.contents(),
            announcement_content().attachments[0].data.as_slice()
        );
        // A plain name is written once, quoted.
        let mut content = announcement_content();
        content.attachments[0].filename = "handbok-2026.pdf".into();
        let p = Prepared::new(&content, &list, templates()).unwrap();
        let eml = p
            .message(&list, &recipient("Åsa", &attributes()), &envelope(), None)
            .unwrap();
        let text = String::from_utf8(eml.clone()).unwrap();
        assert!(text.contains("Content-Type: application/pdf;\r\n name=\"handbok-2026.pdf\"\r\n"));
        assert!(
            text.contains("Content-Disposition: attachment;\r\n filename=\"handbok-2026.pdf\"\r\n")
        );
        let parsed = mail_parser::MessageParser::default().parse(&eml).unwrap();
        assert_eq!(
            parsed.attachment(0).unwrap().attachment_name(),
            Some("handbok-2026.pdf")
        );
    }

    #[test]
    fn prepared_can_be_shared_between_workers() {
        fn shared<T: Send + Sync>() {}
        shared::<Prepared>();
    }
}
