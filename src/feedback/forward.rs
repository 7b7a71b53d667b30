//! Mail that is not a command reaches the owners: the list is a dialogue.

use crate::address;
use crate::daemon::context::Context;
use crate::daemon::lists;
use crate::daemon::lists::List;
use crate::store::{OutMail, RECORD_VERSION};
use crate::subscription::answer::{loop_marker, Handled};

/// Resends the message unchanged to the owners, as an alias would, with the
/// list's bounce address as envelope sender so failures come back to us.
pub fn forward_to_owners(
    ctx: &Context,
    list: &List,
    reverse_path: Option<&str>,
    raw: &[u8],
) -> anyhow::Result<Handled> {
    if list.owners.is_empty() {
        return Ok(Handled::ignored("no owners to forward to"));
    }
    let now = ctx.now();
    ctx.store.write(|tx| {
        let id = tx.next_id()?;
        let mut bytes = format!(
            "X-Loop: {}\r\nX-Original-Sender: {}\r\n",
            loop_marker(list, &ctx.config.domain),
            address::header_safe(reverse_path.unwrap_or("unknown"))
        )
        .into_bytes();
        bytes.extend_from_slice(raw);
        tx.enqueue_mail(&OutMail {
            v: RECORD_VERSION,
            id,
            reverse_path: lists::list_address(list, "bounces", None, &ctx.config.domain),
            forward_path: list.owners.clone(),
            raw: bytes,
            attempts: 0,
            next_attempt: 0,
            created_at: now,
            last_error: None,
        });
        Ok(())
    })?;
    Ok(Handled::done("forwarded to the owners"))
}
