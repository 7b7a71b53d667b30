//! Bounces and complaints: a decaying score per subscriber, and what a
//! report does to a subscription.

use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::feedback::subscriber_of;
use crate::mail::bounce;
use crate::store::{Status, Subscriber};
use crate::subscription::answer::Handled;
use chrono::{DateTime, Utc};
use mail_parser::Message;

/// What a permanent bounce adds to a subscriber's score.
pub(crate) const PERMANENT_WEIGHT: f64 = 1.0;

/// What a temporary failure (mailbox full, greylisting, a delay) adds.
pub(crate) const TEMPORARY_WEIGHT: f64 = 0.2;

/// The score halves in this many days without new bounces, so old trouble
/// fades and only a run of failures reaches the threshold.
pub(crate) const BOUNCE_HALF_LIFE_DAYS: f64 = 14.0;

/// Adds one bounce to `s`'s decaying score; at the threshold a confirmed
/// subscriber becomes `bounced` and gets no more mail.
pub fn add_bounce(s: &mut Subscriber, permanent: bool, threshold: f64, now: DateTime<Utc>) {
    let decayed = match s.last_bounce_at {
        Some(last) => {
            let days = (now - last).num_seconds().max(0) as f64 / crate::time::SECS_PER_DAY as f64;
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
