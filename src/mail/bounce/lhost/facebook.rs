//! Facebook's mail servers.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "facebook",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.contains("mailer-daemon@mx.facebook.com")
}
