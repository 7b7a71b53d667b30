//! Gmail.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "gmail",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.contains("mailer-daemon@googlemail.com")
        || h.text
            .contains("delivery to the following recipient failed permanently")
}
