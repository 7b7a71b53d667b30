//! The web surface: the lists and their subscribe forms, the confirm and
//! unsubscribe pages (a GET shows a button, only the POST acts, because link
//! scanners fetch every link), RFC 8058 one-click, the public archive with
//! its Atom feed, `/healthz` and `/metrics`.
//!
//! Handlers call `commands` and `campaign`, never change the store directly.
//! Every page is a Handlebars template under `templates/<lang>/web/`
//! (HTML-escaped), so the organisation can restyle them; no page needs
//! JavaScript. Tokens never reach a log line.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use handlebars::Handlebars;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::address;
use crate::compose::mime::Prepared;
use crate::daemon::context::Context;
use crate::daemon::lists::{Language, List, Subscription};
use crate::store::Kind;
use crate::store::{CampaignStatus, PendingAction, Status};
use crate::subscription::{self, Confirmed, Left, TokenProblem};
use crate::token::Token;

/// Request bodies here are small forms or RFC 8058 one-click bodies.
const MAX_BODY: usize = 16 * 1024;
/// A request that takes longer than this gets a 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Subscribe form posts per IP address per hour; the per-address
/// confirmation cap in the store limits mail to any one address.
const FORM_POSTS_PER_IP_PER_HOUR: u32 = 20;
/// Newest entries in the Atom feed.
const FEED_ENTRIES: usize = 20;

const PAGES: &[&str] = &[
    "layout",
    "form",
    "index",
    "list",
    "check-inbox",
    "confirm",
    "done",
    "problem",
    "archive",
    "archive-item",
];

macro_rules! builtin_pages {
    ($($lang:literal / $name:literal),* $(,)?) => {
        &[$(($lang, $name, include_str!(concat!("../../templates/", $lang, "/web/", $name, ".html.hbs")))),*]
    };
}

const BUILTIN_PAGES: &[(&str, &str, &str)] = builtin_pages![
    "sv" / "layout",
    "sv" / "form",
    "sv" / "index",
    "sv" / "list",
    "sv" / "check-inbox",
    "sv" / "confirm",
    "sv" / "done",
    "sv" / "problem",
    "sv" / "archive",
    "sv" / "archive-item",
    "en" / "layout",
    "en" / "form",
    "en" / "index",
    "en" / "list",
    "en" / "check-inbox",
    "en" / "confirm",
    "en" / "done",
    "en" / "problem",
    "en" / "archive",
    "en" / "archive-item",
];
const BUILTIN_CSS: &str = include_str!("../../templates/style.css");

/// The compiled page templates (one registry per language, so each has
/// its own `form` partial) and the stylesheet.
pub struct Pages {
    registries: HashMap<&'static str, Handlebars<'static>>,
    css: String,
}

impl Pages {
    /// Compiles `templates_dir/<lang>/web/*.html.hbs`, falling back to the
    /// shipped copies; a syntax error stops the daemon with the file name.
    pub fn load(dir: &FsPath) -> anyhow::Result<Pages> {
        debug_assert_eq!(BUILTIN_PAGES.len(), PAGES.len() * 2);
        let mut registries: HashMap<&'static str, Handlebars<'static>> = HashMap::new();
        for (lang, name, builtin) in BUILTIN_PAGES {
            let registry = registries.entry(lang).or_default();
            let path = dir.join(lang).join("web").join(format!("{name}.html.hbs"));
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => builtin.to_string(),
                Err(e) => anyhow::bail!("{}: cannot read: {e}", path.display()),
            };
            if *name == "form" {
                registry
                    .register_partial("form", source.as_str())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            registry
                .register_template_string(name, source)
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e))?;
        }
        let css = std::fs::read_to_string(dir.join("style.css"))
            .unwrap_or_else(|_| BUILTIN_CSS.to_string());
        Ok(Pages { registries, css })
    }

    fn registry(&self, lang: Language) -> &Handlebars<'static> {
        &self.registries[lang.code()]
    }

    /// Renders page `name` into the layout; the page's first `<h1>` is the
    /// document title.
    fn render(&self, lang: Language, name: &str, data: &Value) -> anyhow::Result<String> {
        let registry = self.registry(lang);
        let content = registry.render(name, data)?;
        let title = content
            .split_once("<h1>")
            .and_then(|(_, rest)| rest.split_once("</h1>"))
            .map(|(t, _)| strip_tags(t))
            .unwrap_or_default();
        let mut layout = data.clone();
        layout["content"] = json!(content);
        layout["title"] = json!(title.trim());
        Ok(registry.render("layout", &layout)?)
    }
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Per-IP counters for the subscribe form, in memory: a restart forgets
/// them, which costs at most one more hour's worth of posts.
#[derive(Default)]
struct IpLimits {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl IpLimits {
    fn allow(&self, ip: IpAddr) -> bool {
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Keep the map small: forget windows that have run out.
        if map.len() > 10_000 {
            map.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(3600));
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(3600) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= FORM_POSTS_PER_IP_PER_HOUR
    }
}

struct Web {
    ctx: Arc<Context>,
    pages: Pages,
    limits: IpLimits,
}

type Shared = Arc<Web>;

pub fn router(ctx: Arc<Context>) -> anyhow::Result<Router> {
    let pages = Pages::load(&ctx.config.templates_dir)?;
    let web = Arc::new(Web {
        ctx,
        pages,
        limits: IpLimits::default(),
    });
    Ok(Router::new()
        .route("/", get(index))
        .route("/style.css", get(style))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/lists/{id}", get(list_page))
        .route("/lists/{id}/form", get(form_snippet))
        .route("/lists/{id}/subscribe", post(subscribe))
        .route("/confirm/{token}", get(confirm_page).post(confirm_post))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe_post),
        )
        .route("/archive/{id}", get(archive))
        .route("/archive/{id}/feed.atom", get(feed))
        .route("/archive/{id}/{campaign}", get(archive_item))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(harden))
        .with_state(web))
}

/// Serves `app` (from [`router`]) until `shutdown` turns true.
pub async fn serve(app: Router, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "web server failed");
    }
}

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
    if !path.ends_with("/form") {
        // The embeddable snippet is the one thing meant to live on other
        // sites; everything else refuses to be framed.
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self' data: https:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        );
    }
    if path.starts_with("/confirm/")
        || path.starts_with("/unsubscribe/")
        || path.starts_with("/lists/")
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
    fn page(&self, status: StatusCode, lang: Language, name: &str, data: Value) -> Response {
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

    fn unavailable(&self, e: impl Into<anyhow::Error>) -> Response {
        let e: anyhow::Error = e.into();
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
            "fields": fields,
            "values": values,
            "archive": list.public,
            "closed": list.subscription == Subscription::Closed,
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
    json!({"id": list.id, "name": list.name, "description": list.description})
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

async fn index(State(web): State<Shared>) -> Response {
    let lang = site_language(&web.ctx);
    let lists: Vec<Value> = web
        .ctx
        .lists
        .iter()
        .filter(|l| l.public)
        .map(|l| web.form_data(l, &BTreeMap::new(), false))
        .collect();
    web.page(StatusCode::OK, lang, "index", json!({"lists": lists}))
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

async fn list_page(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(list) = web.list(&id) else {
        return web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found");
    };
    let data = web.form_data(list, &BTreeMap::new(), false);
    web.page(StatusCode::OK, list.language, "list", data)
}

/// An HTML snippet to paste into another site: the form alone, posting to
/// this daemon by absolute URL. No script, no styles beyond the site's own.
async fn form_snippet(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(list) = web.list(&id) else {
        return (StatusCode::NOT_FOUND, "no such list\n").into_response();
    };
    let data = web.form_data(list, &BTreeMap::new(), true);
    match web.pages.registry(list.language).render("form", &data) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => web.unavailable(e),
    }
}

/// The subscribe form's POST. The answer is the same page whether or not
/// the address was already on the list (no enumeration); the honeypot and
/// the rate limits answer the same too, so a bot learns nothing.
async fn subscribe(
    State(web): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    form: Result<Form<BTreeMap<String, String>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(list) = web.list(&id) else {
        return web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found");
    };
    let lang = list.language;
    let form = match form {
        Ok(Form(form)) => form,
        // Too large stays 413; anything else the form did not survive is 400.
        Err(rejection) => {
            let status = match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            return web.problem(status, lang, "bad_request");
        }
    };
    let check_inbox = || {
        web.page(
            StatusCode::OK,
            lang,
            "check-inbox",
            json!({"list": list_json(list), "expires_days": web.ctx.config.limits.token_days}),
        )
    };
    if form.get("website").is_some_and(|v| !v.trim().is_empty()) {
        tracing::info!(list = %list.id, "subscribe form: honeypot filled, ignored");
        return check_inbox();
    }
    if !web.limits.allow(peer.ip()) {
        return web.problem(StatusCode::TOO_MANY_REQUESTS, lang, "too_many");
    }
    let email = form
        .get("email")
        .map(|e| e.trim().to_string())
        .unwrap_or_default();
    if !address::is_valid(&email) || email.contains(['\r', '\n']) {
        let mut values = form.clone();
        values.remove("website");
        let mut data = web.form_data(list, &values, false);
        data["error_email"] = json!(true);
        return web.page(StatusCode::UNPROCESSABLE_ENTITY, lang, "list", data);
    }
    let name =
        crate::mail::message::clip_name(form.get("name").map(String::as_str).unwrap_or_default());
    let attributes: BTreeMap<String, String> = list
        .attributes
        .iter()
        .filter_map(|a| {
            let v = crate::mail::message::clip_name(form.get(a)?);
            (!v.is_empty()).then(|| (a.clone(), v))
        })
        .collect();
    let request = crate::subscription::answer::Request {
        list,
        email: &email,
        name: &name,
        method: "web",
        evidence: format!("web form, IP {}", peer.ip()),
        in_reply_to: None,
        attributes,
    };
    if let Err(e) = subscription::subscribe(&web.ctx, &request) {
        return web.unavailable(e);
    }
    if let Err(e) = web.ctx.store.sync().await {
        return web.unavailable(e);
    }
    web.ctx.mail_ready.notify_one();
    check_inbox()
}

fn language_of(ctx: &Context, list: &str) -> Language {
    ctx.lists
        .get(list)
        .map(|l| l.language)
        .unwrap_or(Language::Sv)
}

async fn confirm_page(State(web): State<Shared>, Path(token): Path<String>) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    let pending = match subscription::check_token(&web.ctx, None, &parsed) {
        Ok(Ok(p)) => p,
        Ok(Err(problem)) => {
            let lang = match web.ctx.store.pending(parsed.id) {
                Ok(Some(p)) => language_of(&web.ctx, &p.list),
                _ => Language::Sv,
            };
            return web.token_problem(problem, lang);
        }
        Err(e) => return web.unavailable(e),
    };
    let Some(list) = web.list(&pending.list) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    let data = json!({
        "list": list_json(list),
        "email": pending.email,
        "is_subscribe": pending.action == PendingAction::Subscribe,
        "is_unsubscribe": pending.action == PendingAction::Unsubscribe,
        "is_approve": pending.action == PendingAction::Approve,
        "is_post": pending.action == PendingAction::Post,
    });
    web.page(StatusCode::OK, list.language, "confirm", data)
}

async fn confirm_post(
    State(web): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    let list_id = match web.ctx.store.pending(parsed.id) {
        Ok(Some(p)) => p.list,
        Ok(None) => return web.token_problem(TokenProblem::Unknown, Language::Sv),
        Err(e) => return web.unavailable(e),
    };
    let lang = language_of(&web.ctx, &list_id);
    let result = subscription::apply_token(
        &web.ctx,
        None,
        &parsed,
        "",
        "web",
        &format!("IP {}", peer.ip()),
    );
    let outcome = match result {
        Ok(Ok(o)) => o,
        Ok(Err(problem)) => return web.token_problem(problem, lang),
        Err(e) => return web.unavailable(e),
    };
    if let Err(e) = web.ctx.store.sync().await {
        return web.unavailable(e);
    }
    web.ctx.mail_ready.notify_one();
    web.ctx.campaign_ready.notify_one();
    let flag = match outcome {
        Confirmed::Subscribed => "subscribed",
        Confirmed::AwaitingApproval => "awaiting",
        Confirmed::Approved => "approved",
        Confirmed::Unsubscribed => "unsubscribed",
        Confirmed::Queued => "queued",
        Confirmed::AlreadyDone => "already",
    };
    let mut data = json!({"list": web.list(&list_id).map(list_json)});
    data[flag] = json!(true);
    web.page(StatusCode::OK, lang, "done", data)
}

/// The link in every newsletter's footer and `List-Unsubscribe`.
async fn unsubscribe_page(State(web): State<Shared>, Path(token): Path<String>) -> Response {
    let found = match Token::decode(&token) {
        Some(t) => subscription::token_subscriber(&web.ctx, None, &t),
        None => Ok(None),
    };
    let s = match found {
        Ok(Some(s)) => s,
        Ok(None) => return web.token_problem(TokenProblem::Unknown, Language::Sv),
        Err(e) => return web.unavailable(e),
    };
    let Some(list) = web.list(&s.list) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    if s.status == Status::Unsubscribed {
        return web.page(
            StatusCode::OK,
            list.language,
            "done",
            json!({"list": list_json(list), "already_gone": true}),
        );
    }
    let data = json!({"list": list_json(list), "email": s.email, "is_unsubscribe": true});
    web.page(StatusCode::OK, list.language, "confirm", data)
}

/// Leaves the list: the page's button, and RFC 8058 one-click POSTs from
/// mail providers (body `List-Unsubscribe=One-Click`), which get a 200.
/// Idempotent.
async fn unsubscribe_post(State(web): State<Shared>, Path(token): Path<String>) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    let left = match subscription::leave_by_token(&web.ctx, None, &parsed) {
        Ok(Some(left)) => left,
        Ok(None) => return web.token_problem(TokenProblem::Unknown, Language::Sv),
        Err(e) => return web.unavailable(e),
    };
    if let Err(e) = web.ctx.store.sync().await {
        return web.unavailable(e);
    }
    web.ctx.mail_ready.notify_one();
    let list = subscription::token_subscriber(&web.ctx, None, &parsed)
        .ok()
        .flatten()
        .and_then(|s| web.list(&s.list).cloned());
    let lang = list.as_ref().map(|l| l.language).unwrap_or(Language::Sv);
    let flag = match left {
        Left::Now => "unsubscribed",
        Left::Already => "already_gone",
    };
    let mut data = json!({"list": list.as_ref().map(list_json)});
    data[flag] = json!(true);
    web.page(StatusCode::OK, lang, "done", data)
}

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
    let reader = crate::compose::mime::Recipient {
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

async fn archive(State(web): State<Shared>, Path(id): Path<String>) -> Response {
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

async fn archive_item(
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
async fn feed(State(web): State<Shared>, Path(id): Path<String>) -> Response {
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

/// Prometheus text format, version 0.0.4.
async fn metrics(State(web): State<Shared>) -> Response {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let ctx = &web.ctx;
    let m = &ctx.metrics;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP utskick_subscribers Subscribers by list and status.\n# TYPE utskick_subscribers gauge");
    for list in ctx.lists.iter() {
        let counts = ctx.store.counts(&list.id).unwrap_or_default();
        for status in Status::ALL {
            let n = counts.get(&status).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "utskick_subscribers{{list=\"{}\",status=\"{}\"}} {n}",
                list.id,
                status.as_str()
            );
        }
    }
    for (name, help, v) in [
        (
            "utskick_messages_received_total",
            "Inbound messages accepted for a list address.",
            m.messages_received.load(Relaxed),
        ),
        (
            "utskick_messages_rejected_total",
            "Inbound messages or recipients refused.",
            m.messages_rejected.load(Relaxed),
        ),
        (
            "utskick_messages_ignored_total",
            "Inbound automated messages ignored.",
            m.automated_ignored.load(Relaxed),
        ),
        (
            "utskick_mails_sent_total",
            "Outgoing mails the relay accepted.",
            m.mails_sent.load(Relaxed),
        ),
        (
            "utskick_mails_failed_total",
            "Outgoing mails that failed for good.",
            m.mails_failed.load(Relaxed),
        ),
        (
            "utskick_mails_deferred_total",
            "Outgoing mails deferred for a retry.",
            m.mails_deferred.load(Relaxed),
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP utskick_queue_depth System mails waiting to be sent.\n# TYPE utskick_queue_depth gauge\nutskick_queue_depth {}",
        ctx.store.outbox_len()
    );
    let _ = writeln!(out, "# HELP utskick_campaign_recipients Campaign progress by state.\n# TYPE utskick_campaign_recipients gauge");
    for c in ctx.store.campaigns().unwrap_or_default() {
        if c.status.is_final()
            && c.finished_at
                .is_some_and(|t| ctx.now() - t > chrono::Duration::days(7))
        {
            continue;
        }
        let remaining = c.total.saturating_sub(c.sent + c.failed + c.skipped);
        for (state, n) in [
            ("sent", c.sent),
            ("failed", c.failed),
            ("skipped", c.skipped),
            ("remaining", remaining),
        ] {
            let _ = writeln!(
                out,
                "utskick_campaign_recipients{{campaign=\"{}\",list=\"{}\",status=\"{}\",state=\"{state}\"}} {n}",
                c.id,
                c.list,
                c.status.as_str()
            );
        }
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
