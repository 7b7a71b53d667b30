//! AOL.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "aol",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-aol-ip") || h.from.contains("mailer-daemon@aol.com")
}
