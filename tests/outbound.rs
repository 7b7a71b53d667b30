//! Outbound through lettre to a real SMTP server on loopback: a small
//! recording server that can be told to refuse, temporarily or for good.

mod common;

use std::net::TcpListener;
use std::sync::Arc;

use common::sink::{Mode, Sink};

use utskick::daemon::build_context;
use utskick::daemon::config::Config;
use utskick::daemon::context::system_clock;
use utskick::outbound::{drain_once, Transport};
use utskick::subscription::{self, answer::Request};

fn sink(mode: Mode) -> (String, common::sink::Received) {
    let s = Sink::start(mode);
    (s.addr, s.got)
}

fn setup(
    relay: &str,
) -> (
    tempfile::TempDir,
    Arc<utskick::daemon::context::Context>,
    Transport,
) {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let text = format!(
        "domain = \"lista.example.se\"\ndata_dir = \"{}\"\nlists_dir = \"{root}/lists\"\ntemplates_dir = \"{root}/templates\"\n[outbound]\ntransport = \"smtp\"\nrelay = \"{relay}\"\n",
        dir.path().join("data").display()
    );
    let config = Config::parse(&text, "test.toml").unwrap();
    let transport = Transport::from_config(&config).unwrap();
    let ctx = Arc::new(build_context(config, system_clock()).unwrap());
    (dir, ctx, transport)
}

fn queue_confirmation(ctx: &utskick::daemon::context::Context, email: &str) {
    let list = ctx.lists.get("lokal-finansiering").unwrap();
    let req = Request {
        list,
        email,
        name: "Test",
        method: "mail",
        evidence: "<t@example>".into(),
        in_reply_to: None,
        attributes: Default::default(),
    };
    subscription::subscribe(ctx, &req).unwrap();
}

#[tokio::test]
async fn a_confirmation_goes_through_the_relay_with_our_envelope() {
    let (relay, got) = sink(Mode::Accept);
    let (_dir, ctx, transport) = setup(&relay);
    queue_confirmation(&ctx, "asa@example.org");
    assert_eq!(drain_once(&ctx, &transport).await.unwrap(), 1);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .0
            .contains("<lokal-finansiering-bounces@lista.example.se>"),
        "{}",
        got[0].0
    );
    assert!(got[0].1.contains("<asa@example.org>"), "{}", got[0].1);
    assert!(got[0].2.contains("Auto-Submitted: auto-replied"));
    assert!(ctx.store.queued_mail().unwrap().is_empty());
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_later() {
    let (relay, got) = sink(Mode::Busy);
    let (_dir, ctx, transport) = setup(&relay);
    queue_confirmation(&ctx, "bo@example.org");
    drain_once(&ctx, &transport).await.unwrap();
    let queued = ctx.store.queued_mail().unwrap();
    assert_eq!(queued.len(), 1, "kept for a retry");
    assert_eq!(queued[0].attempts, 1);
    assert!(
        queued[0].next_attempt > ctx.now().timestamp(),
        "not due again at once"
    );
    assert!(queued[0].last_error.as_deref().unwrap().contains("451"));
    // Not due: a second round sends nothing.
    assert_eq!(drain_once(&ctx, &transport).await.unwrap(), 0);
    assert!(got.lock().unwrap().is_empty());
    assert!(ctx.store.dead_letters().unwrap().is_empty());
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_and_not_retried() {
    let (relay, _) = sink(Mode::NoSuchUser);
    let (_dir, ctx, transport) = setup(&relay);
    queue_confirmation(&ctx, "cia@example.org");
    drain_once(&ctx, &transport).await.unwrap();
    assert!(ctx.store.queued_mail().unwrap().is_empty());
    let dead = ctx.store.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].last_error.as_deref().unwrap().contains("550"),
        "{:?}",
        dead[0].last_error
    );
}

#[tokio::test]
async fn a_dead_relay_is_a_temporary_failure() {
    // A port that nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, ctx, transport) = setup(&format!("127.0.0.1:{port}"));
    queue_confirmation(&ctx, "dan@example.org");
    drain_once(&ctx, &transport).await.unwrap();
    let queued = ctx.store.queued_mail().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].attempts, 1);
}
