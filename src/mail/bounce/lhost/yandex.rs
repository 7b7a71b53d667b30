//! Yandex.Mail.

use super::{Head, Lhost};

pub(super) const LHOST: Lhost = Lhost {
    name: "yandex",
    detect,
    cues: &[],
    headings: &[],
    respell: None,
    reason: None,
};

fn detect(h: &Head) -> bool {
    h.has("x-yandex-uniq") || h.from.contains("mailer-daemon@yandex.ru")
}
