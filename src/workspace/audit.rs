//! The audit log: every change made in the workspace or by the CLI, with
//! who made it and when (`utskick audit`, the workspace's Logg page).

use chrono::{DateTime, Utc};

use crate::daemon::context::Context;
use crate::store::{AuditEntry, RECORD_VERSION};

/// Records that `who` did `what` (`detail` in words), in its own write.
/// The caller syncs before it answers.
pub fn record(ctx: &Context, who: &str, what: &str, detail: &str) -> anyhow::Result<()> {
    let entry = AuditEntry {
        v: RECORD_VERSION,
        id: ctx.store.next_id()?,
        at: ctx.now(),
        who: who.to_string(),
        what: what.to_string(),
        detail: detail.to_string(),
    };
    ctx.store.write(|tx| {
        tx.record_audit(&entry);
        Ok(())
    })
}

/// The log from `since` on, oldest first.
pub fn since(ctx: &Context, since: Option<DateTime<Utc>>) -> anyhow::Result<Vec<AuditEntry>> {
    Ok(ctx.store.audit_since(since)?)
}

/// The newest `n` entries, newest first.
pub fn latest(ctx: &Context, n: usize) -> anyhow::Result<Vec<AuditEntry>> {
    Ok(ctx.store.audit_latest(n)?)
}
