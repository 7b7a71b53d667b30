//! What every handler shares: who asks (`Request`), what came of it
//! (`Handled`), and the answer mail queued in the same write as the change.

use crate::compose::system::{self, AutoSubmitted};
use crate::daemon::context::Context;
use crate::daemon::lists;
use crate::daemon::lists::List;
use crate::store::{OutMail, Pending, PendingAction, Tx, RECORD_VERSION};
use crate::token::Purpose;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What happened to an accepted message, for the log; `ignored` when it
/// was neither acted on nor forwarded (recorded for `utskick ignored`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub what: &'static str,
    pub ignored: bool,
    /// For a delivery report: the format it was read as (the bounce
    /// reader's family, `bounce::family`), kept with an ignored record so
    /// an unreadable report says what was tried.
    pub read_as: Option<&'static str>,
}

impl Handled {
    pub fn done(what: &'static str) -> Handled {
        Handled {
            what,
            ignored: false,
            read_as: None,
        }
    }

    pub fn ignored(what: &'static str) -> Handled {
        Handled {
            what,
            ignored: true,
            read_as: None,
        }
    }

    /// The same, noting the format a report was read as.
    pub fn read_as(self, family: &'static str) -> Handled {
        Handled {
            read_as: Some(family),
            ..self
        }
    }

    /// What `utskick ignored` records as the reason.
    pub fn reason(&self) -> String {
        match self.read_as {
            Some(family) => format!("{} (read as: {family})", self.what),
            None => self.what.to_string(),
        }
    }
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
        "sender": list.sender,
        "email": email,
        "name": name,
        "first_name": crate::compose::mime::first_name(name),
        "subscribe_address": lists::list_address(list, "subscribe", None, d),
        "unsubscribe_address": lists::list_address(list, "unsubscribe", None, d),
        "request_address": lists::list_address(list, "request", None, d),
        "owner_address": lists::list_address(list, "owner", None, d),
        "list_url": format!("{}/lists/{}", ctx.config.base_url(), list.id),
        "expires_days": ctx.config.limits.token_days,
        "reason_unknown_token": false,
        "reason_not_subscribed": false,
        "reason_unknown_command": false,
        // A discussion list: the help mail names the members' settings.
        "discussion": list.discussion.posting != crate::daemon::lists::Posting::Owners,
    })
}

/// Renders template `name` and queues it in `tx`, due at once.
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
    queue_mail_as(
        ctx,
        tx,
        list,
        name,
        to_email,
        to_name,
        data,
        reply_to,
        auto,
        in_reply_to,
        Dispatch::Now,
    )
}

/// Queues the welcome to someone an owner or an admin just let in (no
/// message of theirs to answer: `Auto-Submitted: auto-generated`).
pub(crate) fn queue_welcome(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    s: &crate::store::Subscriber,
) -> anyhow::Result<()> {
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
    )
}

/// How a queued answer leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dispatch<'a> {
    /// From `L-bounces@D`, due at once.
    Now,
    /// A confirmation or invitation: due when the hourly caps allow
    /// (`budget::confirmation_due`), so a flood waits in the outbox instead
    /// of leaving at once.
    Confirmation,
    /// A bounce probe: from `L-bounces+TOKEN@D`, so that its bounce comes
    /// back bound to the token.
    Probe(&'a str),
}

/// Renders template `name` and queues it in `tx`, leaving as `how` says.
#[allow(clippy::too_many_arguments)]
pub(crate) fn queue_mail_as(
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
    how: Dispatch<'_>,
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
    let due = match how {
        Dispatch::Confirmation => {
            crate::subscription::budget::confirmation_due(ctx, tx, to_email, ctx.now())?
        }
        Dispatch::Now | Dispatch::Probe(_) => 0,
    };
    let verp = match how {
        Dispatch::Probe(token) => Some(token),
        Dispatch::Now | Dispatch::Confirmation => None,
    };
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
        reverse_path: lists::list_address(list, "bounces", verp, &ctx.config.domain),
        forward_path: vec![to_email.to_string()],
        raw,
        attempts: 0,
        next_attempt: due,
        created_at: ctx.now(),
        last_error: None,
    });
    Ok(())
}

/// Our own loop marker on mail we forward; mail that carries it is ours
/// coming back and is dropped.
pub fn loop_marker(list: &List, domain: &str) -> String {
    lists::list_address(list, "", None, domain)
}

/// Issues a pending confirmation and its token.
pub(crate) fn issue(
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

pub(crate) fn purpose_of(action: PendingAction) -> Purpose {
    match action {
        PendingAction::Subscribe => Purpose::ConfirmSubscribe,
        PendingAction::Unsubscribe => Purpose::ConfirmUnsubscribe,
        PendingAction::Approve => Purpose::Approve,
        PendingAction::Post => Purpose::Post,
        PendingAction::Setting => Purpose::Setting,
    }
}

pub(crate) fn confirm_data(
    ctx: &Context,
    list: &List,
    email: &str,
    name: &str,
    token: &str,
) -> Value {
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
