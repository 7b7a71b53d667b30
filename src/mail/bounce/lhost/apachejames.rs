//! Apache James.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "apachejames",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject == "[bounce]"
        || h.message_id.contains(".javamail.")
        || h.received_has("james smtp server")
}
