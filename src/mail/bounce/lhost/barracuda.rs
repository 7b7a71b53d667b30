//! Barracuda's spam firewall.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "barracuda",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.ends_with("our bulk email filter**")
}
