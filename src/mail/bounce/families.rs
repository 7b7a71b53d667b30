//! Which MTA or service wrote a delivery report, by the marks each family
//! leaves (sisimai's `lhost` names where they match). The parser reads
//! every family the same way (RFC 3464 core, then the text); the family
//! says which one was tried when a report names nobody, and where to add a
//! rule. Pure.
//!
//! Adding a family: one row in [`FAMILIES`] (its marks, lower case) and a
//! sample with its `family` in `tests/corpus/bounces/expected.json`.

use mail_parser::Message;

/// Where a mark is looked for.
#[derive(Clone, Copy)]
enum In {
    /// The raw header block (names and values).
    Header,
    /// The report's own text (not the returned original).
    Text,
}

/// (family, where, marks): the first family with a mark present wins, so
/// relays and services come before the MTAs they run on.
const FAMILIES: &[(&str, In, &[&str])] = &[
    ("amazonses", In::Header, &["amazonses.com"]),
    ("sendgrid", In::Header, &["sendgrid"]),
    ("googlegroups", In::Header, &["googlegroups.com"]),
    (
        "office365",
        In::Text,
        &["diagnostic information for administrators", "office 365"],
    ),
    (
        "exchange2007",
        In::Text,
        &[
            "delivery has failed to these recipients or groups",
            "your message did not reach some or all of the intended recipients",
        ],
    ),
    (
        "exchange2003",
        In::Text,
        &[
            "did not reach the following recipient",
            "msexch:",
            "dda:smtp=",
        ],
    ),
    ("mailenable", In::Text, &["[smtp:"]),
    ("gmail", In::Header, &["mailer-daemon@googlemail.com"]),
    (
        "gmail",
        In::Text,
        &["delivery to the following recipient failed permanently"],
    ),
    (
        "yahoo",
        In::Text,
        &["sorry, we were unable to deliver your message"],
    ),
    ("aol", In::Header, &["mailer-daemon@aol.com"]),
    (
        "qmail",
        In::Text,
        &["this is the qmail-send program", "qmail"],
    ),
    ("postfix", In::Text, &["this is the mail system at host"]),
    ("postfix", In::Header, &["x-postfix-queue-id", "(postfix)"]),
    (
        "exim",
        In::Text,
        &["this message was created automatically by mail delivery software"],
    ),
    (
        "sendmail",
        In::Text,
        &[
            "----- transcript of session follows -----",
            "the following addresses had permanent fatal errors",
            "----- unsent message follows -----",
        ],
    ),
    (
        "opensmtpd",
        In::Text,
        &["this is the mailer-daemon, please do not reply"],
    ),
    ("courier", In::Text, &["courier mail server"]),
    (
        "imailserver",
        In::Text,
        &["original message follows.", "invalid final delivery userid"],
    ),
    ("imailserver", In::Header, &["smtp32", "imail"]),
    ("domino", In::Text, &["was not delivered to:"]),
    ("airmail", In::Text, &["failed addresses follow"]),
    (
        "messagingserver",
        In::Header,
        &[
            "sun java system messaging server",
            "oracle communications messaging",
        ],
    ),
    ("dragonfly", In::Text, &["dragonfly mail agent"]),
];

/// The family of a delivery report: a name from [`FAMILIES`], else
/// `rfc3464` for a report with a delivery-status part, else `text`.
pub fn family(msg: &Message<'_>, texts: &[String], has_dsn: bool) -> &'static str {
    let mut header = String::new();
    for (name, value) in msg.headers_raw() {
        header.push_str(name);
        header.push(':');
        header.push_str(value);
        header.push('\n');
    }
    let header = header.to_lowercase();
    let text = texts.join("\n").to_lowercase();
    for (name, place, marks) in FAMILIES {
        let hay = match place {
            In::Header => &header,
            In::Text => &text,
        };
        if marks.iter().any(|m| hay.contains(m)) {
            return name;
        }
    }
    if has_dsn {
        "rfc3464"
    } else {
        "text"
    }
}
