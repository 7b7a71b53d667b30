//! The public archive of a list, its campaigns one page each, and its Atom
//! feed (RFC 4287), for the project's website.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{list_json, site_language, Shared};
use crate::compose::newsletter::{self, Kind, Prepared};
use crate::daemon::context::Context;
use crate::daemon::lists::{Language, List};
use crate::store::CampaignStatus;

/// Newest entries in the Atom feed.
const FEED_ENTRIES: usize = 20;

/// Campaigns of a public list that went out, newest first.
fn archived(ctx: &Context, list: &List) -> anyhow::Result<Vec<crate::store::Campaign>> {
    let mut out: Vec<_> = ctx
        .store
        .campaigns()?
        .into_iter()
        .filter(|c| {
            c.list == list.id && matches!(c.status, CampaignStatus::Done | CampaignStatus::Sending)
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.started_at.unwrap_or(c.scheduled_at)));
    Ok(out)
}

/// The campaign as an anonymous reader sees it: no name, no address, no
/// token. Returns (subject, body HTML, title, link, attachment names).
fn anonymous(
    ctx: &Context,
    list: &List,
    c: &crate::store::Campaign,
) -> anyhow::Result<(String, String)> {
    let prepared = Prepared::new(&c.content, list, &ctx.config.templates_dir)?;
    let attributes: BTreeMap<String, String> = list
        .attributes
        .iter()
        .map(|a| (a.clone(), String::new()))
        .collect();
    let list_url = format!("{}/lists/{}", ctx.config.base_url(), list.id);
    // "Hej {{name}}!" must read well without a name.
    let name = match list.language {
        Language::Sv => "läsare",
        Language::En => "reader",
    };
    let reader = newsletter::Recipient {
        email: "",
        name,
        attributes: &attributes,
        unsubscribe_url: &list_url,
        unsubscribe_mailto: &list_url,
        reply_to: "",
    };
    prepared.archive_parts(list, &reader)
}

fn date_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

pub(super) async fn archive(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(list) = web.list(&id).filter(|l| l.public) else {
        return web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found");
    };
    let campaigns = match archived(&web.ctx, list) {
        Ok(c) => c,
        Err(e) => return web.unavailable(e),
    };
    let items: Vec<Value> = campaigns
        .iter()
        .map(|c| {
            let when = c.started_at.unwrap_or(c.scheduled_at);
            let subject = anonymous(&web.ctx, list, c)
                .map(|(s, _)| s)
                .unwrap_or_else(|_| c.content.subject.clone());
            json!({"id": c.id, "subject": subject, "date": when.to_rfc3339(), "date_text": date_text(when)})
        })
        .collect();
    let data = json!({
        "list": list_json(list),
        "items": items,
        "feed": format!("/archive/{}/feed.atom", list.id),
        "feed_title": list.name,
    });
    web.page(StatusCode::OK, list.language, "archive", data)
}

pub(super) async fn archive_item(
    State(web): State<Shared>,
    Path((id, campaign_id)): Path<(String, String)>,
) -> Response {
    let lang = site_language(&web.ctx);
    let Some(list) = web.list(&id).filter(|l| l.public) else {
        return web.problem(StatusCode::NOT_FOUND, lang, "not_found");
    };
    let Ok(cid) = campaign_id.parse::<u64>() else {
        return web.problem(StatusCode::NOT_FOUND, list.language, "not_found");
    };
    let campaigns = match archived(&web.ctx, list) {
        Ok(c) => c,
        Err(e) => return web.unavailable(e),
    };
    let Some(c) = campaigns.iter().find(|c| c.id == cid) else {
        return web.problem(StatusCode::NOT_FOUND, list.language, "not_found");
    };
    let (subject, body) = match anonymous(&web.ctx, list, c) {
        Ok(parts) => parts,
        Err(e) => return web.unavailable(e),
    };
    let when = c.started_at.unwrap_or(c.scheduled_at);
    let announcement = c.content.kind == Kind::Announcement;
    let data = json!({
        "list": list_json(list),
        "subject": subject,
        "body": body,
        "title": if announcement { c.content.title.clone() } else { String::new() },
        "link": c.content.link,
        "attachments": c.content.attachments.iter().map(|a| a.filename.clone()).collect::<Vec<_>>(),
        "date": when.to_rfc3339(),
        "date_text": date_text(when),
        "feed": format!("/archive/{}/feed.atom", list.id),
        "feed_title": list.name,
    });
    web.page(StatusCode::OK, list.language, "archive-item", data)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An Atom feed (RFC 4287) of the archive, for the project's website.
pub(super) async fn feed(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(list) = web.list(&id).filter(|l| l.public) else {
        return (StatusCode::NOT_FOUND, "no such archive\n").into_response();
    };
    let campaigns = match archived(&web.ctx, list) {
        Ok(c) => c,
        Err(e) => return web.unavailable(e),
    };
    let base = web.ctx.config.base_url();
    let updated = campaigns
        .first()
        .map(|c| c.started_at.unwrap_or(c.scheduled_at))
        .unwrap_or_else(|| web.ctx.now());
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{lang}\">\n<title>{title}</title>\n<subtitle>{subtitle}</subtitle>\n<id>{base}/archive/{id}</id>\n<link rel=\"self\" href=\"{base}/archive/{id}/feed.atom\"/>\n<link rel=\"alternate\" href=\"{base}/archive/{id}\"/>\n<updated>{updated}</updated>\n",
        lang = list.language.code(),
        title = xml_escape(&list.name),
        subtitle = xml_escape(&list.description),
        id = list.id,
        updated = updated.to_rfc3339(),
    );
    for c in campaigns.iter().take(FEED_ENTRIES) {
        let Ok((subject, body)) = anonymous(&web.ctx, list, c) else {
            continue;
        };
        let when = c.started_at.unwrap_or(c.scheduled_at).to_rfc3339();
        xml.push_str(&format!(
            "<entry>\n<title>{subject}</title>\n<id>{base}/archive/{id}/{cid}</id>\n<link rel=\"alternate\" href=\"{base}/archive/{id}/{cid}\"/>\n<published>{when}</published>\n<updated>{when}</updated>\n<author><name>{author}</name></author>\n<content type=\"html\">{body}</content>\n</entry>\n",
            subject = xml_escape(&subject),
            id = list.id,
            cid = c.id,
            author = xml_escape(&list.name),
            body = xml_escape(&body),
        ));
    }
    xml.push_str("</feed>\n");
    let mut r = xml.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml; charset=utf-8"),
    );
    r
}
