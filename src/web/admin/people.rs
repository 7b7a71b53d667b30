//! The overview, the subscribers (search, filter, pages, a person, add,
//! remove, forget, CSV export and import) and the approvals of a closed
//! list.

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{local_minute, owner_language_of, see_other, status_label, word, Owner};
use crate::admin::protocol::{Request, Response as Answer, SubscriberRow};
use crate::admin::SubscriberPages;
use crate::daemon::lists::Language;
use crate::daemon::lists::List;
use crate::people::{csvfile, ImportOptions};
use crate::time::Zone;
use crate::web::Shared;

/// Rows on one page of the subscriber search.
const PAGE_ROWS: usize = 50;
/// Joins and leaves shown on the overview.
const LATEST: usize = 5;
/// The statuses, as the filter offers them (the spec's words).
const STATUSES: [&str; 6] = [
    "pending",
    "awaiting_approval",
    "confirmed",
    "unsubscribed",
    "bounced",
    "disabled",
];

fn row_json(r: &SubscriberRow, zone: Zone, lang: Language) -> Value {
    json!({
        "label": status_label(lang, &word(&r.status)),
        "email_q": email_query(&r.email),
        "email": r.email,
        "name": r.name,
        "status": word(&r.status),
        "bounces": r.bounces,
        "subscribed_at": r.subscribed_at.as_deref().map(|t| local_minute(t, zone)),
        "unsubscribed_at": r.unsubscribed_at.as_deref().map(|t| local_minute(t, zone)),
        "attributes": r.attributes,
    })
}

/// `GET /admin`: each of the owner's lists with its counts, the growth
/// chart, the latest joins and leaves, and what waits for the leader.
pub(super) async fn overview(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
) -> Response {
    let lang = owner_language_of(&web, &owner.email);
    let rows = match web.run(&owner, Request::Lists).await {
        Ok(Answer::Lists(rows)) => rows,
        Ok(_) => return web.unavailable(anyhow::anyhow!("unexpected answer to lists")),
        Err(f) => return web.unavailable(anyhow::anyhow!(f.message)),
    };
    let campaigns = match web.run(&owner, Request::Campaigns).await {
        Ok(Answer::Campaigns(c)) => c,
        _ => Vec::new(),
    };
    let mut lists = Vec::new();
    for row in rows.iter().filter(|r| web.owned(&owner, &r.id).is_ok()) {
        let counts: Vec<Value> = row
            .counts
            .iter()
            .map(|(s, n)| json!({"status": word(s), "label": status_label(lang, &word(s)), "n": n}))
            .collect();
        let waiting = row
            .counts
            .iter()
            .find(|(s, _)| word(*s) == "awaiting_approval")
            .map(|(_, n)| *n)
            .unwrap_or(0);
        let held = campaigns
            .iter()
            .filter(|c| c.list == row.id && word(&c.status) == "draft")
            .count();
        // Replies to the last 30 days' campaigns: they went to the owners'
        // mailboxes, and wait there for an answer.
        let month_ago = (web.ctx.now() - chrono::Duration::days(30)).to_rfc3339();
        let replies: u64 = campaigns
            .iter()
            .filter(|c| c.list == row.id && c.scheduled_at >= month_ago)
            .map(|c| c.outcome.replies)
            .sum();
        let (joins, leaves) = match latest(&web, &row.id, lang) {
            Ok(j) => j,
            Err(e) => return web.unavailable(e),
        };
        let discussion = web
            .ctx
            .lists
            .get(&row.id)
            .is_some_and(|l| l.discussion.posting != crate::daemon::lists::Posting::Owners);
        lists.push(json!({
            "id": row.id, "name": row.name, "counts": counts, "discussion": discussion,
            "waiting": waiting, "held": held, "replies": replies,
            "joins": joins, "leaves": leaves,
        }));
    }
    web.admin_page(
        StatusCode::OK,
        lang,
        "admin-overview",
        Some(&owner),
        json!({"lists": lists}),
    )
}

/// The latest joins and leaves of `list` (`people::latest`: one pass that
/// reads only the dates), as the page shows them.
fn latest(web: &Shared, list: &str, lang: Language) -> anyhow::Result<(Vec<Value>, Vec<Value>)> {
    let zone = web.ctx.config.timezone;
    let (joins, leaves) = crate::people::latest(&web.ctx, list, LATEST)?;
    let show = |v: Vec<_>| -> Vec<Value> {
        v.iter()
            .map(|s| row_json(&SubscriberRow::from(s), zone, lang))
            .collect()
    };
    Ok((show(joins), show(leaves)))
}

#[derive(Deserialize, Default)]
pub(super) struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    /// An attribute's name and the value it must have.
    #[serde(default)]
    attr: String,
    #[serde(default)]
    value: String,
    /// The address the previous page ended with.
    #[serde(default)]
    after: String,
}

/// `GET /admin/lists/ID/subscribers`: search by address or name, filter by
/// status and attribute, a page of [`PAGE_ROWS`] at a time. The store is
/// read in address order from the cursor on, a page of records at a time,
/// and the reading stops as soon as the page is full.
pub(super) async fn subscribers(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Query(search): Query<Search>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let status = Some(search.status.as_str()).filter(|s| STATUSES.contains(s));
    let after = Some(search.after.trim().to_lowercase()).filter(|a| !a.is_empty());
    let pages = match SubscriberPages::new(&web.ctx, &list.id, status) {
        Ok(p) => p,
        Err(f) => return web.unavailable(anyhow::anyhow!(f.message)),
    };
    let q = search.q.trim().to_lowercase();
    let attr = search.attr.trim();
    let value = search.value.trim().to_lowercase();
    // The sieve: a record that matches holds the text searched for, and
    // the attribute's name and value, in its stored form.
    let sieve: Vec<&str> = [q.as_str(), attr, value.as_str()]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect();
    let mut pages = pages.after(after.clone()).holding(&sieve);
    let mut found = Vec::new();
    let mut next = None;
    'pages: loop {
        let page = match pages.next_page() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return web.unavailable(e),
        };
        for r in page {
            let hit = (q.is_empty()
                || r.email.to_lowercase().contains(&q)
                || r.name.to_lowercase().contains(&q))
                && (attr.is_empty()
                    || r.attributes
                        .get(attr)
                        .is_some_and(|v| value.is_empty() || v.to_lowercase() == value));
            if !hit {
                continue;
            }
            if found.len() == PAGE_ROWS {
                next = found
                    .last()
                    .and_then(|v: &Value| v["email"].as_str())
                    .map(str::to_lowercase);
                break 'pages;
            }
            found.push(row_json(&r, web.ctx.config.timezone, list.language));
        }
    }
    let statuses: Vec<Value> = STATUSES
        .iter()
        .map(|s| json!({"value": s, "label": status_label(list.language, s), "selected": Some(*s) == status}))
        .collect();
    let attributes: Vec<Value> = list
        .attributes
        .iter()
        .map(|a| json!({"value": a, "selected": a == attr}))
        .collect();
    let mut query = vec![
        ("q", search.q.clone()),
        ("status", search.status.clone()),
        ("attr", search.attr.clone()),
        ("value", search.value.clone()),
    ];
    let next_url = next.map(|n| {
        query.push(("after", n));
        format!(
            "/admin/lists/{}/subscribers?{}",
            list.id,
            serde_urlencoded::to_string(&query).unwrap_or_default()
        )
    });
    let data = json!({
        "list": list_json(list),
        "rows": found,
        "q": search.q, "value": search.value,
        "statuses": statuses, "attributes": attributes,
        "has_attributes": !list.attributes.is_empty(),
        "next": next_url,
        "first_page": after.is_none(),
    });
    web.admin_page(
        StatusCode::OK,
        list.language,
        "admin-subscribers",
        Some(&owner),
        data,
    )
}

/// `email=ADDRESS` for a link, URL-encoded (an address may hold `+`).
fn email_query(email: &str) -> String {
    serde_urlencoded::to_string([("email", email)]).unwrap_or_default()
}

fn list_json(list: &List) -> Value {
    json!({"id": list.id, "name": list.name, "attributes": list.attributes, "closed": list.subscription == crate::daemon::lists::Subscription::Closed})
}

/// RFC 4180: a field quoted when it holds a separator, a quote or a line
/// break; a leading `=`, `+`, `-` or `@` is prefixed with `'` so that a
/// spreadsheet does not run it as a formula.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /admin/lists/ID/subscribers.csv[?status=S]`: every subscriber, streamed a
/// page of records at a time (nothing holds the whole list), in the
/// columns `import` reads back.
pub(super) async fn export(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Query(search): Query<Search>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l.clone(),
        Err(r) => return r,
    };
    let status = Some(search.status.clone()).filter(|s| STATUSES.contains(&s.as_str()));
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(4);
    let ctx = web.ctx.clone();
    tokio::spawn(async move {
        let mut pages = match SubscriberPages::new(&ctx, &list.id, status.as_deref()) {
            Ok(p) => p,
            Err(_) => return,
        };
        let mut head = vec!["email", "name", "status", "subscribed_at"];
        head.extend(list.attributes.iter().map(String::as_str));
        let head = head.join(",") + "\r\n";
        if sender.send_data(Bytes::from(head)).await.is_err() {
            return;
        }
        loop {
            let page = match pages.next_page() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "CSV export failed");
                    return;
                }
            };
            let mut out = String::new();
            for r in &page {
                let mut cells = vec![
                    csv_cell(&r.email),
                    csv_cell(&r.name),
                    word(&r.status),
                    r.subscribed_at.clone().unwrap_or_default(),
                ];
                cells.extend(
                    list.attributes
                        .iter()
                        .map(|a| csv_cell(r.attributes.get(a).map(String::as_str).unwrap_or(""))),
                );
                out.push_str(&cells.join(","));
                out.push_str("\r\n");
            }
            if sender.send_data(Bytes::from(out)).await.is_err() {
                return;
            }
        }
    });
    let mut r = Body::new(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[derive(Deserialize, Default)]
pub(super) struct Who {
    #[serde(default)]
    email: String,
    /// `remove` or `forget`: the page asks first.
    #[serde(default)]
    confirm: String,
}

/// `GET /admin/lists/ID/person?email=`: what `person` shows, on the
/// owner's lists only; with `confirm=remove|forget`, the question before
/// the act.
pub(super) async fn person(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Query(who): Query<Who>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let person = match web
        .run(
            &owner,
            Request::Person {
                email: who.email.clone(),
            },
        )
        .await
    {
        Ok(Answer::Person(p)) => p,
        Ok(_) => return web.unavailable(anyhow::anyhow!("unexpected answer to person")),
        Err(f) => return web.unavailable(anyhow::anyhow!(f.message)),
    };
    let zone = web.ctx.config.timezone;
    let records: Vec<Value> = person
        .subscriptions
        .iter()
        .filter(|s| web.owned(&owner, &s.list).is_ok())
        .map(|s| {
            json!({
                "list": s.list, "email": s.email, "name": s.name,
                "status": word(&s.status),
                "label": status_label(list.language, &word(&s.status)),
                "attributes": s.attributes.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                "consent": s.consent,
                "created_at": local_minute(&s.created_at, zone),
                "subscribed_at": s.subscribed_at.as_deref().map(|t| local_minute(t, zone)),
                "unsubscribed_at": s.unsubscribed_at.as_deref().map(|t| local_minute(t, zone)),
                "bounces": s.bounces,
            })
        })
        .collect();
    let status = if records.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    let data = json!({
        "list": list_json(list),
        "email": who.email,
        "email_q": email_query(&who.email),
        "records": records,
        "found": status == StatusCode::OK,
        "confirm_remove": who.confirm == "remove",
        "confirm_forget": who.confirm == "forget",
    });
    web.admin_page(status, list.language, "admin-person", Some(&owner), data)
}

/// A form's fields, as posted.
type Fields = BTreeMap<String, String>;

fn field<'f>(form: &'f Fields, name: &str) -> &'f str {
    form.get(name).map(|v| v.trim()).unwrap_or("")
}

/// The page a change answers with: back where the owner was, with a line
/// that says what happened (or why not).
fn said(web: &Shared, owner: &Owner, list: &List, ok: bool, message: String) -> Response {
    let data = json!({"list": list_json(list), "message": message, "ok": ok, "done": true, "records": [], "found": false});
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    web.admin_page(status, list.language, "admin-person", Some(owner), data)
}

fn answer_text(a: &Answer) -> String {
    match a {
        Answer::Said(s) => s.clone(),
        Answer::Forgot(f) => format!("{}: {} records erased", f.email, f.erased),
        other => other.to_json().to_string(),
    }
}

/// Where a change's answer goes once it went through.
enum Then {
    /// The page says what happened.
    Say,
    /// Back to the list of requests waiting for approval.
    Approvals,
}

/// Runs `request` as `owner` and answers as `then` says; a refusal is
/// always said on the page, with the reason.
async fn change(
    web: &Shared,
    owner: &Owner,
    list: &List,
    request: Request,
    then: Then,
) -> Response {
    match (web.run(owner, request).await, then) {
        (Ok(a), Then::Say) => said(web, owner, list, true, answer_text(&a)),
        (Ok(_), Then::Approvals) => see_other(&format!("/admin/lists/{}/approvals", list.id)),
        (Err(f), _) => said(web, owner, list, false, f.message),
    }
}

/// `POST /admin/lists/ID/add` (email, name, attributes, consent): `add`.
pub(super) async fn add(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let attributes = list
        .attributes
        .iter()
        .filter_map(|a| {
            Some((a.clone(), field(&form, a).to_string())).filter(|(_, v)| !v.is_empty())
        })
        .collect();
    let request = Request::Add {
        list: list.id.clone(),
        email: field(&form, "email").to_string(),
        name: Some(field(&form, "name").to_string()).filter(|n| !n.is_empty()),
        attributes,
        consent: field(&form, "consent").to_string(),
    };
    change(&web, &owner, list, request, Then::Say).await
}

/// `POST /admin/lists/ID/remove` (email): `remove`, after the question.
pub(super) async fn remove(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let request = Request::Remove {
        list: list.id.clone(),
        email: field(&form, "email").to_string(),
    };
    change(&web, &owner, list, request, Then::Say).await
}

/// `POST /admin/lists/ID/forget` (email): `forget`, after the question.
/// It erases the person everywhere, so only an owner of every list the
/// person is on may do it here, and only for someone on one of them (the
/// CLI can always).
pub(super) async fn forget(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let email = field(&form, "email").to_string();
    let elsewhere = match web
        .run(
            &owner,
            Request::Person {
                email: email.clone(),
            },
        )
        .await
    {
        // Forget acts on the whole daemon: only for someone on one of
        // this owner's lists and on no other.
        Ok(Answer::Person(p)) => {
            p.subscriptions.is_empty()
                || p.subscriptions
                    .iter()
                    .any(|s| web.owned(&owner, &s.list).is_err())
        }
        _ => true,
    };
    if elsewhere {
        let message = match list.language {
            crate::daemon::lists::Language::Sv => "Personen finns inte på dina listor, eller också på listor du inte äger; be den som sköter utskick att glömma personen med `utskick forget`.",
            crate::daemon::lists::Language::En => "This person is not on your lists, or also on lists you do not own; ask the administrator to forget them with `utskick forget`.",
        };
        return said(&web, &owner, list, false, message.to_string());
    }
    change(&web, &owner, list, Request::Forget { email }, Then::Say).await
}

/// `POST /admin/lists/ID/import` (csv, consent or invite, step): first a
/// preview (the columns mapped to the list's attributes, the rows that
/// cannot be read, by line), nothing written; with `step=import`, `import`.
pub(super) async fn import(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let text = form.get("csv").cloned().unwrap_or_default();
    let consent = field(&form, "consent").to_string();
    let invite = field(&form, "invite") == "yes";
    let csv = match csvfile::read_file(text.as_bytes(), &[]) {
        Ok(f) => f,
        Err(e) => return said(&web, &owner, list, false, e),
    };
    let (attribute_columns, rows, errors) = (csv.columns, csv.rows, csv.errors);
    let mut columns: Vec<Value> = vec![
        json!({"name": "email", "known": true}),
        json!({"name": "name", "known": true}),
    ];
    columns.extend(
        attribute_columns
            .iter()
            .map(|k| json!({"name": k, "known": list.attributes.contains(k)})),
    );
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| json!({"line": e.line, "message": e.problem.to_string()}))
        .collect();
    if field(&form, "step") != "import" {
        let preview: Vec<Value> = rows
            .iter()
            .take(10)
            .map(|r| json!({"line": r.line, "email": r.email, "name": r.name}))
            .collect();
        let data = json!({
            "list": list_json(list), "csv": text, "consent": consent, "invite": invite,
            "rows": rows.len(), "preview": preview, "columns": columns, "errors": errors,
            "import_preview": true, "records": [], "found": false,
        });
        return web.admin_page(
            StatusCode::OK,
            list.language,
            "admin-person",
            Some(&owner),
            data,
        );
    }
    let options = ImportOptions {
        consent: Some(consent).filter(|c| !c.is_empty() && !invite),
        invite,
        allow_forgotten: false,
        source: "workspace".to_string(),
    };
    let request = Request::Import {
        list: list.id.clone(),
        columns: attribute_columns,
        rows,
        options,
    };
    match web.run(&owner, request).await {
        Ok(Answer::Imported(r)) => {
            let message = format!(
                "{} added, {} invited, {} unchanged, {} skipped, {} unreadable",
                r.added,
                r.invited,
                r.unchanged,
                r.skipped.len(),
                errors.len()
            );
            said(&web, &owner, list, true, message)
        }
        Ok(a) => said(&web, &owner, list, true, answer_text(&a)),
        Err(f) => said(&web, &owner, list, false, f.message),
    }
}

/// `GET /admin/lists/ID/approvals`: who waits for the owner's approval.
pub(super) async fn approvals(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let mut pages = match SubscriberPages::new(&web.ctx, &list.id, Some("awaiting_approval")) {
        Ok(p) => p,
        Err(f) => return web.unavailable(anyhow::anyhow!(f.message)),
    };
    let mut rows = Vec::new();
    loop {
        match pages.next_page() {
            Ok(Some(p)) => rows.extend(
                p.iter()
                    .map(|r| row_json(r, web.ctx.config.timezone, list.language)),
            ),
            Ok(None) => break,
            Err(e) => return web.unavailable(e),
        }
    }
    let data = json!({"list": list_json(list), "rows": rows});
    web.admin_page(
        StatusCode::OK,
        list.language,
        "admin-approvals",
        Some(&owner),
        data,
    )
}

/// `POST /admin/lists/ID/approve` (email): `add`, with the owner's
/// approval in the workspace as the consent record.
pub(super) async fn approve(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let email = field(&form, "email").to_string();
    let request = Request::Add {
        list: list.id.clone(),
        email,
        name: None,
        attributes: BTreeMap::new(),
        consent: format!(
            "asked to join; approved by {} in the workspace",
            owner.email
        ),
    };
    change(&web, &owner, list, request, Then::Approvals).await
}

/// `POST /admin/lists/ID/reject` (email): `remove`.
pub(super) async fn reject(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
    Form(form): Form<Fields>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let request = Request::Remove {
        list: list.id.clone(),
        email: field(&form, "email").to_string(),
    };
    change(&web, &owner, list, request, Then::Approvals).await
}

/// `GET /admin/lists/ID/threads`: a discussion list's posts as threads,
/// for its owners, public list or not (a closed list's only view of its
/// posts outside `utskick threads`).
pub(super) async fn threads(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Path(id): Path<String>,
) -> Response {
    let list = match web.owned(&owner, &id) {
        Ok(l) if l.discussion.posting != crate::daemon::lists::Posting::Owners => l,
        Ok(_) => {
            let lang = owner_language_of(&web, &owner.email);
            return web.admin_problem(StatusCode::NOT_FOUND, lang, "not_found");
        }
        Err(r) => return r,
    };
    let threads = match crate::web::archive::read_threads(&web, list).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    web.admin_page(
        StatusCode::OK,
        list.language,
        "admin-threads",
        Some(&owner),
        json!({
            "list": list_json(list),
            "threads": crate::web::archive::threads_json(&threads, list),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_cell_is_quoted_and_never_a_formula() {
        assert_eq!(csv_cell("a@b.se"), "a@b.se");
        assert_eq!(csv_cell("Berg, Anna"), "\"Berg, Anna\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
