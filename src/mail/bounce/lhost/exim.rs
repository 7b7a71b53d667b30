//! Exim.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "exim",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    (h.from.starts_with("mail delivery system")
        && [
            "delivery status notification",
            "mail delivery failed",
            "mail failure",
            "message frozen",
            "warning: message ",
            "error(s) in forwarding or filtering",
        ]
        .iter()
        .any(|s| h.subject.contains(s)))
        || h.text
            .contains("this message was created automatically by mail delivery software")
}
