//! The admin protocol: what a client asks ([`Request`]), what it gets back
//! ([`Response`] or [`Failure`]), typed and shared by the CLI and the daemon.
//!
//! On the wire a request is one JSON line tagged by `cmd`; the answer is one
//! line, `{"ok": …}` or `{"err": {"message", "exit"}}`. A `subscribers`
//! answer is streamed first: a `head` line, then one `row` line per
//! subscriber, before the closing `ok`. The `ok` payload carries no tag of
//! its own: its shape follows from the request, so [`Response::from_wire`]
//! reads it knowing the request, and the JSON is the same as before these
//! types existed (a CLI and a daemon of different versions understand each
//! other, and a newer CLI reads an older daemon's answers).

use std::collections::BTreeMap;

use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::campaign::Steer;
use crate::daemon::lists::{Language, Subscription};
use crate::people::report::Month;
use crate::people::{ImportOptions, ImportReport, Person};
use crate::store::{AuditEntry, Campaign, CampaignStatus, Consent, Ignored, Status, Subscriber};
use crate::store::{Content, Kind};

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
    /// A discussion list's posts as threads, as text (the owners' view).
    Threads {
        list: String,
    },
    /// Inbound messages that were neither acted on nor forwarded, and why.
    Ignored,
    Import {
        list: String,
        /// The file's attribute columns (its header less `email`, `name`
        /// and the export's own), checked against the list before any row
        /// is imported. Absent from older CLIs.
        #[serde(default)]
        columns: Vec<String>,
        rows: Vec<crate::people::csvfile::Row>,
        options: ImportOptions,
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
        /// `pause`, `resume` or `cancel` on the wire.
        action: Steer,
    },
    /// The audit log, from `since` (RFC 3339) on.
    Audit {
        since: Option<String>,
    },
}

impl Request {
    /// The request as its audit line needs it: an import without its
    /// rows (the line names the list, the counts and the consent), which
    /// would otherwise be copied, every one, to be thrown away.
    pub fn for_audit(&self) -> Request {
        match self {
            Request::Import {
                list,
                columns,
                rows: _,
                options,
            } => Request::Import {
                list: list.clone(),
                columns: columns.clone(),
                rows: Vec::new(),
                options: options.clone(),
            },
            other => other.clone(),
        }
    }

    /// A message handed over for `recipient` (the raw bytes travel in base64).
    pub fn inject(recipient: String, sender: Option<String>, raw: &[u8]) -> Request {
        Request::Inject {
            recipient,
            sender,
            message: BASE64.encode(raw),
        }
    }

    /// The request's name in logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Lists => "lists",
            Request::Subscribers { .. } => "subscribers",
            Request::Add { .. } => "add",
            Request::Remove { .. } => "remove",
            Request::Inject { .. } => "inject",
            Request::Queue { .. } => "queue",
            Request::SendTest { .. } => "send-test",
            Request::Campaigns => "campaigns",
            Request::Ignored => "ignored",
            Request::Threads { .. } => "threads",
            Request::Import { .. } => "import",
            Request::Person { .. } => "person",
            Request::Report { .. } => "report",
            Request::Forget { .. } => "forget",
            Request::Backup { .. } => "backup",
            Request::Status { .. } => "status",
            Request::Steer { .. } => "steer",
            Request::Audit { .. } => "audit",
        }
    }
}

/// What a request did. Which variant comes back is fixed by the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// One line for people: `add`, `remove`, `send_test`, `backup`,
    /// `inject` (and `forget` from an older daemon).
    Said(String),
    Lists(Vec<ListRow>),
    /// A whole listing: carried out in the CLI's own process, or answered
    /// by a daemon from before listings were streamed.
    Subscribers(Vec<SubscriberRow>),
    /// The closing line of a streamed listing: how many rows came.
    Streamed(u64),
    Queued(Queued),
    DryRun(DryRun),
    Campaigns(Vec<CampaignRow>),
    /// `status` and `steer`.
    Campaign(CampaignRow),
    Ignored(Vec<IgnoredRow>),
    Imported(ImportReport),
    Person(Person),
    Report(Vec<Month>),
    Forgot(Forgot),
    Audit(Vec<AuditRow>),
}

impl Response {
    /// Reads the `ok` payload of the answer to `request`.
    pub fn from_wire(request: &Request, ok: Value) -> serde_json::Result<Response> {
        use serde_json::from_value as read;
        Ok(match request {
            Request::Lists => Response::Lists(read(ok)?),
            Request::Subscribers { .. } => match ok {
                Value::Array(_) => Response::Subscribers(read(ok)?),
                _ => Response::Streamed(read(ok)?),
            },
            Request::Add { .. }
            | Request::Remove { .. }
            | Request::Inject { .. }
            | Request::SendTest { .. }
            | Request::Backup { .. }
            | Request::Threads { .. } => Response::Said(read(ok)?),
            Request::Queue { dry_run: true, .. } => Response::DryRun(read(ok)?),
            Request::Queue { .. } => Response::Queued(read(ok)?),
            Request::Campaigns => Response::Campaigns(read(ok)?),
            Request::Status { .. } | Request::Steer { .. } => Response::Campaign(read(ok)?),
            Request::Ignored => Response::Ignored(read(ok)?),
            Request::Audit { .. } => Response::Audit(read(ok)?),
            Request::Import { .. } => Response::Imported(read(ok)?),
            Request::Person { .. } => Response::Person(read(ok)?),
            Request::Report { .. } => Response::Report(read(ok)?),
            Request::Forget { .. } => match ok {
                Value::String(s) => Response::Said(s),
                _ => Response::Forgot(read(ok)?),
            },
        })
    }

    /// The answer as JSON, with its keys in order (as printed).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// One list with its subscriber counts per status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub name: String,
    pub address: String,
    pub subscription: Subscription,
    pub language: Language,
    pub counts: BTreeMap<Status, usize>,
}

/// One subscriber as `subscribers` shows them (spec: at least email, name,
/// status, bounces, subscribed_at, attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriberRow {
    pub email: String,
    pub name: String,
    pub status: Status,
    pub bounces: u32,
    /// Rounded to two decimals.
    pub bounce_score: f64,
    /// Why the last bounce failed (`userunknown`, `mailboxfull`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_bounce_reason: Option<String>,
    /// RFC 3339.
    pub subscribed_at: Option<String>,
    pub unsubscribed_at: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub consent: Option<Consent>,
}

impl From<&Subscriber> for SubscriberRow {
    fn from(s: &Subscriber) -> SubscriberRow {
        SubscriberRow {
            email: s.email.clone(),
            name: s.name.clone(),
            status: s.status,
            bounces: s.bounces,
            bounce_score: (s.bounce_score * 100.0).round() / 100.0,
            last_bounce_reason: s.last_bounce_reason.clone(),
            subscribed_at: s.subscribed_at.map(|t| t.to_rfc3339()),
            unsubscribed_at: s.unsubscribed_at.map(|t| t.to_rfc3339()),
            attributes: s.attributes.clone(),
            consent: s.consent.clone(),
        }
    }
}

/// A campaign with its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub id: u64,
    pub list: String,
    pub kind: Kind,
    pub subject: String,
    pub status: CampaignStatus,
    /// RFC 3339, like the other times.
    pub scheduled_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// `KEY=VALUE`.
    pub filters: Vec<String>,
    /// File names.
    pub attachments: Vec<String>,
    pub total: u64,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Before sending starts (the recipients are fixed then): how many it
    /// would go to now, its filters applied. Absent once it started, and
    /// from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_when_sent: Option<u64>,
    /// What its copies led to: bounces, people who left, replies.
    #[serde(default)]
    pub outcome: crate::store::Outcome,
}

impl CampaignRow {
    /// Whether its recipients are still to be fixed (sending has not
    /// started and it is not over).
    pub fn recipients_open(&self) -> bool {
        self.started_at.is_none() && !self.status.is_final()
    }
}

impl From<&Campaign> for CampaignRow {
    fn from(c: &Campaign) -> CampaignRow {
        CampaignRow {
            id: c.id,
            list: c.list.clone(),
            kind: c.content.kind,
            subject: c.content.subject.clone(),
            status: c.status,
            scheduled_at: c.scheduled_at.to_rfc3339(),
            started_at: c.started_at.map(|t| t.to_rfc3339()),
            finished_at: c.finished_at.map(|t| t.to_rfc3339()),
            filters: c.filters.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            attachments: c.content.attachment_names(),
            total: c.total,
            sent: c.sent,
            failed: c.failed,
            skipped: c.skipped,
            recipients_when_sent: None,
            outcome: c.outcome,
        }
    }
}

/// A queued campaign and how many it goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    #[serde(flatten)]
    pub campaign: CampaignRow,
    pub recipients: u64,
}

/// What a queue would do: nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRun {
    /// Always true: it tells this answer from [`Queued`] on the wire.
    pub dry_run: bool,
    pub recipients: u64,
    pub subject: String,
}

/// An inbound message that was neither acted on nor forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredRow {
    /// RFC 3339.
    pub at: String,
    pub list: String,
    pub address: String,
    pub sender: String,
    pub subject: String,
    pub message_id: String,
    pub reason: String,
}

impl From<&Ignored> for IgnoredRow {
    fn from(i: &Ignored) -> IgnoredRow {
        IgnoredRow {
            at: i.at.to_rfc3339(),
            list: i.list.clone(),
            address: i.address.clone(),
            sender: i.sender.clone(),
            subject: i.subject.clone(),
            message_id: i.message_id.clone(),
            reason: i.reason.clone(),
        }
    }
}

/// One change in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// RFC 3339.
    pub at: String,
    pub who: String,
    pub what: String,
    pub detail: String,
}

impl From<&AuditEntry> for AuditRow {
    fn from(e: &AuditEntry) -> AuditRow {
        AuditRow {
            at: e.at.to_rfc3339(),
            who: e.who.clone(),
            what: e.what.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// A person erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgot {
    pub email: String,
    /// Records erased.
    pub erased: usize,
}

/// Why a request failed; `exit` is the CLI's exit code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub exit: i32,
    /// The cause, where a client words it in its own terms (the CLI names
    /// its flags). Absent from older daemons, and from most failures;
    /// boxed, so that a `Result<_, Failure>` stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Box<Cause>>,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::exit(1, message)
    }

    pub fn exit(exit: i32, message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            exit,
            cause: None,
        }
    }

    /// A failure with exit code 1 whose cause a client may word itself.
    pub fn caused(cause: Cause, message: impl Into<String>) -> Failure {
        Failure {
            cause: Some(Box::new(cause)),
            ..Failure::usage(message)
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
        Failure::usage(format!("{e:#}"))
    }
}

/// The causes of a failure that a client may word in its own terms.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// `add` without a consent text.
    AddWithoutConsent,
    /// `import` without a consent text (and no invitations).
    ImportWithoutConsent,
    /// A recipient filter names an attribute the list does not have.
    UnknownFilter {
        list: String,
        key: String,
        /// The list's attributes.
        known: Vec<String>,
    },
    /// A test copy's address is not an e-mail address.
    NotATestAddress { to: String },
    /// An import's file has columns the list does not declare.
    UndeclaredColumns {
        list: String,
        /// The list's file (`lists/<id>.toml`), where `attributes` is set.
        list_file: String,
        /// The file's columns the list lacks.
        columns: Vec<String>,
        /// The list's `attributes`.
        declared: Vec<String>,
    },
    /// No list has this id.
    NoList { id: String, known: Vec<String> },
    /// No campaign has this id.
    NoCampaign { id: u64 },
    /// A steer that a campaign's status does not allow: it is over
    /// (`done`, `cancelled`), or a resume of one that is not paused.
    CannotSteer { id: u64, status: CampaignStatus },
}

/// sysexits(3) codes for `inject`.
pub mod sysexits {
    pub const OK: i32 = 0;
    pub const DATAERR: i32 = 65;
    pub const NOUSER: i32 = 67;
    pub const TEMPFAIL: i32 = 75;
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

/// One line of a streamed answer, before its closing `ok` or `err`.
// One value at a time passes through: boxing the row would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Streamed {
    /// First: the attribute columns.
    Head {
        attributes: Vec<String>,
    },
    Row(SubscriberRow),
}

/// Any line of an answer.
// One line at a time passes through, as with `Streamed`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    Head { attributes: Vec<String> },
    Row(SubscriberRow),
    Ok(Value),
    Err(Failure),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steering_travels_as_the_words_it_always_was() {
        let r = Request::Steer {
            id: 7,
            action: Steer::Pause,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"cmd": "steer", "id": 7, "action": "pause"})
        );
        let back: Request =
            serde_json::from_str(r#"{"cmd":"steer","id":7,"action":"cancel"}"#).unwrap();
        assert!(matches!(
            back,
            Request::Steer {
                action: Steer::Cancel,
                ..
            }
        ));
    }

    #[test]
    fn a_failure_without_a_cause_reads_as_before() {
        let f: Failure = serde_json::from_str(r#"{"message":"no list","exit":1}"#).unwrap();
        assert_eq!(f, Failure::usage("no list"));
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"message":"no list","exit":1}"#
        );
    }

    #[test]
    fn an_older_daemons_answers_are_read() {
        let forget = Request::Forget {
            email: "a@example.se".into(),
        };
        assert_eq!(
            Response::from_wire(&forget, serde_json::json!("forgot a@example.se")).unwrap(),
            Response::Said("forgot a@example.se".into())
        );
        let listing = Request::Subscribers {
            list: "l".into(),
            status: None,
        };
        assert_eq!(
            Response::from_wire(&listing, serde_json::json!([])).unwrap(),
            Response::Subscribers(vec![])
        );
        assert_eq!(
            Response::from_wire(&listing, serde_json::json!(3)).unwrap(),
            Response::Streamed(3)
        );
    }
}
