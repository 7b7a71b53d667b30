//! GMX and web.de.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "gmx",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-gmx-antispam")
}
