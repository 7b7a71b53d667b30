//! MailFoundry.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "mailfoundry",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject == "message delivery has failed" && h.received_has("(mailfoundry) id ")
}
