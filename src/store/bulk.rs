//! The write of an import with consent: many subscriber records, each
//! with its id in the index, and nothing else. It lands without a sled
//! transaction (which reads every key it writes once more and stages it):
//! each id goes into the index with a compare-and-swap, which is also its
//! collision check, and the records with one `apply_batch`, in an order
//! that a crash at any point leaves readable and that an import run again
//! completes exactly once.

use std::collections::BTreeMap;

use crate::store::error::{Result, StoreError};
use crate::store::keys::*;
use crate::store::records::Subscriber;
use crate::store::{Store, Tx};

impl Store {
    /// Applies the changes `f` makes, as [`Store::write`] does, for a write
    /// of subscriber records only (an import with consent: it adds people
    /// or confirms them, so nobody stops being confirmed). Any other change
    /// is refused and nothing is written. A new id is not looked up in the
    /// index while `f` runs (`Tx::random_id`): its insert checks it.
    ///
    /// The write lands in this order (sled recovers a prefix of its log
    /// after a crash, so a crash keeps the writes before some point):
    /// 1. the tallies' marker (`TALLY_BUILT`) goes: from here until step 4
    ///    the tallies may not match the records, and a store opened
    ///    without the marker counts them again (`rebuild_tallies`, which
    ///    also drops the index entries of step 2 whose record never came);
    /// 2. each record's id into the index, by compare-and-swap: an id
    ///    taken already is drawn again (and the record re-encoded), so no
    ///    two records share one and no stored record lacks its entry (a
    ///    token names its person by id);
    /// 3. the records, in one batch: a record is what an import run
    ///    again finds there already, so each row lands once;
    /// 4. the new tallies and the marker, in one batch.
    ///
    /// Not durable until [`Store::sync`].
    pub fn write_records<R>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let _guard = self.writer();
        let mut tx = Tx::new(self, true);
        // Room for the statuses an import's write reads (a thousand rows),
        // so the map is not grown row by row.
        tx.stored.get_mut().reserve(1_024);
        let result = f(&mut tx)?;
        let records_only = tx
            .changes
            .iter()
            .all(|((t, _), v)| matches!(t, T::Subscribers | T::Ids) && v.is_some());
        let refused = || StoreError::Failed("a write of records only changed more".into());
        if !records_only {
            return Err(refused().into());
        }
        let stored = std::mem::take(&mut *tx.stored.borrow_mut());
        let (tallies, left) = self.tally_changes(&tx.changes, &stored)?;
        if !left.is_empty() {
            return Err(refused().into());
        }
        if tx.changes.is_empty() {
            return Ok(result);
        }
        self.note_subscriber_changes(&tx.changes);
        let mut ids = Vec::new();
        let mut records = BTreeMap::new();
        for ((t, key), value) in std::mem::take(&mut tx.changes) {
            let Some(value) = value else { continue };
            match t {
                T::Ids => ids.push((key, value)),
                _ => {
                    records.insert(key, value);
                }
            }
        }
        let counters = self.tree(T::Counters);
        if !tallies.is_empty() {
            counters.remove(TALLY_BUILT)?;
        }
        for (id, key) in ids {
            self.index_id(&tx, id, &key, &mut records)?;
        }
        let mut batch = sled::Batch::default();
        for (k, v) in records {
            batch.insert(k, v);
        }
        self.tree(T::Subscribers).apply_batch(batch)?;
        if !tallies.is_empty() {
            let mut batch = sled::Batch::default();
            for (k, v) in tallies {
                batch.insert(k, v);
            }
            batch.insert(TALLY_BUILT, b"1".as_slice());
            counters.apply_batch(batch)?;
        }
        self.inner.durable.wrote();
        Ok(result)
    }

    /// Puts `id` → `key` into the id index unless `id` names another
    /// record there; then draws another id for the record of `key` (in
    /// `records`, re-encoded) until one is free.
    fn index_id(
        &self,
        tx: &Tx<'_>,
        mut id: Vec<u8>,
        key: &[u8],
        records: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<()> {
        let index = self.tree(T::Ids);
        loop {
            match index.compare_and_swap(&id, None::<&[u8]>, Some(key))? {
                Ok(()) => return Ok(()),
                // The record's own entry (a pending person confirmed).
                Err(cas) if cas.current.as_deref() == Some(key) => return Ok(()),
                Err(_) => {
                    let Some(bytes) = records.get_mut(key) else {
                        return Err(StoreError::Failed("an id without its record".into()));
                    };
                    let mut s: Subscriber = decode(bytes)?;
                    s.id = tx.random_id()?;
                    *bytes = encode(&s);
                    id = s.id.to_be_bytes().to_vec();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{Status, RECORD_VERSION};
    use chrono::Utc;

    fn person(id: u64, email: &str, status: Status) -> Subscriber {
        let mut s = Subscriber::new(id, "lf", email, "Åsa", status, Utc::now());
        s.v = RECORD_VERSION;
        s
    }

    fn add(store: &Store, people: &[Subscriber]) {
        store
            .write_records(|tx| {
                for s in people {
                    tx.put_subscriber(s);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn records_land_with_their_ids_and_tallies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        add(
            &store,
            &[
                person(11, "a@example.se", Status::Confirmed),
                person(13, "b@example.se", Status::Pending),
            ],
        );
        // The pending one confirmed: its index entry is its own already.
        add(&store, &[person(13, "b@example.se", Status::Confirmed)]);
        assert_eq!(
            store.subscriber_by_id(11).unwrap().unwrap().email,
            "a@example.se"
        );
        assert_eq!(
            store.subscriber_by_id(13).unwrap().unwrap().status,
            Status::Confirmed
        );
        assert_eq!(
            store.counts("lf").unwrap().get(&Status::Confirmed),
            Some(&2)
        );
        assert_eq!(store.counts("lf").unwrap().get(&Status::Pending), None);
        assert!(store.tree(T::Counters).contains_key(TALLY_BUILT).unwrap());
    }

    /// An id already in the index for someone else is never taken over:
    /// the new record gets another, and both are found by their own.
    #[test]
    fn a_taken_id_is_drawn_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        add(&store, &[person(21, "a@example.se", Status::Confirmed)]);
        add(&store, &[person(21, "b@example.se", Status::Confirmed)]);
        assert_eq!(
            store.subscriber_by_id(21).unwrap().unwrap().email,
            "a@example.se"
        );
        let b = store.subscriber("lf", "b@example.se").unwrap().unwrap();
        assert_ne!(b.id, 21);
        assert_eq!(
            store.subscriber_by_id(b.id).unwrap().unwrap().email,
            "b@example.se"
        );
    }

    #[test]
    fn any_other_change_is_refused_and_nothing_lands() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = store.write_records(|tx| {
            tx.put_subscriber(&person(31, "a@example.se", Status::Confirmed));
            tx.remove_pending(5);
            Ok(())
        });
        assert!(r.is_err());
        assert!(store.subscriber("lf", "a@example.se").unwrap().is_none());
        // Nobody stops being confirmed in such a write either.
        add(&store, &[person(33, "c@example.se", Status::Confirmed)]);
        let r = store.write_records(|tx| {
            tx.put_subscriber(&person(33, "c@example.se", Status::Unsubscribed));
            Ok(())
        });
        assert!(r.is_err());
        let c = store.subscriber("lf", "c@example.se").unwrap().unwrap();
        assert_eq!(c.status, Status::Confirmed);
    }

    /// What a crash between the steps of `write_records` leaves (the
    /// marker gone, index entries whose record never came, one for an
    /// address whose record came later with another id, tallies behind):
    /// the next open counts the tallies again and drops those entries.
    #[test]
    fn a_crash_part_way_is_repaired_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            add(&store, &[person(41, "a@example.se", Status::Confirmed)]);
            // Steps 1 and 2 of a write that went no further.
            store.tree(T::Counters).remove(TALLY_BUILT).unwrap();
            let ids = store.tree(T::Ids);
            ids.insert(43u64.to_be_bytes(), sub_key("lf", "b@example.se"))
                .unwrap();
            ids.insert(45u64.to_be_bytes(), sub_key("lf", "c@example.se"))
                .unwrap();
            // Then a record written without the tallies (the run again
            // gave c another id; its first entry stays behind).
            let c = person(47, "c@example.se", Status::Confirmed);
            ids.insert(47u64.to_be_bytes(), sub_key("lf", "c@example.se"))
                .unwrap();
            store
                .tree(T::Subscribers)
                .insert(sub_key("lf", "c@example.se"), encode(&c))
                .unwrap();
            assert!(store.subscriber_by_id(45).unwrap().is_none(), "not c's id");
            assert_eq!(
                store.counts("lf").unwrap().get(&Status::Confirmed),
                Some(&1)
            );
            store.sync_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.counts("lf").unwrap().get(&Status::Confirmed),
            Some(&2)
        );
        let ids: Vec<u64> = store
            .tree(T::Ids)
            .iter()
            .keys()
            .map(|k| u64::from_be_bytes(k.unwrap().as_ref().try_into().unwrap()))
            .collect();
        assert_eq!(ids, [41, 47]);
        assert_eq!(
            store.subscriber_by_id(47).unwrap().unwrap().email,
            "c@example.se"
        );
    }
}
