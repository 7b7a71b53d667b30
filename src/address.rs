//! Pure address handling: validating and normalising addresses, and making
//! values safe for a header.
//!
//! No I/O here; the store and the token check live elsewhere.

/// Longest address we accept (RFC 5321 §4.5.3.1.3 path limit, less the brackets).
pub const MAX_ADDRESS_LEN: usize = 254;
/// Longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_LEN: usize = 64;

/// Splits `local@domain`; None unless there is exactly one '@' with text on both sides.
pub fn split(addr: &str) -> Option<(&str, &str)> {
    let (local, domain) = addr.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || local.contains('@') {
        return None;
    }
    Some((local, domain))
}

/// True for a plausible mailbox address `local@domain`. Deliberately strict on
/// what could break a header or a path (spaces, controls, brackets, quotes),
/// lenient on the rest: the mail system decides deliverability.
pub fn is_valid(addr: &str) -> bool {
    let addr = addr.trim();
    if addr.len() > MAX_ADDRESS_LEN {
        return false;
    }
    let Some((local, domain)) = split(addr) else {
        return false;
    };
    if local.len() > MAX_LOCAL_LEN
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return false;
    }
    let local_ok = local.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~.".contains(c)
            || (!c.is_ascii() && !c.is_control())
    });
    let domain_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
            })
    });
    local_ok && domain_ok
}

/// `addr` without the space and angle brackets around it, as
/// [`normalize`] reads it.
pub fn trimmed(addr: &str) -> &str {
    addr.trim().trim_start_matches('<').trim_end_matches('>')
}

/// The form addresses are stored and compared in: trimmed, the domain in lower
/// case. The local part keeps its case (RFC 5321 §2.4 leaves it to the host).
pub fn normalize(addr: &str) -> String {
    let addr = trimmed(addr);
    match split(addr) {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => addr.to_string(),
    }
}

/// The inbox an address reaches, for rate limits: lower case, and without
/// a `+tag` (`Victim+1@Example.org` → `victim@example.org`), since
/// `victim+1@` … `victim+30@` land in one inbox. Only budgets use it: each
/// variant is still its own subscriber.
///
/// Gmail also ignores dots in the local part and takes `googlemail.com` as
/// `gmail.com` (its documented behaviour), so `v.i.ctim@googlemail.com`
/// shares `victim@gmail.com`'s budget. Other providers differ, and dots are
/// kept there.
pub fn mailbox(addr: &str) -> String {
    let addr = normalize(addr).to_lowercase();
    let Some((local, domain)) = split(&addr) else {
        return addr.clone();
    };
    let base = match local.split_once('+') {
        Some((base, _)) if !base.is_empty() => base,
        _ => local,
    };
    match domain {
        "gmail.com" | "googlemail.com" => {
            let undotted: String = base.chars().filter(|c| *c != '.').collect();
            if undotted.is_empty() {
                addr.clone()
            } else {
                format!("{undotted}@gmail.com")
            }
        }
        _ => format!("{base}@{domain}"),
    }
}

/// True if two addresses are the same mailbox.
pub fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// A local part a list may use: no '+' (our delimiter) and safe characters.
pub fn is_valid_list_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 40
        && !local.starts_with(['.', '-'])
        && local.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        })
}

/// Removes what could end a header line or inject another: CR, LF and other
/// control characters, and collapses the whitespace left behind.
pub fn header_safe(value: &str) -> String {
    let cleaned: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `header_safe(value)` is `value` itself (most values are): no
/// control character, and no whitespace but single spaces between words.
/// Lets a hot path skip its two copies.
pub fn is_header_safe(value: &str) -> bool {
    !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.contains("  ")
        && value
            .chars()
            .all(|c| !c.is_control() && (c == ' ' || !c.is_whitespace()))
}

/// Is `addr` a mailer-daemon style sender that must never get an answer?
pub fn is_system_sender(addr: &str) -> bool {
    let local = split(addr)
        .map(|(l, _)| l)
        .unwrap_or(addr)
        .to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or_default();
    matches!(
        local,
        "mailer-daemon"
            | "mailer_daemon"
            | "postmaster"
            | "mail-daemon"
            | "mail-delivery-subsystem"
            | "noreply"
            | "no-reply"
            | "do-not-reply"
            | "donotreply"
            | "bounce"
            | "bounces"
            | "listserv"
            | "majordomo"
    ) || local.ends_with("-bounces")
        || local.ends_with("-request")
        || local.ends_with("-owner")
}

/// RFC 2047 encoded-words for a header value that is not plain ASCII.
pub fn encode_header(value: &str) -> String {
    let value = header_safe(value);
    if value.is_ascii() {
        return value;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        // 45 bytes of UTF-8 make 60 of base64: lines stay under 78.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", data_encoding::BASE64.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// `text` with every email address in it shown as `…@domain`, as
/// Mailman's archive obfuscates them: a public page names no one's
/// mailbox (an attribution line "Anna <anna@example.org> skrev:", a
/// signature), and the domain keeps the sense of the line.
pub fn redact_addresses(text: &str) -> String {
    let local = |c: char| c.is_alphanumeric() || "._%+-'!#$&*/=?^`{|}~".contains(c);
    let domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = i;
            while start > 0 && local(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && domain(chars[end]) {
                end += 1;
            }
            let host: String = chars[i + 1..end].iter().collect();
            let host = host.trim_end_matches('.');
            if start < i && host.contains('.') {
                // The local part is already in `out`: take it back.
                let taken: usize = chars[start..i].iter().map(|c| c.len_utf8()).sum();
                out.truncate(out.len() - taken);
                out.push_str("…@");
                i += 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// A character that changes how the text around it is laid out without
/// being seen: the bidirectional controls (U+202A–U+202E, U+2066–U+2069,
/// U+200E, U+200F, U+061C), the line and paragraph separators (U+2028,
/// U+2029), zero-width characters (U+200B–U+200D, U+2060, U+FEFF). In a
/// line meant to be read as written (a log, a table), each is shown as a
/// space, as a control character is ("Trojan Source", CVE-2021-42574).
pub fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{2060}'
            | '\u{061C}'
            | '\u{FEFF}'
    )
}

/// `text` with every control and format character (see `is_format_char`)
/// shown as a space: for a line meant to stay one line of plain text (a
/// table's cell, an audit entry) when it holds what strangers wrote.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || is_format_char(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printable_line_keeps_to_one_line_and_carries_no_escape() {
        assert_eq!(
            printable("a\x1b]0;t\x07\nFORGED\r\u{9b}x\u{202E}y"),
            "a ]0;t  FORGED  x y"
        );
    }

    #[test]
    fn gmail_dots_and_its_second_domain_are_one_mailbox() {
        assert_eq!(mailbox("V.Ic.Tim+7@GoogleMail.com"), "victim@gmail.com");
        assert_eq!(mailbox("victim@gmail.com"), "victim@gmail.com");
        assert_eq!(mailbox("vic.tim@example.org"), "vic.tim@example.org");
        assert_eq!(mailbox("Victim+1@Example.org"), "victim@example.org");
    }

    #[test]
    fn a_mailbox_is_the_address_without_case_and_tag() {
        assert_eq!(mailbox("Victim+1@Example.org"), "victim@example.org");
        assert_eq!(mailbox(" victim+a+b@example.org "), "victim@example.org");
        assert_eq!(mailbox("victim@example.org"), "victim@example.org");
        // No base to keep: the address is its own mailbox.
        assert_eq!(mailbox("+only@example.org"), "+only@example.org");
        assert_eq!(mailbox("not an address"), "not an address");
    }

    #[test]
    fn validity_table() {
        for good in [
            "a@b.se",
            "åsa.öberg@exempel.se",
            "x+tag@localhost",
            "o'neil@example.com",
        ] {
            assert!(is_valid(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b",
            "a b@c.se",
            "a@b@c.se",
            "a@b..se",
            "a\r\nBcc: x@y.se@c.se",
            "<a@b.se>",
            "a@-b.se",
            ".a@b.se",
            "\"q\"@b.se",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        assert!(!is_valid(&format!("{}@b.se", "x".repeat(65))));
    }

    #[test]
    fn normalisation_folds_the_domain_only() {
        assert_eq!(normalize(" Asa@Exempel.SE "), "Asa@exempel.se");
        assert_eq!(normalize("<asa@EXEMPEL.se>"), "asa@exempel.se");
        assert!(same("asa@EXEMPEL.se", "asa@exempel.se"));
        assert!(!same("Asa@exempel.se", "asa@exempel.se"));
    }

    #[test]
    fn header_values_cannot_carry_line_breaks() {
        assert_eq!(
            header_safe("Åsa\r\nBcc: victim@example.se"),
            "Åsa Bcc: victim@example.se"
        );
        assert_eq!(header_safe("  a \t b\0 "), "a b");
    }

    #[test]
    fn system_senders() {
        for s in [
            "MAILER-DAEMON@x.se",
            "postmaster@x.se",
            "news-bounces@x.se",
            "noreply@x.se",
            "list-request@x.se",
        ] {
            assert!(is_system_sender(s), "{s}");
        }
        assert!(!is_system_sender("asa@x.se"));
    }

    #[test]
    fn addresses_are_redacted_in_archived_text() {
        assert_eq!(
            redact_addresses("Den 1 dec. skrev Anna Berg <anna.berg@example.org>:"),
            "Den 1 dec. skrev Anna Berg <…@example.org>:"
        );
        assert_eq!(redact_addresses("mejla bo@ek.se."), "mejla …@ek.se.");
        assert_eq!(
            redact_addresses("kl 12 @ hemma, @home"),
            "kl 12 @ hemma, @home"
        );
        assert_eq!(redact_addresses("åsa@exempel.se"), "…@exempel.se");
    }
}
