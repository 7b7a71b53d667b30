//! The leader's workspace under `/admin`: sign-in by a mailed one-time
//! link, then the pages (overview, subscribers, campaigns, a new
//! newsletter, approvals, report, audit log), server-rendered like the
//! public ones and working without JavaScript.
//!
//! Rooms: this file holds the router and the guard every route passes
//! ([`guard`]: `allow_from`, the session, the CSRF field of every POST) and
//! what the pages share; [`login`] signing in and out; [`people`] the
//! subscribers, a person, approvals and the CSV export; [`campaigns`] the
//! campaigns and a new newsletter; [`log`] the report and the audit log.
//!
//! Every change goes through `admin::execute_as`, the code the CLI's
//! requests run, with the owner as who: the workspace and the CLI cannot
//! disagree, and each change is in the audit log once. Sessions and login
//! links are `workspace::access`'s; nothing here names the store.

mod campaigns;
mod log;
mod login;
mod multipart;
mod people;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::Shared;
use crate::admin::protocol::{Failure, Request as AdminRequest, Response as AdminResponse};
use crate::daemon::lists::{Language, List};
use crate::workspace::access;

/// The session cookie's name.
const COOKIE: &str = "utskick_session";
/// The largest form the workspace takes besides attachments: a
/// newsletter's Markdown or a CSV file pasted for import.
const MAX_FORM: usize = 2 * 1024 * 1024;

/// The largest body: a form and its attachments (`limits.max_attachment_bytes`).
fn max_body(web: &super::Web) -> usize {
    MAX_FORM.saturating_add(web.ctx.config.limits.max_attachment_bytes)
}

/// The signed-in owner, put in each request's extensions by [`guard`].
#[derive(Clone)]
pub(super) struct Owner {
    pub email: String,
    /// The session's CSRF token, for the forms on the page.
    pub csrf: String,
}

impl Owner {
    /// Who, in the audit log.
    pub(super) fn who(&self) -> String {
        format!("{} (workspace)", self.email)
    }
}

pub(super) fn router(web: Shared) -> Router<Shared> {
    let limit = max_body(&web);
    Router::new()
        .route("/admin", get(people::overview))
        .route("/admin/", get(people::overview))
        .route("/admin/login", get(login::form).post(login::ask))
        .route(
            "/admin/login/{token}",
            get(login::link_page).post(login::link_post),
        )
        .route("/admin/logout", post(login::logout))
        .route("/admin/lists/{id}/subscribers", get(people::subscribers))
        .route("/admin/lists/{id}/subscribers.csv", get(people::export))
        .route("/admin/lists/{id}/person", get(people::person))
        .route("/admin/lists/{id}/add", post(people::add))
        .route("/admin/lists/{id}/remove", post(people::remove))
        .route("/admin/lists/{id}/forget", post(people::forget))
        .route("/admin/lists/{id}/import", post(people::import))
        .route("/admin/lists/{id}/approvals", get(people::approvals))
        .route("/admin/lists/{id}/threads", get(people::threads))
        .route("/admin/lists/{id}/approve", post(people::approve))
        .route("/admin/lists/{id}/reject", post(people::reject))
        .route(
            "/admin/lists/{id}/campaigns",
            get(campaigns::new_form).post(campaigns::submit),
        )
        .route("/admin/campaigns", get(campaigns::campaigns))
        .route("/admin/campaigns/{cid}/steer", post(campaigns::steer))
        .route("/admin/report", get(log::report))
        .route("/admin/report.svg", get(log::report_svg))
        .route("/admin/report.csv", get(log::report_csv))
        .route("/admin/log", get(log::audit))
        .layer(middleware::from_fn_with_state(web, guard))
        .layer(DefaultBodyLimit::max(limit))
}

/// The session id the browser sent, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// A form's text fields and its files (name, file name, bytes), from an
/// urlencoded or a `multipart/form-data` body; None if it does not parse.
#[allow(clippy::type_complexity)]
fn form_of(
    headers: &HeaderMap,
    body: &[u8],
) -> Option<(Vec<(String, String)>, Vec<(String, String, Vec<u8>)>)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match multipart::boundary(content_type) {
        Some(b) => {
            let (mut fields, mut files) = (Vec::new(), Vec::new());
            for part in multipart::parse(body, &b)? {
                match part.filename {
                    Some(f) => files.push((part.name, f, part.data)),
                    None => fields.push((part.name, String::from_utf8(part.data).ok()?)),
                }
            }
            Some((fields, files))
        }
        None => Some((serde_urlencoded::from_bytes(body).ok()?, Vec::new())),
    }
}

/// One field of a form body.
fn form_field(headers: &HeaderMap, body: &[u8], name: &str) -> Option<String> {
    form_of(headers, body)?
        .0
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Every `/admin` route passes here. A client outside `allow_from` gets
/// 403; the sign-in pages are open to the rest; every other page needs a
/// session (a GET without one is sent to the sign-in page with a 303, a
/// POST refused with 403), and every POST a `csrf` field that matches the
/// session (compared in constant time), or it is refused with 403 before
/// any handler runs.
async fn guard(
    State(web): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let ctx = &web.ctx;
    if !ctx.config.admin.allows(peer.ip()) {
        return web.admin_problem(StatusCode::FORBIDDEN, Language::Sv, "forbidden");
    }
    let path = request.uri().path();
    if path == "/admin/login" || path.starts_with("/admin/login/") {
        return next.run(request).await;
    }
    let id = session_cookie(request.headers());
    let email = match id.as_deref().map(|id| access::session_owner(ctx, id)) {
        Some(Ok(Some(email))) => Some(email),
        Some(Err(e)) => return web.unavailable(e),
        _ => None,
    };
    let (Some(email), Some(id)) = (email, id) else {
        if request.method() == Method::GET || request.method() == Method::HEAD {
            return see_other("/admin/login");
        }
        return web.admin_problem(StatusCode::FORBIDDEN, Language::Sv, "forbidden");
    };
    let lang = owner_language_of(&web, &email);
    let mut request = request;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, max_body(&web)).await {
            Ok(b) => b,
            Err(_) => return web.admin_problem(StatusCode::PAYLOAD_TOO_LARGE, lang, "too_large"),
        };
        let given = form_field(&parts.headers, &bytes, "csrf").unwrap_or_default();
        if !access::csrf_ok(ctx, &id, &given) {
            tracing::info!(path = %parts.uri.path(), "workspace POST without a matching csrf field refused");
            return web.admin_problem(StatusCode::FORBIDDEN, lang, "forbidden");
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    let csrf = access::csrf_token(ctx, &id);
    request.extensions_mut().insert(Owner { email, csrf });
    next.run(request).await
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

impl super::Web {
    /// Renders workspace page `name` for `owner` in `lang`: the layout's
    /// navigation over the owner's lists, and the CSRF token for its forms.
    fn admin_page(
        &self,
        status: StatusCode,
        lang: Language,
        name: &str,
        owner: Option<&Owner>,
        mut data: Value,
    ) -> Response {
        if let Some(owner) = owner {
            let lists: Vec<Value> = access::owned_lists(&self.ctx, &owner.email)
                .into_iter()
                .map(|l| json!({"id": l.id, "name": l.name}))
                .collect();
            data["owner"] = json!({"email": owner.email, "lists": lists});
            data["csrf"] = json!(owner.csrf);
        }
        data["lang"] = json!(lang.code());
        match self.pages.render_in("admin-layout", lang, name, &data) {
            Ok(body) => super::html(status, body),
            Err(e) => {
                tracing::error!(page = name, error = %e, "workspace page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
            }
        }
    }

    fn admin_problem(&self, status: StatusCode, lang: Language, flag: &str) -> Response {
        let mut data = json!({});
        data[flag] = json!(true);
        self.admin_page(status, lang, "admin-problem", None, data)
    }

    /// List `id` if `owner` owns it; otherwise the 404 page (a list that
    /// exists but is someone else's is not shown to be there).
    // The Err is the page the handler answers with, made once a request.
    #[allow(clippy::result_large_err)]
    fn owned(&self, owner: &Owner, id: &str) -> Result<&List, Response> {
        match self.ctx.lists.get(id) {
            Some(l) if l.is_owner(&owner.email) => Ok(l),
            _ => Err(self.admin_problem(
                StatusCode::NOT_FOUND,
                owner_language_of(self, &owner.email),
                "not_found",
            )),
        }
    }

    /// Runs `request` as `owner`, through the CLI's own code.
    async fn run(&self, owner: &Owner, request: AdminRequest) -> Result<AdminResponse, Failure> {
        let response = crate::admin::execute_as(&self.ctx, &owner.who(), request).await;
        if response.is_ok() {
            // Whatever it queued may go now.
            self.ctx.mail_ready.notify_one();
            self.ctx.campaign_ready.notify_one();
        }
        response
    }
}

/// The workspace's language for `email`: that of the first list they own
/// (a workspace over several lists speaks the first one's language).
fn owner_language_of(web: &super::Web, email: &str) -> Language {
    access::owned_list(&web.ctx, email)
        .map(|l| l.language)
        .unwrap_or(Language::Sv)
}

/// A subscriber's or campaign's status as the page says it.
fn status_label(lang: Language, status: &str) -> &'static str {
    let (sv, en) = match status {
        "pending" => ("väntar på bekräftelse", "pending"),
        "awaiting_approval" => ("väntar på godkännande", "awaiting approval"),
        "confirmed" => ("bekräftad", "confirmed"),
        "unsubscribed" => ("avslutad", "unsubscribed"),
        "bounced" => ("studsar", "bounced"),
        "disabled" => ("avstängd", "disabled"),
        "draft" => ("utkast, väntar på svar", "draft, awaiting reply"),
        "scheduled" => ("schemalagt", "scheduled"),
        "sending" => ("skickas", "sending"),
        "paused" => ("pausat", "paused"),
        "done" => ("klart", "done"),
        "cancelled" => ("avbrutet", "cancelled"),
        _ => ("okänd", "unknown"),
    };
    match lang {
        Language::Sv => sv,
        Language::En => en,
    }
}

/// A value's name on the wire (`"confirmed"`, `"sending"`).
fn word(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

/// An RFC 3339 time as the leader reads it: in the configured zone, to
/// the minute.
fn local_minute(rfc3339: &str, zone: crate::time::Zone) -> String {
    crate::time::leader_time_of(rfc3339, zone)
}
