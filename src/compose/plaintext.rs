//! The plain-text part of a newsletter, written from the same Markdown
//! events as the HTML: wrapped lines, links as footnotes. Pure.

use crate::compose::sanitize;
use pulldown_cmark::{Event, HeadingLevel, Tag, TagEnd};

/// Marks the line under a heading; `tidy_text` draws the rule once the
/// fields are filled in and the heading's width is known.
pub(crate) const RULE_MARK: char = '\u{1}';

/// Markdown events → readable plain text: headings underlined, lists with
/// "- ", emphasis without markup, links and images as numbered footnotes,
/// code indented, quotes with "> ".
#[derive(Default)]
pub(crate) struct TextWriter {
    pub(crate) out: String,
    /// What starts each line, one entry per open container.
    pub(crate) prefixes: Vec<String>,
    /// A list item's marker, shown instead of its prefix on its first line.
    pub(crate) marker: Option<(usize, String)>,
    pub(crate) line_start: bool,
    /// A blank line is due before the next block.
    pub(crate) blank: bool,
    /// Open lists: the next number, or None for bullets.
    pub(crate) lists: Vec<Option<u64>>,
    /// Open links and images: destination and where their text starts.
    pub(crate) links: Vec<(String, usize)>,
    pub(crate) footnotes: Vec<String>,
    pub(crate) in_tag: bool,
    pub(crate) cells: usize,
}

impl TextWriter {
    pub(crate) fn prefix(&mut self, blank_line: bool) {
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

    pub(crate) fn put(&mut self, s: &str) {
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
    pub(crate) fn block(&mut self) {
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

    pub(crate) fn footnote(&mut self, url: &str) -> usize {
        match self.footnotes.iter().position(|u| u == url) {
            Some(i) => i + 1,
            None => {
                self.footnotes.push(url.to_string());
                self.footnotes.len()
            }
        }
    }

    /// Raw HTML in the Markdown: the text between the tags.
    pub(crate) fn html(&mut self, html: &str) {
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

    pub(crate) fn event(&mut self, event: Event<'_>) {
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

    pub(crate) fn start(&mut self, tag: Tag<'_>) {
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

    pub(crate) fn end(&mut self, tag: TagEnd) {
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
                if dest.is_empty()
                    || !sanitize::link_allowed(&dest)
                    || text == dest
                    || dest.strip_prefix("mailto:") == Some(&text)
                {
                    // The address is already there to read, or it is one the
                    // HTML part drops (javascript:, data:, relative).
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
pub(crate) fn tidy_text(text: &str) -> String {
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
