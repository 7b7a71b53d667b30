//! How many answers one address may get in a day: the budgets that stop a
//! flood of confirmations without silencing a real person.

use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::Tx;
use chrono::{DateTime, Utc};

pub(crate) fn confirmation_budget(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let key = format!("confirm\0{}\0{}", list.id, email.to_lowercase());
    let ok = tx.take_daily(&key, ctx.config.limits.confirmations_per_day, now)?;
    if !ok {
        tracing::info!(list = %list.id, "confirmation cap reached; no mail sent");
    }
    Ok(ok)
}

pub(crate) fn reply_budget(
    ctx: &Context,
    tx: &mut Tx<'_>,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let ok = tx.take_daily(
        &format!("reply\0{}", email.to_lowercase()),
        ctx.config.limits.replies_per_day,
        now,
    )?;
    if !ok {
        tracing::info!("reply cap reached; no mail sent");
    }
    Ok(ok)
}
