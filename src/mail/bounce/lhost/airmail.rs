//! airmail, which lists them under “Failed addresses follow:”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "airmail",
    detect,
    cues: &[],
    headings: &["failed addresses follow"],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.text.contains("failed addresses follow")
}
