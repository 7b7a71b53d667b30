//! HCL (Lotus) Domino, which writes “was not delivered to: a@b”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "domino",
    detect,
    cues: &["was not delivered to"],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("delivery failure:")
        || h.subject.starts_with("delivery_failure:")
        || h.text.contains("was not delivered to:")
}
