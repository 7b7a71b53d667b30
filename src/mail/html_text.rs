//! The one HTML-to-text converter: for replies, bounces, posts by mail and
//! pages that quote mail. Pure; not a full HTML parser, it reads tags and
//! entities, which is all that mail HTML needs for reading.

// ---------------------------------------------------------------------------
// HTML to text
// ---------------------------------------------------------------------------

/// HTML to readable text: block elements become line breaks (paragraphs and headings a blank line), `<br>` a newline, entities are decoded, `<blockquote>` content is marked with "> " per line (so the quote finder sees it), and `<style>`, `<script>`, `<head>` and comments are dropped.
///
/// Whitespace is collapsed as a browser would, except inside `<pre>`; list
/// items get "- " or "1. ", table cells are separated by a space, `<hr>`
/// becomes "---", and a link whose text is not its http(s) address is
/// followed by the address in parentheses. Not a full HTML parser: it reads
/// tags and entities, which is all that mail HTML needs for reading.
pub fn html_to_text(html: &str) -> String {
    let mut out = TextOut::default();
    let mut rest = html;
    // The element whose content is being dropped (style, script, head, ...).
    let mut skipping: Option<String> = None;
    let mut lists: Vec<Option<u32>> = Vec::new();
    let mut link: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        if skipping.is_none() {
            out.text(&rest[..lt]);
        }
        let at = &rest[lt..];
        if let Some(comment) = at.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |e| &comment[e + 3..]);
            continue;
        }
        if at.starts_with("<!") || at.starts_with("<?") {
            rest = at.find('>').map_or("", |e| &at[e + 1..]);
            continue;
        }
        let Some(tag) = Tag::parse(at) else {
            // A '<' that opens no tag ("a < b" written carelessly) is text.
            if skipping.is_none() {
                out.text("<");
            }
            rest = &at[1..];
            continue;
        };
        rest = &at[tag.len..];
        if let Some(name) = &skipping {
            // <head> is often left unclosed by hand-written mail: <body> ends it.
            let ends = (tag.closing && tag.name == *name) || (name == "head" && tag.name == "body");
            if ends {
                skipping = None;
            }
            continue;
        }
        let name = tag.name.as_str();
        match name {
            "style" | "script" | "head" | "title" | "template" | "xml"
                if !tag.closing && !tag.self_closing =>
            {
                skipping = Some(tag.name.clone());
            }
            "br" => out.hard_break(),
            "hr" => {
                out.soft_break();
                out.text("---");
                out.soft_break();
            }
            // Outlook writes every line as <p class=MsoNormal> with no margin,
            // and blank lines as such a paragraph holding &nbsp;; so only an
            // opening <p> of another class leaves a blank line.
            "p" if tag.closing || tag.attr("class").is_some_and(|c| c.contains("MsoNormal")) => {
                out.soft_break()
            }
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" => out.paragraph(),
            "ul" | "ol" => {
                if tag.closing {
                    lists.pop();
                } else {
                    lists.push((name == "ol").then_some(0));
                }
                if lists.is_empty() {
                    out.paragraph();
                } else {
                    out.soft_break();
                }
            }
            "li" => {
                out.soft_break();
                if !tag.closing {
                    let marker = match lists.last_mut() {
                        Some(Some(n)) => {
                            *n += 1;
                            format!("{n}. ")
                        }
                        _ => "- ".to_string(),
                    };
                    out.raw(&format!(
                        "{}{marker}",
                        "  ".repeat(lists.len().saturating_sub(1))
                    ));
                }
            }
            "blockquote" => {
                out.soft_break();
                if tag.closing {
                    out.depth = out.depth.saturating_sub(1);
                } else {
                    out.depth += 1;
                }
            }
            "pre" => {
                out.soft_break();
                if tag.closing {
                    out.pre = out.pre.saturating_sub(1);
                } else {
                    out.pre += 1;
                }
            }
            "td" | "th" if !tag.closing => out.space(),
            "a" => {
                if tag.closing {
                    if let Some(href) = link.take() {
                        let text = out.capture.take().unwrap_or_default();
                        if text.trim() != href && !text.trim().is_empty() {
                            out.text(&format!(" ({href})"));
                        }
                    }
                } else {
                    link = tag
                        .attr("href")
                        .filter(|h| h.starts_with("http://") || h.starts_with("https://"));
                    out.capture = link.as_ref().map(|_| String::new());
                }
            }
            "div" | "tr" | "dl" | "dt" | "dd" | "section" | "article" | "header" | "footer"
            | "nav" | "aside" | "main" | "address" | "center" | "form" | "fieldset" | "figure"
            | "figcaption" | "details" | "summary" | "caption" | "body" | "html" => {
                out.soft_break()
            }
            _ => {}
        }
    }
    if skipping.is_none() {
        out.text(rest);
    }
    out.finish()
}

/// One start or end tag, as far as the converter needs it.
pub(crate) struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    attrs: String,
    /// Bytes from '<' to '>' inclusive.
    len: usize,
}

impl Tag {
    /// Reads the tag at the start of `s` (which starts with '<'); `None`
    /// when no tag name follows.
    fn parse(s: &str) -> Option<Tag> {
        let body = &s[1..];
        let closing = body.starts_with('/');
        let body = if closing { &body[1..] } else { body };
        let name_len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-'))
            .unwrap_or(body.len());
        if name_len == 0 || !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        // Find the closing '>' outside quoted attribute values.
        let mut quote = None;
        let mut end = None;
        for (i, c) in body.char_indices().skip(name_len) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '>') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        // An unterminated tag swallows the rest, as browsers do.
        let end = end.unwrap_or(body.len());
        let attrs = &body[name_len..end];
        Some(Tag {
            name: body[..name_len].to_ascii_lowercase(),
            closing,
            self_closing: attrs.trim_end().ends_with('/'),
            attrs: attrs.to_string(),
            len: 1 + usize::from(closing) + (end + 1).min(body.len()),
        })
    }

    /// The decoded value of attribute `name`, if present.
    fn attr(&self, name: &str) -> Option<String> {
        let lower = self.attrs.to_ascii_lowercase();
        let mut from = 0;
        while let Some(pos) = lower[from..].find(name) {
            let at = from + pos;
            from = at + name.len();
            let before_ok = lower[..at].ends_with(|c: char| c.is_whitespace());
            let after = lower[from..].trim_start();
            if !before_ok || !after.starts_with('=') {
                continue;
            }
            let value_at = self.attrs.len() - after.len() + 1;
            let value = self.attrs[value_at..].trim_start();
            let raw = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
                _ => value
                    .split(|c: char| c.is_whitespace() || c == '>')
                    .next()
                    .unwrap_or_default(),
            };
            return Some(decode_entities(raw).trim().to_string());
        }
        None
    }
}

/// The text being built by [`html_to_text`], line by line.
#[derive(Default)]
pub(crate) struct TextOut {
    lines: Vec<String>,
    cur: String,
    /// Blockquote depth at the first character of `cur`.
    cur_depth: Option<usize>,
    depth: usize,
    pre: usize,
    space: bool,
    /// Link text collected while inside an `<a href>`.
    capture: Option<String>,
}

impl TextOut {
    /// Text content (entities still encoded).
    fn text(&mut self, s: &str) {
        let decoded = decode_entities(s);
        for c in decoded.chars() {
            if is_invisible(c) {
                continue;
            }
            if self.pre > 0 {
                if c == '\n' {
                    self.hard_break();
                } else {
                    self.push(if c == '\u{a0}' { ' ' } else { c });
                }
            } else if c.is_whitespace() && c != '\u{a0}' {
                self.space = true;
            } else {
                if self.space && !self.cur.is_empty() {
                    self.push(' ');
                }
                self.space = false;
                // A no-break space is not collapsed, as in a browser: Outlook's
                // blank lines are paragraphs holding one.
                self.push(if c == '\u{a0}' { ' ' } else { c });
            }
        }
    }

    /// Text put in as it is (list markers, whose trailing space must stay).
    fn raw(&mut self, s: &str) {
        s.chars().for_each(|c| self.push(c));
        self.space = false;
    }

    fn push(&mut self, c: char) {
        self.cur_depth.get_or_insert(self.depth);
        self.cur.push(c);
        if let Some(cap) = &mut self.capture {
            cap.push(c);
        }
    }

    fn space(&mut self) {
        self.space = true;
    }

    /// Ends the current line, even an empty one (`<br>`).
    fn hard_break(&mut self) {
        let depth = self.cur_depth.take().unwrap_or(self.depth);
        let line = std::mem::take(&mut self.cur);
        self.lines.push(
            format!("{}{}", "> ".repeat(depth), line)
                .trim_end()
                .to_string(),
        );
        self.space = false;
    }

    /// Ends the current line if anything is on it (block boundaries).
    fn soft_break(&mut self) {
        if !self.cur.is_empty() {
            self.hard_break();
        }
        self.space = false;
    }

    /// Ends the current line and leaves one blank line (paragraphs).
    fn paragraph(&mut self) {
        self.soft_break();
        if self.lines.last().is_some_and(|l| !is_blank(l)) {
            self.hard_break();
        }
    }

    /// The text, blank-line runs collapsed to one (a blank line inside a
    /// quote stays ">"), no blank lines at the ends.
    fn finish(mut self) -> String {
        self.soft_break();
        let mut text = String::new();
        let mut pending_blank: Option<&str> = None;
        for line in &self.lines {
            if is_blank(line) {
                if !text.is_empty() && pending_blank.is_none() {
                    pending_blank = Some(line);
                }
                continue;
            }
            if let Some(blank) = pending_blank.take() {
                text.push_str(blank);
                text.push('\n');
            }
            text.push_str(line);
            text.push('\n');
        }
        text.truncate(text.trim_end().len());
        text
    }
}

/// An empty line, or one holding only quote markers.
pub(crate) fn is_blank(line: &str) -> bool {
    line.chars().all(|c| c == '>' || c == ' ')
}

/// Zero-width and direction marks that Outlook and Windows Mail sprinkle
/// through dates and names.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}' | '\u{ad}'
    )
}

/// Named entities worth knowing in Swedish and English mail.
pub(crate) const ENTITIES: &[(&str, &str)] = &[
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", "\u{a0}"),
    ("ensp", " "),
    ("emsp", " "),
    ("thinsp", " "),
    ("shy", "\u{ad}"),
    ("zwnj", "\u{200c}"),
    ("zwj", "\u{200d}"),
    ("lrm", "\u{200e}"),
    ("rlm", "\u{200f}"),
    ("ndash", "–"),
    ("mdash", "—"),
    ("hellip", "…"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("sbquo", "‚"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("bdquo", "„"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("bull", "•"),
    ("middot", "·"),
    ("copy", "©"),
    ("reg", "®"),
    ("trade", "™"),
    ("euro", "€"),
    ("pound", "£"),
    ("deg", "°"),
    ("plusmn", "±"),
    ("times", "×"),
    ("divide", "÷"),
    ("sect", "§"),
    ("para", "¶"),
    ("frac12", "½"),
    ("aring", "å"),
    ("Aring", "Å"),
    ("auml", "ä"),
    ("Auml", "Ä"),
    ("ouml", "ö"),
    ("Ouml", "Ö"),
    ("eacute", "é"),
    ("Eacute", "É"),
    ("egrave", "è"),
    ("agrave", "à"),
    ("aacute", "á"),
    ("uuml", "ü"),
    ("Uuml", "Ü"),
    ("oslash", "ø"),
    ("Oslash", "Ø"),
    ("aelig", "æ"),
    ("AElig", "Æ"),
    ("szlig", "ß"),
    ("ccedil", "ç"),
    ("iexcl", "¡"),
    ("iquest", "¿"),
    ("larr", "←"),
    ("rarr", "→"),
];

/// Decodes `&name;`, `&#NNN;` and `&#xHH;`; anything else is left as written.
pub(crate) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &after[..semi];
            let value = if let Some(num) = name.strip_prefix('#') {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse().ok(),
                };
                code.and_then(char::from_u32).map(String::from)
            } else {
                ENTITIES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            };
            value.map(|v| (v, semi))
        });
        match decoded {
            Some((value, semi)) => {
                out.push_str(&value);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_to_text_blocks_breaks_and_entities() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
            <script>alert(1)</script><h1>Rubrik</h1><p>R&auml;ksm&ouml;rg&aring;s &amp; kaffe&nbsp;&#8211;&#x20AC;5</p>\
            <div>rad ett<br>rad två</div><!-- comment --><p>Sista &lt;stycket&gt; &unknown; 3 < 4</p></body></html>";
        assert_eq!(
            html_to_text(html),
            "Rubrik\n\nRäksmörgås & kaffe –€5\nrad ett\nrad två\n\nSista <stycket> &unknown; 3 < 4"
        );
    }

    #[test]
    fn html_to_text_marks_blockquotes() {
        let html = "<div>Svar</div><div>On Tue, Anna wrote:</div><blockquote type=\"cite\"><div>Första</div>\
            <div><br></div><div>Andra</div><blockquote>Djupare</blockquote></blockquote><div>Efter</div>";
        assert_eq!(
            html_to_text(html),
            "Svar\nOn Tue, Anna wrote:\n> Första\n>\n> Andra\n> > Djupare\nEfter"
        );
    }

    #[test]
    fn html_to_text_lists_links_pre_and_rules() {
        let html = "<ul><li>ett</li><li>två<ol><li>a</li><li>b</li></ol></li></ul>\
            <p><a href=\"https://example.se/handbok\">Handboken</a> och \
            <a href='https://example.se/'>https://example.se/</a> och <a href=\"mailto:a@b.se\">a@b.se</a></p>\
            <pre>  indragen\n  kod</pre><hr><table><tr><td>A</td><td>B</td></tr></table>";
        assert_eq!(
            html_to_text(html),
            "- ett\n- två\n  1. a\n  2. b\n\nHandboken (https://example.se/handbok) och https://example.se/ och a@b.se\n  indragen\n  kod\n---\n\nA B"
        );
    }
}
