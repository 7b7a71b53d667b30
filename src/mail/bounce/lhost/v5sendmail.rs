//! Sendmail version 5.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "v5sendmail",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("returned mail: ") && !h.subject.ends_with("see transcript for details")
}
