//! Admin requests: what the CLI asks of the store, carried out in the daemon
//! over a Unix socket in `data_dir` (mode 0600), or in the CLI's own process
//! when no daemon runs. sled admits one process, so there is no third way.
//!
//! The wire format is one JSON request line and one JSON response line.
//! Output formatting (table, CSV) is the CLI's business, not this module's.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::campaign::{self, NewCampaign, Steer};
use crate::daemon::context::Context;
use crate::mail::router::Refusal;
use crate::store::Content;
use crate::store::{Status, Subscriber};

/// How long a client may take to send its request line.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Longest request line: a whole message for `inject`, base64-encoded, plus room.
fn max_request_bytes(ctx: &Context) -> usize {
    ctx.config.inbound.max_message_bytes / 3 * 4 + 64 * 1024
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Lists,
    Subscribers {
        list: String,
        status: Option<String>,
    },
    Add {
        list: String,
        email: String,
        name: Option<String>,
        attributes: BTreeMap<String, String>,
        consent: String,
    },
    Remove {
        list: String,
        email: String,
    },
    Inject {
        recipient: String,
        sender: Option<String>,
        /// The message, base64.
        message: String,
    },
    /// Queue a campaign (or, with `dry_run`, only validate and count).
    Queue {
        list: String,
        content: WireContent,
        filters: Vec<(String, String)>,
        /// RFC 3339; None: now.
        at: Option<String>,
        dry_run: bool,
    },
    /// One test copy of a campaign's content to `to`.
    SendTest {
        list: String,
        content: WireContent,
        to: String,
    },
    Campaigns,
    /// Inbound messages that were neither acted on nor forwarded, and why.
    Ignored,
    Import {
        list: String,
        rows: Vec<crate::people::csvfile::Row>,
        options: crate::people::ImportOptions,
    },
    Person {
        email: String,
    },
    Forget {
        email: String,
    },
    /// Monthly figures for one list, or all lists together.
    Report {
        list: Option<String>,
    },
    /// A consistent snapshot of the store into `path` (absolute), mode 0600.
    Backup {
        path: String,
    },
    Status {
        id: u64,
    },
    Steer {
        id: u64,
        /// `pause`, `resume` or `cancel`.
        action: String,
    },
}

/// Campaign content on the wire: attachment bodies in base64, not as JSON
/// arrays of numbers (four times smaller).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireContent {
    pub content: Content,
    /// One base64 body per attachment, in order.
    pub attachments: Vec<String>,
}

impl WireContent {
    pub fn new(mut content: Content) -> WireContent {
        let attachments = content
            .attachments
            .iter_mut()
            .map(|a| BASE64.encode(&std::mem::take(&mut a.data)))
            .collect();
        WireContent {
            content,
            attachments,
        }
    }

    pub fn into_content(self) -> Result<Content, Failure> {
        let mut content = self.content;
        if content.attachments.len() != self.attachments.len() {
            return Err(Failure::usage("attachment count mismatch"));
        }
        for (a, b64) in content.attachments.iter_mut().zip(self.attachments) {
            a.data = BASE64
                .decode(b64.as_bytes())
                .map_err(|e| Failure::usage(format!("bad attachment encoding: {e}")))?;
        }
        Ok(content)
    }
}

/// Why a request failed; `exit` is the CLI's exit code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub exit: i32,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit: 1,
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Failure {
        anyhow::Error::from(e).into()
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure {
            message: format!("{e:#}"),
            exit: 1,
        }
    }
}

/// sysexits(3) codes for `inject`.
pub mod sysexits {
    pub const OK: i32 = 0;
    pub const DATAERR: i32 = 65;
    pub const NOUSER: i32 = 67;
    pub const TEMPFAIL: i32 = 75;
}

/// The JSON form of a subscriber that `subscribers` prints (spec: at least
/// email, name, status, bounces, subscribed_at, attributes).
pub fn subscriber_json(s: &Subscriber) -> Value {
    json!({
        "email": s.email,
        "name": s.name,
        "status": s.status.as_str(),
        "bounces": s.bounces,
        "bounce_score": (s.bounce_score * 100.0).round() / 100.0,
        "subscribed_at": s.subscribed_at.map(|t| t.to_rfc3339()),
        "unsubscribed_at": s.unsubscribed_at.map(|t| t.to_rfc3339()),
        "attributes": s.attributes,
        "consent": s.consent,
    })
}

/// Rows per page of a streamed subscriber listing.
const ROWS_PER_PAGE: usize = 512;

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
}

impl<'c> SubscriberPages<'c> {
    /// Checks the list and the status filter.
    pub fn new(
        ctx: &'c Context,
        list: &str,
        status: Option<&str>,
    ) -> Result<SubscriberPages<'c>, Failure> {
        let l = ctx.lists.get(list).ok_or_else(|| {
            let known: Vec<_> = ctx.lists.iter().map(|l| l.id.as_str()).collect();
            Failure::usage(format!("no list {list:?} (lists: {})", known.join(", ")))
        })?;
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
        })
    }

    /// The next page of rows (as `subscriber_json` gives them); None at the end.
    pub fn next_page(&mut self) -> anyhow::Result<Option<Vec<Value>>> {
        while !self.done {
            let batch = self.ctx.store.subscribers_after(
                &self.list,
                self.cursor.as_deref(),
                ROWS_PER_PAGE,
            )?;
            self.done = batch.len() < ROWS_PER_PAGE;
            let Some(last) = batch.last() else { break };
            self.cursor = Some(last.email.clone());
            let rows: Vec<Value> = batch
                .iter()
                .filter(|s| self.status.is_none_or(|st| s.status == st))
                .map(subscriber_json)
                .collect();
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
        Ok(None)
    }
}

/// One line of a streamed answer, before its closing `ok` or `err`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Streamed {
    /// First: the attribute columns.
    Head {
        attributes: Vec<String>,
    },
    Row(Value),
}

/// Carries out one request. Changes are synced before this returns Ok.
pub async fn execute(ctx: &Context, request: Request) -> Result<Value, Failure> {
    let list_of = |id: &str| {
        ctx.lists.get(id).ok_or_else(|| {
            let known: Vec<_> = ctx.lists.iter().map(|l| l.id.as_str()).collect();
            Failure::usage(format!("no list {id:?} (lists: {})", known.join(", ")))
        })
    };
    let value = match request {
        Request::Lists => {
            let mut out = Vec::new();
            for list in ctx.lists.iter() {
                let counts = ctx.store.counts(&list.id)?;
                let by_status: BTreeMap<&str, usize> = Status::ALL
                    .iter()
                    .map(|s| (s.as_str(), counts.get(s).copied().unwrap_or(0)))
                    .collect();
                out.push(json!({
                    "id": list.id,
                    "name": list.name,
                    "address": crate::daemon::lists::list_address(list, "", None, &ctx.config.domain),
                    "subscription": list.subscription,
                    "language": list.language,
                    "counts": by_status,
                }));
            }
            Value::Array(out)
        }
        Request::Subscribers { list, status } => {
            let mut pages = SubscriberPages::new(ctx, &list, status.as_deref())?;
            let mut rows = Vec::new();
            while let Some(page) = pages.next_page()? {
                rows.extend(page);
            }
            Value::Array(rows)
        }
        Request::Add {
            list,
            email,
            name,
            attributes,
            consent,
        } => {
            let list = list_of(&list)?;
            let msg = crate::subscription::by_admin::admin_add(
                ctx,
                list,
                &email,
                name.as_deref(),
                attributes,
                &consent,
            )?;
            ctx.store.sync().await?;
            ctx.mail_ready.notify_one();
            json!(msg)
        }
        Request::Remove { list, email } => {
            let list = list_of(&list)?;
            let msg = crate::subscription::by_admin::admin_remove(ctx, list, &email)?;
            ctx.store.sync().await?;
            json!(msg)
        }
        Request::Queue {
            list,
            content,
            filters,
            at,
            dry_run,
        } => {
            let list = list_of(&list)?;
            let content = content.into_content()?;
            let at = match at {
                Some(t) => Some(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map_err(|e| Failure::usage(format!("--at {t:?}: {e}")))?
                        .with_timezone(&chrono::Utc),
                ),
                None => None,
            };
            campaign::check_filters(list, &filters)?;
            crate::compose::mime::Prepared::new(&content, list, &ctx.config.templates_dir)
                .map_err(|e| Failure::usage(e.to_string()))?;
            let recipients = campaign::count_recipients(ctx, &list.id, &filters)?;
            if dry_run {
                json!({"dry_run": true, "recipients": recipients, "subject": content.subject})
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
                let mut v = campaign::campaign_json(&c);
                v["recipients"] = json!(recipients);
                v
            }
        }
        Request::SendTest { list, content, to } => {
            let list = list_of(&list)?;
            let content = content.into_content()?;
            let msg = campaign::send_test(ctx, list, &content, &to)?;
            ctx.store.sync().await?;
            ctx.mail_ready.notify_one();
            json!(msg)
        }
        Request::Import {
            list,
            rows,
            options,
        } => {
            let list = list_of(&list)?;
            let report = crate::people::import(ctx, list, &rows, &options)?;
            ctx.store.sync().await?;
            ctx.mail_ready.notify_one();
            serde_json::to_value(report).map_err(anyhow::Error::from)?
        }
        Request::Report { list } => {
            let ids: Vec<String> = match list {
                Some(id) => vec![list_of(&id)?.id.clone()],
                None => ctx.lists.iter().map(|l| l.id.clone()).collect(),
            };
            let mut people = Vec::new();
            for id in &ids {
                for s in ctx.store.subscribers(id)? {
                    people.push(crate::people::report::PersonHistory {
                        joined: s.subscribed_at,
                        left: s.unsubscribed_at.filter(|_| s.status != Status::Confirmed),
                        bounces: s.bounces,
                        last_bounce: s.last_bounce_at,
                    });
                }
            }
            let campaigns: Vec<crate::people::report::CampaignHistory> = ctx
                .store
                .campaigns()?
                .into_iter()
                .filter(|c| ids.contains(&c.list))
                .map(|c| crate::people::report::CampaignHistory {
                    subject: c.content.subject,
                    started: c.started_at,
                    delivered: c.sent,
                    failed: c.failed,
                })
                .collect();
            serde_json::to_value(crate::people::report::monthly(
                &people,
                &campaigns,
                ctx.now(),
            ))
            .map_err(anyhow::Error::from)?
        }
        Request::Person { email } => crate::people::person(ctx, &email)?,
        Request::Forget { email } => {
            let n = crate::people::forget(ctx, &email)?;
            ctx.store.sync().await?;
            json!(format!(
                "forgot {email}: {n} records erased. A salted hash stays on the suppression list, so no import brings them back unless you pass --allow-forgotten; if they subscribe again themselves, that lifts it."
            ))
        }
        Request::Backup { path } => {
            let path = std::path::PathBuf::from(path);
            if !path.is_absolute() {
                return Err(Failure::usage("backup needs an absolute path"));
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options
                .open(&path)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            let mut out = std::io::BufWriter::new(file);
            let n = ctx.store.backup(&mut out, ctx.secret.bytes(), ctx.now())?;
            out.into_inner()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .sync_all()
                .map_err(anyhow::Error::from)?;
            json!(format!("backed up {n} records to {}", path.display()))
        }
        Request::Ignored => Value::Array(
            ctx.store
                .ignored()?
                .iter()
                .map(|i| {
                    json!({
                        "at": i.at.to_rfc3339(),
                        "list": i.list,
                        "address": i.address,
                        "sender": i.sender,
                        "subject": i.subject,
                        "message_id": i.message_id,
                        "reason": i.reason,
                    })
                })
                .collect(),
        ),
        Request::Campaigns => Value::Array(
            ctx.store
                .campaigns()?
                .iter()
                .map(campaign::campaign_json)
                .collect(),
        ),
        Request::Status { id } => match ctx.store.campaign(id)? {
            Some(c) => campaign::campaign_json(&c),
            None => return Err(Failure::usage(format!("no campaign {id}"))),
        },
        Request::Steer { id, action } => {
            let how = match action.as_str() {
                "pause" => Steer::Pause,
                "resume" => Steer::Resume,
                "cancel" => Steer::Cancel,
                other => return Err(Failure::usage(format!("unknown action {other:?}"))),
            };
            let c = campaign::steer(ctx, id, how)?;
            ctx.store.sync().await?;
            ctx.campaign_ready.notify_one();
            campaign::campaign_json(&c)
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
                Ok(handled) => json!(handled.what),
                Err(e) => {
                    let exit = match e {
                        Refusal::Unparseable => sysexits::DATAERR,
                        Refusal::UnknownRecipient => sysexits::NOUSER,
                        Refusal::Temporary(_) => sysexits::TEMPFAIL,
                    };
                    return Err(Failure {
                        // Not the recipient itself: it may carry a token,
                        // and this text ends up in the MTA's logs.
                        message: format!("inject: {e}"),
                        exit,
                    });
                }
            }
        }
    };
    Ok(value)
}

/// Serves admin requests on `path` until `shutdown` turns true.
pub async fn serve(ctx: Arc<Context>, listener: UnixListener, mut shutdown: watch::Receiver<bool>) {
    // Requests in flight finish before shutdown goes on, so a CLI call that
    // changed the store also gets its answer.
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        while in_flight.try_join_next().is_some() {}
        let stream = tokio::select! {
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let ctx = ctx.clone();
        in_flight.spawn(async move {
            if let Err(e) = answer(&ctx, stream).await {
                tracing::warn!(error = %e, "admin connection failed");
            }
        });
    }
    while in_flight.join_next().await.is_some() {}
}

async fn answer(ctx: &Context, stream: UnixStream) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let limit = max_request_bytes(ctx) as u64;
    let mut reader = BufReader::new(read).take(limit);
    // A client that connects and says nothing must not hold up shutdown.
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut line))
        .await
        .map_err(|_| anyhow::anyhow!("no request within {REQUEST_TIMEOUT:?}"))??;
    let response = match serde_json::from_slice::<Request>(&line) {
        Ok(Request::Subscribers { list, status }) => {
            tracing::info!(command = "subscribers", "admin request");
            return stream_subscribers(ctx, &mut write, &list, status.as_deref()).await;
        }
        Ok(request) => {
            let name = request_name(&request);
            let span = tracing::info_span!("admin", command = name);
            let _enter = span.enter();
            tracing::info!("admin request");
            drop(_enter);
            execute(ctx, request).await
        }
        Err(e) if line.len() as u64 >= limit => {
            Err(Failure::usage(format!("request too large ({e})")))
        }
        Err(e) => Err(Failure::usage(format!("bad admin request: {e}"))),
    };
    let body = match response {
        Ok(v) => json!({"ok": v}),
        Err(f) => json!({"err": f}),
    };
    let mut out = serde_json::to_vec(&body)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    Ok(())
}

/// Answers a subscriber listing as a stream: a `head` line, one `row` line
/// per subscriber, then `{"ok": rows}` (or `err` at the first failure).
async fn stream_subscribers(
    ctx: &Context,
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    list: &str,
    status: Option<&str>,
) -> anyhow::Result<()> {
    let line = |v: &Value| -> anyhow::Result<Vec<u8>> {
        let mut out = serde_json::to_vec(v)?;
        out.push(b'\n');
        Ok(out)
    };
    let mut pages = match SubscriberPages::new(ctx, list, status) {
        Ok(p) => p,
        Err(f) => return Ok(write.write_all(&line(&json!({ "err": f }))?).await?),
    };
    let head = Streamed::Head {
        attributes: pages.attributes.clone(),
    };
    write
        .write_all(&line(&serde_json::to_value(&head)?)?)
        .await?;
    let mut n = 0u64;
    loop {
        match pages.next_page() {
            Ok(Some(rows)) => {
                let mut out = Vec::new();
                for r in rows {
                    out.extend(line(&serde_json::to_value(Streamed::Row(r))?)?);
                    n += 1;
                }
                write.write_all(&out).await?;
            }
            Ok(None) => break,
            Err(e) => {
                let f = Failure::from(e);
                return Ok(write.write_all(&line(&json!({ "err": f }))?).await?);
            }
        }
    }
    write.write_all(&line(&json!({ "ok": n }))?).await?;
    Ok(())
}

fn request_name(r: &Request) -> &'static str {
    match r {
        Request::Lists => "lists",
        Request::Subscribers { .. } => "subscribers",
        Request::Add { .. } => "add",
        Request::Remove { .. } => "remove",
        Request::Inject { .. } => "inject",
        Request::Queue { .. } => "queue",
        Request::SendTest { .. } => "send-test",
        Request::Campaigns => "campaigns",
        Request::Ignored => "ignored",
        Request::Import { .. } => "import",
        Request::Person { .. } => "person",
        Request::Report { .. } => "report",
        Request::Forget { .. } => "forget",
        Request::Backup { .. } => "backup",
        Request::Status { .. } => "status",
        Request::Steer { .. } => "steer",
    }
}

/// Sends `request` to a daemon listening on `socket`. `Ok(None)` means no
/// daemon answers there (no socket, or a stale one), so the caller may open
/// the store itself.
pub async fn call(
    socket: &Path,
    request: &Request,
) -> anyhow::Result<Option<Result<Value, Failure>>> {
    call_streaming(socket, request, |_| Ok(())).await
}

/// Like [`call`], for a request answered as a stream (`subscribers`):
/// `each` gets every line before the closing one (other requests have
/// none). `Ok(None)`: no daemon.
pub async fn call_streaming(
    socket: &Path,
    request: &Request,
    mut each: impl FnMut(Streamed) -> std::io::Result<()>,
) -> anyhow::Result<Option<Result<Value, Failure>>> {
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => anyhow::bail!("{}: cannot reach the daemon: {e}", socket.display()),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.shutdown().await?;
    let mut reader = BufReader::new(read);
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Line {
        Head { attributes: Vec<String> },
        Row(Value),
        Ok(Value),
        Err(Failure),
    }
    let mut buf = Vec::new();
    loop {
        buf.clear();
        reader.read_until(b'\n', &mut buf).await?;
        if buf.is_empty() {
            anyhow::bail!("the daemon closed the connection without a complete answer");
        }
        match serde_json::from_slice::<Line>(&buf)? {
            Line::Head { attributes } => each(Streamed::Head { attributes })?,
            Line::Row(v) => each(Streamed::Row(v))?,
            Line::Ok(v) => return Ok(Some(Ok(v))),
            Line::Err(f) => return Ok(Some(Err(f))),
        }
    }
}

use tokio::io::AsyncReadExt as _;
