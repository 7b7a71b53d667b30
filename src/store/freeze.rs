//! Fixing a campaign's recipients, the store's half: a list read in
//! address order with only what a pending delivery needs decoded
//! ([`Candidate`]), the frozen recipients held in one buffer
//! ([`FrozenRun`]) to be written in subscriber-id order, and a
//! [`SubscriberWatch`] that says whose record changed after the reading.
//!
//! Part of `store`. A delivery's key is its campaign and subscriber id,
//! and ids are random, while the list is read in address order: written
//! as read, each delivery lands on a random leaf of the `deliveries`
//! tree, and once the campaign's deliveries outgrow sled's cache each
//! insert first reads its leaf back from the log (100,000 recipients:
//! about 20 µs each). Sorted by id they append to the last leaves.
//! Reading a subscriber by id instead is as random, on the other side.
//!
//! The reading happens outside the writer lock, so someone may leave (or
//! change) between it and the write of their delivery. The watch, begun
//! before the reading, records every subscriber record a write changes
//! (under the writer lock, in `Store::commit` and `Store::write_records`);
//! [`Tx::put_frozen`] refuses an entry whose record changed, and the
//! caller reads that one again under the lock. A watch keeps at most
//! [`WATCH_KEYS`] of them (an import of a million rows may run beside a
//! fixing): past that it forgets them all and refuses every entry, so
//! each one is read again under the lock, slower but as right.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::store::compact::encode_pending_into;
use crate::store::error::{Result, StoreError};
use crate::store::keys::{delivery_key, T};
use crate::store::reads::{list_range, touch};
use crate::store::records::{Status, RECORD_VERSION};
use crate::store::{Store, Tx};

/// What fixing a campaign's recipients reads of a subscriber record:
/// the address and name borrowed from its stored bytes where they hold
/// no JSON escape; the attributes are copied (serde borrows a `Cow` only
/// as a field of its own, not inside a map).
pub struct Candidate<'a> {
    pub id: u64,
    pub status: Status,
    pub digest: bool,
    pub email: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub attributes: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    key_hash: u64,
}

impl Candidate<'_> {
    /// The value of attribute `name`, if set.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(|v| v.as_ref())
    }
}

#[derive(Deserialize)]
struct Lean<'a> {
    v: u32,
    id: u64,
    #[serde(borrow)]
    email: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    status: Status,
    #[serde(default, borrow)]
    attributes: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(default)]
    digest: bool,
}

/// The most changed records a [`SubscriberWatch`] holds; past it the
/// watch says that every record changed. 7/8 of 2^16: the most a set of
/// 65,536 slots holds before it grows, so a watch's set stays under
/// 0.6 MB (8 bytes and a control byte a slot).
pub const WATCH_KEYS: usize = 57_344;

/// What a [`SubscriberWatch`] has seen change since it began.
pub(super) struct Changed {
    keys: HashSet<u64>,
    /// More than its limit changed: every record counts as changed.
    all: bool,
    limit: usize,
}

impl Changed {
    fn new(limit: usize) -> Changed {
        Changed {
            keys: HashSet::new(),
            all: false,
            limit,
        }
    }

    fn note(&mut self, h: u64) {
        if self.all {
            return;
        }
        if self.keys.len() >= self.limit && !self.keys.contains(&h) {
            self.all = true;
            self.keys = HashSet::new();
            return;
        }
        self.keys.insert(h);
    }

    fn saw(&self, h: u64) -> bool {
        self.all || self.keys.contains(&h)
    }
}

/// The hash a watch records a subscriber key by. Two keys with one hash
/// only cost a read again.
fn key_hash(key: &[u8]) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

impl Store {
    /// Reads up to `limit` subscriber records of `list` after the address
    /// `after`, in address order, and hands each to `f` decoded as far as
    /// fixing recipients needs. Returns the address the reading ended at,
    /// the cursor of the next call; None once the list is read to its end.
    /// Outside the writer lock: see [`Store::watch_subscribers`].
    pub fn candidates_after(
        &self,
        list: &str,
        after: Option<&str>,
        limit: usize,
        mut f: impl FnMut(Candidate<'_>),
    ) -> Result<Option<String>> {
        let (prefix, start) = list_range(list, after);
        let tree = self.tree(T::Subscribers);
        let (mut read, mut last) = (0, None);
        for kv in tree.range(start..) {
            let (k, v) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            touch(tree, &k)?;
            let lean: Lean<'_> = serde_json::from_slice(&v)?;
            if lean.v > RECORD_VERSION {
                return Err(StoreError::TooNew {
                    found: lean.v,
                    supported: RECORD_VERSION,
                });
            }
            f(Candidate {
                id: lean.id,
                status: lean.status,
                digest: lean.digest,
                email: lean.email,
                name: lean.name,
                attributes: lean.attributes,
                key_hash: key_hash(&k),
            });
            read += 1;
            if read == limit {
                last = Some(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
                break;
            }
        }
        Ok(last)
    }

    /// Starts recording which subscriber records change from now on (any
    /// write that changes or removes one), until the watch is dropped; at
    /// most `limit` of them ([`WATCH_KEYS`]), past which it says that
    /// every record changed.
    pub fn watch_subscribers(&self, limit: usize) -> SubscriberWatch {
        let changed = Arc::new(Mutex::new(Changed::new(limit)));
        // Under the writer lock: every write lands either before the
        // watch began, or is recorded by it.
        let _guard = self.writer();
        lock(&self.inner.watches).push(changed.clone());
        SubscriberWatch {
            store: self.clone(),
            changed,
        }
    }

    /// Records the subscriber keys among `changes` in every watch. Under
    /// the writer lock, before the changes land.
    pub(super) fn note_subscriber_changes(
        &self,
        changes: &BTreeMap<(T, Vec<u8>), Option<Vec<u8>>>,
    ) {
        let watches = lock(&self.inner.watches);
        if watches.is_empty() {
            return;
        }
        for ((t, key), _) in changes.range((T::Subscribers, Vec::new())..) {
            if *t != T::Subscribers {
                break;
            }
            let h = key_hash(key);
            for w in watches.iter() {
                lock(w).note(h);
            }
        }
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// See [`Store::watch_subscribers`].
pub struct SubscriberWatch {
    store: Store,
    changed: Arc<Mutex<Changed>>,
}

impl SubscriberWatch {
    fn saw(&self, key_hash: u64) -> bool {
        lock(&self.changed).saw(key_hash)
    }

    /// True if any subscriber record changed since the watch began (a
    /// watch of limit 0 keeps no keys, only this). Read under the writer
    /// lock, it covers every write that landed before.
    pub fn saw_any(&self) -> bool {
        let changed = lock(&self.changed);
        changed.all || !changed.keys.is_empty()
    }
}

impl Drop for SubscriberWatch {
    fn drop(&mut self) {
        lock(&self.store.inner.watches).retain(|w| !Arc::ptr_eq(w, &self.changed));
    }
}

/// Frozen recipients, each a pending delivery encoded as stored, in one
/// buffer: sorted by subscriber id and written in that order.
#[derive(Default)]
pub struct FrozenRun {
    entries: Vec<RunEntry>,
    bytes: Vec<u8>,
}

struct RunEntry {
    id: u64,
    key_hash: u64,
    start: usize,
    end: usize,
}

/// One recipient of a [`FrozenRun`].
pub struct FrozenEntry<'a> {
    pub id: u64,
    key_hash: u64,
    bytes: &'a [u8],
}

impl FrozenRun {
    /// Adds `c` as a pending delivery.
    pub fn push(&mut self, c: &Candidate<'_>) {
        let start = self.bytes.len();
        encode_pending_into(
            &mut self.bytes,
            &c.email,
            &c.name,
            c.attributes.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
        );
        self.entries.push(RunEntry {
            id: c.id,
            key_hash: c.key_hash,
            start,
            end: self.bytes.len(),
        });
    }

    /// How many recipients it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// About the memory it fills, in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len() + self.entries.len() * std::mem::size_of::<RunEntry>()
    }

    /// Puts the recipients in subscriber-id order.
    pub fn sort(&mut self) {
        self.entries.sort_unstable_by_key(|e| e.id);
    }

    /// Recipient `i`.
    pub fn entry(&self, i: usize) -> FrozenEntry<'_> {
        let e = &self.entries[i];
        FrozenEntry {
            id: e.id,
            key_hash: e.key_hash,
            bytes: &self.bytes[e.start..e.end],
        }
    }

    /// Empties it, and lets its memory go.
    pub fn clear(&mut self) {
        *self = FrozenRun::default();
    }
}

impl Tx<'_> {
    /// Writes `e`'s pending delivery for `campaign`, unless their
    /// subscriber record changed since `watch` began: then nothing, and
    /// false (the caller reads them again, under this write's lock).
    pub fn put_frozen(
        &mut self,
        campaign: u64,
        e: &FrozenEntry<'_>,
        watch: &SubscriberWatch,
    ) -> bool {
        if watch.saw(e.key_hash) {
            return false;
        }
        self.other_deliveries = true;
        self.changes.insert(
            (T::Deliveries, delivery_key(campaign, e.id)),
            Some(e.bytes.to_vec()),
        );
        true
    }

    /// Removes up to `limit` deliveries of `campaign` (a fixing begun
    /// again after a crash or a pause drops what the last one wrote).
    /// Returns how many.
    pub fn remove_deliveries(&mut self, campaign: u64, limit: usize) -> Result<usize> {
        let mut n = 0;
        for k in self
            .store
            .tree(T::Deliveries)
            .scan_prefix(campaign.to_be_bytes())
            .keys()
        {
            if n == limit {
                break;
            }
            self.other_deliveries = true;
            self.changes.insert((T::Deliveries, k?.to_vec()), None);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::Subscriber;
    use chrono::Utc;

    fn person(id: u64, email: &str, status: Status) -> Subscriber {
        let mut s = Subscriber::new(id, "lf", email, "Åsa \"Ö\"", status, Utc::now());
        s.attributes.insert("region".into(), "Jämtland".into());
        s
    }

    #[test]
    fn candidates_read_in_address_order_and_freeze_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                tx.put_subscriber(&person(30, "c@x.se", Status::Confirmed));
                tx.put_subscriber(&person(10, "a@x.se", Status::Confirmed));
                tx.put_subscriber(&person(20, "b@x.se", Status::Unsubscribed));
                Ok(())
            })
            .unwrap();
        let mut seen = Vec::new();
        let mut run = FrozenRun::default();
        let last = store
            .candidates_after("lf", None, 2, |c| {
                seen.push((c.id, c.status, c.attribute("region").map(String::from)));
                run.push(&c);
            })
            .unwrap();
        assert_eq!(last.as_deref(), Some("b@x.se"));
        let last = store
            .candidates_after("lf", last.as_deref(), 2, |c| {
                seen.push((c.id, c.status, None));
                run.push(&c);
            })
            .unwrap();
        assert_eq!(last, None);
        assert_eq!(
            seen,
            [
                (10, Status::Confirmed, Some("Jämtland".into())),
                (20, Status::Unsubscribed, Some("Jämtland".into())),
                (30, Status::Confirmed, None)
            ]
        );
        run.sort();
        let watch = store.watch_subscribers(WATCH_KEYS);
        store
            .write(|tx| {
                for i in 0..run.len() {
                    assert!(tx.put_frozen(7, &run.entry(i), &watch));
                }
                Ok(())
            })
            .unwrap();
        let d = store.delivery(7, 10).unwrap().unwrap();
        let to = d.to.unwrap();
        assert_eq!(
            (to.email.as_str(), to.name.as_str()),
            ("a@x.se", "Åsa \"Ö\"")
        );
        assert_eq!(to.attributes["region"], "Jämtland");
        assert_eq!(store.deliveries_after(7, None, 10).unwrap().len(), 3);
        store.write(|tx| Ok(tx.remove_deliveries(7, 2)?)).unwrap();
        assert_eq!(store.deliveries_after(7, None, 10).unwrap().len(), 1);
    }

    /// A store with `people` confirmed in list "lf", and the run they
    /// are read into.
    fn read_confirmed(people: &[(u64, &str)]) -> (tempfile::TempDir, Store, FrozenRun) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                for &(id, e) in people {
                    tx.put_subscriber(&person(id, e, Status::Confirmed));
                }
                Ok(())
            })
            .unwrap();
        let mut run = FrozenRun::default();
        store
            .candidates_after("lf", None, 10, |c| run.push(&c))
            .unwrap();
        (dir, store, run)
    }

    #[test]
    fn a_watch_sees_every_record_changed_after_it_began() {
        let (_dir, store, run) = read_confirmed(&[(1, "a@x.se"), (2, "b@x.se"), (3, "c@x.se")]);
        let before = store.watch_subscribers(WATCH_KEYS);
        // Changed by an ordinary write, and by an import's.
        store
            .write(|tx| {
                tx.put_subscriber(&person(1, "a@x.se", Status::Unsubscribed));
                Ok(())
            })
            .unwrap();
        store
            .write_records(|tx| {
                let mut s = person(3, "C@x.se", Status::Confirmed);
                s.name = "Ny".into();
                tx.put_subscriber(&s);
                Ok(())
            })
            .unwrap();
        let after = store.watch_subscribers(WATCH_KEYS);
        let put = |watch: &SubscriberWatch| {
            store
                .write(|tx| {
                    Ok((0..run.len())
                        .filter(|&i| tx.put_frozen(9, &run.entry(i), watch))
                        .map(|i| run.entry(i).id)
                        .collect::<Vec<_>>())
                })
                .unwrap()
        };
        assert_eq!(put(&before), [2]);
        assert_eq!(put(&after), [1, 2, 3], "changes before it began");
        drop(before);
        drop(after);
        assert!(lock(&store.inner.watches).is_empty());
    }

    /// Past its limit a watch lets its keys go and refuses everyone,
    /// also the records that never changed.
    #[test]
    fn a_watch_past_its_limit_refuses_every_entry() {
        let (_dir, store, run) =
            read_confirmed(&[(1, "a@x.se"), (2, "b@x.se"), (3, "c@x.se"), (4, "d@x.se")]);
        let watch = store.watch_subscribers(2);
        let change = |id: u64, e: &str| {
            store
                .write(|tx| {
                    tx.put_subscriber(&person(id, e, Status::Unsubscribed));
                    Ok(())
                })
                .unwrap()
        };
        let put = || {
            store
                .write(|tx| {
                    Ok((0..run.len())
                        .filter(|&i| tx.put_frozen(9, &run.entry(i), &watch))
                        .map(|i| run.entry(i).id)
                        .collect::<Vec<_>>())
                })
                .unwrap()
        };
        change(1, "a@x.se");
        change(1, "a@x.se");
        change(2, "b@x.se");
        assert_eq!(put(), [3, 4], "two changed records, within the limit");
        assert_eq!(lock(&watch.changed).keys.len(), 2);
        change(3, "c@x.se");
        assert_eq!(put(), Vec::<u64>::new(), "past it: everyone");
        assert!(lock(&watch.changed).keys.is_empty(), "its keys let go");
        change(4, "d@x.se");
        assert!(lock(&watch.changed).keys.is_empty(), "and none kept after");
        assert_eq!(put(), Vec::<u64>::new());
    }
}
