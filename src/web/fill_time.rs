//! The subscribe form's minimum fill time: a form carries the moment it
//! was served, signed, and a post that comes back sooner than a person can
//! type an address was sent by a program.
//!
//! Only a stamp that verifies counts. A post without one (a form pasted
//! into another site long ago, a client that drops hidden fields) is
//! judged by the honeypot alone, so no real sign-up is lost to a missing
//! field; a stale stamp is simply old, which a person's post may be too.

use crate::token::Secret;

/// Faster than this from serving the form to its post, nobody typed it.
/// Kept short: a person whose browser fills the form in still has to
/// look at it and press the button.
pub const MIN_FILL_MILLIS: i64 = 1_500;

/// The reason such a post is recorded with (`utskick ignored`).
pub const SENT_TOO_FAST: &str = "web form: sent too fast";

fn mac(secret: &Secret, list: &str, millis: i64) -> String {
    let full = secret.fingerprint("form-started", &format!("{list}:{millis}"));
    full[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The hidden field's value for a form of `list` served at `millis`.
pub fn stamp(secret: &Secret, list: &str, millis: i64) -> String {
    format!("{millis}-{}", mac(secret, list, millis))
}

/// Milliseconds since the form was served, if `value` is a stamp we made
/// for `list`; None for anything else.
pub fn elapsed(secret: &Secret, list: &str, value: &str, now_millis: i64) -> Option<i64> {
    let (millis, tag) = value.trim().split_once('-')?;
    let millis: i64 = millis.parse().ok()?;
    let expected = mac(secret, list, millis);
    let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), tag.as_bytes()).into();
    same.then_some(now_millis - millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_stamp_for_this_list_tells_the_time() {
        let secret = Secret::from_bytes([5; 32]);
        let s = stamp(&secret, "nat", 1_000);
        assert_eq!(elapsed(&secret, "nat", &s, 1_700), Some(700));
        assert_eq!(elapsed(&secret, "annan", &s, 1_700), None);
        assert_eq!(
            elapsed(&Secret::from_bytes([6; 32]), "nat", &s, 1_700),
            None
        );
        let forged = s.replacen("1000", "1", 1);
        assert_eq!(elapsed(&secret, "nat", &forged, 1_700), None);
        assert_eq!(elapsed(&secret, "nat", "", 1_700), None);
        assert_eq!(elapsed(&secret, "nat", "x-y", 1_700), None);
    }
}
