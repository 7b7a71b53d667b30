//! A reply to a newsletter: its own text decides. "avsluta" unsubscribes;
//! anything else reaches the owners, From the actor, Reply-To the actor.

use crate::address;
use crate::daemon::context::Context;
use crate::daemon::lists;
use crate::daemon::lists::List;
use crate::feedback::subscriber_of;
use crate::mail::reply_text;
use crate::mail::words::{command_word, first_own_line, strip_subject_prefixes, Word};
use crate::store::{Status, Subscriber, Tx, RECORD_VERSION};
use crate::subscription::answer::Handled;
use crate::subscription::leave;
use chrono::{DateTime, Utc};
use mail_parser::Message;

/// Does the reply's own text, or its Subject, say "leave"?
pub(crate) fn wants_out(msg: &Message<'_>, own: &str) -> bool {
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
    let from = crate::mail::message::sender(msg, None)
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
                    tx.count_outcome(u64::from(t.issued), crate::store::Led::Unsubscribe)?;
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

pub(crate) use crate::address::encode_header;

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
pub(crate) fn forward_reply(
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
    let from = crate::mail::message::sender(msg, None);
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
            crate::subscription::answer::loop_marker(list, &ctx.config.domain),
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
        if let Some((_, campaign)) = subscriber {
            tx.count_outcome(u64::from(campaign), crate::store::Led::Reply)?;
        }
        Ok(())
    })
}

pub(crate) fn enqueue_raw(
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
