//! A discussion list's posts as threads, for the public archive page
//! (`/archive/ID/threads`) and the owners' view of any list (`utskick
//! threads LIST`, as text): every distributed post (not a held or
//! rejected one, not a digest), grouped by `References` and
//! `In-Reply-To`, the newest thread first, each thread in reply order.
//!
//! The page is for anonymous readers: an author is shown by the name in
//! their `From:` only, never by address ("–" when they gave none), and
//! every address in a post's subject and text (an attribution line, a
//! signature) is shown as `…@domain` (`address::redact_addresses`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::{CampaignStatus, Kind};

/// Threads on the page at most; older ones are not shown.
pub const MAX_THREADS: usize = 100;
/// The newest posts read for the page at most: a request's work is
/// bounded however long the list has run (older posts are not shown).
pub const MAX_POSTS_READ: usize = 1000;
/// The longest text shown of one post (characters); the rest is cut.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// One post in a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedPost {
    /// Without the list's tag.
    pub subject: String,
    /// The display name of the author, or "–".
    pub author: String,
    pub date: DateTime<Utc>,
    pub text: String,
    /// 0 for a thread's first post, 1 for a reply to it, …
    pub depth: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub subject: String,
    pub posts: Vec<ArchivedPost>,
}

struct Read {
    id: String,
    parents: Vec<String>,
    post: ArchivedPost,
}

fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// `text` cut at [`MAX_TEXT_CHARS`], with "…" where it was cut.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((at, _)) => format!("{}\n…", &text[..at]),
        None => text.to_string(),
    }
}

/// Threads as text, for the owners (`utskick threads LIST`): each
/// thread's subject, then its posts indented by their depth.
pub fn as_text(threads: &[Thread], list: &List) -> String {
    if threads.is_empty() {
        return format!("{}: no posts", list.id);
    }
    let mut out = String::new();
    for t in threads {
        out.push_str(&format!("== {} ({} posts)\n", t.subject, t.posts.len()));
        for p in &t.posts {
            let pad = "  ".repeat(p.depth + 1);
            out.push_str(&format!(
                "{pad}{} · {}\n",
                p.author,
                p.date.format("%Y-%m-%d %H:%M UTC")
            ));
            for line in p.text.lines() {
                out.push_str(&format!("{pad}  {line}\n"));
            }
        }
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// A discussion list's distributed posts as threads, newest thread first.
pub fn threads(ctx: &Context, list: &List) -> anyhow::Result<Vec<Thread>> {
    let mut read: Vec<Read> = Vec::new();
    let mut posts: Vec<_> = ctx
        .store
        .campaigns()?
        .into_iter()
        .filter(|c| {
            c.list == list.id
                && c.content.kind == Kind::Post
                && c.post.as_ref().is_some_and(|p| !p.digest)
                && matches!(c.status, CampaignStatus::Sending | CampaignStatus::Done)
        })
        .collect();
    posts.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    posts.truncate(MAX_POSTS_READ);
    for c in posts {
        let raw = ctx.store.blob(c.id, 0)?.unwrap_or_default();
        let Some(msg) = crate::mail::message::parse_message(&raw) else {
            continue;
        };
        let tag = &list.discussion.subject_tag;
        let subject = crate::compose::post::tag_subject(msg.subject().unwrap_or_default(), tag);
        let subject = subject
            .strip_prefix(tag.as_str())
            .unwrap_or(&subject)
            .trim()
            .to_string();
        let author = msg
            .from()
            .and_then(|f| f.first())
            .and_then(|a| a.name())
            .map(crate::address::header_safe)
            .filter(|n| !n.trim().is_empty() && !n.contains('@'))
            .unwrap_or_else(|| "–".to_string());
        let text = match msg.body_text(0) {
            Some(t) if !msg.text_body.is_empty() => t.to_string(),
            _ => msg
                .body_html(0)
                .map(|h| crate::mail::html_text::html_to_text(&h))
                .unwrap_or_default(),
        };
        let mut parents = ids(msg.references());
        parents.extend(ids(msg.in_reply_to()));
        read.push(Read {
            id: msg
                .message_id()
                .map(str::to_string)
                .unwrap_or_else(|| format!("campaign-{}", c.id)),
            parents,
            post: ArchivedPost {
                subject: crate::address::redact_addresses(&subject),
                author,
                date: c.created_at,
                text: crate::address::redact_addresses(&clip(text.trim_end())),
                depth: 0,
            },
        });
    }
    read.sort_by_key(|r| r.post.date);
    let index: HashMap<String, usize> = read
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    // A post's parent: the last of its References (or its In-Reply-To)
    // that the archive holds, and only an earlier post (no cycles).
    let parent: Vec<Option<usize>> = read
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.parents
                .iter()
                .rev()
                .filter_map(|p| index.get(p).copied())
                .find(|&j| j < i)
        })
        .collect();
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, p) in parent.iter().enumerate() {
        match p {
            Some(p) => children.entry(*p).or_default().push(i),
            None => roots.push(i),
        }
    }
    let mut threads: Vec<(DateTime<Utc>, Thread)> = Vec::new();
    for root in roots {
        let mut posts = Vec::new();
        let mut stack = vec![(root, 0usize)];
        let mut last = read[root].post.date;
        while let Some((i, depth)) = stack.pop() {
            let mut p = read[i].post.clone();
            p.depth = depth;
            last = last.max(p.date);
            posts.push(p);
            if let Some(kids) = children.get(&i) {
                for k in kids.iter().rev() {
                    stack.push((*k, depth + 1));
                }
            }
        }
        threads.push((
            last,
            Thread {
                subject: read[root].post.subject.clone(),
                posts,
            },
        ));
    }
    threads.sort_by_key(|t| std::cmp::Reverse(t.0));
    Ok(threads
        .into_iter()
        .take(MAX_THREADS)
        .map(|(_, t)| t)
        .collect())
}
