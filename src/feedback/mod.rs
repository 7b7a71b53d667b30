//! The inbound side of the dialogue: replies to newsletters, bounces and
//! complaints, and the owners' own posts to the list address.
//!
//! Like `commands`, these handlers change the store and queue their mail in
//! one write and never touch the network; the caller syncs before it
//! acknowledges. `reply` and `bounce` do the reading; this module decides.

pub mod bounces;
pub mod discussion;
pub mod forward;
pub mod posts;
pub mod replies;

use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::Subscriber;
use crate::subscription;
use crate::token::Token;

/// The subscriber a newsletter token names on `list`, if the token is genuine.
pub(crate) fn subscriber_of(
    ctx: &Context,
    list: &List,
    token: &str,
) -> anyhow::Result<Option<(Subscriber, Token)>> {
    let Some(t) = Token::decode(token) else {
        return Ok(None);
    };
    Ok(subscription::token_subscriber(ctx, Some(list), &t)?.map(|s| (s, t)))
}

#[cfg(test)]
mod tests {
    use crate::feedback::bounces::{
        bounce_weight, MAILBOX_WEIGHT, PERMANENT_WEIGHT, TEMPORARY_WEIGHT,
    };

    #[test]
    fn the_reason_weighs_a_final_failure() {
        assert_eq!(bounce_weight(true, Some("userunknown")), PERMANENT_WEIGHT);
        assert_eq!(bounce_weight(true, Some("hostunknown")), PERMANENT_WEIGHT);
        assert_eq!(bounce_weight(true, None), PERMANENT_WEIGHT);
        assert_eq!(bounce_weight(true, Some("mailboxfull")), MAILBOX_WEIGHT);
        assert_eq!(bounce_weight(true, Some("expired")), MAILBOX_WEIGHT);
        assert_eq!(bounce_weight(true, Some("blocked")), TEMPORARY_WEIGHT);
        assert_eq!(bounce_weight(true, Some("spamdetected")), TEMPORARY_WEIGHT);
        assert_eq!(bounce_weight(true, Some("rejected")), TEMPORARY_WEIGHT);
        assert_eq!(bounce_weight(true, Some("filtered")), TEMPORARY_WEIGHT);
        assert_eq!(bounce_weight(false, Some("userunknown")), TEMPORARY_WEIGHT);
        const { assert!(TEMPORARY_WEIGHT < MAILBOX_WEIGHT && MAILBOX_WEIGHT < PERMANENT_WEIGHT) };
    }

    use super::bounces::add_bounce;
    use super::posts::as_markdown;
    use super::replies::{encode_header, rewrite_headers};
    use crate::store::{Status, Subscriber};
    use chrono::DateTime;

    #[test]
    fn the_bounce_score_decays_and_only_a_run_reaches_the_threshold() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut s = Subscriber::new(1, "lf", "a@b.se", "", Status::Confirmed, t0);
        add_bounce(&mut s, true, None, 3.0, t0);
        add_bounce(&mut s, true, None, 3.0, t0 + chrono::Duration::days(1));
        assert_eq!(s.status, Status::Confirmed);
        // Temporary failures add little.
        for d in 2..6 {
            add_bounce(&mut s, false, None, 3.0, t0 + chrono::Duration::days(d));
        }
        assert_eq!(s.status, Status::Confirmed, "score {}", s.bounce_score);
        add_bounce(&mut s, true, None, 3.0, t0 + chrono::Duration::days(6));
        assert_eq!(s.status, Status::Bounced, "score {}", s.bounce_score);
        assert_eq!(s.bounces, 7);

        // Two permanent bounces months apart never add up.
        let mut s = Subscriber::new(2, "lf", "c@b.se", "", Status::Confirmed, t0);
        for m in 0..6 {
            add_bounce(&mut s, true, None, 3.0, t0 + chrono::Duration::days(90 * m));
        }
        assert_eq!(s.status, Status::Confirmed, "score {}", s.bounce_score);
    }

    #[test]
    fn header_rewriting_replaces_and_keeps() {
        let raw = b"From: a@b.se\r\nSubject: Hej\r\n continued\r\nDKIM-Signature: x\r\n y\r\nTo: l@d\r\n\r\nbody\r\n";
        let out = rewrite_headers(
            raw,
            &["subject", "dkim-signature"],
            &[("Subject", "[L] Hej".into())],
        );
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "Subject: [L] Hej\r\nFrom: a@b.se\r\nTo: l@d\r\n\r\nbody\r\n"
        );
        assert_eq!(
            encode_header("Åsa\r\nBcc: x"),
            "=?utf-8?b?w4VzYSBCY2M6IHg=?="
        );
    }

    #[test]
    fn only_a_deliberate_reply_approves() {
        use super::posts::deliberate_approval;
        use crate::token::{Purpose, Secret, Token};
        let secret = Secret::from_bytes([5; 32]);
        let text = secret.mint(Purpose::Post, "lf", "ledare@b.se", 1, 100);
        let token = Token::decode(&text).unwrap();
        let check = |headers: &str, subject: &str, body: &str| {
            let raw = format!(
                "{headers}From: ledare@b.se\r\nTo: lf-confirm@x.se\r\nSubject: {subject}\r\n\r\n{body}\r\n"
            );
            let msg = mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .unwrap();
            deliberate_approval(
                &msg,
                Some("ledare@b.se"),
                &token,
                Some("Semesterstängt i juli"),
            )
        };
        let re = "Re: Förhandsgranska och godkänn: Semesterstängt i juli";
        for body in [
            "ok",
            "OK!",
            "Ja, skicka.",
            "Skicka!",
            "GODKÄNN",
            "send it",
            "Approve\r\n\r\n> Hej",
        ] {
            assert_eq!(check("", re, body), Ok(()), "{body:?}");
        }
        // The first line is read as written, the post's subject included: a
        // forger who titles a post "semester" must not erase the away words
        // of a vacation reply ("Ja, jag är på semester"). So an owner whose
        // post is about a holiday approves with the word alone.
        assert!(check("", re, "Ok, Semesterstängt i juli kan gå ut.").is_err());
        assert!(check("", re, "Ja, jag är på semester till den 5 augusti.").is_err());
        // A responder echoing our Subject, token and all, is not the
        // owner pasting the token.
        let echo = format!(
            "Vi har tagit emot ditt ärende \"Förhandsgranska och godkänn: Semesterstängt i juli, kod {text}\"."
        );
        assert!(check("", re, &echo).is_err());
        // The token itself in the reply's own words.
        assert_eq!(check("", re, &format!("Kod {text}")), Ok(()));
        assert_eq!(check("", re, &format!("Hej!\r\n{text}\r\n/Lena")), Ok(()));
        for (headers, subject, body) in [
            ("", re, "Tack, jag tittar på det."),
            ("", re, "okej"),
            ("", re, ""),
            // The approval word or the token only in the quote; another
            // post's token.
            ("", re, "Hej\r\n\r\n> ok"),
            ("", re, &format!("Se nedan\r\n\r\n> {text}")),
            (
                "",
                re,
                &format!(
                    "Kod {}",
                    secret.mint(Purpose::Post, "lf", "ledare@b.se", 2, 100)
                ),
            ),
            // Automatic, whatever it says.
            ("Auto-Submitted: auto-replied\r\n", re, "ok"),
            ("X-Autoreply: yes\r\n", re, "ok"),
            ("Precedence: auto_reply\r\n", re, "ok"),
            ("", "Autosvar: Semesterstängt i juli", "ok"),
            ("", "Re: Förhandsgranska (out of office)", "ok"),
            ("", re, "OK, jag är på semester till måndag."),
            ("", "Frånvaro vecka 30", "Ja"),
        ] {
            assert!(
                check(headers, subject, body).is_err(),
                "{headers}{subject}: {body:?}"
            );
        }
    }

    #[test]
    fn post_text_cannot_inject_markup() {
        let md = as_markdown("# not a heading\n<script>alert(1)</script>\n1. not a list");
        assert!(md.starts_with("\\# not"), "{md}");
        assert!(md.contains("&lt;script>"), "{md}");
        assert!(md.contains("\\1. not"), "{md}");
    }
}
