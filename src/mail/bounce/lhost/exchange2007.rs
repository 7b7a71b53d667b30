//! Exchange Server 2007 and later.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "exchange2007",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    // Exchange Online (office365) writes the same; its cross-tenant
    // fields tell it apart.
    let online = h.has("x-ms-exchange-crosstenant-originalarrivaltime")
        || h.has("x-ms-exchange-crosstenant-fromentityheader");
    let subject = ["undeliverable", "non_remis_", "non recapitabile"]
        .iter()
        .any(|s| h.subject.starts_with(s));
    let text = [
        "delivery has failed to these recipients or groups",
        "your message did not reach some or all of the intended recipients",
    ]
    .iter()
    .any(|s| h.text.contains(s));
    !online && ((subject && h.has("content-language")) || text)
}
