//! An unnamed MTA: “Delivery failure”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "x2",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("delivery failure")
        || h.subject.starts_with("failure delivery")
        || h.subject.starts_with("failed delivery")
}
