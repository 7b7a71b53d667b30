//! Google Workspace (G Suite) for a domain.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "gsuite",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.ends_with("<mailer-daemon@googlemail.com>")
        && h.subject.starts_with("delivery status notification")
        && h.has("x-gm-message-state")
}
