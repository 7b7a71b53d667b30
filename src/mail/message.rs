//! Reading a parsed message: its sender, its Message-ID, a display name
//! clipped to size, and the check that the bytes are a message at all. Pure.

use crate::address;
use mail_parser::{Message, MessageParser};

/// Parses `raw`; None unless it starts with a well-formed header field
/// (mail-parser is lenient and takes any bytes before a colon as a name).
pub fn parse_message(raw: &[u8]) -> Option<Message<'_>> {
    let msg = MessageParser::default().parse(raw)?;
    let well_formed =
        |name: &str| !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    match msg.headers().first() {
        Some(first) if well_formed(first.name()) => Some(msg),
        _ => None,
    }
}

/// The sender: From's first address, else the envelope sender.
pub(crate) fn sender<'m>(
    msg: &'m Message<'m>,
    reverse_path: Option<&'m str>,
) -> Option<(String, String)> {
    if let Some(addr) = msg.from().and_then(|f| f.first()) {
        if let Some(email) = addr.address() {
            let name = addr.name().map(clip_name).unwrap_or_default();
            return Some((address::normalize(email), name));
        }
    }
    reverse_path
        .filter(|r| !r.is_empty())
        .map(|r| (address::normalize(r), String::new()))
}

/// Longest display name kept (characters): enough for any real name.
pub(crate) const MAX_NAME_CHARS: usize = 200;

/// Longest Message-ID kept as evidence.
pub(crate) const MAX_MESSAGE_ID_CHARS: usize = 250;

/// A display name as stored: header-safe and of sane length.
pub fn clip_name(name: &str) -> String {
    if clipped_already(name) {
        return name.to_string();
    }
    clipped(name)
}

/// [`clip_name`] of an owned name: the name itself when it needs no change
/// (an import's rows, most of which do not).
pub fn clip_name_owned(name: String) -> String {
    if clipped_already(&name) {
        return name;
    }
    clipped(&name)
}

/// `name` made header-safe and cut to [`MAX_NAME_CHARS`] characters.
fn clipped(name: &str) -> String {
    address::header_safe(name)
        .chars()
        .take(MAX_NAME_CHARS)
        .collect()
}

/// True when [`clip_name`] would change nothing (most names): no more
/// characters than bytes, and those bytes within the limit and clean.
fn clipped_already(name: &str) -> bool {
    name.len() <= MAX_NAME_CHARS && address::is_header_safe(name)
}

pub(crate) fn message_id(msg: &Message<'_>) -> Option<String> {
    msg.message_id().map(|id| {
        let id: String = address::header_safe(id)
            .chars()
            .take(MAX_MESSAGE_ID_CHARS)
            .collect();
        format!("<{id}>")
    })
}

#[cfg(test)]
mod clip_tests {
    use super::*;

    /// The shortcut for names that need no change gives what the long way
    /// gives, for those and for the others.
    #[test]
    fn clip_name_owned_is_clip_name() {
        let long = "å".repeat(150);
        for name in [
            "",
            "Åsa Berg",
            " Åsa",
            "Åsa ",
            "Åsa  Berg",
            "Åsa\tBerg",
            "Åsa\r\nBcc: x@y",
            "Åsa\u{a0}Berg",
            long.as_str(),
            &"a".repeat(201),
        ] {
            assert_eq!(
                clip_name_owned(name.to_string()),
                clip_name(name),
                "{name:?}"
            );
            let slow: String = address::header_safe(name)
                .chars()
                .take(MAX_NAME_CHARS)
                .collect();
            assert_eq!(clip_name(name), slow, "{name:?}");
        }
    }
}
