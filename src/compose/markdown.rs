//! Markdown to e-mail HTML: Handlebars fields protected from the Markdown
//! parser, inline styles that survive mail clients, the first heading as a
//! subject. Pure.

use crate::address;
use crate::compose::error::AuthoringError;
use crate::compose::plaintext::TextWriter;
use crate::compose::sanitize;
use handlebars::Handlebars;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The text of the first `# heading`, fields intact.
pub(crate) fn first_heading(
    source: &str,
    markdown: &str,
) -> Result<Option<String>, AuthoringError> {
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

/// Compiles `text` alone, for a syntax check where the line is known.
pub(crate) fn check_syntax(text: &str) -> Result<(), String> {
    Handlebars::new()
        .register_template_string("t", text)
        .map_err(|e| one_line(&e.reason().to_string()))
}

/// Markdown with every Handlebars expression swapped for an inert word, so
/// the Markdown converter cannot escape, percent-encode or split it.
pub(crate) struct Protected {
    pub(crate) text: String,
    pub(crate) exprs: Vec<String>,
}

/// A placeholder: letters and digits only, which Markdown leaves alone
/// everywhere (text, URLs, emphasis).
pub(crate) fn placeholder(n: usize) -> String {
    format!("UTSKICKF{n}X")
}

pub(crate) fn protect(source: &str, markdown: &str) -> Result<Protected, AuthoringError> {
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
            // Every spelling of "unescaped": `{{{x}}}`, with whitespace
            // control `{{~{x}~}}`, and `{{&x}}`.
            let opening = expr[2..].trim_start_matches('~').trim_start();
            if close == "}}}" || opening.starts_with(['{', '&']) {
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
    pub(crate) fn restore(&self, converted: &str) -> String {
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
pub(crate) fn is_block(expr: &str) -> bool {
    let inner = expr
        .trim_start_matches('{')
        .trim_start_matches('~')
        .trim_start();
    inner.starts_with(['#', '/', '^']) || inner.starts_with("else")
}

pub(crate) fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

/// Inline styles for what the Markdown converter emits: many mail clients
/// drop `<style>` blocks, so each element carries its own.
pub(crate) const BODY_STYLES: &[(&str, &str)] = &[
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

/// The width of the layouts' text column: their 600 px container less
/// 28 px of padding on each side. An image gets it as its `width`
/// attribute, which Outlook for Windows obeys where it ignores CSS.
pub(crate) const IMAGE_WIDTH: u32 = 544;

/// Every `<img>` gets a `width` (Outlook for Windows shows an image at its
/// natural size otherwise, however wide) and a style that lets the others
/// scale it down on a narrow screen. A width the author gave in raw HTML
/// stays when it fits the column; a wider one becomes the column's, and
/// its `height` goes so Outlook does not stretch the picture.
pub(crate) fn size_images(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(at) = rest.find("<img ") {
        out.push_str(&rest[..at]);
        // The sanitiser quotes every attribute with `"` and escapes `>`
        // inside them, so the first `>` ends the tag.
        let end = rest[at..].find('>').map_or(rest.len(), |e| at + e + 1);
        let attributes = &rest[at + "<img ".len()..end];
        let given = attribute(attributes, "width").and_then(|w| w.parse::<u32>().ok());
        let attributes = match given {
            Some(w) if w > 0 && w <= IMAGE_WIDTH => attributes.to_string(),
            _ => without(&without(attributes, "width"), "height"),
        };
        let width = match given {
            Some(w) if w > 0 && w <= IMAGE_WIDTH => String::new(),
            _ => format!("width=\"{IMAGE_WIDTH}\" "),
        };
        out.push_str(&format!(
            "<img {width}style=\"max-width:100%;height:auto;border:0;\" {attributes}"
        ));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The value of `name="…"` among a tag's attributes, as html5ever writes
/// them (` name="value"`, double quotes).
fn attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = attributes[from..].find(&key) {
        let at = from + i;
        if at == 0 || attributes.as_bytes()[at - 1] == b' ' {
            let value = &attributes[at + key.len()..];
            return value.find('"').map(|e| &value[..e]);
        }
        from = at + key.len();
    }
    None
}

/// `attributes` without `name="…"`.
fn without(attributes: &str, name: &str) -> String {
    match attribute(attributes, name) {
        Some(value) => {
            let whole = format!("{name}=\"{value}\"");
            let at = attributes
                .match_indices(&whole)
                .map(|(i, _)| i)
                .find(|&i| i == 0 || attributes.as_bytes()[i - 1] == b' ')
                .unwrap_or(0);
            let after = attributes[at + whole.len()..].trim_start_matches(' ');
            format!("{}{after}", &attributes[..at])
        }
        None => attributes.to_string(),
    }
}

/// A field that renders empty takes the space before it along when
/// punctuation follows: "Hej {{first_name}}!" reads "Hej!" for a reader
/// without a name (and in the archive), not "Hej !". Rewrites
/// ` {{x}}!` as `{{#if x}} {{/if}}{{x}}!`; the field itself is still
/// rendered, so strict mode still refuses a misspelt one.
pub(crate) fn drop_space_before_empty(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(" {{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let field = after.find("}}").and_then(|e| {
            let path = after[2..e].trim();
            let simple = !path.is_empty()
                && path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                && !matches!(path, "else" | "this");
            let punctuated = after[e + 2..].starts_with(['!', ',', '.', '?', ':', ';']);
            (simple && punctuated).then_some((path, e + 2))
        });
        match field {
            Some((path, len)) => {
                out.push_str(&format!("{{{{#if {path}}}}} {{{{/if}}}}{}", &after[..len]));
                rest = &after[len..];
            }
            None => {
                out.push_str(" {{");
                rest = &after[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Markdown → (HTML body, text body, text footnotes), each a Handlebars
/// template with the author's fields back in place.
pub(crate) fn convert(protected: &Protected) -> (String, String, String) {
    let mut raw = String::new();
    // A task list's checkbox would be an <input>, which the sanitiser
    // drops (and mail clients do not show): a ballot box instead. A line
    // break in the source is one in the mail, as in the text part: a
    // signature of three lines stays three lines.
    let events = Parser::new_ext(&protected.text, options()).map(|e| match e {
        Event::TaskListMarker(done) => Event::Text(if done { "☑ " } else { "☐ " }.into()),
        Event::SoftBreak => Event::HardBreak,
        e => e,
    });
    pulldown_cmark::html::push_html(&mut raw, events);
    // The author's raw HTML and link targets are filtered here, once, for
    // the mail, the archive and the feed alike; the styles below are ours.
    let mut html = sanitize::html(&raw);
    for (plain, styled) in BODY_STYLES {
        html = html.replace(plain, styled);
    }
    html = size_images(&html);
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

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html_of(markdown: &str) -> String {
        convert(&protect("t.md", markdown).unwrap()).0
    }

    fn render(template: &str, data: serde_json::Value) -> String {
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        h.register_template_string("t", drop_space_before_empty(template))
            .unwrap();
        h.render("t", &data).unwrap()
    }

    /// Issue 18: a signature of three lines became one line in the HTML
    /// part (pulldown-cmark's soft breaks are spaces), while the text part
    /// kept them.
    #[test]
    fn a_line_break_in_the_source_is_one_in_the_html() {
        let html = html_of("Text.\n\nHälsningar\nKarin Åström\nProjektledare\n");
        assert!(
            html.contains("Hälsningar<br />\nKarin Åström<br />\nProjektledare</p>"),
            "{html}"
        );
        let (_, text, _) = convert(&protect("t.md", "Hälsningar\nKarin\n").unwrap());
        assert_eq!(text, "Hälsningar\nKarin");
    }

    /// Outlook for Windows shows an image without `width` at its natural
    /// size, however wide.
    #[test]
    fn every_image_has_a_width_that_fits_the_column() {
        let html = html_of("![Karta](https://ex.se/karta.png)\n");
        assert!(
            html.contains(r#"<img width="544" style="max-width:100%;height:auto;border:0;" src="https://ex.se/karta.png" alt="Karta" />"#),
            "{html}"
        );
        // The author's own width stays when it fits; a wider one (and the
        // height that goes with it) gives way to the column's.
        let html = html_of("<img src=\"https://ex.se/a.png\" width=\"120\" height=\"40\">\n\n<img src=\"https://ex.se/b.png\" width=\"1200\" height=\"800\" alt=\"B\">\n");
        assert!(
            html.contains(r#"src="https://ex.se/a.png" width="120" height="40""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<img width="544" style="max-width:100%;height:auto;border:0;" src="https://ex.se/b.png" alt="B""#),
            "{html}"
        );
        assert_eq!(html.matches("<img ").count(), 2);
        assert_eq!(html.matches(" width=").count(), 2, "{html}");
        assert!(!html.contains("800"), "{html}");
    }

    /// "Hej {{first_name}}!" without a name read "Hej !".
    #[test]
    fn an_empty_field_takes_the_space_before_it_along() {
        let t =
            "Hej {{first_name}}! Hello {{ name }}, {{#if x}}a{{/if}} \\{{name}}! och {{name}} här.";
        assert_eq!(
            drop_space_before_empty(t),
            "Hej{{#if first_name}} {{/if}}{{first_name}}! Hello{{#if name}} {{/if}}{{ name }}, {{#if x}}a{{/if}} \\{{name}}! och {{name}} här."
        );
        let data = |name: &str| serde_json::json!({"first_name": name, "name": name, "attributes": {"region": ""}});
        assert_eq!(render("Hej {{first_name}}!", data("")), "Hej!");
        assert_eq!(render("Hej {{first_name}}!", data("Karin")), "Hej Karin!");
        assert_eq!(render("Hello {{first_name}},", data("")), "Hello,");
        assert_eq!(
            render("Träff i {{attributes.region}}.", data("")),
            "Träff i."
        );
        // The field itself is still rendered, so strict mode still refuses
        // a misspelt one.
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        h.register_template_string("t", drop_space_before_empty("Hej {{nmae}}!"))
            .unwrap();
        assert!(h.render("t", &data("Karin")).is_err());
    }
}
