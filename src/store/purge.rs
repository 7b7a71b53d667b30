//! Housekeeping: what `purge_stale` removes once it can no longer be
//! used (old confirmations, people who never confirmed, past days'
//! rate counters).

use chrono::{DateTime, Utc};

use crate::store::error::{Result, StoreError};
use crate::store::keys::*;
use crate::store::records::*;
use crate::store::Store;

impl Store {
    /// Housekeeping: removes confirmations issued before `cutoff` (Unix
    /// seconds), subscribers still `pending` from before it (their token can
    /// no longer be used, and a stranger's address should not linger), and
    /// rate counters of past days. Returns how many records went.
    pub fn purge_stale(
        &self,
        cutoff: u32,
        unconfirmed_cutoff: u32,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let mut stale = Vec::new();
        for kv in self.tree(T::Pending).iter() {
            let (k, v) = kv?;
            let p: Pending = decode(&v)?;
            if p.issued < cutoff {
                stale.push((T::Pending, k.to_vec()));
            }
        }
        // Only a list with pending people needs the scan (the tallies say).
        let mut any_pending = false;
        for kv in self.tree(T::Counters).scan_prefix(TALLY_PREFIX) {
            let (k, v) = kv?;
            if k.ends_with(b"\0pending") && decode::<Tally>(&v)?.n > 0 {
                any_pending = true;
                break;
            }
        }
        let subscribers = self.tree(T::Subscribers);
        let all = if any_pending {
            subscribers.iter()
        } else {
            // An empty range: nothing to read.
            subscribers.range::<&[u8], _>(&[][..]..&[][..])
        };
        for kv in all {
            let (k, v) = kv?;
            if status_of(&v)? != Status::Pending {
                continue;
            }
            let s: Subscriber = decode(&v)?;
            if s.status == Status::Pending
                && s.created_at.timestamp() < i64::from(unconfirmed_cutoff)
            {
                stale.push((T::Subscribers, k.to_vec()));
                stale.push((T::Ids, s.id.to_be_bytes().to_vec()));
            }
        }
        let today = day_of(now);
        for kv in self.tree(T::Counters).iter() {
            let (k, v) = kv?;
            if k.starts_with(b"\0") {
                // Tallies, not rate counters.
                continue;
            }
            let c: Counter = decode(&v)?;
            if c.day < today {
                stale.push((T::Counters, k.to_vec()));
            }
        }
        let n = stale.len();
        // Under the writer lock each record is checked again, so a
        // confirmation that lands meanwhile is not lost.
        self.write_as(|tx| {
            for (t, k) in stale {
                if t == T::Subscribers {
                    let still: Option<Subscriber> = tx.get(t, &k)?;
                    if still.is_none_or(|s| s.status != Status::Pending) {
                        continue;
                    }
                }
                tx.changes.insert((t, k), None);
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(n)
    }
}
