//! Bounces and complaints: a decaying score per subscriber, and what a
//! report does to a subscription.
//!
//! A report acts only when it is bound to a mail we sent, because anyone
//! can write a DSN or an ARF report that names anyone:
//!
//! - at `L-bounces+TOKEN@D`, the token must verify: a newsletter token
//!   (the subscriber it names), or the token of that subscriber's
//!   outstanding probe. A token that does not verify binds nothing, and the
//!   report is not read for addresses;
//! - at the bare `L-bounces@D`, a token of ours in the header of the
//!   attached original (`List-Unsubscribe`, `Reply-To`, `Return-Path`; see
//!   `bounce::original_tokens`) binds it, if all such tokens name one
//!   subscriber.
//!
//! A bound report acts on the subscriber the token names, never on the
//! address the report's text names. Anything else changes no one and is
//! recorded as ignored. An unbound bounce that names a confirmed
//! subscriber with a permanent failure sends them a probe (as Mailman 3
//! does): a system mail whose envelope sender carries a probe token, at
//! most one outstanding per subscriber. Only the probe's own bounce counts.

use crate::compose::system::AutoSubmitted;
use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::feedback::subscriber_of;
use crate::mail::{automated, bounce};
use crate::store::{Status, Subscriber, Tx};
use crate::subscription::answer::{base_data, queue_mail_as, Dispatch, Handled};
use crate::subscription::token_subscriber;
use crate::token::{Purpose, Token};
use chrono::{DateTime, Utc};
use mail_parser::Message;

/// What a permanent bounce adds to a subscriber's score when the address
/// itself is gone (user or host unknown, moved, refused), or the report
/// does not say why.
pub(crate) const PERMANENT_WEIGHT: f64 = 1.0;

/// A final failure of a mailbox that exists but takes no mail now: full,
/// suspended, over its quota, or a message that expired in the queue.
/// Counts, but a full mailbox is not an unknown user.
pub(crate) const MAILBOX_WEIGHT: f64 = 0.5;

/// A temporary failure (greylisting, a delay), or a refusal about the
/// message or the sending server rather than the address (a block list,
/// spam or virus filters, policy, authentication, the network).
pub(crate) const TEMPORARY_WEIGHT: f64 = 0.2;

/// What one failure adds to the score: see the weights above.
pub fn bounce_weight(permanent: bool, reason: Option<&str>) -> f64 {
    if !permanent {
        return TEMPORARY_WEIGHT;
    }
    match reason {
        Some(
            "mailboxfull" | "expired" | "exceedlimit" | "suspend" | "systemfull" | "mesgtoobig",
        ) => MAILBOX_WEIGHT,
        Some(
            "blocked" | "spamdetected" | "policyviolation" | "virusdetected" | "contenterror"
            | "securityerror" | "authfailure" | "requireptr" | "norelaying" | "toomanyconn"
            | "networkerror" | "systemerror" | "syntaxerror" | "rejected" | "filtered",
        ) => TEMPORARY_WEIGHT,
        _ => PERMANENT_WEIGHT,
    }
}

/// The score halves in this many days without new bounces, so old trouble
/// fades and only a run of failures reaches the threshold.
pub(crate) const BOUNCE_HALF_LIFE_DAYS: f64 = 14.0;

/// A probe is outstanding for this long: no second probe goes to the same
/// subscriber before (a relay gives up on a message after about five days,
/// so its bounce comes within a week).
pub(crate) const PROBE_OUTSTANDING_DAYS: i64 = 7;

/// At most this many probes a day per list, however many unbound bounces
/// arrive: a flood of forged reports cannot make us mail the whole list.
pub(crate) const PROBES_PER_LIST_PER_DAY: u32 = 100;

/// Adds one bounce to `s`'s decaying score ([`bounce_weight`]) and keeps its
/// reason; at the threshold a confirmed subscriber becomes `bounced` and
/// gets no more mail.
pub fn add_bounce(
    s: &mut Subscriber,
    permanent: bool,
    reason: Option<&str>,
    threshold: f64,
    now: DateTime<Utc>,
) {
    let decayed = match s.last_bounce_at {
        Some(last) => {
            let days = (now - last).num_seconds().max(0) as f64 / crate::time::SECS_PER_DAY as f64;
            s.bounce_score * 0.5f64.powf(days / BOUNCE_HALF_LIFE_DAYS)
        }
        None => s.bounce_score,
    };
    s.bounce_score = decayed + bounce_weight(permanent, reason);
    s.bounces += 1;
    s.last_bounce_at = Some(now);
    s.last_bounce_reason = reason.map(str::to_string);
    s.updated_at = now;
    if s.bounce_score >= threshold && s.status == Status::Confirmed {
        s.status = Status::Bounced;
    }
}

/// What binds a report to a mail we sent.
enum Binding {
    /// A newsletter token: the subscriber it names, and the campaign whose
    /// copy carried it.
    Copy(Subscriber, u32),
    /// A probe token: the subscriber, and the probe's time of issue.
    Probe(Subscriber, u32),
}

impl Binding {
    fn subscriber(&self) -> &Subscriber {
        match self {
            Binding::Copy(s, _) | Binding::Probe(s, _) => s,
        }
    }
}

/// Why a report is not bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unbound {
    /// `L-bounces+TOKEN@D` with a token that does not verify.
    ForgedVerp,
    /// The bare address, and no token of ours in an attached original.
    NoToken,
    /// The attached original carries tokens of two or more subscribers.
    Ambiguous,
}

/// The subscriber a verified VERP token names on `list`: a newsletter
/// token, or a probe token.
fn verp_binding(ctx: &Context, list: &List, token: &str) -> anyhow::Result<Option<Binding>> {
    if let Some((s, t)) = subscriber_of(ctx, list, token)? {
        return Ok(Some(Binding::Copy(s, t.issued)));
    }
    let Some(t) = Token::decode(token) else {
        return Ok(None);
    };
    probe_binding(ctx, list, &t)
}

fn probe_binding(ctx: &Context, list: &List, t: &Token) -> anyhow::Result<Option<Binding>> {
    let Some(s) = ctx.store.subscriber_by_id(t.id)? else {
        return Ok(None);
    };
    let genuine = s.list == list.id && ctx.secret.verify(t, Purpose::Probe, &s.list, &s.email);
    Ok(genuine.then_some(Binding::Probe(s, t.issued)))
}

/// The one subscriber whose tokens the attached original carries.
fn original_binding(
    ctx: &Context,
    list: &List,
    msg: &Message<'_>,
) -> anyhow::Result<Result<Binding, Unbound>> {
    let mut found: Option<Binding> = None;
    for t in bounce::original_tokens(msg) {
        let b = match token_subscriber(ctx, Some(list), &t)? {
            Some(s) => Binding::Copy(s, t.issued),
            None => match probe_binding(ctx, list, &t)? {
                Some(b) => b,
                None => continue,
            },
        };
        match &found {
            None => found = Some(b),
            Some(f) if f.subscriber().id == b.subscriber().id => {
                // The same person's newsletter token beside their probe
                // token: the probe (a bounce of it counts once).
                if matches!(b, Binding::Probe(..)) {
                    found = Some(b);
                }
            }
            Some(_) => return Ok(Err(Unbound::Ambiguous)),
        }
    }
    Ok(found.ok_or(Unbound::NoToken))
}

/// Mail to `L-bounces+TOKEN@D` or `L-bounces@D`: a delivery report or a
/// complaint. Never answered; see the module docs for what binds it.
/// `reverse_path` is the envelope sender (Some("") for `<>`).
pub fn bounce(
    ctx: &Context,
    list: &List,
    token: Option<&str>,
    msg: &Message<'_>,
    reverse_path: Option<&str>,
) -> anyhow::Result<Handled> {
    let binding = match token {
        Some(t) => verp_binding(ctx, list, t)?.ok_or(Unbound::ForgedVerp),
        None => original_binding(ctx, list, msg)?,
    };
    if automated::is_feedback_report(msg) {
        return match binding {
            Ok(b) => complaint(ctx, list, b),
            Err(why) => {
                tracing::warn!(list = %list.id, ?why, "complaint not bound to a mail we sent: ignored");
                Ok(Handled::ignored(match why {
                    Unbound::ForgedVerp => "complaint to a VERP address whose token is not ours",
                    Unbound::NoToken => {
                        "complaint not bound to a mail we sent (no token of ours in an attached original)"
                    }
                    Unbound::Ambiguous => {
                        "complaint whose attached original carries tokens of more than one subscriber"
                    }
                }))
            }
        };
    }
    match binding {
        Ok(b) => {
            let handled = count(ctx, list, b, msg, reverse_path)?;
            Ok(if handled.ignored {
                handled.read_as(bounce::family(msg))
            } else {
                handled
            })
        }
        Err(Unbound::ForgedVerp) => {
            tracing::warn!(list = %list.id, "bounce to a VERP address whose token is not ours: ignored");
            Ok(Handled::ignored(
                "bounce to a VERP address whose token is not ours",
            ))
        }
        Err(_) => Ok(probe(ctx, list, msg)?.read_as(bounce::family(msg))),
    }
}

/// A complaint (ARF) means "I do not want this": the subscriber the token
/// names leaves at once, and gets no goodbye mail that could draw another
/// complaint.
fn complaint(ctx: &Context, list: &List, b: Binding) -> anyhow::Result<Handled> {
    let now = ctx.now();
    let id = b.subscriber().id;
    let left = ctx.store.write(|tx| {
        let Some(mut s) = tx.subscriber_by_id(id)?.filter(|s| s.list == list.id) else {
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
    if !left {
        return Ok(Handled::ignored("complaint about someone not subscribed"));
    }
    tracing::info!(list = %list.id, "complaint: subscriber removed");
    Ok(Handled::done("complaint: unsubscribed"))
}

/// A bound delivery report: one bounce for the subscriber the token names.
fn count(
    ctx: &Context,
    list: &List,
    b: Binding,
    msg: &Message<'_>,
    reverse_path: Option<&str>,
) -> anyhow::Result<Handled> {
    let failures = bounce::parse(msg);
    // A DSN that says "delivered" or "relayed", a read receipt, a
    // challenge/response system's challenge: each comes back to the
    // envelope sender as a bounce would, and is none.
    if failures.is_empty() && bounce::reports_no_failure(msg) {
        return Ok(Handled::ignored(
            "a report that nothing failed (a delivery success, a read receipt or a challenge/response), not a bounce",
        ));
    }
    // Vacation notices answer the envelope sender too (RFC 3834 replies go
    // to the Return-Path): only a delivery report counts.
    if failures.is_empty() && !automated::is_bounce(msg, reverse_path) {
        return Ok(Handled::ignored(
            "not a delivery report (an auto-reply to our envelope sender?)",
        ));
    }
    let now = ctx.now();
    let threshold = ctx.config.limits.bounce_threshold;
    let (probe_issued, campaign) = match &b {
        Binding::Probe(_, issued) => (Some(*issued), None),
        Binding::Copy(_, campaign) => (None, Some(u64::from(*campaign))),
    };
    let id = b.subscriber().id;
    let counted = ctx.store.write(|tx| {
        let Some(mut s) = tx.subscriber_by_id(id)?.filter(|s| s.list == list.id) else {
            return Ok(Counted::NoOne);
        };
        if let Some(issued) = probe_issued {
            // Only the outstanding probe counts, and only once.
            if s.probe_sent_at.map(probe_secs) != Some(issued) {
                return Ok(Counted::NoOne);
            }
            s.probe_sent_at = None;
        }
        // The token names the subscriber; the report says how bad it is.
        // A report we cannot read counts as permanent: the relay did send
        // it back.
        let failure = failures
            .iter()
            .find(|f| f.recipient.eq_ignore_ascii_case(&s.email))
            .or(failures.first());
        let permanent = failure.is_none_or(|f| f.permanent);
        let reason = failure.and_then(|f| f.reason.as_deref());
        // One copy fails once: a final report on a copy whose bounce
        // already counted (a relay's second DSN, a forwarder's copy of it)
        // adds nothing to the person's score or the campaign's tally, so
        // one failed copy reported three times does not make them bounced.
        let delivery = match campaign {
            Some(c) => tx.delivery(c, s.id)?,
            None => None,
        };
        // Nor do a copy's delay warnings (a relay may warn every few
        // hours, and anyone can replay one): the first counts, the final
        // report after it still does.
        if delivery
            .as_ref()
            .is_some_and(|d| d.bounced || (d.warned && !permanent))
        {
            return Ok(Counted::Before);
        }
        add_bounce(&mut s, permanent, reason, threshold, now);
        tx.put_subscriber(&s);
        if let Some(mut d) = delivery {
            if permanent {
                // The campaign counts a copy that bounced once: a final
                // report (not a delay warning) for a copy it sent.
                d.bounced = true;
                if let Some(c) = campaign {
                    tx.count_outcome(c, crate::store::Led::Bounce)?;
                }
            } else {
                d.warned = true;
            }
            tx.put_delivery(&d);
        }
        Ok(Counted::Yes)
    })?;
    match counted {
        Counted::Yes => {}
        Counted::Before => {
            return Ok(Handled::ignored(
                "a further report on a copy whose bounce already counted",
            ))
        }
        Counted::NoOne => {
            return Ok(Handled::ignored(if probe_issued.is_some() {
                "bounce of a probe that is no longer outstanding"
            } else {
                "bounce for a subscriber no longer on the list"
            }))
        }
    }
    tracing::info!(list = %list.id, probe = probe_issued.is_some(), "bounce recorded");
    Ok(Handled::done(if probe_issued.is_some() {
        "bounce of a probe recorded"
    } else {
        "bounce recorded"
    }))
}

/// What a bound delivery report did to its subscriber.
enum Counted {
    Yes,
    /// A final report on that copy already counted.
    Before,
    /// The subscriber left the list, or the probe is not outstanding.
    NoOne,
}

/// A probe's time of issue as its token carries it.
fn probe_secs(t: DateTime<Utc>) -> u32 {
    u32::try_from(t.timestamp().max(0)).unwrap_or(u32::MAX)
}

/// What an unbound bounce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Probed {
    NoOne,
    Capped,
    Outstanding,
    Sent,
}

/// An unbound bounce: it counts for no one. Each confirmed subscriber it
/// names with a permanent failure gets a probe, unless one is outstanding.
fn probe(ctx: &Context, list: &List, msg: &Message<'_>) -> anyhow::Result<Handled> {
    let named: Vec<String> = bounce::parse(msg)
        .into_iter()
        .filter(|f| f.permanent)
        .map(|f| f.recipient)
        .collect();
    let now = ctx.now();
    let outcome = ctx.store.write(|tx| {
        let mut outcome = Probed::NoOne;
        for email in &named {
            let Some(s) = tx.subscriber(&list.id, email)? else {
                continue;
            };
            if s.status != Status::Confirmed {
                continue;
            }
            outcome = outcome.max(send_probe(ctx, tx, list, s, now)?);
        }
        Ok(outcome)
    })?;
    tracing::info!(list = %list.id, ?outcome, "bounce not bound to a mail we sent: counted for no one");
    Ok(Handled::ignored(match outcome {
        Probed::Sent => "bounce not bound to a mail we sent: counted for no one; a probe went to the subscriber it names",
        Probed::Outstanding => "bounce not bound to a mail we sent: counted for no one; a probe to the subscriber it names is outstanding",
        Probed::Capped => "bounce not bound to a mail we sent: counted for no one; the list's probes for today are spent",
        Probed::NoOne => "bounce not bound to a mail we sent, naming no confirmed subscriber with a permanent failure",
    }))
}

/// Sends `s` a probe: a system mail from `L-bounces+TOKEN@D`, where the
/// token (purpose `Probe`) names `s` and the time it was sent, which `s`
/// keeps while the probe is outstanding.
fn send_probe(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    mut s: Subscriber,
    now: DateTime<Utc>,
) -> anyhow::Result<Probed> {
    if s.probe_sent_at
        .is_some_and(|t| now - t < chrono::Duration::days(PROBE_OUTSTANDING_DAYS))
    {
        return Ok(Probed::Outstanding);
    }
    if !tx.take_daily(&format!("probe\0{}", list.id), PROBES_PER_LIST_PER_DAY, now)? {
        return Ok(Probed::Capped);
    }
    let issued = ctx.now_secs();
    let token = ctx
        .secret
        .mint(Purpose::Probe, &s.list, &s.email, s.id, issued);
    s.probe_sent_at = DateTime::from_timestamp(i64::from(issued), 0);
    tx.put_subscriber(&s);
    let data = base_data(ctx, list, &s.email, &s.name);
    queue_mail_as(
        ctx,
        tx,
        list,
        "probe",
        &s.email,
        &s.name,
        &data,
        None,
        AutoSubmitted::Generated,
        None,
        Dispatch::Probe(&token),
    )?;
    Ok(Probed::Sent)
}
