//! An unnamed MTA: “Returned Mail” from “Mail Deliver System”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "x1",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("returned mail: ") && h.from.starts_with("\"mail deliver system\" ")
}
