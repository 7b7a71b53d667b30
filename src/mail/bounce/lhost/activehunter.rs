//! QUALITIA Active!hunter.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "activehunter",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-ahmailid")
}
