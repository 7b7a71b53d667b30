//! Amazon WorkMail.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "amazonworkmail",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-ses-outgoing")
        && (h.field("x-original-mailer") == Some("amazon workmail")
            || h.field("x-mailer") == Some("amazon workmail"))
}
