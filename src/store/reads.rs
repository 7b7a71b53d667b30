//! The store's reads outside a write: single records by key or id,
//! listings and cursors over a list's subscribers, campaigns, their
//! deliveries and attachments, queued mail, and the suppression list.
//! None of them takes the writer lock; a read inside a write goes
//! through `Tx`, which sees the write's own changes.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use crate::address;
use crate::store::compact;
use crate::store::error::Result;
use crate::store::keys::*;
use crate::store::records::*;
use crate::store::Store;

impl Store {
    pub fn subscriber(&self, list: &str, email: &str) -> Result<Option<Subscriber>> {
        let key = sub_key(list, &address::normalize(email));
        self.tree(T::Subscribers)
            .get(key)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The subscriber `id` names. Only a record that carries the id: an
    /// index entry left by a crash inside an import's write may name an
    /// address whose record came later with another id.
    pub fn subscriber_by_id(&self, id: u64) -> Result<Option<Subscriber>> {
        let Some(key) = self.tree(T::Ids).get(id.to_be_bytes())? else {
            return Ok(None);
        };
        Ok(self
            .tree(T::Subscribers)
            .get(key)?
            .map(|v| decode::<Subscriber>(&v))
            .transpose()?
            .filter(|s| s.id == id))
    }

    /// All subscribers of `list`, in address order.
    pub fn subscribers(&self, list: &str) -> Result<Vec<Subscriber>> {
        let mut prefix = list.as_bytes().to_vec();
        prefix.push(0);
        self.tree(T::Subscribers)
            .scan_prefix(prefix)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// Counts per status for `list`, from the stored tallies (no scan).
    pub fn counts(&self, list: &str) -> Result<HashMap<Status, usize>> {
        let mut counts = HashMap::new();
        for status in Status::ALL {
            let key = tally_key(list.as_bytes(), status);
            if let Some(v) = self.tree(T::Counters).get(key)? {
                let t: Tally = decode(&v)?;
                if t.n > 0 {
                    counts.insert(status, t.n as usize);
                }
            }
        }
        Ok(counts)
    }

    pub fn pending(&self, id: u64) -> Result<Option<Pending>> {
        self.tree(T::Pending)
            .get(id.to_be_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Outgoing mails due at `now` (Unix seconds), oldest first, at most `limit`.
    pub fn due_mail(&self, now: i64, limit: usize) -> Result<Vec<OutMail>> {
        // Mail held back by the hourly caps can wait here by the thousand:
        // read only its due time, and decode the mails that are due.
        #[derive(serde::Deserialize)]
        struct Due {
            next_attempt: i64,
        }
        let mut out = Vec::new();
        for kv in self.tree(T::Outbox).iter() {
            let (k, v) = kv?;
            if serde_json::from_slice::<Due>(&v).is_ok_and(|d| d.next_attempt > now) {
                continue;
            }
            let mail: OutMail = match decode(&v) {
                Ok(m) => m,
                Err(e) => {
                    // One unreadable record must not stop all system mail.
                    tracing::error!(key = ?k, error = %e, "unreadable queued mail skipped");
                    continue;
                }
            };
            if mail.next_attempt <= now {
                out.push(mail);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn campaign(&self, id: u64) -> Result<Option<Campaign>> {
        self.tree(T::Campaigns)
            .get(id.to_be_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// All campaigns, oldest first.
    pub fn campaigns(&self) -> Result<Vec<Campaign>> {
        self.tree(T::Campaigns)
            .iter()
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// Attachment `index` of a campaign, alone (a download reads one
    /// file, not every file of the campaign).
    pub fn blob(&self, campaign: u64, index: usize) -> Result<Option<Vec<u8>>> {
        let Ok(index32) = u32::try_from(index) else {
            return Ok(None);
        };
        Ok(self
            .tree(T::Blobs)
            .get(blob_key(campaign, index32 as usize))?
            .map(|v| v.to_vec()))
    }

    /// The attachment bodies of a campaign, in order.
    pub fn blobs(&self, campaign: u64) -> Result<Vec<Vec<u8>>> {
        self.tree(T::Blobs)
            .scan_prefix(campaign.to_be_bytes())
            .map(|kv| Ok(kv?.1.to_vec()))
            .collect()
    }

    /// Up to `limit` deliveries of `campaign` after subscriber id `after`,
    /// in id order: a cursor, so a send never holds all recipients at once.
    pub fn deliveries_after(
        &self,
        campaign: u64,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let start = match after {
            Some(id) => delivery_key(campaign, id.saturating_add(1)),
            None => delivery_key(campaign, 0),
        };
        let end = delivery_key(campaign, u64::MAX);
        let mut out = Vec::new();
        let tree = self.tree(T::Deliveries);
        for kv in tree.range(start..=end) {
            let (k, v) = kv?;
            touch(tree, &k)?;
            out.push(compact::decode_delivery(&k, &v)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// One delivery, as stored.
    pub fn delivery(&self, campaign: u64, subscriber: u64) -> Result<Option<Delivery>> {
        let key = delivery_key(campaign, subscriber);
        self.tree(T::Deliveries)
            .get(&key)?
            .map(|v| compact::decode_delivery(&key, &v))
            .transpose()
    }

    /// Moves whenever a write changed a delivery other than by recording
    /// its outcome: above all when it skipped a delivery of someone who
    /// stopped being confirmed (never while the write is in flight: it
    /// moves after the write has landed, under the writer lock). A
    /// delivery read before this value was taken, and this value unmoved,
    /// is still as stored, but for the recorder's own writes.
    pub fn skip_generation(&self) -> u64 {
        self.inner.skips.load(Ordering::SeqCst)
    }

    /// Up to `limit` subscribers of `list` after the key of `after`, in
    /// address order; a cursor for streaming recipients.
    pub fn subscribers_after(
        &self,
        list: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscriber>> {
        let (prefix, start) = list_range(list, after);
        let mut out = Vec::new();
        let tree = self.tree(T::Subscribers);
        for kv in tree.range(start..) {
            let (k, v) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            touch(tree, &k)?;
            out.push(decode(&v)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Reads up to `scan` records of `list` after the address `after`, in
    /// address order, and decodes only those whose stored bytes hold every
    /// one of `needles` (lower-case ASCII, compared without ASCII case) and,
    /// with `status`, have it: a search over a big list decodes only the
    /// few records that can match. Also the address the reading ended at,
    /// the cursor of the next call; None once the list is read to its end.
    pub fn subscribers_scan(
        &self,
        list: &str,
        after: Option<&str>,
        scan: usize,
        status: Option<Status>,
        needles: &[Vec<u8>],
    ) -> Result<(Vec<Subscriber>, Option<String>)> {
        let (prefix, start) = list_range(list, after);
        let (mut out, mut read, mut last) = (Vec::new(), 0, None);
        let mut lower = Vec::new();
        for kv in self.tree(T::Subscribers).range(start..) {
            let (k, v) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            read += 1;
            if read == scan {
                last = Some(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            }
            lower.clear();
            lower.extend(v.iter().map(u8::to_ascii_lowercase));
            let holds =
                |n: &Vec<u8>| n.is_empty() || lower.windows(n.len()).any(|w| w == n.as_slice());
            if needles.iter().all(holds)
                && status.is_none_or(|st| status_of(&v).is_ok_and(|s| s == st))
            {
                out.push(decode(&v)?);
            }
            if read == scan {
                break;
            }
        }
        Ok((out, last))
    }

    /// The `n` latest joins (confirmed, by `subscribed_at`) and the `n`
    /// latest leaves (no longer confirmed, by `unsubscribed_at`) of
    /// `list`, newest first: one pass that reads only those fields of each
    /// record and decodes the few it keeps.
    pub fn latest_changes(
        &self,
        list: &str,
        n: usize,
    ) -> Result<(Vec<Subscriber>, Vec<Subscriber>)> {
        #[derive(serde::Deserialize)]
        struct Dates {
            status: Status,
            subscribed_at: Option<DateTime<Utc>>,
            unsubscribed_at: Option<DateTime<Utc>>,
        }
        let mut prefix = list.as_bytes().to_vec();
        prefix.push(0);
        let keep =
            |v: &mut Vec<(DateTime<Utc>, sled::IVec)>, at: DateTime<Utc>, key: sled::IVec| {
                if v.len() < n || v.last().is_some_and(|(t, _)| *t < at) {
                    v.push((at, key));
                    v.sort_by_key(|e| std::cmp::Reverse(e.0));
                    v.truncate(n);
                }
            };
        let (mut joins, mut leaves) = (Vec::new(), Vec::new());
        for kv in self.tree(T::Subscribers).scan_prefix(&prefix) {
            let (k, v) = kv?;
            let d: Dates = serde_json::from_slice(&v)?;
            match (d.status, d.subscribed_at, d.unsubscribed_at) {
                (Status::Confirmed, Some(at), _) => keep(&mut joins, at, k),
                (s, _, Some(at)) if s != Status::Confirmed => keep(&mut leaves, at, k),
                _ => {}
            }
        }
        let read = |v: Vec<(DateTime<Utc>, sled::IVec)>| -> Result<Vec<Subscriber>> {
            let mut out = Vec::new();
            for (_, k) in v {
                if let Some(bytes) = self.tree(T::Subscribers).get(k)? {
                    out.push(decode(&bytes)?);
                }
            }
            Ok(out)
        };
        Ok((read(joins)?, read(leaves)?))
    }

    /// Is this salted hash of an address on the suppression list?
    pub fn is_suppressed(&self, hash: &[u8]) -> Result<bool> {
        Ok(self.tree(T::Suppressed).contains_key(hash)?)
    }

    /// Is anyone on the suppression list? (An import of a million rows
    /// into a store where no one was forgotten hashes none of them.)
    pub fn any_suppressed(&self) -> Result<bool> {
        Ok(match self.tree(T::Suppressed).iter().next() {
            None => false,
            Some(first) => first.map(|_| true)?,
        })
    }

    /// The ignored-message records, oldest first.
    pub fn ignored(&self) -> Result<Vec<Ignored>> {
        self.tree(T::Ignored)
            .iter()
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// Mails given up on, with their last error (bodies dropped).
    pub fn dead_letters(&self) -> Result<Vec<OutMail>> {
        self.tree(T::Dead).iter().map(|kv| decode(&kv?.1)).collect()
    }

    /// Every mail in the queue, due or not.
    pub fn queued_mail(&self) -> Result<Vec<OutMail>> {
        self.tree(T::Outbox)
            .iter()
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// Number of system mails waiting to go out.
    pub fn outbox_len(&self) -> usize {
        self.tree(T::Outbox).len()
    }
}

/// Reads `key` once more, so that sled's cache counts the page it is on.
///
/// sled 0.34 evicts from one of its 256 cache shards only after 64
/// accesses to that shard, and a range scan accesses each leaf page once:
/// one full scan of a big tree leaves every page of it in memory, whatever
/// `cache_capacity` says (100,000 subscribers: 65 MB). A point read per
/// record makes the accesses the cache needs to keep to its capacity while
/// the scan goes on; the page is in memory already, so it costs well under
/// a microsecond.
pub(super) fn touch(tree: &sled::Tree, key: &[u8]) -> Result<()> {
    tree.get(key)?;
    Ok(())
}

/// The key prefix of `list`'s subscriber records, and the key a read in
/// address order starts at: just after `after`, or the list's first.
pub(super) fn list_range(list: &str, after: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let mut prefix = list.as_bytes().to_vec();
    prefix.push(0);
    let start = match after {
        Some(email) => {
            let mut k = sub_key(list, email);
            k.push(0);
            k
        }
        None => prefix.clone(),
    };
    (prefix, start)
}
