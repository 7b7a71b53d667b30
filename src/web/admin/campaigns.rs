//! The campaigns with their progress (the page refreshes itself while one
//! is under way), pause, resume and cancel; and a new newsletter: the
//! front matter's fields and the Markdown, a preview as phone and desktop
//! with the recipient count, a test copy to the owner, and queueing, with
//! `queue`'s own refusals and their line numbers.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};

use super::{local_minute, owner_language_of, see_other, status_label, word, Owner};
use crate::admin::protocol::{CampaignRow, Request, Response as Answer};
use crate::admin::WireContent;
use crate::campaign::preview::Preview;
use crate::campaign::Steer;
use crate::compose::newsletter;
use crate::daemon::lists::Language;
use crate::daemon::lists::List;
use crate::web::Shared;

/// The page refreshes itself this often (seconds) while a campaign sends.
const REFRESH_SECS: u32 = 10;
/// The name the form's Markdown goes by in refusals ("nyhetsbrev.md:3: …").
const SOURCE: &str = "nyhetsbrev.md";
/// The Content-Security-Policy of a page that shows a newsletter's HTML:
/// its inline styles are allowed, still no script.
const PREVIEW_CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn campaign_json(
    c: &CampaignRow,
    now: chrono::DateTime<chrono::Utc>,
    zone: crate::time::Zone,
    lang: Language,
) -> Value {
    let status = word(&c.status);
    let done = c.sent + c.failed + c.skipped;
    let remaining = c.total.saturating_sub(done);
    // Messages an hour since sending started, and when the rest is done.
    let started = c
        .started_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let (rate, eta) = match started {
        Some(s) if status == "sending" && done > 0 => {
            let secs = (now - s.with_timezone(&chrono::Utc)).num_seconds().max(1) as f64;
            let per_sec = done as f64 / secs;
            let eta = now + chrono::Duration::seconds((remaining as f64 / per_sec) as i64);
            (
                Some((per_sec * 3600.0).round() as u64),
                Some(local_minute(&eta.to_rfc3339(), zone)),
            )
        }
        _ => (None, None),
    };
    json!({
        "id": c.id, "list": c.list, "subject": c.subject,
        "label": status_label(lang, &status), "status": status,
        "kind": word(&c.kind),
        "scheduled_at": local_minute(&c.scheduled_at, zone),
        "finished_at": c.finished_at.as_deref().map(|t| local_minute(t, zone)),
        "total": c.total, "sent": c.sent, "failed": c.failed, "skipped": c.skipped,
        // Refused by the relay, or reported back to the VERP address later.
        "bounced": c.failed + c.outcome.bounced,
        "unsubscribed": c.outcome.unsubscribed, "replies": c.outcome.replies,
        "remaining": remaining, "rate": rate, "eta": eta,
        "filters": c.filters.join(", "),
        "can_pause": matches!(status.as_str(), "scheduled" | "sending"),
        "can_resume": status == "paused",
        "can_cancel": !matches!(status.as_str(), "done" | "cancelled"),
    })
}

#[derive(serde::Deserialize, Default)]
pub(super) struct Follow {
    /// `1`: refresh the page every [`REFRESH_SECS`] while a campaign sends.
    #[serde(default)]
    follow: String,
}

/// `GET /admin/campaigns[?follow=1]`: the owner's lists' campaigns, newest
/// first. While one is scheduled or sending the page offers to follow it;
/// followed, it refreshes itself every [`REFRESH_SECS`] with a link that
/// stops it (WCAG 2.2.1: a page that moves on its own is the reader's
/// choice, and can be turned off).
pub(super) async fn campaigns(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Query(follow): Query<Follow>,
) -> Response {
    let lang = owner_language_of(&web, &owner.email);
    let rows = match web.run(&owner, Request::Campaigns).await {
        Ok(Answer::Campaigns(rows)) => rows,
        Ok(_) => return web.unavailable(anyhow::anyhow!("unexpected answer to campaigns")),
        Err(f) => return web.unavailable(anyhow::anyhow!(f.message)),
    };
    let now = web.ctx.now();
    let zone = web.ctx.config.timezone;
    let mut shown: Vec<Value> = rows
        .iter()
        .filter(|c| web.owned(&owner, &c.list).is_ok())
        .map(|c| campaign_json(c, now, zone, lang))
        .collect();
    shown.reverse();
    let busy = shown
        .iter()
        .any(|c| matches!(c["status"].as_str(), Some("sending" | "scheduled")));
    let following = follow.follow == "1";
    let data = json!({
        "campaigns": shown,
        "busy": busy,
        "following": busy && following,
        "refresh": (busy && following).then_some(REFRESH_SECS),
        "every": REFRESH_SECS,
    });
    web.admin_page(StatusCode::OK, lang, "admin-campaigns", Some(&owner), data)
}

/// `POST /admin/campaigns/ID/steer` (action: pause, resume, cancel).
pub(super) async fn steer(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(cid): Path<u64>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let lang = owner_language_of(&web, &owner.email);
    // Only a campaign of the owner's own lists.
    match web.run(&owner, Request::Status { id: cid }).await {
        Ok(Answer::Campaign(c)) if web.owned(&owner, &c.list).is_ok() => {}
        _ => return web.admin_problem(StatusCode::NOT_FOUND, lang, "not_found"),
    }
    let action = match form.get("action").map(String::as_str) {
        Some("pause") => Steer::Pause,
        Some("resume") => Steer::Resume,
        Some("cancel") => Steer::Cancel,
        _ => return web.admin_problem(StatusCode::BAD_REQUEST, lang, "bad_request"),
    };
    match web.run(&owner, Request::Steer { id: cid, action }).await {
        Ok(_) => see_other("/admin/campaigns"),
        Err(f) => {
            let data = json!({"campaigns": [], "error": f.message});
            web.admin_page(
                StatusCode::CONFLICT,
                lang,
                "admin-campaigns",
                Some(&owner),
                data,
            )
        }
    }
}

/// `GET /admin/lists/ID/campaigns`: the form for a new newsletter.
pub(super) async fn new_form(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let data = form_data(&web, list, &BTreeMap::new());
    web.admin_page(
        StatusCode::OK,
        list.language,
        "admin-new",
        Some(&owner),
        data,
    )
}

fn form_data(web: &Shared, list: &List, form: &BTreeMap<String, String>) -> Value {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    json!({
        "list": {"id": list.id, "name": list.name, "attributes": list.attributes.join(", ")},
        "subject": get("subject"), "preheader": get("preheader"),
        "markdown": get("markdown"), "at": get("at"), "where": get("where"),
        "link": get("link"), "announcement": get("kind") == "announcement",
        "timezone": web.ctx.config.timezone.to_string(),
        "max_attach": format!("{} MB", web.ctx.config.limits.max_attachment_bytes / (1024 * 1024)),
    })
}

/// The form's text as a newsletter file: the front matter's fields first
/// (when the Markdown has no front matter of its own), and how many lines
/// that put before the leader's first, so refusals name their lines.
fn newsletter_text(form: &BTreeMap<String, String>) -> (String, usize) {
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let markdown = form
        .get("markdown")
        .cloned()
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let (subject, preheader) = (get("subject"), get("preheader"));
    if markdown.trim_start().starts_with("---") || (subject.is_empty() && preheader.is_empty()) {
        return (markdown, 0);
    }
    let mut head = String::from("---\n");
    for (key, value) in [("subject", subject), ("preheader", preheader)] {
        if !value.is_empty() {
            head.push_str(&format!("{key}: {}\n", value.replace('\n', " ")));
        }
    }
    head.push_str("---\n");
    let lines = head.lines().count();
    (head + &markdown, lines)
}

/// "nyhetsbrev.md:7: …" with the lines the form's fields added taken off;
/// a line among them is the field's.
fn shift_lines(message: &str, offset: usize) -> String {
    if offset == 0 {
        return message.to_string();
    }
    let Some(rest) = message.strip_prefix(&format!("{SOURCE}:")) else {
        return message.to_string();
    };
    let Some((n, tail)) = rest.split_once(':') else {
        return message.to_string();
    };
    match n.parse::<usize>() {
        Ok(n) if n > offset => format!("{SOURCE}:{}:{tail}", n - offset),
        Ok(_) => format!("{SOURCE} (front matter):{tail}"),
        Err(_) => message.to_string(),
    }
}

/// `POST /admin/lists/ID/campaigns` (csrf, markdown, optional subject,
/// preheader, at, where; `action` preview, test or queue, queue by
/// default): each step runs what the CLI runs (`queue --dry-run` counts,
/// `preview --to` sends the test copy, `queue` queues) and refuses what it
/// refuses.
pub(super) async fn submit(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let lang = list.language;
    let Some((fields, files)) = super::form_of(&headers, &body) else {
        return web.admin_problem(StatusCode::BAD_REQUEST, lang, "bad_request");
    };
    let form: BTreeMap<String, String> = fields.into_iter().collect();
    let action = form.get("action").map(String::as_str).unwrap_or("queue");
    let refuse = |message: String| {
        let mut data = form_data(&web, list, &form);
        data["error"] = json!(message);
        web.admin_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            list.language,
            "admin-new",
            Some(&owner),
            data,
        )
    };
    let announce = form.get("kind").is_some_and(|k| k == "announcement");
    let (text, offset) = if announce {
        (
            form.get("markdown")
                .cloned()
                .unwrap_or_default()
                .replace("\r\n", "\n"),
            0,
        )
    } else {
        newsletter_text(&form)
    };
    let parsed = if announce {
        // A material announcement, as `utskick announce`: the subject is
        // its title, the Markdown its description.
        let title = form.get("subject").map(String::as_str).unwrap_or("");
        let link = form.get("link").map(String::as_str);
        let description = Some((SOURCE, text.as_str())).filter(|(_, t)| !t.trim().is_empty());
        newsletter::announcement(title, link, description, Vec::new()).map(|c| (c, Vec::new()))
    } else {
        newsletter::parse_newsletter(SOURCE, &text)
    };
    let (mut content, mut filters) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return refuse(shift_lines(&e.to_string(), offset)),
    };
    // Files chosen in the form's file field (a browser sends an empty part
    // when none is), held to `limits.max_attachment_bytes` together.
    let max = web.ctx.config.limits.max_attachment_bytes;
    for (_, name, data) in files
        .into_iter()
        .filter(|(f, n, d)| f == "attachment" && !n.is_empty() && !d.is_empty())
    {
        let total = content.attachments.iter().map(|a| a.data.len()).sum();
        match newsletter::uploaded_attachment(&name, data, total, max) {
            Ok(a) => content.attachments.push(a),
            Err(e) => return refuse(e.to_string()),
        }
    }
    let attached = content
        .attachments
        .iter()
        .map(|a| a.filename.clone())
        .collect::<Vec<_>>()
        .join(", ");
    for pair in form
        .get("where")
        .map(String::as_str)
        .unwrap_or("")
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                filters.push((k.trim().to_string(), v.trim().to_string()))
            }
            _ => return refuse(format!("where: {pair:?} is not KEY=VALUE")),
        }
    }
    let at = match form.get("at").map(|t| t.trim()).filter(|t| !t.is_empty()) {
        Some(t) => match crate::time::parse_leader_time(t, web.ctx.config.timezone) {
            Ok(t) => Some(t.to_rfc3339()),
            Err(e) => return refuse(format!("at: {e}")),
        },
        None => None,
    };
    let queue = |dry_run| Request::Queue {
        list: list.id.clone(),
        content: WireContent::new(content.clone()),
        filters: filters.clone(),
        at: at.clone(),
        dry_run,
    };
    match action {
        "preview" => {
            let recipients = match web.run(&owner, queue(true)).await {
                Ok(Answer::DryRun(d)) => d.recipients,
                Ok(_) => 0,
                Err(f) => return refuse(shift_lines(&f.message, offset)),
            };
            let html = match Preview::new(&web.ctx.config, list, &content) {
                Ok(p) => match p.html() {
                    Ok(h) => h,
                    Err(e) => return refuse(e.to_string()),
                },
                Err(e) => return refuse(shift_lines(&e.to_string(), offset)),
            };
            let mut data = form_data(&web, list, &form);
            data["preview"] = json!(body_of(&html));
            data["recipients"] = json!(recipients);
            data["preview_subject"] = json!(content.subject);
            data["attached"] = json!(attached);
            let mut r = web.admin_page(
                StatusCode::OK,
                list.language,
                "admin-new",
                Some(&owner),
                data,
            );
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PREVIEW_CSP),
            );
            r
        }
        "test" => {
            let request = Request::SendTest {
                list: list.id.clone(),
                content: WireContent::new(content.clone()),
                to: owner.email.clone(),
            };
            match web.run(&owner, request).await {
                Ok(_) => {
                    let mut data = form_data(&web, list, &form);
                    data["test_sent"] = json!(owner.email);
                    data["attached"] = json!(attached);
                    web.admin_page(
                        StatusCode::OK,
                        list.language,
                        "admin-new",
                        Some(&owner),
                        data,
                    )
                }
                Err(f) => refuse(shift_lines(&f.message, offset)),
            }
        }
        _ => match web.run(&owner, queue(false)).await {
            Ok(_) => see_other("/admin/campaigns"),
            Err(f) => refuse(shift_lines(&f.message, offset)),
        },
    }
}

/// What is between a document's `<body …>` and `</body>` (the whole text
/// when it has none): the newsletter's HTML shown inside our page.
fn body_of(html: &str) -> String {
    let start = html
        .find("<body")
        .and_then(|b| html[b..].find('>').map(|e| b + e + 1))
        .unwrap_or(0);
    let end = html
        .rfind("</body>")
        .filter(|e| *e >= start)
        .unwrap_or(html.len());
    html[start..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_become_front_matter_and_refusals_keep_the_leaders_lines() {
        let mut form = BTreeMap::new();
        form.insert("markdown".to_string(), "Hej {{nmae}}\r\n".to_string());
        form.insert("subject".to_string(), "December".to_string());
        let (text, offset) = newsletter_text(&form);
        assert_eq!(text, "---\nsubject: December\n---\nHej {{nmae}}\n");
        assert_eq!(offset, 3);
        assert_eq!(
            shift_lines("nyhetsbrev.md:4: unknown field `nmae`", 3),
            "nyhetsbrev.md:1: unknown field `nmae`"
        );
        assert_eq!(
            shift_lines("nyhetsbrev.md:2: bad", 3),
            "nyhetsbrev.md (front matter): bad"
        );
        form.insert(
            "markdown".to_string(),
            "---\nsubject: X\n---\nHej\n".to_string(),
        );
        assert_eq!(newsletter_text(&form).1, 0);
        assert_eq!(
            body_of("<html><body class=\"x\"><p>a</p></body></html>"),
            "<p>a</p>"
        );
    }
}
