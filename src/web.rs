//! The web surface, as far as the subscription loop needs it: the
//! confirmation link of every confirmation mail (a GET shows a button, only
//! the POST acts, because link scanners fetch every link) and `/healthz`.
//!
//! Handlers call `commands`, never the store directly. Every value from a
//! user is HTML-escaped; token pages send `Referrer-Policy: no-referrer`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::commands::{self, Confirmed, TokenProblem};
use crate::context::Context;
use crate::lists::Language;
use crate::store::PendingAction;
use crate::token::Token;

/// Request bodies on these routes are empty or tiny (RFC 8058 one-click).
const MAX_BODY: usize = 16 * 1024;

pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/confirm/{token}", get(confirm_page).post(confirm_post))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe_post),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(ctx)
}

pub async fn serve(ctx: Arc<Context>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let app = router(ctx).into_make_service_with_connect_info::<SocketAddr>();
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

fn escape(s: &str) -> String {
    handlebars::html_escape(s)
}

/// A small complete page; `body` is already escaped HTML.
fn page(status: StatusCode, lang: Language, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title></head>\
<body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a\">\
<h1 style=\"font-size:1.5rem\">{title}</h1>{body}</body></html>\n",
        lang = lang.code(),
        title = escape(title),
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn problem_page(problem: TokenProblem, lang: Language) -> Response {
    let (title, text) = match (lang, problem) {
        (Language::Sv, TokenProblem::Expired) => (
            "Länken har gått ut",
            "Bekräftelselänken gäller i sju dagar och den här har gått ut. Börja om genom att anmäla dig igen.",
        ),
        (Language::Sv, _) => (
            "Okänd länk",
            "Vi känner inte igen den här länken. Den kan vara felkopierad eller redan använd. Börja om genom att anmäla dig igen.",
        ),
        (Language::En, TokenProblem::Expired) => (
            "This link has expired",
            "Confirmation links are valid for seven days, and this one has expired. Please start over by signing up again.",
        ),
        (Language::En, _) => (
            "Unknown link",
            "We do not recognise this link. It may be mistyped or already used. Please start over by signing up again.",
        ),
    };
    page(
        StatusCode::NOT_FOUND,
        lang,
        title,
        &format!("<p>{}</p>", escape(text)),
    )
}

async fn confirm_page(State(ctx): State<Arc<Context>>, Path(token): Path<String>) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return problem_page(TokenProblem::Unknown, Language::Sv);
    };
    let pending = match commands::check_token(&ctx, None, &parsed) {
        Ok(Ok(p)) => p,
        Ok(Err(problem)) => return problem_page(problem, Language::Sv),
        Err(e) => return internal(e),
    };
    let Some(list) = ctx.lists.get(&pending.list) else {
        return problem_page(TokenProblem::Unknown, Language::Sv);
    };
    let lang = list.language;
    let (title, text, button) = match (lang, pending.action) {
        (Language::Sv, PendingAction::Unsubscribe) => (
            "Avsluta prenumerationen",
            "Tryck på knappen för att sluta få utskick från",
            "Avsluta",
        ),
        (Language::Sv, PendingAction::Post) => (
            "Godkänn utskicket",
            "Tryck på knappen för att skicka utskicket till",
            "Skicka",
        ),
        (Language::En, PendingAction::Post) => (
            "Approve the mailing",
            "Press the button to send the mailing to",
            "Send",
        ),
        (Language::Sv, PendingAction::Approve) => (
            "Godkänn medlem",
            "Tryck på knappen för att godkänna medlemmen i",
            "Godkänn",
        ),
        (Language::Sv, PendingAction::Subscribe) => (
            "Bekräfta prenumerationen",
            "Tryck på knappen för att bekräfta att du vill få utskick från",
            "Bekräfta",
        ),
        (Language::En, PendingAction::Unsubscribe) => (
            "Unsubscribe",
            "Press the button to stop receiving mail from",
            "Unsubscribe",
        ),
        (Language::En, PendingAction::Approve) => (
            "Approve member",
            "Press the button to approve the member of",
            "Approve",
        ),
        (Language::En, PendingAction::Subscribe) => (
            "Confirm your subscription",
            "Press the button to confirm that you want mail from",
            "Confirm",
        ),
    };
    let body = format!(
        "<p>{text} <strong>{name}</strong> ({email}).</p>\
<form method=\"post\"><button type=\"submit\" style=\"font-size:1.1rem;padding:.6rem 1.4rem;background:#1d5e3a;color:#fff;border:0;border-radius:6px;cursor:pointer\">{button}</button></form>",
        text = escape(text),
        name = escape(&list.name),
        email = escape(&pending.email),
        button = escape(button),
    );
    page(StatusCode::OK, lang, title, &body)
}

async fn confirm_post(
    State(ctx): State<Arc<Context>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return problem_page(TokenProblem::Unknown, Language::Sv);
    };
    let lang = ctx
        .store
        .pending(parsed.id)
        .ok()
        .flatten()
        .and_then(|p| ctx.lists.get(&p.list).map(|l| l.language))
        .unwrap_or(Language::Sv);
    let result =
        commands::apply_token(&ctx, None, &parsed, "", "web", &format!("IP {}", peer.ip()));
    let outcome = match result {
        Ok(Ok(o)) => o,
        Ok(Err(problem)) => return problem_page(problem, lang),
        Err(e) => return internal(e),
    };
    if let Err(e) = ctx.store.sync().await {
        return internal(e);
    }
    ctx.mail_ready.notify_one();
    let (title, text) = match (lang, outcome) {
        (Language::Sv, Confirmed::Subscribed) => (
            "Välkommen!",
            "Din prenumeration är bekräftad. Ett välkomstmejl är på väg.",
        ),
        (Language::Sv, Confirmed::AwaitingApproval) => (
            "Tack!",
            "Du har bekräftat. Listan är sluten, så en ansvarig godkänner dig snart.",
        ),
        (Language::Sv, Confirmed::Approved) => {
            ("Godkänd", "Medlemmen är godkänd och får ett välkomstmejl.")
        }
        (Language::Sv, Confirmed::Unsubscribed) => (
            "Du har avslutat",
            "Du får inga fler utskick. Ett kort bekräftelsemejl är på väg.",
        ),
        (Language::Sv, Confirmed::Queued) => (
            "Utskicket är köat",
            "Utskicket går nu ut till prenumeranterna.",
        ),
        (Language::En, Confirmed::Queued) => (
            "The mailing is queued",
            "The mailing now goes out to the subscribers.",
        ),
        (Language::Sv, Confirmed::AlreadyDone) => (
            "Redan klart",
            "Det här var redan gjort. Du behöver inte göra något mer.",
        ),
        (Language::En, Confirmed::Subscribed) => (
            "Welcome!",
            "Your subscription is confirmed. A welcome mail is on its way.",
        ),
        (Language::En, Confirmed::AwaitingApproval) => (
            "Thank you!",
            "You have confirmed. This list is closed, so an owner will approve you soon.",
        ),
        (Language::En, Confirmed::Approved) => (
            "Approved",
            "The member is approved and gets a welcome mail.",
        ),
        (Language::En, Confirmed::Unsubscribed) => (
            "You have left",
            "You will get no more mail. A short confirmation is on its way.",
        ),
        (Language::En, Confirmed::AlreadyDone) => (
            "Already done",
            "This was already done. Nothing more is needed.",
        ),
    };
    page(
        StatusCode::OK,
        lang,
        title,
        &format!("<p>{}</p>", escape(text)),
    )
}

/// The link in every newsletter's footer and `List-Unsubscribe`: a page
/// with one button (a GET must not act: scanners fetch links).
async fn unsubscribe_page(State(ctx): State<Arc<Context>>, Path(token): Path<String>) -> Response {
    let found = match Token::decode(&token) {
        Some(t) => commands::token_subscriber(&ctx, None, &t),
        None => Ok(None),
    };
    let s = match found {
        Ok(Some(s)) => s,
        Ok(None) => return problem_page(TokenProblem::Unknown, Language::Sv),
        Err(e) => return internal(e),
    };
    let Some(list) = ctx.lists.get(&s.list) else {
        return problem_page(TokenProblem::Unknown, Language::Sv);
    };
    let (title, text, button) = match list.language {
        Language::Sv => (
            "Avsluta prenumerationen",
            "Tryck på knappen för att sluta få utskick från",
            "Avsluta",
        ),
        Language::En => (
            "Unsubscribe",
            "Press the button to stop receiving mail from",
            "Unsubscribe",
        ),
    };
    let body = format!(
        "<p>{text} <strong>{name}</strong> ({email}).</p>\
<form method=\"post\"><button type=\"submit\" style=\"font-size:1.1rem;padding:.6rem 1.4rem;background:#1d5e3a;color:#fff;border:0;border-radius:6px;cursor:pointer\">{button}</button></form>",
        text = escape(text),
        name = escape(&list.name),
        email = escape(&s.email),
        button = escape(button),
    );
    page(StatusCode::OK, list.language, title, &body)
}

/// Leaves the list: the page's button, and RFC 8058 one-click POSTs from
/// mail providers (body `List-Unsubscribe=One-Click`), which need a 200.
async fn unsubscribe_post(State(ctx): State<Arc<Context>>, Path(token): Path<String>) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return problem_page(TokenProblem::Unknown, Language::Sv);
    };
    let left = match commands::leave_by_token(&ctx, None, &parsed) {
        Ok(Some(left)) => left,
        Ok(None) => return problem_page(TokenProblem::Unknown, Language::Sv),
        Err(e) => return internal(e),
    };
    if let Err(e) = ctx.store.sync().await {
        return internal(e);
    }
    ctx.mail_ready.notify_one();
    let lang = commands::token_subscriber(&ctx, None, &parsed)
        .ok()
        .flatten()
        .and_then(|s| ctx.lists.get(&s.list).map(|l| l.language))
        .unwrap_or(Language::Sv);
    let (title, text) = match (lang, left) {
        (Language::Sv, commands::Left::Now) => (
            "Du har avslutat",
            "Du får inga fler utskick. Ett kort bekräftelsemejl är på väg.",
        ),
        (Language::Sv, commands::Left::Already) => {
            ("Redan avslutad", "Den här adressen får redan inga utskick.")
        }
        (Language::En, commands::Left::Now) => (
            "You have left",
            "You will get no more mail. A short confirmation is on its way.",
        ),
        (Language::En, commands::Left::Already) => (
            "Already unsubscribed",
            "This address already gets no mail from the list.",
        ),
    };
    page(
        StatusCode::OK,
        lang,
        title,
        &format!("<p>{}</p>", escape(text)),
    )
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %e, "web request failed");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        Language::Sv,
        "Tillfälligt fel",
        "<p>Något gick fel hos oss. Försök igen om en stund.</p><p lang=\"en\">Something went wrong on our side. Please try again shortly.</p>",
    )
}
