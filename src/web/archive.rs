//! The public archive of a list, its campaigns one page each with their
//! attachments to download, and its Atom feed (RFC 4287), for the
//! project's website. What is archived, each campaign's rendering (made
//! once and kept) and the attachments' bytes come from
//! [`crate::campaign::archive`].
//!
//! An archived newsletter's page has one `<h1>`, the subject: the
//! newsletter's own headings move one level down, and a first heading
//! that repeats the subject is left out.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::dates::long_date;
use super::{list_json, site_language, Shared};
use crate::daemon::lists::{List, Posting};
use crate::mail::html_text::html_to_text;

/// Newest entries in the Atom feed.
const FEED_ENTRIES: usize = 20;

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
            json!({"id": e.id, "subject": subject, "date": e.date.to_rfc3339(), "date_text": long_date(e.date, list.language)})
        })
        .collect();
    let data = json!({
        "list": list_json(list),
        "items": items,
        "feed": format!("/archive/{}/feed.atom", list.id),
        "feed_title": list.name,
        "threads": list.discussion.posting != Posting::Owners,
    });
    web.page(StatusCode::OK, list.language, "archive", data)
}

/// Threads as the thread pages show them: the public archive's and the
/// workspace's owners-only view.
pub(super) fn threads_json(threads: &[crate::campaign::threads::Thread], list: &List) -> Value {
    threads
        .iter()
        .map(|t| {
            json!({
                "subject": t.subject,
                "replies": t.posts.len().saturating_sub(1),
                "posts": t.posts.iter().map(|p| json!({
                    "subject": p.subject,
                    "author": p.author,
                    "date": p.date.to_rfc3339(),
                    "date_text": long_date(p.date, list.language),
                    "text": p.text,
                    "indent": p.depth.min(6),
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A list's threads, read off the async threads: reading and parsing the
/// posts is blocking work, and one slow page must hold up no other
/// request. Err: the page to answer with.
#[allow(clippy::result_large_err)]
pub(super) async fn read_threads(
    web: &Shared,
    list: &List,
) -> Result<Vec<crate::campaign::threads::Thread>, Response> {
    let (ctx, owned) = (web.ctx.clone(), list.clone());
    let read =
        tokio::task::spawn_blocking(move || crate::campaign::threads::threads(&ctx, &owned)).await;
    match read {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(web.unavailable(e)),
        Err(e) => Err(web.unavailable(anyhow::anyhow!("reading the threads failed: {e}"))),
    }
}

/// A public discussion list's posts as threads (issue 16).
pub(super) async fn threads(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(list) = web
        .list(&id)
        .filter(|l| l.public && l.discussion.posting != Posting::Owners)
    else {
        return web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found");
    };
    let threads = match read_threads(&web, list).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let data = json!({
        "list": list_json(list),
        "threads": threads_json(&threads, list),
        "post_address": crate::daemon::lists::list_address(list, "", None, &web.ctx.config.domain),
    });
    web.page(StatusCode::OK, list.language, "archive-threads", data)
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
    let attachments: Vec<Value> = e
        .attachments
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "filename": name,
                "href": format!("/archive/{}/{}/{i}/{}", list.id, e.id, path_segment(name)),
            })
        })
        .collect();
    let data = json!({
        "list": list_json(list),
        "subject": rendered.subject,
        "body": one_h1(&rendered.body, &rendered.subject),
        "title": e.title,
        "link": e.link,
        "attachments": attachments,
        "date": e.date.to_rfc3339(),
        "date_text": long_date(e.date, list.language),
        "feed": format!("/archive/{}/feed.atom", list.id),
        "feed_title": list.name,
    });
    web.page(StatusCode::OK, list.language, "archive-item", data)
}

/// Attachment `index` of an archived campaign, as a download:
/// `/archive/ID/CAMPAIGN/INDEX/FILENAME`. Served only while the campaign
/// itself is in the public archive; the file name must be the stored one.
pub(super) async fn attachment(
    State(web): State<Shared>,
    Path((id, campaign_id, index, filename)): Path<(String, String, String, String)>,
) -> Response {
    let not_found = || web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found");
    let Some(list) = web.list(&id).filter(|l| l.public) else {
        return not_found();
    };
    let (Ok(cid), Ok(index)) = (campaign_id.parse::<u64>(), index.parse::<usize>()) else {
        return not_found();
    };
    let file = match web.archive.attachment(&web.ctx, list, cid, index) {
        Ok(Some(f)) if f.filename == filename => f,
        Ok(_) => return not_found(),
        Err(e) => return web.unavailable(e),
    };
    let content_type = HeaderValue::from_str(&file.content_type)
        .ok()
        .filter(|_| plausible_mime(&file.content_type))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(&file.filename))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let mut r = file.data.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// A discussion post's attachment behind the link its copies carry
/// (`attachments = "link"`): `/files/LIST/TOKEN/NAME`. The token is the
/// capability (see `campaign::files`); the name is for the reader only.
/// Always a download of opaque bytes, never rendered here: the file is
/// whatever a member (or a stranger, on an `anyone` list) attached.
pub(super) async fn post_file(
    State(web): State<Shared>,
    Path((id, token, _name)): Path<(String, String, String)>,
) -> Response {
    let not_found = || web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found");
    let Some(list) = web.list(&id).cloned() else {
        return not_found();
    };
    let ctx = web.ctx.clone();
    let read =
        tokio::task::spawn_blocking(move || crate::campaign::files::file(&ctx, &list, &token))
            .await;
    let file = match read {
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) => return not_found(),
        Ok(Err(e)) => return web.unavailable(e),
        Err(e) => return web.unavailable(anyhow::anyhow!("reading the file failed: {e}")),
    };
    let disposition = HeaderValue::from_str(&content_disposition(&file.name))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let mut r = file.bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    r
}

/// `type/subtype` with token characters only (and parameters after `;`):
/// anything else is served as `application/octet-stream`.
fn plausible_mime(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    matches!(essence.split_once('/'), Some((t, s)) if token(t) && token(s))
        && value.is_ascii()
        && !value.chars().any(|c| c.is_ascii_control())
}

/// RFC 6266: an ASCII `filename` for old clients, and `filename*` in UTF-8
/// with every byte outside the unreserved set percent-encoded.
fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        path_segment(filename)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters: safe as
/// one path segment and as an RFC 8187 value.
fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The newsletter's body under a page whose `<h1>` is the subject: a first
/// heading that says the subject again is left out, and the headings move
/// so that the highest left becomes `<h2>` (their order kept, `h6` the
/// floor): the page has exactly one `<h1>` and no level is skipped.
fn one_h1(body: &str, subject: &str) -> String {
    let mut body = body.trim_start();
    if body.starts_with("<h1") {
        if let Some(end) = body.find("</h1>") {
            let inner = body[..end].split_once('>').map_or("", |(_, t)| t);
            if html_to_text(inner).trim() == subject.trim() {
                body = body[end + "</h1>".len()..].trim_start();
            }
        }
    }
    let tags = heading_tags(body);
    let Some(top) = tags.iter().map(|(_, level)| *level).min() else {
        return body.to_string();
    };
    let mut out = String::with_capacity(body.len());
    let mut last = 0;
    for (at, level) in tags {
        // `at` is the digit's index; the tag's name ends there.
        out.push_str(&body[last..at]);
        let moved = (i32::from(level) + 2 - i32::from(top)).clamp(2, 6);
        out.push_str(&moved.to_string());
        last = at + 1;
    }
    out.push_str(&body[last..]);
    out
}

/// Where the level digit of every `<hN` and `</hN` tag (N 1–6, followed by
/// `>` or white space) is, and N.
fn heading_tags(html: &str) -> Vec<(usize, u8)> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    for (i, _) in html.match_indices("<h").chain(html.match_indices("</h")) {
        let digit = i + if bytes[i + 1] == b'/' { 3 } else { 2 };
        let (Some(d), Some(next)) = (bytes.get(digit), bytes.get(digit + 1)) else {
            continue;
        };
        if (b'1'..=b'6').contains(d) && (*next == b'>' || next.is_ascii_whitespace()) {
            found.push((digit, d - b'0'));
        }
    }
    found.sort_unstable();
    found
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_the_only_h1() {
        let body = "<h1 style=\"x\">Decembernytt &amp; mer</h1>\n<p>Hej</p><h2>Del</h2><h1>Annat</h1><h6>Liten</h6><hr><header>";
        // The repeated subject goes; the highest left (h1) becomes h2.
        let out = one_h1(body, "Decembernytt & mer");
        assert_eq!(
            out,
            "<p>Hej</p><h3>Del</h3><h2>Annat</h2><h6>Liten</h6><hr><header>"
        );
        assert!(!one_h1(body, "Nej").contains("<h1"));
        // After the subject, the newsletter's h2s stay h2s: no level skipped.
        let out = one_h1("<h1>S</h1><p>x</p><h2 id=\"a\">A</h2><h3>B</h3>", "S");
        assert_eq!(out, "<p>x</p><h2 id=\"a\">A</h2><h3>B</h3>");
        // Only h3s: they move up to h2.
        assert_eq!(one_h1("<h3>A</h3>", "S"), "<h2>A</h2>");
        assert_eq!(one_h1("<p>x</p>", "S"), "<p>x</p>");
    }

    #[test]
    fn downloads_are_named_safely() {
        assert_eq!(
            path_segment("Handbok 2026 å.pdf"),
            "Handbok%202026%20%C3%A5.pdf"
        );
        assert_eq!(
            content_disposition("Räkning \"x\".pdf"),
            "attachment; filename=\"R_kning__x_.pdf\"; filename*=UTF-8''R%C3%A4kning%20%22x%22.pdf"
        );
        assert!(plausible_mime("application/pdf"));
        assert!(plausible_mime("text/plain; charset=utf-8"));
        assert!(!plausible_mime("text/html\r\nX: y"));
        assert!(!plausible_mime("pdf"));
    }
}
