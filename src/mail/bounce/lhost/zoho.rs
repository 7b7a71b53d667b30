//! Zoho Mail.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "zoho",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-zohomail")
}
