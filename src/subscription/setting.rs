//! A member's delivery settings on a discussion list (`inte-mig`,
//! `mig-också`, `sammandrag`, `enskilda` at `L-request@D`): "only the
//! person changes their subscription", so a setting asked for by mail is
//! a confirmation to the member's own address, and the change happens
//! when they answer it (a reply, or the button on the confirm page), as a
//! subscription or an unsubscription does.

use crate::address;
use crate::compose::system::AutoSubmitted;
use crate::daemon::context::Context;
use crate::daemon::lists::{self, List};
use crate::mail::words::Setting;
use crate::store::{PendingAction, Status, Subscriber, Tx};
use crate::subscription::answer::{
    base_data, confirm_data, issue, queue_mail, queue_mail_as, Dispatch, Handled, Request,
};
use crate::subscription::budget::reply_budget;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::BTreeMap;

/// The `method` of the confirmation to join that "accept and add" on a
/// held post sends (`feedback::discussion::moderate`): the owner approved
/// the person already, so on a closed list their own confirmation makes
/// them a member without a second approval.
pub const OWNER_INVITED: &str = "owner-invited";

/// Asks the confirmed member of `list` at `email` to confirm `setting`
/// (a mail with a token to their own address). None: not a member (the
/// caller answers with the help text). Within the member's daily reply
/// budget, so a forger cannot flood them with confirmations.
pub(crate) fn request(
    ctx: &Context,
    list: &List,
    email: &str,
    setting: Setting,
    evidence: String,
    in_reply_to: Option<String>,
) -> anyhow::Result<Option<Handled>> {
    let now = ctx.now();
    let email = address::normalize(email);
    ctx.store.write(|tx| {
        let Some(s) = tx
            .subscriber(&list.id, &email)?
            .filter(|s| s.status == Status::Confirmed)
        else {
            return Ok(None);
        };
        if !reply_budget(ctx, tx, &s.email, now)? {
            return Ok(Some(Handled::ignored("member setting: reply cap reached")));
        }
        let req = Request {
            list,
            email: &s.email,
            name: &s.name,
            method: "mail",
            evidence,
            in_reply_to: in_reply_to.clone(),
            attributes: BTreeMap::from([("setting".to_string(), setting.name().to_string())]),
        };
        let (_, token) = issue(ctx, tx, &req, &s.email, PendingAction::Setting)?;
        let mut data = confirm_data(ctx, list, &s.email, &s.name, &token);
        data["setting"] = json!(setting.name());
        data["confirm"] = json!(true);
        let reply_to = lists::list_address(list, "confirm", Some(&token), &ctx.config.domain);
        queue_mail_as(
            ctx,
            tx,
            list,
            "member-setting",
            &s.email,
            &s.name,
            &data,
            Some(reply_to),
            AutoSubmitted::Replied,
            in_reply_to.clone(),
            Dispatch::Confirmation,
        )?;
        Ok(Some(Handled::done("member setting: confirmation sent")))
    })
}

/// Applies a setting the member confirmed, and tells them it is done.
pub(crate) fn apply(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    mut s: Subscriber,
    setting: Setting,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    match setting {
        Setting::NotMeToo(on) => s.notmetoo = on,
        Setting::Digest(on) => s.digest = on,
    }
    s.updated_at = now;
    tx.put_subscriber(&s);
    let mut data = base_data(ctx, list, &s.email, &s.name);
    data["setting"] = json!(setting.name());
    queue_mail(
        ctx,
        tx,
        list,
        "member-setting",
        &s.email,
        &s.name,
        &data,
        None,
        AutoSubmitted::Replied,
        None,
    )
}
