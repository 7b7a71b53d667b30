//! The public archive of a list, its campaigns one page each, and its Atom
//! feed (RFC 4287), for the project's website. What is archived, and each
//! campaign's rendering (made once and kept), come from
//! [`crate::campaign::archive`].

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{list_json, site_language, Shared};

/// Newest entries in the Atom feed.
const FEED_ENTRIES: usize = 20;

fn date_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

pub(super) async fn archive(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(list) = web.list(&id).filter(|l| l.public) else {
        return web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found");
    };
    let entries = match web.archive.entries(&web.ctx, list) {
        Ok(e) => e,
        Err(e) => return web.unavailable(e),
    };
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let subject = web
                .archive
                .rendered(&web.ctx, list, e)
                .map(|r| r.subject.clone())
                .unwrap_or_else(|_| e.subject.clone());
            json!({"id": e.id, "subject": subject, "date": e.date.to_rfc3339(), "date_text": date_text(e.date)})
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
    let e = match web.archive.entry(&web.ctx, list, cid) {
        Ok(Some(e)) => e,
        Ok(None) => return web.problem(StatusCode::NOT_FOUND, list.language, "not_found"),
        Err(e) => return web.unavailable(e),
    };
    let rendered = match web.archive.rendered(&web.ctx, list, &e) {
        Ok(r) => r,
        Err(e) => return web.unavailable(e),
    };
    let data = json!({
        "list": list_json(list),
        "subject": rendered.subject,
        "body": rendered.body,
        "title": e.title,
        "link": e.link,
        "attachments": e.attachments,
        "date": e.date.to_rfc3339(),
        "date_text": date_text(e.date),
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
    let entries = match web.archive.entries(&web.ctx, list) {
        Ok(e) => e,
        Err(e) => return web.unavailable(e),
    };
    let base = web.ctx.config.base_url();
    let updated = entries
        .first()
        .map(|e| e.date)
        .unwrap_or_else(|| web.ctx.now());
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{lang}\">\n<title>{title}</title>\n<subtitle>{subtitle}</subtitle>\n<id>{base}/archive/{id}</id>\n<link rel=\"self\" href=\"{base}/archive/{id}/feed.atom\"/>\n<link rel=\"alternate\" href=\"{base}/archive/{id}\"/>\n<updated>{updated}</updated>\n",
        lang = list.language.code(),
        title = xml_escape(&list.name),
        subtitle = xml_escape(&list.description),
        id = list.id,
        updated = updated.to_rfc3339(),
    );
    for e in entries.iter().take(FEED_ENTRIES) {
        let Ok(rendered) = web.archive.rendered(&web.ctx, list, e) else {
            continue;
        };
        let when = e.date.to_rfc3339();
        xml.push_str(&format!(
            "<entry>\n<title>{subject}</title>\n<id>{base}/archive/{id}/{cid}</id>\n<link rel=\"alternate\" href=\"{base}/archive/{id}/{cid}\"/>\n<published>{when}</published>\n<updated>{when}</updated>\n<author><name>{author}</name></author>\n<content type=\"html\">{body}</content>\n</entry>\n",
            subject = xml_escape(&rendered.subject),
            id = list.id,
            cid = e.id,
            author = xml_escape(&list.name),
            body = xml_escape(&rendered.body),
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
