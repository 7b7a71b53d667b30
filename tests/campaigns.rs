//! The campaign queue in process, sending through the relay transport to
//! a recording SMTP sink on loopback that can be told to fail, with a
//! clock the test moves.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use common::sink::{Mode, Sink};

use chrono::{DateTime, Duration, Utc};
use utskick::campaign::{self, NewCampaign, Steer};
use utskick::daemon::build_context;
use utskick::daemon::config::Config;
use utskick::daemon::context::Context;
use utskick::outbound::Transport;
use utskick::store::{CampaignStatus, DeliveryState, Status};
use utskick::store::{Content, Kind};
use utskick::subscription;

struct World {
    _dir: tempfile::TempDir,
    ctx: Arc<Context>,
    sink: Sink,
    transport: Transport,
    offset: Arc<AtomicI64>,
    next_due: std::collections::HashMap<u64, i64>,
    stop: tokio::sync::watch::Receiver<bool>,
    _stop_tx: tokio::sync::watch::Sender<bool>,
}

impl World {
    fn new(extra: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        let sink = Sink::start(Mode::Accept);
        let text = format!(
            "domain = \"lista.example.se\"\nbase_url = \"https://lista.example.se\"\ndata_dir = \"{}\"\nlists_dir = \"{root}/lists\"\ntemplates_dir = \"{root}/templates\"\n{extra}\n[outbound]\ntransport = \"smtp\"\nrelay = \"{}\"\n",
            dir.path().join("data").display(),
            sink.addr
        );
        let config = Config::parse(&text, "test.toml").unwrap();
        let transport = Transport::from_config(&config).unwrap();
        let offset = Arc::new(AtomicI64::new(0));
        let o = offset.clone();
        let clock = Arc::new(move || Utc::now() + Duration::seconds(o.load(Ordering::SeqCst)));
        let ctx = Arc::new(build_context(config, clock).unwrap());
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        World {
            _dir: dir,
            ctx,
            transport,
            sink,
            offset,
            next_due: Default::default(),
            stop,
            _stop_tx: stop_tx,
        }
    }

    fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    fn add(&self, email: &str, name: &str, region: &str) {
        let list = self.ctx.lists.get("lokal-finansiering").unwrap();
        let attrs = [("region".to_string(), region.to_string())]
            .into_iter()
            .collect();
        utskick::subscription::by_admin::admin_add(
            &self.ctx,
            list,
            email,
            Some(name),
            attrs,
            "test",
        )
        .unwrap();
    }

    fn queue(&self, filters: Vec<(String, String)>, at: Option<DateTime<Utc>>) -> u64 {
        let content = Content {
            kind: Kind::Newsletter,
            source: "test.md".into(),
            subject: "Nyhetsbrev december".into(),
            preheader: String::new(),
            markdown: "# Nyhetsbrev december\n\nHej {{name}}! Läs [handboken](https://example.se/handbok).\n".into(),
            title: String::new(),
            link: None,
            attachments: vec![],
        };
        campaign::create(
            &self.ctx,
            NewCampaign {
                list: "lokal-finansiering".into(),
                content,
                filters,
                at,
                draft: false,
            },
        )
        .unwrap()
        .id
    }

    async fn tick(&mut self) {
        campaign::tick(&self.ctx, &self.transport, &self.stop, &mut self.next_due)
            .await
            .unwrap();
    }

    fn campaign(&self, id: u64) -> utskick::store::Campaign {
        self.ctx.store.campaign(id).unwrap().unwrap()
    }

    /// Recipients of campaign mail (VERP envelope senders), in order.
    fn campaign_recipients(&self) -> Vec<String> {
        self.sink
            .messages()
            .iter()
            .filter(|(from, _, _)| from.contains("-bounces+"))
            .map(|(_, to, _)| to[0].clone())
            .collect()
    }
}

#[tokio::test]
async fn every_confirmed_subscriber_gets_one_personal_copy() {
    let mut w = World::new("");
    w.add("a@example.org", "Anna", "Jämtland");
    w.add("b@example.org", "Bo", "Skåne");
    w.add("c@example.org", "Cia", "Jämtland");
    // Not confirmed: never mailed.
    let list = w.ctx.lists.get("lokal-finansiering").unwrap();
    utskick::subscription::by_admin::admin_remove(&w.ctx, list, "c@example.org").unwrap();
    let id = w.queue(vec![], None);
    w.tick().await;
    let mut to = w.campaign_recipients();
    to.sort();
    assert_eq!(to, ["a@example.org", "b@example.org"]);
    let c = w.campaign(id);
    assert_eq!(c.status, CampaignStatus::Done);
    assert_eq!((c.total, c.sent, c.failed), (2, 2, 0));
    // Personal: each copy greets its reader and carries its own tokens.
    let sent = w.sink.messages();
    let anna = sent
        .iter()
        .find(|(_, to, _)| to[0] == "a@example.org")
        .unwrap();
    let text = String::from_utf8_lossy(&anna.2).to_string();
    let msg = mail_parser::MessageParser::default()
        .parse(&anna.2)
        .unwrap();
    assert!(msg.body_text(0).unwrap().contains("Hej Anna!"), "{text}");
    assert!(
        anna.0.starts_with("lokal-finansiering-bounces+") && anna.0.ends_with("@lista.example.se"),
        "{}",
        anna.0
    );
    let token = anna
        .0
        .split_once('+')
        .unwrap()
        .1
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let unfolded = text.replace("\r\n ", " ");
    assert!(
        unfolded.contains(&format!("https://lista.example.se/unsubscribe/{token}")),
        "{text}"
    );
    assert!(unfolded.contains(&format!(
        "mailto:lokal-finansiering-unsubscribe+{token}@lista.example.se"
    )));
    assert!(unfolded.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(unfolded.contains(&format!(
        "Reply-To: lokal-finansiering-reply+{token}@lista.example.se"
    )));
    // The token names Anna: the one-click path unsubscribes her and no one else.
    let t = utskick::token::Token::decode(&token).unwrap();
    assert_eq!(
        subscription::leave_by_token(&w.ctx, None, &t).unwrap(),
        Some(subscription::Left::Now)
    );
    assert_eq!(
        w.ctx
            .store
            .subscriber("lokal-finansiering", "a@example.org")
            .unwrap()
            .unwrap()
            .status,
        Status::Unsubscribed
    );
    assert_eq!(
        w.ctx
            .store
            .subscriber("lokal-finansiering", "b@example.org")
            .unwrap()
            .unwrap()
            .status,
        Status::Confirmed
    );
}

#[tokio::test]
async fn where_filters_choose_part_of_the_network() {
    let mut w = World::new("");
    w.add("a@example.org", "Anna", "Jämtland");
    w.add("b@example.org", "Bo", "Skåne");
    w.queue(vec![("region".into(), "jämtland".into())], None);
    w.tick().await;
    assert_eq!(w.campaign_recipients(), ["a@example.org"]);
}

#[tokio::test]
async fn a_transient_failure_is_retried_later_then_succeeds() {
    let mut w = World::new("");
    w.add("a@example.org", "Anna", "x");
    w.sink.fail_next("451 4.3.0 try again");
    let id = w.queue(vec![], None);
    w.tick().await;
    let c = w.campaign(id);
    assert_eq!((c.status, c.sent), (CampaignStatus::Sending, 0));
    // Not yet due.
    w.tick().await;
    assert!(w.campaign_recipients().is_empty());
    w.advance(10 * 60);
    w.tick().await;
    assert_eq!(w.campaign_recipients(), ["a@example.org"]);
    assert_eq!(w.campaign(id).status, CampaignStatus::Done);
}

#[tokio::test]
async fn a_permanent_failure_is_recorded_as_a_bounce() {
    let mut w = World::new("");
    w.add("a@example.org", "Anna", "x");
    w.add("b@example.org", "Bo", "x");
    w.sink.fail_next("550 5.1.1 no such user");
    let id = w.queue(vec![], None);
    w.tick().await;
    let c = w.campaign(id);
    assert_eq!((c.status, c.sent, c.failed), (CampaignStatus::Done, 1, 1));
    let bounced: Vec<_> = w
        .ctx
        .store
        .subscribers("lokal-finansiering")
        .unwrap()
        .into_iter()
        .filter(|s| s.bounces == 1)
        .collect();
    assert_eq!(bounced.len(), 1);
    let d = w.ctx.store.deliveries_after(id, None, 10).unwrap();
    assert_eq!(
        d.iter()
            .filter(|d| d.state == DeliveryState::Failed)
            .count(),
        1
    );
    // The relay's answer, as lettre words it.
    assert!(d
        .iter()
        .any(|d| d.last_error.as_deref() == Some("permanent error (550): 5.1.1 no such user")));
}

#[tokio::test]
async fn a_relay_down_for_a_while_delays_but_loses_nothing() {
    let mut w = World::new("");
    for i in 0..5 {
        w.add(&format!("p{i}@example.org"), "P", "x");
    }
    w.sink.down.store(true, Ordering::SeqCst);
    let id = w.queue(vec![], None);
    w.tick().await;
    assert_eq!(w.campaign(id).sent, 0);
    w.advance(6 * 60);
    w.tick().await;
    assert_eq!(w.campaign(id).sent, 0, "still down");
    w.sink.down.store(false, Ordering::SeqCst);
    w.advance(20 * 60);
    w.tick().await;
    let c = w.campaign(id);
    assert_eq!((c.status, c.sent), (CampaignStatus::Done, 5));
    assert_eq!(w.campaign_recipients().len(), 5);
}

#[tokio::test]
async fn pause_resume_and_cancel() {
    let mut w = World::new("");
    w.add("a@example.org", "Anna", "x");
    let id = w.queue(vec![], None);
    campaign::steer(&w.ctx, id, Steer::Pause).unwrap();
    w.tick().await;
    assert!(w.campaign_recipients().is_empty());
    assert_eq!(w.campaign(id).status, CampaignStatus::Paused);
    campaign::steer(&w.ctx, id, Steer::Resume).unwrap();
    w.tick().await;
    assert_eq!(w.campaign_recipients(), ["a@example.org"]);

    let id2 = w.queue(vec![], None);
    campaign::steer(&w.ctx, id2, Steer::Cancel).unwrap();
    w.tick().await;
    assert_eq!(w.campaign_recipients().len(), 1);
    assert_eq!(w.campaign(id2).status, CampaignStatus::Cancelled);
    assert!(
        campaign::steer(&w.ctx, id2, Steer::Resume).is_err(),
        "a cancelled campaign stays cancelled"
    );
}

#[tokio::test]
async fn a_campaign_scheduled_for_later_waits_for_its_time() {
    let mut w = World::new("");
    w.add("a@example.org", "Anna", "x");
    let at = w.ctx.now() + Duration::hours(1);
    let id = w.queue(vec![], Some(at));
    w.tick().await;
    assert_eq!(w.campaign(id).status, CampaignStatus::Scheduled);
    assert!(w.campaign_recipients().is_empty());
    w.advance(3601);
    w.tick().await;
    assert_eq!(w.campaign_recipients(), ["a@example.org"]);
}

#[tokio::test]
async fn someone_who_leaves_during_the_send_is_skipped() {
    let mut w = World::new("");
    w.add("a@example.org", "Anna", "x");
    w.add("b@example.org", "Bo", "x");
    // Both fail once; Bo leaves before the retry.
    w.sink.fail_next("451 busy");
    w.sink.fail_next("451 busy");
    let id = w.queue(vec![], None);
    w.tick().await;
    let list = w.ctx.lists.get("lokal-finansiering").unwrap();
    utskick::subscription::by_admin::admin_remove(&w.ctx, list, "b@example.org").unwrap();
    w.advance(10 * 60);
    w.tick().await;
    assert_eq!(w.campaign_recipients(), ["a@example.org"]);
    let c = w.campaign(id);
    assert_eq!((c.status, c.sent, c.skipped), (CampaignStatus::Done, 1, 1));
}

#[tokio::test]
async fn an_unknown_field_is_refused_at_queue_time_with_file_and_line() {
    let w = World::new("");
    let content = Content {
        kind: Kind::Newsletter,
        source: "december.md".into(),
        subject: "S".into(),
        preheader: String::new(),
        markdown: "Hej!\n\nVi ses {{nmae}}.\n".into(),
        title: String::new(),
        link: None,
        attachments: vec![],
    };
    let e = campaign::create(
        &w.ctx,
        NewCampaign {
            list: "lokal-finansiering".into(),
            content,
            filters: vec![],
            at: None,
            draft: false,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("december.md:3"), "{e}");
    assert!(w.ctx.store.campaigns().unwrap().is_empty());
    let e = campaign::check_filters(
        w.ctx.lists.get("lokal-finansiering").unwrap(),
        &[("roll".into(), "x".into())],
    )
    .unwrap_err();
    assert!(e.to_string().contains("no attribute"), "{e}");
}

/// Starts campaign `id` with the relay down: its recipients are frozen
/// and every copy is deferred.
async fn start_with_relay_down(w: &mut World) -> u64 {
    w.sink.down.store(true, Ordering::SeqCst);
    let id = w.queue(vec![], None);
    w.tick().await;
    let c = w.campaign(id);
    assert_eq!((c.status, c.total, c.sent), (CampaignStatus::Sending, 4, 0));
    w.sink.down.store(false, Ordering::SeqCst);
    id
}

/// The deliveries tree of a backup of the store, as (key, value) bytes.
fn stored_deliveries(w: &World) -> Vec<(Vec<u8>, Vec<u8>)> {
    use data_encoding::BASE64;
    let mut out = Vec::new();
    w.ctx
        .store
        .backup(&mut out, b"secret", w.ctx.now())
        .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["tree"] == "deliveries")
        .map(|v| {
            let b = |k: &str| BASE64.decode(v[k].as_str().unwrap().as_bytes()).unwrap();
            (b("key"), b("value"))
        })
        .collect()
}

/// Does any stored delivery hold `email`?
fn holds(w: &World, email: &str) -> bool {
    stored_deliveries(w)
        .iter()
        .any(|(_, v)| v.windows(email.len()).any(|x| x == email.as_bytes()))
}

#[tokio::test]
async fn people_who_leave_or_are_forgotten_while_a_campaign_is_paused_get_no_copy() {
    let mut w = World::new("");
    for (e, n) in [("a", "Anna"), ("b", "Bo"), ("c", "Cia"), ("d", "Dan")] {
        w.add(&format!("{e}@example.org"), n, "x");
    }
    let id = start_with_relay_down(&mut w).await;
    campaign::steer(&w.ctx, id, Steer::Pause).unwrap();
    let everyone = stored_deliveries(&w);
    assert_eq!(everyone.len(), 4);
    assert!(holds(&w, "d@example.org"), "the recipients are frozen");
    // Bo leaves by the one-click link of his copy; Cia is removed by an
    // owner; Dan is forgotten.
    let c = w.campaign(id);
    let bo = w
        .ctx
        .store
        .subscriber("lokal-finansiering", "b@example.org")
        .unwrap()
        .unwrap();
    let token = campaign::subscriber_token(&w.ctx, &c, &bo);
    let t = utskick::token::Token::decode(&token).unwrap();
    assert_eq!(
        subscription::leave_by_token(&w.ctx, None, &t).unwrap(),
        Some(subscription::Left::Now)
    );
    let list = w.ctx.lists.get("lokal-finansiering").unwrap();
    utskick::subscription::by_admin::admin_remove(&w.ctx, list, "c@example.org").unwrap();
    utskick::people::forget(&w.ctx, "d@example.org").unwrap();
    // No frozen copy of a forgotten address is left behind, nor of one
    // who left.
    assert!(
        !holds(&w, "d@example.org"),
        "forget scrubs the frozen recipients"
    );
    assert!(!holds(&w, "b@example.org"));
    assert!(!holds(&w, "c@example.org"));
    assert!(holds(&w, "a@example.org"));

    campaign::steer(&w.ctx, id, Steer::Resume).unwrap();
    w.advance(10 * 60);
    w.tick().await;
    assert_eq!(w.campaign_recipients(), ["a@example.org"]);
    let c = w.campaign(id);
    assert_eq!(
        (c.status, c.sent, c.skipped, c.failed),
        (CampaignStatus::Done, 1, 3, 0)
    );
    // Once sent, no delivery keeps an address.
    assert!(!holds(&w, "a@example.org"));
    let d = w.ctx.store.deliveries_after(id, None, 10).unwrap();
    assert_eq!(
        d.iter()
            .filter(|d| d.state == DeliveryState::Skipped)
            .count(),
        3
    );
    assert!(d.iter().all(|d| d.to.is_none()));
}

#[tokio::test]
async fn a_campaign_left_unfinished_by_an_older_version_finishes() {
    use data_encoding::BASE64;
    let mut old = World::new("");
    for (e, n) in [("a", "Anna"), ("b", "Bo"), ("c", "Cia"), ("d", "Dan")] {
        old.add(&format!("{e}@example.org"), n, "x");
    }
    let id = start_with_relay_down(&mut old).await;
    // The same store as an older version left it: each delivery pending,
    // as JSON, without a frozen recipient.
    let mut backup = Vec::new();
    old.ctx
        .store
        .backup(&mut backup, b"secret", old.ctx.now())
        .unwrap();
    let mut rewritten = String::new();
    for (i, line) in String::from_utf8(backup).unwrap().lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if i > 0 && v["tree"] == "deliveries" {
            let key = BASE64
                .decode(v["key"].as_str().unwrap().as_bytes())
                .unwrap();
            let subscriber = u64::from_be_bytes(key[8..].try_into().unwrap());
            let json = format!(
                r#"{{"v":1,"campaign":{id},"subscriber":{subscriber},"state":"pending","attempts":0,"next_attempt":0,"last_error":null,"done_at":null}}"#
            );
            v["value"] = BASE64.encode(json.as_bytes()).into();
        }
        rewritten.push_str(&format!("{v}\n"));
    }
    let mut w = World::new("");
    w.ctx
        .store
        .restore(std::io::Cursor::new(rewritten))
        .unwrap();
    assert_eq!(
        w.ctx.store.deliveries_after(id, None, 10).unwrap()[0].to,
        None
    );
    // Cia leaves before the old records are sent: skipped.
    let list = w.ctx.lists.get("lokal-finansiering").unwrap();
    utskick::subscription::by_admin::admin_remove(&w.ctx, list, "c@example.org").unwrap();
    w.tick().await;
    let mut to = w.campaign_recipients();
    to.sort();
    assert_eq!(to, ["a@example.org", "b@example.org", "d@example.org"]);
    let c = w.campaign(id);
    assert_eq!(
        (c.status, c.total, c.sent, c.skipped),
        (CampaignStatus::Done, 4, 3, 1)
    );
}
