//! The lists, the subscribe form and its POST, the token pages: confirm
//! (`/confirm/TOKEN`) and leave (`/unsubscribe/TOKEN`, also RFC 8058's
//! one-click), and the privacy page (`/privacy`). A GET only shows; the
//! POST acts.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{fill_time, html, language_of, list_json, site_language, site_sender, Shared};
use crate::address;
use crate::daemon::lists::{Language, Subscription};
use crate::subscription::view::{self, Asks};
use crate::subscription::{self, Confirmed, Left, TokenProblem};
use crate::token::Token;

/// The reason a filled honeypot is recorded with (`utskick ignored`).
const HONEYPOT_FILLED: &str = "web form: honeypot filled";

/// Subscribe form posts per IP address per hour; the per-address
/// confirmation cap in the store limits mail to any one address.
const FORM_POSTS_PER_IP_PER_HOUR: u32 = 20;
/// The window [`FORM_POSTS_PER_IP_PER_HOUR`] counts in.
const FORM_WINDOW: Duration = Duration::from_secs(3600);
/// Addresses counted before those whose window has run out are forgotten.
const TRACKED_IPS: usize = 10_000;

/// Per-IP counters for the subscribe form, in memory: a restart forgets
/// them, which costs at most one more hour's worth of posts.
#[derive(Default)]
pub(super) struct IpLimits {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl IpLimits {
    fn allow(&self, ip: IpAddr) -> bool {
        self.allow_up_to(ip, FORM_POSTS_PER_IP_PER_HOUR)
    }

    /// Counts one request from `ip`; false past `limit` in the window.
    pub(super) fn allow_up_to(&self, ip: IpAddr, limit: u32) -> bool {
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Keep the map small: forget windows that have run out.
        if map.len() > TRACKED_IPS {
            map.retain(|_, (start, _)| now.duration_since(*start) < FORM_WINDOW);
        }
        let entry = map.entry(client_key(ip)).or_insert((now, 0));
        if now.duration_since(entry.0) >= FORM_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }
}

/// Whom the per-IP limit counts: an IPv4 address, or an IPv6 address's
/// /64 (one subscriber line gets a whole /64, so counting single IPv6
/// addresses would give one client 2^64 allowances, and as many entries
/// in the map).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

pub(super) async fn index(State(web): State<Shared>) -> Response {
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

pub(super) async fn list_page(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(list) = web.list(&id) else {
        return web.problem(StatusCode::NOT_FOUND, site_language(&web.ctx), "not_found");
    };
    let data = web.form_data(list, &BTreeMap::new(), false);
    web.page(StatusCode::OK, list.language, "list", data)
}

/// What is stored, why, for how long, and whom to ask: the page every
/// footer and the list page link to (a list's `privacy_url` may point
/// elsewhere instead).
pub(super) async fn privacy(State(web): State<Shared>) -> Response {
    let limits = &web.ctx.config.limits;
    let data = json!({
        "sender": site_sender(&web.ctx),
        "token_days": limits.token_days,
        "unconfirmed_days": limits.unconfirmed_days,
    });
    web.page(StatusCode::OK, site_language(&web.ctx), "privacy", data)
}

/// An HTML snippet to paste into another site: the form alone, posting to
/// this daemon by absolute URL. No script and no stylesheet: the honeypot
/// hides itself with an inline style, since the host page knows nothing of
/// our classes.
pub(super) async fn form_snippet(State(web): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(list) = web.list(&id) else {
        return (StatusCode::NOT_FOUND, "no such list\n").into_response();
    };
    let data = web.form_data(list, &BTreeMap::new(), true);
    match web.pages.registry(list.language).render("form", &data) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => web.unavailable(e.into()),
    }
}
/// The subscribe form's POST. The answer is the same page whether or not
/// the address was already on the list (no enumeration); a filled honeypot
/// gets that page too, so a bot learns nothing, but the post is recorded
/// among the ignored messages (`utskick ignored`) with what was typed, so a
/// person whose browser filled the trap can still be found. The per-IP
/// limit comes first: it also caps how many such records one client writes.
pub(super) async fn subscribe(
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
    if !web.limits.allow(peer.ip()) {
        return web.problem(StatusCode::TOO_MANY_REQUESTS, lang, "too_many");
    }
    let email = form
        .get("email")
        .map(|e| e.trim().to_string())
        .unwrap_or_default();
    let too_fast = form.get("started").is_some_and(|v| {
        let now = web.ctx.now().timestamp_millis();
        fill_time::elapsed(&web.ctx.secret, &list.id, v, now)
            .is_some_and(|ms| ms < fill_time::MIN_FILL_MILLIS)
    });
    let trap = if form.get("website").is_some_and(|v| !v.trim().is_empty()) {
        Some(HONEYPOT_FILLED)
    } else if too_fast {
        Some(fill_time::SENT_TOO_FAST)
    } else {
        None
    };
    if let Some(reason) = trap {
        tracing::info!(list = %list.id, reason, "subscribe form post ignored");
        let recorded = view::ignore_form_post(&web.ctx, list, &email, reason);
        if let Err(e) = recorded {
            return web.unavailable(e);
        }
        if let Err(e) = view::settle(&web.ctx).await {
            return web.unavailable(e);
        }
        return check_inbox();
    }
    if !address::is_valid(&email) || email.contains(['\r', '\n']) {
        let mut values = form.clone();
        values.remove("website");
        let mut data = web.form_data(list, &values, false);
        // The layout prefixes the title, the field carries the message.
        data["error"] = json!(true);
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
    if let Err(e) = view::settle(&web.ctx).await {
        return web.unavailable(e);
    }
    check_inbox()
}

pub(super) async fn confirm_page(State(web): State<Shared>, Path(token): Path<String>) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    let pending = match view::awaiting(&web.ctx, &parsed) {
        Ok(Ok(p)) => p,
        Ok(Err(problem)) => {
            let lang = match view::awaiting_list(&web.ctx, &parsed) {
                Ok(Some(list)) => language_of(&web.ctx, &list),
                _ => Language::Sv,
            };
            return web.token_problem(problem, lang);
        }
        Err(e) => return web.unavailable(e),
    };
    let Some(list) = web.list(&pending.list) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    let mut data = json!({
        "list": list_json(list),
        "email": pending.email,
        "closed": list.subscription == Subscription::Closed,
    });
    data[asks_flag(pending.asks)] = json!(true);
    if pending.done && pending.asks == Asks::Subscribe && !pending.member {
        // Used, but the person is on no list: declined, or left since.
        // Only a new sign-up helps, as with a link that ran out.
        return web.token_problem(TokenProblem::Expired, list.language);
    }
    if pending.done {
        // A used link says so, rather than offering the button again.
        data["already"] = json!(true);
        return web.page(StatusCode::OK, list.language, "done", data);
    }
    web.page(StatusCode::OK, list.language, "confirm", data)
}

pub(super) async fn confirm_post(
    State(web): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    let list_id = match view::awaiting_list(&web.ctx, &parsed) {
        Ok(Some(list)) => list,
        Ok(None) => return web.token_problem(TokenProblem::Unknown, Language::Sv),
        Err(e) => return web.unavailable(e),
    };
    let lang = language_of(&web.ctx, &list_id);
    // What the token asked for words an "already done" answer.
    let asks = match view::awaiting(&web.ctx, &parsed) {
        Ok(Ok(a)) => Some(a),
        Ok(Err(_)) => None,
        Err(e) => return web.unavailable(e),
    };
    // Used, and the person is on no list (declined, or left since): the
    // link ran out, whatever "already done" would say.
    if asks
        .as_ref()
        .is_some_and(|a| a.done && a.asks == Asks::Subscribe && !a.member)
    {
        return web.token_problem(TokenProblem::Expired, lang);
    }
    let asks = asks.map(|a| a.asks);
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
    if let Err(e) = view::settle(&web.ctx).await {
        return web.unavailable(e);
    }
    // An owner's approved post is now a scheduled campaign.
    web.ctx.campaign_ready.notify_one();
    let flag = match outcome {
        Confirmed::Subscribed => "subscribed",
        Confirmed::AwaitingApproval => "awaiting",
        Confirmed::Approved => "approved",
        Confirmed::Unsubscribed => "unsubscribed",
        Confirmed::Queued => "queued",
        Confirmed::SettingChanged => "setting_changed",
        Confirmed::AlreadyDone => "already",
    };
    let list = web.list(&list_id);
    let mut data = json!({
        "list": list.map(list_json),
        "closed": list.is_some_and(|l| l.subscription == Subscription::Closed),
    });
    data[flag] = json!(true);
    if let Some(asks) = asks {
        data[asks_flag(asks)] = json!(true);
    }
    web.page(StatusCode::OK, lang, "done", data)
}

/// The templates' flag for what a token asks.
fn asks_flag(asks: Asks) -> &'static str {
    match asks {
        Asks::Subscribe => "is_subscribe",
        Asks::Unsubscribe => "is_unsubscribe",
        Asks::Approve => "is_approve",
        Asks::Post => "is_post",
        Asks::Setting => "is_setting",
    }
}

/// The link in every newsletter's footer and `List-Unsubscribe`.
pub(super) async fn unsubscribe_page(
    State(web): State<Shared>,
    Path(token): Path<String>,
) -> Response {
    let found = match Token::decode(&token) {
        Some(t) => view::member(&web.ctx, &t),
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
    if s.gone {
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
pub(super) async fn unsubscribe_post(
    State(web): State<Shared>,
    Path(token): Path<String>,
) -> Response {
    let Some(parsed) = Token::decode(&token) else {
        return web.token_problem(TokenProblem::Unknown, Language::Sv);
    };
    let left = match subscription::leave_by_token(&web.ctx, None, &parsed) {
        Ok(Some(left)) => left,
        Ok(None) => return web.token_problem(TokenProblem::Unknown, Language::Sv),
        Err(e) => return web.unavailable(e),
    };
    if let Err(e) = view::settle(&web.ctx).await {
        return web.unavailable(e);
    }
    let list = view::member(&web.ctx, &parsed)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ipv6_network_shares_one_form_allowance() {
        let limits = IpLimits::default();
        let from =
            |host: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, host));
        for host in 0..FORM_POSTS_PER_IP_PER_HOUR as u16 {
            assert!(limits.allow(from(host)));
        }
        // Another address of the same /64 is the same client.
        assert!(!limits.allow(from(0xffff)));
        // Another /64 is not.
        assert!(limits.allow(IpAddr::V6(std::net::Ipv6Addr::new(
            0x2001, 0xdb8, 1, 3, 0, 0, 0, 1
        ))));
        // An IPv4 address seen through an IPv6 socket counts as itself.
        let v4 = std::net::Ipv4Addr::new(192, 0, 2, 7);
        for _ in 0..FORM_POSTS_PER_IP_PER_HOUR {
            assert!(limits.allow(IpAddr::V6(v4.to_ipv6_mapped())));
        }
        assert!(!limits.allow(IpAddr::V4(v4)));
    }
}
