//! Bigfoot.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "bigfoot",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.contains("@bigfoot.com>") || h.received_has(".bigfoot.com")
}
