//! Postfix.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "postfix",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.contains("smtp server: errors from ")
        || h.subject == "undelivered mail returned to sender"
        || h.text.contains("this is the mail system at host")
        || h.has("x-postfix-queue-id")
}
