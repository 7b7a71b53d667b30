//! Mail.ru (an Exim of its own).

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "mailru",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    (h.from.contains("mailer-daemon@") && h.from.contains("mail.ru"))
        || h.message_id.ends_with(".mail.ru>")
        || h.message_id.ends_with("smailru.net>")
}
