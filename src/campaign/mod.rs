//! Campaigns: newsletters and announcements from queueing to the last
//! delivery. Creating one validates it completely (templates, filters,
//! attachments) and steering changes its status; the worker that sends
//! is in [`send`]: it freezes the recipients when sending starts
//! ([`recipients`]), then sends one envelope per recipient (VERP) over
//! `outbound.connections` lanes, paced by `max_per_hour` and a per-domain
//! limit, and records what became of each copy ([`record`]).

pub mod addressee;
pub mod archive;
pub mod digest;
pub mod files;
pub mod preview;
pub mod progress;
pub mod recipients;
pub mod record;
pub mod send;
pub mod threads;

use chrono::{DateTime, Utc};

use crate::compose::error::AuthoringError;
use crate::compose::mime::Prepared;
use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::Content;
use crate::store::{Campaign, CampaignStatus, Status, Subscriber, RECORD_VERSION};

pub use preview::send_test;
pub use send::{run_worker, subscriber_token, tick, PER_DOMAIN_CONCURRENCY, UNSYNCED_PER_LANE};

/// Recipients read from the store at a time.
pub(crate) const BATCH: usize = 256;

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
    matches_by(|k| s.attributes.get(k).map(String::as_str), filters)
}

/// [`matches`] for attributes read by `attribute`.
pub(crate) fn matches_by<'a>(
    attribute: impl Fn(&str) -> Option<&'a str>,
    filters: &[(String, String)],
) -> bool {
    filters.iter().all(|(k, v)| {
        attribute(k).is_some_and(|have| have.trim().to_lowercase() == v.trim().to_lowercase())
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

/// Confirmed subscribers of `list` that match `filters`. Without filters
/// that is the list's stored tally (no scan: `status` asks this of a
/// scheduled campaign, and a client may ask often while its recipients are
/// being fixed); with filters, counted by streaming.
pub fn count_recipients(
    ctx: &Context,
    list: &str,
    filters: &[(String, String)],
) -> anyhow::Result<u64> {
    if filters.is_empty() {
        let counts = ctx.store.counts(list)?;
        return Ok(counts.get(&Status::Confirmed).copied().unwrap_or(0) as u64);
    }
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
                // Its copies still to send never will be: their frozen
                // recipients (address, name, attributes) go now.
                tx.drop_frozen(c.id)?;
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
