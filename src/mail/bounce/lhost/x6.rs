//! An unnamed MTA: “There was an error sending your mail”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "x6",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject
        .starts_with("there was an error sending your mail")
}
