//! Courier mail server.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "courier",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.contains("courier mail server at ")
        || h.subject.contains("notice: mail delivery status.")
        || h.subject.contains("warning: delayed mail.")
        || h.message_id.starts_with("<courier.")
}
