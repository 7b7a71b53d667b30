//! What mail to a list address does: subscribe, confirm, unsubscribe, help,
//! approval, and forwarding to the owners.
//!
//! Handlers change the store and queue their answers in one atomic write,
//! then sync; they never touch the network. The caller acknowledges (SMTP 250,
//! exit 0, HTTP 2xx) only after a handler returned Ok, so a crash never loses
//! a confirmation. Automated mail (bounces, auto-replies, list mail) is never
//! answered.

pub mod answer;
pub mod budget;
pub mod by_admin;
pub mod setting;
pub mod view;

use crate::mail::words::{command_word, first_own_line, strip_subject_prefixes, Word};
use crate::subscription::answer::{
    base_data, confirm_data, issue, purpose_of, queue_mail, queue_mail_as, queue_welcome, Dispatch,
    Handled, Request,
};
use crate::subscription::budget::{confirmation_budget, reply_budget, Budget};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mail_parser::Message;
use serde_json::json;

use crate::address;
use crate::compose::system::AutoSubmitted;
use crate::daemon::context::Context;
use crate::daemon::lists;
use crate::daemon::lists::{List, Subscription};
use crate::store::{CampaignStatus, Consent, Pending, PendingAction, Status, Subscriber, Tx};
use crate::token::{Purpose, Token};

/// A request to join: a pending record and a confirmation mail, or a note
/// that the address is already in. Asked again the same day, the same
/// confirmation goes again (at most `subscribe_confirmations_per_day` a
/// day for the mailbox, see `budget`).
pub fn subscribe(ctx: &Context, req: &Request<'_>) -> anyhow::Result<Handled> {
    let now = ctx.now();
    let email = address::normalize(req.email);
    ctx.store.write(|tx| {
        let existing = tx.subscriber(&req.list.id, &email)?;
        let template = match existing.as_ref().map(|s| s.status) {
            Some(Status::Confirmed) => "already-subscribed",
            Some(Status::AwaitingApproval) => "awaiting-approval",
            Some(Status::Disabled) => {
                // An admin disabled this address; a mail cannot undo that.
                return Ok(Handled::ignored("subscribe refused: disabled"));
            }
            _ => "confirm-subscribe",
        };
        let name = if req.name.is_empty() {
            existing
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default()
        } else {
            req.name.to_string()
        };
        if template != "confirm-subscribe" {
            // Not a confirmation: the general reply budget applies.
            if !reply_budget(ctx, tx, &email, now)? {
                return Ok(Handled::ignored("subscribe: reply cap reached"));
            }
            let data = base_data(ctx, req.list, &email, &name);
            queue_mail(
                ctx,
                tx,
                req.list,
                template,
                &email,
                &name,
                &data,
                None,
                AutoSubmitted::Replied,
                req.in_reply_to.clone(),
            )?;
            return Ok(Handled::done("subscribe: already on the list"));
        }
        if !confirmation_budget(ctx, tx, Budget::Subscribe, req.list, &email, now)? {
            return Ok(Handled::ignored("subscribe: confirmation cap reached"));
        }
        let token = confirmation_token(ctx, tx, req, &email, PendingAction::Subscribe, now)?;
        match existing {
            // A former subscriber keeps their record and status until they confirm.
            Some(s) if s.status != Status::Pending => {}
            Some(mut s) => {
                s.name = name.clone();
                s.updated_at = now;
                tx.put_subscriber(&s);
            }
            None => {
                let s = Subscriber {
                    attributes: req.attributes.clone(),
                    ..Subscriber::new(
                        tx.random_id()?,
                        &req.list.id,
                        &email,
                        &name,
                        Status::Pending,
                        now,
                    )
                };
                tx.put_subscriber(&s);
            }
        }
        let data = confirm_data(ctx, req.list, &email, &name, &token);
        let reply_to = lists::list_address(req.list, "confirm", Some(&token), &ctx.config.domain);
        queue_mail_as(
            ctx,
            tx,
            req.list,
            "confirm-subscribe",
            &email,
            &name,
            &data,
            Some(reply_to),
            AutoSubmitted::Replied,
            req.in_reply_to.clone(),
            Dispatch::Confirmation,
        )?;
        Ok(Handled::done("subscribe: confirmation sent"))
    })
}

/// A request to leave: a confirmation mail (asked again the same day, the
/// same one; at most `unsubscribe_confirmations_per_day` a day for the
/// mailbox, a budget of its own), or help if the address is not on the list.
pub fn request_unsubscribe(ctx: &Context, req: &Request<'_>) -> anyhow::Result<Handled> {
    let now = ctx.now();
    let email = address::normalize(req.email);
    ctx.store.write(|tx| {
        // Someone still pending is not subscribed: a confirmation to leave
        // would only add to what a forger can send a stranger (their
        // confirmation to join stays valid; ignoring it is enough).
        let member = tx.subscriber(&req.list.id, &email)?.filter(|s| {
            matches!(
                s.status,
                Status::Confirmed | Status::AwaitingApproval | Status::Bounced
            )
        });
        let Some(member) = member else {
            queue_help(ctx, tx, req, &email, now, Some("reason_not_subscribed"))?;
            return Ok(Handled::done("unsubscribe: not subscribed"));
        };
        if !confirmation_budget(ctx, tx, Budget::Unsubscribe, req.list, &email, now)? {
            return Ok(Handled::ignored("unsubscribe: confirmation cap reached"));
        }
        let token = confirmation_token(ctx, tx, req, &email, PendingAction::Unsubscribe, now)?;
        let data = confirm_data(ctx, req.list, &email, &member.name, &token);
        let reply_to = lists::list_address(req.list, "confirm", Some(&token), &ctx.config.domain);
        queue_mail_as(
            ctx,
            tx,
            req.list,
            "confirm-unsubscribe",
            &email,
            &member.name,
            &data,
            Some(reply_to),
            AutoSubmitted::Replied,
            req.in_reply_to.clone(),
            Dispatch::Confirmation,
        )?;
        Ok(Handled::done("unsubscribe: confirmation sent"))
    })
}

/// The token of the confirmation to send for `action`: today's open one for
/// the same list, purpose and address again (every mail the person got
/// keeps working, and asking again piles up no tokens), or a new one.
fn confirmation_token(
    ctx: &Context,
    tx: &mut Tx<'_>,
    req: &Request<'_>,
    email: &str,
    action: PendingAction,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let budget = match action {
        PendingAction::Unsubscribe => Budget::Unsubscribe,
        _ => Budget::Subscribe,
    };
    if let Some(id) = budget::todays_pending(tx, budget, req.list, email, now)? {
        let open = tx.pending(id)?.filter(|p| {
            !p.completed
                && p.action == action
                && p.list == req.list.id
                && p.email.to_lowercase() == email.to_lowercase()
                && u64::from(p.issued) + ctx.token_max_age() > u64::from(ctx.now_secs())
        });
        if let Some(p) = open {
            return Ok(ctx
                .secret
                .mint(purpose_of(action), &p.list, &p.email, p.id, p.issued));
        }
    }
    let (pending, token) = issue(ctx, tx, req, email, action)?;
    budget::remember_pending(tx, budget, req.list, email, pending.id, now);
    Ok(token)
}

/// Sends the help text, with an optional reason flag set.
pub fn help(ctx: &Context, req: &Request<'_>, reason: Option<&str>) -> anyhow::Result<Handled> {
    let now = ctx.now();
    let email = address::normalize(req.email);
    ctx.store.write(|tx| {
        queue_help(ctx, tx, req, &email, now, reason)?;
        Ok(Handled::done("help sent"))
    })
}

/// Queues the help text to `email`, with the `reason` flag set, within the
/// day's reply budget.
fn queue_help(
    ctx: &Context,
    tx: &mut Tx<'_>,
    req: &Request<'_>,
    email: &str,
    now: DateTime<Utc>,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    if !reply_budget(ctx, tx, email, now)? {
        return Ok(());
    }
    let mut data = base_data(ctx, req.list, email, req.name);
    if let Some(reason) = reason {
        data[reason] = json!(true);
    }
    queue_mail(
        ctx,
        tx,
        req.list,
        "help",
        email,
        req.name,
        &data,
        None,
        AutoSubmitted::Replied,
        req.in_reply_to.clone(),
    )
}

/// A reply to `L-confirm+TOKEN@D`.
pub(crate) fn confirm(
    ctx: &Context,
    list: &List,
    token: &str,
    req: &Request<'_>,
    declined: bool,
) -> anyhow::Result<Handled> {
    match Token::decode(token) {
        Some(t) => answer_confirmation(ctx, list, t, req, declined),
        None => help(ctx, req, Some("reason_unknown_token")),
    }
}

/// A reply to one of our confirmations, found by its token (the address
/// it came to, its Subject, or the thread it answers at `L-request@D`).
/// `declined`: the reply says no ([`says_no`]). "avsluta" in reply to a
/// confirmation to leave means yes; to a subscription still open it
/// closes it unused; to a subscription confirmed long ago it is what it
/// says, a request to leave (confirmed by mail as any other).
pub(crate) fn answer_confirmation(
    ctx: &Context,
    list: &List,
    token: Token,
    req: &Request<'_>,
    declined: bool,
) -> anyhow::Result<Handled> {
    if declined {
        match check_token(ctx, Some(list), &token)? {
            Ok(p) if p.action == PendingAction::Unsubscribe => {}
            Ok(p) if p.completed && p.action == PendingAction::Subscribe => {
                return request_unsubscribe(ctx, req);
            }
            _ => return decline(ctx, Some(list), &token),
        }
    }
    confirm_token(ctx, Some(list), token, req)
}

/// Is `token` a confirmation of `list` that still waits for its answer
/// (genuine, not expired, not used)?
pub(crate) fn awaits_answer(ctx: &Context, list: &List, token: &Token) -> anyhow::Result<bool> {
    Ok(matches!(check_token(ctx, Some(list), token)?, Ok(p) if !p.completed))
}

/// Does a reply to a confirmation say no? "Sluta! Jag har inte bett om
/// det här" in reply to a forged subscription must not subscribe anyone.
pub(crate) fn says_no(msg: &Message<'_>) -> bool {
    let subject = msg.subject().unwrap_or_default();
    let subject: String = strip_subject_prefixes(subject)
        .split_whitespace()
        .filter(|w| Token::decode(w.trim_matches(|c: char| !c.is_ascii_alphanumeric())).is_none())
        .collect::<Vec<_>>()
        .join(" ");
    let first_word = |text: &str| {
        text.split(|c: char| c.is_whitespace() || c == ',' || c == '!' || c == '.')
            .find(|w| !w.is_empty())
            .and_then(command_word)
    };
    let body = msg.body_text(0).unwrap_or_default();
    command_word(&subject) == Some(Word::Unsubscribe)
        || first_own_line(&body).and_then(first_word) == Some(Word::Unsubscribe)
}

/// Closes a confirmation without acting on it.
fn decline(ctx: &Context, list: Option<&List>, token: &Token) -> anyhow::Result<Handled> {
    ctx.store.write(|tx| {
        if let Ok(mut p) = check_token(ctx, list, token)? {
            p.completed = true;
            tx.put_pending(&p);
        }
        Ok(())
    })?;
    Ok(Handled::ignored("confirmation declined"))
}

/// What a confirmation did, for the web pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    Subscribed,
    AwaitingApproval,
    Approved,
    Unsubscribed,
    /// An owner's post, approved, is queued.
    Queued,
    /// A member's delivery setting is changed, as they confirmed.
    SettingChanged,
    /// The same token again: nothing more to do.
    AlreadyDone,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
    /// An approval token came from someone who is not an owner.
    NotOwner,
}

/// Looks a token up and checks it against its record.
pub fn check_token(
    ctx: &Context,
    list: Option<&List>,
    token: &Token,
) -> anyhow::Result<Result<Pending, TokenProblem>> {
    let Some(pending) = ctx.store.pending(token.id)? else {
        return Ok(Err(TokenProblem::Unknown));
    };
    if list.is_some_and(|l| l.id != pending.list)
        || !ctx.secret.verify(
            token,
            purpose_of(pending.action),
            &pending.list,
            &pending.email,
        )
    {
        return Ok(Err(TokenProblem::Unknown));
    }
    if token.expired(u64::from(ctx.now_secs()), ctx.token_max_age()) {
        return Ok(Err(TokenProblem::Expired));
    }
    Ok(Ok(pending))
}

pub(crate) fn confirm_token(
    ctx: &Context,
    list: Option<&List>,
    token: Token,
    req: &Request<'_>,
) -> anyhow::Result<Handled> {
    let confirmer = address::normalize(req.email);
    match apply_token(ctx, list, &token, &confirmer, req.method, &req.evidence)? {
        Ok(Confirmed::AlreadyDone) => Ok(Handled::ignored("confirm: already done")),
        Ok(_) => Ok(Handled::done("confirmed")),
        Err(TokenProblem::NotOwner) => {
            tracing::warn!("approval reply from a non-owner ignored");
            Ok(Handled::ignored("approval from non-owner ignored"))
        }
        Err(_) => help(ctx, req, Some("reason_unknown_token")),
    }
}

/// Carries out what a valid token stands for. `confirmer` is who presented
/// it (an approval must come from an owner); `evidence` the Message-ID of
/// the reply or the IP of the web request.
pub fn apply_token(
    ctx: &Context,
    list: Option<&List>,
    token: &Token,
    confirmer: &str,
    method: &str,
    evidence: &str,
) -> anyhow::Result<Result<Confirmed, TokenProblem>> {
    let now = ctx.now();
    ctx.store.write(|tx| {
        // Checked inside the write lock, so two replies cannot both apply it.
        let pending = match check_token(ctx, list, token)? {
            Ok(p) => p,
            Err(problem) => return Ok(Err(problem)),
        };
        if pending.completed {
            return Ok(Ok(Confirmed::AlreadyDone));
        }
        let Some(list) = ctx.lists.get(&pending.list) else {
            return Ok(Err(TokenProblem::Unknown));
        };
        // By mail, an approval must come from an owner. On the web the
        // token alone is the proof: only the owners were sent it.
        // (A newsletter post's approval as much as a sign-up's.)
        if matches!(pending.action, PendingAction::Approve | PendingAction::Post)
            && method == "mail"
            && !list.is_owner(confirmer)
        {
            return Ok(Err(TokenProblem::NotOwner));
        }
        let mut done = pending.clone();
        done.completed = true;
        tx.put_pending(&done);
        let existing = tx.subscriber(&list.id, &pending.email)?;
        let outcome = match pending.action {
            PendingAction::Subscribe => {
                let mut s = existing.unwrap_or_else(|| {
                    Subscriber::new(
                        0,
                        &list.id,
                        &pending.email,
                        &pending.name,
                        Status::Pending,
                        now,
                    )
                });
                if s.id == 0 {
                    s.id = tx.random_id()?;
                }
                if matches!(s.status, Status::Confirmed | Status::AwaitingApproval) {
                    return Ok(Ok(Confirmed::AlreadyDone));
                }
                // An admin's block stands; and a token older than the
                // person's last departure does not bring them back.
                let left_after = s
                    .unsubscribed_at
                    .is_some_and(|t| t.timestamp() >= i64::from(pending.issued));
                if s.status == Status::Disabled || left_after {
                    return Ok(Err(TokenProblem::Expired));
                }
                if !pending.name.is_empty() {
                    s.name = pending.name.clone();
                }
                s.attributes.extend(pending.attributes.clone());
                s.consent = Some(Consent {
                    method: pending.method.clone(),
                    at: now,
                    evidence: format!(
                        "request {} at {}",
                        pending.evidence,
                        issued_at(pending.issued)
                    ),
                    confirmed_by: Some(format!("{method} {evidence}")),
                });
                s.unsubscribed_at = None;
                s.bounces = 0;
                s.updated_at = now;
                // Their own new consent lifts an earlier "forget me".
                tx.unsuppress(&ctx.secret.suppression_hash(&s.email));
                let data = base_data(ctx, list, &s.email, &s.name);
                // An owner who invited the person ("accept and add" on a
                // held post) approved them already.
                let owner_invited = pending.method == setting::OWNER_INVITED;
                if list.subscription == Subscription::Closed && !owner_invited {
                    s.status = Status::AwaitingApproval;
                    tx.put_subscriber(&s);
                    queue_mail(
                        ctx,
                        tx,
                        list,
                        "awaiting-approval",
                        &s.email,
                        &s.name,
                        &data,
                        None,
                        AutoSubmitted::Replied,
                        None,
                    )?;
                    let approver = Request {
                        list,
                        email: &s.email,
                        name: &s.name,
                        method: "owner",
                        evidence: pending.evidence.clone(),
                        in_reply_to: None,
                        attributes: BTreeMap::new(),
                    };
                    let (_, token) = issue(ctx, tx, &approver, &s.email, PendingAction::Approve)?;
                    let odata = confirm_data(ctx, list, &s.email, &s.name, &token);
                    let reply_to =
                        lists::list_address(list, "confirm", Some(&token), &ctx.config.domain);
                    for owner in &list.owners {
                        queue_mail(
                            ctx,
                            tx,
                            list,
                            "approve-request",
                            owner,
                            "",
                            &odata,
                            Some(reply_to.clone()),
                            AutoSubmitted::Generated,
                            None,
                        )?;
                    }
                    Confirmed::AwaitingApproval
                } else {
                    s.status = Status::Confirmed;
                    s.subscribed_at = Some(now);
                    tx.put_subscriber(&s);
                    queue_mail(
                        ctx,
                        tx,
                        list,
                        "welcome",
                        &s.email,
                        &s.name,
                        &data,
                        None,
                        AutoSubmitted::Replied,
                        None,
                    )?;
                    Confirmed::Subscribed
                }
            }
            PendingAction::Approve => {
                let Some(mut s) = existing.filter(|s| s.status == Status::AwaitingApproval) else {
                    return Ok(Ok(Confirmed::AlreadyDone));
                };
                s.status = Status::Confirmed;
                s.subscribed_at = Some(now);
                s.updated_at = now;
                if let Some(c) = s.consent.as_mut() {
                    c.confirmed_by = Some(format!(
                        "{}; approved by {confirmer} ({method} {evidence})",
                        c.confirmed_by.clone().unwrap_or_default()
                    ));
                }
                tx.put_subscriber(&s);
                queue_welcome(ctx, tx, list, &s)?;
                Confirmed::Approved
            }
            PendingAction::Unsubscribe => {
                let Some(s) = existing.filter(|s| s.status != Status::Unsubscribed) else {
                    return Ok(Ok(Confirmed::AlreadyDone));
                };
                leave(ctx, tx, list, s, now)?;
                Confirmed::Unsubscribed
            }
            PendingAction::Post => {
                let draft = pending
                    .campaign
                    .and_then(|id| tx.campaign(id).ok().flatten());
                let Some(mut c) = draft.filter(|c| c.status == CampaignStatus::Draft) else {
                    return Ok(Ok(Confirmed::AlreadyDone));
                };
                c.status = CampaignStatus::Scheduled;
                c.scheduled_at = now;
                tx.put_campaign(&c);
                tracing::info!(campaign = c.id, list = %list.id, "owner approved a mailed post");
                Confirmed::Queued
            }
            PendingAction::Setting => {
                let Some(s) = existing.filter(|s| s.status == Status::Confirmed) else {
                    return Ok(Ok(Confirmed::AlreadyDone));
                };
                let setting = pending
                    .attributes
                    .get("setting")
                    .and_then(|n| crate::mail::words::Setting::from_name(n));
                let Some(setting) = setting else {
                    return Ok(Err(TokenProblem::Unknown));
                };
                setting::apply(ctx, tx, list, s, setting, now)?;
                Confirmed::SettingChanged
            }
        };
        Ok(Ok(outcome))
    })
}

fn issued_at(secs: u32) -> String {
    DateTime::from_timestamp(i64::from(secs), 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// Marks `s` unsubscribed and queues the goodbye mail.
pub(crate) fn leave(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    mut s: Subscriber,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    s.status = Status::Unsubscribed;
    s.unsubscribed_at = Some(now);
    s.updated_at = now;
    tx.put_subscriber(&s);
    let data = base_data(ctx, list, &s.email, &s.name);
    queue_mail(
        ctx,
        tx,
        list,
        "goodbye",
        &s.email,
        &s.name,
        &data,
        None,
        AutoSubmitted::Replied,
        None,
    )
}

/// Mail to `L-unsubscribe+TOKEN@D` (the mailto of List-Unsubscribe): leaves at once.
pub(crate) fn unsubscribe_by_token(
    ctx: &Context,
    list: &List,
    token: &str,
    req: &Request<'_>,
) -> anyhow::Result<Handled> {
    let left = match Token::decode(token) {
        Some(token) => leave_by_token(ctx, Some(list), &token)?,
        None => None,
    };
    match left {
        Some(Left::Now) => Ok(Handled::done("unsubscribed by token")),
        Some(Left::Already) => Ok(Handled::ignored("unsubscribe: already gone")),
        None => help(ctx, req, Some("reason_unknown_token")),
    }
}

/// What a newsletter token's unsubscribe did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    Now,
    Already,
}

/// The subscriber a newsletter token names, if the token is genuine.
pub fn token_subscriber(
    ctx: &Context,
    list: Option<&List>,
    token: &Token,
) -> anyhow::Result<Option<Subscriber>> {
    let Some(s) = ctx.store.subscriber_by_id(token.id)? else {
        return Ok(None);
    };
    let genuine = list.is_none_or(|l| l.id == s.list)
        && ctx
            .secret
            .verify(token, Purpose::Subscriber, &s.list, &s.email);
    Ok(genuine.then_some(s))
}

/// Unsubscribes the person a newsletter token names (the mailto and the
/// one-click link of `List-Unsubscribe`), with a goodbye mail. None: not a
/// genuine token. Idempotent. Not synced: the caller syncs before answering.
pub fn leave_by_token(
    ctx: &Context,
    list: Option<&List>,
    token: &Token,
) -> anyhow::Result<Option<Left>> {
    let now = ctx.now();
    ctx.store.write(|tx| {
        let Some(s) = tx.subscriber_by_id(token.id)? else {
            return Ok(None);
        };
        if list.is_some_and(|l| l.id != s.list)
            || !ctx
                .secret
                .verify(token, Purpose::Subscriber, &s.list, &s.email)
        {
            return Ok(None);
        }
        if s.status == Status::Unsubscribed {
            return Ok(Some(Left::Already));
        }
        let Some(list) = ctx.lists.get(&s.list) else {
            return Ok(None);
        };
        leave(ctx, tx, list, s, now)?;
        // The token's 32-bit field is the campaign whose copy carried it.
        tx.count_outcome(u64::from(token.issued), crate::store::Led::Unsubscribe)?;
        Ok(Some(Left::Now))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_table() {
        let cases = [
            ("subscribe", Some(Word::Subscribe)),
            ("Prenumerera", Some(Word::Subscribe)),
            ("JOIN", Some(Word::Subscribe)),
            ("avsluta", Some(Word::Unsubscribe)),
            ("Avsluta!", Some(Word::Unsubscribe)),
            ("  AVPRENUMERERA ", Some(Word::Unsubscribe)),
            ("avregistrera", Some(Word::Unsubscribe)),
            ("sluta", Some(Word::Unsubscribe)),
            ("Stop.", Some(Word::Unsubscribe)),
            ("leave", Some(Word::Unsubscribe)),
            ("unsubscribe", Some(Word::Unsubscribe)),
            ("hjälp", Some(Word::Help)),
            ("HJÄLP", Some(Word::Help)),
            ("help?", Some(Word::Help)),
            ("stop sending the handbook", None),
            ("Tack för handboken", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(command_word(text), want, "{text:?}");
        }
    }

    #[test]
    fn subject_prefixes() {
        assert_eq!(strip_subject_prefixes("Re: SV: Sv:  avsluta"), "avsluta");
        assert_eq!(strip_subject_prefixes("AW: Fwd: hjälp"), "hjälp");
        assert_eq!(strip_subject_prefixes("Resultat"), "Resultat");
    }

    #[test]
    fn first_own_line_skips_quotes_and_blanks() {
        assert_eq!(
            first_own_line("\n> avsluta\n\n  prenumerera\nmer"),
            Some("prenumerera")
        );
        assert_eq!(first_own_line("> only quote"), None);
    }
}
