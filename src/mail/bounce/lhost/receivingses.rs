//! Amazon SES receiving mail for a domain.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "receivingses",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-ses-outgoing") && h.text.contains("this message could not be delivered.")
}
