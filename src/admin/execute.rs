//! Carrying out one admin request against the context: in the daemon for a
//! client on the socket, or in the CLI's own process when no daemon runs.
//! Every change is synced before the answer.

use data_encoding::BASE64;

use crate::admin::protocol::{
    sysexits, AuditRow, CampaignRow, Cause, DryRun, Failure, Forgot, IgnoredRow, ListRow, Queued,
    Request, Response, SubscriberRow,
};
use crate::campaign::{self, CampaignError, NewCampaign};
use crate::daemon::context::Context;
use crate::daemon::lists::{list_address, List};
use crate::mail::router::Refusal;
use crate::people::report::{self, CampaignHistory, PersonHistory};
use crate::people::ImportError;
use crate::store::Status;
use crate::subscription::by_admin::AddError;

impl From<CampaignError> for Failure {
    fn from(e: CampaignError) -> Failure {
        let cause = match &e {
            CampaignError::UnknownFilter { list, key, known } => Some(Cause::UnknownFilter {
                list: list.clone(),
                key: key.clone(),
                known: known.clone(),
            }),
            CampaignError::NotAnAddress(to) => Some(Cause::NotATestAddress { to: to.clone() }),
            CampaignError::NoCampaign(id) => Some(Cause::NoCampaign { id: *id }),
            CampaignError::Final { id, status } | CampaignError::NotPaused { id, status } => {
                Some(Cause::CannotSteer {
                    id: *id,
                    status: *status,
                })
            }
            _ => None,
        };
        Failure {
            cause: cause.map(Box::new),
            ..Failure::from(anyhow::Error::from(e))
        }
    }
}

/// A refusal of an import's columns: EX_DATAERR, with the list's file.
fn undeclared(ctx: &Context, e: ImportError) -> Failure {
    let ImportError::UndeclaredColumns {
        list,
        columns,
        declared,
    } = &e
    else {
        return Failure::from(e);
    };
    let list_file = ctx.config.lists_dir.join(format!("{list}.toml"));
    Failure {
        cause: Some(Box::new(Cause::UndeclaredColumns {
            list: list.clone(),
            list_file: list_file.display().to_string(),
            columns: columns.clone(),
            declared: declared.clone(),
        })),
        ..Failure::exit(sysexits::DATAERR, e.to_string())
    }
}

impl From<ImportError> for Failure {
    fn from(e: ImportError) -> Failure {
        match e {
            ImportError::NoConsent => Failure::caused(Cause::ImportWithoutConsent, e.to_string()),
            ImportError::UndeclaredColumns { .. } => {
                Failure::exit(sysexits::DATAERR, e.to_string())
            }
            ImportError::Store(e) => Failure::from(e),
        }
    }
}

impl From<AddError> for Failure {
    fn from(e: AddError) -> Failure {
        match e {
            AddError::NoConsent => Failure::caused(Cause::AddWithoutConsent, e.to_string()),
            AddError::Store(e) => Failure::from(e),
            e => Failure::usage(e.to_string()),
        }
    }
}

fn list_of<'c>(ctx: &'c Context, id: &str) -> Result<&'c List, Failure> {
    ctx.lists.get(id).ok_or_else(|| {
        let known: Vec<String> = ctx.lists.iter().map(|l| l.id.clone()).collect();
        let message = format!("no list {id:?} (lists: {})", known.join(", "));
        let id = id.to_string();
        Failure::caused(Cause::NoList { id, known }, message)
    })
}

/// Rows per page of a subscriber listing.
const ROWS_PER_PAGE: usize = 512;
/// Records read per page of a sieved search (most are not decoded).
const SIEVE_PER_PAGE: usize = 4096;

/// A list's subscribers, a page at a time, so neither the daemon nor the
/// CLI holds a whole list (a million records) in memory.
pub struct SubscriberPages<'c> {
    ctx: &'c Context,
    list: String,
    status: Option<Status>,
    cursor: Option<String>,
    done: bool,
    /// The columns after the fixed ones: the list's declared attributes.
    pub attributes: Vec<String>,
    /// See [`SubscriberPages::holding`].
    needles: Vec<Vec<u8>>,
}

impl<'c> SubscriberPages<'c> {
    /// Checks the list and the status filter.
    pub fn new(
        ctx: &'c Context,
        list: &str,
        status: Option<&str>,
    ) -> Result<SubscriberPages<'c>, Failure> {
        let l = list_of(ctx, list)?;
        let status = match status {
            Some(s) => Some(Status::parse(s).ok_or_else(|| {
                let all: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
                Failure::usage(format!("unknown status {s:?} (one of: {})", all.join(", ")))
            })?),
            None => None,
        };
        Ok(SubscriberPages {
            ctx,
            list: l.id.clone(),
            status,
            cursor: None,
            done: false,
            attributes: l.attributes.clone(),
            needles: Vec::new(),
        })
    }

    /// Starts after the address `cursor` (lower case), for a listing shown
    /// a page at a time.
    pub fn after(mut self, cursor: Option<String>) -> SubscriberPages<'c> {
        self.cursor = cursor;
        self
    }

    /// Only records whose stored form holds each of `texts` (ASCII, case
    /// aside) are decoded and given: a quick sieve for a search, which the
    /// caller still checks exactly. A text that is not plain ASCII, or
    /// holds a quote or backslash (stored escaped), sieves nothing.
    pub fn holding(mut self, texts: &[&str]) -> SubscriberPages<'c> {
        self.needles = texts
            .iter()
            .filter(|t| t.is_ascii() && !t.contains(['"', '\\']) && !t.is_empty())
            .map(|t| t.to_ascii_lowercase().into_bytes())
            .collect();
        self
    }

    /// The next page of rows; None at the end.
    pub fn next_page(&mut self) -> anyhow::Result<Option<Vec<SubscriberRow>>> {
        if !self.needles.is_empty() || self.status.is_some() {
            while !self.done {
                let (batch, last) = self.ctx.store.subscribers_scan(
                    &self.list,
                    self.cursor.as_deref(),
                    SIEVE_PER_PAGE,
                    self.status,
                    &self.needles,
                )?;
                self.done = last.is_none();
                self.cursor = last;
                if !batch.is_empty() {
                    return Ok(Some(batch.iter().map(SubscriberRow::from).collect()));
                }
            }
            return Ok(None);
        }
        while !self.done {
            let batch = self.ctx.store.subscribers_after(
                &self.list,
                self.cursor.as_deref(),
                ROWS_PER_PAGE,
            )?;
            self.done = batch.len() < ROWS_PER_PAGE;
            let Some(last) = batch.last() else { break };
            self.cursor = Some(last.email.clone());
            let rows: Vec<SubscriberRow> = batch
                .iter()
                .filter(|s| self.status.is_none_or(|st| s.status == st))
                .map(SubscriberRow::from)
                .collect();
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
        Ok(None)
    }
}

/// Who asks through the CLI: `cli (user NAME)` for Unix user `uid`.
pub fn cli_who(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 1024];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pwd` and `buf`, which outlive the
    // call, and sets `found` to `&pwd` or null.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: pw_name points into `buf`, NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return format!("cli (user {})", name.to_string_lossy());
    }
    format!("cli (uid {uid})")
}

/// The audit log's words for a request that changes something, or None.
fn audit_line(request: &Request, response: &Response) -> Option<(&'static str, String)> {
    let what = request.name();
    let detail = match (request, response) {
        (Request::Add { list, email, .. }, _) | (Request::Remove { list, email }, _) => {
            format!("{list}: {email}")
        }
        (Request::Queue { dry_run: true, .. }, _) => return None,
        (Request::Queue { list, filters, .. }, Response::Queued(q)) => {
            let mut d = format!(
                "{list}: campaign {} {:?} to {} at {}",
                q.campaign.id, q.campaign.subject, q.recipients, q.campaign.scheduled_at
            );
            if !filters.is_empty() {
                let f: Vec<String> = filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
                d.push_str(&format!(" where {}", f.join(", ")));
            }
            d
        }
        (Request::SendTest { list, to, .. }, _) => format!("{list}: test copy to {to}"),
        (Request::Import { list, options, .. }, Response::Imported(r)) => format!(
            "{list}: {} added, {} invited, {} unchanged, {} skipped ({})",
            r.added,
            r.invited,
            r.unchanged,
            r.skipped.len(),
            match &options.consent {
                Some(c) if !options.invite => format!("consent: {c}"),
                _ => "invitations".to_string(),
            }
        ),
        (Request::Forget { .. }, _) => "a person (address not kept)".to_string(),
        (Request::Steer { id, action }, response) => {
            let list = match response {
                Response::Campaign(c) => format!("{}: ", c.list),
                _ => String::new(),
            };
            let word = match action {
                campaign::Steer::Pause => "pause",
                campaign::Steer::Resume => "resume",
                campaign::Steer::Cancel => "cancel",
            };
            return Some((word, format!("{list}campaign {id}")));
        }
        (Request::Backup { path }, _) => path.clone(),
        _ => return None,
    };
    Some((what, detail))
}

/// Carries out `request` for `who` and records it in the audit log when
/// it changed something: the one way in for the CLI's socket, the CLI's
/// own process and the workspace, so each change is audited once, with
/// the same words. The record is synced before this returns Ok.
pub async fn execute_as(ctx: &Context, who: &str, request: Request) -> Result<Response, Failure> {
    let audit = request.for_audit();
    let response = execute(ctx, request).await?;
    if let Some((what, detail)) = audit_line(&audit, &response) {
        crate::workspace::audit::record(ctx, who, what, &detail)?;
        ctx.store.sync().await?;
    }
    Ok(response)
}

/// Carries out one request. Changes are synced before this returns Ok.
pub async fn execute(ctx: &Context, request: Request) -> Result<Response, Failure> {
    let response = match request {
        Request::Lists => {
            let mut rows = Vec::new();
            for list in ctx.lists.iter() {
                let counts = ctx.store.counts(&list.id)?;
                rows.push(ListRow {
                    id: list.id.clone(),
                    name: list.name.clone(),
                    address: list_address(list, "", None, &ctx.config.domain),
                    subscription: list.subscription,
                    language: list.language,
                    counts: Status::ALL
                        .iter()
                        .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
                        .collect(),
                });
            }
            Response::Lists(rows)
        }
        Request::Subscribers { list, status } => {
            let mut pages = SubscriberPages::new(ctx, &list, status.as_deref())?;
            let mut rows = Vec::new();
            while let Some(page) = pages.next_page()? {
                rows.extend(page);
            }
            Response::Subscribers(rows)
        }
        Request::Add {
            list,
            email,
            name,
            attributes,
            consent,
        } => {
            let list = list_of(ctx, &list)?;
            let said = crate::subscription::by_admin::admin_add(
                ctx,
                list,
                &email,
                name.as_deref(),
                attributes,
                &consent,
            )?;
            ctx.store.sync().await?;
            ctx.mail_ready.notify_one();
            Response::Said(said)
        }
        Request::Remove { list, email } => {
            let list = list_of(ctx, &list)?;
            let said = crate::subscription::by_admin::admin_remove(ctx, list, &email)?;
            ctx.store.sync().await?;
            Response::Said(said)
        }
        Request::Queue {
            list,
            content,
            filters,
            at,
            dry_run,
        } => {
            let list = list_of(ctx, &list)?;
            let content = content.into_content()?;
            let at = match at {
                Some(t) => Some(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map_err(|e| Failure::usage(format!("the time to send, {t:?}: {e}")))?
                        .with_timezone(&chrono::Utc),
                ),
                None => None,
            };
            campaign::check_filters(list, &filters)?;
            crate::compose::mime::Prepared::new(&content, list, &ctx.config.templates_dir)
                .map_err(|e| Failure::usage(e.to_string()))?;
            let recipients = campaign::count_recipients(ctx, &list.id, &filters)?;
            if dry_run {
                Response::DryRun(DryRun {
                    dry_run: true,
                    recipients,
                    subject: content.subject,
                })
            } else {
                let c = campaign::create(
                    ctx,
                    NewCampaign {
                        list: list.id.clone(),
                        content,
                        filters,
                        at,
                        draft: false,
                    },
                )?;
                ctx.store.sync().await?;
                ctx.campaign_ready.notify_one();
                Response::Queued(Queued {
                    campaign: CampaignRow::from(&c),
                    recipients,
                })
            }
        }
        Request::SendTest { list, content, to } => {
            let list = list_of(ctx, &list)?;
            let content = content.into_content()?;
            let said = campaign::send_test(ctx, list, &content, &to)?;
            ctx.store.sync().await?;
            ctx.mail_ready.notify_one();
            Response::Said(said)
        }
        Request::Import {
            list,
            columns,
            rows,
            options,
        } => {
            let list = list_of(ctx, &list)?;
            crate::people::check_columns(list, &columns).map_err(|e| undeclared(ctx, e))?;
            let report = crate::people::import(ctx, list, rows, &options)?;
            ctx.store.sync().await?;
            ctx.mail_ready.notify_one();
            Response::Imported(report)
        }
        Request::Report { list } => {
            let ids: Vec<String> = match list {
                Some(id) => vec![list_of(ctx, &id)?.id.clone()],
                None => ctx.lists.iter().map(|l| l.id.clone()).collect(),
            };
            Response::Report(monthly_report(ctx, &ids)?)
        }
        Request::Person { email } => Response::Person(crate::people::person(ctx, &email)?),
        Request::Forget { email } => {
            let erased = crate::people::forget(ctx, &email)?;
            ctx.store.sync().await?;
            Response::Forgot(Forgot { email, erased })
        }
        Request::Backup { path } => {
            let path = std::path::PathBuf::from(path);
            if !path.is_absolute() {
                return Err(Failure::usage("backup needs an absolute path"));
            }
            let n = crate::daemon::files::backup(&ctx.store, ctx.secret.bytes(), ctx.now(), &path)?;
            Response::Said(format!("backed up {n} records to {}", path.display()))
        }
        Request::Audit { since } => {
            let since = match since {
                Some(t) => Some(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map_err(|e| Failure::usage(format!("the time {t:?}: {e}")))?
                        .with_timezone(&chrono::Utc),
                ),
                None => None,
            };
            Response::Audit(
                crate::workspace::audit::since(ctx, since)?
                    .iter()
                    .map(AuditRow::from)
                    .collect(),
            )
        }
        Request::Threads { list } => {
            let list = list_of(ctx, &list)?;
            let threads = crate::campaign::threads::threads(ctx, list)?;
            Response::Said(crate::campaign::threads::as_text(&threads, list))
        }
        Request::Ignored => {
            Response::Ignored(ctx.store.ignored()?.iter().map(IgnoredRow::from).collect())
        }
        Request::Campaigns => {
            // Drafts and scheduled campaigns of one list and filter are
            // counted once.
            let mut counted = std::collections::HashMap::new();
            let mut rows = Vec::new();
            for c in ctx.store.campaigns()? {
                let mut row = CampaignRow::from(&c);
                if row.recipients_open() {
                    let key = (c.list.clone(), c.filters.clone());
                    let n = match counted.get(&key) {
                        Some(n) => *n,
                        None => campaign::count_recipients(ctx, &c.list, &c.filters)?,
                    };
                    counted.insert(key, n);
                    row.recipients_when_sent = Some(n);
                }
                rows.push(row);
            }
            Response::Campaigns(rows)
        }
        Request::Status { id } => match ctx.store.campaign(id)? {
            Some(c) => Response::Campaign(campaign_row(ctx, &c)?),
            None => return Err(Failure::from(CampaignError::NoCampaign(id))),
        },
        Request::Steer { id, action } => {
            let c = campaign::steer(ctx, id, action)?;
            ctx.store.sync().await?;
            ctx.campaign_ready.notify_one();
            Response::Campaign(campaign_row(ctx, &c)?)
        }
        Request::Inject {
            recipient,
            sender,
            message,
        } => {
            let raw = BASE64
                .decode(message.as_bytes())
                .map_err(|e| Failure::usage(format!("bad message encoding: {e}")))?;
            match crate::mail::router::handle_inbound(ctx, &recipient, sender.as_deref(), &raw)
                .await
            {
                Ok(handled) => Response::Said(handled.what.to_string()),
                Err(e) => {
                    let exit = match e {
                        Refusal::Unparseable => sysexits::DATAERR,
                        Refusal::UnknownRecipient => sysexits::NOUSER,
                        Refusal::Temporary(_) => sysexits::TEMPFAIL,
                    };
                    // Not the recipient itself: it may carry a token, and
                    // this text ends up in the MTA's logs.
                    return Err(Failure::exit(exit, format!("inject: {e}")));
                }
            }
        }
    };
    Ok(response)
}

/// A campaign as `campaigns` and `status` show it: before sending starts,
/// with the number it would go to now.
fn campaign_row(ctx: &Context, c: &crate::store::Campaign) -> Result<CampaignRow, Failure> {
    let mut row = CampaignRow::from(c);
    if row.recipients_open() {
        row.recipients_when_sent = Some(campaign::count_recipients(ctx, &c.list, &c.filters)?);
    }
    Ok(row)
}

/// Monthly figures for the lists `ids` together.
fn monthly_report(ctx: &Context, ids: &[String]) -> anyhow::Result<Vec<report::Month>> {
    let mut people = Vec::new();
    for id in ids {
        for s in ctx.store.subscribers(id)? {
            people.push(PersonHistory {
                joined: s.subscribed_at,
                left: s.unsubscribed_at.filter(|_| s.status != Status::Confirmed),
                bounces: s.bounces,
                last_bounce: s.last_bounce_at,
            });
        }
    }
    let campaigns: Vec<CampaignHistory> = ctx
        .store
        .campaigns()?
        .into_iter()
        .filter(|c| ids.contains(&c.list))
        .map(|c| CampaignHistory {
            subject: c.content.subject,
            started: c.started_at,
            delivered: c.sent,
            failed: c.failed,
        })
        .collect();
    Ok(report::monthly(&people, &campaigns, ctx.now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_a_client_words_itself_carry_their_cause() {
        let f = Failure::from(ImportError::NoConsent);
        assert_eq!(f.cause.as_deref(), Some(&Cause::ImportWithoutConsent));
        assert!(!f.message.contains("--"), "{}", f.message);
        let f = Failure::from(AddError::NoConsent);
        assert_eq!(f.cause.as_deref(), Some(&Cause::AddWithoutConsent));
        let f = Failure::from(CampaignError::NotAnAddress("x".into()));
        assert_eq!(
            f.cause.as_deref(),
            Some(&Cause::NotATestAddress { to: "x".into() })
        );
        assert_eq!(f.message, "\"x\" is not an e-mail address");
        let f = Failure::from(AddError::NotAnAddress("y".into()));
        assert_eq!((f.cause, f.exit), (None, 1));
        let f = Failure::from(CampaignError::Store(
            anyhow::anyhow!("disk full").context("store write failed"),
        ));
        assert_eq!(f.message, "store write failed: disk full");
    }
}
