//! Every web route in process (tower's `oneshot` on the real router), with
//! bad input and the expected status; and what issue 18 asked of the pages
//! against the real binary on loopback (`Daemon`): an ignored honeypot
//! post on record, the privacy page and every footer, errors announced,
//! used links, one `<h1>`, readable dates and attachments to download.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use utskick::daemon::build_context;
use utskick::daemon::config::Config;
use utskick::daemon::context::{system_clock, Context};
use utskick::store::Status;

use common::Daemon;

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
    assert!(r.body.contains("Du är redan med"), "{}", r.body);

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
        post: None,
        outcome: Default::default(),
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
    assert!(r.body.contains("aria-invalid=\"true\""));
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
        assert!(r.body.contains("Länken fungerar inte"), "{}", r.body);
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

/// One HTTP/1.1 exchange with the daemon: status, lower-cased header lines,
/// body.
fn fetch(d: &Daemon, method: &str, path: &str, form: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(&d.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = form.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        d.http
    );
    if form.is_some() {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

fn page(d: &Daemon, path: &str) -> (u16, String) {
    let (status, _, body) = fetch(d, "GET", path, None);
    (status, String::from_utf8(body).unwrap())
}

fn ignored(d: &Daemon) -> Vec<serde_json::Value> {
    serde_json::from_str(&d.cli_ok(&["ignored", "--format", "json"])).unwrap()
}

/// Issue 18: a filled honeypot answered "check your inbox" and left no
/// trace, so a person whose browser autofilled it was lost. Now the answer
/// is the same, and the post is on record with what was typed.
#[test]
fn a_filled_honeypot_is_answered_alike_and_recorded() {
    let d = Daemon::start("");
    let path = "/lists/lokal-finansiering/subscribe";
    let (status, _, real) = fetch(
        &d,
        "POST",
        path,
        Some("email=person%40example.org&website="),
    );
    assert_eq!(status, 200);
    let (status, _, trapped) = fetch(
        &d,
        "POST",
        path,
        Some("email=Autofill%40Example.org&name=Eva&website=https%3A%2F%2Feva.example.org"),
    );
    assert_eq!(status, 200);
    assert_eq!(real, trapped, "the honeypot's answer differs");
    assert_eq!(
        d.status_of("lokal-finansiering", "autofill@example.org"),
        None
    );
    let records = ignored(&d);
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["reason"], "web form: honeypot filled", "{r}");
    assert_eq!(r["list"], "lokal-finansiering", "{r}");
    assert_eq!(r["address"], "web form", "{r}");
    assert_eq!(r["sender"], "Autofill@Example.org", "{r}");
    // The person can be found and erased like any other.
    d.cli_ok(&["forget", "autofill@example.org"]);
    assert!(ignored(&d).is_empty());
}

/// The form carries the moment it was served, signed: a post back within
/// 1.5 seconds was sent by a program, is answered alike and recorded. A
/// stamp that does not verify, or none (an old pasted snippet), changes
/// nothing, and a person who takes their time is subscribed.
#[test]
fn a_form_sent_back_faster_than_anyone_types_is_answered_alike_and_recorded() {
    let mut d = Daemon::start("");
    let (status, _, page) = fetch(&d, "GET", "/lists/lokal-finansiering/form", None);
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    let started = page
        .split("name=\"started\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no started field in {page}"))
        .to_string();
    let path = "/lists/lokal-finansiering/subscribe";
    let (status, _, fast) = fetch(
        &d,
        "POST",
        path,
        Some(&format!(
            "email=bot%40example.org&website=&started={started}"
        )),
    );
    assert_eq!(status, 200);
    // A forged stamp (a different time) is no stamp: judged by the honeypot alone.
    let (millis, tag) = started.split_once('-').unwrap();
    let forged = format!("{}-{tag}", millis.parse::<i64>().unwrap() - 60_000);
    let (status, _, forged_answer) = fetch(
        &d,
        "POST",
        path,
        Some(&format!(
            "email=forged%40example.org&website=&started={forged}"
        )),
    );
    assert_eq!(status, 200);
    assert_eq!(fast, forged_answer, "the answers differ");
    assert_eq!(d.status_of("lokal-finansiering", "bot@example.org"), None);
    assert_eq!(
        d.status_of("lokal-finansiering", "forged@example.org")
            .as_deref(),
        Some("pending")
    );
    let records = ignored(&d);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["reason"], "web form: sent too fast");
    assert_eq!(records[0]["sender"], "bot@example.org");
    // A person who took their time.
    std::thread::sleep(Duration::from_millis(1_600));
    // A form shown again with an error keeps the first stamp.
    let (status, _, again) = fetch(
        &d,
        "POST",
        path,
        Some(&format!("email=inte-en-adress&website=&started={started}")),
    );
    assert_eq!(status, 422);
    assert!(
        String::from_utf8(again)
            .unwrap()
            .contains(&format!("name=\"started\" value=\"{started}\"")),
        "the error page restarted the clock"
    );
    let (status, _, _) = fetch(
        &d,
        "POST",
        path,
        Some(&format!(
            "email=person%40example.org&website=&started={started}"
        )),
    );
    assert_eq!(status, 200);
    assert_eq!(
        d.status_of("lokal-finansiering", "person@example.org")
            .as_deref(),
        Some("pending")
    );
    let mails = d.wait_mails(2);
    assert!(mails.iter().all(|m| m.to != "bot@example.org"));
}

/// The snippet lives on pages without our stylesheet: its honeypot hides
/// itself inline, is out of the Tab order and not autofilled; our own
/// pages (whose CSP allows no inline style) use the class.
#[test]
fn the_snippet_hides_its_honeypot_without_a_stylesheet() {
    let d = Daemon::start("");
    let (status, snippet) = page(&d, "/lists/lokal-finansiering/form");
    assert_eq!(status, 200);
    let hp = snippet
        .split("<div class=\"hp\"")
        .nth(1)
        .and_then(|r| r.split("</div>").next())
        .unwrap_or_else(|| panic!("no honeypot in {snippet}"));
    for wanted in [
        "style=\"position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden\"",
        "aria-hidden=\"true\"",
        "tabindex=\"-1\"",
        "autocomplete=\"off\"",
        "name=\"website\"",
    ] {
        assert!(hp.contains(wanted), "{wanted} missing in {hp}");
    }
    // On another site the form brings its own privacy notice.
    assert!(
        snippet.contains("från vilken IP-adress. <a href=\"https://lista.example.se/privacy\">"),
        "{snippet}"
    );
    let (_, list) = page(&d, "/lists/lokal-finansiering");
    assert!(
        list.contains("<div class=\"hp\" aria-hidden=\"true\">"),
        "{list}"
    );
    assert!(!list.contains("style=\""), "an inline style under our CSP");
}

/// Every page says who sends and how to reach them; the list page's
/// privacy sentence is true and links the policy; /privacy says what is
/// kept, for how long, and whom to ask.
#[test]
fn every_page_names_the_sender_and_the_privacy_page_is_true() {
    let d = Daemon::start("organisation = \"Projektet Lokal finansiering\"\n");
    let contact = "<a href=\"mailto:lokal-finansiering-owner@lista.example.se\">lokal-finansiering-owner@lista.example.se</a>";
    for path in [
        "/",
        "/lists/lokal-finansiering",
        "/privacy",
        "/archive/lokal-finansiering",
        "/nope",
        "/confirm/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let (_, body) = page(&d, path);
        let footer = body
            .split("<footer class=\"site\">")
            .nth(1)
            .unwrap_or_else(|| panic!("no footer on {path}:\n{body}"));
        assert!(
            footer.contains("Projektet Lokal finansiering"),
            "{path}: {footer}"
        );
        assert!(footer.contains(contact), "{path}: {footer}");
        assert!(
            footer.contains("href=\"https://lista.example.se/privacy\""),
            "{path}: {footer}"
        );
    }
    let (_, list) = page(&d, "/lists/lokal-finansiering");
    assert!(
        list.contains("Vi sparar din e-postadress, ditt namn och övriga uppgifter om du anger dem, när du anmälde dig och bekräftade och från vilken IP-adress."),
        "{list}"
    );
    assert!(!list.contains("Vi sparar bara"), "the old, untrue sentence");
    let (status, privacy) = page(&d, "/privacy");
    assert_eq!(status, 200);
    assert!(privacy.contains("<title>Så hanterar vi dina uppgifter</title>"));
    for fact in [
        "IP-adress",
        "Message-ID",
        "efter 30 dagar",
        "gäller i 7 dagar",
        "nycklad hash",
        "Integritetsskyddsmyndigheten",
    ] {
        assert!(privacy.contains(fact), "{fact} missing:\n{privacy}");
    }
}

/// A wrong address: the title says "Fel: ", the field is marked invalid,
/// described by the message beside it, and takes the focus.
#[test]
fn a_form_error_is_announced_at_the_field() {
    let d = Daemon::start("");
    let (status, _, body) = fetch(
        &d,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=inte-en-adress&name=Eva"),
    );
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, 422);
    assert!(body.contains("<title>Fel: Lokal finansiering"), "{body}");
    let input = body
        .split("<input id=\"email-lokal-finansiering\"")
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap();
    for wanted in [
        "aria-invalid=\"true\"",
        "aria-describedby=\"email-error-lokal-finansiering\"",
        "autofocus",
        "value=\"inte-en-adress\"",
    ] {
        assert!(input.contains(wanted), "{wanted} missing in <input{input}>");
    }
    // The message sits right before the field it describes.
    let message = body.find("id=\"email-error-lokal-finansiering\"").unwrap();
    let field = body.find("<input id=\"email-lokal-finansiering\"").unwrap();
    assert!(message < field && field - message < 300, "{body}");
    assert_eq!(body.matches("autofocus").count(), 1);
}

/// A used confirmation link says the subscription is confirmed, with no
/// button to press again.
#[test]
fn a_used_confirm_link_says_you_are_already_in() {
    let mut d = Daemon::start("");
    let (status, _, _) = fetch(
        &d,
        "POST",
        "/lists/lokal-finansiering/subscribe",
        Some("email=redan%40example.org"),
    );
    assert_eq!(status, 200);
    let mail = d.wait_mails(1).remove(0);
    let at = mail.text.find("/confirm/").expect("a confirm link");
    let token: String = mail.text[at + 9..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let path = format!("/confirm/{token}");
    let (_, before) = page(&d, &path);
    assert!(before.contains("<form method=\"post\">"), "{before}");
    let (status, _, _) = fetch(&d, "POST", &path, None);
    assert_eq!(status, 200);
    let (status, after) = page(&d, &path);
    assert_eq!(status, 200);
    assert!(after.contains("<h1>Du är redan med</h1>"), "{after}");
    assert!(!after.contains("<form"), "{after}");
    let (_, _, again) = fetch(&d, "POST", &path, None);
    assert!(String::from_utf8(again)
        .unwrap()
        .contains("Du är redan med"));
}

/// The archive item: one `<h1>` (the subject; the newsletter's own headings
/// one level down), a date as people write it, "Följ via RSS", and the
/// attachment downloadable, only while the campaign is public.
#[test]
fn the_archive_item_has_one_h1_a_readable_date_and_its_attachment() {
    let d = Daemon::start("");
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "las@example.org",
        "--consent",
        "test",
    ]);
    let md = d.dir.path().join("dec.md");
    std::fs::write(
        &md,
        "---\nsubject: Decembernytt\n---\n# Decembernytt\n\nHej!\n\n## Träffen\n\nText.\n",
    )
    .unwrap();
    let pdf = d.dir.path().join("Folder å 2026.pdf");
    let bytes = b"%PDF-1.4\n\x00\xffbinary\n";
    std::fs::write(&pdf, bytes).unwrap();
    d.cli_ok(&[
        "queue",
        "lokal-finansiering",
        md.to_str().unwrap(),
        "--attach",
        pdf.to_str().unwrap(),
    ]);
    // Archived once sending starts.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let archive = loop {
        let (_, archive) = page(&d, "/archive/lokal-finansiering");
        if archive.contains("class=\"archive-item\"") {
            break archive;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not archived:\n{archive}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(archive.contains("Följ via RSS") && !archive.contains("Atom-flöde"));
    let today = chrono::Utc::now();
    let months = [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ];
    use chrono::Datelike;
    let date = format!(
        "{} {} {}",
        today.day(),
        months[today.month0() as usize],
        today.year()
    );
    assert!(
        archive.contains(&format!(">{date}</time>")),
        "{date}:\n{archive}"
    );
    let href = archive
        .split("class=\"archive-item\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let (status, item) = page(&d, &href);
    assert_eq!(status, 200);
    assert_eq!(item.matches("<h1").count(), 1, "{item}");
    assert!(item.contains("<h1>Decembernytt</h1>"));
    assert!(item.contains(">Träffen</h2>"), "{item}");
    assert!(item.contains(&format!(">{date}</time>")));
    let download = format!("{href}/0/Folder%20%C3%A5%202026.pdf");
    assert!(item.contains(&format!("href=\"{download}\"")), "{item}");
    let (status, head, body) = fetch(&d, "GET", &download, None);
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, bytes);
    assert!(head.contains("content-type: application/pdf"), "{head}");
    assert!(
        head.contains("content-disposition: attachment; filename=\"folder___2026.pdf\"; filename*=utf-8''folder%20%c3%a5%202026.pdf"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"));
    // Another index, another name, a list without a public archive.
    for wrong in [
        format!("{href}/1/Folder%20%C3%A5%202026.pdf"),
        format!("{href}/0/annan.pdf"),
        download.replace("lokal-finansiering", "partnerskap"),
    ] {
        assert_eq!(fetch(&d, "GET", &wrong, None).0, 404, "{wrong}");
    }
}

/// An English list's pages, against the real binary: the same structure in
/// English, "Error: " in the title, the footer and the privacy page.
#[test]
fn an_english_list_gets_english_pages() {
    let mut d = Daemon::prepare("");
    let lists = d.dir.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(
        lists.join("news.toml"),
        "name = \"Rural finance news\"\naddress = \"news\"\nlanguage = \"en\"\n\
         owners = [\"lead@example.org\"]\ndescription = \"News from the project.\"\n\
         subscription = \"open\"\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(d.config_path()).unwrap();
    let config: String = config
        .lines()
        .map(|l| {
            if l.starts_with("lists_dir") {
                format!("lists_dir = \"{}\"\n", lists.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(d.config_path(), config).unwrap();
    d.spawn();

    let (_, index) = page(&d, "/");
    assert!(index.contains("<html lang=\"en\">"), "{index}");
    assert!(
        index.contains("Mailings from Rural finance news."),
        "{index}"
    );
    assert!(
        index.contains("Contact: <a href=\"mailto:news-owner@lista.example.se\">"),
        "{index}"
    );
    let (_, list) = page(&d, "/lists/news");
    assert!(
        list.contains("We store your email address, your name if you give it, when you signed up and confirmed, and the IP address you did it from."),
        "{list}"
    );
    let (status, _, body) = fetch(&d, "POST", "/lists/news/subscribe", Some("email=nope"));
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, 422);
    assert!(
        body.contains("<title>Error: Rural finance news</title>"),
        "{body}"
    );
    assert!(body.contains("That does not look like an email address"));
    let (_, privacy) = page(&d, "/privacy");
    assert!(privacy.contains("<title>How we handle your data</title>"));
    assert!(privacy.contains("IP address") && privacy.contains("keyed hash"));
    let (status, missing) = page(&d, "/nope");
    assert_eq!(status, 404);
    assert!(missing.contains("Go to the front page"), "{missing}");
}

/// On a closed list a used confirmation link does not say "you are in":
/// an owner still has to approve.
#[tokio::test]
async fn a_used_link_on_a_closed_list_says_an_owner_still_approves() {
    let app = app();
    let r = call(
        &app,
        "POST",
        "/lists/partnerskap/subscribe",
        Some("email=sluten%40example.org"),
    )
    .await;
    assert_eq!(r.status, 200);
    let path = format!("/confirm/{}", token_from_outbox(&app, "sluten@example.org"));
    let r = call(&app, "POST", &path, None).await;
    assert!(r.body.contains("<h1>Tack!</h1>"), "{}", r.body);
    for method in ["GET", "POST"] {
        let r = call(&app, method, &path, None).await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("<h1>Redan bekräftad</h1>"), "{}", r.body);
        assert!(r.body.contains("godkänt din anmälan"), "{}", r.body);
        assert!(!r.body.contains("Du är redan med"));
    }
}
