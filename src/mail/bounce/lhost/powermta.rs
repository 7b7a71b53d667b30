//! PowerMTA.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "powermta",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("delivery report") || h.text.contains("x-powermta-bouncecategory")
}
