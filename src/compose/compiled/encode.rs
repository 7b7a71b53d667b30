//! A compiled part's text transfer-encoded as `compose::mime::body`
//! encodes it, with the lines that hold no slot encoded once, when the
//! campaign compiles, and only the lines with a slot encoded per copy.
//!
//! Why this is exact: `body` picks 7bit, quoted-printable or base64 from
//! the whole text (`email_encoding`'s chooser: all ASCII, any line too
//! long, how many bytes need escaping), and all three of those are sums
//! over lines, so a copy's choice is the fixed lines' figures (counted
//! once) plus its own lines' (counted per copy). Quoted-printable in text
//! mode starts afresh after each CRLF (its soft breaks and its escaped
//! trailing space look no further back than the line), so the encoding
//! of the whole is the encodings of the lines joined by CRLF. Base64 is
//! not line by line: a copy that would be base64 is left to the ordinary
//! assembly (`None` from `Part::measure`), as is a copy whose value holds
//! a CR or LF (only the links and addresses are not cleaned of them).

use std::borrow::Cow;

use super::Piece;

/// quoted-printable's line limit, `quoted_printable::Options`' default.
const QP_LIMIT: usize = 76;

/// What the chooser reads of a text, summed over its lines.
#[derive(Debug, Clone, Copy)]
struct Stats {
    len: usize,
    /// Bytes outside `\t` and ` `..=`~` (`\n` and `\r` among them).
    escaping: usize,
    ascii: bool,
    too_long: bool,
}

impl Stats {
    fn empty() -> Stats {
        Stats {
            len: 0,
            escaping: 0,
            ascii: true,
            too_long: false,
        }
    }

    /// Adds line `index` of the text (without its `\n`). The chooser's
    /// `line_too_long` measures from one `\n` to the next, counting the
    /// first `\n` in every line after the first: so 76 bytes make the
    /// first line too long and 75 any other.
    fn add_line(&mut self, index: usize, line: &[u8]) {
        self.add_counted(index, line.len(), Counted::of(line));
    }

    /// [`Stats::add_line`] for a line of `len` bytes counted already.
    fn add_counted(&mut self, index: usize, len: usize, counted: Counted) {
        self.len += len;
        self.escaping += counted.escaping;
        self.ascii &= counted.high < 0x80;
        self.too_long |= len >= if index == 0 { 76 } else { 75 };
    }
}

/// What [`Stats`] reads of some bytes besides their length, which adds
/// up piece by piece: a line with a slot has its text pieces counted once,
/// when the campaign compiles, and only its values per copy.
#[derive(Debug, Clone, Copy, Default)]
struct Counted {
    /// Bytes outside `\t` and ` `..=`~`.
    escaping: usize,
    /// Every byte OR-ed: 0x80 or more means one was not ASCII.
    high: u8,
}

impl Counted {
    fn of(bytes: &[u8]) -> Counted {
        let mut c = Counted::default();
        for &b in bytes {
            c.escaping += usize::from(!matches!(b, b'\t' | b' '..=b'~'));
            c.high |= b;
        }
        c
    }

    fn add(self, other: Counted) -> Counted {
        Counted {
            escaping: self.escaping + other.escaping,
            high: self.high | other.high,
        }
    }
}

/// The transfer encodings a compiled copy writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    SevenBit,
    QuotedPrintable,
}

/// Lines of a part, in order, joined by CRLF.
#[derive(Debug)]
enum Segment {
    /// Lines without a slot with the CRLFs between them, as 7bit (the text
    /// with CRLF) and as quoted-printable.
    Fixed { seven: Vec<u8>, qp: Vec<u8> },
    /// A line with a slot: its pieces (no `\n` in them), its index,
    /// whether a line follows it, and its text pieces counted.
    Line {
        pieces: Vec<Piece>,
        index: usize,
        last: bool,
        text: Counted,
    },
}

/// One part (the text or the HTML) of a variant, pre-encoded.
#[derive(Debug)]
pub(super) struct Part {
    segments: Vec<Segment>,
    /// The fixed lines' figures and the `\n`s between all lines.
    fixed: Stats,
    /// The bytes of a copy, roughly: the fixed lines encoded.
    pub(super) estimate: usize,
}

/// A copy's lines with slots, filled: the bytes and where each line is.
#[derive(Default)]
pub(super) struct Filled {
    bytes: Vec<u8>,
    lines: Vec<(usize, usize)>,
}

impl Part {
    /// Splits `pieces` into lines and encodes those without a slot.
    pub(super) fn new(pieces: &[Piece]) -> Part {
        let mut lines: Vec<Vec<Piece>> = vec![Vec::new()];
        for p in pieces {
            match p {
                Piece::Text(t) => {
                    let mut chunks = t.split('\n');
                    if let Some(first) = chunks.next().filter(|c| !c.is_empty()) {
                        lines
                            .last_mut()
                            .expect("a line")
                            .push(Piece::Text(first.into()));
                    }
                    for chunk in chunks {
                        let mut line = Vec::new();
                        if !chunk.is_empty() {
                            line.push(Piece::Text(chunk.into()));
                        }
                        lines.push(line);
                    }
                }
                slot => lines.last_mut().expect("a line").push(slot.clone()),
            }
        }
        let n = lines.len();
        let mut fixed = Stats::empty();
        fixed.len += n - 1;
        fixed.escaping += n - 1;
        let mut segments = Vec::new();
        for (index, line) in lines.into_iter().enumerate() {
            let last = index + 1 == n;
            if line.iter().any(|p| !matches!(p, Piece::Text(_))) {
                let text = line.iter().fold(Counted::default(), |c, p| match p {
                    Piece::Text(t) => c.add(Counted::of(t.as_bytes())),
                    _ => c,
                });
                segments.push(Segment::Line {
                    pieces: line,
                    index,
                    last,
                    text,
                });
                continue;
            }
            let raw: String = line
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.as_str(),
                    _ => "",
                })
                .collect();
            fixed.add_line(index, raw.as_bytes());
            let content = content(raw.as_bytes(), last);
            let qp = quoted_printable::encode(content);
            if let Some(Segment::Fixed { seven, qp: q }) = segments.last_mut() {
                seven.extend_from_slice(b"\r\n");
                seven.extend_from_slice(content);
                q.extend_from_slice(b"\r\n");
                q.extend_from_slice(&qp);
            } else {
                segments.push(Segment::Fixed {
                    seven: content.to_vec(),
                    qp,
                });
            }
        }
        let estimate = segments
            .iter()
            .map(|s| match s {
                Segment::Fixed { qp, .. } => qp.len() + 2,
                Segment::Line { .. } => 160,
            })
            .sum();
        Part {
            segments,
            fixed,
            estimate,
        }
    }

    /// Fills this copy's lines into `filled` and says how `body` would
    /// encode the whole; `None` for base64, or when a value holds a CR or
    /// LF (the ordinary assembly makes such a copy).
    pub(super) fn measure(&self, values: &[Cow<'_, str>], filled: &mut Filled) -> Option<Encoding> {
        filled.bytes.clear();
        filled.lines.clear();
        let mut stats = self.fixed;
        for s in &self.segments {
            if let Segment::Line {
                pieces,
                index,
                text,
                ..
            } = s
            {
                let start = filled.bytes.len();
                let values = fill_line(pieces, values, &mut filled.bytes)?;
                let len = filled.bytes.len() - start;
                stats.add_counted(*index, len, text.add(values));
                filled.lines.push((start, filled.bytes.len()));
            }
        }
        if stats.ascii && !stats.too_long {
            Some(Encoding::SevenBit)
        } else if stats.escaping <= stats.len / 3 {
            Some(Encoding::QuotedPrintable)
        } else {
            None
        }
    }

    /// Writes the part's body in `encoding`, the copy's lines from
    /// `filled` (as `measure` left it).
    pub(super) fn write(&self, encoding: Encoding, filled: &Filled, out: &mut Vec<u8>) {
        let mut lines = filled.lines.iter();
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            match s {
                Segment::Fixed { seven, qp } => out.extend_from_slice(match encoding {
                    Encoding::SevenBit => seven,
                    Encoding::QuotedPrintable => qp,
                }),
                Segment::Line { last, .. } => {
                    let (start, end) = *lines.next().expect("measured");
                    let line = content(&filled.bytes[start..end], *last);
                    match encoding {
                        Encoding::SevenBit => out.extend_from_slice(line),
                        Encoding::QuotedPrintable => qp_line(line, out),
                    }
                }
            }
        }
    }
}

/// A line as `body` writes it before a CRLF: a `\r` that ends it is the
/// CR of that CRLF (`body` adds none after one).
fn content(line: &[u8], last: bool) -> &[u8] {
    match line.strip_suffix(b"\r") {
        Some(stripped) if !last => stripped,
        _ => line,
    }
}

/// A line's pieces with the values filled in (HTML-escaped as often as
/// the slot says), and the values' bytes as written counted (a space
/// `Piece::Space` writes counts as nothing); `None` if a value holds a
/// CR or LF.
fn fill_line(pieces: &[Piece], values: &[Cow<'_, str>], out: &mut Vec<u8>) -> Option<Counted> {
    let mut counted = Counted::default();
    for p in pieces {
        match p {
            Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
            Piece::Slot { slot, escapes } => {
                let value = values[*slot].as_ref();
                if value.contains(['\r', '\n']) {
                    return None;
                }
                let at = out.len();
                match escapes {
                    0 => out.extend_from_slice(value.as_bytes()),
                    1 => escape_into(value, out),
                    n => {
                        let mut escaped = handlebars::html_escape(value);
                        for _ in 2..*n {
                            escaped = handlebars::html_escape(&escaped);
                        }
                        escape_into(&escaped, out);
                    }
                }
                counted = counted.add(Counted::of(&out[at..]));
            }
            Piece::Space(slot) => {
                if !values[*slot].is_empty() {
                    out.push(b' ');
                }
            }
        }
    }
    Some(counted)
}

/// `handlebars::html_escape(value)` written into `out` (its characters
/// to escape are all ASCII, so byte by byte is character by character).
fn escape_into(value: &str, out: &mut Vec<u8>) {
    for &b in value.as_bytes() {
        match b {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'\'' => out.extend_from_slice(b"&#x27;"),
            b'`' => out.extend_from_slice(b"&#x60;"),
            b'=' => out.extend_from_slice(b"&#x3D;"),
            _ => out.push(b),
        }
    }
}

/// One line (no `\n` in it) quoted-printable encoded into `out`, as
/// `quoted_printable::encode` encodes it in text mode, step for step
/// (its `_encode`, with the output appended to `out` in place of a new
/// String): the same runs, soft breaks and escaped trailing space.
pub(super) fn qp_line(input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let mut on_line = 0usize;
    let mut backup = start;
    let mut was_cr = false;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        i += 1;
        if was_cr {
            append(out, b"=0D", &mut on_line, &mut backup);
        }
        if byte == b'\r' {
            was_cr = true;
            continue;
        }
        was_cr = false;
        if QP_LIMIT - on_line >= 3 && !needs_encoding(byte) {
            // The run: this byte and those after it that need no
            // escaping, at most `QP_LIMIT - on_line - 2`, copied at once.
            let begin = i - 1;
            let limit = input.len().min(begin + (QP_LIMIT - on_line - 2));
            let end = input[i..limit]
                .iter()
                .position(|&b| needs_encoding(b))
                .map_or(limit, |at| i + at);
            out.extend_from_slice(&input[begin..end]);
            on_line += end - begin;
            i = end;
            backup = out.len();
            continue;
        }
        match byte {
            b'=' => append(out, b"=3D", &mut on_line, &mut backup),
            b'\t' | b' '..=b'~' => append(out, &[byte], &mut on_line, &mut backup),
            _ => append(out, &hex(byte), &mut on_line, &mut backup),
        }
    }
    if was_cr {
        append(out, b"=0D", &mut on_line, &mut backup);
    } else if out.len() > start {
        let escaped: &[u8] = match out[out.len() - 1] {
            b' ' => b"=20",
            b'\t' => b"=09",
            _ => return,
        };
        on_line -= 1;
        out.pop();
        append(out, escaped, &mut on_line, &mut backup);
    }
}

fn needs_encoding(c: u8) -> bool {
    !matches!(c, b'\t' | b' '..=b'<' | b'>'..=b'~')
}

fn hex(byte: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [b'=', HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize]]
}

/// `quoted_printable`'s `append`: a soft break first when `bytes` would
/// pass the limit, at the last append's start when the line is full.
fn append(out: &mut Vec<u8>, bytes: &[u8], on_line: &mut usize, backup: &mut usize) {
    if *on_line + bytes.len() > QP_LIMIT {
        if *on_line == QP_LIMIT {
            *on_line = out.len() - *backup;
            out.splice(*backup..*backup, *b"=\r\n");
        } else {
            out.extend_from_slice(b"=\r\n");
            *on_line = 0;
        }
    }
    out.extend_from_slice(bytes);
    *on_line += bytes.len();
    *backup = out.len() - bytes.len();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `qp_line` is `quoted_printable::encode` on a line, in every case
    /// its `_encode` has: runs up to the limit, `=`, bytes not ASCII at
    /// and around the limit (the break moved back), trailing space and
    /// tab, bare CR inside and at the end.
    #[test]
    fn escape_into_escapes_as_handlebars_does() {
        let value = "<a href=\"x\">&'`=</a> Åsa 📬 &amp;";
        let mut out = Vec::new();
        escape_into(value, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            handlebars::html_escape(value)
        );
    }

    /// `measure` counts a line's text pieces once and its values per
    /// copy; its verdict is the one the stats of each whole filled line
    /// give, at the 7bit line limit, the quoted-printable third and the
    /// fall back to base64, with values escaped once, twice or not at all.
    #[test]
    fn measure_counts_as_the_whole_lines_would() {
        let text = |t: &str| Piece::Text(t.to_string());
        let slot = |slot, escapes| Piece::Slot { slot, escapes };
        let long = "x".repeat(70);
        let parts = [
            vec![text("Hej "), slot(0, 1), text("!\nrad två\n"), slot(1, 0)],
            vec![text(&long), Piece::Space(0), slot(0, 0), text("\nslut")],
            vec![
                slot(0, 2),
                text(" \u{e5}\u{e4}\u{f6} "),
                slot(1, 1),
                text("\n\t="),
            ],
            vec![slot(1, 0)],
        ];
        let names = [
            "",
            "Åsa",
            "a",
            "<b>&",
            "x".repeat(5).as_str(),
            "y".repeat(80).as_str(),
            "📬📬📬📬📬📬📬📬📬📬📬📬📬📬📬📬📬📬📬📬",
            "\u{1}\u{7f}",
        ]
        .map(str::to_string);
        for pieces in &parts {
            let part = Part::new(pieces);
            for a in &names {
                for b in &names {
                    let values = [Cow::Borrowed(a.as_str()), Cow::Borrowed(b.as_str())];
                    let mut filled = Filled::default();
                    let got = part.measure(&values, &mut filled);
                    // The reference: every line whole, filled, counted.
                    let mut whole = Vec::new();
                    for p in pieces {
                        let mut one = Vec::new();
                        assert!(fill_line(std::slice::from_ref(p), &values, &mut one).is_some());
                        whole.extend_from_slice(&one);
                    }
                    let mut stats = Stats::empty();
                    let lines: Vec<&[u8]> = whole.split(|&b| b == b'\n').collect();
                    stats.len += lines.len() - 1;
                    stats.escaping += lines.len() - 1;
                    for (i, line) in lines.iter().enumerate() {
                        stats.add_line(i, line);
                    }
                    let want = if stats.ascii && !stats.too_long {
                        Some(Encoding::SevenBit)
                    } else if stats.escaping <= stats.len / 3 {
                        Some(Encoding::QuotedPrintable)
                    } else {
                        None
                    };
                    assert_eq!(got, want, "{pieces:?} {a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn qp_line_encodes_as_quoted_printable_does() {
        let mut lines: Vec<String> = vec![
            String::new(),
            " ".into(),
            "\t".into(),
            "a=b".into(),
            "ab \r".into(),
            "a\rb\r".into(),
            "\r".into(),
            "Hälsningar från Åsa, 5 € = 5 euro; \"citat\" och 'apostrof' ".repeat(3),
        ];
        for n in 70..80 {
            for tail in ["", " ", "\t", "=", "å", "€", "📬", "  ", "a ", "\r"] {
                lines.push(format!("{}{tail}", "x".repeat(n)));
                lines.push(format!("{}{tail}x", "=".repeat(n / 3)));
                lines.push(format!("{}{tail}{}", "é".repeat(n / 2), "y".repeat(n)));
            }
        }
        for line in lines {
            let mut ours = b"prefix\r\n".to_vec();
            qp_line(line.as_bytes(), &mut ours);
            let mut theirs = b"prefix\r\n".to_vec();
            theirs.extend(quoted_printable::encode(line.as_bytes()));
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{line:?}"
            );
        }
    }
}
