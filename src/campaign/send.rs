//! The campaign worker: starts the campaigns that are due and sends their
//! copies.
//!
//! Per round, one dispatcher reads the campaign's deliveries in key order
//! (each holds the recipient frozen when sending started, so no subscriber
//! is read), paces, takes a window permit and a per-domain permit, and
//! hands the copy to one of `outbound.connections` lanes. A lane renders
//! the copy (and signs it on the blocking pool, spread over the cores:
//! the daemon runs this worker on a one-thread runtime), sends it,
//! and passes the relay's answer to the recorder ([`record`]). If the next
//! copy is already waiting when a lane takes one (or when it is about to
//! send it), the lane takes and makes that one too, and its envelope rides
//! behind this copy's end of data (`Lane::send_ahead`). The recorder
//! writes every answer it has in one transaction and one flush (group
//! commit). A lane may run ahead of the flush within a window of
//! [`UNSYNCED_PER_LANE`] × connections messages shared by the lanes, so
//! after a kill -9 at most that many go twice. Deliveries are read in
//! batches; memory does not grow with the list.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Mutex as AsyncMutex, OwnedSemaphorePermit, Semaphore};

use crate::address;
use crate::campaign::addressee::{Addressee, Copy};
use crate::campaign::recipients::start;
use crate::campaign::record::{finish_if_done, record, Done, Outcome};
use crate::campaign::{digest, files, full_content, BATCH};
use crate::compose::compiled::CompiledOr;
use crate::compose::mime::Prepared;
use crate::daemon::context::Context;
use crate::daemon::lists::{self, List};
use crate::outbound::{Ahead, Envelope, SendError, Transport};
use crate::store::{Campaign, CampaignStatus, Delivery, DeliveryState, Frozen, Status, Subscriber};
use crate::time::SECS_PER_HOUR as HOUR;
use crate::token::Purpose;

/// Messages the lanes may have sent (or be sending) before their outcome
/// is durable, per lane: the window is this times `outbound.connections`,
/// shared by the lanes. A kill -9 can send at most the window twice.
/// Each group commit costs a log write, an fdatasync and the wake-ups
/// around them (about half a millisecond of CPU here): with 4 a flush
/// covered about 24 messages at 10k, with 8 about 48, and the daemon's CPU
/// per message fell by a tenth (BENCHMARKS.md, issue 17, fifth round).
pub const UNSYNCED_PER_LANE: usize = 8;
/// Outcomes written in one transaction at most.
const RECORD_BATCH: usize = 512;
/// How long the recorder waits for more outcomes before it writes and
/// flushes, unless three quarters of the lanes' run-ahead is already
/// waiting on it. Each flush costs a log write on sled's IO pool (a
/// thread woken for it), an fdatasync and a look at the blobs: the fewer
/// flushes a message shares, the less CPU it costs.
const RECORD_LINGER: Duration = Duration::from_millis(8);
/// Messages in flight to one recipient domain at once: hosted mail
/// (Gmail, Outlook) throttles senders per domain.
pub const PER_DOMAIN_CONCURRENCY: usize = 2;
/// How often the worker looks for due campaigns when nothing wakes it.
const POLL: Duration = Duration::from_secs(2);
/// How often the dispatcher looks at the campaign's stored status, so a
/// pause or a cancel takes effect within this (plus the messages in flight).
const STEER_CHECK: Duration = Duration::from_millis(50);

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

/// One copy for one lane: rendered and signed there.
struct Job {
    delivery: Delivery,
    /// The store's skip generation when `delivery` was known to be still
    /// due; the lane reads it again if someone has left since.
    generation: u64,
    to: Frozen,
    domain_permit: OwnedSemaphorePermit,
    window_permit: OwnedSemaphorePermit,
}

/// What every lane of a round shares to make its copies.
struct Shared {
    ctx: Arc<Context>,
    renderer: Renderer,
    list: List,
    campaign: Campaign,
}

impl Shared {
    /// [`still_due`] for a delivery of this campaign.
    fn still_due(&self, delivery: &Delivery, generation: u64) -> bool {
        still_due(&self.ctx, self.campaign.id, delivery, generation)
    }

    /// One copy for subscriber `id` (frozen as `to`), signed, written
    /// into `out` (emptied first): a lane's buffer, kept from copy to copy.
    fn render_into(
        &self,
        id: u64,
        to: &Frozen,
        token: &str,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        out.clear();
        render_into(
            &self.ctx,
            &self.renderer,
            &self.list,
            &self.campaign,
            (id, to),
            token,
            out,
        )
    }
}

/// A job whose copy a lane has made, into one of its buffers.
struct Made {
    delivery: Delivery,
    generation: u64,
    domain_permit: OwnedSemaphorePermit,
    window_permit: OwnedSemaphorePermit,
    /// Where the copy goes, or why it could not be made.
    copy: Result<Addressed, SendError>,
}

/// A made copy's SMTP envelope (VERP sender, the recipient), parsed once
/// when the copy is made: a copy that goes ahead is written twice, its
/// envelope behind the copy before it and then its bytes. One that
/// cannot be parsed fails as the relay client would have failed it.
struct Addressed {
    envelope: Result<Envelope, SendError>,
}

impl Made {
    /// Passes the copy's outcome to the recorder, which lets its window
    /// permit go once the outcome is durable.
    fn done(self, outcome: Outcome, done_tx: &mpsc::UnboundedSender<Done>) {
        drop(self.domain_permit);
        let _ = done_tx.send(Done {
            delivery: self.delivery,
            generation: self.generation,
            outcome,
            _window_permit: Some(self.window_permit),
        });
    }
}

/// Makes `job`'s copy into `out` (emptied first): its token, and the copy
/// rendered and signed.
async fn make(shared: &Arc<Shared>, job: Job, out: &mut Vec<u8>) -> Made {
    let Shared {
        ctx,
        list,
        campaign: c,
        ..
    } = &**shared;
    let Job {
        delivery,
        generation,
        to,
        domain_permit,
        window_permit,
    } = job;
    let id = delivery.subscriber;
    let token = copy_token(ctx, c, id, &to.email);
    let rendered = if ctx.dkim.is_some() {
        // Signing takes up to milliseconds a copy (RSA): on the blocking
        // pool it is spread over the cores while this runtime's one thread
        // goes on sending. The buffer goes along and comes back.
        let (shared, token) = (shared.clone(), token.clone());
        let mut buf = std::mem::take(out);
        tokio::task::spawn_blocking(move || {
            let rendered = shared.render_into(id, &to, &token, &mut buf);
            (rendered, buf, to)
        })
        .await
        .map_err(|e| anyhow::anyhow!("signing stopped: {e}"))
        .and_then(|(rendered, buf, to)| {
            *out = buf;
            rendered.map(|()| to)
        })
    } else {
        shared.render_into(id, &to, &token, out).map(|()| to)
    };
    let copy = match rendered {
        Ok(to) => Ok(Addressed {
            envelope: crate::outbound::envelope(
                &lists::list_address(list, "bounces", Some(&token), &ctx.config.domain),
                std::slice::from_ref(&to.email),
            ),
        }),
        Err(e) => {
            // Validated at queue time, so this is a defect, not bad input.
            tracing::error!(campaign = c.id, error = %format!("{e:#}"), "rendering failed");
            Err(SendError {
                permanent: true,
                message: format!("render: {e:#}"),
                bounce: false,
            })
        }
    };
    Made {
        delivery,
        generation,
        domain_permit,
        window_permit,
        copy,
    }
}

/// A lane's copy buffer that grew past this for a large copy is let go
/// afterwards, so a lane does not keep its biggest copy's size for ever.
const KEEP_COPY_BUF: usize = 256 * 1024;

/// Sends every delivery of `c` that is due now, then marks the campaign
/// done if nothing is left.
///
/// The dispatcher hands each copy to one of the lanes, which renders,
/// sends and passes the relay's answer to the recorder, which writes every
/// answer it has in one transaction and one flush (group commit). A lane
/// does not wait for that flush, but every message holds a window permit
/// from dispatch until its outcome is durable, so at most
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
    let renderer = renderer(ctx, &c, &list).await?;
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        renderer,
        list,
        campaign: c.clone(),
    });
    let lanes = ctx.config.outbound.connections.max(1) as usize;
    let window = Arc::new(Semaphore::new(lanes * UNSYNCED_PER_LANE));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    // The last quarter of the window is what the lanes send on while a
    // group is written and flushed (about a millisecond here).
    let linger_until = (lanes * UNSYNCED_PER_LANE * 3 / 4).max(1);
    let recorder = {
        let ctx = ctx.clone();
        let window = window.clone();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut cache = crate::store::CampaignCache::default();
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
                if let Err(e) = record(&ctx, &batch, &mut cache).await {
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
        let shared = shared.clone();
        let mut lane = transport.lane();
        senders.push(tokio::spawn(async move {
            // The lane's copy buffers, kept from copy to copy: one
            // allocation of a copy's size per buffer, not per copy. The
            // second holds the copy taken ahead.
            let mut copy = Vec::new();
            let mut spare = Vec::new();
            // The copy taken while the one before it was sent: made, and
            // with its envelope at the relay if that one said so.
            let mut ahead: Option<Made> = None;
            // A job that was already in the queue when this lane took the
            // one before it: taken along (it held the receiver then, so
            // nothing waited for it), to ride behind that one; not made yet.
            let mut waiting: Option<Job> = None;
            loop {
                let made = match ahead.take() {
                    Some(made) => {
                        std::mem::swap(&mut copy, &mut spare);
                        // Its person may have left since it was taken (its
                        // send waited for the copy before it): its envelope
                        // may be at the relay, but none of its bytes is, and
                        // hanging up ends that transaction with nothing sent.
                        if !shared.still_due(&made.delivery, made.generation) {
                            lane.hang_up_open();
                            continue;
                        }
                        made
                    }
                    None => {
                        let job = match waiting.take() {
                            Some(job) => Some(job),
                            None => {
                                let mut rx = rx.lock().await;
                                let job = rx.recv().await;
                                if job.is_some() && lane.sends_ahead() {
                                    waiting = rx.try_recv().ok();
                                }
                                job
                            }
                        };
                        let Some(job) = job else { break };
                        // The copy may have waited for its pace slot, its
                        // permits and this lane: a person who left meanwhile
                        // gets nothing (their delivery is already skipped
                        // and counted).
                        if !shared.still_due(&job.delivery, job.generation) {
                            continue;
                        }
                        make(&shared, job, &mut copy).await
                    }
                };
                let (outcome, next_failed) = match &made.copy {
                    Ok(this) => {
                        // The next copy, if one was or is ready right now
                        // (never waited for while this one is unfinished):
                        // made before its envelope goes with this copy's end
                        // of data, since once the relay says 354 only
                        // hanging up ends its transaction.
                        let mut next = None;
                        if lane.sends_ahead() {
                            let job = waiting.take().or_else(|| {
                                rx.try_lock().ok().and_then(|mut rx| rx.try_recv().ok())
                            });
                            if let Some(job) =
                                job.filter(|job| shared.still_due(&job.delivery, job.generation))
                            {
                                next = Some(make(&shared, job, &mut spare).await);
                            }
                        }
                        // A next copy whose envelope cannot be written goes
                        // on its own, and fails there.
                        let with = next.as_ref().and_then(|m| {
                            let envelope = m.copy.as_ref().ok()?.envelope.as_ref().ok()?;
                            Some((envelope, &spare[..]))
                        });
                        let (sent, went) = match &this.envelope {
                            Ok(envelope) => lane.send_envelope_ahead(envelope, &copy, with).await,
                            Err(e) => (Err(e.clone()), Ahead::NotSent),
                        };
                        let next_failed = match (next, went) {
                            (Some(next), Ahead::Failed(e)) => Some((next, Outcome::Relay(Err(e)))),
                            (Some(next), _) => match &next.copy {
                                // A copy that cannot be made goes no further.
                                Err(e) => {
                                    let e = e.clone();
                                    Some((next, Outcome::Render(e)))
                                }
                                Ok(_) => {
                                    ahead = Some(next);
                                    None
                                }
                            },
                            (None, _) => None,
                        };
                        (Outcome::Relay(sent), next_failed)
                    }
                    Err(e) => (Outcome::Render(e.clone()), None),
                };
                if copy.capacity() > KEEP_COPY_BUF {
                    copy = Vec::new();
                }
                // `spare` holds the copy taken ahead, if any: it is sent
                // next, from there.
                if ahead.is_none() && spare.capacity() > KEEP_COPY_BUF {
                    spare = Vec::new();
                }
                made.done(outcome, &done_tx);
                if let Some((next, outcome)) = next_failed {
                    next.done(outcome, &done_tx);
                }
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
            // Read before the batch: a write that skips someone after it moves
            // this, and the deliveries still held are then read again.
            let generation = ctx.store.skip_generation();
            let batch = ctx.store.deliveries_after(c.id, cursor, BATCH)?;
            let Some(last) = batch.last() else { break };
            cursor = Some(last.subscriber);
            for d in batch {
                let now = ctx.now().timestamp();
                let mut due = |d: &Delivery| match d.state {
                    DeliveryState::Pending => true,
                    DeliveryState::Deferred if d.next_attempt <= now => true,
                    DeliveryState::Deferred => {
                        earliest_deferred = Some(
                            earliest_deferred.map_or(d.next_attempt, |e| e.min(d.next_attempt)),
                        );
                        false
                    }
                    _ => false,
                };
                if !due(&d) {
                    continue;
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
                // Someone stopped being confirmed since the batch was read
                // (`Tx::drop_deliveries_of` skipped their delivery): read this
                // one again, so a person who left is not sent to.
                let mut d = d;
                let mut known = generation;
                if ctx.store.skip_generation() != generation {
                    known = ctx.store.skip_generation();
                    match ctx.store.delivery(c.id, d.subscriber)? {
                        Some(fresh) if fresh.state == d.state => d = fresh,
                        _ => continue,
                    }
                }
                let to = match d.to.take() {
                    Some(to) => to,
                    // A delivery written before recipients were frozen: the
                    // subscriber decides, as they are now.
                    None => match legacy_recipient(ctx, &c, d.subscriber)? {
                        Some(to) => to,
                        None => {
                            let _ = done_tx.send(Done {
                                delivery: d,
                                generation: known,
                                outcome: Outcome::Skip,
                                _window_permit: None,
                            });
                            continue;
                        }
                    },
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
                let domain = address::split(&to.email)
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
                    generation: known,
                    to,
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

/// False if someone stopped being confirmed since the job's delivery was
/// read and this delivery is no longer what it was (skipped, or gone).
/// A store that cannot be read leaves it due, as before the check.
fn still_due(ctx: &Context, campaign: u64, delivery: &Delivery, generation: u64) -> bool {
    if ctx.store.skip_generation() == generation {
        return true;
    }
    match ctx.store.delivery(campaign, delivery.subscriber) {
        Ok(Some(fresh)) => fresh.state == delivery.state,
        Ok(None) => false,
        Err(_) => true,
    }
}

/// The recipient of a delivery written before recipients were frozen
/// (a store from an older version): the subscriber, if still confirmed
/// on the campaign's list.
fn legacy_recipient(ctx: &Context, c: &Campaign, id: u64) -> anyhow::Result<Option<Frozen>> {
    Ok(ctx
        .store
        .subscriber_by_id(id)?
        .filter(|s| s.status == Status::Confirmed && s.list == c.list)
        .map(|s| Frozen {
            email: s.email,
            name: s.name,
            attributes: s.attributes,
        }))
}

/// How the copies of `c` are made.
async fn renderer(ctx: &Context, c: &Campaign, list: &List) -> anyhow::Result<Renderer> {
    Ok(match &c.post {
        None => {
            let compiled = Prepared::new(&full_content(ctx, c)?, list, &ctx.config.templates_dir)?
                .compile(list);
            if let Some(why) = compiled.fallback() {
                tracing::info!(campaign = c.id, why = %why, "copies are rendered per recipient");
            }
            Renderer::Newsletter(Box::new(compiled))
        }
        Some(_) => {
            let raw = ctx.store.blob(c.id, 0)?.unwrap_or_default();
            let link = |part: usize, name: &str| Some(files::file_url(ctx, list, c.id, part, name));
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
    })
}

/// The token that names `s` and campaign `c` (reply, unsubscribe, VERP).
pub fn subscriber_token(ctx: &Context, c: &Campaign, s: &Subscriber) -> String {
    ctx.secret
        .mint(Purpose::Subscriber, &s.list, &s.email, s.id, c.id as u32)
}

/// The same token for a frozen recipient (subscriber `id` of the
/// campaign's list).
fn copy_token(ctx: &Context, c: &Campaign, id: u64, email: &str) -> String {
    ctx.secret
        .mint(Purpose::Subscriber, &c.list, email, id, c.id as u32)
}

/// How a campaign's copies are made: a newsletter from its templates, a
/// discussion post from the author's message (with `From:` rewritten or
/// not). Shared by the lanes of a round.
pub(crate) enum Renderer {
    Newsletter(Box<CompiledOr>),
    Post(crate::compose::post::Post, bool),
}

/// One copy of `c` for `recipient` (subscriber id, and what was frozen of
/// them), signed, appended to `out`: called by the lanes, on any core.
pub(crate) fn render_into(
    ctx: &Context,
    renderer: &Renderer,
    list: &List,
    c: &Campaign,
    recipient: (u64, &Frozen),
    token: &str,
    out: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let prepared = match renderer {
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
            out.extend(post.copy(&set, &copy, ctx.dkim.as_ref(), ctx.now().timestamp()));
            return Ok(());
        }
    };
    let (id, to) = recipient;
    let to = Addressee::new(
        &ctx.config,
        list,
        Copy::Own {
            campaign: c.id,
            id,
            to,
            token,
        },
    );
    prepared.write_message(
        list,
        &to.recipient(),
        &to.envelope(ctx.now().fixed_offset(), &ctx.config.domain),
        ctx.dkim.as_ref(),
        out,
    )
}
