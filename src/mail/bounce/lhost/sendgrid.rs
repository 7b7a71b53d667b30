//! SendGrid.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "sendgrid",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.field("return-path") == Some("<apps@sendgrid.net>")
}
