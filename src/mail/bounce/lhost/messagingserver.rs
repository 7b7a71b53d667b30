//! Oracle (Sun Java System) Messaging Server.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "messagingserver",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.field("content-type")
        .is_some_and(|v| v.contains("boundary_(id_"))
        || h.subject.starts_with("delivery notification: ")
        || h.header.contains("sun java system messaging server")
        || h.header.contains("oracle communications messaging")
}
