//! The vocabulary of bounce reports: addresses found in free text, and
//! whether a status code or a diagnostic says permanent or temporary. Pure.

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

pub(crate) fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-=!#$&'*/?^`{|}~".contains(c)
}

pub(crate) fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

/// Every `local@domain.tld` in `s`, lower case, with its byte range.
pub(crate) fn addresses_in(s: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for (at, _) in s.match_indices('@') {
        let start = s[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_local_char(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let end = s[at + 1..]
            .char_indices()
            .find(|(_, c)| !is_domain_char(*c))
            .map_or(s.len(), |(i, _)| at + 1 + i);
        let local = s[start..at].trim_start_matches(['.', '\'', '=']);
        let start = at - local.len();
        let domain = s[at + 1..end].trim_end_matches(['.', '-']);
        let end = at + 1 + domain.len();
        if local.is_empty()
            || !domain.contains('.')
            || domain.starts_with(['.', '-'])
            || domain.contains("..")
        {
            continue;
        }
        out.push((start, end, format!("{local}@{domain}").to_lowercase()));
    }
    out
}

pub(crate) fn first_address(s: &str) -> Option<String> {
    addresses_in(s).into_iter().next().map(|(_, _, a)| a)
}

pub(crate) fn local_part(addr: &str) -> &str {
    addr.rsplit_once('@').map_or(addr, |(l, _)| l)
}

pub(crate) fn keyword(value: &str) -> &str {
    value
        .split([';', '(', ' ', '\t'])
        .next()
        .unwrap_or("")
        .trim()
}

// ---------------------------------------------------------------------------
// Status codes and wording
// ---------------------------------------------------------------------------

/// The first enhanced status code (`4.2.2`, `5.1.1`) in `s`, not part of a
/// longer dotted number such as an IP address.
pub(crate) fn enhanced_code(s: &str) -> Option<String> {
    let b = s.as_bytes();
    for i in 0..b.len() {
        if !(b[i] == b'4' || b[i] == b'5') || b.get(i + 1) != Some(&b'.') {
            continue;
        }
        if i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.') {
            continue;
        }
        let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        let j = i + 2;
        let n1 = digits(j);
        if n1 == 0 || n1 > 3 || b.get(j + n1) != Some(&b'.') {
            continue;
        }
        let k = j + n1 + 1;
        let n2 = digits(k);
        if n2 == 0 || n2 > 3 {
            continue;
        }
        let end = k + n2;
        if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
            continue;
        }
        return Some(s[i..end].to_string());
    }
    None
}

/// Some(true) for a 5.x.x code, Some(false) for 4.x.x.
pub(crate) fn code_class(code: &str) -> Option<bool> {
    match code.as_bytes().first() {
        Some(b'5') => Some(true),
        Some(b'4') => Some(false),
        _ => None,
    }
}

/// The class of the first SMTP reply code (`550`, `452-`) in `s`.
pub(crate) fn basic_code_class(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    for i in 0..b.len().saturating_sub(2) {
        if !(b[i] == b'4' || b[i] == b'5')
            || !(b'0'..=b'5').contains(&b[i + 1])
            || !b[i + 2].is_ascii_digit()
        {
            continue;
        }
        let before_ok =
            i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'(' | b'#' | b':' | b'\n' | b'[');
        let after_ok = b
            .get(i + 3)
            .is_none_or(|c| matches!(c, b' ' | b'-' | b'\r' | b'\n' | b')'));
        if before_ok && after_ok {
            return Some(b[i] == b'5');
        }
    }
    None
}

/// Explicit statements about the kind of failure.
pub(crate) const EXPLICIT_PERMANENT: &[&str] = &[
    "permanent error",
    "permanent failure",
    "permanently",
    "permanent fatal",
    "fatal error",
    "i've given up",
    "not going to try again",
    "failed permanently",
];

pub(crate) const EXPLICIT_TEMPORARY: &[&str] = &[
    "temporary failure",
    "temporary error",
    "temporarily",
    "warning message only",
    "will retry",
    "will keep trying",
    "will continue trying",
    "will be retried",
    "try again later",
    "has been delayed",
    "delivery delayed",
    "not yet been delivered",
    "retry timeout exceeded",
    "deferred",
];

/// Reasons whose nature is clear.
pub(crate) const REASON_PERMANENT: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such recipient",
    "no such mailbox",
    "no mailbox",
    "mailbox unavailable",
    "mailbox not found",
    "does not exist",
    "doesn't exist",
    "not found",
    "unknown recipient",
    "invalid recipient",
    "recipient rejected",
    "address rejected",
    "not recognized",
    "not listed",
    "unknown address",
    "host unknown",
    "unknown host",
    "no such domain",
    "domain not found",
    "unrouteable",
    "account disabled",
    "account has been disabled",
    "rejected",
];

pub(crate) const REASON_TEMPORARY: &[&str] = &[
    "mailbox full",
    "mailbox is full",
    "over quota",
    "quota exceeded",
    "exceeded storage",
    "insufficient storage",
    "try again",
    "delayed",
    "timeout",
    "timed out",
];

/// Some(true) permanent, Some(false) temporary, None when the wording does not tell.
pub(crate) fn wording(text: &str) -> Option<bool> {
    let lc = lower_unfolded(text);
    let has = |list: &[&str]| list.iter().any(|p| lc.contains(p));
    match (has(EXPLICIT_PERMANENT), has(EXPLICIT_TEMPORARY)) {
        (true, false) => return Some(true),
        (false, true) => return Some(false),
        _ => {}
    }
    match (has(REASON_PERMANENT), has(REASON_TEMPORARY)) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Some(true) or Some(false) when the text states the kind of failure
/// outright ("permanent error", "I've given up"; "will retry", "temporary
/// failure"); None when it does not, or says both.
pub(crate) fn explicit(text: &str) -> Option<bool> {
    let lc = lower_unfolded(text);
    let has = |list: &[&str]| list.iter().any(|p| lc.contains(p));
    match (has(EXPLICIT_PERMANENT), has(EXPLICIT_TEMPORARY)) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Status code and permanence of a failure read from a report's text:
/// `block` is about one recipient, `whole` the whole report.
///
/// 1. A status code about the recipient (enhanced `5.1.1`, else an SMTP
///    reply `550`): its class.
/// 2. What the notice says of itself ("This is a permanent error; I've
///    given up" against "will retry", "temporary failure").
/// 3. A status code elsewhere in the report.
/// 4. Otherwise the report is a final one: permanent. The reason
///    (a full mailbox, a retry timeout) is no verdict on permanence: a
///    notice that delivery failed is final unless it says it is a warning.
pub(crate) fn judge(block: &str, whole: &str) -> (bool, Option<String>) {
    let status = enhanced_code(block);
    if let Some(class) = status.as_deref().and_then(code_class) {
        return (class, status);
    }
    if let Some(class) = basic_code_class(block) {
        return (class, None);
    }
    if let Some(p) = explicit(block).or_else(|| explicit(whole)) {
        return (p, enhanced_code(whole));
    }
    let status = enhanced_code(whole);
    if let Some(class) = status.as_deref().and_then(code_class) {
        return (class, status);
    }
    if let Some(class) = basic_code_class(whole) {
        return (class, None);
    }
    (true, None)
}

/// `text` in lower case with each run of white space one space: phrases
/// wrap across lines ("permission to\n post"). One pass, one allocation.
pub(crate) fn lower_unfolded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

pub(crate) fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line, at most 200 characters.
pub(crate) fn one_line(s: &str) -> String {
    let s = unfold(s);
    match s.char_indices().nth(200) {
        Some((i, _)) => s[..i].to_string(),
        None => s,
    }
}
