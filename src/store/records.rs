//! The records the store keeps, as plain serde data with a version `v`.
//! A record of a newer version than `RECORD_VERSION` is refused, not misread.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the records this build writes; a newer record is refused, not misread.
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    AwaitingApproval,
    Confirmed,
    Unsubscribed,
    Bounced,
    Disabled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::AwaitingApproval,
        Status::Confirmed,
        Status::Unsubscribed,
        Status::Bounced,
        Status::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::AwaitingApproval => "awaiting_approval",
            Status::Confirmed => "confirmed",
            Status::Unsubscribed => "unsubscribed",
            Status::Bounced => "bounced",
            Status::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The proof that a person agreed to receive the list's mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// `mail`, `web`, `admin` or `import`.
    pub method: String,
    pub at: DateTime<Utc>,
    /// What shows the request: the Message-ID of the request mail, the IP of
    /// the web form, or the text an admin gave.
    pub evidence: String,
    /// The Message-ID of the reply that confirmed, or how it was confirmed.
    pub confirmed_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscriber {
    pub v: u32,
    /// Unique across lists; newsletter tokens name it.
    pub id: u64,
    pub list: String,
    /// Normalised address (see `address::normalize`).
    pub email: String,
    pub name: String,
    pub status: Status,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub consent: Option<Consent>,
    pub created_at: DateTime<Utc>,
    pub subscribed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub bounces: u32,
    /// Permanent bounces add 1, temporary ones a little; the score halves
    /// every `BOUNCE_HALF_LIFE_DAYS` (see `dialogue`).
    #[serde(default)]
    pub bounce_score: f64,
    #[serde(default)]
    pub last_bounce_at: Option<DateTime<Utc>>,
    /// Why the last bounce failed, in sisimai's vocabulary (`userunknown`,
    /// `mailboxfull`, ...), when the report said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_bounce_reason: Option<String>,
    /// When the outstanding bounce probe was sent (its token carries this
    /// time); None when no probe is outstanding. See `feedback::bounces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_sent_at: Option<DateTime<Utc>>,
    /// No copy of one's own discussion posts (`inte-mig` / `nomail-self`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notmetoo: bool,
    /// One digest a day of a discussion list's posts instead of each
    /// (`sammandrag` / `digest`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub digest: bool,
    pub updated_at: DateTime<Utc>,
}

impl Subscriber {
    /// Room for a subscriber's record: its fixed part (field names, four
    /// timestamps, the status) is under 512 bytes of JSON, and its text is
    /// written once, escapes aside.
    pub(crate) fn encoded_size(&self) -> usize {
        let text = self.list.len()
            + self.email.len()
            + self.name.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>()
            + self.consent.as_ref().map_or(0, |c| {
                c.method.len() + c.evidence.len() + c.confirmed_by.as_ref().map_or(0, String::len)
            });
        512 + text + text / 8
    }

    /// A fresh record with nothing but who and where.
    pub fn new(
        id: u64,
        list: &str,
        email: &str,
        name: &str,
        status: Status,
        now: DateTime<Utc>,
    ) -> Subscriber {
        Subscriber {
            v: RECORD_VERSION,
            id,
            list: list.to_string(),
            email: email.to_string(),
            name: name.to_string(),
            status,
            attributes: BTreeMap::new(),
            consent: None,
            created_at: now,
            subscribed_at: None,
            unsubscribed_at: None,
            bounces: 0,
            bounce_score: 0.0,
            last_bounce_at: None,
            last_bounce_reason: None,
            probe_sent_at: None,
            notmetoo: false,
            digest: false,
            updated_at: now,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingAction {
    Subscribe,
    Unsubscribe,
    /// An owner's approval of a confirmed person on a closed list.
    Approve,
    /// An owner's approval of the draft campaign they mailed to the list.
    Post,
    /// A member's own confirmation of a delivery setting on a discussion
    /// list (`inte-mig`, `sammandrag`, ...): `attributes["setting"]`.
    Setting,
}

/// A confirmation that waits for its token to come back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub v: u32,
    pub id: u64,
    pub list: String,
    pub email: String,
    pub name: String,
    pub action: PendingAction,
    /// Unix seconds; also inside the token.
    pub issued: u32,
    /// `mail` or `web`.
    pub method: String,
    /// Message-ID or IP of the request.
    pub evidence: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Set once the token was used; a second use changes nothing.
    #[serde(default)]
    pub completed: bool,
    /// For `Post`: the draft campaign.
    #[serde(default)]
    pub campaign: Option<u64>,
}

/// An inbound message that was neither acted on nor forwarded, and why,
/// so that nothing is lost silently (`utskick ignored`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ignored {
    pub v: u32,
    pub id: u64,
    pub at: DateTime<Utc>,
    pub list: String,
    /// Which address it came to: `subscribe`, `reply`, `bounces`, …
    pub address: String,
    pub sender: String,
    pub subject: String,
    pub message_id: String,
    pub reason: String,
}

/// How many ignored-message records are kept (oldest go first).
pub const MAX_IGNORED: usize = 1000;

/// A system mail waiting for the outbound worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutMail {
    pub v: u32,
    pub id: u64,
    /// Envelope sender; "" for the null sender.
    pub reverse_path: String,
    pub forward_path: Vec<String>,
    /// The whole message, CRLF line ends.
    #[serde(with = "base64_bytes")]
    pub raw: Vec<u8>,
    pub attempts: u32,
    /// Unix seconds before which no retry is made.
    pub next_attempt: i64,
    pub created_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Scheduled,
    Sending,
    Paused,
    Done,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Done => "done",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    /// Done or cancelled: nothing will change any more.
    pub fn is_final(self) -> bool {
        matches!(self, CampaignStatus::Done | CampaignStatus::Cancelled)
    }
}

/// A newsletter or announcement. Attachment bodies live in the `blobs`
/// tree, not here, so the record stays small; `content.attachments[i].data`
/// is empty in the stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub v: u32,
    pub id: u64,
    pub list: String,
    pub content: crate::store::Content,
    /// Attribute filters (`--where`), all must match.
    pub filters: Vec<(String, String)>,
    pub status: CampaignStatus,
    /// Status before a pause, to resume to.
    pub paused_from: Option<CampaignStatus>,
    pub created_at: DateTime<Utc>,
    pub scheduled_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Recipients fixed when sending started.
    pub total: u64,
    pub sent: u64,
    pub failed: u64,
    /// Left the list (or were disabled) before their copy went.
    pub skipped: u64,
    /// A discussion post (kind `post`): who wrote it; its bytes are the
    /// campaign's blob 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<PostMeta>,
    /// What the copies led to after they went.
    #[serde(default)]
    pub outcome: Outcome,
}

/// What a campaign's copies led to, each bound to the campaign by a token
/// the copy carried (the newsletter token's 32-bit field is the campaign's
/// number, under its MAC): delivery reports to its VERP address, people
/// who left by its link, its mailto or a reply, and replies that reached
/// the owners.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(default)]
    pub bounced: u64,
    #[serde(default)]
    pub unsubscribed: u64,
    #[serde(default)]
    pub replies: u64,
}

/// One kind of [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Led {
    Bounce,
    Unsubscribe,
    Reply,
}

/// Who wrote a discussion post, and who gets no copy of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMeta {
    /// The author's address (normalised).
    pub author: String,
    /// The author's subscriber id when they chose `notmetoo`.
    pub skip: Option<u64>,
    /// A day's digest of posts, for the members who chose it (a post goes
    /// to the others).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub digest: bool,
    /// The post is in a digest already.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub digested: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    /// A transient failure; retried at `next_attempt`.
    Deferred,
    Sent,
    /// A permanent failure (5xx) or too many transient ones.
    Failed,
    Skipped,
}

/// One recipient of one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub v: u32,
    pub campaign: u64,
    pub subscriber: u64,
    pub state: DeliveryState,
    pub attempts: u32,
    /// Unix seconds.
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
    /// This copy's final failure counted on its person's bounce score,
    /// once: a final delivery report (also counted in the campaign's
    /// `outcome.bounced`), or the relay's own 5xx for the mailbox (counted
    /// in the campaign's `failed`). A later report on it counts nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bounced: bool,
    /// A delay warning (or another report that is not final) came back
    /// for this copy and counted on its person's score, once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warned: bool,
    /// The recipient as fixed when the campaign started, while the copy
    /// is still to be sent (pending or deferred); dropped once the
    /// delivery is sent, failed or skipped, and when the person stops
    /// being confirmed. None in a record from before frozen recipients:
    /// the worker then reads the subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Frozen>,
}

/// What a copy needs of its recipient, fixed when sending starts (the
/// campaign's list and the subscriber id are the delivery's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frozen {
    pub email: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
}

impl DeliveryState {
    /// Sent, failed or skipped: nothing more happens to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Sent | DeliveryState::Failed | DeliveryState::Skipped
        )
    }
}

/// Message bytes as base64 in JSON records (a JSON array of numbers would
/// take four times the space).
mod base64_bytes {
    use data_encoding::BASE64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// What kind of mail a campaign sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Newsletter,
    Announcement,
    /// A member's post to a discussion list, sent as it came (issue 16).
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What a campaign sends; stored with the campaign (serde), so keep it plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub kind: Kind,
    /// File name the Markdown came from, for error messages ("december.md").
    pub source: String,
    /// May contain Handlebars fields. For an announcement: its title (the
    /// subject line itself comes from `announcement.subject.hbs`).
    pub subject: String,
    /// "" when none; may contain Handlebars fields.
    pub preheader: String,
    /// The newsletter body, or the announcement's description ("" when
    /// none); may contain Handlebars fields. A newsletter's front matter is
    /// replaced by as many empty lines, so line numbers here are the file's.
    pub markdown: String,
    /// Announcement only, else "".
    pub title: String,
    /// Announcement only.
    pub link: Option<String>,
    pub attachments: Vec<Attachment>,
}

impl Content {
    /// The attachments' file names, in order.
    pub fn attachment_names(&self) -> Vec<String> {
        self.attachments
            .iter()
            .map(|a| a.filename.clone())
            .collect()
    }
}
