//! Every web route in process (tower's `oneshot` on the real router), with
//! bad input and the expected status.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use utskick::daemon::build_context;
use utskick::daemon::config::Config;
use utskick::daemon::context::{system_clock, Context};
use utskick::store::Status;

struct App {
    _dir: tempfile::TempDir,
    ctx: Arc<Context>,
    router: axum::Router,
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let text = format!(
        "domain = \"lista.example.se\"\nbase_url = \"https://lista.example.se\"\ndata_dir = \"{}\"\nlists_dir = \"{root}/lists\"\ntemplates_dir = \"{root}/templates\"\n",
        dir.path().join("data").display()
    );
    let ctx =
        Arc::new(build_context(Config::parse(&text, "t.toml").unwrap(), system_clock()).unwrap());
    let router = utskick::web::router(ctx.clone())
        .unwrap()
        .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 7], 4711))));
    App {
        _dir: dir,
        ctx,
        router,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

/// A confirmed subscriber of lokal-finansiering, added by an admin.
fn add(app: &App, email: &str, name: Option<&str>) {
    let list = app.ctx.lists.get("lokal-finansiering").unwrap();
    utskick::subscription::by_admin::admin_add(
        &app.ctx,
        list,
        email,
        name,
        Default::default(),
        "test",
    )
    .unwrap();
}

async fn call(app: &App, method: &str, uri: &str, form: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if form.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req
        .body(Body::from(form.unwrap_or("").to_string()))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).to_string(),
    }
}

fn queued_to(app: &App, email: &str) -> Vec<utskick::store::OutMail> {
    app.ctx
        .store
        .queued_mail()
        .unwrap()
        .into_iter()
        .filter(|m| m.forward_path[0] == email)
        .collect()
}

/// The confirmation link's token from the queued confirmation mail.
fn token_from_outbox(app: &App, email: &str) -> String {
    let mail = queued_to(app, email).pop().expect("a confirmation mail");
    let text = String::from_utf8(mail.raw).unwrap().replace("=\r\n", "");
    let at = text.find("/confirm/").expect("a confirm link");
    text[at + 9..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

#[tokio::test]
async fn the_index_lists_public_lists_with_forms() {
    let app = app();
    let r = call(&app, "GET", "/", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<html lang=\"sv\">"));
    assert!(
        r.body
            .contains("action=\"/lists/lokal-finansiering/subscribe\""),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("/lists/partnerskap/subscribe"),
        "partnerskap is not public"
    );
    assert!(r.body.contains("<label for=\"email-lokal-finansiering\">"));
    assert!(r.body.contains("name=\"organisation\"") && r.body.contains("name=\"region\""));
    for h in [
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
        "x-frame-options",
    ] {
        assert!(r.headers.contains_key(h), "missing {h}");
    }
    let css = call(&app, "GET", "/style.css", None).await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert_eq!(call(&app, "GET", "/no/such/page", None).await.status, 404);
    assert_eq!(call(&app, "GET", "/lists/nope", None).await.status, 404);
    assert_eq!(call(&app, "GET", "/healthz", None).await.status, 200);
}

#[tokio::test]
async fn subscribe_confirm_and_unsubscribe_through_the_pages() {
    let app = app();
    let r = call(&app, "GET", "/lists/lokal-finansiering", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("class=\"subscribe\""));
    let r = call(
        &app,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=webb%40example.org&name=%C3%85sa+%C3%96berg&region=J%C3%A4mtland&website="),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Titta i din inkorg"), "{}", r.body);
    let s = app
        .ctx
        .store
        .subscriber("lokal-finansiering", "webb@example.org")
        .unwrap()
        .unwrap();
    assert_eq!(s.status, Status::Pending);
    assert_eq!(s.name, "Åsa Öberg");
    assert_eq!(s.attributes["region"], "Jämtland");

    let token = token_from_outbox(&app, "webb@example.org");
    let path = format!("/confirm/{token}");
    let r = call(&app, "GET", &path, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<form method=\"post\">"), "{}", r.body);
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    assert_eq!(
        app.ctx
            .store
            .subscriber("lokal-finansiering", "webb@example.org")
            .unwrap()
            .unwrap()
            .status,
        Status::Pending,
        "a GET changes nothing"
    );
    let r = call(&app, "POST", &path, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Välkommen!"), "{}", r.body);
    let s = app
        .ctx
        .store
        .subscriber("lokal-finansiering", "webb@example.org")
        .unwrap()
        .unwrap();
    assert_eq!(s.status, Status::Confirmed);
    assert!(s.consent.unwrap().evidence.contains("IP 192.0.2.7"));
    // Replayed: idempotent, friendly.
    let r = call(&app, "POST", &path, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Redan klart"));

    // One-click unsubscribe with the newsletter token (RFC 8058).
    let c = utskick::store::Campaign {
        v: 1,
        id: 77,
        list: "lokal-finansiering".into(),
        content: utskick::store::Content {
            kind: utskick::store::Kind::Newsletter,
            source: "t".into(),
            subject: "S".into(),
            preheader: String::new(),
            markdown: "x".into(),
            title: String::new(),
            link: None,
            attachments: vec![],
        },
        filters: vec![],
        status: utskick::store::CampaignStatus::Done,
        paused_from: None,
        created_at: chrono::Utc::now(),
        scheduled_at: chrono::Utc::now(),
        started_at: None,
        finished_at: None,
        total: 0,
        sent: 0,
        failed: 0,
        skipped: 0,
    };
    let s = app
        .ctx
        .store
        .subscriber("lokal-finansiering", "webb@example.org")
        .unwrap()
        .unwrap();
    let ntoken = utskick::campaign::subscriber_token(&app.ctx, &c, &s);
    let path = format!("/unsubscribe/{ntoken}");
    let r = call(&app, "GET", &path, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Avsluta"), "{}", r.body);
    assert_eq!(
        app.ctx
            .store
            .subscriber("lokal-finansiering", "webb@example.org")
            .unwrap()
            .unwrap()
            .status,
        Status::Confirmed
    );
    let r = call(&app, "POST", &path, Some("List-Unsubscribe=One-Click")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.ctx
            .store
            .subscriber("lokal-finansiering", "webb@example.org")
            .unwrap()
            .unwrap()
            .status,
        Status::Unsubscribed
    );
    let r = call(&app, "POST", &path, Some("List-Unsubscribe=One-Click")).await;
    assert_eq!(r.status, 200, "idempotent");
}

#[tokio::test]
async fn no_enumeration_honeypot_and_bad_input() {
    let app = app();
    add(&app, "member@example.org", None);
    // Subscribed already: the same page as for a stranger.
    let known = call(
        &app,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=member%40example.org"),
    )
    .await;
    let fresh = call(
        &app,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=new%40example.org"),
    )
    .await;
    assert_eq!(known.status, fresh.status);
    assert_eq!(known.body, fresh.body);
    // The honeypot: same page, nothing stored, nothing sent.
    let r = call(
        &app,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=bot%40example.org&website=http%3A%2F%2Fspam"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(app
        .ctx
        .store
        .subscriber("lokal-finansiering", "bot@example.org")
        .unwrap()
        .is_none());
    // An invalid address: the form again, with an error and the values kept (escaped).
    let r = call(
        &app,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=not-an-address&name=%3Cscript%3Ex%3C%2Fscript%3E"),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("role=\"alert\""));
    assert!(
        r.body.contains("&lt;script&gt;") && !r.body.contains("<script>x"),
        "escaped"
    );
    // CR/LF injection in the address or the name.
    let r = call(
        &app,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=a%40b.se%0D%0ABcc%3A+x%40y.se"),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = call(
        &app,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=crlf%40example.org&name=Eva%0D%0ABcc%3A+x%40y.se"),
    )
    .await;
    assert_eq!(r.status, 200);
    let s = app
        .ctx
        .store
        .subscriber("lokal-finansiering", "crlf@example.org")
        .unwrap()
        .unwrap();
    assert!(
        !s.name.contains('\r') && !s.name.contains('\n'),
        "{:?}",
        s.name
    );
    // Not a form at all.
    let r = call(&app, "POST", "/lists/lokal-finansiering/subscribe", None).await;
    assert!(
        r.status == 400 || r.status == 415 || r.status == 422,
        "{}",
        r.status
    );
    // Oversized body.
    let big = format!("email=x%40example.org&name={}", "a".repeat(64 * 1024));
    let r = call(
        &app,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some(&big),
    )
    .await;
    assert_eq!(r.status, 413);
    // Unknown and forged tokens.
    for path in [
        "/confirm/nonsense",
        "/confirm/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "/unsubscribe/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let r = call(&app, "GET", path, None).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.body.contains("Okänd länk"), "{}", r.body);
        let r = call(&app, "POST", path, None).await;
        assert_eq!(r.status, 404, "{path}");
    }
}

#[tokio::test]
async fn an_expired_token_gets_a_friendly_page_with_a_way_back() {
    let app = app();
    let list = app.ctx.lists.get("lokal-finansiering").unwrap();
    let req = utskick::subscription::answer::Request {
        list,
        email: "late@example.org",
        name: "",
        method: "web",
        evidence: "test".into(),
        in_reply_to: None,
        attributes: Default::default(),
    };
    utskick::subscription::subscribe(&app.ctx, &req).unwrap();
    let token = token_from_outbox(&app, "late@example.org");
    let t = utskick::token::Token::decode(&token).unwrap();
    let secret: [u8; 32] = std::fs::read(app.ctx.config.secret_path())
        .unwrap()
        .try_into()
        .unwrap();
    let old = utskick::token::Secret::from_bytes(secret).mint(
        utskick::token::Purpose::ConfirmSubscribe,
        "lokal-finansiering",
        "late@example.org",
        t.id,
        t.issued - 8 * 86_400,
    );
    let r = call(&app, "GET", &format!("/confirm/{old}"), None).await;
    assert_eq!(r.status, 410);
    assert!(
        r.body.contains("gått ut") && r.body.contains("href=\"/\""),
        "{}",
        r.body
    );
    let r = call(&app, "POST", &format!("/confirm/{old}"), None).await;
    assert_eq!(r.status, 410);
}

#[tokio::test]
async fn the_form_snippet_posts_here_by_absolute_url() {
    let app = app();
    let r = call(&app, "GET", "/lists/lokal-finansiering/form", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.trim_start().starts_with("<form"), "{}", r.body);
    assert!(r
        .body
        .contains("action=\"https://lista.example.se/lists/lokal-finansiering/subscribe\""));
    assert!(!r.body.contains("<script"));
    assert!(
        !r.headers.contains_key("x-frame-options"),
        "meant for other sites"
    );
}

#[tokio::test]
async fn archive_and_feed_show_sent_newsletters_without_personal_data() {
    let app = app();
    add(&app, "secret.reader@example.org", Some("Hemlig Läsare"));
    let content = utskick::store::Content {
        kind: utskick::store::Kind::Newsletter,
        source: "d.md".into(),
        subject: "Nyhetsbrev december".into(),
        preheader: String::new(),
        markdown: "Hej {{name}}!\n\nHandboken & foldern är klara.\n".into(),
        title: String::new(),
        link: None,
        attachments: vec![],
    };
    let c = utskick::campaign::create(
        &app.ctx,
        utskick::campaign::NewCampaign {
            list: "lokal-finansiering".into(),
            content,
            filters: vec![],
            at: None,
            draft: false,
        },
    )
    .unwrap();
    // The file outbox under data_dir (the configuration's default).
    let transport = utskick::outbound::Transport::from_config(&app.ctx.config).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    utskick::campaign::tick(&app.ctx, &transport, &rx, &mut Default::default())
        .await
        .unwrap();
    let r = call(&app, "GET", "/archive/lokal-finansiering", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Nyhetsbrev december"), "{}", r.body);
    let item = call(
        &app,
        "GET",
        &format!("/archive/lokal-finansiering/{}", c.id),
        None,
    )
    .await;
    assert_eq!(item.status, 200);
    assert!(
        item.body.contains("Handboken &amp; foldern"),
        "{}",
        item.body
    );
    for private in ["secret.reader", "Hemlig", "unsubscribe/", "reply+"] {
        assert!(
            !item.body.contains(private),
            "{private} leaked: {}",
            item.body
        );
    }
    let feed = call(&app, "GET", "/archive/lokal-finansiering/feed.atom", None).await;
    assert_eq!(feed.status, 200);
    assert!(feed.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/atom+xml"));
    assert!(feed
        .body
        .contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""));
    assert!(feed.body.contains("<title>Nyhetsbrev december</title>"));
    assert!(!feed.body.contains("secret.reader"));
    // Not public, unknown, or not a number.
    assert_eq!(
        call(&app, "GET", "/archive/partnerskap", None).await.status,
        404
    );
    assert_eq!(
        call(&app, "GET", "/archive/lokal-finansiering/999999", None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(&app, "GET", "/archive/lokal-finansiering/abc", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn metrics_in_prometheus_text() {
    // /metrics lives on the [metrics] listener's router; the public one
    // answers 404 there (its counts move with what strangers do).
    let app = app();
    add(&app, "m@example.org", None);
    assert_eq!(call(&app, "GET", "/metrics", None).await.status, 404);
    let metrics = App {
        _dir: tempfile::tempdir().unwrap(),
        ctx: app.ctx.clone(),
        router: utskick::web::metrics_router(app.ctx.clone()),
    };
    let r = call(&metrics, "GET", "/metrics", None).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(
        r.body
            .contains("utskick_subscribers{list=\"lokal-finansiering\",status=\"confirmed\"} 1"),
        "{}",
        r.body
    );
    for name in [
        "utskick_messages_received_total",
        "utskick_mails_sent_total",
        "utskick_mails_failed_total",
        "utskick_queue_depth",
        "utskick_store_commits_total",
        "utskick_store_commit_callers_total",
        "utskick_store_fsync_seconds_total",
    ] {
        assert!(r.body.contains(&format!("# TYPE {name}")), "{name}");
    }
    // Nothing else is served there.
    assert_eq!(call(&metrics, "GET", "/", None).await.status, 404);
    assert_eq!(call(&metrics, "GET", "/healthz", None).await.status, 404);
    assert_eq!(
        call(&metrics, "GET", "/metrics", None).await.headers["x-content-type-options"],
        "nosniff"
    );
}

#[tokio::test]
async fn per_ip_rate_limit_on_the_form() {
    let app = app();
    let mut last = StatusCode::OK;
    for i in 0..25 {
        let r = call(
            &app,
            "POST",
            "/lists/lokal-finansiering/subscribe",
            Some(&format!("email=p{i}%40example.org")),
        )
        .await;
        last = r.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}
