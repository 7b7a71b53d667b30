//! What the web pages read about a token and a list, as plain views; the
//! record of a form post that was ignored; and the step that makes a page's
//! action durable before the page answers.

use std::collections::HashMap;

use crate::address;
use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::{Ignored, PendingAction, Status, MAX_IGNORED, RECORD_VERSION};
use crate::subscription::{check_token, token_subscriber, TokenProblem};
use crate::token::Token;

/// What a confirmation token asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asks {
    Subscribe,
    Unsubscribe,
    /// An owner's approval of a confirmed person on a closed list.
    Approve,
    /// An owner's approval of the draft campaign they mailed to the list.
    Post,
    /// A member's confirmation of a delivery setting (`inte-mig`, `sammandrag`).
    Setting,
}

/// A confirmation that waits for its token, as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaiting {
    pub list: String,
    pub email: String,
    pub asks: Asks,
    /// The token was used already: its page says so instead of showing
    /// the button again.
    pub done: bool,
    /// The address is on the list now (confirmed, or waiting for an
    /// owner): a used subscription link may say so only then, not after
    /// the person declined it or left.
    pub member: bool,
}

/// The confirmation `token` stands for, checked as [`check_token`] does.
pub fn awaiting(ctx: &Context, token: &Token) -> anyhow::Result<Result<Awaiting, TokenProblem>> {
    let pending = match check_token(ctx, None, token)? {
        Ok(p) => p,
        Err(problem) => return Ok(Err(problem)),
    };
    let member = ctx
        .store
        .subscriber(&pending.list, &pending.email)?
        .is_some_and(|s| matches!(s.status, Status::Confirmed | Status::AwaitingApproval));
    Ok(Ok(pending).map(|p| Awaiting {
        list: p.list,
        email: p.email,
        asks: match p.action {
            PendingAction::Subscribe => Asks::Subscribe,
            PendingAction::Unsubscribe => Asks::Unsubscribe,
            PendingAction::Approve => Asks::Approve,
            PendingAction::Post => Asks::Post,
            PendingAction::Setting => Asks::Setting,
        },
        done: p.completed,
        member,
    }))
}

/// The list of the confirmation record `token` points at, whether or not
/// the token is genuine: enough to choose a page's language.
pub fn awaiting_list(ctx: &Context, token: &Token) -> anyhow::Result<Option<String>> {
    Ok(ctx.store.pending(token.id)?.map(|p| p.list))
}

/// The subscriber a newsletter token names, as the unsubscribe page shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub list: String,
    pub email: String,
    /// Already unsubscribed.
    pub gone: bool,
}

/// The subscriber `token` names, if the token is genuine ([`token_subscriber`]).
pub fn member(ctx: &Context, token: &Token) -> anyhow::Result<Option<Member>> {
    Ok(token_subscriber(ctx, None, token)?.map(|s| Member {
        gone: s.status == Status::Unsubscribed,
        list: s.list,
        email: s.email,
    }))
}

/// Every subscriber status by name, in a fixed order.
pub fn statuses() -> impl Iterator<Item = &'static str> {
    Status::ALL.into_iter().map(Status::as_str)
}

/// How many subscribers of `list` are in each status (by name); a status
/// nobody is in may be missing.
pub fn counts(ctx: &Context, list: &str) -> anyhow::Result<HashMap<&'static str, usize>> {
    Ok(ctx
        .store
        .counts(list)?
        .into_iter()
        .map(|(status, n)| (status.as_str(), n))
        .collect())
}

/// Records a subscribe form post that was not acted on (the honeypot was
/// filled), with `reason`, among the ignored messages (`utskick ignored`),
/// so a person whose browser filled the trap is not lost without a trace.
/// `email` is what was typed, as the sender; not yet durable ([`settle`]).
pub fn ignore_form_post(
    ctx: &Context,
    list: &List,
    email: &str,
    reason: &str,
) -> anyhow::Result<()> {
    let sender: String = address::header_safe(email).chars().take(200).collect();
    let now = ctx.now();
    ctx.store.write(|tx| {
        let id = tx.next_id()?;
        tx.record_ignored_within(
            &Ignored {
                v: RECORD_VERSION,
                id,
                at: now,
                list: list.id.clone(),
                address: "web form".to_string(),
                sender,
                subject: String::new(),
                message_id: String::new(),
                reason: reason.to_string(),
            },
            // Bots fill forms all day: their records keep to half the
            // log, and the ignored mail keeps the other half.
            MAX_IGNORED / 2,
        )?;
        Ok(())
    })
}

/// Makes what an action wrote durable, then wakes the mail worker for the
/// answers it queued: a page calls this before it answers.
pub async fn settle(ctx: &Context) -> anyhow::Result<()> {
    ctx.store.sync().await?;
    ctx.mail_ready.notify_one();
    Ok(())
}
