//! What every handler shares: configuration, lists, templates, the token
//! secret, the store, the clock, and the bell that wakes the outbound worker.
//!
//! The clock and the secret come in from outside so tests bring their own.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::compose::templates::Templates;
use crate::daemon::config::Config;
use crate::daemon::lists::Lists;
use crate::store::Store;
use crate::token::Secret;

pub use crate::time::{system_clock, Clock};

/// Counters for `/metrics` and the closing log line.
#[derive(Default)]
pub struct Metrics {
    pub messages_received: AtomicU64,
    pub messages_rejected: AtomicU64,
    pub automated_ignored: AtomicU64,
    pub mails_sent: AtomicU64,
    pub mails_failed: AtomicU64,
    pub mails_deferred: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Context {
    pub config: Config,
    pub lists: Lists,
    pub templates: Templates,
    pub secret: Secret,
    pub store: Store,
    pub clock: Clock,
    /// Present when `[dkim]` is configured.
    pub dkim: Option<crate::compose::system::DkimKeys>,
    /// Whether an author's domain asks for a rewritten From (DMARC).
    pub dmarc: crate::daemon::dmarc::Dmarc,
    /// Rung after a system mail is queued and synced.
    pub mail_ready: tokio::sync::Notify,
    /// Rung after a campaign is queued or resumed.
    pub campaign_ready: tokio::sync::Notify,
    pub metrics: Metrics,
}

impl Context {
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Unix seconds, as tokens carry them.
    pub fn now_secs(&self) -> u32 {
        u32::try_from(self.now().timestamp().max(0)).unwrap_or(u32::MAX)
    }

    pub fn token_max_age(&self) -> u64 {
        u64::from(self.config.limits.token_days) * crate::time::SECS_PER_DAY as u64
    }

    /// What the store's group commits did so far, for `/metrics`.
    pub fn commit_stats(&self) -> crate::store::CommitStats {
        self.store.commit_stats()
    }
}
