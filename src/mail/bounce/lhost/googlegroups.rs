//! Google Groups.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "googlegroups",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    // A group refuses posts it does not take (not a member, no such
    // group): its reports say so in the sender's language only.
    reason: Some("rejected"),
};

fn detect(h: &Head) -> bool {
    h.header.contains("googlegroups.com")
        || (h.from.ends_with("<mailer-daemon@googlemail.com>")
            && h.has("x-failed-recipients")
            && h.has("x-google-smtp-source")
            && h.subject.starts_with("delivery status notification"))
}
