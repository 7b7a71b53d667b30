//! OpenSMTPD.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "opensmtpd",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.received_has(" (opensmtpd) with ")
        || h.text
            .contains("this is the mailer-daemon, please do not reply")
}
