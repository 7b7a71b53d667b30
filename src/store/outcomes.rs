//! The campaign recorder's writes: outcomes applied without a sled
//! transaction, and the campaign counters made right again at open.
//!
//! Part of `store`. A sled transaction (like a batch) seals the log's IO
//! buffer to write its manifest (`PageCache::pin_log`), and every sealed
//! buffer is one task on sled's IO pool, which wakes a thread for it
//! (upstream woke all of them: `vendor/sled/PATCHED.md`). With the group
//! commit's own flush that made two such tasks per group of outcomes;
//! without the transaction it is one.
//!
//! What the transaction bought was that a group lands whole or not at
//! all. Applied key by key instead, a crash (a kill, a power cut) before
//! the group's flush ended can keep the first of its writes and lose the
//! rest: sled recovers a prefix of its log. So the deliveries go first and
//! the campaign counters after them, and nothing but the counters needs
//! the rest: a delivery alone is one key, so a sent copy is recorded
//! sent or not at all, as before. The counters of every campaign still
//! sending (or paused while sending) are counted again from its
//! deliveries when the store opens ([`Store::recount_campaigns`]), so
//! `sent + skipped + failed` is what the deliveries say before the worker
//! looks at it. A write that changes more than deliveries and campaign
//! records (a 5xx that counts a bounce on the subscriber, and may disable
//! them) goes through the ordinary transaction.

use crate::store::compact::decode_delivery;
use crate::store::error::Result;
use crate::store::keys::{decode, T};
use crate::store::reads::touch;
use crate::store::records::{Campaign, CampaignStatus, DeliveryState};
use crate::store::{Store, Tx};

impl Store {
    /// [`Store::write`] for the campaign recorder: the deliveries `f`
    /// writes land one by one, then the campaigns, without a sled
    /// transaction (see the module's words on what a crash keeps). Falls
    /// back to the transaction when `f` changed anything else. Not
    /// durable until [`Store::sync`].
    pub fn write_outcomes<R>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let _guard = self.writer();
        let mut tx = Tx::new(self, false);
        let result = f(&mut tx)?;
        // Only a campaign the next open counts again may have its counters
        // land after its deliveries: a cancelled one (its copies in flight
        // are still recorded) is not recounted, so it keeps the transaction.
        let plain = !tx.campaign_not_recounted
            && tx
                .changes
                .keys()
                .all(|(t, _)| matches!(t, T::Deliveries | T::Campaigns));
        if !plain {
            self.commit(tx)?;
            return Ok(result);
        }
        if tx.changes.is_empty() {
            return Ok(result);
        }
        // Deliveries first: a crash between them and the counters leaves
        // counters behind, which the next open counts again.
        for order in [T::Deliveries, T::Campaigns] {
            let tree = self.tree(order);
            for ((t, key), value) in &tx.changes {
                if *t != order {
                    continue;
                }
                match value {
                    Some(v) => tree.insert(key.as_slice(), v.as_slice())?,
                    None => tree.remove(key.as_slice())?,
                };
            }
            #[cfg(test)]
            if order == T::Deliveries && tests::CUT.with(|cut| cut.get()) {
                anyhow::bail!("cut short after the deliveries (a test's crash)");
            }
        }
        self.inner.durable.wrote();
        if tx.other_deliveries {
            self.deliveries_moved();
        }
        Ok(result)
    }

    /// The write of a batch of frozen recipients (`campaign::recipients`):
    /// deliveries only, so it lands as [`Store::write_outcomes`] does,
    /// key by key without a transaction. A crash part way keeps some of
    /// them, and the campaign is still scheduled: the fixing runs again
    /// from the start, and first removes what it finds of the last one.
    pub fn write_frozen<R>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        self.write_outcomes(f)
    }

    /// Counts `sent`, `failed` and `skipped` again from the deliveries of
    /// every campaign that has started sending and is not finished, and
    /// writes (and syncs) those that differ: what a crash inside a
    /// recorder's write leaves behind. Returns how many were corrected.
    pub(super) fn recount_campaigns(&self) -> Result<usize> {
        let mut fixed = Vec::new();
        for kv in self.tree(T::Campaigns).iter() {
            let (_, v) = kv?;
            let c: Campaign = decode(&v)?;
            if !recounted(&c) {
                continue;
            }
            let (mut sent, mut failed, mut skipped) = (0u64, 0u64, 0u64);
            let tree = self.tree(T::Deliveries);
            for kv in tree.scan_prefix(c.id.to_be_bytes()) {
                let (k, v) = kv?;
                // A campaign of 100,000 would otherwise stay in memory.
                touch(tree, &k)?;
                match decode_delivery(&k, &v)?.state {
                    DeliveryState::Sent => sent += 1,
                    DeliveryState::Failed => failed += 1,
                    DeliveryState::Skipped => skipped += 1,
                    DeliveryState::Pending | DeliveryState::Deferred => {}
                }
            }
            if (c.sent, c.failed, c.skipped) != (sent, failed, skipped) {
                fixed.push((c.id, sent, failed, skipped));
            }
        }
        if fixed.is_empty() {
            return Ok(0);
        }
        self.write_as(|tx| {
            for &(id, sent, failed, skipped) in &fixed {
                if let Some(mut c) = tx.campaign(id)? {
                    tracing::warn!(
                        campaign = id,
                        was = %format!("{}/{}/{}", c.sent, c.failed, c.skipped),
                        now = %format!("{sent}/{failed}/{skipped}"),
                        "campaign counters (sent/failed/skipped) recounted from the deliveries: a write was cut short"
                    );
                    (c.sent, c.failed, c.skipped) = (sent, failed, skipped);
                    tx.put_campaign(&c);
                }
            }
            Ok::<_, crate::store::StoreError>(())
        })?;
        self.flush_durable()?;
        Ok(fixed.len())
    }
}

/// The campaign the recorder last read or wrote, with the bytes it was
/// decoded from or encoded to. The recorder reads its campaign once per
/// group of outcomes, and a newsletter's record holds its whole text:
/// decoding it was most of what a group's write cost beside the
/// deliveries. While the stored bytes are the ones remembered, the
/// remembered campaign is what they decode to; any other write of the
/// record (a pause, a leave counted as skipped) changes them, and the
/// next read decodes again.
#[derive(Default)]
pub struct CampaignCache {
    bytes: Vec<u8>,
    campaign: Option<Campaign>,
}

impl Tx<'_> {
    /// Campaign `id` as [`Tx::campaign`] reads it, decoded only when its
    /// bytes are not the ones `cache` remembers.
    pub fn campaign_cached(&self, id: u64, cache: &mut CampaignCache) -> Result<Option<Campaign>> {
        let key = id.to_be_bytes();
        let stored;
        let bytes: &[u8] = match self.changes.get(&(T::Campaigns, key.to_vec())) {
            Some(Some(v)) => v,
            Some(None) => return Ok(None),
            None => match self.store.tree(T::Campaigns).get(key)? {
                Some(v) => {
                    stored = v;
                    &stored
                }
                None => return Ok(None),
            },
        };
        // The remembered campaign is handed out, not copied (a
        // newsletter's holds its whole text): until `put_campaign_cached`
        // gives one back, the next read decodes.
        if cache.campaign.as_ref().is_some_and(|c| c.id == id) && cache.bytes == bytes {
            return Ok(cache.campaign.take());
        }
        let c: Campaign = decode(bytes)?;
        cache.bytes.clear();
        cache.bytes.extend_from_slice(bytes);
        cache.campaign = None;
        Ok(Some(c))
    }

    /// [`Tx::put_campaign`], remembering in `cache` what was written.
    pub fn put_campaign_cached(&mut self, c: Campaign, cache: &mut CampaignCache) {
        self.put_campaign(&c);
        if let Some(Some(v)) = self
            .changes
            .get(&(T::Campaigns, c.id.to_be_bytes().to_vec()))
        {
            cache.bytes.clear();
            cache.bytes.extend_from_slice(v);
            cache.campaign = Some(c);
        }
    }
}

/// A campaign whose counters the next open counts again from its
/// deliveries: one that has started sending and is not finished.
pub(super) fn recounted(c: &Campaign) -> bool {
    let sending = c.status == CampaignStatus::Sending
        || (c.status == CampaignStatus::Paused && c.paused_from == Some(CampaignStatus::Sending));
    c.started_at.is_some() && sending
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::Delivery;
    use crate::store::RECORD_VERSION;

    thread_local! {
        /// Makes `write_outcomes` stop after the deliveries, as a crash
        /// between them and the counters would.
        pub(super) static CUT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn delivery(campaign: u64, subscriber: u64, state: DeliveryState) -> Delivery {
        Delivery {
            v: RECORD_VERSION,
            campaign,
            subscriber,
            state,
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            done_at: None,
            bounced: false,
            warned: false,
            to: None,
        }
    }

    /// What a crash between a group's deliveries and its counters leaves
    /// is counted right at the next open; a finished campaign is left as
    /// it is.
    /// A started campaign of four recipients in `status`, `sent` of them sent.
    fn campaign(id: u64, status: &str, sent: u64) -> Campaign {
        let json = serde_json::json!({
            "v": RECORD_VERSION, "id": id, "list": "lf",
            "content": {"kind": "newsletter", "source": "x.md", "subject": "s",
                "preheader": "", "markdown": "", "title": "", "link": null,
                "attachments": []},
            "filters": [], "status": status, "paused_from": null,
            "created_at": "2026-01-01T00:00:00Z", "scheduled_at": "2026-01-01T00:00:00Z",
            "started_at": "2026-01-01T00:00:00Z", "finished_at": null,
            "total": 4, "sent": sent, "failed": 0, "skipped": 0,
        });
        match serde_json::from_value(json) {
            Ok(c) => c,
            Err(e) => panic!("a campaign record: {e}"),
        }
    }

    #[test]
    fn counters_cut_short_are_recounted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for (id, status) in [(1, "sending"), (2, "done")] {
                let c = campaign(id, status, 1);
                store
                    .write_outcomes(|tx| {
                        for (s, state) in [
                            (1, DeliveryState::Sent),
                            (2, DeliveryState::Sent),
                            (3, DeliveryState::Skipped),
                            (4, DeliveryState::Pending),
                        ] {
                            tx.put_outcome(&delivery(id, s, state));
                        }
                        tx.put_campaign(&c);
                        Ok(())
                    })
                    .unwrap();
            }
            store.sync_blocking().unwrap();
            assert_eq!(store.campaign(1).unwrap().unwrap().sent, 1);
        }
        let store = Store::open(dir.path()).unwrap();
        let c = store.campaign(1).unwrap().unwrap();
        assert_eq!((c.sent, c.failed, c.skipped), (2, 0, 1));
        let done = store.campaign(2).unwrap().unwrap();
        assert_eq!((done.sent, done.skipped), (1, 0), "a finished one stays");
        assert_eq!(store.recount_campaigns().unwrap(), 0);
    }

    /// The recorder's cached campaign is the stored one: what it wrote
    /// itself is not decoded again, and anyone else's write of the record
    /// (here a pause) is read, not hidden behind the cache.
    #[test]
    fn the_cached_campaign_follows_every_write_of_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                tx.put_campaign(&campaign(7, "sending", 0));
                Ok(())
            })
            .unwrap();
        let mut cache = CampaignCache::default();
        for round in 1..=3u64 {
            store
                .write_outcomes(|tx| {
                    let mut c = tx.campaign_cached(7, &mut cache)?.unwrap();
                    assert_eq!(c.sent, round - 1);
                    c.sent += 1;
                    tx.put_campaign_cached(c, &mut cache);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(store.campaign(7).unwrap().unwrap().sent, 3);
        // Someone else's write: the status and a counter change.
        store
            .write(|tx| {
                let mut c = tx.campaign(7)?.unwrap();
                c.status = CampaignStatus::Paused;
                c.skipped = 5;
                tx.put_campaign(&c);
                Ok(())
            })
            .unwrap();
        store
            .write_outcomes(|tx| {
                let c = tx.campaign_cached(7, &mut cache)?.unwrap();
                assert_eq!(
                    (c.status, c.sent, c.skipped),
                    (CampaignStatus::Paused, 3, 5)
                );
                assert!(tx.campaign_cached(8, &mut cache)?.is_none());
                Ok(())
            })
            .unwrap();
    }

    /// A group whose write did not land (cut short after its deliveries)
    /// leaves the cache remembering counters that were never stored: the
    /// next group reads the stored record, not the remembered one, and
    /// counts on from there.
    #[test]
    fn the_cache_does_not_outlive_a_write_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                tx.put_campaign(&campaign(7, "sending", 0));
                for s in 1..=4 {
                    tx.put_delivery(&delivery(7, s, DeliveryState::Pending));
                }
                Ok(())
            })
            .unwrap();
        let mut cache = CampaignCache::default();
        let group = |cache: &mut CampaignCache, s: u64| {
            store.write_outcomes(|tx| {
                let mut c = tx.campaign_cached(7, cache)?.unwrap();
                let before = c.sent;
                tx.put_outcome(&delivery(7, s, DeliveryState::Sent));
                c.sent += 1;
                tx.put_campaign_cached(c, cache);
                Ok(before)
            })
        };
        CUT.with(|cut| cut.set(true));
        assert!(group(&mut cache, 1).is_err());
        CUT.with(|cut| cut.set(false));
        assert_eq!(store.campaign(7).unwrap().unwrap().sent, 0);
        // The cache says 1; the store says 0, and the store wins.
        assert_eq!(group(&mut cache, 2).unwrap(), 0);
        assert_eq!(group(&mut cache, 3).unwrap(), 1);
        assert_eq!(store.campaign(7).unwrap().unwrap().sent, 2);
    }

    /// A group that falls back to the transaction (it changed a subscriber)
    /// and in which someone leaves: the commit skips their copy and counts
    /// it on the campaign after the recorder remembered its record, so what
    /// lands is not what the cache holds, and the next group reads it.
    #[test]
    fn the_cache_follows_a_skip_counted_when_the_group_commits() {
        use crate::store::records::Status;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = chrono::Utc::now();
        store
            .write(|tx| {
                for s in 1..=2 {
                    let email = format!("p{s}@x.se");
                    tx.put_subscriber(&crate::store::Subscriber::new(
                        s,
                        "lf",
                        &email,
                        "",
                        Status::Confirmed,
                        now,
                    ));
                    tx.put_delivery(&delivery(7, s, DeliveryState::Pending));
                }
                tx.put_campaign(&campaign(7, "sending", 0));
                Ok(())
            })
            .unwrap();
        let mut cache = CampaignCache::default();
        store
            .write_outcomes(|tx| {
                let mut c = tx.campaign_cached(7, &mut cache)?.unwrap();
                tx.put_outcome(&delivery(7, 1, DeliveryState::Sent));
                c.sent += 1;
                tx.put_campaign_cached(c, &mut cache);
                // Subscriber 2 leaves in the same write (a 5xx that
                // disables them would do it the same way).
                let mut s = tx.subscriber_by_id(2)?.unwrap();
                s.status = Status::Disabled;
                tx.put_subscriber(&s);
                Ok(())
            })
            .unwrap();
        let stored = store.campaign(7).unwrap().unwrap();
        assert_eq!((stored.sent, stored.skipped), (1, 1));
        store
            .write_outcomes(|tx| {
                let c = tx.campaign_cached(7, &mut cache)?.unwrap();
                assert_eq!((c.sent, c.skipped), (1, 1));
                Ok(())
            })
            .unwrap();
    }

    /// A crash between a group's deliveries and its counters leaves every
    /// campaign's counters what its deliveries say after the next open: a
    /// cancelled one too, whose copies in flight when it was cancelled are
    /// still recorded but which the open does not count again.
    #[test]
    fn a_crash_inside_an_outcome_write_leaves_no_campaign_miscounted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for (id, status) in [(1, "sending"), (2, "cancelled"), (3, "paused")] {
                store
                    .write(|tx| {
                        tx.put_campaign(&campaign(id, status, 0));
                        for s in 1..=4 {
                            tx.put_delivery(&delivery(id, s, DeliveryState::Pending));
                        }
                        Ok(())
                    })
                    .unwrap();
                let mut c = store.campaign(id).unwrap().unwrap();
                CUT.with(|cut| cut.set(true));
                let _ = store.write_outcomes(|tx| {
                    tx.put_outcome(&delivery(id, 1, DeliveryState::Sent));
                    c.sent += 1;
                    tx.put_campaign(&c);
                    Ok(())
                });
                CUT.with(|cut| cut.set(false));
            }
            store.sync_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        for id in [1, 2, 3] {
            let sent = store
                .deliveries_after(id, None, 10)
                .unwrap()
                .iter()
                .filter(|d| d.state == DeliveryState::Sent)
                .count() as u64;
            let c = store.campaign(id).unwrap().unwrap();
            assert_eq!(c.sent, sent, "campaign {id} ({:?})", c.status);
        }
    }
}
