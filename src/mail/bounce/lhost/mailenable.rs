//! MailEnable, which names the recipient as `[SMTP:a@b]`.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "mailenable",
    detect,
    cues: &["[smtp"],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.text.contains("[smtp:")
}
