//! DragonFly Mail Agent (dma).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "dragonfly",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.received_has(" (dragonfly mail agent") || h.text.contains("dragonfly mail agent")
}
