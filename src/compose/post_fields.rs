//! Header fields of a discussion post that cannot travel on as they came
//! (issue 16, the hostile review): a field with a line over RFC 5322's
//! 998 octets is refolded (or, when one word alone is too long, dropped),
//! and a part that names its type twice is read the safe way.

use crate::compose::dkim::{field_name, fields};

/// RFC 5322 2.1.1: the longest line of a message, without its CRLF.
pub const MAX_LINE: usize = 998;
/// Where a refolded field breaks (RFC 5322's "should").
const FOLD_AT: usize = 78;

/// `field` (no CRLF at its end) as it may travel: unchanged when every
/// line of it fits, else refolded at its whitespace; None when a single
/// word of it is longer than a line may be (the field is dropped: a
/// crafted value, never a real one).
pub fn fit(field: &[u8]) -> Option<Vec<u8>> {
    if field
        .split(|&b| b == b'\n')
        .all(|l| l.strip_suffix(b"\r").unwrap_or(l).len() <= MAX_LINE)
    {
        return Some(field.to_vec());
    }
    let colon = field.iter().position(|&b| b == b':')?;
    let (name, value) = (&field[..colon], &field[colon + 1..]);
    let mut out = name.to_vec();
    out.push(b':');
    let mut line = out.len();
    for word in value
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        if 1 + word.len() > MAX_LINE {
            return None;
        }
        if line > name.len() + 1 && line + 1 + word.len() > FOLD_AT {
            out.extend_from_slice(b"\r\n");
            line = 0;
        }
        out.push(b' ');
        out.extend_from_slice(word);
        line += 1 + word.len();
    }
    Some(out)
}

/// The header `head` (a part's or the message's) names its Content-Type
/// more than once: Some(true) when any of them says HTML. Readers differ
/// in which one they go by, so such a part is treated as HTML if any
/// says so.
pub fn repeated_type(head: &[u8]) -> Option<bool> {
    let (fs, _) = fields(head);
    let types: Vec<String> = fs
        .into_iter()
        .filter(|f| field_name(f) == "content-type")
        .map(|f| String::from_utf8_lossy(f).to_ascii_lowercase())
        .collect();
    (types.len() > 1).then(|| types.iter().any(|t| t.contains("html")))
}

/// The Content-* fields of `head`, CRLF after each, with one Content-Type
/// only (the last, the one the parser went by).
pub fn content_fields(head: &[u8]) -> Vec<u8> {
    let (fs, _) = fields(head);
    let last_type = fs.iter().rposition(|f| field_name(f) == "content-type");
    let mut v = Vec::new();
    for (i, f) in fs.iter().enumerate() {
        let name = field_name(f);
        if name.starts_with("content-") && (name != "content-type" || Some(i) == last_type) {
            v.extend_from_slice(f);
            v.extend_from_slice(b"\r\n");
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_field_is_refolded_and_a_huge_word_dropped() {
        let ids: Vec<String> = (0..60)
            .map(|i| format!("<id-{i:03}@example.org>"))
            .collect();
        let field = format!("References: {}", ids.join(" "));
        let out = fit(field.as_bytes()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.split("\r\n").all(|l| l.len() <= FOLD_AT));
        assert_eq!(
            text.replace("\r\n", "").split_whitespace().count(),
            ids.len() + 1
        );
        assert_eq!(fit(b"Subject: short").unwrap(), b"Subject: short");
        let huge = format!("X-Huge: {}", "a".repeat(1200));
        assert!(fit(huge.as_bytes()).is_none());
    }

    #[test]
    fn a_repeated_content_type_is_seen() {
        let head = b"Content-Type: text/html\r\nContent-Type: text/plain\r\n\r\n";
        assert_eq!(repeated_type(head), Some(true));
        assert_eq!(repeated_type(b"Content-Type: text/plain\r\n\r\n"), None);
        assert_eq!(
            content_fields(head),
            b"Content-Type: text/plain\r\n".to_vec()
        );
    }
}
