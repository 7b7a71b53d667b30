//! Campaigns: newsletters and announcements from queueing to the last
//! delivery. Creating one validates it completely (templates, filters,
//! attachments); the worker fixes the recipients when sending starts, then
//! sends one envelope per recipient (VERP) over `outbound.connections`
//! lanes, paced by `max_per_hour` and a per-domain limit.
//!
//! The relay's answers are recorded by one recorder task in batches: one
//! transaction and one flush for many messages (group commit). A lane may
//! run ahead of the flush within a window of [`UNSYNCED_PER_LANE`] ×
//! connections messages shared by the lanes, so after a kill -9 at most
//! that many go twice. Recipients are streamed from the
//! store in batches; memory does not grow with the list.

pub mod addressee;
pub mod archive;
pub mod digest;
pub mod files;
pub mod preview;
pub mod progress;
pub mod threads;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch, Mutex as AsyncMutex, OwnedSemaphorePermit, Semaphore};

use crate::address;
use crate::campaign::addressee::{Addressee, Copy};
use crate::compose::error::AuthoringError;
use crate::compose::mime::Prepared;
use crate::daemon::context::{Context, Metrics};
use crate::daemon::lists;
use crate::daemon::lists::List;
use crate::outbound::{SendError, Transport};
use crate::store::Content;
use crate::store::{
    Campaign, CampaignStatus, Delivery, DeliveryState, Status, Subscriber, RECORD_VERSION,
};
use crate::time::{SECS_PER_HOUR as HOUR, SECS_PER_MINUTE as MIN};
use crate::token::Purpose;

pub use preview::send_test;

/// Recipients read from the store at a time.
const BATCH: usize = 256;
/// Messages the lanes may have sent (or be sending) before their outcome
/// is durable, per lane: the window is this times `outbound.connections`,
/// shared by the lanes. A kill -9 can send at most the window twice.
pub const UNSYNCED_PER_LANE: usize = 4;
/// Outcomes written in one transaction at most.
const RECORD_BATCH: usize = 512;
/// How long the recorder waits for more outcomes before it writes and
/// flushes, unless half the lanes' run-ahead is already waiting on it.
const RECORD_LINGER: Duration = Duration::from_millis(3);
/// Messages in flight to one recipient domain at once: hosted mail
/// (Gmail, Outlook) throttles senders per domain.
pub const PER_DOMAIN_CONCURRENCY: usize = 2;
/// Delays after the 1st, 2nd, … transient failure of one delivery: minutes
/// growing to hours, three days in all; then it counts as failed.
const DELIVERY_RETRY_DELAYS_SECS: &[i64] = &[
    5 * MIN,
    15 * MIN,
    30 * MIN,
    HOUR,
    2 * HOUR,
    4 * HOUR,
    8 * HOUR,
    12 * HOUR,
    16 * HOUR,
    24 * HOUR,
];
/// How often the worker looks for due campaigns when nothing wakes it.
const POLL: Duration = Duration::from_secs(2);

/// Why a campaign could not be made or changed, apart from the store
/// failing.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("no list {0:?}")]
    NoList(String),
    /// A recipient filter names an attribute the list does not have.
    #[error(
        "filter {key}=…: list {list} has no attribute {key:?} (it has: {})",
        attribute_names(known)
    )]
    UnknownFilter {
        list: String,
        key: String,
        /// The list's attributes.
        known: Vec<String>,
    },
    /// A test copy's address.
    #[error("{0:?} is not an e-mail address")]
    NotAnAddress(String),
    /// The content or a template does not render, with file and line.
    #[error(transparent)]
    Authoring(#[from] AuthoringError),
    #[error("no campaign {0}")]
    NoCampaign(u64),
    /// Done or cancelled.
    #[error("campaign {id} is {} and cannot be changed", .status.as_str())]
    Final { id: u64, status: CampaignStatus },
    #[error("campaign {id} is {}, not paused", .status.as_str())]
    NotPaused { id: u64, status: CampaignStatus },
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for CampaignError {
    fn from(e: crate::store::StoreError) -> CampaignError {
        CampaignError::Store(e.into())
    }
}

fn attribute_names(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    }
}

/// A campaign to create.
pub struct NewCampaign {
    pub list: String,
    pub content: Content,
    pub filters: Vec<(String, String)>,
    /// None: now.
    pub at: Option<DateTime<Utc>>,
    /// Held until an owner approves it (a post mailed to the list).
    pub draft: bool,
}

/// A discussion post to send as it came (`feedback::discussion`).
pub struct NewPost {
    pub list: String,
    /// The tagged subject, for listings.
    pub subject: String,
    /// The author's message.
    pub raw: Vec<u8>,
    pub meta: crate::store::PostMeta,
    /// Held until an owner approves it.
    pub draft: bool,
}

/// Stores a discussion post as a campaign of kind `post`: its bytes in
/// blob 0, sent when due like any campaign, one VERP copy per member.
pub fn create_post(ctx: &Context, new: NewPost) -> Result<Campaign, CampaignError> {
    let list = ctx
        .lists
        .get(&new.list)
        .ok_or_else(|| CampaignError::NoList(new.list.clone()))?;
    let now = ctx.now();
    let campaign = ctx.store.write(|tx| put_post(tx, list, &new, now))?;
    Ok(campaign)
}

/// Writes a post campaign in `tx` (see [`create_post`]).
pub(crate) fn put_post(
    tx: &mut crate::store::Tx<'_>,
    list: &List,
    new: &NewPost,
    now: DateTime<Utc>,
) -> anyhow::Result<Campaign> {
    {
        let id = tx.next_id()?;
        let campaign = Campaign {
            v: RECORD_VERSION,
            id,
            list: list.id.clone(),
            content: Content {
                kind: crate::store::Kind::Post,
                source: "mail".into(),
                subject: new.subject.clone(),
                preheader: String::new(),
                markdown: String::new(),
                title: String::new(),
                link: None,
                attachments: Vec::new(),
            },
            filters: Vec::new(),
            status: if new.draft {
                CampaignStatus::Draft
            } else {
                CampaignStatus::Scheduled
            },
            paused_from: None,
            created_at: now,
            scheduled_at: now,
            started_at: None,
            finished_at: None,
            total: 0,
            sent: 0,
            failed: 0,
            skipped: 0,
            outcome: Default::default(),
            post: Some(new.meta.clone()),
        };
        tx.put_blob(id, 0, &new.raw);
        tx.put_campaign(&campaign);
        Ok(campaign)
    }
}

/// Does `s` match every filter? Attribute values compare case-insensitively.
pub fn matches(s: &Subscriber, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| {
        s.attributes
            .get(k)
            .is_some_and(|have| have.trim().to_lowercase() == v.trim().to_lowercase())
    })
}

/// Checks filters against the list's declared attributes.
pub fn check_filters(list: &List, filters: &[(String, String)]) -> Result<(), CampaignError> {
    match filters.iter().find(|(k, _)| !list.attributes.contains(k)) {
        Some((k, _)) => Err(CampaignError::UnknownFilter {
            list: list.id.clone(),
            key: k.clone(),
            known: list.attributes.clone(),
        }),
        None => Ok(()),
    }
}

/// Confirmed subscribers of `list` that match `filters`, counted by streaming.
pub fn count_recipients(
    ctx: &Context,
    list: &str,
    filters: &[(String, String)],
) -> anyhow::Result<u64> {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let batch = ctx
            .store
            .subscribers_after(list, cursor.as_deref(), BATCH)?;
        let Some(last) = batch.last() else {
            return Ok(n);
        };
        cursor = Some(last.email.clone());
        n += batch
            .iter()
            .filter(|s| s.status == Status::Confirmed && matches(s, filters))
            .count() as u64;
    }
}

/// Validates and stores a campaign as scheduled. Returns it (attachment
/// bodies stripped, as stored).
pub fn create(ctx: &Context, new: NewCampaign) -> Result<Campaign, CampaignError> {
    let list = ctx
        .lists
        .get(&new.list)
        .ok_or_else(|| CampaignError::NoList(new.list.clone()))?;
    check_filters(list, &new.filters)?;
    // Compiles and test-renders: template errors surface here, with file and line.
    Prepared::new(&new.content, list, &ctx.config.templates_dir)?;
    let now = ctx.now();
    let mut stored = new.content.clone();
    for a in &mut stored.attachments {
        a.data = Vec::new();
    }
    let campaign = ctx.store.write(|tx| {
        let id = tx.next_id()?;
        let campaign = Campaign {
            v: RECORD_VERSION,
            id,
            list: list.id.clone(),
            content: stored,
            filters: new.filters.clone(),
            status: if new.draft {
                CampaignStatus::Draft
            } else {
                CampaignStatus::Scheduled
            },
            paused_from: None,
            created_at: now,
            scheduled_at: new.at.unwrap_or(now),
            started_at: None,
            finished_at: None,
            total: 0,
            sent: 0,
            failed: 0,
            skipped: 0,
            outcome: Default::default(),
            post: None,
        };
        for (i, a) in new.content.attachments.iter().enumerate() {
            tx.put_blob(id, i, &a.data);
        }
        tx.put_campaign(&campaign);
        Ok(campaign)
    })?;
    Ok(campaign)
}

/// Steering a campaign (from the CLI, over the admin socket as `pause`,
/// `resume` or `cancel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Steer {
    Pause,
    Resume,
    Cancel,
}

pub fn steer(ctx: &Context, id: u64, how: Steer) -> Result<Campaign, CampaignError> {
    let now = ctx.now();
    // The inner Result is a refusal, the outer one the store failing.
    ctx.store.write(|tx| {
        let Some(mut c) = tx.campaign(id)? else {
            return Ok(Err(CampaignError::NoCampaign(id)));
        };
        match (how, c.status) {
            (_, status) if status.is_final() => {
                return Ok(Err(CampaignError::Final { id, status }));
            }
            (Steer::Pause, CampaignStatus::Paused) => {}
            (Steer::Pause, s) => {
                c.paused_from = Some(s);
                c.status = CampaignStatus::Paused;
            }
            (Steer::Resume, CampaignStatus::Paused) => {
                c.status = c.paused_from.take().unwrap_or(CampaignStatus::Scheduled);
            }
            (Steer::Resume, status) => return Ok(Err(CampaignError::NotPaused { id, status })),
            (Steer::Cancel, _) => {
                c.status = CampaignStatus::Cancelled;
                c.finished_at = Some(now);
            }
        }
        tx.put_campaign(&c);
        Ok(Ok(c))
    })?
}

/// Cancels drafts (posts mailed to the list) that no owner approved
/// before `cutoff` (Unix seconds): their approval token has expired.
pub fn expire_drafts(ctx: &Context, cutoff: u32) -> Result<usize, CampaignError> {
    let stale: Vec<u64> = ctx
        .store
        .campaigns()?
        .into_iter()
        .filter(|c| {
            c.status == CampaignStatus::Draft && c.created_at.timestamp() < i64::from(cutoff)
        })
        .map(|c| c.id)
        .collect();
    for id in &stale {
        steer(ctx, *id, Steer::Cancel)?;
    }
    Ok(stale.len())
}

/// Loads a stored campaign's content with its attachment bodies.
pub fn full_content(ctx: &Context, c: &Campaign) -> anyhow::Result<Content> {
    let mut content = c.content.clone();
    let blobs = ctx.store.blobs(c.id)?;
    for (a, data) in content.attachments.iter_mut().zip(blobs) {
        a.data = data;
    }
    Ok(content)
}

/// Runs campaigns until `shutdown`.
pub async fn run_worker(
    ctx: Arc<Context>,
    transport: Transport,
    mut shutdown: watch::Receiver<bool>,
) {
    // Campaign id → when its next deferred delivery is due.
    let mut next_due: HashMap<u64, i64> = HashMap::new();
    // List → the day its digest was looked at.
    let mut digest_days = HashMap::new();
    loop {
        if let Err(e) = digest::make_due(&ctx, &mut digest_days) {
            tracing::error!(error = %format!("{e:#}"), "making the digests failed");
        }
        if let Err(e) = tick(&ctx, &transport, &shutdown, &mut next_due).await {
            tracing::error!(error = %format!("{e:#}"), "campaign round failed");
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = ctx.campaign_ready.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One look at every campaign: start those due, send what is due.
pub async fn tick(
    ctx: &Arc<Context>,
    transport: &Transport,
    shutdown: &watch::Receiver<bool>,
    next_due: &mut HashMap<u64, i64>,
) -> anyhow::Result<()> {
    for c in ctx.store.campaigns()? {
        if *shutdown.borrow() {
            return Ok(());
        }
        let now = ctx.now();
        match c.status {
            CampaignStatus::Scheduled if c.scheduled_at <= now => {
                let c = start(ctx, c)?;
                send_round(ctx, transport, shutdown, c, next_due).await?;
            }
            CampaignStatus::Sending => {
                if next_due
                    .get(&c.id)
                    .is_some_and(|due| *due > now.timestamp())
                {
                    continue;
                }
                send_round(ctx, transport, shutdown, c, next_due).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Fixes the recipients: one pending delivery per confirmed, matching
/// subscriber, written in batches. Safe to repeat if a crash cuts it short:
/// the campaign stays scheduled until the last batch is in.
fn start(ctx: &Context, c: Campaign) -> anyhow::Result<Campaign> {
    let mut cursor: Option<String> = None;
    let mut total = 0u64;
    loop {
        let batch = ctx
            .store
            .subscribers_after(&c.list, cursor.as_deref(), BATCH)?;
        let Some(last) = batch.last() else { break };
        cursor = Some(last.email.clone());
        let chosen: Vec<&Subscriber> = batch
            .iter()
            .filter(|s| s.status == Status::Confirmed && matches(s, &c.filters))
            // A post: not to its author if they asked for no copy, and to
            // the members who take single posts; a digest to the others.
            .filter(|s| {
                c.post
                    .as_ref()
                    .is_none_or(|p| p.skip != Some(s.id) && p.digest == s.digest)
            })
            .collect();
        total += chosen.len() as u64;
        ctx.store.write(|tx| {
            for s in chosen {
                tx.put_delivery(&Delivery {
                    v: RECORD_VERSION,
                    campaign: c.id,
                    subscriber: s.id,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt: 0,
                    last_error: None,
                    done_at: None,
                    bounced: false,
                });
            }
            Ok(())
        })?;
    }
    let now = ctx.now();
    let started = ctx.store.write(|tx| {
        let mut fresh = tx.campaign(c.id)?.unwrap_or(c);
        if fresh.status != CampaignStatus::Scheduled {
            // Paused or cancelled while recipients were being fixed.
            return Ok(fresh);
        }
        fresh.status = if total == 0 {
            CampaignStatus::Done
        } else {
            CampaignStatus::Sending
        };
        fresh.total = total;
        fresh.started_at = Some(now);
        if total == 0 {
            fresh.finished_at = Some(now);
        }
        tx.put_campaign(&fresh);
        Ok(fresh)
    })?;
    tracing::info!(campaign = started.id, list = %started.list, recipients = total, "campaign started");
    Ok(started)
}

/// One message for one lane.
struct Job {
    delivery: Delivery,
    to: String,
    reverse_path: String,
    raw: Vec<u8>,
    domain_permit: OwnedSemaphorePermit,
    window_permit: OwnedSemaphorePermit,
}

/// What became of one delivery, on its way to the recorder.
enum Outcome {
    /// The relay's answer.
    Relay(Result<(), SendError>),
    /// We could not render the message: our fault, not the address's.
    Render(SendError),
    /// The subscriber left (or was disabled) before their copy went.
    Skip,
}

struct Done {
    delivery: Delivery,
    outcome: Outcome,
    /// Held until the outcome is durable: the lanes' run-ahead is bounded
    /// by the number of these.
    _window_permit: Option<OwnedSemaphorePermit>,
}

/// How often the dispatcher looks at the campaign's stored status, so a
/// pause or a cancel takes effect within this (plus the messages in flight).
const STEER_CHECK: Duration = Duration::from_millis(50);

/// Sends every delivery of `c` that is due now, then marks the campaign
/// done if nothing is left.
///
/// The dispatcher renders each message and hands it to one of the lanes;
/// each lane sends and passes the relay's answer to the recorder, which
/// writes every answer it has in one transaction and one flush (group
/// commit). A lane does not wait for that flush, but every message holds a
/// window permit from dispatch until its outcome is durable, so at most
/// `UNSYNCED_PER_LANE × connections` accepted messages are not yet
/// recorded at any moment: that is what a kill -9 can send twice.
async fn send_round(
    ctx: &Arc<Context>,
    transport: &Transport,
    shutdown: &watch::Receiver<bool>,
    c: Campaign,
    next_due: &mut HashMap<u64, i64>,
) -> anyhow::Result<()> {
    if c.status != CampaignStatus::Sending {
        return Ok(());
    }
    let list = ctx
        .lists
        .get(&c.list)
        .ok_or_else(|| {
            anyhow::anyhow!("campaign {}: list {} is no longer configured", c.id, c.list)
        })?
        .clone();
    let prepared = match &c.post {
        None => Renderer::Newsletter(Box::new(Prepared::new(
            &full_content(ctx, &c)?,
            &list,
            &ctx.config.templates_dir,
        )?)),
        Some(_) => {
            let raw = ctx
                .store
                .blobs(c.id)?
                .into_iter()
                .next()
                .unwrap_or_default();
            let link =
                |part: usize, name: &str| Some(files::file_url(ctx, &list, c.id, part, name));
            let post = crate::compose::post::Post::parse(
                &raw,
                list.discussion.attachments,
                list.language == lists::Language::Sv,
                &link,
            )
            .ok_or_else(|| anyhow::anyhow!("campaign {}: the post does not parse", c.id))?;
            let rewrite = match list.discussion.from_rewrite {
                // A digest is the list's own mail.
                _ if c.post.as_ref().is_some_and(|p| p.digest) => false,
                lists::FromRewrite::Always => true,
                lists::FromRewrite::Never => false,
                lists::FromRewrite::Dmarc => {
                    let domain = address::split(&post.author_email)
                        .map(|(_, d)| d.to_string())
                        .unwrap_or_default();
                    ctx.dmarc.strict(&domain).await
                }
            };
            Renderer::Post(post, rewrite)
        }
    };
    let lanes = ctx.config.outbound.connections.max(1) as usize;
    let window = Arc::new(Semaphore::new(lanes * UNSYNCED_PER_LANE));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let linger_until = (lanes * UNSYNCED_PER_LANE / 2).max(1);
    let recorder = {
        let ctx = ctx.clone();
        let window = window.clone();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while done_rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
                // Linger a moment for more outcomes while the lanes still
                // have room to run ahead: one flush then covers many
                // messages instead of one or two.
                let deadline = tokio::time::Instant::now() + RECORD_LINGER;
                while batch.len() < linger_until {
                    match tokio::time::timeout_at(
                        deadline,
                        done_rx.recv_many(&mut batch, RECORD_BATCH),
                    )
                    .await
                    {
                        Ok(n) if n > 0 => {}
                        _ => break,
                    }
                }
                if let Err(e) = record(&ctx, &batch).await {
                    // Stop dispatching: what the lanes send now could not be
                    // recorded either, and the run-ahead bound would no
                    // longer hold. The next round resends what is unrecorded.
                    tracing::error!(error = %format!("{e:#}"), "recording deliveries failed; sending stops");
                    window.close();
                }
                // Dropping them releases their window permits.
                batch.clear();
            }
        })
    };
    let (tx, rx) = mpsc::channel::<Job>(lanes * 2);
    let rx = Arc::new(AsyncMutex::new(rx));
    let mut senders = Vec::with_capacity(lanes);
    for _ in 0..lanes {
        let rx = rx.clone();
        let done_tx = done_tx.clone();
        let mut lane = transport.lane();
        senders.push(tokio::spawn(async move {
            loop {
                let job = { rx.lock().await.recv().await };
                let Some(job) = job else { break };
                let result = lane
                    .send(&job.reverse_path, std::slice::from_ref(&job.to), &job.raw)
                    .await;
                drop(job.domain_permit);
                let _ = done_tx.send(Done {
                    delivery: job.delivery,
                    outcome: Outcome::Relay(result),
                    _window_permit: Some(job.window_permit),
                });
            }
            lane.close().await;
        }));
    }

    let pace = match ctx.config.outbound.max_per_hour {
        0 => None,
        n => Some(Duration::from_secs_f64(HOUR as f64 / f64::from(n))),
    };
    let mut next_slot = tokio::time::Instant::now();
    let mut domains: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let mut cursor = None;
    let mut earliest_deferred: Option<i64> = None;
    // In the past, so the first message already looks at the status.
    let mut steer_checked = std::time::Instant::now()
        .checked_sub(STEER_CHECK)
        .unwrap_or_else(std::time::Instant::now);
    // Whatever ends the dispatch, the lanes and the recorder are waited
    // for below, so no send outlives this round unrecorded.
    let dispatched: anyhow::Result<()> = async {
    'outer: loop {
        let batch = ctx.store.deliveries_after(c.id, cursor, BATCH)?;
        let Some(last) = batch.last() else { break };
        cursor = Some(last.subscriber);
        for d in batch {
            let now = ctx.now();
            match d.state {
                DeliveryState::Pending => {}
                DeliveryState::Deferred if d.next_attempt <= now.timestamp() => {}
                DeliveryState::Deferred => {
                    earliest_deferred =
                        Some(earliest_deferred.map_or(d.next_attempt, |e| e.min(d.next_attempt)));
                    continue;
                }
                _ => continue,
            }
            // Steering and shutdown take effect between messages.
            if *shutdown.borrow() {
                break 'outer;
            }
            if steer_checked.elapsed() >= STEER_CHECK {
                steer_checked = std::time::Instant::now();
                let status = ctx.store.campaign(c.id)?.map(|c| c.status);
                if status != Some(CampaignStatus::Sending) {
                    break 'outer;
                }
            }
            let subscriber = ctx.store.subscriber_by_id(d.subscriber)?;
            let Some(s) = subscriber.filter(|s| s.status == Status::Confirmed && s.list == c.list)
            else {
                let _ = done_tx.send(Done {
                    delivery: d,
                    outcome: Outcome::Skip,
                    _window_permit: None,
                });
                continue;
            };
            let token = subscriber_token(ctx, &c, &s);
            let raw = match render(ctx, &prepared, &list, &c, &s, &token) {
                Ok(raw) => raw,
                Err(e) => {
                    // Validated at queue time, so this is a defect, not bad input.
                    tracing::error!(campaign = c.id, error = %format!("{e:#}"), "rendering failed");
                    let _ = done_tx.send(Done {
                        delivery: d,
                        outcome: Outcome::Render(SendError {
                            permanent: true,
                            message: format!("render: {e:#}"),
                        }),
                        _window_permit: None,
                    });
                    continue;
                }
            };
            if let Some(pace) = pace {
                tokio::time::sleep_until(next_slot).await;
                next_slot = tokio::time::Instant::now() + pace;
            }
            let window_permit = window.clone().acquire_owned().await.map_err(|_| {
                anyhow::anyhow!(
                    "campaign {}: outcomes could not be recorded; sending stopped for this round",
                    c.id
                )
            })?;
            let domain = address::split(&s.email)
                .map(|(_, d)| d.to_lowercase())
                .unwrap_or_default();
            let domain_permit = domains
                .entry(domain)
                .or_insert_with(|| Arc::new(Semaphore::new(PER_DOMAIN_CONCURRENCY)))
                .clone()
                .acquire_owned()
                .await?;
            let job = Job {
                delivery: d,
                to: s.email.clone(),
                reverse_path: lists::list_address(
                    &list,
                    "bounces",
                    Some(&token),
                    &ctx.config.domain,
                ),
                raw,
                domain_permit,
                window_permit,
            };
            if tx.send(job).await.is_err() {
                break 'outer;
            }
        }
    }
    Ok(())
    }
    .await;
    drop(tx);
    for s in senders {
        let _ = s.await;
    }
    drop(done_tx);
    let _ = recorder.await;
    match earliest_deferred {
        Some(due) => {
            next_due.insert(c.id, due);
        }
        None => {
            next_due.remove(&c.id);
        }
    }
    dispatched?;
    finish_if_done(ctx, c.id)?;
    Ok(())
}

/// The token that names `s` and campaign `c` (reply, unsubscribe, VERP).
pub fn subscriber_token(ctx: &Context, c: &Campaign, s: &Subscriber) -> String {
    ctx.secret
        .mint(Purpose::Subscriber, &s.list, &s.email, s.id, c.id as u32)
}

/// How a campaign's copies are made: a newsletter from its templates, a
/// discussion post from the author's message (with `From:` rewritten or
/// not).
enum Renderer {
    Newsletter(Box<Prepared>),
    Post(crate::compose::post::Post, bool),
}

fn render(
    ctx: &Context,
    prepared: &Renderer,
    list: &List,
    c: &Campaign,
    s: &Subscriber,
    token: &str,
) -> anyhow::Result<Vec<u8>> {
    let prepared = match prepared {
        Renderer::Newsletter(p) => p,
        Renderer::Post(post, rewrite) => {
            let base = ctx.config.base_url();
            let set = crate::compose::post::Setting {
                list,
                domain: &ctx.config.domain,
                base_url: base,
                rewrite_from: *rewrite,
            };
            let url = format!("{base}/unsubscribe/{token}");
            let mailto = lists::list_address(list, "unsubscribe", Some(token), &ctx.config.domain);
            let copy = crate::compose::post::CopyOf {
                unsubscribe_url: &url,
                unsubscribe_mailto: &mailto,
            };
            return Ok(post.copy(&set, &copy, ctx.dkim.as_ref(), ctx.now().timestamp()));
        }
    };
    let to = Addressee::new(
        &ctx.config,
        list,
        Copy::Own {
            campaign: c.id,
            subscriber: s,
            token,
        },
    );
    prepared.message(
        list,
        &to.recipient(),
        &to.envelope(ctx.now().fixed_offset(), &ctx.config.domain),
        ctx.dkim.as_ref(),
    )
}

/// Records what became of a batch of deliveries in one transaction, and
/// makes it durable with one flush.
async fn record(ctx: &Context, batch: &[Done]) -> anyhow::Result<()> {
    let now = ctx.now();
    ctx.store.write(|tx| {
        let mut campaigns: BTreeMap<u64, Campaign> = BTreeMap::new();
        for done in batch {
            let id = done.delivery.campaign;
            let c = match campaigns.entry(id) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => match tx.campaign(id)? {
                    Some(c) => e.insert(c),
                    None => continue,
                },
            };
            record_one(ctx, tx, c, done, now)?;
        }
        for c in campaigns.values() {
            tx.put_campaign(c);
        }
        Ok(())
    })?;
    Ok(ctx.store.sync().await?)
}

fn record_one(
    ctx: &Context,
    tx: &mut crate::store::Tx<'_>,
    c: &mut Campaign,
    done: &Done,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut d = tx
        .delivery(done.delivery.campaign, done.delivery.subscriber)?
        .unwrap_or_else(|| done.delivery.clone());
    if matches!(
        d.state,
        DeliveryState::Sent | DeliveryState::Failed | DeliveryState::Skipped
    ) {
        return Ok(());
    }
    let (e, relay) = match &done.outcome {
        Outcome::Skip => {
            d.state = DeliveryState::Skipped;
            d.done_at = Some(now);
            c.skipped += 1;
            tx.put_delivery(&d);
            return Ok(());
        }
        Outcome::Relay(Ok(())) => {
            Metrics::inc(&ctx.metrics.mails_sent);
            d.state = DeliveryState::Sent;
            d.done_at = Some(now);
            d.last_error = None;
            c.sent += 1;
            tx.put_delivery(&d);
            return Ok(());
        }
        Outcome::Relay(Err(e)) => (e, true),
        Outcome::Render(e) => (e, false),
    };
    d.attempts += 1;
    d.last_error = Some(e.message.clone());
    let delay = DELIVERY_RETRY_DELAYS_SECS.get(d.attempts as usize - 1);
    match (e.permanent, delay) {
        (false, Some(delay)) => {
            Metrics::inc(&ctx.metrics.mails_deferred);
            d.state = DeliveryState::Deferred;
            d.next_attempt = now.timestamp() + delay;
        }
        _ => {
            Metrics::inc(&ctx.metrics.mails_failed);
            d.state = DeliveryState::Failed;
            d.done_at = Some(now);
            c.failed += 1;
            // A 5xx from the relay counts as a bounce, on the same score
            // as bounce reports; our own render failures do not.
            if e.permanent && relay {
                if let Some(mut s) = tx.subscriber_by_id(d.subscriber)? {
                    let reason = crate::mail::bounce::reason_of(None, &e.message);
                    crate::feedback::bounces::add_bounce(
                        &mut s,
                        true,
                        reason.as_deref(),
                        ctx.config.limits.bounce_threshold,
                        now,
                    );
                    tx.put_subscriber(&s);
                }
            }
        }
    }
    tx.put_delivery(&d);
    Ok(())
}

fn finish_if_done(ctx: &Context, id: u64) -> anyhow::Result<()> {
    let now = ctx.now();
    ctx.store.write(|tx| {
        let Some(mut c) = tx.campaign(id)? else {
            return Ok(());
        };
        if c.status == CampaignStatus::Sending && c.sent + c.failed + c.skipped >= c.total {
            c.status = CampaignStatus::Done;
            c.finished_at = Some(now);
            tx.put_campaign(&c);
            tracing::info!(
                campaign = id,
                sent = c.sent,
                failed = c.failed,
                skipped = c.skipped,
                "campaign done"
            );
        }
        Ok(())
    })?;
    Ok(())
}
