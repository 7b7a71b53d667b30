//! One atomic write: what a `Store::write` closure may read and change.

use crate::address;
use crate::store::compact::{decode_delivery, encode_delivery};
use crate::store::error::Result;
use crate::store::keys::{
    blob_key, day_of, decode, delivery_key, encode, encode_sized, sub_key, Counter, T,
};
use crate::store::records::{
    Campaign, Delivery, DeliveryState, Ignored, Led, OutMail, Pending, Status, Subscriber,
    MAX_IGNORED, RECORD_VERSION,
};
use crate::store::Store;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// The changes of one [`Store::write`]; reads see the changes made so far.
pub struct Tx<'s> {
    pub(super) store: &'s Store,
    pub(super) changes: BTreeMap<(T, Vec<u8>), Option<Vec<u8>>>,
    /// The stored status (None: no record) of each subscriber key read
    /// from the tree by this write: the tallies need the status before
    /// the write, and need not read the record again for it.
    pub(super) stored: RefCell<HashMap<Vec<u8>, Option<Status>>>,
    /// A new id is checked against the id index when the write lands, by
    /// the index insert itself (`Store::write_records`), not here.
    pub(super) ids_at_commit: bool,
    /// A delivery changed other than by recording its outcome
    /// ([`Tx::put_outcome`]): the store's skip generation moves when this
    /// write lands, so a copy in flight is read again.
    pub(super) other_deliveries: bool,
    /// A campaign record written that the next open would not recount
    /// (`outcomes::recounted`): its counters must land with its
    /// deliveries, so `Store::write_outcomes` keeps the transaction.
    pub(super) campaign_not_recounted: bool,
}

impl<'s> Tx<'s> {
    /// An empty write on `store`; `ids_at_commit` as the field says.
    pub(super) fn new(store: &'s Store, ids_at_commit: bool) -> Tx<'s> {
        Tx {
            store,
            changes: BTreeMap::new(),
            stored: Default::default(),
            ids_at_commit,
            other_deliveries: false,
            campaign_not_recounted: false,
        }
    }
}

impl Tx<'_> {
    pub(super) fn get<R: DeserializeOwned>(&self, t: T, key: &[u8]) -> Result<Option<R>> {
        if let Some(change) = self.changes.get(&(t, key.to_vec())) {
            return change.as_deref().map(decode).transpose();
        }
        self.store.tree(t).get(key)?.map(|v| decode(&v)).transpose()
    }

    pub fn subscriber(&self, list: &str, email: &str) -> Result<Option<Subscriber>> {
        // `sub_key` lowers the whole address, so of `address::normalize`
        // only its trimming changes the key.
        let key = sub_key(list, address::trimmed(email));
        if let Some(change) = self.changes.get(&(T::Subscribers, key.clone())) {
            return change.as_deref().map(decode).transpose();
        }
        let found: Option<Subscriber> = self
            .store
            .tree(T::Subscribers)
            .get(&key)?
            .map(|v| decode(&v))
            .transpose()?;
        self.stored
            .borrow_mut()
            .insert(key, found.as_ref().map(|s| s.status));
        Ok(found)
    }

    pub fn subscriber_by_id(&self, id: u64) -> Result<Option<Subscriber>> {
        let key = match self.changes.get(&(T::Ids, id.to_be_bytes().to_vec())) {
            Some(Some(k)) => k.clone(),
            Some(None) => return Ok(None),
            None => match self.store.tree(T::Ids).get(id.to_be_bytes())? {
                Some(k) => k.to_vec(),
                None => return Ok(None),
            },
        };
        Ok(self
            .get::<Subscriber>(T::Subscribers, &key)?
            .filter(|s| s.id == id))
    }

    pub fn put_subscriber(&mut self, s: &Subscriber) {
        let key = sub_key(&s.list, &s.email);
        self.changes
            .insert((T::Ids, s.id.to_be_bytes().to_vec()), Some(key.clone()));
        self.changes.insert(
            (T::Subscribers, key),
            Some(encode_sized(s, s.encoded_size())),
        );
    }

    pub fn pending(&self, id: u64) -> Result<Option<Pending>> {
        self.get(T::Pending, &id.to_be_bytes())
    }

    pub fn put_pending(&mut self, p: &Pending) {
        self.changes
            .insert((T::Pending, p.id.to_be_bytes().to_vec()), Some(encode(p)));
    }

    pub fn remove_pending(&mut self, id: u64) {
        self.changes
            .insert((T::Pending, id.to_be_bytes().to_vec()), None);
    }

    pub fn next_id(&self) -> Result<u64> {
        self.store.next_id()
    }

    /// A random id for records that tokens name, so a token reveals
    /// nothing about how many records exist.
    pub fn random_id(&self) -> Result<u64> {
        loop {
            let id = rand::random::<u64>() | 1;
            let mut key = (T::Pending, id.to_be_bytes().to_vec());
            let mut taken = self.changes.contains_key(&key);
            key.0 = T::Ids;
            taken = taken
                || self.changes.contains_key(&key)
                || self.store.tree(T::Pending).contains_key(id.to_be_bytes())?
                || (!self.ids_at_commit
                    && self.store.tree(T::Ids).contains_key(id.to_be_bytes())?);
            if !taken {
                return Ok(id);
            }
        }
    }

    pub fn campaign(&self, id: u64) -> Result<Option<Campaign>> {
        self.get(T::Campaigns, &id.to_be_bytes())
    }

    /// Writes a campaign. A cancelled post (rejected, expired undecided,
    /// or cancelled by an admin) is discarded: its raw bytes go with it,
    /// wherever the cancellation came from.
    pub fn put_campaign(&mut self, c: &Campaign) {
        self.campaign_not_recounted |= !crate::store::outcomes::recounted(c);
        if c.post.is_some() && c.status == crate::store::CampaignStatus::Cancelled {
            self.remove_blob(c.id, 0);
        }
        self.changes
            .insert((T::Campaigns, c.id.to_be_bytes().to_vec()), Some(encode(c)));
    }

    /// Counts what a copy of campaign `id` led to; nothing when there is
    /// no such campaign (a token from before a restore, or a probe's).
    pub fn count_outcome(&mut self, id: u64, led: Led) -> Result<()> {
        if let Some(mut c) = self.campaign(id)? {
            let n = match led {
                Led::Bounce => &mut c.outcome.bounced,
                Led::Unsubscribe => &mut c.outcome.unsubscribed,
                Led::Reply => &mut c.outcome.replies,
            };
            *n += 1;
            self.put_campaign(&c);
        }
        Ok(())
    }

    /// Deletes a campaign's blob `index`.
    pub fn remove_blob(&mut self, campaign: u64, index: usize) {
        self.changes
            .insert((T::Blobs, blob_key(campaign, index)), None);
    }

    pub fn put_blob(&mut self, campaign: u64, index: usize, data: &[u8]) {
        self.changes
            .insert((T::Blobs, blob_key(campaign, index)), Some(data.to_vec()));
    }

    pub fn delivery(&self, campaign: u64, subscriber: u64) -> Result<Option<Delivery>> {
        let key = delivery_key(campaign, subscriber);
        if let Some(change) = self.changes.get(&(T::Deliveries, key.clone())) {
            return change
                .as_deref()
                .map(|b| decode_delivery(&key, b))
                .transpose();
        }
        self.store
            .tree(T::Deliveries)
            .get(&key)?
            .map(|v| decode_delivery(&key, &v))
            .transpose()
    }

    /// Writes a delivery in its binary form (`store::compact`).
    pub fn put_delivery(&mut self, d: &Delivery) {
        self.other_deliveries = true;
        self.put_outcome(d);
    }

    /// Writes a delivery as the campaign recorder does: the outcome of a
    /// copy the worker dispatched. Unlike [`Tx::put_delivery`] it does not
    /// move the skip generation, so the worker's other copies in flight
    /// are not read again for it (no other write has changed them).
    pub(crate) fn put_outcome(&mut self, d: &Delivery) {
        self.changes.insert(
            (T::Deliveries, delivery_key(d.campaign, d.subscriber)),
            Some(encode_delivery(d)),
        );
    }

    /// Up to `limit` subscribers of `list` after the address `after`, as
    /// stored before this write (see [`Store::subscribers_after`]). Under
    /// the writer lock, so nobody's status changes until this write lands.
    pub fn subscribers_after(
        &self,
        list: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscriber>> {
        self.store.subscribers_after(list, after, limit)
    }

    /// Everyone in `left` (subscriber id, and when) stopped being
    /// confirmed in this write: their copies still to send are dropped.
    /// In a campaign that has started, an unsent delivery becomes skipped
    /// (counted in `skipped`); in one whose recipients are still being
    /// fixed it goes (the fixing reads the list again); in a finished one
    /// it stays as it is. Either way the frozen copy of their address goes.
    /// Returns true when a delivery became skipped.
    pub(super) fn drop_deliveries_of(
        &mut self,
        left: &[(u64, Option<DateTime<Utc>>)],
    ) -> Result<bool> {
        if left.is_empty() {
            return Ok(false);
        }
        let mut campaigns = Vec::new();
        for k in self.store.tree(T::Campaigns).iter().keys() {
            let k = k?;
            if let Ok(id) = <[u8; 8]>::try_from(k.as_ref()) {
                campaigns.push(u64::from_be_bytes(id));
            }
        }
        let mut skipped = false;
        for &(id, at) in left {
            for &cid in &campaigns {
                let Some(mut d) = self.delivery(cid, id)? else {
                    continue;
                };
                if d.state.is_final() && d.to.is_none() {
                    continue;
                }
                let Some(mut c) = self.campaign(cid)? else {
                    continue;
                };
                if c.started_at.is_none() && !c.status.is_final() {
                    self.other_deliveries = true;
                    self.changes
                        .insert((T::Deliveries, delivery_key(cid, id)), None);
                    continue;
                }
                if !d.state.is_final() && !c.status.is_final() {
                    d.state = DeliveryState::Skipped;
                    d.done_at = at;
                    c.skipped += 1;
                    self.put_campaign(&c);
                    skipped = true;
                }
                d.to = None;
                self.put_delivery(&d);
            }
        }
        Ok(skipped)
    }

    /// Drops the frozen recipient from every delivery of `campaign` (one
    /// that will never be sent: it was cancelled). Their state stays.
    pub fn drop_frozen(&mut self, campaign: u64) -> Result<()> {
        let prefix = campaign.to_be_bytes();
        let mut keys = Vec::new();
        for kv in self.store.tree(T::Deliveries).scan_prefix(prefix) {
            let (k, _) = kv?;
            keys.push(k.to_vec());
        }
        for ((t, k), v) in self.changes.range((T::Deliveries, prefix.to_vec())..) {
            if *t != T::Deliveries || !k.starts_with(&prefix) {
                break;
            }
            if v.is_some() {
                keys.push(k.clone());
            }
        }
        for k in keys {
            let Some(bytes) = self.get_raw(T::Deliveries, &k)? else {
                continue;
            };
            let mut d = decode_delivery(&k, &bytes)?;
            if d.to.take().is_some() {
                self.put_delivery(&d);
            }
        }
        Ok(())
    }

    fn get_raw(&self, t: T, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(change) = self.changes.get(&(t, key.to_vec())) {
            return Ok(change.clone());
        }
        Ok(self.store.tree(t).get(key)?.map(|v| v.to_vec()))
    }

    /// How many deliveries `campaign` has, with this write's changes.
    pub fn delivery_count(&self, campaign: u64) -> Result<u64> {
        let prefix = campaign.to_be_bytes();
        let tree = self.store.tree(T::Deliveries);
        let mut n = 0u64;
        for k in tree.scan_prefix(prefix).keys() {
            let k = k?;
            // Counted by sled's cache, or a campaign of 100,000 stays in
            // memory (`reads::touch`): the peak RSS of a send was here.
            crate::store::reads::touch(tree, &k)?;
            if !matches!(self.changes.get(&(T::Deliveries, k.to_vec())), Some(None)) {
                n += 1;
            }
        }
        for ((t, k), v) in self.changes.range((T::Deliveries, prefix.to_vec())..) {
            if *t != T::Deliveries || !k.starts_with(&prefix) {
                break;
            }
            if v.is_some() && !tree.contains_key(k)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Erases every record that holds `email` (subscriptions in every list,
    /// pending confirmations, queued mail to them, ignored-message records
    /// from them, the day's budgets and notes under it) and puts `hash` on the suppression list. Returns how many
    /// records went.
    pub fn forget(&mut self, email: &str, hash: &[u8], at: DateTime<Utc>) -> Result<usize> {
        let wanted = email.to_lowercase();
        let mut n = 0;
        let mut ids = Vec::new();
        for kv in self.store.tree(T::Subscribers).iter() {
            let (k, v) = kv?;
            let s: Subscriber = decode(&v)?;
            if s.email.to_lowercase() == wanted {
                ids.push(s.id);
                self.changes.insert((T::Subscribers, k.to_vec()), None);
                self.changes
                    .insert((T::Ids, s.id.to_be_bytes().to_vec()), None);
                n += 1;
            }
        }
        for kv in self.store.tree(T::Pending).iter() {
            let (k, v) = kv?;
            let p: Pending = decode(&v)?;
            // A held post's record names its author beside the owner.
            let author = p.attributes.get("author").map(|a| a.to_lowercase());
            if p.email.to_lowercase() == wanted || author.as_deref() == Some(wanted.as_str()) {
                self.changes.insert((T::Pending, k.to_vec()), None);
                n += 1;
            }
        }
        for kv in self.store.tree(T::Outbox).iter() {
            let (k, v) = kv?;
            let m: OutMail = decode(&v)?;
            if m.forward_path.iter().any(|f| f.to_lowercase() == wanted) {
                self.changes.insert((T::Outbox, k.to_vec()), None);
                n += 1;
            }
        }
        // Mail to them given up on: kept for the admin, with its envelope.
        for kv in self.store.tree(T::Dead).iter() {
            let (k, v) = kv?;
            let m: OutMail = decode(&v)?;
            if m.forward_path.iter().any(|f| f.to_lowercase() == wanted) {
                self.changes.insert((T::Dead, k.to_vec()), None);
                n += 1;
            }
        }
        self.forget_delivery_errors(&ids, &wanted)?;
        for kv in self.store.tree(T::Ignored).iter() {
            let (k, v) = kv?;
            let r: Ignored = decode(&v)?;
            if r.sender.to_lowercase() == wanted {
                self.changes.insert((T::Ignored, k.to_vec()), None);
                n += 1;
            }
        }
        n += self.forget_posts(&wanted)?;
        // Budgets and notes keyed by the address or its mailbox (not the
        // tallies, which start with NUL, nor the hourly per-domain ones).
        let endings = [
            format!("\0{wanted}"),
            format!("\0{}", address::mailbox(&wanted)),
        ];
        for kv in self.store.tree(T::Counters).iter() {
            let (k, _) = kv?;
            if !k.starts_with(b"\0") && endings.iter().any(|e| k.ends_with(e.as_bytes())) {
                self.changes.insert((T::Counters, k.to_vec()), None);
            }
        }
        // The audit log keeps what was done, not to whom.
        self.scrub_audit(&wanted)?;
        let record = serde_json::json!({"v": RECORD_VERSION, "at": at.to_rfc3339()});
        self.changes.insert(
            (T::Suppressed, hash.to_vec()),
            Some(serde_json::to_vec(&record)?),
        );
        Ok(n)
    }

    /// The relay's words kept with the deliveries of `ids` (a refusal
    /// often names the address: "550 5.1.1 <x@y>: … rejected") keep what
    /// happened, with the address as `...@domain`.
    fn forget_delivery_errors(&mut self, ids: &[u64], wanted: &str) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let domain = wanted.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let redacted = format!("...@{domain}");
        let mut campaigns = Vec::new();
        for k in self.store.tree(T::Campaigns).iter().keys() {
            if let Ok(id) = <[u8; 8]>::try_from(k?.as_ref()) {
                campaigns.push(u64::from_be_bytes(id));
            }
        }
        for &cid in &campaigns {
            for &id in ids {
                let Some(mut d) = self.delivery(cid, id)? else {
                    continue;
                };
                let Some(e) = d.last_error.as_deref() else {
                    continue;
                };
                if e.to_lowercase().contains(wanted) {
                    d.last_error = Some(replace_caseless(e, wanted, &redacted));
                    self.put_delivery(&d);
                }
            }
        }
        Ok(())
    }

    /// The discussion posts of `wanted` (lower case) erased: each one's
    /// raw bytes (their words, name and address: gone from the thread
    /// archive and from every digest still to come), its author and
    /// subject; one not yet sent or held is cancelled. In every other
    /// post kept, their address (a quote's attribution line, a Cc) becomes
    /// `...@domain`. Returns how many posts were theirs.
    fn forget_posts(&mut self, wanted: &str) -> Result<usize> {
        use crate::store::CampaignStatus;
        let mut n = 0;
        let domain = wanted.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        // ASCII: it may stand in a header field of the raw message.
        let redacted = format!("...@{domain}");
        for kv in self.store.tree(T::Campaigns).iter() {
            let (_, v) = kv?;
            let mut c: Campaign = decode(&v)?;
            let Some(post) = c.post.as_mut() else {
                continue;
            };
            if post.author.to_lowercase() == wanted {
                post.author = String::new();
                c.content.subject = "–".into();
                if !matches!(c.status, CampaignStatus::Done | CampaignStatus::Cancelled) {
                    c.status = CampaignStatus::Cancelled;
                    c.finished_at = Some(c.finished_at.unwrap_or(c.created_at));
                    self.drop_frozen(c.id)?;
                }
                self.remove_blob(c.id, 0);
                self.changes.insert(
                    (T::Campaigns, c.id.to_be_bytes().to_vec()),
                    Some(encode(&c)),
                );
                n += 1;
                continue;
            }
            let Some(raw) = self.store.tree(T::Blobs).get(blob_key(c.id, 0))? else {
                continue;
            };
            let lower = raw.to_ascii_lowercase();
            if lower.windows(wanted.len()).any(|w| w == wanted.as_bytes()) {
                let mut out = Vec::with_capacity(raw.len());
                let mut i = 0;
                while i < raw.len() {
                    if lower[i..].starts_with(wanted.as_bytes()) {
                        out.extend_from_slice(redacted.as_bytes());
                        i += wanted.len();
                    } else {
                        out.push(raw[i]);
                        i += 1;
                    }
                }
                self.put_blob(c.id, 0, &out);
            }
        }
        Ok(n)
    }

    /// Lifts a suppression: the person asked to come back themselves.
    pub fn unsuppress(&mut self, hash: &[u8]) {
        self.changes.insert((T::Suppressed, hash.to_vec()), None);
    }

    /// Records an ignored message of a kind (its `address`) that anyone may
    /// send without limit, such as the web form's: it may hold at most
    /// `share` of the records, and beyond that its own oldest goes, not
    /// the oldest of another kind. So a form-filling bot cannot push the
    /// records of ignored mail out of the log.
    pub fn record_ignored_within(&mut self, record: &Ignored, share: usize) -> Result<()> {
        let mut oldest_same = None;
        let mut same = 0usize;
        for kv in self.store.tree(T::Ignored).iter() {
            let (k, v) = kv?;
            let r: Ignored = decode(&v)?;
            if r.address == record.address {
                same += 1;
                oldest_same.get_or_insert(k);
            }
        }
        match oldest_same {
            Some(oldest) if same >= share => {
                self.changes.insert((T::Ignored, oldest.to_vec()), None);
                self.changes.insert(
                    (T::Ignored, record.id.to_be_bytes().to_vec()),
                    Some(encode(record)),
                );
                Ok(())
            }
            _ => self.record_ignored(record),
        }
    }

    /// Records an ignored message, dropping the oldest beyond `MAX_IGNORED`.
    pub fn record_ignored(&mut self, record: &Ignored) -> Result<()> {
        let tree = self.store.tree(T::Ignored);
        if tree.len() >= MAX_IGNORED {
            if let Some((oldest, _)) = tree.first()? {
                self.changes.insert((T::Ignored, oldest.to_vec()), None);
            }
        }
        self.changes.insert(
            (T::Ignored, record.id.to_be_bytes().to_vec()),
            Some(encode(record)),
        );
        Ok(())
    }

    pub fn enqueue_mail(&mut self, mail: &OutMail) {
        self.changes.insert(
            (T::Outbox, mail.id.to_be_bytes().to_vec()),
            Some(encode(mail)),
        );
    }

    /// Replaces a queued mail (after a failed attempt).
    pub fn update_mail(&mut self, mail: &OutMail) {
        self.enqueue_mail(mail);
    }

    pub fn remove_mail(&mut self, id: u64) {
        self.changes
            .insert((T::Outbox, id.to_be_bytes().to_vec()), None);
    }

    /// Moves a mail that failed for good out of the queue, kept for the admin.
    pub fn bury_mail(&mut self, mail: &OutMail) {
        self.remove_mail(mail.id);
        let mut dead = mail.clone();
        dead.raw.clear();
        self.changes.insert(
            (T::Dead, mail.id.to_be_bytes().to_vec()),
            Some(encode(&dead)),
        );
    }

    /// Takes one unit of the daily budget `key` if fewer than `limit` were
    /// taken today; false when the budget is spent.
    pub fn take_daily(&mut self, key: &str, limit: u32, now: DateTime<Utc>) -> Result<bool> {
        let today = day_of(now);
        let current: Option<Counter> = self.get(T::Counters, key.as_bytes())?;
        let count = match current {
            Some(c) if c.day == today => c.count,
            _ => 0,
        };
        if count >= limit {
            return Ok(false);
        }
        let next = Counter {
            v: RECORD_VERSION,
            day: today,
            count: count + 1,
            note: None,
        };
        self.changes
            .insert((T::Counters, key.as_bytes().to_vec()), Some(encode(&next)));
        Ok(true)
    }

    /// Takes one unit of every hourly budget in `budgets` (key and limit;
    /// a limit of 0 is no limit) in the first hour, from `now`'s on and
    /// within `hours` of it, in which all of them have room. Returns when
    /// that hour starts (`now` itself if it is `now`'s), or None when no
    /// hour within reach has room (nothing is taken then).
    pub fn take_hourly(
        &mut self,
        budgets: &[(&str, u32)],
        now: DateTime<Utc>,
        hours: u32,
    ) -> Result<Option<DateTime<Utc>>> {
        let first = now.timestamp().div_euclid(3600);
        for hour in first..first + i64::from(hours.max(1)) {
            let start = DateTime::from_timestamp(hour * 3600, 0).unwrap_or(now);
            let day = day_of(start);
            let mut counts = Vec::with_capacity(budgets.len());
            for (key, limit) in budgets {
                let key = format!("{key}\0{hour}");
                let count = match self.get::<Counter>(T::Counters, key.as_bytes())? {
                    Some(c) if c.day == day => c.count,
                    _ => 0,
                };
                counts.push((key, count, *limit));
            }
            if counts.iter().any(|(_, n, limit)| *limit > 0 && n >= limit) {
                continue;
            }
            for (key, count, _) in counts {
                let next = Counter {
                    v: RECORD_VERSION,
                    day,
                    count: count + 1,
                    note: None,
                };
                self.changes
                    .insert((T::Counters, key.into_bytes()), Some(encode(&next)));
            }
            return Ok(Some(start.max(now)));
        }
        Ok(None)
    }

    /// The note written under `key` today, if any.
    pub fn note_today(&self, key: &str, now: DateTime<Utc>) -> Result<Option<u64>> {
        Ok(self
            .get::<Counter>(T::Counters, key.as_bytes())?
            .filter(|c| c.day == day_of(now))
            .and_then(|c| c.note))
    }

    /// Writes a note for today under `key` (purged with the day's counters).
    pub fn write_note(&mut self, key: &str, note: u64, now: DateTime<Utc>) {
        let c = Counter {
            v: RECORD_VERSION,
            day: day_of(now),
            count: 0,
            note: Some(note),
        };
        self.changes
            .insert((T::Counters, key.as_bytes().to_vec()), Some(encode(&c)));
    }
}

/// `text` with every occurrence of `wanted` (lower case), in any case,
/// replaced by `with`.
fn replace_caseless(text: &str, wanted: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let at = rest
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| rest[i..].to_lowercase().starts_with(wanted));
        let Some(at) = at else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at]);
        out.push_str(with);
        // The match's length in `text`: as many chars as lower-cased
        // to `wanted`.
        let mut end = at;
        for (i, c) in rest[at..].char_indices() {
            end = at + i + c.len_utf8();
            if rest[at..end].to_lowercase().len() >= wanted.len() {
                break;
            }
        }
        rest = &rest[end..];
    }
    out
}
