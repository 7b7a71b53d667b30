//! A compiled copy's header block and MIME frame, written straight into
//! the copy's buffer as lettre's builder writes them for
//! `Prepared::assemble`: the same headers in the same order, each value
//! encoded (RFC 2047) and folded by the same `email_encoding` writer
//! lettre uses. What is the same for every copy (the multipart headers,
//! the parts' headers, the attachments) is formatted by lettre itself
//! once, when the campaign compiles; From and List-Id once per domain.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use email_encoding::headers::writer::EmailWriter;
use lettre::message::header::{ContentTransferEncoding, ContentType, Headers};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use super::encode::Encoding;
use crate::compose::attachment::EncodedAttachment;
use crate::compose::mime::{boundary, mailbox};
use crate::compose::system;
use crate::daemon::lists::{self, List};

/// `fmt::Write` into a copy's bytes.
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `name: value\r\n` as lettre's `HeaderValue::new` encodes it (its
/// `HeaderValueEncoder`): words split after each space; a run of words
/// with a byte lettre does not allow RFC 2047-encoded as one, its
/// trailing spaces kept as spaces; the rest written folding.
pub(super) fn text(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    let mut bytes = Bytes(out);
    {
        let mut w = EmailWriter::new(&mut bytes, name.len() + 2, 0, false);
        // The words waiting to be encoded: always a run of `value`.
        let mut pending: Option<(usize, usize)> = None;
        let mut at = 0;
        for word in value.split_inclusive(' ') {
            let end = at + word.len();
            if word.bytes().all(allowed) {
                flush(&mut w, value, pending.take());
                let _ = w.folding().write_str(word);
            } else {
                pending = Some((pending.map_or(at, |(start, _)| start), end));
            }
            at = end;
        }
        flush(&mut w, value, pending);
    }
    out.extend_from_slice(b"\r\n");
}

fn flush(w: &mut EmailWriter<'_>, value: &str, pending: Option<(usize, usize)>) {
    let Some((start, end)) = pending else {
        return;
    };
    let run = &value[start..end];
    let prefix = run.trim_end_matches(' ');
    let _ = email_encoding::headers::rfc2047::encode(prefix, w);
    for _ in 0..run.len() - prefix.len() {
        w.space();
    }
}

/// lettre's `allowed_char`.
fn allowed(c: u8) -> bool {
    (1..=9).contains(&c) || c == 11 || c == 12 || (14..=127).contains(&c)
}

/// `name: mailbox\r\n` as lettre writes a `Mailboxes` header of one.
pub(super) fn address(out: &mut Vec<u8>, name: &str, mailbox: &Mailbox) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    let mut bytes = Bytes(out);
    {
        let mut w = EmailWriter::new(&mut bytes, name.len() + 2, 0, false);
        if let Some(display) = &mailbox.name {
            let _ = email_encoding::headers::quoted_string::encode(display, &mut w);
            w.space();
            let _ = w.write_char('<');
        }
        let _ = w.write_str(mailbox.email.as_ref());
        if mailbox.name.is_some() {
            let _ = w.write_char('>');
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The MIME frame of every copy, formatted by lettre with sample
/// boundaries and cut around them (a boundary is always as long, so the
/// multipart headers fold the same).
#[derive(Debug)]
pub(super) struct Frame {
    /// `Content-Type: multipart/alternative;…boundary="` and what follows
    /// the boundary to the header block's end.
    alternative: (Vec<u8>, Vec<u8>),
    mixed: (Vec<u8>, Vec<u8>),
    /// A part's headers and the blank line: [text, html] × [7bit, QP].
    heads: [[Vec<u8>; 2]; 2],
    /// Each attachment's part, whole.
    attachments: Vec<Vec<u8>>,
    /// The headers after List-Unsubscribe, the same in every copy.
    tail: Vec<u8>,
    /// The bytes of a copy besides its two parts' bodies, about.
    pub(super) estimate: usize,
}

impl Frame {
    pub(super) fn new(attachments: &[EncodedAttachment]) -> Frame {
        let cut = |part: &str, multipart: fn() -> lettre::message::MultiPartBuilder| {
            let sample = boundary("sample", part);
            let formatted = multipart()
                .boundary(sample.clone())
                .singlepart(SinglePart::plain(String::new()))
                .formatted();
            let end = find(&formatted, b"\r\n\r\n").expect("a header block") + 2;
            let at = find(&formatted, sample.as_bytes()).expect("the boundary");
            (
                formatted[..at].to_vec(),
                formatted[at + sample.len()..end].to_vec(),
            )
        };
        let head = |content_type: ContentType, encoding: ContentTransferEncoding| {
            let mut formatted = SinglePart::builder()
                .header(content_type)
                .body(Body::dangerous_pre_encoded(Vec::new(), encoding))
                .formatted();
            formatted.truncate(formatted.len() - 2);
            formatted
        };
        let both = |content_type: ContentType| {
            [
                head(content_type.clone(), ContentTransferEncoding::SevenBit),
                head(content_type, ContentTransferEncoding::QuotedPrintable),
            ]
        };
        let mut tail = Vec::new();
        text(
            &mut tail,
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click",
        );
        text(&mut tail, "Precedence", "bulk");
        text(&mut tail, "Auto-Submitted", "auto-generated");
        let mut headers = Headers::new();
        headers.set(lettre::message::header::MIME_VERSION_1_0);
        tail.extend_from_slice(headers.to_string().as_bytes());
        let mut frame = Frame {
            alternative: cut("alt", MultiPart::alternative),
            mixed: cut("mix", MultiPart::mixed),
            heads: [both(ContentType::TEXT_PLAIN), both(ContentType::TEXT_HTML)],
            attachments: attachments
                .iter()
                .map(|a| {
                    SinglePart::builder()
                        .header(a.content_type.clone())
                        .header(a.disposition.clone())
                        .body(a.body.clone())
                        .formatted()
                })
                .collect(),
            tail,
            estimate: 0,
        };
        // The header block is about 1 KB; the frame's own lines a few
        // hundred bytes.
        frame.estimate = 1536 + frame.attachments.iter().map(Vec::len).sum::<usize>();
        frame
    }

    /// The multipart headers and the blank line before the parts.
    fn open(&self, out: &mut Vec<u8>, mixed: bool, boundary: &str) {
        let (before, after) = if mixed {
            &self.mixed
        } else {
            &self.alternative
        };
        out.extend_from_slice(before);
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(after);
        out.extend_from_slice(b"\r\n");
    }

    /// Everything after the header block: the multipart(s) with the two
    /// parts, whose bodies `body(0|1, out)` writes, and the attachments.
    pub(super) fn write_body(
        &self,
        out: &mut Vec<u8>,
        message_id: &str,
        encodings: [Encoding; 2],
        mut body: impl FnMut(usize, &mut Vec<u8>),
    ) {
        out.extend_from_slice(&self.tail);
        let alternative = boundary(message_id, "alt");
        let mixed = (!self.attachments.is_empty()).then(|| boundary(message_id, "mix"));
        if let Some(mixed) = &mixed {
            self.open(out, true, mixed);
            delimiter(out, mixed, false);
        }
        self.open(out, false, &alternative);
        for (i, encoding) in encodings.into_iter().enumerate() {
            delimiter(out, &alternative, false);
            out.extend_from_slice(&self.heads[i][(encoding == Encoding::QuotedPrintable) as usize]);
            body(i, out);
            out.extend_from_slice(b"\r\n");
        }
        delimiter(out, &alternative, true);
        if let Some(mixed) = &mixed {
            for a in &self.attachments {
                delimiter(out, mixed, false);
                out.extend_from_slice(a);
            }
            delimiter(out, mixed, true);
        }
    }
}

fn delimiter(out: &mut Vec<u8>, boundary: &str, close: bool) {
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(if close { b"--\r\n" } else { b"\r\n" });
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The header lines that depend on the domain (From, List-Id) and on the
/// date, formatted by lettre when first needed and kept: the same for
/// every copy of a sending round.
/// The `From:` and the `List-Id:` line.
pub(super) type Lines = (Vec<u8>, Vec<u8>);

#[derive(Debug, Default)]
pub(super) struct Kept {
    /// The last domain's lines. Not set once for good: the sample copy
    /// checked when the campaign compiles is for another domain than the
    /// copies sent.
    domain: Mutex<Option<(String, Arc<Lines>)>>,
    /// The last `Date:` line and the second it is for (lettre writes the
    /// date in UTC to the second, so copies made within one second share
    /// it, whatever their sub-second part or offset).
    date: Mutex<Option<(i64, Vec<u8>)>>,
}

impl Kept {
    /// `From:` and `List-Id:` for `domain`; `None` if the list's address
    /// is not an address (the ordinary assembly says so).
    pub(super) fn domain(&self, list: &List, domain: &str) -> Option<Arc<Lines>> {
        let mut kept = self.domain.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((d, lines)) = &*kept {
            if d == domain {
                return Some(lines.clone());
            }
        }
        let list_address = lists::list_address(list, "", None, domain);
        let from = mailbox(&list.name, &list_address).ok()?;
        let mut from_line = Vec::new();
        address(&mut from_line, "From", &from);
        let mut id_line = Vec::new();
        text(
            &mut id_line,
            "List-Id",
            &crate::address::header_safe(&system::list_id(list, domain)),
        );
        let lines = Arc::new((from_line, id_line));
        *kept = Some((domain.to_string(), lines.clone()));
        Some(lines)
    }

    /// `Date: …\r\n` as lettre's `Date` header writes `date`.
    pub(super) fn date(&self, out: &mut Vec<u8>, date: chrono::DateTime<chrono::FixedOffset>) {
        let second = date.timestamp();
        let mut kept = self.date.lock().unwrap_or_else(|e| e.into_inner());
        match &*kept {
            Some((d, line)) if *d == second => out.extend_from_slice(line),
            _ => {
                let mut headers = Headers::new();
                headers.set(lettre::message::header::Date::from(SystemTime::from(date)));
                let line = headers.to_string().into_bytes();
                out.extend_from_slice(&line);
                *kept = Some((second, line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept `Date:` line is lettre's for every copy of its second,
    /// whatever the copy's sub-second part or offset, and a new one for
    /// the next second.
    #[test]
    fn the_kept_date_is_lettres_to_the_second() {
        let lettre = |date: chrono::DateTime<chrono::FixedOffset>| {
            let mut headers = Headers::new();
            headers.set(lettre::message::header::Date::from(SystemTime::from(date)));
            headers.to_string().into_bytes()
        };
        let kept = Kept::default();
        for date in [
            "2026-12-01T08:00:00.000+01:00",
            "2026-12-01T08:00:00.999+01:00",
            "2026-12-01T07:00:00.500+00:00",
            "2026-12-01T08:00:01.001+01:00",
            "2026-12-01T08:00:00.002+01:00",
        ] {
            let date = chrono::DateTime::parse_from_rfc3339(date).unwrap();
            let mut out = Vec::new();
            kept.date(&mut out, date);
            assert_eq!(out, lettre(date), "{date}");
        }
    }

    /// The domain's lines follow the domain asked for: the sample copy
    /// checked at compile time is for another domain than the copies.
    #[test]
    fn the_kept_domain_lines_follow_the_domain() {
        let list = List::parse("nat", "name = \"Nätet\"\naddress = \"nat\"\n").unwrap();
        let kept = Kept::default();
        for domain in [
            "example.se",
            "lista.example.se",
            "lista.example.se",
            "example.se",
        ] {
            let lines = kept.domain(&list, domain).unwrap();
            let from = String::from_utf8(lines.0.clone()).unwrap();
            assert!(from.ends_with(&format!("<nat@{domain}>\r\n")), "{from}");
            let id = String::from_utf8(lines.1.clone()).unwrap();
            assert!(id.contains(&format!("nat.{domain}")), "{id}");
        }
    }
}
