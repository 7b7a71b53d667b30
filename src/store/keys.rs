//! How records are laid out in sled: tree names, key encodings, the
//! per-list tallies, and the versioned JSON codec.

use crate::store::error::{Result, StoreError};
use crate::store::records::{Status, RECORD_VERSION};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counter {
    pub(super) v: u32,
    /// The day it counts for (purged once past); for an hourly budget the
    /// day of its hour, which may be a later one.
    pub(super) day: i64,
    pub(super) count: u32,
    /// A day's note: the pending confirmation last sent for a purpose and
    /// address (`Tx::note_today`), so asking again resends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) note: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum T {
    Subscribers = 0,
    Ids = 1,
    Pending = 2,
    Outbox = 3,
    Counters = 4,
    Dead = 5,
    Campaigns = 6,
    Deliveries = 7,
    Blobs = 8,
    Ignored = 9,
    Suppressed = 10,
    /// The workspace's login links and sessions, by the hash of their secret.
    Workspace = 11,
    /// The audit log: who changed what, when.
    Audit = 12,
}

/// Tree names, in `T` order: the backup format names trees by these.
pub(crate) const TREE_NAMES: [&str; TREES] = [
    "subscribers",
    "subscriber_ids",
    "pending",
    "outbox",
    "counters",
    "dead_letters",
    "campaigns",
    "deliveries",
    "blobs",
    "ignored",
    "suppressed",
    "workspace",
    "audit",
];

/// How many trees the store has.
pub(crate) const TREES: usize = 13;

pub(crate) fn delivery_key(campaign: u64, subscriber: u64) -> Vec<u8> {
    let mut k = campaign.to_be_bytes().to_vec();
    k.extend_from_slice(&subscriber.to_be_bytes());
    k
}

pub(crate) fn blob_key(campaign: u64, index: usize) -> Vec<u8> {
    let mut k = campaign.to_be_bytes().to_vec();
    k.extend_from_slice(&(index as u32).to_be_bytes());
    k
}

/// Per-list, per-status subscriber counts live in the `counters` tree under
/// keys that start with this (rate counters start with a letter), so
/// `lists` and `/metrics` need no scan. `Store::write` keeps them.
pub(crate) const TALLY_PREFIX: &[u8] = b"\0tally\0";

/// Present once the tallies have been counted for this store.
pub(crate) const TALLY_BUILT: &[u8] = b"\0tally-built";

pub(crate) fn tally_key(list: &[u8], status: Status) -> Vec<u8> {
    let mut k = TALLY_PREFIX.to_vec();
    k.extend_from_slice(list);
    k.push(0);
    k.extend_from_slice(status.as_str().as_bytes());
    k
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub(super) v: u32,
    pub(super) n: i64,
}

/// The status of a stored subscriber record, without decoding the rest.
pub(crate) fn status_of(bytes: &[u8]) -> Result<Status> {
    #[derive(Deserialize)]
    struct Only {
        status: Status,
    }
    Ok(serde_json::from_slice::<Only>(bytes)?.status)
}

/// The id and `updated_at` of a stored subscriber record, without
/// decoding the rest.
pub(crate) fn id_of(bytes: &[u8]) -> Result<(u64, Option<DateTime<Utc>>)> {
    #[derive(Deserialize)]
    struct Only {
        id: u64,
        updated_at: Option<DateTime<Utc>>,
    }
    let o = serde_json::from_slice::<Only>(bytes)?;
    Ok((o.id, o.updated_at))
}

/// The list part of a subscriber key (`list \0 email`).
pub(crate) fn list_of_key(key: &[u8]) -> &[u8] {
    key.split(|b| *b == 0).next().unwrap_or(key)
}

/// The key of a subscriber: the address in lower case throughout, so
/// `Asa@x.se` and `asa@x.se` are one person (as in Mailman); the record
/// keeps the spelling they used.
pub(crate) fn sub_key(list: &str, email: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(list.len() + email.len() + 1);
    k.extend_from_slice(list.as_bytes());
    k.push(0);
    if email.is_ascii() {
        // What `to_lowercase` gives an ASCII text, without its copy.
        k.extend(email.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        k.extend_from_slice(email.to_lowercase().as_bytes());
    }
    k
}

pub(crate) fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<R> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u32,
    }
    let version: Versioned = serde_json::from_slice(bytes)?;
    if version.v > RECORD_VERSION {
        return Err(StoreError::TooNew {
            found: version.v,
            supported: RECORD_VERSION,
        });
    }
    Ok(serde_json::from_slice(bytes)?)
}

pub(crate) fn encode<R: Serialize>(r: &R) -> Vec<u8> {
    serde_json::to_vec(r).expect("records serialise")
}

/// `encode` into room for `capacity` bytes: a record whose size is
/// known roughly is written without the copies of a growing buffer.
pub(crate) fn encode_sized<R: Serialize>(r: &R, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, r).expect("records serialise");
    out
}

pub(crate) fn day_of(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(crate::time::SECS_PER_DAY)
}

#[cfg(test)]
mod sub_key_tests {
    use super::*;

    #[test]
    fn sub_key_lowers_the_whole_address() {
        for email in ["Asa@Example.SE", "åsa@EXAMPLE.se", "ÅSA@x.se", "a@b"] {
            let mut want = b"lf\0".to_vec();
            want.extend_from_slice(email.to_lowercase().as_bytes());
            assert_eq!(sub_key("lf", email), want);
        }
    }
}
