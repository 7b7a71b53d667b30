//! Trustwave MailMarshal.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "mailmarshalsmtp",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("undeliverable mail: \"")
}
