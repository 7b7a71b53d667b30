//! The inbound side of the dialogue: replies to newsletters, bounces and
//! complaints, and the owners' own posts to the list address.
//!
//! Like `commands`, these handlers change the store and queue their mail in
//! one write and never touch the network; the caller syncs before it
//! acknowledges. `reply` and `bounce` do the reading; this module decides.

use chrono::{DateTime, Utc};
use mail_parser::{Message, MimeHeaders};
use serde_json::json;

use crate::address;
use crate::campaign::{self, NewCampaign};
use crate::compose::newsletter::{Attachment, Content, Kind};
use crate::compose::system::AutoSubmitted;
use crate::daemon::context::Context;
use crate::daemon::lists;
use crate::daemon::lists::List;
use crate::mail::bounce;
use crate::mail::reply_text;
use crate::store::{Pending, PendingAction, Status, Subscriber, Tx, RECORD_VERSION};
use crate::subscription::{
    self, base_data, command_word, first_own_line, leave, queue_mail, strip_subject_prefixes,
    Handled, Word,
};
use crate::token::{Purpose, Token};

/// What a permanent bounce adds to a subscriber's score.
const PERMANENT_WEIGHT: f64 = 1.0;
/// What a temporary failure (mailbox full, greylisting, a delay) adds.
const TEMPORARY_WEIGHT: f64 = 0.2;
/// The score halves in this many days without new bounces, so old trouble
/// fades and only a run of failures reaches the threshold.
const BOUNCE_HALF_LIFE_DAYS: f64 = 14.0;
/// Lines of the post shown in the preview mail to the owner.
const PREVIEW_LINES: usize = 40;

/// The subscriber a newsletter token names on `list`, if the token is genuine.
fn subscriber_of(
    ctx: &Context,
    list: &List,
    token: &str,
) -> anyhow::Result<Option<(Subscriber, Token)>> {
    let Some(t) = Token::decode(token) else {
        return Ok(None);
    };
    Ok(subscription::token_subscriber(ctx, Some(list), &t)?.map(|s| (s, t)))
}

/// Adds one bounce to `s`'s decaying score; at the threshold a confirmed
/// subscriber becomes `bounced` and gets no more mail.
pub fn add_bounce(s: &mut Subscriber, permanent: bool, threshold: f64, now: DateTime<Utc>) {
    let decayed = match s.last_bounce_at {
        Some(last) => {
            let days = (now - last).num_seconds().max(0) as f64 / 86_400.0;
            s.bounce_score * 0.5f64.powf(days / BOUNCE_HALF_LIFE_DAYS)
        }
        None => s.bounce_score,
    };
    s.bounce_score = decayed
        + if permanent {
            PERMANENT_WEIGHT
        } else {
            TEMPORARY_WEIGHT
        };
    s.bounces += 1;
    s.last_bounce_at = Some(now);
    s.updated_at = now;
    if s.bounce_score >= threshold && s.status == Status::Confirmed {
        s.status = Status::Bounced;
    }
}

/// Mail to `L-bounces+TOKEN@D` or `L-bounces@D`: a delivery report or a
/// complaint. Never answered.
pub fn bounce(
    ctx: &Context,
    list: &List,
    token: Option<&str>,
    msg: &Message<'_>,
) -> anyhow::Result<Handled> {
    let now = ctx.now();
    let named = match token {
        Some(t) => subscriber_of(ctx, list, t)?,
        None => None,
    };
    // A complaint (ARF) means "I do not want this": the person leaves at
    // once, and gets no goodbye mail that could draw another complaint.
    if crate::mail::automated::is_feedback_report(msg) {
        let who = named
            .as_ref()
            .map(|(s, _)| s.email.clone())
            .or_else(|| bounce::complaint(msg));
        let Some(email) = who else {
            return Ok(Handled::ignored("a complaint that names no subscriber"));
        };
        let left = ctx.store.write(|tx| {
            let Some(mut s) = tx.subscriber(&list.id, &email)? else {
                return Ok(false);
            };
            if s.status == Status::Unsubscribed {
                return Ok(false);
            }
            s.status = Status::Unsubscribed;
            s.unsubscribed_at = Some(now);
            s.updated_at = now;
            tx.put_subscriber(&s);
            Ok(true)
        })?;
        tracing::info!(list = %list.id, "complaint: subscriber removed");
        return Ok(if left {
            Handled::done("complaint: unsubscribed")
        } else {
            Handled::ignored("a complaint about someone not subscribed")
        });
    }
    let failures = bounce::parse(msg);
    let threshold = ctx.config.limits.bounce_threshold;
    let applied = ctx.store.write(|tx| {
        let mut applied = 0;
        if let Some((s, _)) = &named {
            // VERP names the subscriber; the report says how bad it is.
            // A report we cannot read counts as permanent: the relay did
            // send it back.
            let permanent = failures
                .iter()
                .find(|f| f.recipient.eq_ignore_ascii_case(&s.email))
                .or(failures.first())
                .is_none_or(|f| f.permanent);
            if let Some(mut s) = tx.subscriber(&list.id, &s.email)? {
                add_bounce(&mut s, permanent, threshold, now);
                tx.put_subscriber(&s);
                applied += 1;
            }
        } else {
            for f in &failures {
                if let Some(mut s) = tx.subscriber(&list.id, &f.recipient)? {
                    add_bounce(&mut s, f.permanent, threshold, now);
                    tx.put_subscriber(&s);
                    applied += 1;
                }
            }
        }
        Ok(applied)
    })?;
    if applied == 0 {
        return Ok(Handled::ignored(
            "a bounce that names no subscriber of this list",
        ));
    }
    tracing::info!(list = %list.id, subscribers = applied, "bounce recorded");
    Ok(Handled::done("bounce recorded"))
}

/// Does the reply's own text, or its Subject, say "leave"?
fn wants_out(msg: &Message<'_>, own: &str) -> bool {
    let subject = strip_subject_prefixes(msg.subject().unwrap_or_default());
    let first_word_line = first_own_line(own).is_some_and(|line| {
        command_word(line) == Some(Word::Unsubscribe)
            || line
                .split(|c: char| c.is_whitespace() || matches!(c, ',' | '!' | '.'))
                .find(|w| !w.is_empty())
                .and_then(command_word)
                == Some(Word::Unsubscribe)
                && line.split_whitespace().count() <= 4
    });
    command_word(subject) == Some(Word::Unsubscribe) || first_word_line
}

/// A reply to a newsletter (`L-reply+TOKEN@D`). Its own text, not the
/// quote, decides: an unsubscribe word leaves the list (with a goodbye that
/// says how to come back); anything else reaches the owners.
///
/// A reply whose From is not the subscriber the token names (a forwarded
/// newsletter, or another address of theirs) never unsubscribes anyone: it
/// goes to the owners, marked, so a person cannot remove someone else by
/// replying to a copy that was passed on to them.
pub fn reply(
    ctx: &Context,
    list: &List,
    token: &str,
    msg: &Message<'_>,
    raw: &[u8],
) -> anyhow::Result<Handled> {
    let Some((s, t)) = subscriber_of(ctx, list, token)? else {
        // An unknown token: still a person writing to us.
        forward_reply(ctx, list, msg, raw, None, "unknown reply token")?;
        return Ok(Handled::done("reply with an unknown token forwarded"));
    };
    let from = subscription::sender(msg, None)
        .map(|(e, _)| e)
        .unwrap_or_default();
    let own = reply_text::own_text(msg);
    let is_subscriber = address::same(&from, &s.email) || from.eq_ignore_ascii_case(&s.email);
    if wants_out(msg, &own) {
        if is_subscriber {
            if s.status == Status::Unsubscribed {
                return Ok(Handled::ignored(
                    "unsubscribe reply from someone already gone",
                ));
            }
            let now = ctx.now();
            ctx.store.write(|tx| {
                if let Some(fresh) = tx.subscriber(&list.id, &s.email)? {
                    leave(ctx, tx, list, fresh, now)?;
                }
                Ok(())
            })?;
            return Ok(Handled::done("unsubscribed by reply"));
        }
        forward_reply(
            ctx,
            list,
            msg,
            raw,
            Some((&s, t.issued)),
            "unsubscribe word from someone who is not the subscriber",
        )?;
        return Ok(Handled::done("reply from a non-subscriber forwarded"));
    }
    let note = if is_subscriber {
        "reply"
    } else {
        "reply from another address than the subscriber's"
    };
    forward_reply(ctx, list, msg, raw, Some((&s, t.issued)), note)?;
    Ok(Handled::done("reply forwarded to the owners"))
}

/// RFC 2047 encoded-words for a header value that is not plain ASCII.
fn encode_header(value: &str) -> String {
    let value = address::header_safe(value);
    if value.is_ascii() {
        return value;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        // 45 bytes of UTF-8 make 60 of base64: lines stay under 78.
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", data_encoding::BASE64.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// `raw` with the header fields named in `drop` removed and `add` put first.
pub fn rewrite_headers(raw: &[u8], drop: &[&str], add: &[(&str, String)]) -> Vec<u8> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p + 2, p + 4))
        .or_else(|| {
            raw.windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| (p + 1, p + 2))
        });
    let (head, body) = match split {
        Some((h, b)) => (&raw[..h], &raw[b..]),
        None => (raw, &b""[..]),
    };
    let mut out = Vec::with_capacity(raw.len() + 256);
    for (name, value) in add {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let mut keep = true;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
            keep = !drop.iter().any(|d| d.eq_ignore_ascii_case(&name));
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    if !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Sends a reply on to the owners: From the actor (unchanged), the Subject
/// marked with the list, Reply-To the actor, so the leader's answer goes to
/// the person and not back to the list.
fn forward_reply(
    ctx: &Context,
    list: &List,
    msg: &Message<'_>,
    raw: &[u8],
    subscriber: Option<(&Subscriber, u32)>,
    note: &str,
) -> anyhow::Result<()> {
    if list.owners.is_empty() {
        return Ok(());
    }
    let from = subscription::sender(msg, None);
    let subject = msg.subject().unwrap_or_default();
    let tag = format!("[{}]", list.name);
    let marked = if subject.contains(&tag) {
        subject.to_string()
    } else {
        format!("{tag} {subject}")
    };
    let mut add = vec![
        (
            "X-Loop",
            subscription::loop_marker(list, &ctx.config.domain),
        ),
        ("Subject", encode_header(&marked)),
        ("X-Utskick-Note", encode_header(note)),
    ];
    if let Some((email, name)) = &from {
        let reply_to = if name.is_empty() {
            format!("<{email}>")
        } else {
            format!("\"{}\" <{email}>", name.replace('"', "'"))
        };
        add.push(("Reply-To", encode_header(&reply_to)));
    }
    if let Some((s, campaign)) = subscriber {
        add.push(("X-Utskick-Subscriber", address::header_safe(&s.email)));
        add.push(("X-Utskick-Campaign", campaign.to_string()));
    }
    let bytes = rewrite_headers(
        raw,
        &[
            "subject",
            "reply-to",
            "dkim-signature",
            "return-path",
            "delivered-to",
            "x-loop",
            "x-utskick-note",
            "x-utskick-subscriber",
            "x-utskick-campaign",
        ],
        &add,
    );
    let now = ctx.now();
    ctx.store.write(|tx| {
        enqueue_raw(ctx, tx, list, list.owners.clone(), bytes, now)?;
        Ok(())
    })
}

fn enqueue_raw(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    to: Vec<String>,
    raw: Vec<u8>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let id = tx.next_id()?;
    tx.enqueue_mail(&crate::store::OutMail {
        v: RECORD_VERSION,
        id,
        reverse_path: lists::list_address(list, "bounces", None, &ctx.config.domain),
        forward_path: to,
        raw,
        attempts: 0,
        next_attempt: 0,
        created_at: now,
        last_error: None,
    });
    Ok(())
}

/// Markdown-safe text: the post's text becomes the newsletter body as
/// paragraphs, with nothing that Markdown or Handlebars would act on
/// except what the owner clearly wrote as fields (`{{name}}`).
fn as_markdown(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim_end();
        // A leading '#', '>', '-', '*', '+' or "1." would change the block.
        let needs_escape = line.starts_with(['#', '>', '-', '*', '+', '|'])
            || line
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if needs_escape {
            out.push('\\');
        }
        out.push_str(&line.replace('<', "&lt;"));
        // Keep the owner's line breaks.
        out.push_str(if line.is_empty() { "\n" } else { "  \n" });
    }
    out
}

/// An owner's mail to `L@D`: held as a draft campaign, and the owner gets a
/// preview with a token. Only the reply from the owner's real mailbox (the
/// round trip) queues it: a forged From gets nowhere.
pub fn owner_post(
    ctx: &Context,
    list: &List,
    owner: &str,
    msg: &Message<'_>,
) -> anyhow::Result<Handled> {
    let subject = address::header_safe(msg.subject().unwrap_or_default());
    let subject = strip_subject_prefixes(&subject).to_string();
    let text = match msg.body_text(0) {
        Some(t) if !msg.text_body.is_empty() => t.to_string(),
        _ => msg
            .body_html(0)
            .map(|h| reply_text::html_to_text(&h))
            .unwrap_or_default(),
    };
    let mut attachments = Vec::new();
    let mut total = 0usize;
    for part in msg.attachments() {
        let data = part.contents().to_vec();
        total += data.len();
        let filename = part
            .attachment_name()
            .map(address::header_safe)
            .unwrap_or_else(|| "bilaga".to_string());
        let content_type = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream")))
            .unwrap_or_else(|| "application/octet-stream".into());
        attachments.push(Attachment {
            filename,
            content_type,
            data,
        });
    }
    let content = Content {
        kind: Kind::Newsletter,
        source: "mail".into(),
        subject: if subject.is_empty() {
            list.name.clone()
        } else {
            subject.clone()
        },
        preheader: String::new(),
        markdown: as_markdown(&text),
        title: String::new(),
        link: None,
        attachments,
    };
    let problem = if total > ctx.config.limits.max_attachment_bytes {
        Some(format!(
            "the attachments are {} kB, more than the {} kB allowed; put big files on the web and link to them",
            total / 1024,
            ctx.config.limits.max_attachment_bytes / 1024
        ))
    } else {
        crate::compose::newsletter::Prepared::new(&content, list, &ctx.config.templates_dir)
            .err()
            .map(|e| e.to_string())
    };
    let recipients = campaign::count_recipients(ctx, &list.id, &[])?;
    let names: Vec<String> = content
        .attachments
        .iter()
        .map(|a| format!("{} ({} kB)", a.filename, a.data.len().div_ceil(1024)))
        .collect();
    let preview: String = text
        .lines()
        .take(PREVIEW_LINES)
        .collect::<Vec<_>>()
        .join("\n");
    // One mail for both outcomes: the preview with its token, or the problem.
    let answer = |tx: &mut Tx<'_>, token: Option<&str>, problem: &str| {
        let mut data = base_data(ctx, list, owner, "");
        data["post_subject"] = json!(content.subject);
        data["problem"] = json!(problem);
        data["recipients"] = json!(recipients);
        data["attachments"] = json!(names);
        data["preview"] = json!(if token.is_some() {
            preview.as_str()
        } else {
            ""
        });
        data["token"] = json!(token.unwrap_or_default());
        let reply_to =
            token.map(|t| lists::list_address(list, "confirm", Some(t), &ctx.config.domain));
        data["confirm_address"] = json!(reply_to.clone().unwrap_or_default());
        data["confirm_url"] = json!(token
            .map(|t| format!("{}/confirm/{t}", ctx.config.base_url()))
            .unwrap_or_default());
        queue_mail(
            ctx,
            tx,
            list,
            "post-preview",
            owner,
            "",
            &data,
            reply_to,
            AutoSubmitted::Replied,
            subscription::message_id(msg),
        )
    };
    if let Some(problem) = problem {
        ctx.store.write(|tx| answer(tx, None, &problem))?;
        return Ok(Handled::done("owner post refused: it has a problem"));
    }
    let draft = campaign::create(
        ctx,
        NewCampaign {
            list: list.id.clone(),
            content: content.clone(),
            filters: vec![],
            at: None,
            draft: true,
        },
    )?;
    ctx.store.write(|tx| {
        let pending = Pending {
            v: RECORD_VERSION,
            id: tx.random_id()?,
            list: list.id.clone(),
            email: address::normalize(owner),
            name: String::new(),
            action: PendingAction::Post,
            issued: ctx.now_secs(),
            method: "mail".into(),
            evidence: subscription::message_id(msg).unwrap_or_default(),
            attributes: Default::default(),
            completed: false,
            campaign: Some(draft.id),
        };
        let token = ctx.secret.mint(
            Purpose::Post,
            &pending.list,
            &pending.email,
            pending.id,
            pending.issued,
        );
        tx.put_pending(&pending);
        answer(tx, Some(&token), "")
    })?;
    Ok(Handled::done("owner post held for approval"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounce_score_decays_and_only_a_run_reaches_the_threshold() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut s = Subscriber::new(1, "lf", "a@b.se", "", Status::Confirmed, t0);
        add_bounce(&mut s, true, 3.0, t0);
        add_bounce(&mut s, true, 3.0, t0 + chrono::Duration::days(1));
        assert_eq!(s.status, Status::Confirmed);
        // Temporary failures add little.
        for d in 2..6 {
            add_bounce(&mut s, false, 3.0, t0 + chrono::Duration::days(d));
        }
        assert_eq!(s.status, Status::Confirmed, "score {}", s.bounce_score);
        add_bounce(&mut s, true, 3.0, t0 + chrono::Duration::days(6));
        assert_eq!(s.status, Status::Bounced, "score {}", s.bounce_score);
        assert_eq!(s.bounces, 7);

        // Two permanent bounces months apart never add up.
        let mut s = Subscriber::new(2, "lf", "c@b.se", "", Status::Confirmed, t0);
        for m in 0..6 {
            add_bounce(&mut s, true, 3.0, t0 + chrono::Duration::days(90 * m));
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
    fn post_text_cannot_inject_markup() {
        let md = as_markdown("# not a heading\n<script>alert(1)</script>\n1. not a list");
        assert!(md.starts_with("\\# not"), "{md}");
        assert!(md.contains("&lt;script>"), "{md}");
        assert!(md.contains("\\1. not"), "{md}");
    }
}
