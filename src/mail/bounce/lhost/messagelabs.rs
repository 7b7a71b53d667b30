//! Symantec MessageLabs.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "messagelabs",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-msg-ref") && h.from.contains("mailer-daemon@messagelabs.com")
}
