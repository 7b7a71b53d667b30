//! Ipswitch IMail Server (SMTP32): “Undeliverable Mail”, “Invalid final delivery userid: a@b”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "imailserver",
    detect,
    cues: &["userid"],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.starts_with("undeliverable mail ")
        || h.field("x-mailer")
            .is_some_and(|v| v.starts_with("<smtp32 v"))
        || h.text.contains("invalid final delivery userid")
}
