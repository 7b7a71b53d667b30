//! People in bulk and by request: importing a CSV with recorded consent or
//! as invitations, what is stored about one person (GDPR access), and
//! forgetting them (erasure, with a salted hash kept so no import brings
//! them back unknowingly).
//!
//! Like `commands`, nothing here touches the network; the caller syncs.

pub mod batch;
pub mod csvfile;
pub mod report;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::address;
use crate::compose::system::AutoSubmitted;
use crate::daemon::context::Context;
use crate::daemon::lists;
use crate::daemon::lists::List;
use crate::mail::message::clip_name_owned;
use crate::people::csvfile::Row;
use crate::store::{Consent, Pending, PendingAction, Status, Subscriber, Tx, RECORD_VERSION};
use crate::token::Purpose;
use chrono::{DateTime, Utc};

/// How an import treats its rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportOptions {
    /// The consent text recorded for every row (`--consent`); None with `invite`.
    pub consent: Option<String>,
    /// Send each row an invitation to confirm instead (`--invite`).
    pub invite: bool,
    /// Import addresses that were forgotten at their request (`--allow-forgotten`).
    pub allow_forgotten: bool,
    /// The file name, for the consent record.
    pub source: String,
}

/// What an import did, row by row where it matters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImportReport {
    pub added: u64,
    pub invited: u64,
    pub unchanged: u64,
    /// (line, why)
    pub skipped: Vec<(usize, Skip)>,
}

/// Why an import left a row out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    #[error("columns the list does not have: {}", .0.join(", "))]
    UnknownColumns(Vec<String>),
    /// A status other than `confirmed` in an exported file.
    #[error("status {0} in the file: only confirmed rows are imported")]
    NotConfirmed(String),
    /// Forgotten at their request, and the import does not allow them.
    #[error("forgotten at their request")]
    Forgotten,
    #[error("left the list; not re-added")]
    Left,
    #[error("disabled by an admin")]
    Disabled,
    #[error("bounced; not re-added")]
    Bounced,
    /// An invitation would pass the day's invitation budget.
    #[error("invited already today; import again tomorrow")]
    CapReached,
    /// The reason as an older daemon worded it.
    #[error("{0}")]
    #[serde(untagged)]
    Said(String),
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Neither a consent text nor invitations.
    #[error("the consent must say how these people agreed (or invite them instead)")]
    NoConsent,
    /// The file has columns the list does not declare: refused before any
    /// row, so no file is half imported with its data dropped.
    #[error("list {list} does not declare the column(s) {} (its attributes: {})", .columns.join(", "), if .declared.is_empty() { "none".to_string() } else { .declared.join(", ") })]
    UndeclaredColumns {
        list: String,
        columns: Vec<String>,
        declared: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> ImportError {
        ImportError::Store(e.into())
    }
}

/// Refuses a file whose attribute `columns` (its header less `email`,
/// `name` and the export's own columns) name one that `list` does not
/// declare: every row would lose it.
pub fn check_columns(list: &List, columns: &[String]) -> Result<(), ImportError> {
    let mut undeclared: Vec<String> = columns
        .iter()
        .filter(|c| !list.attributes.contains(c))
        .cloned()
        .collect();
    undeclared.dedup();
    if undeclared.is_empty() {
        return Ok(());
    }
    Err(ImportError::UndeclaredColumns {
        list: list.id.clone(),
        columns: undeclared,
        declared: list.attributes.clone(),
    })
}

/// Imports `rows` into `list`. Idempotent: a row that is already confirmed
/// changes nothing. Never re-adds someone who left, or someone forgotten
/// (unless `allow_forgotten`). With `invite`, nobody is subscribed: each
/// new row gets an invitation, within the confirmation cap.
pub fn import(
    ctx: &Context,
    list: &List,
    rows: Vec<Row>,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let now = ctx.now();
    let mut report = ImportReport::default();
    let consent_text = opts
        .consent
        .as_deref()
        .map(address::header_safe)
        .unwrap_or_default();
    if !opts.invite && consent_text.trim().is_empty() {
        return Err(ImportError::NoConsent);
    }
    // Checked once a call: hashing every row of a big file only to look
    // each hash up in an empty list is most of the cost of the check.
    let any_suppressed = !opts.allow_forgotten && ctx.store.any_suppressed()?;
    let mut ready = Vec::with_capacity(rows.len());
    for row in rows {
        let unknown: Vec<String> = row
            .attributes
            .keys()
            .filter(|k| !list.attributes.contains(k))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            report
                .skipped
                .push((row.line, Skip::UnknownColumns(unknown)));
            continue;
        }
        if let Some(status) = row.status.as_deref().filter(|s| *s != "confirmed") {
            report
                .skipped
                .push((row.line, Skip::NotConfirmed(status.to_string())));
            continue;
        }
        let email = address::normalize(&row.email);
        if any_suppressed
            && ctx
                .store
                .is_suppressed(&ctx.secret.suppression_hash(&email))?
        {
            report.skipped.push((row.line, Skip::Forgotten));
            continue;
        }
        let name = clip_name_owned(row.name);
        let mut attributes = row.attributes;
        for v in attributes.values_mut() {
            *v = clip_name_owned(std::mem::take(v));
        }
        ready.push(Ready {
            line: row.line,
            email,
            name,
            attributes,
        });
    }
    // One write per `IMPORT_WRITE_ROWS` rows, in the file's order: a row's
    // outcome never depends on a later one's, and a failure or a crash
    // leaves rows written before it, each with its index entry, so running
    // the file again adds exactly the rows that were not (the rest are
    // unchanged) and the tallies are right (`Store::write_records` says
    // how). With consent a write holds subscriber records only; an
    // invitation queues mail too, so it is one transaction per
    // `IMPORT_TX_ROWS` rows (bigger transactions cost sled more per row:
    // every node a transaction replaces is kept until it ends).
    let mut outcomes = Vec::with_capacity(ready.len());
    let mut ready = ready.into_iter().peekable();
    while ready.peek().is_some() {
        let size = match opts.invite {
            true => IMPORT_TX_ROWS,
            false => IMPORT_WRITE_ROWS,
        };
        let chunk: Vec<Ready> = ready.by_ref().take(size).collect();
        let rows = |tx: &mut Tx<'_>| {
            chunk
                .into_iter()
                .map(|r| {
                    let line = r.line;
                    Ok((
                        line,
                        import_row(ctx, tx, list, r, opts, &consent_text, now)?,
                    ))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        };
        outcomes.extend(match opts.invite {
            true => ctx.store.write(rows)?,
            false => ctx.store.write_records(rows)?,
        });
    }
    for (line, outcome) in outcomes {
        match outcome {
            Outcome::Added => report.added += 1,
            Outcome::Invited => report.invited += 1,
            Outcome::Unchanged => report.unchanged += 1,
            Outcome::Skip(why) => report.skipped.push((line, why)),
        }
    }
    Ok(report)
}

/// Rows per store transaction of an import. sled keeps every tree node a
/// transaction replaces until the transaction ends, so its cost per row
/// grows with its size: 100,000 rows took 4.4-5.3 CPU seconds at 50 rows
/// a transaction, 5.4-5.6 at 200 and 6.5 at 5,000 (at 5-10, the commits'
/// own cost shows: 6.1-6.7). BENCHMARKS.md has the import figures.
pub const IMPORT_TX_ROWS: usize = 50;

/// Rows per write of an import with consent (`Store::write_records`, no
/// transaction). Bigger writes cost less per row there: 200,000 rows took
/// 4.3 and 5.3 CPU seconds per 100,000 at 1,000 rows a write, 5.4 and 7.4
/// at 50, and 5.2 and 6.2 at 5,000 (BENCHMARKS.md, issue 17).
pub const IMPORT_WRITE_ROWS: usize = 1_000;

/// A row that passed the checks outside the transaction.
struct Ready {
    line: usize,
    email: String,
    name: String,
    attributes: BTreeMap<String, String>,
}

/// What importing one row does, inside the batch's transaction.
fn import_row(
    ctx: &Context,
    tx: &mut Tx<'_>,
    list: &List,
    ready: Ready,
    opts: &ImportOptions,
    consent_text: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Outcome> {
    let Ready {
        line,
        email,
        name,
        attributes,
    } = ready;
    let existing = tx.subscriber(&list.id, &email)?;
    match existing.as_ref().map(|s| s.status) {
        Some(Status::Confirmed) => return Ok(Outcome::Unchanged),
        Some(Status::Unsubscribed) => return Ok(Outcome::Skip(Skip::Left)),
        Some(Status::Disabled) => return Ok(Outcome::Skip(Skip::Disabled)),
        Some(Status::Bounced) => return Ok(Outcome::Skip(Skip::Bounced)),
        _ => {}
    }
    if opts.invite {
        if existing
            .as_ref()
            .is_some_and(|s| s.status == Status::AwaitingApproval)
        {
            return Ok(Outcome::Unchanged);
        }
        if !crate::subscription::budget::confirmation_budget(
            ctx,
            tx,
            crate::subscription::budget::Budget::Invitation,
            list,
            &email,
            now,
        )? {
            return Ok(Outcome::Skip(Skip::CapReached));
        }
        let mut s = existing
            .unwrap_or_else(|| Subscriber::new(0, &list.id, &email, &name, Status::Pending, now));
        if s.id == 0 {
            s.id = tx.random_id()?;
            s.attributes = attributes.clone();
            tx.put_subscriber(&s);
        }
        let pending = Pending {
            v: RECORD_VERSION,
            id: tx.random_id()?,
            list: list.id.clone(),
            email: email.clone(),
            name: name.clone(),
            action: PendingAction::Subscribe,
            issued: ctx.now_secs(),
            method: "invitation".into(),
            evidence: format!("invited from {} line {line}", opts.source),
            attributes: attributes.clone(),
            completed: false,
            campaign: None,
        };
        let token = ctx.secret.mint(
            Purpose::ConfirmSubscribe,
            &list.id,
            &email,
            pending.id,
            pending.issued,
        );
        tx.put_pending(&pending);
        let mut data = crate::subscription::answer::base_data(ctx, list, &email, &name);
        data["token"] = json!(token);
        data["confirm_url"] = json!(format!("{}/confirm/{token}", ctx.config.base_url()));
        data["confirm_address"] = json!(lists::list_address(
            list,
            "confirm",
            Some(&token),
            &ctx.config.domain
        ));
        let reply_to = lists::list_address(list, "confirm", Some(&token), &ctx.config.domain);
        crate::subscription::answer::queue_mail_as(
            ctx,
            tx,
            list,
            "invite",
            &email,
            &name,
            &data,
            Some(reply_to),
            AutoSubmitted::Generated,
            None,
            crate::subscription::answer::Dispatch::Confirmation,
        )?;
        return Ok(Outcome::Invited);
    }
    let mut s = existing
        .unwrap_or_else(|| Subscriber::new(0, &list.id, &email, &name, Status::Pending, now));
    if s.id == 0 {
        s.id = tx.random_id()?;
    }
    if !name.is_empty() {
        s.name = name;
    }
    s.attributes.extend(attributes);
    s.status = Status::Confirmed;
    s.subscribed_at = Some(now);
    s.updated_at = now;
    s.consent = Some(Consent {
        method: "import".into(),
        at: now,
        evidence: format!("{consent_text} ({} line {line})", opts.source),
        confirmed_by: Some("recorded by an admin at import".into()),
    });
    tx.put_subscriber(&s);
    Ok(Outcome::Added)
}

enum Outcome {
    Added,
    Invited,
    Unchanged,
    Skip(Skip),
}

/// Everything stored about one person, across lists (GDPR art. 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub email: String,
    pub subscriptions: Vec<Subscription>,
    pub messages_ignored: Vec<IgnoredFrom>,
    pub mails_waiting_to_be_sent: usize,
    /// On the suppression list.
    pub forgotten: bool,
}

/// One list's record of a person. Times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub list: String,
    pub email: String,
    pub name: String,
    pub status: Status,
    pub attributes: BTreeMap<String, String>,
    pub consent: Option<Consent>,
    pub created_at: String,
    pub subscribed_at: Option<String>,
    pub unsubscribed_at: Option<String>,
    pub bounces: u32,
    pub last_bounce_at: Option<String>,
    /// Why the last bounce failed (`userunknown`, `mailboxfull`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_bounce_reason: Option<String>,
    /// An outstanding bounce probe: when it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_sent_at: Option<String>,
}

/// A message of theirs that was ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredFrom {
    /// RFC 3339.
    pub at: String,
    pub list: String,
    pub subject: String,
    pub reason: String,
}

/// Everything stored about one person, across lists (GDPR art. 15).
pub fn person(ctx: &Context, email: &str) -> anyhow::Result<Person> {
    let wanted = email.trim().to_lowercase();
    let mut subscriptions = Vec::new();
    for list in ctx.lists.iter() {
        if let Some(s) = ctx.store.subscriber(&list.id, &wanted)? {
            subscriptions.push(Subscription {
                list: list.id.clone(),
                email: s.email,
                name: s.name,
                status: s.status,
                attributes: s.attributes,
                consent: s.consent,
                created_at: s.created_at.to_rfc3339(),
                subscribed_at: s.subscribed_at.map(|t| t.to_rfc3339()),
                unsubscribed_at: s.unsubscribed_at.map(|t| t.to_rfc3339()),
                bounces: s.bounces,
                last_bounce_at: s.last_bounce_at.map(|t| t.to_rfc3339()),
                last_bounce_reason: s.last_bounce_reason,
                probe_sent_at: s.probe_sent_at.map(|t| t.to_rfc3339()),
            });
        }
    }
    let messages_ignored = ctx
        .store
        .ignored()?
        .into_iter()
        .filter(|i| i.sender.to_lowercase() == wanted)
        .map(|i| IgnoredFrom {
            at: i.at.to_rfc3339(),
            list: i.list,
            subject: i.subject,
            reason: i.reason,
        })
        .collect();
    let queued = ctx
        .store
        .queued_mail()?
        .iter()
        .filter(|m| m.forward_path.iter().any(|f| f.to_lowercase() == wanted))
        .count();
    Ok(Person {
        email: email.trim().to_string(),
        subscriptions,
        messages_ignored,
        mails_waiting_to_be_sent: queued,
        forgotten: ctx
            .store
            .is_suppressed(&ctx.secret.suppression_hash(&wanted))?,
    })
}

/// Erases a person (GDPR art. 17). Returns how many records went.
/// The `n` latest people to join `list` and to leave it, newest first
/// (the workspace's overview).
pub fn latest(
    ctx: &Context,
    list: &str,
    n: usize,
) -> anyhow::Result<(Vec<Subscriber>, Vec<Subscriber>)> {
    Ok(ctx.store.latest_changes(list, n)?)
}

pub fn forget(ctx: &Context, email: &str) -> anyhow::Result<usize> {
    if !address::is_valid(email) {
        anyhow::bail!("{email:?} is not an e-mail address");
    }
    let hash = ctx.secret.suppression_hash(email);
    let now = ctx.now();
    ctx.store.write(|tx| Ok(tx.forget(email, &hash, now)?))
}
