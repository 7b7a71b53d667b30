//! Outlook.com and Hotmail.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "outlook",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    [
        h.subject.starts_with("delivery status notification"),
        h.has("x-message-delivery"),
        h.has("x-message-info"),
        h.received_has(".hotmail.com"),
    ]
    .iter()
    .filter(|m| **m)
    .count()
        >= 2
}
