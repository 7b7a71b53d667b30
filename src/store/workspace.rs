//! The workspace's records: one-time login links and sessions (kept under
//! the SHA-256 of their secret, never the secret itself), and the audit
//! log (who changed what, when), oldest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::error::Result;
use crate::store::keys::{decode, encode, T};
use crate::store::{Store, Tx};

/// A one-time login link, until it is used or runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginLink {
    pub v: u32,
    /// The owner it signs in, as they typed it (lower case).
    pub email: String,
    pub expires_at: DateTime<Utc>,
}

/// A signed-in owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub v: u32,
    pub email: String,
    pub created_at: DateTime<Utc>,
    /// The last request seen (to the minute): the idle expiry counts from it.
    pub last_seen: DateTime<Utc>,
}

/// One change, by whom and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub v: u32,
    pub id: u64,
    pub at: DateTime<Utc>,
    /// `owner@example.se (workspace)`, `cli (user karin)`.
    pub who: String,
    /// The command: `add`, `queue`, `pause`, …
    pub what: String,
    /// Its arguments, in words (`list nat, a@example.se`).
    pub detail: String,
}

fn link_key(hash: &[u8]) -> Vec<u8> {
    [b"link\0".as_slice(), hash].concat()
}

fn session_key(hash: &[u8]) -> Vec<u8> {
    [b"session\0".as_slice(), hash].concat()
}

fn audit_key(at: DateTime<Utc>, id: u64) -> Vec<u8> {
    let mut k = at.timestamp_millis().to_be_bytes().to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

impl Store {
    pub fn login_link(&self, hash: &[u8]) -> Result<Option<LoginLink>> {
        self.tree(T::Workspace)
            .get(link_key(hash))?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn session(&self, hash: &[u8]) -> Result<Option<Session>> {
        self.tree(T::Workspace)
            .get(session_key(hash))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The audit log from `since` on, oldest first.
    pub fn audit_since(&self, since: Option<DateTime<Utc>>) -> Result<Vec<AuditEntry>> {
        let start = since
            .map(|t| t.timestamp_millis().to_be_bytes().to_vec())
            .unwrap_or_default();
        self.tree(T::Audit)
            .range(start..)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// The newest `n` audit entries, newest first.
    pub fn audit_latest(&self, n: usize) -> Result<Vec<AuditEntry>> {
        self.tree(T::Audit)
            .iter()
            .rev()
            .take(n)
            .map(|kv| decode(&kv?.1))
            .collect()
    }
}

impl Tx<'_> {
    pub fn login_link(&self, hash: &[u8]) -> Result<Option<LoginLink>> {
        self.get(T::Workspace, &link_key(hash))
    }

    pub fn put_login_link(&mut self, hash: &[u8], link: &LoginLink) {
        self.changes
            .insert((T::Workspace, link_key(hash)), Some(encode(link)));
    }

    pub fn remove_login_link(&mut self, hash: &[u8]) {
        self.changes.insert((T::Workspace, link_key(hash)), None);
    }

    pub fn session(&self, hash: &[u8]) -> Result<Option<Session>> {
        self.get(T::Workspace, &session_key(hash))
    }

    pub fn put_session(&mut self, hash: &[u8], session: &Session) {
        self.changes
            .insert((T::Workspace, session_key(hash)), Some(encode(session)));
    }

    pub fn remove_session(&mut self, hash: &[u8]) {
        self.changes.insert((T::Workspace, session_key(hash)), None);
    }

    /// Removes the links and sessions `stale` says are over.
    pub fn sweep_workspace(
        &mut self,
        stale_link: impl Fn(&LoginLink) -> bool,
        stale_session: impl Fn(&Session) -> bool,
    ) -> Result<()> {
        for kv in self.store.tree(T::Workspace).iter() {
            let (k, v) = kv?;
            let over = if k.starts_with(b"link\0") {
                stale_link(&decode(&v)?)
            } else {
                stale_session(&decode(&v)?)
            };
            if over {
                self.changes.insert((T::Workspace, k.to_vec()), None);
            }
        }
        Ok(())
    }

    pub fn record_audit(&mut self, entry: &AuditEntry) {
        self.changes.insert(
            (T::Audit, audit_key(entry.at, entry.id)),
            Some(encode(entry)),
        );
    }

    /// Replaces `email` (lower case) in the audit log's details with
    /// "(forgotten)": the log keeps what was done, not to whom.
    pub(super) fn scrub_audit(&mut self, email: &str) -> Result<()> {
        for kv in self.store.tree(T::Audit).iter() {
            let (k, v) = kv?;
            let mut entry: AuditEntry = decode(&v)?;
            let lower = entry.detail.to_ascii_lowercase();
            if lower.contains(email) {
                let mut out = String::new();
                let mut rest = entry.detail.as_str();
                let mut rest_lower = lower.as_str();
                while let Some(at) = rest_lower.find(email) {
                    out.push_str(&rest[..at]);
                    out.push_str("(forgotten)");
                    rest = &rest[at + email.len()..];
                    rest_lower = &rest_lower[at + email.len()..];
                }
                out.push_str(rest);
                entry.detail = out;
                self.changes
                    .insert((T::Audit, k.to_vec()), Some(encode(&entry)));
            }
        }
        Ok(())
    }
}
