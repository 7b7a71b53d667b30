//! What became of each copy: the recorder's writes, and the end of a
//! campaign.
//!
//! An outcome is written where the delivery is: sent, failed or skipped
//! ends it and drops the frozen copy of the recipient (only a copy still
//! to send keeps one); a transient failure defers it to its next attempt
//! (`DELIVERY_RETRY_DELAYS_SECS`, about three days in all), and a 5xx
//! counts a bounce on the subscriber's score. A copy the relay took after
//! its person left (their delivery already skipped) is counted sent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio::sync::OwnedSemaphorePermit;

use crate::daemon::context::{Context, Metrics};
use crate::outbound::SendError;
use crate::store::{Campaign, CampaignCache, CampaignStatus, Delivery, DeliveryState};
use crate::time::{SECS_PER_HOUR as HOUR, SECS_PER_MINUTE as MIN};

/// Delays after the 1st, 2nd, … transient failure of one delivery: minutes
/// growing to hours, three days in all; then it counts as failed.
const DELIVERY_RETRY_DELAYS_SECS: &[i64] = &[
    5 * MIN,
    15 * MIN,
    30 * MIN,
    HOUR,
    2 * HOUR,
    4 * HOUR,
    8 * HOUR,
    12 * HOUR,
    16 * HOUR,
    24 * HOUR,
];

/// What became of one delivery, on its way to the recorder.
pub(crate) enum Outcome {
    /// The relay's answer.
    Relay(Result<(), SendError>),
    /// We could not render the message: our fault, not the address's.
    Render(SendError),
    /// The subscriber left (or was disabled) before their copy went.
    Skip,
}

pub(crate) struct Done {
    /// The delivery as the worker read it (its frozen recipient taken).
    pub(crate) delivery: Delivery,
    /// The store's skip generation taken before `delivery` was read: while
    /// it has not moved, no write but the recorder's changed a delivery,
    /// so `delivery` is still as stored.
    pub(crate) generation: u64,
    pub(crate) outcome: Outcome,
    /// Held until the outcome is durable: the lanes' run-ahead is bounded
    /// by the number of these.
    pub(crate) _window_permit: Option<OwnedSemaphorePermit>,
}

/// Records what became of a batch of deliveries in one write (the
/// deliveries, then the campaign counters: `Store::write_outcomes`), and
/// makes it durable with one flush. `cache` is the recorder's, kept from
/// group to group: its campaign is decoded again only when someone else
/// wrote it.
pub(crate) async fn record(
    ctx: &Context,
    batch: &[Done],
    cache: &mut CampaignCache,
) -> anyhow::Result<()> {
    let now = ctx.now();
    ctx.store.write_outcomes(|tx| {
        let mut campaigns: BTreeMap<u64, Campaign> = BTreeMap::new();
        for done in batch {
            let id = done.delivery.campaign;
            let c = match campaigns.entry(id) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    match tx.campaign_cached(id, cache)? {
                        Some(c) => e.insert(c),
                        None => continue,
                    }
                }
            };
            record_one(ctx, tx, c, done, now)?;
        }
        for (_, c) in campaigns {
            tx.put_campaign_cached(c, cache);
        }
        Ok(())
    })?;
    Ok(ctx.store.sync().await?)
}

fn record_one(
    ctx: &Context,
    tx: &mut crate::store::Tx<'_>,
    c: &mut Campaign,
    done: &Done,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    // A copy the relay took, and no delivery changed but by this recorder
    // since the worker read it: the worker's copy is the stored one, and
    // reading it again per message would cost a tree lookup. Any other
    // outcome keeps what is stored beside it (a deferred copy keeps its
    // frozen recipient), so it is read.
    let held = matches!(done.outcome, Outcome::Relay(Ok(())))
        && done.generation == ctx.store.skip_generation();
    let mut d = if held {
        done.delivery.clone()
    } else {
        tx.delivery(done.delivery.campaign, done.delivery.subscriber)?
            .unwrap_or_else(|| done.delivery.clone())
    };
    if d.state == DeliveryState::Skipped && matches!(done.outcome, Outcome::Relay(Ok(()))) {
        // They left while their copy was already with the relay, which
        // then took it: it was sent, so it counts as sent, not skipped.
        Metrics::inc(&ctx.metrics.mails_sent);
        d.state = DeliveryState::Sent;
        d.done_at = Some(now);
        c.skipped = c.skipped.saturating_sub(1);
        c.sent += 1;
        tx.put_outcome(&d);
        return Ok(());
    }
    if d.state.is_final() {
        return Ok(());
    }
    let (e, relay) = match &done.outcome {
        Outcome::Skip => {
            d.state = DeliveryState::Skipped;
            d.done_at = Some(now);
            d.to = None;
            c.skipped += 1;
            tx.put_outcome(&d);
            return Ok(());
        }
        Outcome::Relay(Ok(())) => {
            Metrics::inc(&ctx.metrics.mails_sent);
            d.state = DeliveryState::Sent;
            d.done_at = Some(now);
            // Sent: the frozen copy of the recipient is no longer needed.
            d.to = None;
            d.last_error = None;
            c.sent += 1;
            tx.put_outcome(&d);
            return Ok(());
        }
        Outcome::Relay(Err(e)) => (e, true),
        Outcome::Render(e) => (e, false),
    };
    d.attempts += 1;
    d.last_error = Some(e.message.clone());
    let delay = DELIVERY_RETRY_DELAYS_SECS.get(d.attempts as usize - 1);
    match (e.permanent, delay) {
        (false, Some(delay)) => {
            Metrics::inc(&ctx.metrics.mails_deferred);
            d.state = DeliveryState::Deferred;
            d.next_attempt = now.timestamp() + delay;
        }
        _ => {
            Metrics::inc(&ctx.metrics.mails_failed);
            d.state = DeliveryState::Failed;
            d.done_at = Some(now);
            d.to = None;
            c.failed += 1;
            // A 5xx from the relay counts as a bounce, on the same score
            // as bounce reports; our own render failures and a refusal of
            // our envelope sender do not.
            if e.permanent && e.bounce && relay {
                if let Some(mut s) = tx.subscriber_by_id(d.subscriber)? {
                    let reason = crate::mail::bounce::reason_of(None, &e.message);
                    crate::feedback::bounces::add_bounce(
                        &mut s,
                        true,
                        reason.as_deref(),
                        ctx.config.limits.bounce_threshold,
                        now,
                    );
                    tx.put_subscriber(&s);
                }
                // The copy's failure has counted: a delivery report on it
                // later (a relay's DSN for the same refusal) adds nothing.
                d.bounced = true;
            }
        }
    }
    tx.put_outcome(&d);
    Ok(())
}

pub(crate) fn finish_if_done(ctx: &Context, id: u64) -> anyhow::Result<()> {
    let now = ctx.now();
    ctx.store.write(|tx| {
        let Some(mut c) = tx.campaign(id)? else {
            return Ok(());
        };
        if c.status == CampaignStatus::Sending && c.sent + c.failed + c.skipped >= c.total {
            c.status = CampaignStatus::Done;
            c.finished_at = Some(now);
            tx.put_campaign(&c);
            tracing::info!(
                campaign = id,
                sent = c.sent,
                failed = c.failed,
                skipped = c.skipped,
                "campaign done"
            );
        }
        Ok(())
    })?;
    Ok(())
}
