//! How far each campaign has come: the gauges of `/metrics`.

use chrono::Duration;

use crate::daemon::context::Context;

/// One campaign's recipients by state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub id: u64,
    pub list: String,
    /// The campaign's status, as `campaign status` names it.
    pub status: &'static str,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Not yet sent, failed or skipped.
    pub remaining: u64,
}

/// Every campaign, oldest first, except those that finished more than
/// `finished_within` ago.
pub fn progress(ctx: &Context, finished_within: Duration) -> anyhow::Result<Vec<Progress>> {
    let now = ctx.now();
    Ok(ctx
        .store
        .campaigns()?
        .into_iter()
        .filter(|c| {
            !(c.status.is_final() && c.finished_at.is_some_and(|t| now - t > finished_within))
        })
        .map(|c| Progress {
            id: c.id,
            remaining: c.total.saturating_sub(c.sent + c.failed + c.skipped),
            list: c.list,
            status: c.status.as_str(),
            sent: c.sent,
            failed: c.failed,
            skipped: c.skipped,
        })
        .collect())
}
