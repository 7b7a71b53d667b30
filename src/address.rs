//! Pure address handling: validating and normalising addresses, and reading a
//! recipient such as `lokal-finansiering-confirm+TOKEN@d` as (list, action).
//!
//! No I/O here; the store and the token check live elsewhere.

use crate::daemon::lists::{List, Lists};

/// Longest address we accept (RFC 5321 §4.5.3.1.3 path limit, less the brackets).
pub const MAX_ADDRESS_LEN: usize = 254;
/// Longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_LEN: usize = 64;

/// The suffixes that a list's local part grows for its command addresses.
const SUFFIXES: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "request",
    "owner",
    "confirm",
    "reply",
    "bounces",
];

/// What mail to one of a list's addresses asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `L@D`
    Post,
    /// `L-subscribe@D`
    Subscribe,
    /// `L-unsubscribe@D`
    Unsubscribe,
    /// `L-request@D`
    Request,
    /// `L-owner@D`
    Owner,
    /// `L-confirm+TOKEN@D`
    Confirm(String),
    /// `L-unsubscribe+TOKEN@D`
    UnsubscribeToken(String),
    /// `L-reply+TOKEN@D`
    Reply(String),
    /// `L-bounces+TOKEN@D` or `L-bounces@D`
    Bounces(Option<String>),
}

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

/// The form addresses are stored and compared in: trimmed, the domain in lower
/// case. The local part keeps its case (RFC 5321 §2.4 leaves it to the host).
pub fn normalize(addr: &str) -> String {
    let addr = addr.trim().trim_start_matches('<').trim_end_matches('>');
    match split(addr) {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => addr.to_string(),
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

/// Whether two lists' addresses would be ambiguous: `news` and `news-request`.
pub fn local_parts_collide(a: &str, b: &str) -> bool {
    let derived = |base: &str, other: &str| {
        other == base
            || SUFFIXES
                .iter()
                .any(|s| other.strip_prefix(base).and_then(|r| r.strip_prefix('-')) == Some(s))
    };
    derived(a, b) || derived(b, a)
}

/// Reads a recipient as one of our lists' addresses. None means the address is
/// not ours, and the caller refuses it (550).
pub fn parse_recipient<'l>(
    rcpt: &str,
    domain: &str,
    lists: &'l Lists,
) -> Option<(&'l List, Action)> {
    let rcpt = rcpt.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, rdomain) = split(rcpt)?;
    if !rdomain.eq_ignore_ascii_case(domain) {
        return None;
    }
    // Our own local parts are lower case and tokens are lower-case base32, so
    // folding is safe and survives mail servers that upper-case addresses.
    let local = local.to_ascii_lowercase();
    let (base, token) = match local.split_once('+') {
        Some((base, token)) => (base, Some(token)),
        None => (local.as_str(), None),
    };
    if let Some(token) = token {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
    }
    if let Some(list) = lists.by_address(base) {
        return match token {
            None => Some((list, Action::Post)),
            Some(_) => None,
        };
    }
    let (list_local, suffix) = base.rsplit_once('-')?;
    let list = lists.by_address(list_local)?;
    let token = token.map(str::to_string);
    let action = match (suffix, token) {
        ("subscribe", None) => Action::Subscribe,
        ("unsubscribe", None) => Action::Unsubscribe,
        ("unsubscribe", Some(t)) => Action::UnsubscribeToken(t),
        ("request", None) => Action::Request,
        ("owner", None) => Action::Owner,
        ("confirm", Some(t)) => Action::Confirm(t),
        ("reply", Some(t)) => Action::Reply(t),
        ("bounces", t) => Action::Bounces(t),
        _ => return None,
    };
    Some((list, action))
}

/// The full address of a list's command address: `suffix` "" gives `L@D`.
pub fn list_address(list: &List, suffix: &str, token: Option<&str>, domain: &str) -> String {
    let mut local = list.address.clone();
    if !suffix.is_empty() {
        local.push('-');
        local.push_str(suffix);
    }
    if let Some(t) = token {
        local.push('+');
        local.push_str(t);
    }
    format!("{local}@{domain}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::lists::List;

    fn lists() -> Lists {
        let mut l = Lists::default();
        l.insert(
            List::parse(
                "lokal-finansiering",
                "name = \"LF\"\naddress = \"lokal-finansiering\"\n",
            )
            .unwrap(),
        )
        .unwrap();
        l.insert(List::parse("partnerskap", "name = \"P\"\naddress = \"partnerskap\"\n").unwrap())
            .unwrap();
        l
    }

    #[test]
    fn recipients_table() {
        let lists = lists();
        let t = |s: &str| parse_recipient(s, "example.se", &lists).map(|(l, a)| (l.id.clone(), a));
        let lf = || "lokal-finansiering".to_string();
        let cases: Vec<(&str, Option<(String, Action)>)> = vec![
            ("lokal-finansiering@example.se", Some((lf(), Action::Post))),
            (
                "<lokal-finansiering@EXAMPLE.SE>",
                Some((lf(), Action::Post)),
            ),
            (
                "Lokal-Finansiering-Subscribe@example.se",
                Some((lf(), Action::Subscribe)),
            ),
            (
                "lokal-finansiering-unsubscribe@example.se",
                Some((lf(), Action::Unsubscribe)),
            ),
            (
                "lokal-finansiering-request@example.se",
                Some((lf(), Action::Request)),
            ),
            (
                "lokal-finansiering-owner@example.se",
                Some((lf(), Action::Owner)),
            ),
            (
                "lokal-finansiering-confirm+abc234@example.se",
                Some((lf(), Action::Confirm("abc234".into()))),
            ),
            (
                "LOKAL-FINANSIERING-CONFIRM+ABC234@EXAMPLE.SE",
                Some((lf(), Action::Confirm("abc234".into()))),
            ),
            (
                "lokal-finansiering-unsubscribe+xyz@example.se",
                Some((lf(), Action::UnsubscribeToken("xyz".into()))),
            ),
            (
                "lokal-finansiering-reply+xyz@example.se",
                Some((lf(), Action::Reply("xyz".into()))),
            ),
            (
                "lokal-finansiering-bounces+xyz@example.se",
                Some((lf(), Action::Bounces(Some("xyz".into())))),
            ),
            (
                "lokal-finansiering-bounces@example.se",
                Some((lf(), Action::Bounces(None))),
            ),
            (
                "partnerskap-subscribe@example.se",
                Some(("partnerskap".into(), Action::Subscribe)),
            ),
            // Not ours: the daemon is never an open relay.
            ("lokal-finansiering@example.com", None),
            ("someone@example.se", None),
            ("lokal-finansiering-confirm@example.se", None),
            ("lokal-finansiering-confirm+@example.se", None),
            ("lokal-finansiering-confirm+a.b@example.se", None),
            ("lokal-finansiering+x@example.se", None),
            ("lokal-finansiering-subscribe+x@example.se", None),
            ("lokal-finansiering-foo@example.se", None),
            ("", None),
            ("@example.se", None),
            ("lokal-finansiering", None),
        ];
        for (input, want) in cases {
            assert_eq!(t(input), want, "{input}");
        }
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
}
