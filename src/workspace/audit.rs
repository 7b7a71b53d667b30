//! The audit log: every change made in the workspace or by the CLI, with
//! who made it and when (`utskick audit`, the workspace's Logg page).

use chrono::{DateTime, Utc};

use crate::address::printable;
use crate::daemon::context::Context;
use crate::store::{AuditEntry, RECORD_VERSION};

/// Records that `who` did `what` (`detail` in words), in its own write.
/// The caller syncs before it answers.
///
/// Each field is kept to one line without control characters: a detail
/// carries what an owner typed (a consent text, a `where`), and an entry
/// must not pass for two, or carry a terminal escape to whoever reads it.
pub fn record(ctx: &Context, who: &str, what: &str, detail: &str) -> anyhow::Result<()> {
    let entry = AuditEntry {
        v: RECORD_VERSION,
        id: ctx.store.next_id()?,
        at: ctx.now(),
        who: printable(who),
        what: printable(what),
        detail: printable(detail),
    };
    ctx.store.write(|tx| {
        tx.record_audit(&entry);
        Ok(())
    })
}

/// Whether `entry` is for the eyes of the owner whose workspace name is
/// `who` (`OWNER (workspace)`) and who owns the lists `owned`: an entry
/// about one of those lists (its detail begins `LIST: `), or one the
/// owner made. Entries about other lists, lists that are gone, or the
/// whole daemon (a `forget`, a backup) are not theirs.
pub fn visible_to(entry: &AuditEntry, who: &str, owned: &[&str]) -> bool {
    if entry.who == who {
        return true;
    }
    entry
        .detail
        .split_once(':')
        .is_some_and(|(list, _)| owned.contains(&list))
}

/// The log from `since` on, oldest first.
pub fn since(ctx: &Context, since: Option<DateTime<Utc>>) -> anyhow::Result<Vec<AuditEntry>> {
    Ok(ctx.store.audit_since(since)?)
}

/// The newest `n` entries, newest first.
pub fn latest(ctx: &Context, n: usize) -> anyhow::Result<Vec<AuditEntry>> {
    Ok(ctx.store.audit_latest(n)?)
}
