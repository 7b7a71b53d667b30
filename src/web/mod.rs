//! The web surface: the lists and their subscribe forms, the confirm and
//! unsubscribe pages (a GET shows a button, only the POST acts, because link
//! scanners fetch every link), RFC 8058 one-click, the public archive with
//! its Atom feed and `/healthz` on the public listener; `/metrics` on a
//! listener of its own (`[metrics]`, loopback by default: its counts move
//! with what strangers do, so they are not public).
//!
//! Rooms: this file holds the routers, the state every handler shares and
//! the answers they have in common (every page's footer names who sends and
//! how to reach them); [`listener`] serves them (timeouts, connection cap);
//! [`pages`] the lists, the form, the token pages and the privacy page;
//! [`archive`] the archive, its attachments and its feed; [`dates`] dates
//! as readers write them; [`metrics`] the Prometheus text; [`templates`]
//! the compiled pages.
//!
//! Handlers read and act through `subscription`, `campaign` and `outbound`;
//! nothing here names the store.
//!
//! Every page is a Handlebars template under `templates/<lang>/web/`
//! (HTML-escaped), so the organisation can restyle them; no page needs
//! JavaScript. Tokens never reach a log line.

mod admin;
mod archive;
mod dates;
mod fill_time;
pub mod listener;
mod metrics;
mod pages;
mod templates;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::campaign::archive::Archive;
use crate::daemon::context::Context;
use crate::daemon::lists::{Language, List, Sender, Subscription};
use crate::subscription::TokenProblem;

pub use templates::Pages;

/// Request bodies here are small forms or RFC 8058 one-click bodies.
const MAX_BODY: usize = 16 * 1024;
/// Every page's Content-Security-Policy: no script anywhere.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data: https:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// A request that takes longer than this gets a 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

struct Web {
    ctx: Arc<Context>,
    pages: Pages,
    limits: pages::IpLimits,
    /// Sign-in requests per IP (the workspace's login form).
    login_limits: pages::IpLimits,
    /// The archived campaigns' renderings, kept.
    archive: Archive,
}

type Shared = Arc<Web>;

pub fn router(ctx: Arc<Context>) -> anyhow::Result<Router> {
    let pages = Pages::load(&ctx.config.templates_dir)?;
    let web = Arc::new(Web {
        ctx,
        pages,
        limits: pages::IpLimits::default(),
        login_limits: pages::IpLimits::default(),
        archive: Archive::new(),
    });
    let mut router = Router::new();
    if web.ctx.config.admin.enabled {
        router = router.merge(admin::router(web.clone()));
    }
    Ok(router
        .route("/", get(pages::index))
        .route("/style.css", get(style))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/privacy", get(pages::privacy))
        .route("/lists/{id}", get(pages::list_page))
        .route("/lists/{id}/form", get(pages::form_snippet))
        .route("/lists/{id}/subscribe", post(pages::subscribe))
        .route(
            "/confirm/{token}",
            get(pages::confirm_page).post(pages::confirm_post),
        )
        .route(
            "/unsubscribe/{token}",
            get(pages::unsubscribe_page).post(pages::unsubscribe_post),
        )
        .route("/archive/{id}", get(archive::archive))
        .route("/archive/{id}/feed.atom", get(archive::feed))
        .route("/archive/{id}/threads", get(archive::threads))
        .route("/archive/{id}/{campaign}", get(archive::archive_item))
        .route(
            "/archive/{id}/{campaign}/{index}/{filename}",
            get(archive::attachment),
        )
        .route("/files/{id}/{token}/{name}", get(archive::post_file))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(harden))
        .with_state(web))
}

/// The `[metrics]` listener's router: `/metrics` and nothing else.
pub fn metrics_router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(middleware::from_fn(harden))
        .with_state(ctx)
}

pub use listener::{serve, Limits};

/// Security headers on every response, and a time limit on every request.
async fn harden(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout\n").into_response(),
    };
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Token pages must not leak their URL to other sites; nothing here needs
    // a referrer, so every page gets the strict policy.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Only `/lists/{id}/form` itself: an archived attachment may be
    // called `form` too, and it keeps the policy.
    let snippet = path
        .strip_prefix("/lists/")
        .and_then(|rest| rest.strip_suffix("/form"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    // A page that brings its own policy keeps it (the workspace's preview
    // of a newsletter, whose HTML carries inline styles).
    if !snippet {
        // The embeddable snippet is the one thing meant to live on other
        // sites; everything else refuses to be framed.
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
        }
    }
    if path.starts_with("/confirm/")
        || path.starts_with("/unsubscribe/")
        || path.starts_with("/lists/")
        || path == "/admin"
        || path.starts_with("/admin/")
    {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

impl Web {
    /// Renders page `name`. Its footer names the list's sender, or the
    /// site's when the page has no list (or the data brings its own).
    fn page(&self, status: StatusCode, lang: Language, name: &str, mut data: Value) -> Response {
        if data["sender"].is_null() {
            data["sender"] = match &data["list"]["sender"] {
                Value::Null => json!(site_sender(&self.ctx)),
                sender => sender.clone(),
            };
        }
        match self.pages.render(lang, name, &data) {
            Ok(body) => html(status, body),
            Err(e) => {
                tracing::error!(page = name, error = %e, "page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
            }
        }
    }

    fn problem(&self, status: StatusCode, lang: Language, flag: &str) -> Response {
        let mut data = json!({"expires_days": self.ctx.config.limits.token_days});
        data[flag] = json!(true);
        self.page(status, lang, "problem", data)
    }

    fn token_problem(&self, problem: TokenProblem, lang: Language) -> Response {
        match problem {
            TokenProblem::Expired => self.problem(StatusCode::GONE, lang, "expired"),
            _ => self.problem(StatusCode::NOT_FOUND, lang, "unknown"),
        }
    }

    fn unavailable(&self, e: anyhow::Error) -> Response {
        // The detail goes to the log, never to the page.
        tracing::error!(error = %format!("{e:#}"), "web request failed");
        self.problem(StatusCode::SERVICE_UNAVAILABLE, Language::Sv, "unavailable")
    }

    fn list(&self, id: &str) -> Option<&List> {
        self.ctx.lists.get(id)
    }

    /// The form's data for `list`, with `values` already entered.
    fn form_data(&self, list: &List, values: &BTreeMap<String, String>, absolute: bool) -> Value {
        let action = if absolute {
            format!("{}/lists/{}/subscribe", self.ctx.config.base_url(), list.id)
        } else {
            format!("/lists/{}/subscribe", list.id)
        };
        let fields: Vec<Value> = list
            .attributes
            .iter()
            .map(|a| {
                json!({
                    "key": a,
                    "label": capitalise(a),
                    "value": values.get(a).cloned().unwrap_or_default(),
                })
            })
            .collect();
        json!({
            "list": list_json(list),
            "action": action,
            // The snippet lives on pages without our stylesheet: it hides
            // its honeypot with an inline style of its own.
            "snippet": absolute,
            "fields": fields,
            "values": values,
            "archive": list.public,
            "closed": list.subscription == Subscription::Closed,
            // A form shown again with an error keeps the first stamp: the
            // person's time runs from when they first saw it.
            "started": values
                .get("started")
                .filter(|v| fill_time::elapsed(&self.ctx.secret, &list.id, v, 0).is_some())
                .cloned()
                .unwrap_or_else(|| {
                    fill_time::stamp(&self.ctx.secret, &list.id, self.ctx.now().timestamp_millis())
                }),
        })
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c)
            .collect::<String>()
            .replace(['_', '-'], " "),
        None => String::new(),
    }
}

fn list_json(list: &List) -> Value {
    json!({"id": list.id, "name": list.name, "description": list.description, "sender": list.sender})
}

/// Who sends, for pages that belong to no list (the index, the privacy
/// page, a 404): the configuration's own `organisation`, `contact` and
/// `privacy_url`, each falling back to the first public list's (then any
/// list's), and the privacy page to this daemon's own.
fn site_sender(ctx: &Context) -> Sender {
    let config = &ctx.config;
    let first = ctx
        .lists
        .iter()
        .find(|l| l.public)
        .or_else(|| ctx.lists.iter().next())
        .map(|l| l.sender.clone())
        .unwrap_or_default();
    let pick = |own: &str, list: String| {
        if own.trim().is_empty() {
            list
        } else {
            own.trim().to_string()
        }
    };
    // Only a web address is linked (see `lists::is_web_url`).
    let privacy_url = if !crate::daemon::lists::is_web_url(config.privacy_url.trim()) {
        format!("{}/privacy", config.base_url())
    } else {
        config.privacy_url.trim().to_string()
    };
    Sender {
        organisation: pick(&config.organisation, first.organisation),
        contact: pick(&config.contact, first.contact),
        privacy_url,
    }
}

/// The language of the index: Swedish unless every public list is English.
fn site_language(ctx: &Context) -> Language {
    let mut public = ctx.lists.iter().filter(|l| l.public).peekable();
    if public.peek().is_some() && public.all(|l| l.language == Language::En) {
        Language::En
    } else {
        Language::Sv
    }
}

/// The language of list `list`; Swedish if there is no such list.
fn language_of(ctx: &Context, list: &str) -> Language {
    ctx.lists
        .get(list)
        .map(|l| l.language)
        .unwrap_or(Language::Sv)
}

async fn style(State(web): State<Shared>) -> Response {
    let mut r = web.pages.css.clone().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn not_found(State(web): State<Shared>) -> Response {
    web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found")
}
