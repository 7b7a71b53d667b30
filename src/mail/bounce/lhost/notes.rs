//! Lotus Notes.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "notes",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("undeliverable message")
}
