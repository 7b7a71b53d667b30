//! The per-list, per-status tallies (`lists`, `/metrics`): counted once
//! for a store that has none, and kept by every write, which adds the
//! change it makes to them in the same commit.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::store::error::Result;
use crate::store::keys::*;
use crate::store::records::*;
use crate::store::Store;

impl Store {
    /// Counts every list's subscribers afresh and stores the tallies. Run
    /// once on a store written before tallies existed, after a restore, and
    /// after a crash inside an import's write (`Store::write_records`),
    /// which may also have left id index entries whose record never
    /// landed: those go here.
    pub(super) fn rebuild_tallies(&self) -> Result<()> {
        let _guard = self.writer();
        let counters = self.tree(T::Counters);
        // The marker goes first and comes back last: a crash in between
        // leaves a store that is counted again at the next open.
        counters.remove(TALLY_BUILT)?;
        for kv in counters.scan_prefix(TALLY_PREFIX) {
            counters.remove(kv?.0)?;
        }
        let ids = self.tree(T::Ids);
        for kv in ids.iter() {
            let (id, key) = kv?;
            let named = match self.tree(T::Subscribers).get(&key)? {
                Some(record) => id_of(&record)?.0.to_be_bytes() == *id,
                None => false,
            };
            if !named {
                ids.remove(id)?;
            }
        }
        let mut tallies: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        for kv in self.tree(T::Subscribers).iter() {
            let (k, v) = kv?;
            *tallies
                .entry(tally_key(list_of_key(&k), status_of(&v)?))
                .or_default() += 1;
        }
        for (k, n) in tallies {
            counters.insert(
                k,
                encode(&Tally {
                    v: RECORD_VERSION,
                    n,
                }),
            )?;
        }
        counters.insert(TALLY_BUILT, b"1".as_slice())?;
        self.flush_durable()?;
        Ok(())
    }

    /// The tally changes that `changes` makes, as counters-tree writes,
    /// and the people (subscriber id, and the time of the change when the
    /// record says) who stop being confirmed in them.
    /// Runs under the writer lock, so the tree holds the state before them.
    /// `stored` holds the stored status of the keys the write read already
    /// (`Tx::subscriber`), so an import reads each record once, not twice.
    #[allow(clippy::type_complexity)]
    pub(super) fn tally_changes(
        &self,
        changes: &BTreeMap<(T, Vec<u8>), Option<Vec<u8>>>,
        stored: &HashMap<Vec<u8>, Option<Status>>,
    ) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, Vec<(u64, Option<DateTime<Utc>>)>)> {
        let mut delta: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut left = Vec::new();
        for ((t, key), new_bytes) in changes {
            if *t != T::Subscribers {
                continue;
            }
            let list = list_of_key(key);
            let old = match stored.get(key) {
                Some(status) => *status,
                None => {
                    let old = self.tree(T::Subscribers).get(key)?;
                    old.as_deref().map(status_of).transpose()?
                }
            };
            let new = new_bytes.as_deref().map(status_of).transpose()?;
            if old == new {
                continue;
            }
            if old == Some(Status::Confirmed) {
                // The id from the new record, or from the stored one when
                // the record goes.
                match new_bytes.as_deref() {
                    Some(b) => left.push(id_of(b)?),
                    None => {
                        if let Some(bytes) = self.tree(T::Subscribers).get(key)? {
                            left.push((id_of(&bytes)?.0, None));
                        }
                    }
                }
            }
            if let Some(s) = old {
                *delta.entry(tally_key(list, s)).or_default() -= 1;
            }
            if let Some(s) = new {
                *delta.entry(tally_key(list, s)).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for (k, d) in delta {
            if d == 0 {
                continue;
            }
            let current = match self.tree(T::Counters).get(&k)? {
                Some(v) => decode::<Tally>(&v)?.n,
                None => 0,
            };
            let n = (current + d).max(0);
            out.push((
                k,
                encode(&Tally {
                    v: RECORD_VERSION,
                    n,
                }),
            ));
        }
        Ok((out, left))
    }
}
