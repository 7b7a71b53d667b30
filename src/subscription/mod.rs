//! What mail to a list address does: subscribe, confirm, unsubscribe, help,
//! approval, and forwarding to the owners.
//!
//! Handlers change the store and queue their answers in one atomic write,
//! then sync; they never touch the network. The caller acknowledges (SMTP 250,
//! exit 0, HTTP 2xx) only after a handler returned Ok, so a crash never loses
//! a confirmation. Automated mail (bounces, auto-replies, list mail) is never
//! answered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mail_parser::{Message, MessageParser};
use serde_json::{json, Value};

use crate::address;
use crate::compose::system::{self, AutoSubmitted};
use crate::daemon::context::{Context, Metrics};
use crate::daemon::lists;
use crate::daemon::lists::Action;
use crate::daemon::lists::{List, Subscription};
use crate::mail::automated::{self, Automated};
use crate::store::{
    CampaignStatus, Consent, OutMail, Pending, PendingAction, Status, Subscriber, Tx,
    RECORD_VERSION,
};
use crate::token::{Purpose, Token};

/// Words that subscribe, in Subject or the first line (spec: any case).
pub const SUBSCRIBE_WORDS: &[&str] = &["subscribe", "prenumerera", "join"];
/// Words that unsubscribe.
pub const UNSUBSCRIBE_WORDS: &[&str] = &[
    "unsubscribe",
    "avsluta",
    "avprenumerera",
    "avregistrera",
    "sluta",
    "stop",
    "leave",
];
/// Words that ask for help.
pub const HELP_WORDS: &[&str] = &["help", "hjälp"];

/// A command word found in a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    Subscribe,
    Unsubscribe,
    Help,
}

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

/// What happened to an accepted message, for the log; `ignored` when it
/// was neither acted on nor forwarded (recorded for `utskick ignored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub what: &'static str,
    pub ignored: bool,
}

impl Handled {
    pub fn done(what: &'static str) -> Handled {
        Handled {
            what,
            ignored: false,
        }
    }

    pub fn ignored(what: &'static str) -> Handled {
        Handled {
            what,
            ignored: true,
        }
    }
}

/// Strips reply and forward prefixes: "Re: SV: Sv: AW: Fwd: VS:".
pub fn strip_subject_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_lowercase();
        let stripped = [
            "re:", "sv:", "aw:", "vs:", "fwd:", "fw:", "vb:", "antw:", "ang:",
        ]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| s[p.len()..].trim_start());
        match stripped {
            Some(rest) => s = rest,
            None => return s,
        }
    }
}

/// Reads one command word: the whole trimmed text (less trailing
/// punctuation) must be the word, so "Stop sending me the handbook" is not one.
pub fn command_word(text: &str) -> Option<Word> {
    let t = text
        .trim()
        .trim_end_matches(['.', '!', '?'])
        .trim()
        .to_lowercase();
    let is = |words: &[&str]| words.contains(&t.as_str());
    if is(SUBSCRIBE_WORDS) {
        Some(Word::Subscribe)
    } else if is(UNSUBSCRIBE_WORDS) {
        Some(Word::Unsubscribe)
    } else if is(HELP_WORDS) {
        Some(Word::Help)
    } else {
        None
    }
}

/// The first line of the body that is neither empty nor quoted.
pub fn first_own_line(body: &str) -> Option<&str> {
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('>'))
}

/// The sender: From's first address, else the envelope sender.
pub(crate) fn sender<'m>(
    msg: &'m Message<'m>,
    reverse_path: Option<&'m str>,
) -> Option<(String, String)> {
    if let Some(addr) = msg.from().and_then(|f| f.first()) {
        if let Some(email) = addr.address() {
            let name = addr.name().map(clip_name).unwrap_or_default();
            return Some((address::normalize(email), name));
        }
    }
    reverse_path
        .filter(|r| !r.is_empty())
        .map(|r| (address::normalize(r), String::new()))
}

/// Longest display name kept (characters): enough for any real name.
const MAX_NAME_CHARS: usize = 200;
/// Longest Message-ID kept as evidence.
const MAX_MESSAGE_ID_CHARS: usize = 250;

/// A display name as stored: header-safe and of sane length.
pub fn clip_name(name: &str) -> String {
    address::header_safe(name)
        .chars()
        .take(MAX_NAME_CHARS)
        .collect()
}

pub(crate) fn message_id(msg: &Message<'_>) -> Option<String> {
    msg.message_id().map(|id| {
        let id: String = address::header_safe(id)
            .chars()
            .take(MAX_MESSAGE_ID_CHARS)
            .collect();
        format!("<{id}>")
    })
}

/// Our own loop marker on mail we forward; mail that carries it is ours
/// coming back and is dropped.
pub fn loop_marker(list: &List, domain: &str) -> String {
    lists::list_address(list, "", None, domain)
}

/// Parses `raw`; None unless it starts with a well-formed header field
/// (mail-parser is lenient and takes any bytes before a colon as a name).
pub fn parse_message(raw: &[u8]) -> Option<Message<'_>> {
    let msg = MessageParser::default().parse(raw)?;
    let well_formed =
        |name: &str| !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    match msg.headers().first() {
        Some(first) if well_formed(first.name()) => Some(msg),
        _ => None,
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
        record_ignored(ctx, list, &action, &msg, reverse_path, handled.what)?;
    }
    ctx.store.sync().await?;
    ctx.mail_ready.notify_one();
    ctx.campaign_ready.notify_one();
    Ok(handled)
}

/// Which address a message came to, for the ignored-message record.
fn action_name(action: &Action) -> &'static str {
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

fn record_ignored(
    ctx: &Context,
    list: &List,
    action: &Action,
    msg: &Message<'_>,
    reverse_path: Option<&str>,
    reason: &'static str,
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
        })
    })
}

/// Decides what a message does. Changes are written, not yet synced.
fn route(
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
        return Ok(crate::feedback::bounce(ctx, list, token.as_deref(), msg)?);
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
        Action::Reply(token) => return Ok(crate::feedback::reply(ctx, list, token, msg, raw)?),
        Action::Post => {
            let from = sender(msg, reverse_path)
                .map(|(e, _)| e)
                .unwrap_or_default();
            if list.is_owner(&from) {
                return Ok(crate::feedback::owner_post(ctx, list, &from, msg)?);
            }
            return forward_to_owners(ctx, list, reverse_path, raw);
        }
        Action::Owner => return forward_to_owners(ctx, list, reverse_path, raw),
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
    let handled = match action {
        Action::Subscribe => subscribe(ctx, &request)?,
        Action::Unsubscribe => request_unsubscribe(ctx, &request)?,
        Action::Confirm(token) => confirm(ctx, list, token, &request, says_no(msg))?,
        Action::UnsubscribeToken(token) => unsubscribe_by_token(ctx, list, token, &request)?,
        Action::Request => {
            let subject = msg.subject().unwrap_or_default();
            if let Some(token) = Token::find_in(subject) {
                confirm_token(ctx, Some(list), token, &request)?
            } else {
                let body = msg.body_text(0).unwrap_or_default();
                let word = command_word(strip_subject_prefixes(subject))
                    .or_else(|| first_own_line(&body).and_then(command_word));
                match word {
                    Some(Word::Subscribe) => subscribe(ctx, &request)?,
                    Some(Word::Unsubscribe) => request_unsubscribe(ctx, &request)?,
                    Some(Word::Help) => help(ctx, &request, None)?,
                    None => help(ctx, &request, Some("reason_unknown_command"))?,
                }
            }
        }
        Action::Owner | Action::Post | Action::Reply(_) | Action::Bounces(_) => {
            unreachable!("routed above")
        }
    };
    Ok(handled)
}

/// Who asks, and how; the evidence becomes the consent record.
pub struct Request<'a> {
    pub list: &'a List,
    pub email: &'a str,
    pub name: &'a str,
    /// `mail`, `web` or `admin`.
    pub method: &'static str,
    /// Message-ID or IP.
    pub evidence: String,
    pub in_reply_to: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

pub(crate) fn base_data(ctx: &Context, list: &List, email: &str, name: &str) -> Value {
    let d = &ctx.config.domain;
    json!({
        "list": {
            "id": list.id,
            "name": list.name,
            "description": list.description,
            "address": lists::list_address(list, "", None, d),
        },
        "email": email,
        "name": name,
        "subscribe_address": lists::list_address(list, "subscribe", None, d),
        "unsubscribe_address": lists::list_address(list, "unsubscribe", None, d),
        "request_address": lists::list_address(list, "request", None, d),
        "owner_address": lists::list_address(list, "owner", None, d),
        "list_url": format!("{}/lists/{}", ctx.config.base_url(), list.id),
        "expires_days": ctx.config.limits.token_days,
        "reason_unknown_token": false,
        "reason_not_subscribed": false,
        "reason_unknown_command": false,
    })
}

/// Renders template `name` and queues it in `tx`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn queue_mail(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    name: &str,
    to_email: &str,
    to_name: &str,
    data: &Value,
    reply_to: Option<String>,
    auto: AutoSubmitted,
    in_reply_to: Option<String>,
) -> anyhow::Result<()> {
    if to_email.parse::<lettre::Address>().is_err() {
        // Valid to us but not to the mail library (an IDNA domain it cannot
        // encode, say): no answer is possible, and retrying will not help.
        tracing::info!(
            template = name,
            "recipient address cannot be mailed; no answer sent"
        );
        return Ok(());
    }
    let rendered = ctx.templates.render(list.language, &list.id, name, data)?;
    let id = tx.next_id()?;
    let env = system::Envelope {
        list,
        domain: &ctx.config.domain,
        to_email,
        to_name,
        reply_to,
        auto,
        in_reply_to,
        dkim: ctx.dkim.as_ref(),
    };
    let (_, raw) = system::system_mail(&env, &rendered, id)?;
    tx.enqueue_mail(&OutMail {
        v: RECORD_VERSION,
        id,
        reverse_path: lists::list_address(list, "bounces", None, &ctx.config.domain),
        forward_path: vec![to_email.to_string()],
        raw,
        attempts: 0,
        next_attempt: 0,
        created_at: ctx.now(),
        last_error: None,
    });
    Ok(())
}

/// Issues a pending confirmation and its token.
fn issue(
    ctx: &Context,
    tx: &mut Tx<'_>,
    req: &Request<'_>,
    email: &str,
    action: PendingAction,
) -> anyhow::Result<(Pending, String)> {
    let pending = Pending {
        v: RECORD_VERSION,
        id: tx.random_id()?,
        list: req.list.id.clone(),
        email: email.to_string(),
        name: req.name.to_string(),
        action,
        campaign: None,
        issued: ctx.now_secs(),
        method: req.method.to_string(),
        evidence: req.evidence.clone(),
        attributes: req.attributes.clone(),
        completed: false,
    };
    let purpose = purpose_of(action);
    let token = ctx.secret.mint(
        purpose,
        &pending.list,
        &pending.email,
        pending.id,
        pending.issued,
    );
    tx.put_pending(&pending);
    Ok((pending, token))
}

fn purpose_of(action: PendingAction) -> Purpose {
    match action {
        PendingAction::Subscribe => Purpose::ConfirmSubscribe,
        PendingAction::Unsubscribe => Purpose::ConfirmUnsubscribe,
        PendingAction::Approve => Purpose::Approve,
        PendingAction::Post => Purpose::Post,
    }
}

fn confirm_data(ctx: &Context, list: &List, email: &str, name: &str, token: &str) -> Value {
    let mut data = base_data(ctx, list, email, name);
    data["token"] = json!(token);
    data["confirm_url"] = json!(format!("{}/confirm/{token}", ctx.config.base_url()));
    data["confirm_address"] = json!(lists::list_address(
        list,
        "confirm",
        Some(token),
        &ctx.config.domain
    ));
    data
}

fn confirmation_budget(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let key = format!("confirm\0{}\0{}", list.id, email.to_lowercase());
    let ok = tx.take_daily(&key, ctx.config.limits.confirmations_per_day, now)?;
    if !ok {
        tracing::info!(list = %list.id, "confirmation cap reached; no mail sent");
    }
    Ok(ok)
}

fn reply_budget(
    ctx: &Context,
    tx: &mut Tx<'_>,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let ok = tx.take_daily(
        &format!("reply\0{}", email.to_lowercase()),
        ctx.config.limits.replies_per_day,
        now,
    )?;
    if !ok {
        tracing::info!("reply cap reached; no mail sent");
    }
    Ok(ok)
}

/// A request to join: a pending record and a confirmation mail (at most
/// `confirmations_per_day` a day), or a note that the address is already in.
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
        if !confirmation_budget(ctx, tx, req.list, &email, now)? {
            return Ok(Handled::ignored("subscribe: confirmation cap reached"));
        }
        let (_, token) = issue(ctx, tx, req, &email, PendingAction::Subscribe)?;
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
        queue_mail(
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
        )?;
        Ok(Handled::done("subscribe: confirmation sent"))
    })
}

/// A request to leave: a confirmation mail, or help if the address is not on the list.
pub fn request_unsubscribe(ctx: &Context, req: &Request<'_>) -> anyhow::Result<Handled> {
    let now = ctx.now();
    let email = address::normalize(req.email);
    ctx.store.write(|tx| {
        let member = tx.subscriber(&req.list.id, &email)?.filter(|s| {
            matches!(
                s.status,
                Status::Confirmed | Status::AwaitingApproval | Status::Pending | Status::Bounced
            )
        });
        let Some(member) = member else {
            if reply_budget(ctx, tx, &email, now)? {
                let mut data = base_data(ctx, req.list, &email, req.name);
                data["reason_not_subscribed"] = json!(true);
                queue_mail(
                    ctx,
                    tx,
                    req.list,
                    "help",
                    &email,
                    req.name,
                    &data,
                    None,
                    AutoSubmitted::Replied,
                    req.in_reply_to.clone(),
                )?;
            }
            return Ok(Handled::done("unsubscribe: not subscribed"));
        };
        if !confirmation_budget(ctx, tx, req.list, &email, now)? {
            return Ok(Handled::ignored("unsubscribe: confirmation cap reached"));
        }
        let (_, token) = issue(ctx, tx, req, &email, PendingAction::Unsubscribe)?;
        let data = confirm_data(ctx, req.list, &email, &member.name, &token);
        let reply_to = lists::list_address(req.list, "confirm", Some(&token), &ctx.config.domain);
        queue_mail(
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
        )?;
        Ok(Handled::done("unsubscribe: confirmation sent"))
    })
}

/// Sends the help text, with an optional reason flag set.
pub fn help(ctx: &Context, req: &Request<'_>, reason: Option<&str>) -> anyhow::Result<Handled> {
    let now = ctx.now();
    let email = address::normalize(req.email);
    ctx.store.write(|tx| {
        if reply_budget(ctx, tx, &email, now)? {
            let mut data = base_data(ctx, req.list, &email, req.name);
            if let Some(reason) = reason {
                data[reason] = json!(true);
            }
            queue_mail(
                ctx,
                tx,
                req.list,
                "help",
                &email,
                req.name,
                &data,
                None,
                AutoSubmitted::Replied,
                req.in_reply_to.clone(),
            )?;
        }
        Ok(Handled::done("help sent"))
    })
}

/// A reply to `L-confirm+TOKEN@D`.
fn confirm(
    ctx: &Context,
    list: &List,
    token: &str,
    req: &Request<'_>,
    declined: bool,
) -> anyhow::Result<Handled> {
    let is_unsubscribe = |t: &Token| matches!(ctx.store.pending(t.id), Ok(Some(p)) if p.action == PendingAction::Unsubscribe);
    match Token::decode(token) {
        // "avsluta" in reply to a confirmation to leave means yes.
        Some(t) if declined && !is_unsubscribe(&t) => decline(ctx, Some(list), &t),
        Some(t) => confirm_token(ctx, Some(list), t, req),
        None => help(ctx, req, Some("reason_unknown_token")),
    }
}

/// Does a reply to a confirmation say no? "Sluta! Jag har inte bett om
/// det här" in reply to a forged subscription must not subscribe anyone.
fn says_no(msg: &Message<'_>) -> bool {
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

fn confirm_token(
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
        if pending.action == PendingAction::Approve && method == "mail" && !list.is_owner(confirmer)
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
                tx.unsuppress(&crate::people::suppression_hash(ctx, &s.email));
                let data = base_data(ctx, list, &s.email, &s.name);
                if list.subscription == Subscription::Closed {
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
                let data = base_data(ctx, list, &s.email, &s.name);
                queue_mail(
                    ctx,
                    tx,
                    list,
                    "welcome",
                    &s.email,
                    &s.name,
                    &data,
                    None,
                    AutoSubmitted::Generated,
                    None,
                )?;
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
fn unsubscribe_by_token(
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
        Ok(Some(Left::Now))
    })
}

/// Resends the message unchanged to the owners, as an alias would, with the
/// list's bounce address as envelope sender so failures come back to us.
pub(crate) fn forward_to_owners(
    ctx: &Context,
    list: &List,
    reverse_path: Option<&str>,
    raw: &[u8],
) -> Result<Handled, Refusal> {
    if list.owners.is_empty() {
        return Ok(Handled::ignored("no owners to forward to"));
    }
    let now = ctx.now();
    ctx.store.write(|tx| {
        let id = tx.next_id()?;
        let mut bytes = format!(
            "X-Loop: {}\r\nX-Original-Sender: {}\r\n",
            loop_marker(list, &ctx.config.domain),
            address::header_safe(reverse_path.unwrap_or("unknown"))
        )
        .into_bytes();
        bytes.extend_from_slice(raw);
        tx.enqueue_mail(&OutMail {
            v: RECORD_VERSION,
            id,
            reverse_path: lists::list_address(list, "bounces", None, &ctx.config.domain),
            forward_path: list.owners.clone(),
            raw: bytes,
            attempts: 0,
            next_attempt: 0,
            created_at: now,
            last_error: None,
        });
        Ok(())
    })?;
    Ok(Handled::done("forwarded to the owners"))
}

/// `utskick add`: a confirmed subscriber on an admin's word, or the approval
/// of someone awaiting it. The consent text is the proof.
pub fn admin_add(
    ctx: &Context,
    list: &List,
    email: &str,
    name: Option<&str>,
    attributes: BTreeMap<String, String>,
    consent: &str,
) -> anyhow::Result<String> {
    if !address::is_valid(email) {
        anyhow::bail!("{email:?} is not an e-mail address");
    }
    if consent.trim().is_empty() {
        anyhow::bail!("--consent must say how this person agreed");
    }
    for key in attributes.keys() {
        if !list.attributes.contains(key) {
            anyhow::bail!(
                "list {} has no attribute {key:?} (it has: {})",
                list.id,
                list.attributes.join(", ")
            );
        }
    }
    let email = address::normalize(email);
    let now = ctx.now();
    ctx.store.write(|tx| {
        let mut s = tx.subscriber(&list.id, &email)?.unwrap_or(Subscriber::new(
            tx.random_id()?,
            &list.id,
            &email,
            "",
            Status::Pending,
            now,
        ));
        if let Some(name) = name {
            s.name = address::header_safe(name);
        }
        s.attributes.extend(
            attributes
                .into_iter()
                .map(|(k, v)| (k, address::header_safe(&v))),
        );
        let was = s.status;
        if was == Status::Confirmed {
            s.updated_at = now;
            tx.put_subscriber(&s);
            return Ok(format!(
                "{email} is already a confirmed subscriber of {}",
                list.id
            ));
        }
        s.status = Status::Confirmed;
        s.subscribed_at = Some(now);
        s.unsubscribed_at = None;
        s.bounces = 0;
        s.updated_at = now;
        let admin_consent = Consent {
            method: "admin".into(),
            at: now,
            evidence: address::header_safe(consent),
            confirmed_by: Some("recorded by an admin".into()),
        };
        if was == Status::AwaitingApproval {
            if let Some(c) = s.consent.as_mut() {
                c.confirmed_by = Some(format!(
                    "{}; approved by an admin: {}",
                    c.confirmed_by.clone().unwrap_or_default(),
                    admin_consent.evidence
                ));
            } else {
                s.consent = Some(admin_consent);
            }
        } else {
            s.consent = Some(admin_consent);
        }
        tx.put_subscriber(&s);
        let data = base_data(ctx, list, &s.email, &s.name);
        queue_mail(
            ctx,
            tx,
            list,
            "welcome",
            &s.email,
            &s.name,
            &data,
            None,
            AutoSubmitted::Generated,
            None,
        )?;
        Ok(if was == Status::AwaitingApproval {
            format!("approved {email} on {}", list.id)
        } else {
            format!("added {email} to {}", list.id)
        })
    })
}

/// `utskick remove`: kept as unsubscribed, not deleted; no mail is sent.
pub fn admin_remove(ctx: &Context, list: &List, email: &str) -> anyhow::Result<String> {
    let email = address::normalize(email);
    let now = ctx.now();
    ctx.store.write(|tx| {
        let Some(mut s) = tx.subscriber(&list.id, &email)? else {
            anyhow::bail!("{email} is not on {}", list.id);
        };
        if s.status == Status::Unsubscribed {
            return Ok(format!("{email} had already left {}", list.id));
        }
        s.status = Status::Unsubscribed;
        s.unsubscribed_at = Some(now);
        s.updated_at = now;
        tx.put_subscriber(&s);
        Ok(format!("removed {email} from {}", list.id))
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
