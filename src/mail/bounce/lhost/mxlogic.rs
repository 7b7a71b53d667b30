//! McAfee SaaS (MXLogic).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "mxlogic",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-mx-bounce") || h.has("x-mxl-hash") || h.has("x-mxl-notehash")
}
