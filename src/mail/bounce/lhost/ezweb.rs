//! au by KDDI's EZweb (Japanese mobile).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "ezweb",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.contains("postmaster@ezweb.ne.jp")
        || h.from.contains("postmaster@au.com")
        || h.subject == "mail system error - returned mail"
        || h.received_has("ezweb.ne.jp (ezweb mail) with")
}
