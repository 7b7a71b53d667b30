//! Why a delivery failed, in sisimai's vocabulary (`userunknown`,
//! `mailboxfull`, `hostunknown`, `expired`, ...). Pure.
//!
//! The diagnostic wording decides first (a `550 5.1.1` over "mailbox full"
//! is a full mailbox: servers put all sorts of texts behind generic
//! codes), then the enhanced status code's subject and detail (RFC 3463).

use crate::mail::bounce_words::lower_unfolded;

/// Wording of a diagnostic → reason, in the order tried (the first match
/// wins, so the narrower phrases come first).
const BY_WORDING: &[(&str, &[&str])] = &[
    (
        "mailboxfull",
        &[
            "mailbox full",
            "mailbox is full",
            "mailbox is over quota",
            "mailbox has exceeded",
            "mailbox size limit",
            "over quota",
            "overquota",
            "quota exceeded",
            "exceeded storage",
            "exceeds storage",
            "insufficient storage",
            "user is over",
            "full mailbox",
            "not enough storage",
            "disk quota",
        ],
    ),
    (
        "mesgtoobig",
        &[
            "message too large",
            "message too big",
            "message is too large",
            "message size exceeds",
            "size exceeds",
            "exceeds the maximum size",
            "exceeds size limit",
            "message length exceeds",
            "too large",
        ],
    ),
    ("virusdetected", &["virus"]),
    (
        "spamdetected",
        &["spam", "junk mail", "unsolicited", "bulk mail"],
    ),
    (
        "authfailure",
        &["spf", "dkim", "dmarc", "sender authentication"],
    ),
    (
        "requireptr",
        &["reverse dns", "ptr record", "no ptr", "rdns"],
    ),
    // The recipient's side refuses the sender, not the recipient: our
    // envelope sender, or a group that takes posts from members only.
    (
        "rejected",
        &[
            "sender address rejected",
            "sender rejected",
            "sender verify failed",
            "sender not allowed",
            "sender is not allowed",
            "permission to post",
            "not allowed to post",
        ],
    ),
    (
        "blocked",
        &[
            "blacklist",
            "blocklist",
            "block list",
            "black list",
            "dnsbl",
            "rbl",
            "listed at",
            "listed in",
            "blocked",
            "poor reputation",
            "access denied",
        ],
    ),
    (
        "norelaying",
        &[
            "relay access denied",
            "relaying denied",
            "relay not permitted",
            "not permitted to relay",
            "relaying not allowed",
            "we do not relay",
            "unable to relay",
        ],
    ),
    (
        "hasmoved",
        &[
            "has moved",
            "no longer available at this address",
            "moved to",
        ],
    ),
    (
        "suspend",
        &[
            "account disabled",
            "account has been disabled",
            "account is disabled",
            "disabled account",
            "suspended",
            "inactive",
            "deactivated",
            "account is locked",
            "account locked",
            "not active",
        ],
    ),
    (
        "userunknown",
        &[
            "user unknown",
            "unknown user",
            "no such user",
            "no such recipient",
            "no such mailbox",
            "no such address",
            "no mailbox",
            "mailbox not found",
            "mailbox unavailable",
            "mailbox does not exist",
            "user not found",
            "user doesn't exist",
            "user does not exist",
            "does not exist",
            "doesn't exist",
            "unknown recipient",
            "invalid recipient",
            "recipient unknown",
            "recipient not found",
            "unknown address",
            "address unknown",
            "invalid address",
            "invalid mailbox",
            "not a valid mailbox",
            "unknown local part",
            "unknown or illegal alias",
            "no account",
            "invalid final delivery userid",
            "not listed in",
            "addressee unknown",
            "unrouteable address",
            "recipient address rejected",
            "user invalid",
            "bad destination mailbox",
        ],
    ),
    (
        "hostunknown",
        &[
            "host unknown",
            "unknown host",
            "host not found",
            "domain not found",
            "no such domain",
            "domain does not exist",
            "unrouteable mail domain",
            "unknown domain",
            "name service error",
            "nxdomain",
            "no mx",
            "host or domain name not found",
        ],
    ),
    (
        "expired",
        &[
            "retry timeout exceeded",
            "retry time not reached",
            "too long in the queue",
            "in the queue too long",
            "has been in the queue",
            "delivery time expired",
            "message expired",
            "could not be delivered within",
            "gave up",
            "given up",
            "expired",
            "will continue to try",
            "will keep trying",
            "will retry",
            "has been delayed",
            "not yet been delivered",
            "delivery delayed",
            "delayed",
        ],
    ),
    (
        "toomanyconn",
        &["too many connections", "too many concurrent"],
    ),
    (
        "networkerror",
        &[
            "connection refused",
            "connection timed out",
            "network is unreachable",
            "no route to host",
            "lost connection",
            "connection reset",
        ],
    ),
    (
        "systemfull",
        &["insufficient system storage", "system is full"],
    ),
    ("policyviolation", &["policy"]),
    (
        "filtered",
        &[
            "filter",
            "refused to accept",
            "not accepting",
            "rejected by the recipient",
        ],
    ),
    (
        "systemerror",
        &[
            "system error",
            "internal error",
            "local error",
            "server error",
        ],
    ),
];

/// Enhanced status code → reason, by `class.subject.detail` (class ignored).
const BY_STATUS: &[(&str, &str)] = &[
    ("1.1", "userunknown"),
    ("1.0", "userunknown"),
    ("1.2", "hostunknown"),
    ("1.3", "userunknown"),
    ("1.6", "hasmoved"),
    ("1.8", "rejected"),
    ("1.7", "rejected"),
    ("1.10", "notaccept"),
    ("2.0", "userunknown"),
    ("2.1", "suspend"),
    ("2.2", "mailboxfull"),
    ("2.3", "exceedlimit"),
    ("3.1", "systemfull"),
    ("3.4", "mesgtoobig"),
    ("4.4", "hostunknown"),
    ("4.6", "networkerror"),
    ("4.7", "expired"),
    ("4.1", "networkerror"),
    ("4.2", "networkerror"),
    ("4.3", "systemerror"),
    ("4.5", "systemfull"),
    ("5.1", "syntaxerror"),
    ("5.2", "syntaxerror"),
    ("5.3", "toomanyconn"),
    ("6.0", "contenterror"),
    ("7.1", "rejected"),
    ("7.23", "authfailure"),
    ("7.25", "requireptr"),
    ("7.26", "authfailure"),
    ("7.27", "authfailure"),
    ("7.9", "securityerror"),
    ("7.13", "suspend"),
];

/// The reason for one failure, from its diagnostic text and enhanced
/// status code; None when neither tells.
pub(crate) fn classify(status: Option<&str>, diagnostic: &str) -> Option<String> {
    let lc = lower_unfolded(diagnostic);
    for (reason, phrases) in BY_WORDING {
        if phrases.iter().any(|p| contains_word(&lc, p)) {
            return Some((*reason).to_string());
        }
    }
    let rest = status?.split_once('.')?.1;
    BY_STATUS
        .iter()
        .find(|(code, _)| *code == rest)
        .map(|(_, reason)| (*reason).to_string())
}

/// What a report says when its MTA stopped retrying a delivery: the
/// queue lifetime ran out (lower case, as in the text).
const RETRIES_RAN_OUT: &[&str] = &[
    "giving up",
    "given up",
    "gave up",
    "not delivered within",
    "could not be delivered for",
    "could not deliver for",
    "retry timeout exceeded",
    "delivery time expired",
    "message expired",
    "too long in the queue",
    "in the queue too long",
    "after multiple retries",
    "did not accept our requests to connect",
];

/// Whether `text` (a report's own text) says its MTA stopped retrying.
pub(crate) fn retries_ran_out(text: &str) -> bool {
    let lc = lower_unfolded(text);
    RETRIES_RAN_OUT.iter().any(|p| lc.contains(p))
}

/// `phrase` in `text`, not inside a longer word ("rbl" is not in "verbless").
fn contains_word(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + phrase.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn phrases_are_read_across_line_breaks() {
        assert_eq!(
            classify(None, "you may not have permission to\n   post to the group").as_deref(),
            Some("rejected")
        );
        assert_eq!(
            crate::mail::bounce_words::lower_unfolded("  A\n\tB  c "),
            "a b c"
        );
    }

    #[test]
    fn wording_first_then_the_status_code() {
        assert_eq!(
            classify(Some("5.1.1"), "550 5.1.1 mailbox is full").as_deref(),
            Some("mailboxfull")
        );
        assert_eq!(
            classify(Some("5.1.1"), "550 sorry").as_deref(),
            Some("userunknown")
        );
        assert_eq!(classify(Some("4.4.7"), "").as_deref(), Some("expired"));
        assert_eq!(classify(None, "verbless prose").as_deref(), None);
        assert_eq!(
            classify(None, "554 rejected: listed at zen.spamhaus.org").as_deref(),
            Some("blocked")
        );
    }
}
