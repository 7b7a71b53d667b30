//! SurfControl's e-mail filter, which writes “Addressed To: a@b”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "surfcontrol",
    detect,
    cues: &["addressed to"],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.field("x-mailer") == Some("surfcontrol e-mail filter")
}
