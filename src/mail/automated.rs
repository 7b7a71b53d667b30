//! Classifies inbound mail as automated (bounce, auto-reply, list/bulk) so the daemon never answers it; pure header/MIME inspection, no I/O — extracting failed recipients from bounces and acting on the verdict are left to the callers.
//!
//! # How the decision is made
//!
//! [`automated`] checks, in this order:
//!
//! 1. [`is_bounce`] — delivery failure or delay reports. Checked first because
//!    many bounces (Postfix, Exim, Exchange, ...) also carry `Auto-Submitted`.
//! 2. Feedback (ARF, RFC 5965) reports — [`Automated::ListOrBulk`]. They are
//!    checked before the auto-reply rules because they often carry
//!    `Auto-Submitted: auto-generated`, and [`is_bounce`] never counts them as
//!    bounces even if they come from `postmaster@` or with a null sender.
//! 3. Auto-replies — [`Automated::AutoReply`].
//! 4. List and bulk mail — [`Automated::ListOrBulk`].
//!
//! # Bounce evidence
//!
//! *Strong* signals, each enough on its own:
//!
//! * a null reverse path: `reverse_path == Some("")`, or, when the envelope is
//!   unknown (`None`), a first `Return-Path: <>` header (written by the
//!   delivering MTA). One exception: RFC 3834 tells auto-responders to use the
//!   null sender too, so a null sender whose message carries an explicit
//!   auto-reply marker (see [`Automated::AutoReply`]) and not a single weak
//!   bounce signal (below) is an auto-reply, not a bounce. Otherwise vacation messages would
//!   be counted as bounces against the subscriber who is away.
//! * a reverse path (envelope, or `Return-Path` when unknown) whose local part
//!   is `MAILER-DAEMON` (Sendmail-style bounces);
//! * a `From:` or `Sender:` local part `mailer-daemon`, `postmaster`,
//!   `mail-delivery-subsystem` and a few spelling variants, or a bare
//!   `MAILER-DAEMON` (with no address, as in `From: MAILER-DAEMON <>`);
//! * `Content-Type: multipart/report; report-type=delivery-status`, or a
//!   `message/delivery-status` / `message/global-delivery-status` part anywhere
//!   in the MIME tree (not inside attached `message/rfc822` messages, so a
//!   human forwarding a bounce as an attachment is not a bounce);
//! * an `X-Failed-Recipients` header (Exim, Gmail).
//!
//! *Weak* signals, of which two must agree:
//!
//! * a bounce subject ("Undeliverable", "Undelivered Mail Returned to Sender",
//!   "failure notice", "Returned mail", "Unzustellbar", "Onbeställbart", ...)
//!   at the *start* of the subject. A subject that starts with a reply or
//!   forward prefix ("Re:", "Sv:", "Fwd:", "AW:", ...) never counts: that is a
//!   person writing about a bounce, not the bounce itself;
//! * a sender display name such as "Mail Delivery System", "Mail Delivery
//!   Subsystem", "Mail Administrator", "Postmaster";
//! * typical bounce wording ("could not be delivered", "user unknown",
//!   "mailbox is full", ...) near the start of the first text body;
//! * a returned original: a `text/rfc822-headers` part or an attached
//!   `message/rfc822`.
//!
//! So a person writing "Re: failure notice" (or "Re: Undeliverable?") from an
//! ordinary address is never a bounce on the subject alone.
//!
//! All header names are matched case-insensitively; values are unfolded,
//! trimmed and compared case-insensitively.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

/// Why a message counts as automated mail that must not be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Automated {
    /// Null reverse path, or a MAILER-DAEMON/postmaster sender, or a DSN/multipart-report, or a known bounce text.
    Bounce,
    /// Vacation / out-of-office / auto-reply (Auto-Submitted other than "no", X-Autoreply, X-Autorespond, X-Apple-Action: VACATION, Exchange "Automatic reply:" subjects, X-Auto-Response-Suppress together with an auto-reply subject, Swedish and English vacation subjects like "Frånvaro", "Frånvarande", "Autosvar", "Automatiskt svar", "Out of office", "Auto:", "Abwesenheit"...).
    ///
    /// Subjects count only as a prefix followed by a colon (or as the whole
    /// subject), e.g. "Frånvaro: Möte", so "Frånvaro vid årsmötet" written by
    /// a person is not an auto-reply. Looser vacation wording ("out of
    /// office", "vacation", "frånvarande" anywhere) counts only together with
    /// `X-Auto-Response-Suppress`. Other non-delivery reports
    /// (`multipart/report` such as read receipts, `disposition-notification`)
    /// are counted here too.
    AutoReply,
    /// Precedence bulk/junk/list/auto_reply, List-Id / List-Unsubscribe headers of other lists, feedback (ARF) reports.
    ///
    /// Also mail from a `noreply@` / `no-reply@` / `do-not-reply@` address
    /// (machine notifications that cannot be answered anyway).
    ListOrBulk,
}

/// `reverse_path` is the SMTP envelope sender (MAIL FROM), "" for the null sender `<>`, None when unknown (pipe delivery without it).
///
/// Returns `None` for mail a person wrote (as far as the headers and MIME
/// structure tell); see the module docs for the order of the checks.
pub fn automated(msg: &Message<'_>, reverse_path: Option<&str>) -> Option<Automated> {
    if is_bounce(msg, reverse_path) {
        return Some(Automated::Bounce);
    }
    if is_feedback_report(msg) {
        return Some(Automated::ListOrBulk);
    }
    if is_auto_reply(msg) {
        return Some(Automated::AutoReply);
    }
    if is_list_or_bulk(msg) {
        return Some(Automated::ListOrBulk);
    }
    None
}

/// True when the message is a delivery failure or delay report. Checked BEFORE auto-reply logic by `automated`, because many bounces carry Auto-Submitted.
///
/// `reverse_path` as for [`automated`]. Feedback (ARF) reports are never
/// bounces. See the module docs for the strong and weak signals.
pub fn is_bounce(msg: &Message<'_>, reverse_path: Option<&str>) -> bool {
    if is_feedback_report(msg) {
        return false;
    }
    if content_bounce_strong(msg) {
        return true;
    }
    let weak = weak_bounce_signals(msg);
    if weak >= 2 {
        return true;
    }
    match reverse_path_kind(msg, reverse_path) {
        ReversePath::MailerDaemon => true,
        // RFC 3834 auto-replies are sent with the null sender as well: only
        // an explicit auto-reply marker with no other bounce evidence makes
        // a null-sender message an auto-reply.
        ReversePath::Null => weak >= 1 || !is_auto_reply(msg),
        ReversePath::Other | ReversePath::Unknown => false,
    }
}

// ---------------------------------------------------------------------------
// Header helpers
// ---------------------------------------------------------------------------

/// Unfolded, trimmed raw values of every top-level header called `name`, in
/// message order (topmost first).
fn raw_values<'m>(msg: &'m Message<'_>, name: &'m str) -> impl Iterator<Item = String> + 'm {
    msg.headers_raw()
        .filter(move |(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| unfold(v))
}

fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn first_raw(msg: &Message<'_>, name: &str) -> Option<String> {
    raw_values(msg, name).next()
}

fn has_header(msg: &Message<'_>, name: &str) -> bool {
    raw_values(msg, name).any(|v| !v.is_empty())
}

/// Lower-cased, whitespace-collapsed, trimmed subject (RFC 2047 decoded).
fn subject_lc(msg: &Message<'_>) -> String {
    msg.subject()
        .map(|s| unfold(s).to_lowercase())
        .unwrap_or_default()
}

/// The first token of a header value such as `Auto-Submitted: auto-replied;
/// owner-email="..."` or `Precedence: bulk (comment)`, lower-cased.
fn keyword(value: &str) -> String {
    value
        .split([';', '(', ' ', '\t'])
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .to_ascii_lowercase()
}

/// Local part (lower case) of an address such as `MAILER-DAEMON@host`,
/// `<MAILER-DAEMON>` or `mailer-daemon`.
fn local_part(addr: &str) -> String {
    let a = addr
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let local = match a.rfind('@') {
        Some(i) => &a[..i],
        None => a,
    };
    local.trim_matches('"').to_ascii_lowercase()
}

/// (display name, address) of every From: and Sender: mailbox.
fn sender_mailboxes(msg: &Message<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for addr in [msg.from(), msg.sender()].into_iter().flatten() {
        for a in addr.iter() {
            out.push((
                a.name().map(unfold).unwrap_or_default(),
                a.address().map(str::trim).unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

enum ReversePath {
    Null,
    MailerDaemon,
    Other,
    Unknown,
}

/// The envelope sender, or when unknown the first (most recent) Return-Path.
fn reverse_path_kind(msg: &Message<'_>, reverse_path: Option<&str>) -> ReversePath {
    let value = match reverse_path {
        Some(rp) => rp.to_string(),
        None => match first_raw(msg, "Return-Path") {
            Some(v) => v,
            None => return ReversePath::Unknown,
        },
    };
    // Drop comments and angle brackets: "<>", "< >", "<MAILER-DAEMON@host>".
    let v: String = value
        .split('(')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '<' && *c != '>')
        .collect();
    if v.is_empty() {
        ReversePath::Null
    } else if local_part(&v) == "mailer-daemon" {
        ReversePath::MailerDaemon
    } else {
        ReversePath::Other
    }
}

/// All MIME parts of the message itself (attached messages are separate
/// `Message`s in mail-parser and are not looked into).
fn content_types<'m>(msg: &'m Message<'_>) -> impl Iterator<Item = (String, String)> + 'm {
    msg.parts.iter().filter_map(|p: &MessagePart<'_>| {
        p.content_type().map(|ct| {
            (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase(),
            )
        })
    })
}

/// `report-type` of a top-level `multipart/report`, lower case.
fn report_type(msg: &Message<'_>) -> Option<String> {
    let ct = msg.content_type()?;
    if ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        Some(
            ct.attributes()
                .unwrap_or(&[])
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case("report-type"))
                .map(|a| a.value.trim().to_ascii_lowercase())
                .unwrap_or_default(),
        )
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Bounces
// ---------------------------------------------------------------------------

/// Local parts that only delivery subsystems use.
const BOUNCE_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "mailerdaemon",
    "mailer_daemon",
    "mail-daemon",
    "postmaster",
    "post_master",
    "post-master",
    "mail-delivery-subsystem",
    "mail.delivery.system",
    "mail-delivery-system",
];

fn content_bounce_strong(msg: &Message<'_>) -> bool {
    // From / Sender.
    for (name, address) in sender_mailboxes(msg) {
        if !address.is_empty() {
            if BOUNCE_LOCAL_PARTS.contains(&local_part(&address).as_str()) {
                return true;
            }
        } else if name.eq_ignore_ascii_case("mailer-daemon") {
            return true;
        }
    }
    // Unparseable From such as `MAILER-DAEMON <>`: look at the raw text.
    if msg.from().is_none() {
        if let Some(raw) = first_raw(msg, "From") {
            let lc = raw.to_ascii_lowercase();
            if lc.contains("mailer-daemon") {
                return true;
            }
        }
    }
    if report_type(msg).is_some_and(|t| t == "delivery-status" || t == "global-delivery-status") {
        return true;
    }
    if content_types(msg)
        .any(|(t, s)| t == "message" && (s == "delivery-status" || s == "global-delivery-status"))
    {
        return true;
    }
    has_header(msg, "X-Failed-Recipients")
}

/// Subjects of delivery reports, matched at the start of the lower-cased subject.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "undelivered message",
    "non-deliverable",
    "nondeliverable",
    "delivery status notification",
    "mail delivery status notification",
    "delivery notification: delivery has",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "delivery delayed",
    "delayed mail",
    "mail delivery failed",
    "mail delivery failure",
    "mail delivery problem",
    "mail system error",
    "failure notice",
    "returned mail",
    "message not delivered",
    "message status - undeliverable",
    "mail could not be delivered",
    "sorry, your message could not be delivered",
    "warning: could not send message",
    "notice: mail delivery status",
    "postmaster notify",
    "unzustellbar",
    "nicht zustellbar",
    "onbeställbart",
    "kunde inte levereras",
    "ej levererat",
    "onbestelbaar",
    "non recapitabile",
    "non remis",
    "no se puede entregar",
    "kan ikke leveres",
    "ei voitu toimittaa",
    "impossible de remettre",
    "メールエラー通知",
    "non-delivery",
    "nondelivery",
    "non delivery",
    "delivery notification",
    "delivery status",
    "failed delivery",
    "bounce notification",
    "email bounce notification",
    "message delayed",
    "warning: message",
];

/// Reply and forward prefixes in the languages our users and their
/// correspondents write in.
const REPLY_PREFIXES: &[&str] = &[
    "re", "sv", "svar", "aw", "antw", "antwort", "fw", "fwd", "vb", "vs", "wg", "tr", "rv", "enc",
    "res", "odp", "vl", "ynt", "r", "rif", "i", "doorst",
];

fn starts_with_reply_prefix(subject_lc: &str) -> bool {
    let Some(colon) = subject_lc.find([':', '：']) else {
        return false;
    };
    let head = subject_lc[..colon].trim();
    // "Re[2]" / "Re(2)" / "Re 2"
    let head = head
        .trim_end_matches(|c: char| c.is_ascii_digit() || "[]() ".contains(c))
        .trim();
    REPLY_PREFIXES.contains(&head)
}

fn bounce_subject(msg: &Message<'_>) -> bool {
    let s = subject_lc(msg);
    let s = s.trim_start_matches(['*', '[', ' ']);
    !starts_with_reply_prefix(s) && BOUNCE_SUBJECTS.iter().any(|p| s.starts_with(p))
}

const BOUNCE_DISPLAY_NAMES: &[&str] = &[
    "mail delivery system",
    "mail delivery subsystem",
    "mail delivery service",
    "mail administrator",
    "mailer daemon",
    "mailer-daemon",
    "postmaster",
    "internet mail delivery",
    "ndr administrator",
];

fn bounce_display_name(msg: &Message<'_>) -> bool {
    sender_mailboxes(msg).iter().any(|(name, _)| {
        let n = name.to_lowercase();
        BOUNCE_DISPLAY_NAMES.iter().any(|p| n.contains(p))
    })
}

const BOUNCE_BODY_PHRASES: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "undeliverable",
    "delivery has failed",
    "delivery to the following recipient",
    "permanent error",
    "permanent fatal error",
    "this is the mail system at host",
    "created automatically by mail delivery software",
    "sorry to have to inform you",
    "unable to deliver",
    "delivery failed",
    "user unknown",
    "no such user",
    "mailbox is full",
    "mailbox unavailable",
    "returned to sender",
    "non-delivery report",
    "failed addresses follow",
    "not able to deliver",
    "will continue to try",
    "delivery attempts will continue",
    "has not yet been delivered",
];

fn bounce_body(msg: &Message<'_>) -> bool {
    let Some(text) = msg.body_text(0) else {
        return false;
    };
    let head: String = text.chars().take(4000).collect::<String>().to_lowercase();
    let head = unfold(&head);
    BOUNCE_BODY_PHRASES.iter().any(|p| head.contains(p))
}

fn returned_original(msg: &Message<'_>) -> bool {
    msg.parts.iter().enumerate().any(|(i, p)| {
        i > 0
            && (matches!(p.body, PartType::Message(_))
                || p.content_type().is_some_and(|ct| {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct.subtype().is_some_and(|s| {
                            s.eq_ignore_ascii_case("rfc822-headers")
                                || s.eq_ignore_ascii_case("rfc822-header")
                        })
                }))
    })
}

/// A `From:` with no address at all (`From: <>`, as some filters write the
/// null sender into the header): nobody wrote it who could be answered.
fn null_from(msg: &Message<'_>) -> bool {
    raw_values(msg, "From").next().is_some_and(|v| {
        let v = v.trim();
        v.is_empty() || v == "<>" || v.ends_with(" <>") || v == "\"\" <>"
    })
}

fn weak_bounce_signals(msg: &Message<'_>) -> u8 {
    [
        bounce_subject(msg),
        bounce_display_name(msg),
        bounce_body(msg),
        returned_original(msg),
        null_from(msg),
    ]
    .iter()
    .filter(|b| **b)
    .count() as u8
}

// ---------------------------------------------------------------------------
// Feedback reports
// ---------------------------------------------------------------------------

/// An ARF (RFC 5965) feedback report: a complaint, not a bounce.
pub fn is_feedback_report(msg: &Message<'_>) -> bool {
    report_type(msg).is_some_and(|t| t == "feedback-report")
        || content_types(msg).any(|(t, s)| t == "message" && s == "feedback-report")
}

// ---------------------------------------------------------------------------
// Auto-replies
// ---------------------------------------------------------------------------

/// Subject prefixes that mark an auto-reply when followed by a colon (or when
/// they are the whole subject).
const AUTO_REPLY_PREFIXES: &[&str] = &[
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "automatic response",
    "auto response",
    "auto-response",
    "autoresponse",
    "auto",
    "out of office",
    "out of the office",
    "out-of-office",
    "out of office autoreply",
    "out of office reply",
    "frånvaro",
    "frånvarande",
    "frånvaromeddelande",
    "autosvar",
    "automatiskt svar",
    "automatisk svar",
    "automatisk besked",
    "fraværende",
    "automaattinen vastaus",
    "abwesenheit",
    "abwesenheitsnotiz",
    "automatische antwort",
    "automatisch antwoord",
    "afwezig",
    "réponse automatique",
    "reponse automatique",
    "risposta automatica",
    "respuesta automática",
    "respuesta automatica",
    "resposta automática",
    "automatyczna odpowiedź",
    "on vacation",
];

/// Phrases that mark an auto-reply anywhere in the subject.
const AUTO_REPLY_ANYWHERE: &[&str] = &[
    "(automatic response)",
    "(automatic reply)",
    "(auto-reply)",
    "(autoreply)",
    "(auto reply)",
    "(auto response)",
    "(out of office)",
    "[auto-reply]",
    "[autoreply]",
    "[auto reply]",
    "[automatic reply]",
    "[autosvar]",
    "[automatyczna odpowiedź]",
    "out of office autoreply",
];

/// Looser wording, counted only with `X-Auto-Response-Suppress`.
const AUTO_REPLY_LOOSE: &[&str] = &[
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "automatic response",
    "out of office",
    "out of the office",
    "vacation",
    "away",
    "frånvaro",
    "frånvarande",
    "autosvar",
    "automatiskt svar",
    "abwesen",
];

fn auto_reply_subject(s: &str) -> bool {
    if AUTO_REPLY_ANYWHERE.iter().any(|p| s.contains(p)) {
        return true;
    }
    let s = s.trim_start_matches('[');
    AUTO_REPLY_PREFIXES.iter().any(|p| {
        s.strip_prefix(p).is_some_and(|rest| {
            let rest = rest.trim_start();
            rest.is_empty() || rest.starts_with([':', '：', ']'])
        })
    })
}

fn is_auto_reply(msg: &Message<'_>) -> bool {
    // RFC 3834 Auto-Submitted: anything but "no".
    if raw_values(msg, "Auto-Submitted").any(|v| {
        let k = keyword(&v);
        !k.is_empty() && k != "no"
    }) {
        return true;
    }
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Autoreply-From",
        "X-Mail-Autoreply",
    ] {
        if raw_values(msg, name).any(|v| {
            let k = keyword(&v);
            !matches!(k.as_str(), "" | "no" | "false" | "0")
        }) {
            return true;
        }
    }
    if raw_values(msg, "X-Apple-Action").any(|v| v.to_ascii_lowercase().contains("vacation")) {
        return true;
    }
    if let Some(t) = report_type(msg) {
        // Read receipts and other machine reports (not DSN, not ARF).
        if t != "delivery-status" && t != "feedback-report" {
            return true;
        }
    }
    let s = subject_lc(msg);
    if auto_reply_subject(&s) {
        return true;
    }
    has_header(msg, "X-Auto-Response-Suppress")
        && !starts_with_reply_prefix(&s)
        && AUTO_REPLY_LOOSE.iter().any(|p| s.contains(p))
}

// ---------------------------------------------------------------------------
// Lists and bulk mail
// ---------------------------------------------------------------------------

const NOREPLY_LOCAL_PARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
];

fn is_list_or_bulk(msg: &Message<'_>) -> bool {
    if raw_values(msg, "Precedence").any(|v| {
        matches!(
            keyword(&v).as_str(),
            "bulk" | "junk" | "list" | "auto_reply" | "auto-reply"
        )
    }) {
        return true;
    }
    if has_header(msg, "List-Id") || has_header(msg, "List-Unsubscribe") {
        return true;
    }
    sender_mailboxes(msg)
        .iter()
        .any(|(_, a)| NOREPLY_LOCAL_PARTS.contains(&local_part(a).as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn classify(raw: &str, rp: Option<&str>) -> Option<Automated> {
        let msg = MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parse");
        automated(&msg, rp)
    }

    const HUMAN: &str = "From: Anna Andersson <anna@example.se>\r\n\
        To: styrelsen@example.org\r\n\
        Subject: Protokoll från mötet\r\n\
        Message-ID: <1@example.se>\r\n\
        Date: Mon, 1 Sep 2025 10:00:00 +0200\r\n\
        \r\n\
        Hej! Här kommer protokollet.\r\n";

    #[test]
    fn human_mail_is_not_automated() {
        assert_eq!(classify(HUMAN, None), None);
        assert_eq!(classify(HUMAN, Some("anna@example.se")), None);
        let msg = MessageParser::default().parse(HUMAN.as_bytes()).unwrap();
        assert!(!is_bounce(&msg, Some("anna@example.se")));
    }

    #[test]
    fn auto_submitted_no_is_not_automated() {
        let raw = format!("Auto-Submitted: no\r\n{HUMAN}");
        assert_eq!(classify(&raw, None), None);
        let raw = format!("AUTO-SUBMITTED:   No \r\n{HUMAN}");
        assert_eq!(classify(&raw, None), None);
    }

    #[test]
    fn auto_submitted_other_than_no_is_auto_reply() {
        let raw = format!("auto-submitted: Auto-Replied; owner-email=\"a@b\"\r\n{HUMAN}");
        assert_eq!(classify(&raw, None), Some(Automated::AutoReply));
    }

    #[test]
    fn swedish_vacation_subject_is_auto_reply() {
        let raw = "From: Anna <anna@example.se>\r\n\
            To: lista@example.org\r\n\
            Subject: =?utf-8?q?Fr=C3=A5nvaro=3A_Protokoll?=\r\n\
            \r\n\
            Jag är borta till 1 augusti.\r\n";
        assert_eq!(classify(raw, None), Some(Automated::AutoReply));
        let raw = raw.replace(
            "=?utf-8?q?Fr=C3=A5nvaro=3A_Protokoll?=",
            "Frånvaro: Protokoll",
        );
        assert_eq!(classify(&raw, None), Some(Automated::AutoReply));
        for s in [
            "Autosvar: Protokoll",
            "Automatiskt svar: x",
            "Out of Office: x",
            "Auto: x",
            "Frånvarande",
        ] {
            let raw = raw.replace("Frånvaro: Protokoll", s);
            assert_eq!(classify(&raw, None), Some(Automated::AutoReply), "{s}");
        }
        // A person writing about absence is not an auto-reply.
        let raw = raw.replace("Frånvaro: Protokoll", "Frånvaro vid årsmötet");
        assert_eq!(classify(&raw, None), None);
    }

    #[test]
    fn precedence_bulk_is_list_or_bulk() {
        let raw = format!("Precedence: bulk\r\n{HUMAN}");
        assert_eq!(classify(&raw, None), Some(Automated::ListOrBulk));
        let raw = format!("List-Id: Other list <other.example.net>\r\n{HUMAN}");
        assert_eq!(classify(&raw, None), Some(Automated::ListOrBulk));
    }

    #[test]
    fn null_sender_is_bounce() {
        assert_eq!(classify(HUMAN, Some("")), Some(Automated::Bounce));
        assert_eq!(classify(HUMAN, Some("<>")), Some(Automated::Bounce));
        let raw = format!("Return-Path: <>\r\n{HUMAN}");
        assert_eq!(classify(&raw, None), Some(Automated::Bounce));
        // A known non-null envelope wins over a stale header.
        assert_eq!(classify(&raw, Some("anna@example.se")), None);
    }

    #[test]
    fn null_sender_vacation_is_auto_reply() {
        let raw = format!("Auto-Submitted: auto-replied\r\n{HUMAN}");
        assert_eq!(classify(&raw, Some("")), Some(Automated::AutoReply));
        // ... but one weak bounce signal next to the null sender wins.
        let raw = raw.replace("Protokoll från mötet", "Undeliverable: Protokoll");
        assert_eq!(classify(&raw, Some("")), Some(Automated::Bounce));
    }

    #[test]
    fn feedback_report_is_list_or_bulk_not_bounce() {
        let raw = "From: postmaster@isp.example\r\n\
            Auto-Submitted: auto-generated\r\n\
            Subject: FW: Nyhetsbrev\r\n\
            Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\
            \r\n\
            --b\r\n\
            Content-Type: text/plain\r\n\
            \r\n\
            Abuse report\r\n\
            --b\r\n\
            Content-Type: message/feedback-report\r\n\
            \r\n\
            Feedback-Type: abuse\r\n\
            --b--\r\n";
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert!(!is_bounce(&msg, Some("")));
        assert_eq!(automated(&msg, Some("")), Some(Automated::ListOrBulk));
    }

    #[test]
    fn human_reply_about_bounce_is_not_bounce() {
        let raw = HUMAN.replace("Protokoll från mötet", "Re: Undeliverable?");
        assert_eq!(classify(&raw, None), None);
        assert_eq!(classify(&raw, Some("anna@example.se")), None);
        let raw = HUMAN.replace("Protokoll från mötet", "Re: failure notice");
        assert_eq!(classify(&raw, None), None);
    }

    #[test]
    fn mailer_daemon_sender_is_bounce() {
        let raw = HUMAN.replace(
            "Anna Andersson <anna@example.se>",
            "MAILER-DAEMON@mx.example.se",
        );
        assert_eq!(classify(&raw, None), Some(Automated::Bounce));
    }
}
