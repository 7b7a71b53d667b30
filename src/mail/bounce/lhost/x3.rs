//! An unnamed MTA: “Delivery status notification” from “Mail Delivery System”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "x3",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("delivery status notification")
        && h.from.starts_with("mail delivery system")
        && h.text
            .contains("this is an automatically generated delivery status notification")
}
