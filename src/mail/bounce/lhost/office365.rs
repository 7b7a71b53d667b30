//! Microsoft 365 (Exchange Online).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "office365",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-ms-exchange-message-is-ndr")
        || h.has("x-ms-exchange-crosstenant-originalarrivaltime")
        || h.text.contains("diagnostic information for administrators")
        || h.text.contains("office 365")
}
