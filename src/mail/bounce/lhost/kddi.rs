//! KDDI (au one net).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "kddi",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.from.contains(".dion.ne.jp")
        || h.field("reply-to") == Some("no-reply@app.auone-net.jp")
        || h.received_has("ezweb.ne.jp (")
        || h.received_has(".au.com (")
}
