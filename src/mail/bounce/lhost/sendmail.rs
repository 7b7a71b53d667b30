//! Sendmail, which names a forward's source “(expanded from: a@b)”.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "sendmail",
    detect,
    cues: &["(expanded from"],
    headings: &["the following addresses had"],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.subject.ends_with("see transcript for details")
        || h.text.contains("----- transcript of session follows -----")
        || h.text
            .contains("the following addresses had permanent fatal errors")
        || h.text.contains("----- unsent message follows -----")
}
