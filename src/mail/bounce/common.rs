//! What every bounce reader shares: the [`Failure`] it reports and MIME helpers.

use crate::mail::bounce_words::addresses_in;
use crate::mail::html_text::html_to_text;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// One recipient that a delivery report says could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The failed recipient, lower case, without < >.
    pub recipient: String,
    /// true: permanent (5.x.x / 5yz); false: temporary (4.x.x / 4yz, delays).
    pub permanent: bool,
    /// Enhanced status code when known ("5.1.1"), else None.
    pub status: Option<String>,
    /// Short diagnostic text (one line, at most 200 chars) for the owner's log.
    pub diagnostic: String,
    /// Why, in sisimai's vocabulary (`userunknown`, `mailboxfull`,
    /// `hostunknown`, `expired`, ...), when the report says.
    pub reason: Option<String>,
}

pub(crate) fn has_type(
    part: &mail_parser::MessagePart<'_>,
    ctype: &str,
    subtypes: &[&str],
) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|w| s.eq_ignore_ascii_case(w)))
    })
}

/// Calls `f` with each original a report carries: a `message/rfc822`
/// part, or the header of a `text/rfc822-headers` part.
pub(crate) fn for_each_original(msg: &Message<'_>, mut f: impl FnMut(&Message<'_>)) {
    for part in &msg.parts {
        match &part.body {
            PartType::Message(m) => f(m),
            PartType::Text(t) if has_type(part, "text", &["rfc822-headers", "rfc822-header"]) => {
                if let Some(m) = MessageParser::default().parse_headers(t.as_bytes()) {
                    f(&m);
                }
            }
            _ => {}
        }
    }
}

/// The body of a leaf part as text (DSN parts arrive as `Binary`).
pub(crate) fn part_text(body: &PartType<'_>) -> Option<String> {
    match body {
        PartType::Text(t) => Some(t.to_string()),
        PartType::Html(h) => Some(html_to_text(h)),
        PartType::Binary(b) | PartType::InlineBinary(b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    }
}

/// Every address in the raw values of the top-level headers called `name`.
pub(crate) fn header_addresses(msg: &Message<'_>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, v) in msg.headers_raw() {
        if n.trim().eq_ignore_ascii_case(name) {
            out.extend(addresses_in(v).into_iter().map(|(_, _, a)| a));
        }
    }
    out
}
