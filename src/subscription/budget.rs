//! How many answers one person may get, and when: the budgets that stop a
//! flood of confirmations without ever silencing a real person.
//!
//! Per purpose, per mailbox (the address in lower case and without its
//! `+tag`, [`address::mailbox`]: `victim+1@` … `victim+30@` are one inbox)
//! and per day, each its own key in `[limits]`:
//! - `subscribe_confirmations_per_day` (3, per list): the first
//!   confirmation, then the same pending one again when the person asks
//!   again ([`todays_pending`]);
//! - `unsubscribe_confirmations_per_day` (5, per list): a subscriber who
//!   asks to leave always gets one, whatever they asked before;
//! - `invitations_per_day` (1, per list): `import --invite`;
//! - `replies_per_day` (5, across lists): help, "already subscribed", …
//!
//! Past a daily budget nothing is sent: that is the flood. Per hour, over
//! all confirmations and invitations (`confirmations_per_hour`) and per
//! destination domain (`confirmations_per_domain_per_hour`), a mail past
//! the cap is not dropped: it waits in the outbox, due at the start of the
//! first hour with room ([`confirmation_due`]), and the log says so.

use crate::address;
use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::Tx;
use chrono::{DateTime, SecondsFormat, Utc};

/// What a confirmation is for; each has its own daily budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    Subscribe,
    Unsubscribe,
    Invitation,
}

impl Budget {
    fn name(self) -> &'static str {
        match self {
            Budget::Subscribe => "subscribe",
            Budget::Unsubscribe => "unsubscribe",
            Budget::Invitation => "invitation",
        }
    }

    fn limit(self, ctx: &Context) -> u32 {
        let limits = &ctx.config.limits;
        match self {
            Budget::Subscribe => limits.subscribe_confirmations_per_day,
            Budget::Unsubscribe => limits.unsubscribe_confirmations_per_day,
            Budget::Invitation => limits.invitations_per_day,
        }
    }
}

/// Takes one confirmation of `budget` for `email`'s mailbox on `list`
/// today; false (and a log line) when the day's budget is spent.
pub(crate) fn confirmation_budget(
    ctx: &Context,
    tx: &mut Tx<'_>,
    budget: Budget,
    list: &List,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let key = format!(
        "confirm\0{}\0{}\0{}",
        budget.name(),
        list.id,
        address::mailbox(email)
    );
    let ok = tx.take_daily(&key, budget.limit(ctx), now)?;
    if !ok {
        tracing::info!(
            list = %list.id,
            purpose = budget.name(),
            "daily confirmation cap for this address reached; no mail sent"
        );
    }
    Ok(ok)
}

/// Takes one of today's other answers for `email`'s mailbox; false (and a
/// log line) when they are spent.
pub(crate) fn reply_budget(
    ctx: &Context,
    tx: &mut Tx<'_>,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let ok = tx.take_daily(
        &format!("reply\0{}", address::mailbox(email)),
        ctx.config.limits.replies_per_day,
        now,
    )?;
    if !ok {
        tracing::info!("daily reply cap for this address reached; no mail sent");
    }
    Ok(ok)
}

/// Takes one of today's forwarded questions (mail with no command at
/// `L-request@D`) for `email`'s mailbox on `list`; false (and a log line)
/// when they are spent, so a flood reaches the owners only so far.
pub(crate) fn question_budget(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let ok = tx.take_daily(
        &format!("question\0{}\0{}", list.id, address::mailbox(email)),
        ctx.config.limits.questions_per_day,
        now,
    )?;
    if !ok {
        tracing::info!(list = %list.id, "daily cap of forwarded questions for this address reached");
    }
    Ok(ok)
}

fn note_key(budget: Budget, list: &List, email: &str) -> String {
    format!(
        "sent\0{}\0{}\0{}",
        budget.name(),
        list.id,
        email.to_lowercase()
    )
}

/// The pending confirmation last sent today for `budget` to exactly
/// `email` on `list` (its id; the caller checks it is still open).
pub(crate) fn todays_pending(
    tx: &Tx<'_>,
    budget: Budget,
    list: &List,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<u64>> {
    Ok(tx.note_today(&note_key(budget, list, email), now)?)
}

/// Remembers, for today, the pending confirmation just sent.
pub(crate) fn remember_pending(
    tx: &mut Tx<'_>,
    budget: Budget,
    list: &List,
    email: &str,
    id: u64,
    now: DateTime<Utc>,
) {
    tx.write_note(&note_key(budget, list, email), id, now);
}

/// When a confirmation or invitation to `email` may leave (Unix seconds):
/// now, or the start of the first later hour in which neither the overall
/// nor the destination domain's hourly budget is spent. It always gets a
/// time: a mail past the caps waits, it is not dropped.
pub(crate) fn confirmation_due(
    ctx: &Context,
    tx: &mut Tx<'_>,
    email: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let limits = &ctx.config.limits;
    let mailbox = address::mailbox(email);
    let domain = address::split(&mailbox).map_or("", |(_, d)| d).to_string();
    let domain_key = format!("hour\0domain\0{domain}");
    let budgets = [
        ("hour\0all", limits.confirmations_per_hour),
        (
            domain_key.as_str(),
            limits.confirmations_per_domain_per_hour,
        ),
    ];
    // Within the token's lifetime: a confirmation that arrives after its
    // token expired is of no use.
    let hours = limits
        .token_days
        .saturating_mul(24)
        .saturating_sub(1)
        .max(1);
    let due = match tx.take_hourly(&budgets, now, hours)? {
        Some(due) => due,
        None => {
            // Every hour within reach is full. Still not dropped: it goes
            // in the last of them, past the caps.
            let last = now + chrono::Duration::hours(i64::from(hours) - 1);
            let last = DateTime::from_timestamp(last.timestamp().div_euclid(3600) * 3600, 0)
                .unwrap_or(last);
            tracing::warn!(
                %domain,
                until = %last.to_rfc3339_opts(SecondsFormat::Secs, true),
                "hourly confirmation caps full for the whole token lifetime; queued past them"
            );
            return Ok(last.timestamp());
        }
    };
    if due > now {
        tracing::info!(
            %domain,
            until = %due.to_rfc3339_opts(SecondsFormat::Secs, true),
            per_hour = limits.confirmations_per_hour,
            per_domain_per_hour = limits.confirmations_per_domain_per_hour,
            "hourly confirmation cap reached; the confirmation waits in the outbox"
        );
    }
    Ok(due.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::config::Config;
    use crate::subscription::answer::Request;
    use crate::subscription::{request_unsubscribe, subscribe};
    use chrono::TimeZone;
    use std::sync::Arc;

    /// A daemon's context at 10:30 UTC, with `limits` added to the config.
    fn context(dir: &std::path::Path, limits: &str) -> Context {
        let root = env!("CARGO_MANIFEST_DIR");
        let text = format!(
            "domain = \"lista.example.se\"\ndata_dir = \"{}\"\nlists_dir = \"{root}/lists\"\ntemplates_dir = \"{root}/templates\"\n[limits]\n{limits}\n",
            dir.join("data").display()
        );
        let config = Config::parse(&text, "t.toml").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 30, 0).unwrap();
        crate::daemon::build_context(config, Arc::new(move || now)).unwrap()
    }

    fn request<'a>(ctx: &'a Context, email: &'a str) -> Request<'a> {
        Request {
            list: ctx.lists.get("lokal-finansiering").unwrap(),
            email,
            name: "",
            method: "mail",
            evidence: "<test@example.org>".into(),
            in_reply_to: None,
            attributes: Default::default(),
        }
    }

    /// Who the outbox holds mail for that is due at `at`.
    fn due(ctx: &Context, at: DateTime<Utc>) -> Vec<String> {
        let mut to: Vec<String> = ctx
            .store
            .due_mail(at.timestamp(), 1000)
            .unwrap()
            .into_iter()
            .flat_map(|m| m.forward_path)
            .collect();
        to.sort();
        to
    }

    #[test]
    fn past_the_hourly_caps_a_confirmation_waits_for_the_next_hour() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(
            dir.path(),
            "confirmations_per_hour = 3\nconfirmations_per_domain_per_hour = 2",
        );
        for email in [
            "a1@a.example",
            "a2@a.example",
            "a3@a.example",
            "b1@b.example",
            "b2@b.example",
        ] {
            subscribe(&ctx, &request(&ctx, email)).unwrap();
        }
        let now = ctx.now();
        let next_hour = Utc.with_ymd_and_hms(2026, 12, 1, 11, 0, 0).unwrap();
        // a3: its domain's two are taken; b2: the hour's three are.
        assert_eq!(
            due(&ctx, now),
            ["a1@a.example", "a2@a.example", "b1@b.example"]
        );
        assert_eq!(due(&ctx, next_hour - chrono::Duration::seconds(1)).len(), 3);
        assert_eq!(
            due(&ctx, next_hour),
            [
                "a1@a.example",
                "a2@a.example",
                "a3@a.example",
                "b1@b.example",
                "b2@b.example"
            ]
        );
    }

    #[test]
    fn zero_is_no_hourly_cap() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(
            dir.path(),
            "confirmations_per_hour = 0\nconfirmations_per_domain_per_hour = 0",
        );
        let emails: Vec<String> = (0..60).map(|n| format!("p{n}@a.example")).collect();
        for email in &emails {
            subscribe(&ctx, &request(&ctx, email)).unwrap();
        }
        assert_eq!(due(&ctx, ctx.now()).len(), 60);
    }

    #[test]
    fn joining_and_leaving_have_budgets_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), "");
        // Four requests to join: three mails, then the budget is spent…
        for n in 0..4 {
            let h = subscribe(&ctx, &request(&ctx, "anna@example.org")).unwrap();
            assert_eq!(h.ignored, n == 3, "request {n}: {h:?}");
        }
        // …she confirms (with the token of the mails she got)…
        let list = ctx.lists.get("lokal-finansiering").unwrap();
        let pending = ctx
            .store
            .due_mail(ctx.now().timestamp(), 10)
            .unwrap()
            .into_iter()
            .find(|m| m.forward_path == ["anna@example.org"])
            .unwrap();
        let raw = String::from_utf8(pending.raw).unwrap();
        let token = raw
            .split("lokal-finansiering-confirm+")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap();
        let token = crate::token::Token::decode(token).unwrap();
        let done = crate::subscription::apply_token(
            &ctx,
            Some(list),
            &token,
            "anna@example.org",
            "mail",
            "<reply@example.org>",
        )
        .unwrap();
        assert_eq!(done, Ok(crate::subscription::Confirmed::Subscribed));
        // …and her requests to leave still get their confirmations, five.
        for n in 0..6 {
            let h = request_unsubscribe(&ctx, &request(&ctx, "anna@example.org")).unwrap();
            assert_eq!(h.ignored, n == 5, "request {n}: {h:?}");
        }
    }

    #[test]
    fn someone_still_pending_gets_no_confirmation_to_leave() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), "");
        subscribe(&ctx, &request(&ctx, "stranger@example.org")).unwrap();
        let h = request_unsubscribe(&ctx, &request(&ctx, "stranger@example.org")).unwrap();
        assert_eq!(h.what, "unsubscribe: not subscribed");
    }

    #[test]
    fn a_tagged_address_shares_the_budget_but_subscribes_in_its_own_right() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), "");
        let list = ctx.lists.get("lokal-finansiering").unwrap();
        crate::subscription::by_admin::admin_add(
            &ctx,
            list,
            "victim@example.org",
            None,
            Default::default(),
            "test",
        )
        .unwrap();
        // victim+news@ is not "already subscribed": it may join itself.
        let h = subscribe(&ctx, &request(&ctx, "victim+news@example.org")).unwrap();
        assert_eq!(h.what, "subscribe: confirmation sent");
        let s = ctx
            .store
            .subscriber("lokal-finansiering", "victim+news@example.org")
            .unwrap()
            .unwrap();
        assert_eq!(s.status, crate::store::Status::Pending);
        // Two more variants use up the mailbox's three; the fourth gets nothing.
        for (email, sent) in [
            ("victim+1@example.org", true),
            ("Victim+2@Example.org", true),
            ("victim+3@example.org", false),
        ] {
            let h = subscribe(&ctx, &request(&ctx, email)).unwrap();
            assert_eq!(!h.ignored, sent, "{email}: {h:?}");
        }
    }
}
