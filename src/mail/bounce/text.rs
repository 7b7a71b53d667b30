//! The human-readable text of a report: where no DSN part and no
//! `X-Failed-Recipients` names the failed recipient.

use crate::mail::bounce::common::{for_each_original, has_type, header_addresses, Failure};
use crate::mail::bounce::{lhost, reason};
use crate::mail::bounce_words::{
    addresses_in, basic_code_class, enhanced_code, judge, local_part, lower_unfolded, one_line,
    unfold,
};
use crate::mail::html_text::html_to_text;
use mail_parser::{Message, PartType};

/// Lines (lower case, trimmed) that start the returned original.
pub(crate) const ORIGINAL_MARKERS: &[&str] = &[
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
    "enclosed are the original headers",
    "original headers follow",
    "text of message follows",
];

/// Header fields of a returned original pasted into the text (column 0).
pub(crate) const ORIGINAL_HEADER_STARTS: &[&str] = &["received:", "return-path: ", "return-path:<"];

/// Human-readable text of the report itself: text parts (HTML as text),
/// without `text/rfc822-headers`, DSN parts and attached messages, each cut
/// where the returned original begins.
pub(crate) fn report_texts(msg: &Message<'_>) -> Vec<String> {
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
pub(crate) const ORIGINAL_LINES: &[&str] = &["original message:", "original message"];

pub(crate) fn cut_original(text: &str) -> String {
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
pub(crate) struct Original {
    pub(crate) senders: Vec<String>,
    pub(crate) to: Vec<String>,
}

pub(crate) fn original_headers(msg: &Message<'_>) -> Original {
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
pub(crate) fn excluded_addresses(msg: &Message<'_>) -> Vec<String> {
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

pub(crate) fn x_failed_recipients(msg: &Message<'_>, texts: &[String]) -> Vec<Failure> {
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

pub(crate) fn failure_from_text(recipient: String, block: &str, whole: &str) -> Failure {
    let (permanent, status) = judge(block, whole);
    // A delay notice (the MTA is still trying) is a warning whatever code it
    // quotes, unless it also says it has given up.
    let permanent = permanent && !is_delay_notice(whole);
    let diagnostic = diagnostic_from(block, &recipient);
    let diagnostic = if diagnostic.is_empty() {
        diagnostic_from(whole, "")
    } else {
        diagnostic
    };
    let reason = reason::classify(status.as_deref(), block)
        .or_else(|| reason::classify(status.as_deref(), &diagnostic));
    Failure {
        recipient,
        permanent,
        status,
        diagnostic,
        reason,
    }
}

/// The lines of `block` other than those that only name the recipient.
pub(crate) fn diagnostic_from(block: &str, recipient: &str) -> String {
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
pub(crate) fn recipient_blocks(text: &str, recipients: &[String]) -> Vec<String> {
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
pub(crate) const FAILURE_PHRASES: &[&str] = &[
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
    "not able to deliver",
    "non-delivery",
    "nondelivery",
    "undelivered",
    "failed addresses",
    "will continue to try",
    "delivery attempts will continue",
    "not yet been delivered",
    "delayed",
    "unzustellbar",
    "nicht zugestellt",
    "non remis",
    "n'a pas pu être",
    "no se pudo entregar",
    "non recapitabile",
    "onbestelbaar",
    "kunde inte levereras",
    "returned mail",
    "host unknown",
    "unsent message",
    "transcript of session",
    "fehlgeschlagen",
    "a échoué",
    "did not receive",
    "did not reach",
];

/// Header-like labels whose addresses are not recipients.
pub(crate) const SKIP_LABELS: &[&str] = &[
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
pub(crate) const RECIPIENT_CUES: &[&str] = &[
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
    "undeliverable to",
    "destinataire",
    "destinatario",
    "empfänger",
    "mottagare",
];

/// Words that, before a colon, make the address after it the failed
/// recipient (`Unknown user: a@b`, `User's mailbox is full: <a@b>`,
/// `Invalid final delivery userid: a@b`, `Delivery failed 20 attempts: a@b`).
const FAILURE_LABEL_WORDS: &[&str] = &[
    "unknown",
    "invalid",
    "failed",
    "full",
    "undeliverable",
    "rejected",
    "not found",
    "does not exist",
    "no such",
    "quota",
    "expired",
    "unable",
    "could not",
    "disabled",
    "refused",
    "exceed",
    "error",
];

/// Lines that head a list of failed addresses, one a line after them
/// (airmail's `Failed addresses follow:`, sendmail's `The following
/// addresses had permanent fatal errors`, ...).
const LIST_HEADINGS: &[&str] = &[
    "following recipients failed",
    "following recipient(s) failed",
    "delivery to the following recipients failed",
    "could not be delivered to the following",
    "the following address(es) failed",
    "following addresses failed",
    "following recipients could not be reached",
    "following recipient(s) could not be reached",
    "following recipient(s) cannot be reached",
    "following recipients was aborted",
    "following recipients were aborted",
    "following recipient",
    "following address",
    "message not delivered to the following",
];

/// Wording after an address that leads its line which makes it the failed
/// recipient.
const LEADING_ADDRESS_FAILURES: &[&str] = &[
    "error",
    "invalid",
    "unknown",
    "rejected",
    "failed",
    "not found",
    "does not exist",
    "unavailable",
    "full",
    "quota",
    "disabled",
    "undeliverable",
];

/// True when the line holds nothing but addresses and light punctuation
/// (`<a@b>:`, `"a@b":`, `a@b (a@b)`, `a@b on <date>`, `a@b ...`).
pub(crate) fn alone_on_line(line: &str) -> bool {
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
    let rest = rest.trim_matches(|c: char| c.is_whitespace() || "<>\"':;,.()[]*-•·".contains(c));
    rest.is_empty() || rest.to_ascii_lowercase().starts_with("on ")
}

/// Whether the address at `start..end` of `line` is named as a recipient.
pub(crate) fn is_recipient_mention(line: &str, start: usize, end: usize) -> bool {
    if alone_on_line(line) {
        return true;
    }
    let before = line[..start]
        .trim_end_matches(|c: char| "<\"'".contains(c) || c.is_whitespace())
        .to_lowercase();
    let after = line[end..].trim_start_matches(['>', '"', '\'']);
    if after.starts_with("...") {
        return true;
    }
    // "a@b: 550 5.1.1 ...", "a@b (user not found)": the address leads the line.
    if before.trim().is_empty() && after.trim_start().starts_with([':', '(']) {
        return true;
    }
    // "a@b Invalid Address, ERROR_CODE :550": the address leads the line
    // and the rest of it is a failure.
    if before.trim().is_empty() {
        let rest = after.to_lowercase();
        if basic_code_class(&rest).is_some()
            || enhanced_code(&rest).is_some()
            || LEADING_ADDRESS_FAILURES.iter().any(|w| rest.contains(w))
        {
            return true;
        }
    }
    // "RCPT TO:<a@b>", "Failed recipient: a@b", "could not be delivered to: <a@b>"
    let before_cue = before.trim_end_matches([':', ' ', '\t']);
    if RECIPIENT_CUES
        .iter()
        .copied()
        .chain(lhost::cues())
        .any(|c| before_cue.ends_with(c.trim_end_matches(':')))
    {
        return true;
    }
    // "Unknown user: a@b", "User's mailbox is full: <a@b>"
    if let Some(label) = before.trim_end().strip_suffix(':') {
        let label = label.rsplit([':', '.', ';']).next().unwrap_or(label);
        if FAILURE_LABEL_WORDS.iter().any(|w| label.contains(w)) {
            return true;
        }
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

pub(crate) fn is_skipped_line(line: &str) -> bool {
    let lc = line.trim().to_lowercase();
    SKIP_LABELS.iter().any(|l| lc.starts_with(l))
}

/// Wording of a report of success (a text-only delivery or relay
/// notification, a read receipt).
const SUCCESS_PHRASES: &[&str] = &[
    "was delivered",
    "were delivered",
    "has been delivered",
    "have been delivered",
    "successfully delivered",
    "delivery succeeded",
    "delivery was successful",
    "delivery to these recipients or groups is complete",
    "delivery to the following recipients succeeded",
    "successfully relayed",
    "has been relayed",
    "was read on",
    "was displayed",
];

/// Wording of a failure that a success report does not use.
const NOT_SUCCESS_PHRASES: &[&str] = &[
    "not delivered",
    "not been delivered",
    "could not",
    "couldn't",
    "undeliverable",
    "unable to",
    "failed",
    "failure",
    "rejected",
    "delayed",
    "error",
    "unknown",
    "not yet",
];

/// Whether the report (its subject or text) reads like a delivery failure
/// at all: failure wording, and no report of success without failure
/// wording.
pub(crate) fn reads_like_failure(msg: &Message<'_>, texts: &[String]) -> bool {
    let mut all = msg.subject().unwrap_or("").to_string();
    for t in texts {
        all.push('\n');
        all.push_str(t);
    }
    let lc = lower_unfolded(&all);
    if SUCCESS_PHRASES.iter().any(|p| lc.contains(p))
        && !NOT_SUCCESS_PHRASES.iter().any(|p| lc.contains(p))
    {
        return false;
    }
    FAILURE_PHRASES.iter().any(|p| lc.contains(p))
}

pub(crate) fn text_failures(msg: &Message<'_>, texts: &[String]) -> Vec<Failure> {
    let whole = texts.join("\n");
    if !reads_like_failure(msg, texts) {
        return Vec::new();
    }
    let excluded = excluded_addresses(msg);
    let mut recipients: Vec<String> = Vec::new();
    let mut in_list = false;
    for line in whole.lines() {
        let lc = line.to_lowercase();
        // The heading itself may name the recipient ("Did not reach the
        // following recipient: a@b"): it is read like any line.
        let heading = LIST_HEADINGS
            .iter()
            .copied()
            .chain(lhost::headings())
            .any(|h| lc.contains(h));
        if is_skipped_line(line) {
            continue;
        }
        let line = lhost::respell(line);
        let line = line.as_ref();
        let first_on_line = |s: usize| {
            line[..s]
                .trim_start()
                .trim_start_matches(['<', '"', '\''])
                .is_empty()
        };
        for (s, e, addr) in addresses_in(line) {
            if excluded.contains(&addr)
                || recipients.contains(&addr)
                || matches!(
                    local_part(&addr),
                    "mailer-daemon" | "mailerdaemon" | "mailer_daemon"
                )
                || !(is_recipient_mention(line, s, e) || (in_list && first_on_line(s)))
            {
                continue;
            }
            recipients.push(addr);
        }
        in_list |= heading;
    }
    let blocks = recipient_blocks(&whole, &recipients);
    recipients
        .into_iter()
        .zip(blocks)
        .map(|(recipient, block)| failure_from_text(recipient, &block, &whole))
        .collect()
}

/// Last resort for a report whose text names nobody: the one address the
/// returned original was sent to.
pub(crate) fn original_recipient(msg: &Message<'_>, texts: &[String]) -> Vec<Failure> {
    let excluded = excluded_addresses(msg);
    let original = original_headers(msg);
    let [to] = original.to.as_slice() else {
        return Vec::new();
    };
    if excluded.contains(to) {
        return Vec::new();
    }
    let whole = texts.join("\n");
    let block = recipient_blocks(&whole, std::slice::from_ref(to)).remove(0);
    vec![failure_from_text(to.clone(), &block, &whole)]
}

/// Wording of a notice that the MTA is still trying to deliver.
const DELAY_PHRASES: &[&str] = &[
    "will continue to try",
    "will keep trying",
    "will continue trying",
    "will be retried",
    "will retry",
    "will try again",
    "delivery attempts will continue",
    "still trying",
    "not yet been delivered",
    "has been delayed",
    "warning message only",
    "do not need to resend",
    "no need to resend",
    "continue to be retried",
    "will try to deliver",
    "will attempt",
    "no action is required",
];

/// Wording of a notice that the MTA has stopped trying.
const GIVEN_UP_PHRASES: &[&str] = &[
    "permanent error",
    "permanent failure",
    "permanent fatal",
    "failed permanently",
    "given up",
    "gave up",
    "not going to try again",
    "will not be retried",
];

/// True for a delay notice: it says the MTA will go on trying and nowhere
/// that it has given up.
pub(crate) fn is_delay_notice(whole: &str) -> bool {
    let lc = lower_unfolded(whole);
    DELAY_PHRASES.iter().any(|p| lc.contains(p)) && !GIVEN_UP_PHRASES.iter().any(|p| lc.contains(p))
}

/// For a report that names its failed recipients by local part only (AOL:
/// "Your mail to the following recipients could not be delivered ...:"
/// then a tab and `name`): each bare local part on an indented line of a
/// list headed by recipient wording, at the domain of the report's sender.
/// Tried last, when nothing else names anyone.
pub(crate) fn bare_local_parts(msg: &Message<'_>, texts: &[String]) -> Vec<Failure> {
    let Some(domain) = header_addresses(msg, "From")
        .first()
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
    else {
        return Vec::new();
    };
    let whole = texts.join("\n");
    let mut in_list = false;
    let mut recipients: Vec<String> = Vec::new();
    for line in whole.lines() {
        let lc = line.to_lowercase();
        if lc.contains("following recipient") {
            in_list = true;
            continue;
        }
        if !in_list || !line.starts_with([' ', '\t']) {
            continue;
        }
        let word = line.trim();
        if word.len() < 2
            || !word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
            || !word
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            continue;
        }
        let addr = format!("{}@{domain}", word.to_ascii_lowercase());
        if !recipients.contains(&addr) {
            recipients.push(addr);
        }
    }
    recipients
        .into_iter()
        .map(|r| failure_from_text(r, "", &whole))
        .collect()
}

/// Wording of a challenge/response system (Boxbe, Bluebottle, SpamArrest,
/// TMDA, a server that wants its sender confirmed): the message is held
/// until the sender proves itself, no recipient failed.
const CHALLENGE_PHRASES: &[&str] = &[
    "sender not pre-approved",
    "guest list",
    "requires confirmation",
    "confirm this mail server",
    "challenge/response",
    "challenge-response",
    "challenge response",
    "spamarrest",
    "spam arrest",
    "verify that you are a real person",
    "prove that you are a real person",
    "prove you are a human",
    "awaiting your verification",
    "pending your verification",
    "add yourself to my",
];

/// Whether the report is a challenge of a challenge/response system rather
/// than a delivery failure.
pub(crate) fn is_challenge(msg: &Message<'_>, texts: &[String], dsn: &[String]) -> bool {
    let mut all = msg.subject().unwrap_or("").to_lowercase();
    for t in texts.iter().chain(dsn) {
        all.push('\n');
        all.push_str(&t.to_lowercase());
    }
    let all = unfold(&all);
    CHALLENGE_PHRASES.iter().any(|p| all.contains(p))
}
