//! The report (the monthly table, and the chart and figures to download
//! as SVG and CSV, from `people::report`) and the audit log.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{local_minute, owner_language_of, Owner};
use crate::admin::protocol::{Request, Response as Answer};
use crate::daemon::lists::Language;
use crate::people::report::{self, Month};
use crate::web::Shared;
use crate::workspace::{access, audit};

/// Audit entries shown on the log page.
const LOG_ROWS: usize = 500;

#[derive(Deserialize, Default)]
pub(super) struct Which {
    /// One of the owner's lists; absent: the first.
    #[serde(default)]
    list: String,
}

/// The months of the list the query names (one of the owner's), with the
/// list's id, name and language; or the page to answer with.
#[allow(clippy::result_large_err)]
async fn months(
    web: &Shared,
    owner: &Owner,
    which: &Which,
) -> Result<(Vec<Month>, String, String, Language), Response> {
    let lists = access::owned_lists(&web.ctx, &owner.email);
    let list = lists
        .iter()
        .find(|l| l.id == which.list)
        .or(lists.first())
        .copied();
    let Some(list) = list else {
        let lang = owner_language_of(web, &owner.email);
        return Err(web.admin_problem(StatusCode::NOT_FOUND, lang, "not_found"));
    };
    match web
        .run(
            owner,
            Request::Report {
                list: Some(list.id.clone()),
            },
        )
        .await
    {
        Ok(Answer::Report(m)) => Ok((m, list.id.clone(), list.name.clone(), list.language)),
        Ok(_) => Err(web.unavailable(anyhow::anyhow!("unexpected answer to report"))),
        Err(f) => Err(web.unavailable(anyhow::anyhow!(f.message))),
    }
}

/// Today in the leader's zone, for the chart's caption.
fn today(web: &Shared) -> chrono::NaiveDate {
    let local = crate::time::leader_time(web.ctx.now(), web.ctx.config.timezone);
    chrono::NaiveDate::parse_from_str(local.get(..10).unwrap_or(""), "%Y-%m-%d")
        .unwrap_or_else(|_| web.ctx.now().date_naive())
}

fn report_lang(lang: Language) -> report::Lang {
    match lang {
        Language::Sv => report::Lang::Sv,
        Language::En => report::Lang::En,
    }
}

/// `GET /admin/report?list=ID`: the monthly table and the chart.
pub(super) async fn report(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Query(which): Query<Which>,
) -> Response {
    let (months, id, name, lang) = match months(&web, &owner, &which).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let rows: Vec<Value> = months
        .iter()
        .rev()
        .map(|m| {
            json!({
                "month": format!("{}-{:02}", m.year, m.month),
                "confirmed": m.confirmed_at_end, "joins": m.joins, "leaves": m.leaves,
                "bounces": m.bounces, "campaigns": m.campaigns,
                "delivered": m.delivered, "failed": m.failed,
            })
        })
        .collect();
    let made = today(&web);
    let lists: Vec<Value> = access::owned_lists(&web.ctx, &owner.email)
        .iter()
        .map(|l| json!({"id": l.id, "name": l.name, "selected": l.id == id}))
        .collect();
    let data = json!({
        "list": {"id": id, "name": name},
        "lists": lists,
        "rows": rows,
        "caption": report::caption(&name, made, report_lang(lang)),
        "title": report::title(report_lang(lang)),
    });
    web.admin_page(StatusCode::OK, lang, "admin-report", Some(&owner), data)
}

fn download(body: String, content_type: &'static str, file: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /admin/report.svg?list=ID`: the chart (also the overview's image).
pub(super) async fn report_svg(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Query(which): Query<Which>,
) -> Response {
    let (months, id, name, lang) = match months(&web, &owner, &which).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let lang = report_lang(lang);
    let made = today(&web);
    let svg = report::svg(
        &months,
        report::title(lang),
        &report::caption(&name, made, lang),
        lang,
    );
    download(
        svg,
        "image/svg+xml; charset=utf-8",
        format!("rapport-{id}.svg"),
    )
}

/// `GET /admin/report.csv?list=ID`: the monthly figures.
pub(super) async fn report_csv(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    Query(which): Query<Which>,
) -> Response {
    let (months, id, _, _) = match months(&web, &owner, &which).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut csv =
        String::from("month,confirmed,joins,leaves,bounces,campaigns,delivered,failed\r\n");
    for m in &months {
        csv.push_str(&format!(
            "{}-{:02},{},{},{},{},{},{},{}\r\n",
            m.year,
            m.month,
            m.confirmed_at_end,
            m.joins,
            m.leaves,
            m.bounces,
            m.campaigns,
            m.delivered,
            m.failed
        ));
    }
    let mut r = download(csv, "text/csv; charset=utf-8", format!("rapport-{id}.csv"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"rapport-{id}.csv\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /admin/log`: the audit log, newest first: the changes on the
/// owner's lists, and those that name no list.
pub(super) async fn audit(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
) -> Response {
    let lang = owner_language_of(&web, &owner.email);
    let entries = match audit::latest(&web.ctx, LOG_ROWS) {
        Ok(e) => e,
        Err(e) => return web.unavailable(e),
    };
    let zone = web.ctx.config.timezone;
    let owned: Vec<&str> = access::owned_lists(&web.ctx, &owner.email)
        .iter()
        .map(|l| l.id.as_str())
        .collect();
    let who = owner.who();
    let rows: Vec<Value> = entries
        .iter()
        .filter(|e| audit::visible_to(e, &who, &owned))
        .map(|e| json!({"at": local_minute(&e.at.to_rfc3339(), zone), "who": e.who, "what": e.what, "detail": e.detail}))
        .collect();
    web.admin_page(
        StatusCode::OK,
        lang,
        "admin-log",
        Some(&owner),
        json!({"rows": rows}),
    )
}
