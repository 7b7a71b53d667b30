//! Fixing a campaign's recipients when sending starts: each confirmed,
//! matching subscriber of its list gets a pending delivery that holds what
//! a copy needs of them (`store::Frozen`: address, name, attributes), in
//! the store's binary delivery form, so the worker reads no subscriber
//! record per copy.
//!
//! The list is read in batches of [`BATCH`], each read and frozen in one
//! write: under the writer lock, so nobody can leave between the read and
//! the freeze (a person who leaves later has their delivery skipped by the
//! store, in the write that records their leaving). The campaign stays
//! scheduled until the last batch is in, so a crash in between only means
//! the fixing runs again from the start; a delivery it wrote before the
//! crash is written again, or dropped if its person left meanwhile.

use crate::campaign::{matches, BATCH};
use crate::daemon::context::Context;
use crate::store::{
    Campaign, CampaignStatus, Delivery, DeliveryState, Frozen, Status, RECORD_VERSION,
};

/// Freezes the recipients of `c` and moves it to `sending` (or `done`,
/// when nobody matches). Returns it as stored.
pub(crate) fn start(ctx: &Context, c: Campaign) -> anyhow::Result<Campaign> {
    let mut cursor: Option<String> = None;
    loop {
        let last = ctx.store.write(|tx| {
            // Cancelled (or paused) meanwhile: freeze no more; `steer`
            // dropped what was frozen of a cancelled one.
            if tx
                .campaign(c.id)?
                .is_none_or(|now| now.status != CampaignStatus::Scheduled)
            {
                return Ok(None);
            }
            let batch = tx.subscribers_after(&c.list, cursor.as_deref(), BATCH)?;
            let last = batch.last().map(|s| s.email.clone());
            for s in batch {
                let wanted = s.status == Status::Confirmed
                    && matches(&s, &c.filters)
                    // A post: not to its author if they asked for no copy,
                    // and to the members who take single posts; a digest
                    // to the others.
                    && c.post
                        .as_ref()
                        .is_none_or(|p| p.skip != Some(s.id) && p.digest == s.digest);
                if !wanted {
                    continue;
                }
                tx.put_delivery(&Delivery {
                    v: RECORD_VERSION,
                    campaign: c.id,
                    subscriber: s.id,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt: 0,
                    last_error: None,
                    done_at: None,
                    bounced: false,
                    warned: false,
                    to: Some(Frozen {
                        email: s.email,
                        name: s.name,
                        attributes: s.attributes,
                    }),
                });
            }
            Ok(last)
        })?;
        match last {
            Some(last) => cursor = Some(last),
            None => break,
        }
    }
    let now = ctx.now();
    let started = ctx.store.write(|tx| {
        let mut fresh = tx.campaign(c.id)?.unwrap_or(c);
        if fresh.status != CampaignStatus::Scheduled {
            // Paused or cancelled while recipients were being fixed.
            return Ok(fresh);
        }
        // The deliveries written, not the sum of the batches: someone
        // frozen in an early batch who left before the last had theirs
        // dropped, and must not be waited for.
        let total = tx.delivery_count(fresh.id)?;
        fresh.status = if total == 0 {
            CampaignStatus::Done
        } else {
            CampaignStatus::Sending
        };
        fresh.total = total;
        fresh.started_at = Some(now);
        if total == 0 {
            fresh.finished_at = Some(now);
        }
        tx.put_campaign(&fresh);
        Ok(fresh)
    })?;
    tracing::info!(campaign = started.id, list = %started.list, recipients = started.total, "campaign started");
    Ok(started)
}
