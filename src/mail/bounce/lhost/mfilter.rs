//! m-FILTER.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "mfilter",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.field("x-mailer") == Some("m-filter")
}
