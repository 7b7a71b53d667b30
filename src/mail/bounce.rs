//! Extracts who bounced and how from a delivery report; pure MIME and text inspection, no I/O — whether a message is a bounce at all is [`crate::mail::automated`]'s call, acting on the result is the caller's.
//!
//! # Where the failed recipients come from
//!
//! [`parse`] tries, in this order, and stops at the first source that names
//! at least one recipient:
//!
//! 1. RFC 3464 delivery status notifications: every `message/delivery-status`
//!    and `message/global-delivery-status` part (mail-parser hands them over
//!    as `PartType::Binary`, undecoded text). Each per-recipient block with
//!    `Action: failed` or `Action: delayed` (or no `Action` at all) gives one
//!    [`Failure`] for its `Final-Recipient` (`Original-Recipient` when the
//!    final one is not a mail address). `delivered`, `relayed` and
//!    `expanded` blocks are skipped. When no DSN part exists but a text part
//!    carries `Final-Recipient:` lines (broken MIME), those are read the
//!    same way.
//! 2. The `X-Failed-Recipients` header (Exim, Gmail, Mail.ru, ...).
//! 3. The human-readable text of the report (qmail, Exchange 2003, Yahoo,
//!    Domino, GMX, Courier, old Sendmail, Microsoft, ...), only for messages
//!    [`crate::mail::automated::is_bounce`] accepts and whose text reads like a
//!    delivery failure. An address counts when it stands alone on its line
//!    (`<a@b>:`, `"a@b":`, `a@b (a@b)`, `a@b on <date>`), follows
//!    `RCPT TO:` or a label such as `Failed recipient:`, is followed by
//!    Sendmail's `...`, or is preceded by an SMTP reply code. The text is cut
//!    where the returned original begins, header-like lines (`To:`,
//!    `From:`, `Subject:`, ...) are skipped, and addresses of the report's
//!    own sender and recipient and of the returned original's sender never
//!    count. When the text names nobody, a bounce attached as
//!    `message/rfc822` (a relay forwarding the bounce it got) is parsed the
//!    same way, and failing that the `To:` of the returned original (a
//!    single address) is used.
//!
//! # Permanent or temporary
//!
//! For a DSN block: the class of `Status` (5 permanent, 4 temporary). A
//! generic `Status` (`x.0.0`) keeps its class (the reporting MTA's verdict:
//! `Status: 4.0.0` over a quoted `550` stays temporary) but the reported
//! status becomes the more specific code of the same class found in
//! `Diagnostic-Code`; without `Status`, the enhanced or basic SMTP code in
//! `Diagnostic-Code` decides, then `Action: delayed` means temporary. For
//! headers and text: the first enhanced status code (`5.1.1`) or SMTP reply
//! code (`550`) in the text about that recipient, then wording there
//! ("permanent", "user unknown", ... against "temporarily", "will retry",
//! "mailbox full", ...), then the same over the whole report; a failure
//! report that says nothing either way counts as permanent.
//!
//! [`complaint`] reads ARF (RFC 5965) feedback reports, which are never
//! bounces.

use crate::mail::bounce_words::{
    addresses_in, basic_code_class, code_class, enhanced_code, first_address, judge, keyword,
    local_part, one_line, unfold, wording,
};
use crate::mail::html_text::html_to_text;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// One recipient that a delivery report says could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The failed recipient, lower case, without < >.
    pub recipient: String,
    /// true: permanent (5.x.x / 5yz); false: temporary (4.x.x / 4yz, delays).
    pub permanent: bool,
    /// Enhanced status code when known ("5.1.1"), else None.
    pub status: Option<String>,
    /// Short diagnostic text (one line, at most 200 chars) for the owner's log.
    pub diagnostic: String,
    /// Why, in sisimai's vocabulary (`userunknown`, `mailboxfull`,
    /// `hostunknown`, `expired`, ...), when the report says.
    pub reason: Option<String>,
}

/// Every failed recipient in a bounce. Empty when nothing can be attributed.
///
/// See the module docs for the sources tried and how permanence is decided.
/// Attached `message/rfc822` originals are never read for recipients (only
/// their `From`/`To` headers, to exclude or as a last resort).
pub fn parse(msg: &Message<'_>) -> Vec<Failure> {
    let (failures, successes) = dsn_failures(msg);
    if !failures.is_empty() || successes {
        // A DSN whose every recipient was delivered, relayed or expanded
        // (RFC 3464 §2.3.3) reports no failure: its text is not read for one.
        return failures;
    }
    let texts = report_texts(msg);
    let failures = x_failed_recipients(msg, &texts);
    if !failures.is_empty() {
        return failures;
    }
    if !crate::mail::automated::is_bounce(msg, None) {
        return Vec::new();
    }
    text_failures(msg, &texts)
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

// ---------------------------------------------------------------------------
// MIME helpers
// ---------------------------------------------------------------------------

fn has_type(part: &mail_parser::MessagePart<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|w| s.eq_ignore_ascii_case(w)))
    })
}

/// Calls `f` with each original a report carries: a `message/rfc822`
/// part, or the header of a `text/rfc822-headers` part.
fn for_each_original(msg: &Message<'_>, mut f: impl FnMut(&Message<'_>)) {
    for part in &msg.parts {
        match &part.body {
            PartType::Message(m) => f(m),
            PartType::Text(t) if has_type(part, "text", &["rfc822-headers", "rfc822-header"]) => {
                if let Some(m) = MessageParser::default().parse_headers(t.as_bytes()) {
                    f(&m);
                }
            }
            _ => {}
        }
    }
}

/// The body of a leaf part as text (DSN parts arrive as `Binary`).
fn part_text(body: &PartType<'_>) -> Option<String> {
    match body {
        PartType::Text(t) => Some(t.to_string()),
        PartType::Html(h) => Some(html_to_text(h)),
        PartType::Binary(b) | PartType::InlineBinary(b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        _ => None,
    }
}

/// Every address in the raw values of the top-level headers called `name`.
fn header_addresses(msg: &Message<'_>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, v) in msg.headers_raw() {
        if n.trim().eq_ignore_ascii_case(name) {
            out.extend(addresses_in(v).into_iter().map(|(_, _, a)| a));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// RFC 3464 delivery status notifications
// ---------------------------------------------------------------------------

/// Header blocks separated by blank lines: (lower-case field name, unfolded
/// value) pairs.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = block.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            if !name.contains(' ') {
                block.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

/// `rfc822; <a@b>` → `a@b`.
fn typed_address(value: &str) -> Option<String> {
    let v = value.split_once(';').map_or(value, |(_, a)| a);
    first_address(v)
}

/// The texts of every DSN part; when there is none, text parts that carry
/// `Final-Recipient:` lines (from that line on).
fn dsn_texts(msg: &Message<'_>) -> Vec<String> {
    let parts: Vec<String> = msg
        .parts
        .iter()
        .filter(|p| has_type(p, "message", &["delivery-status", "global-delivery-status"]))
        .filter_map(|p| part_text(&p.body))
        .collect();
    if !parts.is_empty() {
        return parts;
    }
    let mut out = Vec::new();
    for p in &msg.parts {
        if let PartType::Text(t) = &p.body {
            let lc = t.to_ascii_lowercase();
            if let Some(i) = lc.find("\nfinal-recipient:") {
                // Start at the beginning of the block the field belongs to.
                let start = lc[..i].rfind("\n\n").map_or(i + 1, |j| j + 2);
                out.push(t[start..].to_string());
            }
        }
    }
    out
}

/// Is `msg` a delivery status notification that reports success only
/// (every recipient `delivered`, `relayed` or `expanded`)? Such a report
/// came back to our envelope sender but is no bounce.
pub fn reports_success_only(msg: &Message<'_>) -> bool {
    let (failures, successes) = dsn_failures(msg);
    failures.is_empty() && successes
}

/// The failed recipients of the `message/delivery-status` parts, and
/// whether some recipient block reported success.
fn dsn_failures(msg: &Message<'_>) -> (Vec<Failure>, bool) {
    let mut out: Vec<Failure> = Vec::new();
    let mut successes = false;
    for text in dsn_texts(msg) {
        for block in field_blocks(&text) {
            let field = |name: &str| {
                block
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            // Final-Recipient may be a forwarding or internal address; the
            // address we sent to is then Original-Recipient. Both are named.
            let original = field("original-recipient").and_then(typed_address);
            let recipient = field("final-recipient")
                .and_then(typed_address)
                .or_else(|| original.clone());
            let Some(recipient) = recipient else {
                continue;
            };
            let action = field("action").map(|a| keyword(a).to_ascii_lowercase());
            if matches!(
                action.as_deref(),
                Some("delivered" | "relayed" | "expanded")
            ) {
                successes = true;
                continue;
            }
            let dsn_status = field("status").and_then(enhanced_code);
            let diagnostic_raw = field("diagnostic-code").unwrap_or("");
            let diag = diagnostic_raw
                .split_once(';')
                .map_or(diagnostic_raw, |(_, d)| d)
                .trim();
            let diag_status = enhanced_code(diag);
            let diag_class = diag_status
                .as_deref()
                .and_then(code_class)
                .or_else(|| basic_code_class(diag));
            let dsn_class = dsn_status.as_deref().and_then(code_class);
            // A generic Status ("5.0.0") is refined by a more specific code of
            // the same class in the diagnostic ("550 5.7.1 ...").
            let generic = dsn_status.as_deref().is_none_or(|s| s.ends_with(".0.0"));
            let status = match (&diag_status, dsn_class) {
                (Some(d), Some(c)) if generic && code_class(d) == Some(c) => diag_status.clone(),
                (Some(_), None) => diag_status.clone(),
                _ => dsn_status,
            };
            // The reporting MTA's class wins over the remote reply it quotes
            // (rhost-franceptt-06: Status 4.0.0 for a "550 IP blocked").
            // `delayed` is a warning: the MTA is still trying (§2.3.3).
            let permanent = match (dsn_class, diag_class, action.as_deref()) {
                (_, _, Some("delayed")) => false,
                (Some(c), _, _) => c,
                (None, Some(c), _) => c,
                (None, None, _) => wording(diag).unwrap_or(true),
            };
            let diagnostic = if diag.is_empty() {
                let mut d = action.clone().unwrap_or_else(|| "failed".to_string());
                if let Some(s) = field("status") {
                    d.push_str(": ");
                    d.push_str(s);
                }
                d
            } else {
                diag.to_string()
            };
            let diagnostic = one_line(&diagnostic);
            for recipient in std::iter::once(recipient).chain(original) {
                if out.iter().any(|f| f.recipient == recipient) {
                    continue;
                }
                out.push(Failure {
                    recipient,
                    permanent,
                    status: status.clone(),
                    diagnostic: diagnostic.clone(),
                    reason: None,
                });
            }
        }
    }
    (out, successes)
}

// ---------------------------------------------------------------------------
// The report's text
// ---------------------------------------------------------------------------

/// Lines (lower case, trimmed) that start the returned original.
const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "copy of the original message",
    "original message follows",
    "original message header",
    "header of the original message",
    "headers of the original message",
    "original message --",
    "unsent message below",
    "message headers follow",
    "undelivered message headers",
    "returned message",
];

/// Header fields of a returned original pasted into the text (column 0).
const ORIGINAL_HEADER_STARTS: &[&str] = &["received: ", "return-path: ", "return-path:<"];

/// Human-readable text of the report itself: text parts (HTML as text),
/// without `text/rfc822-headers`, DSN parts and attached messages, each cut
/// where the returned original begins.
fn report_texts(msg: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for part in &msg.parts {
        if has_type(part, "text", &["rfc822-headers", "rfc822-header"]) {
            continue;
        }
        let text = match &part.body {
            PartType::Text(t) => t.to_string(),
            PartType::Html(h) => html_to_text(h),
            // A multipart whose boundary mail-parser could not read
            // (lhost-apachejames-01): its raw text.
            PartType::Binary(b) | PartType::InlineBinary(b)
                if has_type(part, "multipart", &["alternative", "mixed", "related"]) =>
            {
                String::from_utf8_lossy(b).into_owned()
            }
            _ => continue,
        };
        out.push(cut_original(&text));
    }
    out
}

/// Whole lines (lower case, trimmed) that start the returned original.
const ORIGINAL_LINES: &[&str] = &["original message:", "original message"];

fn cut_original(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let lc = line.trim().to_lowercase();
        let col0 = line.to_lowercase();
        if ORIGINAL_MARKERS.iter().any(|m| lc.contains(m))
            || ORIGINAL_LINES.contains(&lc.as_str())
            || ORIGINAL_HEADER_STARTS.iter().any(|m| col0.starts_with(m))
        {
            break;
        }
        out.push_str(line.trim_end_matches('\r'));
        out.push('\n');
    }
    out
}

/// Addresses and headers of the returned original.
#[derive(Default)]
struct Original {
    senders: Vec<String>,
    to: Vec<String>,
}

fn original_headers(msg: &Message<'_>) -> Original {
    let mut o = Original::default();
    let add = |m: &Message<'_>| {
        for name in ["From", "Sender", "Return-Path", "Reply-To"] {
            o.senders.extend(header_addresses(m, name));
        }
        if o.to.is_empty() {
            o.to = header_addresses(m, "To");
        }
    };
    for_each_original(msg, add);
    // Originals pasted into the text: header lines after the cut.
    for part in &msg.parts {
        if let PartType::Text(t) = &part.body {
            let kept = cut_original(t).len();
            let rest = t.get(kept..).unwrap_or("");
            for line in rest.lines() {
                let lc = line.to_ascii_lowercase();
                if lc.starts_with("from:")
                    || lc.starts_with("sender:")
                    || lc.starts_with("reply-to:")
                {
                    o.senders
                        .extend(addresses_in(line).into_iter().map(|(_, _, a)| a));
                } else if lc.starts_with("to:") && o.to.is_empty() {
                    o.to = addresses_in(line).into_iter().map(|(_, _, a)| a).collect();
                }
            }
        }
    }
    o
}

/// Addresses that are never the failed recipient: the report's own sender
/// and recipient, and the returned original's sender.
fn excluded_addresses(msg: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        "From",
        "Sender",
        "Return-Path",
        "Reply-To",
        "To",
        "Delivered-To",
    ] {
        out.extend(header_addresses(msg, name));
    }
    out.extend(original_headers(msg).senders);
    out
}

// ---------------------------------------------------------------------------
// X-Failed-Recipients
// ---------------------------------------------------------------------------

fn x_failed_recipients(msg: &Message<'_>, texts: &[String]) -> Vec<Failure> {
    let mut recipients: Vec<String> = Vec::new();
    for (n, v) in msg.headers_raw() {
        if n.trim().eq_ignore_ascii_case("X-Failed-Recipients") {
            for (_, _, a) in addresses_in(v) {
                if !recipients.contains(&a) {
                    recipients.push(a);
                }
            }
        }
    }
    if recipients.is_empty() {
        return Vec::new();
    }
    let whole = texts.join("\n");
    let blocks = recipient_blocks(&whole, &recipients);
    recipients
        .into_iter()
        .zip(blocks)
        .map(|(recipient, block)| failure_from_text(recipient, &block, &whole))
        .collect()
}

fn failure_from_text(recipient: String, block: &str, whole: &str) -> Failure {
    let (permanent, status) = judge(block, whole);
    let diagnostic = diagnostic_from(block, &recipient);
    let diagnostic = if diagnostic.is_empty() {
        diagnostic_from(whole, "")
    } else {
        diagnostic
    };
    Failure {
        recipient,
        permanent,
        status,
        diagnostic,
        reason: None,
    }
}

/// The lines of `block` other than those that only name the recipient.
fn diagnostic_from(block: &str, recipient: &str) -> String {
    let mut parts = Vec::new();
    for line in block.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if !recipient.is_empty() && alone_on_line(t) {
            continue;
        }
        parts.push(t);
        if parts.iter().map(|p| p.len()).sum::<usize>() > 200 {
            break;
        }
    }
    one_line(&parts.join(" "))
}

/// For each recipient, the text from the first line that names it up to the
/// next line naming another of the recipients (or a few lines on).
fn recipient_blocks(text: &str, recipients: &[String]) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let names = |line: &str| -> Option<usize> {
        let found = addresses_in(line);
        recipients
            .iter()
            .position(|r| found.iter().any(|(_, _, a)| a == r))
    };
    recipients
        .iter()
        .enumerate()
        .map(|(idx, _)| {
            let Some(start) = lines.iter().position(|l| names(l) == Some(idx)) else {
                return String::new();
            };
            let mut block = vec![lines[start]];
            for line in lines.iter().skip(start + 1).take(12) {
                if names(line).is_some_and(|j| j != idx) {
                    break;
                }
                block.push(line);
            }
            block.join("\n")
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Text bounces
// ---------------------------------------------------------------------------

/// Wording that shows a text is a delivery failure report.
const FAILURE_PHRASES: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "could not deliver",
    "not be delivered",
    "was not delivered",
    "wasn't able to deliver",
    "unable to deliver",
    "undeliverable",
    "delivery has failed",
    "delivery failed",
    "delivery to the following",
    "did not reach",
    "delivery problem",
    "delivery status",
    "failed to deliver",
    "permanent error",
    "permanent fatal",
    "fatal error",
    "following address",
    "following recipient",
    "returned to sender",
    "not delivered",
    "user unknown",
    "unknown user",
    "no such user",
    "mailbox is full",
    "mailbox unavailable",
    "rcpt to",
    "delivery time expired",
    "has not been delivered",
    "delivery attempts",
    "warning message only",
    "bounce",
    "error",
    "failure",
];

/// Header-like labels whose addresses are not recipients.
const SKIP_LABELS: &[&str] = &[
    "to:",
    "from:",
    "subject:",
    "sent:",
    "date:",
    "cc:",
    "bcc:",
    "reply-to:",
    "return-path:",
    "sender:",
    "message-id:",
    "delivered-to:",
    "received:",
    "in-reply-to:",
    "references:",
    "envelope-from:",
    "x-",
];

/// Text before an address that makes it a recipient.
const RECIPIENT_CUES: &[&str] = &[
    "rcpt to:",
    "recipient:",
    "recipients:",
    "recipient(s):",
    "address:",
    "addresses:",
    "address(es):",
    "failed:",
    "user:",
    "mailbox:",
    "delivery to",
    "deliver to",
    "delivered to",
    "message to",
    "mail to",
    "addressed to",
    "recipient",
    "rejected",
];

/// True when the line holds nothing but addresses and light punctuation
/// (`<a@b>:`, `"a@b":`, `a@b (a@b)`, `a@b on <date>`, `a@b ...`).
fn alone_on_line(line: &str) -> bool {
    let found = addresses_in(line);
    if found.is_empty() {
        return false;
    }
    let mut rest = String::new();
    let mut pos = 0;
    for (s, e, _) in &found {
        // Matches can overlap ("a@b.coma@c.se"); take each stretch once.
        if *s < pos {
            pos = pos.max(*e);
            continue;
        }
        rest.push_str(&line[pos..*s]);
        rest.push(' ');
        pos = *e;
    }
    rest.push_str(&line[pos..]);
    let rest = rest.trim_matches(|c: char| c.is_whitespace() || "<>\"':;,.()[]".contains(c));
    rest.is_empty() || rest.to_ascii_lowercase().starts_with("on ")
}

/// Whether the address at `start..end` of `line` is named as a recipient.
fn is_recipient_mention(line: &str, start: usize, end: usize) -> bool {
    if alone_on_line(line) {
        return true;
    }
    let before = line[..start]
        .trim_end_matches(|c: char| c == '<' || c == '"' || c.is_whitespace())
        .to_lowercase();
    let after = line[end..].trim_start_matches(['>', '"']);
    if after.starts_with("...") {
        return true;
    }
    // "a@b: 550 5.1.1 ...", "a@b (user not found)": the address leads the line.
    if before.trim().is_empty() && after.trim_start().starts_with([':', '(']) {
        return true;
    }
    // "RCPT TO:<a@b>", "Failed recipient: a@b", "could not be delivered to: <a@b>"
    let before_cue = before.trim_end_matches([':', ' ', '\t']);
    if RECIPIENT_CUES
        .iter()
        .any(|c| before_cue.ends_with(c.trim_end_matches(':')))
    {
        return true;
    }
    // "550 5.1.1 <a@b>", "said: 550 Unknown user a@b"
    let tail_start = before.char_indices().rev().nth(39).map_or(0, |(i, _)| i);
    let tail = &before[tail_start..];
    if basic_code_class(tail).is_some() || enhanced_code(tail).is_some() {
        return true;
    }
    let lc = line.to_lowercase();
    [
        "user unknown",
        "unknown user",
        "no such user",
        "does not exist",
        "unknown recipient",
    ]
    .iter()
    .any(|p| lc.contains(p))
}

fn is_skipped_line(line: &str) -> bool {
    let lc = line.trim().to_lowercase();
    SKIP_LABELS.iter().any(|l| lc.starts_with(l))
}

fn text_failures(msg: &Message<'_>, texts: &[String]) -> Vec<Failure> {
    let whole = texts.join("\n");
    let lc = unfold(&whole.to_lowercase());
    if !FAILURE_PHRASES.iter().any(|p| lc.contains(p)) {
        return Vec::new();
    }
    let excluded = excluded_addresses(msg);
    let mut recipients: Vec<String> = Vec::new();
    for line in whole.lines() {
        if is_skipped_line(line) {
            continue;
        }
        for (s, e, addr) in addresses_in(line) {
            if excluded.contains(&addr)
                || recipients.contains(&addr)
                || matches!(
                    local_part(&addr),
                    "mailer-daemon" | "mailerdaemon" | "mailer_daemon"
                )
                || !is_recipient_mention(line, s, e)
            {
                continue;
            }
            recipients.push(addr);
        }
    }
    if recipients.is_empty() {
        // A bounce forwarded inside a report of its own (relays that wrap
        // the bounce they received).
        for part in &msg.parts {
            if let PartType::Message(inner) = &part.body {
                if crate::mail::automated::is_bounce(inner, None) {
                    let failures = parse(inner);
                    if !failures.is_empty() {
                        return failures;
                    }
                }
            }
        }
        // Last resort: the one address the returned original was sent to.
        let original = original_headers(msg);
        if let [to] = original.to.as_slice() {
            if !excluded.contains(to) {
                recipients.push(to.clone());
            }
        }
    }
    let blocks = recipient_blocks(&whole, &recipients);
    recipients
        .into_iter()
        .zip(blocks)
        .map(|(recipient, block)| failure_from_text(recipient, &block, &whole))
        .collect()
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
                reason: None,
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
}
