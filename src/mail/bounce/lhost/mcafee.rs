//! McAfee's e-mail appliance.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "mcafee",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.field("x-nai-header")
        .is_some_and(|v| v.starts_with("modified by mcafee "))
}
