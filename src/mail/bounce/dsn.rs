//! RFC 3464 delivery status notifications: the `message/delivery-status`
//! part, or its fields where a broken report puts them elsewhere.

use crate::mail::bounce::common::{has_type, part_text, Failure};
use crate::mail::bounce::reason;
use crate::mail::bounce_words::{
    basic_code_class, code_class, enhanced_code, first_address, keyword, one_line, wording,
};
use mail_parser::{Message, PartType};

/// Header blocks separated by blank lines: (lower-case field name, unfolded
/// value) pairs.
pub(crate) fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
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
pub(crate) fn typed_address(value: &str) -> Option<String> {
    let v = value.split_once(';').map_or(value, |(_, a)| a);
    first_address(v)
}

/// The texts of every DSN part; when there is none, text parts that carry
/// `Final-Recipient:` lines (from that line on).
pub(crate) fn dsn_texts(msg: &Message<'_>) -> Vec<String> {
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
    if let Some(block) = header_fields(msg) {
        out.push(block);
        return out;
    }
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

/// The failed recipients of the `message/delivery-status` parts, and
/// whether some recipient block reported success.
pub(crate) fn dsn_failures(msg: &Message<'_>) -> (Vec<Failure>, bool) {
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
            // Success: the actions of RFC 3464 §2.3.3 (and sendmail's
            // `deliverable` of an address check), or a 2.x.x Status whatever
            // the action (RFC 3463: class 2 is success).
            let success_status = field("status").is_some_and(|v| v.trim_start().starts_with("2."));
            if success_status
                || matches!(
                    action.as_deref(),
                    Some("delivered" | "relayed" | "expanded" | "deliverable")
                )
            {
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
            // The action decides first (RFC 3464 §2.3.3): `failed` means the
            // reporting MTA "has abandoned any attempts to deliver", so the
            // report is final even over a 4.x.x Status (a queue lifetime
            // that ran out, a full mailbox retried for days: why is the
            // reason's business); `delayed` is a warning, the MTA is still
            // trying. Without an action, the reporting MTA's class wins over
            // the remote reply it quotes (Status 4.0.0 for a "550 IP
            // blocked").
            let permanent = match (dsn_class, diag_class, action.as_deref()) {
                (_, _, Some("delayed")) => false,
                (_, _, Some("failed" | "expired")) => true,
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
            let mut reason = reason::classify(status.as_deref(), diag);
            // A final action over a temporary status: the MTA stopped
            // retrying (`Action: failed` with `Status: 4.4.1`), so the
            // retries ran out, whatever the last attempt met.
            if dsn_class == Some(false)
                && matches!(action.as_deref(), Some("failed" | "expired"))
                && matches!(reason.as_deref(), None | Some("networkerror"))
            {
                reason = Some("expired".into());
            }
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
                    reason: reason.clone(),
                });
            }
        }
    }
    (out, successes)
}

/// DSN per-recipient fields sent as top-level header fields of a plain
/// mail (some MTAs write no `message/delivery-status` part but put
/// `Final-Recipient:`, `Action:`, `Status:` in the header): one block.
fn header_fields(msg: &Message<'_>) -> Option<String> {
    const FIELDS: &[&str] = &[
        "final-recipient",
        "original-recipient",
        "action",
        "status",
        "diagnostic-code",
    ];
    let mut block = String::new();
    let (mut named, mut said) = (false, false);
    for (name, value) in msg.headers_raw() {
        let name = name.trim().to_ascii_lowercase();
        if !FIELDS.contains(&name.as_str()) {
            continue;
        }
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match name.as_str() {
            "final-recipient" | "original-recipient" => named = true,
            // mbox's `Status: RO` is no DSN status: only an RFC 3463 code
            // or an RFC 3464 action counts.
            "status" if enhanced_code(&value).is_some_and(|c| value.starts_with(&c)) => said = true,
            "status" if value.starts_with("2.") => said = true,
            "action"
                if matches!(
                    keyword(&value).to_ascii_lowercase().as_str(),
                    "failed" | "delayed" | "delivered" | "relayed" | "expanded"
                ) =>
            {
                said = true
            }
            "status" | "action" => continue,
            _ => {}
        }
        block.push_str(&name);
        block.push_str(": ");
        block.push_str(&value);
        block.push('\n');
    }
    // A recipient field alone is a delivery trace some MTAs add to ordinary
    // mail: a report also needs a DSN Action or Status.
    (named && said).then_some(block)
}
