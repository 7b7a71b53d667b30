//! Trend Micro InterScan Messaging Security Suite.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "interscanmss",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.starts_with("\"interscan mss\"")
        || h.from.starts_with("\"interscan notification\"")
        || [
            "mail could not be delivered",
            "メッセージを配信できません。",
            "メール配信に失敗しました",
        ]
        .contains(&h.subject.as_str())
}
