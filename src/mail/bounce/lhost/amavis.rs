//! amavisd-new, the content filter.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "amavis",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.starts_with("\"content-filter at ")
}
