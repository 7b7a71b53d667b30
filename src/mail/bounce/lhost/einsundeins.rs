//! 1&1 (IONOS).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "einsundeins",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.starts_with("\"mail delivery system\"")
        && h.subject == "mail delivery failed: returning message to sender"
}
