//! Signing in without a password: the address form, the mailed one-time
//! link (a GET shows a button, only its POST starts a session: link
//! scanners fetch every link), and signing out.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::json;

use super::{see_other, session_cookie, Owner, COOKIE};
use crate::web::{site_language, Shared};
use crate::workspace::{access, audit};

/// Sign-in requests one client address may make per hour (the per-address
/// budget is `access::LINKS_PER_ADDRESS_PER_HOUR`).
const LOGIN_POSTS_PER_IP_PER_HOUR: u32 = 10;

#[derive(serde::Deserialize)]
pub(super) struct Ask {
    #[serde(default)]
    email: String,
}

pub(super) async fn form(State(web): State<Shared>) -> Response {
    let lang = site_language(&web.ctx);
    web.admin_page(StatusCode::OK, lang, "admin-login", None, json!({}))
}

/// `POST /admin/login`: the same page, by the same way through the store,
/// whether or not the address is an owner's (`access::request_link`).
pub(super) async fn ask(
    State(web): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<Ask>, axum::extract::rejection::FormRejection>,
) -> Response {
    let lang = site_language(&web.ctx);
    if !web
        .login_limits
        .allow_up_to(peer.ip(), LOGIN_POSTS_PER_IP_PER_HOUR)
    {
        return web.admin_problem(StatusCode::TOO_MANY_REQUESTS, lang, "too_many");
    }
    let email = form.map(|Form(f)| f.email).unwrap_or_default();
    if let Err(e) = access::request_link(&web.ctx, &email) {
        return web.unavailable(e);
    }
    if let Err(e) = web.ctx.store.sync().await {
        return web.unavailable(e.into());
    }
    web.ctx.mail_ready.notify_one();
    let data = json!({"minutes": access::LINK_MINUTES});
    web.admin_page(StatusCode::OK, lang, "admin-sent", None, data)
}

/// The mailed link: a button, if the link is still good; it changes nothing.
pub(super) async fn link_page(State(web): State<Shared>, Path(token): Path<String>) -> Response {
    let lang = site_language(&web.ctx);
    match access::link_owner(&web.ctx, &token) {
        Ok(Some(email)) => web.admin_page(
            StatusCode::OK,
            lang,
            "admin-link",
            None,
            json!({"email": email}),
        ),
        Ok(None) => web.admin_problem(StatusCode::GONE, lang, "link_gone"),
        Err(e) => web.unavailable(e),
    }
}

/// The link's button: uses the link (once) and starts a session, then 303
/// to the overview. The cookie is HttpOnly, SameSite=Strict, for `/admin`
/// only, and Secure when `base_url` is https.
pub(super) async fn link_post(State(web): State<Shared>, Path(token): Path<String>) -> Response {
    let lang = site_language(&web.ctx);
    let session = match access::use_link(&web.ctx, &token) {
        Ok(Some(s)) => s,
        Ok(None) => return web.admin_problem(StatusCode::GONE, lang, "link_gone"),
        Err(e) => return web.unavailable(e),
    };
    let who = format!("{} (workspace)", session.email);
    if let Err(e) = audit::record(&web.ctx, &who, "sign-in", "by a mailed link") {
        return web.unavailable(e);
    }
    if let Err(e) = web.ctx.store.sync().await {
        return web.unavailable(e.into());
    }
    tracing::info!("workspace session started");
    let secure = if web.ctx.config.base_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/admin{secure}",
        session.id
    );
    let mut r = see_other("/admin");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /admin/logout`: the session ends on the server (its cookie is
/// worth nothing from now on) and the browser is told to drop it.
pub(super) async fn logout(
    State(web): State<Shared>,
    Extension(owner): Extension<Owner>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = session_cookie(&headers) {
        if let Err(e) = access::end_session(&web.ctx, &id) {
            return web.unavailable(e);
        }
        if let Err(e) = audit::record(&web.ctx, &owner.who(), "sign-out", "") {
            return web.unavailable(e);
        }
        if let Err(e) = web.ctx.store.sync().await {
            return web.unavailable(e.into());
        }
    }
    let mut r = see_other("/admin/login");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "utskick_session=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0",
        ),
    );
    r
}
