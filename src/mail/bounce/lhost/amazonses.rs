//! Amazon SES sending: its DSNs and its SNS JSON notifications.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "amazonses",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-amz-sns-message-id")
        || h.has("x-ses-outgoing")
        || h.has("x-aws-outgoing")
        || h.header.contains("amazonses.com")
}
