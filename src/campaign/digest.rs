//! The daily digest of a discussion list (issue 16, `sammandrag` /
//! `digest`): once a day, the posts of the days before that no digest
//! holds yet become one MIME digest (`compose::post::digest`), sent as a
//! campaign of kind `post` to the members who chose it; the others get
//! each post as it comes. Days are UTC days.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::campaign::{put_post, NewPost};
use crate::compose::post::{digest, Post};
use crate::daemon::context::Context;
use crate::daemon::lists::{Language, Posting};
use crate::store::{CampaignStatus, Kind, PostMeta};

/// Posts in one digest at most; the rest wait for the next day's.
pub const MAX_POSTS_PER_DIGEST: usize = 200;
/// The posts' bytes in one digest at most (10 MiB, under what the big
/// providers accept); the posts past it wait for the next day's. A
/// single post bigger than this still goes, alone.
pub const MAX_DIGEST_BYTES: usize = 10 * 1024 * 1024;

/// Makes each discussion list's digest when its day has come: at most one
/// a day per list (a note in the store says it was made, so a restart
/// does not make it twice). `seen` remembers the lists already looked at
/// today, so this costs nothing between days. True when one was made.
pub fn make_due(ctx: &Context, seen: &mut HashMap<String, NaiveDate>) -> anyhow::Result<bool> {
    let now = ctx.now();
    let today = now.date_naive();
    let midnight = today
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let mut made = false;
    for list in ctx.lists.iter() {
        if list.discussion.posting == Posting::Owners || seen.get(&list.id) == Some(&today) {
            continue;
        }
        seen.insert(list.id.clone(), today);
        let key = format!("digest\0{}", list.id);
        if ctx
            .store
            .write(|tx| Ok(tx.note_today(&key, now)?))?
            .is_some()
        {
            continue;
        }
        let mut posts: Vec<_> = ctx
            .store
            .campaigns()?
            .into_iter()
            .filter(|c| {
                c.list == list.id
                    && c.content.kind == Kind::Post
                    && c.created_at < midnight
                    && c.post.as_ref().is_some_and(|p| !p.digest && !p.digested)
                    && !matches!(c.status, CampaignStatus::Draft | CampaignStatus::Cancelled)
            })
            .collect();
        posts.sort_by_key(|c| c.created_at);
        posts.truncate(MAX_POSTS_PER_DIGEST);
        let sv = list.language == Language::Sv;
        let mut parsed = Vec::new();
        let (mut bytes, mut taken) = (0usize, 0usize);
        for c in &posts {
            let raw = ctx.store.blob(c.id, 0)?.unwrap_or_default();
            if taken > 0 && bytes + raw.len() > MAX_DIGEST_BYTES {
                break;
            }
            bytes += raw.len();
            taken += 1;
            let link = |part: usize, name: &str| {
                Some(crate::campaign::files::file_url(
                    ctx, list, c.id, part, name,
                ))
            };
            if let Some(p) = Post::parse(&raw, list.discussion.attachments, sv, &link) {
                parsed.push(p);
            }
        }
        // Only the posts in this digest are marked as digested.
        posts.truncate(taken);
        let day = (today - chrono::Days::new(1))
            .format("%Y-%m-%d")
            .to_string();
        let raw = (!parsed.is_empty())
            .then(|| digest(list, &ctx.config.domain, &day, &parsed, now.timestamp()));
        ctx.store.write(|tx| {
            if tx.note_today(&key, now)?.is_some() {
                return Ok(());
            }
            let mut id = 0;
            if let Some(raw) = &raw {
                for c in &posts {
                    if let Some(mut fresh) = tx.campaign(c.id)? {
                        if let Some(p) = fresh.post.as_mut() {
                            p.digested = true;
                        }
                        tx.put_campaign(&fresh);
                    }
                }
                let subject = crate::compose::post::digest_subject(list, &day, parsed.len());
                let c = put_post(
                    tx,
                    list,
                    &NewPost {
                        list: list.id.clone(),
                        subject,
                        raw: raw.clone(),
                        meta: PostMeta {
                            author: crate::daemon::lists::list_address(
                                list,
                                "",
                                None,
                                &ctx.config.domain,
                            ),
                            skip: None,
                            digest: true,
                            digested: true,
                        },
                        draft: false,
                    },
                    now,
                )?;
                id = c.id;
            }
            tx.write_note(&key, id, now);
            Ok(())
        })?;
        if raw.is_some() {
            tracing::info!(list = %list.id, posts = parsed.len(), "digest queued");
            made = true;
        }
    }
    if made {
        ctx.campaign_ready.notify_one();
    }
    Ok(made)
}
