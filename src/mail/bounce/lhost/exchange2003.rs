//! Exchange Server 2003 and earlier, with X.400 addresses (`dda:SMTP=a@b`, `RFC-822=a(a)b`).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "exchange2003",
    detect,
    cues: &["smtp=", "rfc-822="],
    headings: &[],
    respell: Some(x400_spaced),
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-ms-embedded-report")
        || h.field("x-mailer").is_some_and(|v| {
            v.starts_with("internet mail service (")
                || v.starts_with("microsoft exchange server internet mail connector")
        })
        || h.field("x-mimeole")
            .is_some_and(|v| v.starts_with("produced by microsoft exchange"))
        || h.text.contains("did not reach the following recipient")
        || h.text.contains("msexch:")
        || h.text.contains("dda:smtp=")
}

/// X.400 forms of a mail address: `dda:SMTP=a@b` → `dda:SMTP= a@b`, so
/// that the address reads alone, and `RFC-822=a(a)b` (X.400's `@`) →
/// `RFC-822= a@b`. None when the line has neither.
fn x400_spaced(line: &str) -> Option<String> {
    let lc = line.to_ascii_lowercase();
    let (i, key) = ["smtp=", "rfc-822="]
        .iter()
        .find_map(|k| lc.find(k).map(|i| (i, *k)))?;
    let value_at = i + key.len();
    let mut s = line[..value_at].to_string();
    s.push(' ');
    let value = &line[value_at..];
    if key == "rfc-822=" && !value.contains('@') {
        s.push_str(&value.replacen("(a)", "@", 1));
    } else {
        s.push_str(value);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::x400_spaced;

    #[test]
    fn x400_addresses_read_alone() {
        assert_eq!(
            x400_spaced("  dda:SMTP=kijitora@example.jp").as_deref(),
            Some("  dda:SMTP= kijitora@example.jp")
        );
        assert_eq!(
            x400_spaced("RFC-822=kijitora(a)example.jp").as_deref(),
            Some("RFC-822= kijitora@example.jp")
        );
        assert_eq!(x400_spaced("no address here"), None);
    }
}
