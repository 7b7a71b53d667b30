//! The public archive of a list: the campaigns that went out, newest first,
//! each rendered for an anonymous reader (no name, no address, no token).
//!
//! A campaign's content never changes once it is queued, so its rendering
//! is made once and kept in an [`Archive`]. Which campaigns the archive
//! holds is read from the store on every call: a campaign that stops being
//! archived (paused or cancelled while sending) is not served again, and
//! its rendering is dropped. Nothing removes a campaign record today; if
//! something does, it drops out the same way.
//!
//! The renderings reflect the templates as they were when first asked
//! for: a template edited while the daemon runs shows after a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::compose::mime::Prepared;
use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::{Campaign, CampaignStatus};
use crate::store::{Content, Kind};

/// One archived campaign as a page or feed shows it.
pub struct Entry {
    pub id: u64,
    /// When it went out: its start, or its scheduled time if it has none.
    pub date: DateTime<Utc>,
    /// The subject as written (fields not filled in): what the list shows
    /// when the campaign cannot be rendered.
    pub subject: String,
    /// An announcement's title; "" for a newsletter.
    pub title: String,
    /// An announcement's link.
    pub link: Option<String>,
    /// Attachment file names.
    pub attachments: Vec<String>,
    content: Content,
}

/// An attachment of an archived campaign, to download.
pub struct Download {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// A campaign rendered for an anonymous reader.
#[derive(Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line, fields filled in.
    pub subject: String,
    /// The HTML body alone, without layout or footer.
    pub body: String,
}

/// The kept renderings, by (list, campaign id). One is shared by every
/// page of the web server.
#[derive(Default)]
pub struct Archive {
    kept: Mutex<HashMap<(String, u64), Arc<Rendered>>>,
}

fn archived(c: &Campaign, list: &List) -> bool {
    // Discussion posts are not newsletters: they are not in this archive.
    c.list == list.id
        && c.content.kind != Kind::Post
        && matches!(c.status, CampaignStatus::Done | CampaignStatus::Sending)
}

fn entry(c: Campaign) -> Entry {
    let title = if c.content.kind == Kind::Announcement {
        c.content.title.clone()
    } else {
        String::new()
    };
    Entry {
        id: c.id,
        date: c.started_at.unwrap_or(c.scheduled_at),
        subject: c.content.subject.clone(),
        title,
        link: c.content.link.clone(),
        attachments: c.content.attachment_names(),
        content: c.content,
    }
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Arc<Rendered>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The campaigns of `list` that went out (done, or still sending),
    /// newest first. Renderings of campaigns no longer among them are
    /// dropped.
    pub fn entries(&self, ctx: &Context, list: &List) -> anyhow::Result<Vec<Entry>> {
        let mut out: Vec<Entry> = ctx
            .store
            .campaigns()?
            .into_iter()
            .filter(|c| archived(c, list))
            .map(entry)
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.date));
        self.kept()
            .retain(|(l, id), _| *l != list.id || out.iter().any(|e| e.id == *id));
        Ok(out)
    }

    /// Campaign `id` if it is in the archive of `list`.
    pub fn entry(&self, ctx: &Context, list: &List, id: u64) -> anyhow::Result<Option<Entry>> {
        match ctx.store.campaign(id)? {
            Some(c) if archived(&c, list) => Ok(Some(entry(c))),
            _ => {
                self.kept().remove(&(list.id.clone(), id));
                Ok(None)
            }
        }
    }

    /// Attachment `index` (from 0) of campaign `id`, if the campaign is in
    /// the archive of `list`: guarded exactly as [`Archive::entry`] is.
    pub fn attachment(
        &self,
        ctx: &Context,
        list: &List,
        id: u64,
        index: usize,
    ) -> anyhow::Result<Option<Download>> {
        let Some(c) = ctx.store.campaign(id)?.filter(|c| archived(c, list)) else {
            return Ok(None);
        };
        let Some(meta) = c.content.attachments.get(index) else {
            return Ok(None);
        };
        let Some(data) = ctx.store.blob(id, index)? else {
            return Ok(None);
        };
        Ok(Some(Download {
            filename: meta.filename.clone(),
            content_type: meta.content_type.clone(),
            data,
        }))
    }

    /// The entry rendered for an anonymous reader: the kept rendering, or
    /// a fresh one that is then kept. A failure is not kept.
    pub fn rendered(
        &self,
        ctx: &Context,
        list: &List,
        entry: &Entry,
    ) -> anyhow::Result<Arc<Rendered>> {
        let key = (list.id.clone(), entry.id);
        if let Some(r) = self.kept().get(&key) {
            return Ok(r.clone());
        }
        // Rendered outside the lock: two first requests may both render,
        // and the results are the same.
        let rendered = Arc::new(anonymous(ctx, list, &entry.content)?);
        self.kept().insert(key, rendered.clone());
        Ok(rendered)
    }
}

/// The campaign as an anonymous reader sees it: no name, no address, no token.
fn anonymous(ctx: &Context, list: &List, content: &Content) -> anyhow::Result<Rendered> {
    let prepared = Prepared::new(content, list, &ctx.config.templates_dir)?;
    let attributes: BTreeMap<String, String> = list
        .attributes
        .iter()
        .map(|a| (a.clone(), String::new()))
        .collect();
    let list_url = format!("{}/lists/{}", ctx.config.base_url(), list.id);
    // No name: "Hej {{first_name}}!" reads "Hej!" (compose drops the
    // space before a field that renders empty), which suits a page anyone
    // reads better than a made-up name such as "läsare".
    let reader = crate::compose::mime::Recipient {
        email: "",
        name: "",
        attributes: &attributes,
        unsubscribe_url: &list_url,
        unsubscribe_mailto: &list_url,
        reply_to: "",
        // The page itself: no link to where the reader already is.
        archive_url: "",
    };
    let (subject, body) = prepared.archive_parts(list, &reader)?;
    Ok(Rendered { subject, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{self, NewCampaign, Steer};
    use crate::daemon::config::Config;
    use crate::daemon::context::system_clock;
    use crate::outbound::Transport;

    fn context(dir: &std::path::Path) -> Arc<Context> {
        let root = env!("CARGO_MANIFEST_DIR");
        let text = format!(
            "domain = \"lista.example.se\"\nbase_url = \"https://lista.example.se\"\ndata_dir = \"{}\"\nlists_dir = \"{root}/lists\"\ntemplates_dir = \"{root}/templates\"\n",
            dir.join("data").display()
        );
        let config = Config::parse(&text, "t.toml").unwrap();
        Arc::new(crate::daemon::build_context(config, system_clock()).unwrap())
    }

    fn queue(ctx: &Context, subject: &str) -> u64 {
        let content = Content {
            kind: Kind::Newsletter,
            source: "a.md".into(),
            subject: subject.into(),
            preheader: String::new(),
            markdown: "Hej {{first_name}}!\n\nHälsningar\nProjektledningen\n".into(),
            title: String::new(),
            link: None,
            attachments: vec![],
        };
        let new = NewCampaign {
            list: "lokal-finansiering".into(),
            content,
            filters: vec![],
            at: None,
            draft: false,
        };
        campaign::create(ctx, new).unwrap().id
    }

    /// A file outbox in a directory that is not there: every send is
    /// deferred, so the campaign stays sending.
    fn nowhere(dir: &std::path::Path) -> Transport {
        Transport::File(lettre::AsyncFileTransport::with_envelope(
            dir.join("missing"),
        ))
    }

    #[tokio::test]
    async fn a_rendering_is_kept_until_the_campaign_leaves_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let list = ctx.lists.get("lokal-finansiering").unwrap().clone();
        crate::subscription::by_admin::admin_add(
            &ctx,
            &list,
            "a@example.org",
            Some("Anna"),
            Default::default(),
            "test",
        )
        .unwrap();
        let id = queue(&ctx, "Nytt");
        let archive = Archive::new();
        assert!(
            archive.entries(&ctx, &list).unwrap().is_empty(),
            "not sent yet"
        );
        let (_tx, stop) = tokio::sync::watch::channel(false);
        campaign::tick(&ctx, &nowhere(dir.path()), &stop, &mut Default::default())
            .await
            .unwrap();

        let entries = archive.entries(&ctx, &list).unwrap();
        assert_eq!(entries.len(), 1, "a campaign still sending is archived");
        let first = archive.rendered(&ctx, &list, &entries[0]).unwrap();
        // The archive has no reader: the greeting reads naturally without
        // a name (it said "Hej läsare!" once).
        assert!(first.body.contains(">Hej!</p>"), "{}", first.body);
        assert!(!first.body.contains("Hej !") && !first.body.contains("läsare"));
        assert!(!first.body.contains("Anna"));
        assert!(
            first.body.contains("Hälsningar<br />\nProjektledningen"),
            "{}",
            first.body
        );
        let item = archive.entry(&ctx, &list, id).unwrap().unwrap();
        let again = archive.rendered(&ctx, &list, &item).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "rendered once");

        // Paused: out of the archive, and its rendering is not kept.
        campaign::steer(&ctx, id, Steer::Pause).unwrap();
        assert!(archive.entry(&ctx, &list, id).unwrap().is_none());
        assert!(archive.entries(&ctx, &list).unwrap().is_empty());
        assert!(archive.kept().is_empty());
        // Back to sending: rendered afresh.
        campaign::steer(&ctx, id, Steer::Resume).unwrap();
        let item = archive.entry(&ctx, &list, id).unwrap().unwrap();
        let fresh = archive.rendered(&ctx, &list, &item).unwrap();
        assert!(!Arc::ptr_eq(&first, &fresh));
        assert_eq!(*first, *fresh);
        // Cancelled: gone from the list, the item and the kept renderings.
        campaign::steer(&ctx, id, Steer::Cancel).unwrap();
        assert!(archive.entries(&ctx, &list).unwrap().is_empty());
        assert!(archive.entry(&ctx, &list, id).unwrap().is_none());
        assert!(archive.kept().is_empty());
    }
}
