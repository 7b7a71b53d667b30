//! qmail and its variants (vpopmail, qmail-ldap, netqmail).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "qmail",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject == "failure notice"
        || h.received
            .iter()
            .any(|r| r.contains("(qmail ") && r.contains("invoked for bounce)"))
        || h.text.contains("this is the qmail-send program")
        || h.text.contains("qmail")
}
