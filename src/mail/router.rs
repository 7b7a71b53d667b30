//! From a recipient address to an action: the one entry for every message
//! that reaches a list (SMTP, LMTP, `inject`). It reads the address, drops
//! loops and automated mail, hands the message to the handler that owns it,
//! records what was ignored, and syncs the store before it returns, so the
//! caller may acknowledge.

use crate::address;
use crate::compose::system::confirmation_token_in;
use crate::daemon::context::{Context, Metrics};
use crate::daemon::lists;
use crate::daemon::lists::Action;
use crate::daemon::lists::List;
use crate::daemon::lists::Posting;
use crate::feedback::discussion::{held_post, moderate, set_member};
use crate::feedback::forward::forward_to_owners;
use crate::mail::automated::{self, Automated};
use crate::mail::message::{message_id, parse_message, sender};
use crate::mail::words::{
    command_word, first_own_line, member_setting, strip_subject_prefixes, Word,
};
use crate::store::RECORD_VERSION;
use crate::subscription::answer::{loop_marker, Handled, Request};
use crate::subscription::budget::question_budget;
use crate::subscription::{
    answer_confirmation, awaits_answer, confirm, help, request_unsubscribe, says_no, subscribe,
    unsubscribe_by_token,
};
use crate::token::Token;
use mail_parser::Message;
use std::collections::BTreeMap;

/// Why inbound mail was not accepted. Each maps to one SMTP reply and one
/// sysexits code, in `inbound` and `main`.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the message could not be parsed")]
    Unparseable,
    #[error("no such list address")]
    UnknownRecipient,
    /// The store or the disk failed: the sender should try again later.
    #[error("temporary failure: {0}")]
    Temporary(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Refusal {
        Refusal::Temporary(e.into())
    }
}

/// Handles one message received for `rcpt`. `reverse_path` is the envelope
/// sender (Some("") for `<>`), None when unknown (pipe delivery).
pub async fn handle_inbound(
    ctx: &Context,
    rcpt: &str,
    reverse_path: Option<&str>,
    raw: &[u8],
) -> Result<Handled, Refusal> {
    let (list, action) = lists::parse_recipient(rcpt, &ctx.config.domain, &ctx.lists)
        .ok_or(Refusal::UnknownRecipient)?;
    let msg = parse_message(raw).ok_or(Refusal::Unparseable)?;
    Metrics::inc(&ctx.metrics.messages_received);
    let handled = route(ctx, list, &action, &msg, reverse_path, raw)?;
    if handled.ignored {
        record_ignored(ctx, list, &action, &msg, reverse_path, &handled.reason())?;
    }
    ctx.store.sync().await?;
    ctx.mail_ready.notify_one();
    ctx.campaign_ready.notify_one();
    Ok(handled)
}

/// Which address a message came to, for the ignored-message record.
pub(crate) fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Post => "post",
        Action::Subscribe => "subscribe",
        Action::Unsubscribe => "unsubscribe",
        Action::Request => "request",
        Action::Owner => "owner",
        Action::Confirm(_) => "confirm",
        Action::UnsubscribeToken(_) => "unsubscribe-token",
        Action::Reply(_) => "reply",
        Action::Bounces(_) => "bounces",
    }
}

pub(crate) fn record_ignored(
    ctx: &Context,
    list: &List,
    action: &Action,
    msg: &Message<'_>,
    reverse_path: Option<&str>,
    reason: &str,
) -> anyhow::Result<()> {
    let sender = sender(msg, reverse_path)
        .map(|(e, _)| e)
        .or_else(|| {
            reverse_path.map(|r| {
                if r.is_empty() {
                    "<>".to_string()
                } else {
                    r.to_string()
                }
            })
        })
        .unwrap_or_default();
    let subject: String = address::header_safe(msg.subject().unwrap_or_default())
        .chars()
        .take(200)
        .collect();
    let now = ctx.now();
    ctx.store.write(|tx| {
        let id = tx.next_id()?;
        tx.record_ignored(&crate::store::Ignored {
            v: RECORD_VERSION,
            id,
            at: now,
            list: list.id.clone(),
            address: action_name(action).to_string(),
            sender,
            subject,
            message_id: message_id(msg).unwrap_or_default(),
            reason: reason.to_string(),
        })?;
        Ok(())
    })
}

/// Decides what a message does. Changes are written, not yet synced.
pub(crate) fn route(
    ctx: &Context,
    list: &List,
    action: &Action,
    msg: &Message<'_>,
    reverse_path: Option<&str>,
    raw: &[u8],
) -> Result<Handled, Refusal> {
    let marker = loop_marker(list, &ctx.config.domain);
    if msg.header_values("X-Loop").any(|v| {
        v.as_text()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(&marker))
    }) {
        tracing::warn!(list = %list.id, "our own forwarded mail came back: dropped");
        return Ok(Handled::ignored("loop: our own forwarded mail came back"));
    }
    // Bounces first: many carry Auto-Submitted.
    if let Action::Bounces(token) = action {
        return Ok(crate::feedback::bounces::bounce(
            ctx,
            list,
            token.as_deref(),
            msg,
            reverse_path,
        )?);
    }
    if let Some(kind) = automated::automated(msg, reverse_path) {
        Metrics::inc(&ctx.metrics.automated_ignored);
        tracing::info!(list = %list.id, ?kind, "automated mail ignored");
        return Ok(Handled::ignored(match kind {
            Automated::Bounce => "a bounce to a command address",
            Automated::AutoReply => "an auto-reply",
            Automated::ListOrBulk => "list or bulk mail",
        }));
    }
    match action {
        Action::Reply(token) => {
            return Ok(crate::feedback::replies::reply(ctx, list, token, msg, raw)?)
        }
        Action::Post => {
            let from = sender(msg, reverse_path)
                .map(|(e, _)| e)
                .unwrap_or_default();
            // A discussion list: a member's post (an owner's too, when the
            // owner is a member) goes to the members; an owner who is not
            // a member still posts newsletters for approval.
            if list.discussion.posting != Posting::Owners {
                let owner_only = list.owner(&from).is_some()
                    && !crate::feedback::discussion::is_member(ctx, list, &from)?;
                if !owner_only {
                    return Ok(crate::feedback::discussion::post(
                        ctx,
                        list,
                        msg,
                        reverse_path,
                        raw,
                    )?);
                }
            }
            // The preview goes to the owner's address as configured,
            // whatever case the From header used.
            if let Some(owner) = list.owner(&from) {
                return Ok(crate::feedback::posts::owner_post(ctx, list, owner, msg)?);
            }
            return Ok(forward_to_owners(ctx, list, reverse_path, raw)?);
        }
        Action::Owner => return Ok(forward_to_owners(ctx, list, reverse_path, raw)?),
        _ => {}
    }
    let Some((email, name)) = sender(msg, reverse_path) else {
        return Ok(Handled::ignored("no sender to answer"));
    };
    if !address::is_valid(&email) || address::is_system_sender(&email) {
        return Ok(Handled::ignored("sender not answerable"));
    }
    let request = Request {
        list,
        email: &email,
        name: &name,
        method: "mail",
        evidence: message_id(msg).unwrap_or_else(|| "mail without Message-ID".into()),
        in_reply_to: message_id(msg),
        attributes: BTreeMap::new(),
    };
    // An owner's approval must be a deliberate act, not an auto-responder.
    let refused = |token: &Token| {
        crate::feedback::posts::refused_approval(ctx, Some(list), token, msg, reverse_path)
    };
    let handled = match action {
        Action::Subscribe => subscribe(ctx, &request)?,
        Action::Unsubscribe => request_unsubscribe(ctx, &request)?,
        Action::Confirm(token) => {
            let declined = says_no(msg);
            // A held discussion post: the owner's reply decides.
            if let Some(t) = Token::decode(token) {
                if let Some((pending, draft)) = held_post(ctx, list, &t)? {
                    return Ok(moderate(ctx, list, pending, draft, &t, msg, reverse_path)?);
                }
            }
            match Token::decode(token) {
                Some(t) if !declined => match refused(&t)? {
                    Some(reason) => {
                        tracing::info!(list = %list.id, reason, "approval refused");
                        Handled::ignored(reason)
                    }
                    None => confirm(ctx, list, token, &request, declined)?,
                },
                _ => confirm(ctx, list, token, &request, declined)?,
            }
        }
        Action::UnsubscribeToken(token) => unsubscribe_by_token(ctx, list, token, &request)?,
        Action::Request => {
            let subject = msg.subject().unwrap_or_default();
            let body = msg.body_text(0).unwrap_or_default();
            let word = command_word(strip_subject_prefixes(subject))
                .or_else(|| first_own_line(&body).and_then(command_word));
            let in_subject = Token::find_in(subject);
            let from_thread = in_subject.is_none();
            let token = in_subject.or_else(|| answered_token(msg, &ctx.config.domain));
            // A command in the thread of a confirmation that was used (or
            // ran out) long ago is a new command, not that old answer; so
            // is a question there (a reply months later to the old mail):
            // it reaches the owners below instead of "already done".
            let token = match token {
                Some(t) if (word.is_some() || from_thread) && !awaits_answer(ctx, list, &t)? => {
                    None
                }
                t => t,
            };
            if let Some((pending, draft)) = match &token {
                Some(t) => held_post(ctx, list, t)?,
                None => None,
            } {
                let t = token.as_ref().expect("a held post has a token");
                moderate(ctx, list, pending, draft, t, msg, reverse_path)?
            } else if let Some(setting) = (list.discussion.posting != Posting::Owners)
                .then(|| {
                    member_setting(strip_subject_prefixes(subject))
                        .or_else(|| first_own_line(&body).and_then(member_setting))
                })
                .flatten()
            {
                match set_member(ctx, list, &email, setting, message_id(msg))? {
                    Some(handled) => handled,
                    None => help(ctx, &request, None)?,
                }
            } else if let Some(token) = token {
                match refused(&token)? {
                    Some(reason) => {
                        tracing::info!(list = %list.id, reason, "approval refused");
                        Handled::ignored(reason)
                    }
                    // "Sluta!" in the thread says no, as at the Reply-To.
                    None => answer_confirmation(ctx, list, token, &request, says_no(msg))?,
                }
            } else {
                match word {
                    Some(Word::Subscribe) => subscribe(ctx, &request)?,
                    Some(Word::Unsubscribe) => request_unsubscribe(ctx, &request)?,
                    Some(Word::Help) => help(ctx, &request, None)?,
                    // A question, not a command: a person wrote it, so a
                    // person should read it (as at `L-owner@D`).
                    // A flood from one mailbox reaches them only so far
                    // (`limits.questions_per_day`); the rest is recorded.
                    None => {
                        let now = ctx.now();
                        let allowed = ctx
                            .store
                            .write(|tx| question_budget(ctx, tx, list, &email, now))?;
                        if allowed {
                            tracing::info!(list = %list.id, "no command at the request address: forwarded to the owners");
                            let mut handled = forward_to_owners(ctx, list, reverse_path, raw)?;
                            if !handled.ignored {
                                handled.what = "no command: forwarded to the owners";
                            }
                            handled
                        } else {
                            Handled::ignored(
                                "no command: this sender's questions for today were forwarded already",
                            )
                        }
                    }
                }
            }
        }
        Action::Owner | Action::Post | Action::Reply(_) | Action::Bounces(_) => {
            unreachable!("routed above")
        }
    };
    Ok(handled)
}

/// The token of one of our confirmation mails that `msg` answers: the
/// Message-ID of a mail that asks for a confirmation ends in its token
/// (`utskick.L.N.R.TOKEN@D`), and a reply names that id in In-Reply-To or
/// References. Only ids on our own domain count; the token must still
/// verify against its record like one from a Subject or an address.
fn answered_token(msg: &Message<'_>, domain: &str) -> Option<Token> {
    let ids = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        match value {
            mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
            mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
            _ => Vec::new(),
        }
    };
    let mut all = ids(msg.in_reply_to());
    all.extend(ids(msg.references()));
    all.iter()
        .rev()
        .find_map(|id| Token::decode(&confirmation_token_in(id, domain)?))
}
