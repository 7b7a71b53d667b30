//! Verizon Wireless (vtext.com, vzwpix.com).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "verizon",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.received_has(".vtext.com (")
        && (h.from.contains("post_master@vtext.com") || h.from.contains(".vzwpix.com"))
}
