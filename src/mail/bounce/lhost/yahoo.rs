//! Yahoo! Mail.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "yahoo",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-ymailisg")
        || h.text
            .contains("sorry, we were unable to deliver your message")
}
