//! BIGLOBE and its sister providers (Japan).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "biglobe",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.contains("postmaster@")
        && ["biglobe", "inacatv", "tmtv", "ttv"]
            .iter()
            .any(|d| h.from.contains(&format!("@{d}.ne.jp")))
        && h.subject.starts_with("returned mail:")
}
