//! Extracts who bounced and how from a delivery report; pure MIME and text inspection, no I/O — whether a message is a bounce at all is [`crate::mail::automated`]'s call, acting on the result is the caller's.
//!
//! # Where the failed recipients come from
//!
//! [`parse`] first sets aside reports that name no failure whatever they
//! look like: a read receipt (`message/disposition-notification`) and the
//! challenge of a challenge/response system ("Sender not pre-approved", a
//! server that wants the sender confirmed). Then it tries, in this order,
//! and stops at the first source that names at least one recipient:
//!
//! 1. RFC 3464 delivery status notifications: every `message/delivery-status`
//!    and `message/global-delivery-status` part (mail-parser hands them over
//!    as `PartType::Binary`, undecoded text). Each per-recipient block with
//!    `Action: failed` or `Action: delayed` (or no `Action` at all) gives one
//!    [`Failure`] for its `Final-Recipient` (`Original-Recipient` when the
//!    final one is not a mail address; beside it when both are). `delivered`,
//!    `relayed`, `expanded` and `deliverable` blocks, and any block with a
//!    2.x.x `Status`, are successes and skipped. When no DSN part exists, DSN
//!    fields sent as top-level header fields (`Final-Recipient` with
//!    `Action` or `Status`), or a text part that carries `Final-Recipient:`
//!    lines (broken MIME), are read the same way. A DSN part that names no
//!    recipient leaves the question to the text.
//! 2. The `X-Failed-Recipients` header (Exim, Gmail, Mail.ru, ...).
//! 3. The human-readable text of the report (qmail, Exchange 2003, Yahoo,
//!    Domino, GMX, Courier, old Sendmail, Microsoft, ...), only for messages
//!    [`crate::mail::automated::is_bounce`] accepts and whose subject or text
//!    reads like a delivery failure (and not like a text-only report of
//!    success: "has been delivered", "successfully relayed"). An address counts when it stands alone on its line
//!    (`<a@b>:`, `"a@b":`, `a@b (a@b)`, `a@b on <date>`), follows
//!    `RCPT TO:` or a label such as `Failed recipient:`, follows a colon
//!    after failure wording (`Unknown user: a@b`, `User's mailbox is full:
//!    <a@b>`), follows sendmail's `(expanded from:`, Exchange's X.400
//!    `dda:SMTP=` or MailEnable's `[SMTP:`, is followed by Sendmail's `...`,
//!    is preceded by an SMTP reply code, leads a line whose rest is failure
//!    wording or a reply code (`a@b Invalid Address, ERROR_CODE :550`), or
//!    leads a line of a list under a heading such as `Failed addresses
//!    follow:` or `... the following recipients:`. The text is cut
//!    where the returned original begins, header-like lines (`To:`,
//!    `From:`, `Subject:`, ...) are skipped, and addresses of the report's
//!    own sender and recipient and of the returned original's sender never
//!    count. When the text names nobody, a bounce attached as
//!    `message/rfc822` (a relay forwarding the bounce it got) is parsed the
//!    same way, failing that the `To:` of the returned original (a single
//!    address) is used, and failing that bare local parts listed under a
//!    recipient heading (AOL) are taken at the domain of the report's
//!    sender.
//!
//! Each failure carries a reason in sisimai's vocabulary
//! ([`Failure::reason`], see `reason.rs`); [`family`] names the MTA family
//! that wrote the report (one module each under `lhost/`).
//!
//! # Permanent or temporary
//!
//! `permanent` means the report is final: the MTA has stopped trying. Why it
//! failed is [`Failure::reason`] (a full mailbox or a retry timeout is a
//! reason, not a verdict on permanence).
//!
//! For a DSN block: `Action: failed` is final whatever the `Status` (RFC
//! 3464 §2.3.3: the MTA "has abandoned any attempts to deliver"; a
//! `Status: 4.4.7` under it is a queue lifetime that ran out, and its
//! reason says so), `Action: delayed` is temporary. Without an action, the
//! class of `Status` (5 permanent, 4 temporary). A generic `Status`
//! (`x.0.0`) keeps its class (the reporting MTA's verdict: `Status: 4.0.0`
//! over a quoted `550` stays temporary) but the reported status becomes the
//! more specific code of the same class found in `Diagnostic-Code`; without
//! `Status`, the enhanced or basic SMTP code in `Diagnostic-Code` decides.
//!
//! How much a final failure counts against a subscriber is its reason's
//! business (`feedback::bounces::bounce_weight`): an unknown user or host
//! 1, a full mailbox or an expired delivery 0.5, a refusal about the
//! sender, the content or the network 0.2. For
//! headers and text: the first enhanced status code (`5.1.1`) or SMTP reply
//! code (`550`) in the text about that recipient; then what the notice says
//! of itself, there or in the whole report ("This is a permanent error",
//! "I've given up", "not going to try again" against "temporary failure",
//! "will retry"); then a code elsewhere in the report; a failure report that
//! says nothing either way is final, so permanent. A delay notice (it says
//! the MTA will go on trying — "will continue to try for 5 days", "has not
//! yet been delivered" — and nowhere that it has given up) is temporary
//! whatever code it quotes.
//!
//! [`complaint`] reads ARF (RFC 5965) feedback reports, which are never
//! bounces.

mod common;
mod dsn;
mod lhost;
mod reason;
mod text;

use crate::mail::bounce_words::first_address;
pub use common::Failure;

/// The reason (sisimai's vocabulary) that an enhanced status code and a
/// diagnostic text give, such as a relay's 5xx reply; None when neither tells.
pub fn reason_of(status: Option<&str>, diagnostic: &str) -> Option<String> {
    let status = status
        .map(str::to_string)
        .or_else(|| crate::mail::bounce_words::enhanced_code(diagnostic));
    reason::classify(status.as_deref(), diagnostic)
}
use common::{for_each_original, has_type, part_text};
use dsn::{dsn_failures, dsn_texts, field_blocks};
use mail_parser::{Message, MimeHeaders, PartType};
use text::{
    bare_local_parts, is_challenge, original_headers, original_recipient, reads_like_failure,
    recipient_blocks, report_texts, text_failures, x_failed_recipients,
};

/// Every failed recipient in a bounce. Empty when nothing can be attributed.
///
/// See the module docs for the sources tried and how permanence is decided.
/// Attached `message/rfc822` originals are never read for recipients (only
/// their `From`/`To` headers, to exclude or as a last resort).
pub fn parse(msg: &Message<'_>) -> Vec<Failure> {
    // The report's text is read once, for the readers and the reasons.
    let texts = report_texts(msg);
    let mut failures = failures_of(msg, &texts);
    fill_reasons(&texts, &mut failures);
    if failures.iter().any(|f| f.reason.is_none()) {
        let reason = lhost::detect(&lhost::Head::of(msg, &texts)).and_then(|l| l.reason);
        for f in failures.iter_mut().filter(|f| f.reason.is_none()) {
            f.reason = reason.map(str::to_string);
        }
    }
    failures
}

/// A failure whose own diagnostic and status give no reason takes it from
/// the report's text about its recipient, or, when it is the only one,
/// from the whole text.
///
/// A failure that names no cause beyond the network (or none at all) in a
/// report that says the MTA stopped retrying is `expired`: the retries ran
/// out, whatever the last attempt met (sisimai's reading too).
fn fill_reasons(texts: &[String], failures: &mut [Failure]) {
    let open = |f: &Failure| matches!(f.reason.as_deref(), None | Some("networkerror"));
    if !failures.iter().any(open) {
        return;
    }
    let whole = texts.join("\n");
    let single = failures.len() == 1;
    for f in failures.iter_mut().filter(|f| f.reason.is_none()) {
        let block = recipient_blocks(&whole, std::slice::from_ref(&f.recipient)).remove(0);
        f.reason = reason::classify(None, &block);
        if f.reason.is_none() && single {
            f.reason = reason::classify(None, &whole);
        }
    }
    if failures.iter().any(open) && reason::retries_ran_out(&whole) {
        for f in failures.iter_mut().filter(|f| open(f)) {
            f.reason = Some("expired".into());
        }
    }
}

/// A read receipt (RFC 8098), or the challenge of a challenge/response
/// system, which holds the message until the sender proves itself: reports
/// that come back to the envelope sender and say no recipient failed.
fn no_failure_kind(msg: &Message<'_>, texts: &[String]) -> bool {
    msg.parts
        .iter()
        .any(|p| has_type(p, "message", &["disposition-notification"]))
        || is_challenge(msg, texts, &dsn_texts(msg))
}

/// The failures `msg` reports, `texts` being its [`report_texts`].
fn failures_of(msg: &Message<'_>, texts: &[String]) -> Vec<Failure> {
    if no_failure_kind(msg, texts) {
        return Vec::new();
    }
    let (failures, successes) = dsn_failures(msg);
    if !failures.is_empty() || successes {
        // A DSN whose every recipient was delivered, relayed or expanded
        // (RFC 3464 §2.3.3) reports no failure: its text is not read for one.
        return failures;
    }
    let failures = x_failed_recipients(msg, texts);
    if !failures.is_empty() {
        return failures;
    }
    if !crate::mail::automated::is_bounce(msg, None) {
        return Vec::new();
    }
    let failures = text_failures(msg, texts);
    if !failures.is_empty() || !reads_like_failure(msg, texts) {
        return failures;
    }
    // A bounce forwarded inside a report of its own (relays that wrap the
    // bounce they received).
    for part in &msg.parts {
        if let PartType::Message(inner) = &part.body {
            if crate::mail::automated::is_bounce(inner, None) {
                let failures = failures_of(inner, &report_texts(inner));
                if !failures.is_empty() {
                    return failures;
                }
            }
        }
    }
    let failures = original_recipient(msg, texts);
    if !failures.is_empty() {
        return failures;
    }
    bare_local_parts(msg, texts)
}

/// The MTA family that wrote a delivery report (`postfix`, `exim`,
/// `qmail`, `exchange2007`, ..., else `rfc3464` or `text`): which one was
/// tried when a report names nobody.
pub fn family(msg: &Message<'_>) -> &'static str {
    let head = lhost::Head::of(msg, &report_texts(msg));
    lhost::detect(&head).map(|l| l.name).unwrap_or_else(|| {
        if dsn_texts(msg).is_empty() {
            "text"
        } else {
            "rfc3464"
        }
    })
}

/// The name of every MTA family with a module of its own, in the order
/// they are tried.
pub fn families() -> impl Iterator<Item = &'static str> {
    lhost::ALL.iter().map(|l| l.name)
}

/// ARF (RFC 5965) complaint: the complained-about original recipient, if the report says.
///
/// Reads `Original-Rcpt-To` (or `Removal-Recipient` of opt-out reports) in
/// the `message/feedback-report` part, else the single `To:` address of the
/// enclosed original (`message/rfc822` or `text/rfc822-headers`). None for
/// anything that is not a feedback report.
pub fn complaint(msg: &Message<'_>) -> Option<String> {
    let mut is_arf = false;
    for part in &msg.parts {
        if !has_type(part, "message", &["feedback-report"]) {
            continue;
        }
        is_arf = true;
        let text = part_text(&part.body)?;
        for block in field_blocks(&text) {
            for (name, value) in block {
                if name == "original-rcpt-to" || name == "removal-recipient" {
                    if let Some(a) = first_address(&value) {
                        return Some(a);
                    }
                }
            }
        }
    }
    let report = msg.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("feedback-report"))
    });
    if !is_arf && !report {
        return None;
    }
    let to = original_headers(msg).to;
    match to.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Header fields of an attached original in which we put a token of ours:
/// `List-Unsubscribe` (the mailto and the link), `Reply-To`
/// (`L-reply+TOKEN@D`) and `Return-Path` (the VERP envelope sender, as the
/// receiving server recorded it).
const TOKEN_HEADERS: &[&str] = &["List-Unsubscribe", "Reply-To", "Return-Path"];

/// Every token-shaped word in the [`TOKEN_HEADERS`] of the originals a
/// report attaches (`message/rfc822`, `text/rfc822-headers`), decoded but
/// not verified. Only the attachment's own header, never its body or a
/// message nested deeper: a newsletter that a subscriber forwarded carries
/// their token in its text, and must not bind a complaint about the
/// forward to them.
pub fn original_tokens(msg: &Message<'_>) -> Vec<crate::token::Token> {
    let mut out = Vec::new();
    let add = |m: &Message<'_>| {
        for (name, value) in m.headers_raw() {
            if !TOKEN_HEADERS
                .iter()
                .any(|h| name.trim().eq_ignore_ascii_case(h))
            {
                continue;
            }
            for word in value.split(|c: char| !c.is_ascii_alphanumeric()) {
                if let Some(t) = crate::token::Token::decode(word) {
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            }
        }
    };
    for_each_original(msg, add);
    out
}

/// Is `msg` a delivery status notification that reports success only
/// (every recipient `delivered`, `relayed` or `expanded`)? Such a report
/// came back to our envelope sender but is no bounce.
pub fn reports_success_only(msg: &Message<'_>) -> bool {
    let (failures, successes) = dsn_failures(msg);
    failures.is_empty() && successes
}

/// Does `msg`, though it came back to our envelope sender, say that no
/// recipient failed: a report of success only, a read receipt, or a
/// challenge/response system's challenge? Such mail never counts as a
/// bounce, however automated it looks.
pub fn reports_no_failure(msg: &Message<'_>) -> bool {
    reports_success_only(msg) || no_failure_kind(msg, &report_texts(msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn dsn(text: &str, fields: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.example\r\nTo: lf-bounces@x.se\r\nSubject: Delivery Status Notification\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n\
             --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n{fields}\r\n\
             --b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_dsn_of_success_is_no_bounce_whatever_its_text_says() {
        for action in ["relayed", "delivered", "expanded"] {
            let raw = dsn(
                "Your message to <anna@example.org> could not be delivered: 550 user unknown",
                &format!("Final-Recipient: rfc822; anna@example.org\r\nAction: {action}\r\nStatus: 2.0.0\r\n"),
            );
            let msg = MessageParser::default().parse(&raw).unwrap();
            assert!(parse(&msg).is_empty(), "{action}: {:?}", parse(&msg));
            assert!(reports_success_only(&msg), "{action}");
        }
        // One delivered, one failed: the failed one is the bounce.
        let raw = dsn(
            "",
            "Final-Recipient: rfc822; a@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n\
             Final-Recipient: rfc822; b@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        );
        let msg = MessageParser::default().parse(&raw).unwrap();
        let f = parse(&msg);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].recipient, "b@example.org");
        assert!(f[0].permanent);
        assert!(!reports_success_only(&msg));
    }

    #[test]
    fn delayed_is_a_warning_even_with_a_permanent_looking_status() {
        let raw = dsn(
            "Delivery is delayed; we will continue to try for 5 days.",
            "Final-Recipient: rfc822; anna@example.org\r\nAction: delayed\r\nStatus: 5.0.0\r\n",
        );
        let msg = MessageParser::default().parse(&raw).unwrap();
        let f = parse(&msg);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(!f[0].permanent, "{f:?}");
    }

    #[test]
    fn original_recipient_is_named_beside_a_forwarding_final_recipient() {
        let raw = dsn(
            "",
            "Original-Recipient: rfc822; karin@kommun.example\r\n\
             Final-Recipient: rfc822; k.astrom@internal.kommun.example\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        );
        let msg = MessageParser::default().parse(&raw).unwrap();
        let named: Vec<_> = parse(&msg)
            .into_iter()
            .map(|f| (f.recipient, f.permanent))
            .collect();
        assert_eq!(
            named,
            [
                ("k.astrom@internal.kommun.example".to_string(), true),
                ("karin@kommun.example".to_string(), true)
            ]
        );
    }

    #[test]
    fn tokens_come_from_the_attached_originals_header_only() {
        let secret = crate::token::Secret::from_bytes([3; 32]);
        let ours = secret.mint(crate::token::Purpose::Subscriber, "lf", "a@b.se", 7, 1);
        let body_only = secret.mint(crate::token::Purpose::Subscriber, "lf", "c@b.se", 8, 1);
        let deeper = secret.mint(crate::token::Purpose::Subscriber, "lf", "d@b.se", 9, 1);
        let raw = format!(
            "From: fbl@isp.example\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nA report naming lf-reply+{body_only}@x.se\r\n\
             --b\r\nContent-Type: message/rfc822\r\n\r\n\
             List-Unsubscribe: <https://x.se/unsubscribe/{ours}>,\r\n <mailto:lf-unsubscribe+{ours}@x.se>\r\n\
             Subject: Nyhetsbrev\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n\
             --i\r\nContent-Type: text/plain\r\n\r\nAvsluta: https://x.se/unsubscribe/{body_only}\r\n\
             --i\r\nContent-Type: message/rfc822\r\n\r\nReply-To: lf-reply+{deeper}@x.se\r\n\r\nhej\r\n\
             --i--\r\n\
             --b--\r\n"
        );
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        let found = original_tokens(&msg);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, 7);
        // text/rfc822-headers, with our VERP address as Return-Path.
        let raw = format!(
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
             Return-Path: <lf-bounces+{ours}@x.se>\r\nSubject: x\r\n\r\n\
             --b--\r\n"
        );
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(
            original_tokens(&msg)
                .iter()
                .map(|t| t.id)
                .collect::<Vec<_>>(),
            [7]
        );
    }

    fn failures(raw: &str) -> Vec<Failure> {
        let msg = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parse");
        parse(&msg)
    }

    const POSTFIX_DSN: &str = "From: MAILER-DAEMON@mx.example.se (Mail Delivery System)\r\n\
        To: lista-bounces@example.org\r\n\
        Subject: Undelivered Mail Returned to Sender\r\n\
        Auto-Submitted: auto-replied\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/report; report-type=delivery-status;\r\n\
        \tboundary=\"B1\"\r\n\
        \r\n\
        --B1\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\
        \r\n\
        This is the mail system at host mx.example.se.\r\n\
        \r\n\
        <Anna@Example.SE>: host mail.example.se[192.0.2.1] said: 550 5.1.1\r\n\
        \x20   <anna@example.se>: Recipient address rejected: User unknown\r\n\
        --B1\r\n\
        Content-Type: message/delivery-status\r\n\
        \r\n\
        Reporting-MTA: dns; mx.example.se\r\n\
        Arrival-Date: Mon,  1 Sep 2025 10:00:00 +0200 (CEST)\r\n\
        \r\n\
        Final-Recipient: rfc822; Anna@Example.SE\r\n\
        Original-Recipient: rfc822;anna@example.se\r\n\
        Action: failed\r\n\
        Status: 5.1.1\r\n\
        Remote-MTA: dns; mail.example.se\r\n\
        Diagnostic-Code: smtp; 550 5.1.1 <anna@example.se>: Recipient address\r\n\
        \x20   rejected: User unknown\r\n\
        \r\n\
        Final-Recipient: rfc822; bertil@example.se\r\n\
        Action: delivered\r\n\
        Status: 2.0.0\r\n\
        \r\n\
        --B1\r\n\
        Content-Type: text/rfc822-headers\r\n\
        \r\n\
        From: Styrelsen <styrelsen@example.org>\r\n\
        To: anna@example.se\r\n\
        Subject: Nyhetsbrev\r\n\
        --B1--\r\n";

    #[test]
    fn postfix_dsn() {
        let f = failures(POSTFIX_DSN);
        assert_eq!(
            f,
            vec![Failure {
                recipient: "anna@example.se".into(),
                permanent: true,
                status: Some("5.1.1".into()),
                diagnostic: "550 5.1.1 <anna@example.se>: Recipient address rejected: User unknown"
                    .into(),
                reason: Some("userunknown".into()),
            }]
        );
    }

    #[test]
    fn mailbox_full_delay_is_temporary() {
        let raw = POSTFIX_DSN
            .replace("Action: failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.2.2")
            .replace(
                "550 5.1.1 <anna@example.se>: Recipient address\r\n\
                 \x20   rejected: User unknown",
                "452 4.2.2 Mailbox full",
            );
        let f = failures(&raw);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].recipient, "anna@example.se");
        assert!(!f[0].permanent);
        assert_eq!(f[0].status.as_deref(), Some("4.2.2"));
        assert_eq!(f[0].diagnostic, "452 4.2.2 Mailbox full");
        // A generic Status is refined by the diagnostic, an absent one taken from it.
        let raw = POSTFIX_DSN.replace("Status: 5.1.1", "Status: 5.0.0");
        assert_eq!(failures(&raw)[0].status.as_deref(), Some("5.1.1"));
        let raw = raw.replace("Status: 5.0.0\r\n", "");
        let f = failures(&raw);
        assert!(f[0].permanent);
        assert_eq!(f[0].status.as_deref(), Some("5.1.1"));
    }

    #[test]
    fn exim_x_failed_recipients() {
        let raw = "Return-path: <>\r\n\
            X-Failed-Recipients: Cecilia@example.net\r\n\
            Auto-Submitted: auto-replied\r\n\
            From: Mail Delivery System <Mailer-Daemon@mx.example.org>\r\n\
            To: styrelsen@example.org\r\n\
            Subject: Mail delivery failed: returning message to sender\r\n\
            \r\n\
            This message was created automatically by mail delivery software.\r\n\
            \r\n\
            A message that you sent could not be delivered to one or more of its\r\n\
            recipients. This is a permanent error. The following address(es) failed:\r\n\
            \r\n\
            \x20 cecilia@example.net\r\n\
            \x20   SMTP error from remote mail server after RCPT TO:<cecilia@example.net>:\r\n\
            \x20   host mx.example.net [192.0.2.7]: 550 5.1.1 No such user\r\n\
            \r\n\
            ------ This is a copy of the message, including all the headers. ------\r\n\
            \r\n\
            From: Styrelsen <styrelsen@example.org>\r\n\
            To: cecilia@example.net\r\n";
        let f = failures(raw);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].recipient, "cecilia@example.net");
        assert!(f[0].permanent);
        assert_eq!(f[0].status.as_deref(), Some("5.1.1"));
        assert!(
            f[0].diagnostic.contains("No such user"),
            "{}",
            f[0].diagnostic
        );

        let delayed = raw
            .replace("550 5.1.1 No such user", "452 Mailbox full")
            .replace("This is a permanent error. ", "");
        let f = failures(&delayed);
        assert!(!f[0].permanent);
        assert_eq!(f[0].status, None);
    }

    #[test]
    fn qmail_text_bounce() {
        let raw = "Return-Path: <>\r\n\
            From: MAILER-DAEMON@mx.example.org\r\n\
            To: styrelsen@example.org\r\n\
            Subject: failure notice\r\n\
            \r\n\
            Hi. This is the qmail-send program at mx.example.org.\r\n\
            I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\
            This is a permanent error; I've given up. Sorry it didn't work out.\r\n\
            \r\n\
            <david@example.net>:\r\n\
            Sorry, no mailbox here by that name. (#5.1.1)\r\n\
            \r\n\
            <erik@example.net>:\r\n\
            This message is looping: it already has my Delivered-To line. (#5.4.6)\r\n\
            \r\n\
            --- Below this line is a copy of the message.\r\n\
            \r\n\
            Return-Path: <styrelsen@example.org>\r\n\
            From: Styrelsen <styrelsen@example.org>\r\n\
            To: david@example.net\r\n\
            Subject: Nyhetsbrev\r\n";
        let f = failures(raw);
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.recipient.as_str(), f.permanent))
            .collect();
        assert_eq!(
            got,
            [("david@example.net", true), ("erik@example.net", true)]
        );
        assert_eq!(f[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(
            f[0].diagnostic,
            "Sorry, no mailbox here by that name. (#5.1.1)"
        );
        assert_eq!(f[1].status.as_deref(), Some("5.4.6"));
        // Temporary wording without a code.
        let raw = raw
            .replace(
                "This is a permanent error; I've given up. Sorry it didn't work out.",
                "",
            )
            .replace(
                "Sorry, no mailbox here by that name. (#5.1.1)",
                "Mailbox is over quota, will retry.",
            );
        assert!(!failures(&raw)[0].permanent);
    }

    #[test]
    fn ordinary_mail_and_auto_replies_give_nothing() {
        let human = "From: Anna <anna@example.se>\r\n\
            To: styrelsen@example.org\r\n\
            Subject: Protokoll\r\n\
            \r\n\
            Hej! Skriv till bertil@example.se om felet.\r\n\
            bertil@example.se\r\n";
        assert!(failures(human).is_empty());
        let vacation = format!("Auto-Submitted: auto-replied\r\nReturn-Path: <>\r\n{human}");
        assert!(failures(&vacation).is_empty());
    }

    #[test]
    fn arf_complaint() {
        let raw = "From: fbl@isp.example\r\n\
            To: abuse@example.org\r\n\
            Subject: FW: Nyhetsbrev\r\n\
            Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\
            \r\n\
            --b\r\n\
            Content-Type: text/plain\r\n\
            \r\n\
            This is an abuse report\r\n\
            --b\r\n\
            Content-Type: message/feedback-report\r\n\
            \r\n\
            Feedback-Type: abuse\r\n\
            User-Agent: FBL/1.0\r\n\
            Version: 1\r\n\
            Original-Rcpt-To: <Filip@Example.NET>\r\n\
            --b\r\n\
            Content-Type: message/rfc822\r\n\
            \r\n\
            From: styrelsen@example.org\r\n\
            To: other@example.net\r\n\
            Subject: Nyhetsbrev\r\n\
            \r\n\
            Hej\r\n\
            --b--\r\n";
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(complaint(&msg).as_deref(), Some("filip@example.net"));
        assert!(parse(&msg).is_empty());
        // Without Original-Rcpt-To: the To of the enclosed original.
        let raw = raw.replace("Original-Rcpt-To: <Filip@Example.NET>\r\n", "");
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(complaint(&msg).as_deref(), Some("other@example.net"));
        let msg = MessageParser::default()
            .parse(POSTFIX_DSN.as_bytes())
            .unwrap();
        assert_eq!(complaint(&msg), None);
    }

    fn text_bounce(subject: &str, body: &str) -> Vec<Failure> {
        let raw = format!(
            "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
             To: lista-bounces@example.org\r\nSubject: {subject}\r\n\r\n{body}"
        );
        failures(&raw)
    }

    fn named(f: &[Failure]) -> Vec<(&str, bool)> {
        f.iter()
            .map(|f| (f.recipient.as_str(), f.permanent))
            .collect()
    }

    #[test]
    fn a_failure_label_before_a_colon_names_the_recipient() {
        // IMail / SMTP32 "Undeliverable Mail" and its kin.
        let f = text_bounce(
            "Undeliverable Mail",
            "Unknown user: anna@example.se\r\n\r\nOriginal message follows.\r\n\r\nTo: x@example.com\r\n",
        );
        assert_eq!(named(&f), [("anna@example.se", true)]);
        assert_eq!(f[0].reason.as_deref(), Some("userunknown"));
        let f = text_bounce(
            "Returned mail: see transcript",
            "User's mailbox is full: <bo@example.se>\r\nUnable to deliver mail.\r\n",
        );
        // A final notice: a full mailbox is its reason, not a delay.
        assert_eq!(named(&f), [("bo@example.se", true)]);
        assert_eq!(f[0].reason.as_deref(), Some("mailboxfull"));
    }

    #[test]
    fn x400_and_mailenable_address_forms() {
        let f = text_bounce(
            "Undeliverable: Nyhetsbrev",
            "Your message did not reach some or all of the intended recipients.\r\n\r\n\
             The following recipient(s) could not be reached:\r\n\r\n\
             \x20   Anna Svensson on 1/2/2024 10:00 AM\r\n\
             \x20       The e-mail account does not exist at the organization this message was sent to.\r\n\
             \x20       <mx.example.se #5.1.1 X.400; unknown or illegal alias>\r\n\
             \x20       c=SE;a= ;p=Example;o=MAIL;dda:SMTP=anna.svensson@example.se;\r\n",
        );
        assert_eq!(named(&f), [("anna.svensson@example.se", true)]);
        let f = text_bounce(
            "Message delivery failure",
            "Delivery to the following recipients failed:\r\n\r\n\
             \x20 Message delivery to '[SMTP:cecilia@example.se]' failed, mailbox unavailable.\r\n",
        );
        assert_eq!(named(&f), [("cecilia@example.se", true)]);
    }

    #[test]
    fn a_list_under_a_failed_addresses_heading() {
        let f = text_bounce(
            "Message not delivered",
            "Your message could not be delivered.\r\n\r\n\
             --- Failed addresses follow: ---------------------\r\n\
             \x20dan@example.se ... no mailbox by that name\r\n\
             --- Text of message follows: ---------------------\r\n",
        );
        assert_eq!(named(&f), [("dan@example.se", true)]);
    }

    #[test]
    fn sendmail_names_the_address_a_forward_was_expanded_from() {
        let f = text_bounce(
            "Returned mail: see transcript for details",
            "   ----- The following addresses had permanent fatal errors -----\r\n\
             <dan.forward@elsewhere.example>\r\n\
             \x20   (reason: 550 5.1.1 User unknown)\r\n\
             \x20   (expanded from: <dan@example.se>)\r\n",
        );
        let got = named(&f);
        assert!(got.contains(&("dan@example.se", true)), "{got:?}");
        assert!(
            got.contains(&("dan.forward@elsewhere.example", true)),
            "{got:?}"
        );
    }

    #[test]
    fn dsn_fields_as_top_level_headers() {
        let raw = "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\n\
                   To: lista-bounces@example.org\r\nSubject: Delivery failure\r\n\
                   Final-Recipient: rfc822; eva@example.se\r\nAction: failed\r\n\
                   Status: 5.1.1\r\n\r\nThe message could not be delivered.\r\n";
        let f = failures(raw);
        assert_eq!(named(&f), [("eva@example.se", true)]);
        assert_eq!(f[0].status.as_deref(), Some("5.1.1"));
        // A delivery trace on ordinary mail is no report.
        let raw = "From: Eva <eva@example.se>\r\nTo: lista@example.org\r\nSubject: Hej\r\n\
                   Original-Recipient: rfc822; lista@example.org\r\n\r\nHej!\r\n";
        assert!(failures(raw).is_empty());
        // Nor is it with mbox's Status flag.
        let raw = "From: Eva <eva@example.se>\r\nTo: lista@example.org\r\nSubject: Hej\r\n\
                   Original-Recipient: rfc822; lista@example.org\r\nStatus: RO\r\n\r\nHej!\r\n";
        assert!(failures(raw).is_empty());
    }

    #[test]
    fn delay_notices_are_warnings() {
        let f = text_bounce(
            "Warning: message delayed",
            "This is an automatically generated message.\r\n\r\n\
             Your message has not yet been delivered to the following recipient:\r\n\r\n\
             <frida@example.se>: 550 mailbox temporarily disabled\r\n\r\n\
             The server will continue to try for 5 days.\r\n",
        );
        assert_eq!(named(&f), [("frida@example.se", false)]);
        let f = text_bounce(
            "Delivery delayed",
            "Your message could not be delivered for 4 hours to:\r\n\r\n             <frida@example.se>: 550 mailbox temporarily disabled\r\n\r\n             No action is required on your part. Delivery attempts will continue.\r\n",
        );
        assert_eq!(named(&f), [("frida@example.se", false)]);
        // The same text after giving up is final.
        let f = text_bounce(
            "Undeliverable",
            "Your message could not be delivered to the following recipient:\r\n\r\n\
             <frida@example.se>: mailbox is full\r\n\r\n\
             This is a permanent error; I've given up.\r\n",
        );
        assert_eq!(named(&f), [("frida@example.se", true)]);
    }

    #[test]
    fn a_success_status_is_no_failure_whatever_the_action() {
        let raw = dsn(
            "Address check.",
            "Final-Recipient: rfc822; anna@example.se\r\nAction: deliverable\r\nStatus: 2.1.5\r\n",
        );
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert!(parse(&msg).is_empty());
        assert!(reports_success_only(&msg));
    }

    #[test]
    fn a_dsn_part_naming_nobody_leaves_the_text_to_name_the_recipient() {
        let raw = dsn(
            "<gustav@example.se>: 550 5.1.1 User unknown",
            "Reporting-MTA: dns; mx.example.net\r\nStatus: 5.1.1\r\n",
        );
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(named(&parse(&msg)), [("gustav@example.se", true)]);
    }

    #[test]
    fn an_address_leading_a_line_of_failure_or_a_bulleted_list() {
        let f = text_bounce(
            "Undelivered Mail Returned to Sender",
            "A message that you sent could not be delivered.\r\n\r\n\
             anna@example.se Invalid Address, ERROR_CODE :550, mailbox unavailable\r\n",
        );
        assert_eq!(named(&f), [("anna@example.se", true)]);
        let f = text_bounce(
            "Delivery status notification",
            "Delivery to the following recipients was aborted after 5.0 hour(s):\r\n\r\n\
             \x20 * bo@example.se\r\n",
        );
        assert_eq!(named(&f), [("bo@example.se", true)]);
    }

    #[test]
    fn the_subject_counts_as_failure_wording() {
        let f = text_bounce(
            "Undeliverable Mail",
            "Invalid final delivery userid: cecilia@example.se\r\n",
        );
        assert_eq!(named(&f), [("cecilia@example.se", true)]);
    }

    #[test]
    fn x400_rfc822_form() {
        let f = text_bounce(
            "Undeliverable: Nyhetsbrev",
            "Your message could not be delivered to:\r\n\r\n\
             \x20   c=SE;a= ;p=Example;o=MAIL;DDA:RFC-822=bo(a)example.se;\r\n",
        );
        assert_eq!(named(&f), [("bo@example.se", true)]);
    }

    #[test]
    fn reports_of_success_without_a_dsn_part_name_nobody() {
        let f = text_bounce(
            "Delivery Status Notification (Relay)",
            "This is an automatically generated Delivery Status Notification.\r\n\r\n\
             Your message has been successfully relayed to the following recipients, \
             but the requested delivery status notifications may not be generated by \
             the destination.\r\n\r\n\
             \x20   anna@example.se\r\n",
        );
        assert!(f.is_empty(), "{f:?}");
        let f = text_bounce(
            "Delivered: Nyhetsbrev",
            "Your message has been delivered to the following recipients:\r\n\r\n\
             anna@example.se (anna@example.se)\r\n",
        );
        assert!(f.is_empty(), "{f:?}");
        let raw = "From: postmaster@example.se\r\nTo: lista-bounces@example.org\r\n\
                   Subject: Read: Nyhetsbrev\r\nMIME-Version: 1.0\r\n\
                   Content-Type: multipart/report; report-type=disposition-notification; boundary=\"b\"\r\n\r\n\
                   --b\r\nContent-Type: text/plain\r\n\r\nYour message to anna@example.se was displayed.\r\n\
                   --b\r\nContent-Type: message/disposition-notification\r\n\r\n\
                   Final-Recipient: rfc822; anna@example.se\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n\
                   --b--\r\n";
        assert!(failures(raw).is_empty());
    }

    #[test]
    fn bare_local_parts_under_a_recipient_heading_are_at_the_reporting_domain() {
        let raw = "From: Mail Delivery Subsystem <MAILER-DAEMON@mail.example.com>\r\n\
                   To: <lista-bounces@example.org>\r\nSubject: Mail Delivery Problem\r\n\r\n\
                   Your mail to the following recipients could not be delivered because they \
                   are not accepting mail from lista-bounces@example.org:\r\n\
                   \tanna.svensson\r\n";
        assert_eq!(
            named(&failures(raw)),
            [("anna.svensson@mail.example.com", true)]
        );
    }

    #[test]
    fn error_for_and_did_not_receive() {
        let f = text_bounce(
            "Returned mail",
            "The following recipients did not receive this message:\r\n\r\n\
             \x20    <anna@example.se>\r\n",
        );
        assert_eq!(named(&f), [("anna@example.se", true)]);
        let f = text_bounce("Returned mail", "Error-For: bo@example.se\r\n");
        assert_eq!(named(&f), [("bo@example.se", true)]);
    }

    #[test]
    fn a_challenge_of_a_challenge_response_system_names_nobody() {
        let raw = dsn(
            "Your message is held: please add yourself to my Guest List.",
            "Final-Recipient: rfc822; anna@example.se\r\nAction: failed\r\nStatus: 4.7.0\r\n\
             Diagnostic-Code: X-Notice; Sender not pre-approved\r\n",
        );
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert!(parse(&msg).is_empty());
    }

    #[test]
    fn the_family_that_wrote_a_report() {
        let msg = MessageParser::default()
            .parse(POSTFIX_DSN.as_bytes())
            .unwrap();
        assert_eq!(family(&msg), "postfix");
        let raw = "From: MAILER-DAEMON@mx.example.org\r\nTo: x@example.org\r\nSubject: failure notice\r\n\r\n\
                   Hi. This is the qmail-send program at mx.example.org.\r\n";
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(family(&msg), "qmail");
        let raw = dsn("Nope.", "Final-Recipient: rfc822; a@b.se\r\n");
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(family(&msg), "rfc3464");
    }
}
