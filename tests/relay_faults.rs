//! Relay faults (issue 8, item 2): campaigns and the system-mail queue
//! against a loopback SMTP relay that can be told to answer 421, 451, 452
//! or 550, to drop the connection in the middle of DATA, or to stall.
//!
//! The relay records every message it accepted (a 250 after DATA), so each
//! test can count copies per recipient: without crashes the in-flight bound
//! is zero, so every recipient must have exactly one copy or none.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use utskick::campaign::{self, NewCampaign};
use utskick::daemon::build_context;
use utskick::daemon::config::Config;
use utskick::daemon::context::Context;
use utskick::outbound::{drain_once, Transport};
use utskick::store::{CampaignStatus, DeliveryState, Status};
use utskick::store::{Content, Kind};
use utskick::subscription::{self, answer::Request};

// ---------------------------------------------------------------------------
// The test relay
// ---------------------------------------------------------------------------

/// Where in the session a fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Right after the TCP accept, instead of the 220 greeting.
    Greeting,
    /// The answer to MAIL FROM.
    Mail,
    /// The answer to one RCPT TO (a rule with a prefix matches that recipient).
    Rcpt,
    /// After the 354, while the message arrives.
    Data,
}

#[derive(Clone, Debug)]
enum Action {
    /// Answer this line; a 421 also closes the connection, as RFC 5321 says.
    Reply(String),
    /// Close the socket without answering (in DATA: after reading part of
    /// the message).
    Drop,
    /// Read and discard everything, never answer, until the client leaves.
    Stall,
}

struct Rule {
    stage: Stage,
    action: Action,
    /// Only recipients whose local part starts with this (Rcpt, Data).
    prefix: Option<String>,
    /// How many more times it strikes; None: until cleared.
    remaining: Option<u32>,
    hits: u32,
}

/// One message the relay accepted with 250.
#[derive(Clone, Debug)]
struct Accepted {
    from: String,
    to: Vec<String>,
    data: String,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    accepted: Mutex<Vec<Accepted>>,
    sessions: AtomicU64,
    /// When non-zero, a session idle for this many milliseconds gets a 421
    /// and is closed, as relays do.
    idle_close_ms: AtomicU64,
    /// Sessions closed for idling, so a test can wait for the hang-up.
    idle_closed: AtomicU64,
}

impl Shared {
    /// The first live rule for `stage` that matches, consumed once.
    fn fault(&self, stage: Stage, rcpts: &[String]) -> Option<Action> {
        let mut rules = self.rules.lock().unwrap();
        for r in rules.iter_mut() {
            if r.stage != stage || r.remaining == Some(0) {
                continue;
            }
            if let Some(p) = &r.prefix {
                if !rcpts.iter().any(|a| local_part(a).starts_with(p.as_str())) {
                    continue;
                }
            }
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
            r.hits += 1;
            return Some(r.action.clone());
        }
        None
    }
}

struct Relay {
    addr: String,
    shared: Arc<Shared>,
}

impl Relay {
    fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let s = s.clone();
                std::thread::spawn(move || session(stream, &s));
            }
        });
        Relay { addr, shared }
    }

    /// Adds a fault: at `stage`, for recipients starting with `prefix`
    /// (None: anyone), `times` times (None: until `clear`).
    fn on(&self, stage: Stage, action: Action, prefix: Option<&str>, times: Option<u32>) {
        self.shared.rules.lock().unwrap().push(Rule {
            stage,
            action,
            prefix: prefix.map(str::to_string),
            remaining: times,
            hits: 0,
        });
    }

    fn reply(&self, stage: Stage, line: &str, prefix: Option<&str>, times: Option<u32>) {
        self.on(stage, Action::Reply(line.to_string()), prefix, times);
    }

    /// Back to normal.
    fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// How often the faults struck.
    fn hits(&self) -> u32 {
        self.shared
            .rules
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.hits)
            .sum()
    }

    fn sessions(&self) -> u64 {
        self.shared.sessions.load(Ordering::SeqCst)
    }

    fn accepted(&self) -> Vec<Accepted> {
        self.shared.accepted.lock().unwrap().clone()
    }

    /// Accepted copies per recipient, of mail whose envelope sender
    /// contains `from_part`.
    fn copies(&self, from_part: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for a in self.accepted() {
            if a.from.contains(from_part) {
                for to in a.to {
                    *out.entry(to.to_lowercase()).or_insert(0) += 1;
                }
            }
        }
        out
    }
}

fn local_part(addr: &str) -> &str {
    addr.split('@').next().unwrap_or(addr)
}

/// The address between < and > of a MAIL or RCPT line.
fn path_of(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}

/// Reads until the client leaves, never answering.
fn stall(r: &mut BufReader<TcpStream>) {
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn session(stream: TcpStream, shared: &Shared) {
    shared.sessions.fetch_add(1, Ordering::SeqCst);
    let _ = stream.set_nodelay(true);
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    match shared.fault(Stage::Greeting, &[]) {
        Some(Action::Reply(line)) => {
            let _ = w.write_all(format!("{line}\r\n").as_bytes());
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
        Some(Action::Drop) => {
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
        Some(Action::Stall) => return stall(&mut r),
        None => {}
    }
    if w.write_all(b"220 relay.test ESMTP\r\n").is_err() {
        return;
    }
    let mut from = String::new();
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = String::new();
    let idle = shared.idle_close_ms.load(Ordering::SeqCst);
    if idle > 0 {
        let _ = r
            .get_ref()
            .set_read_timeout(Some(std::time::Duration::from_millis(idle)));
    }
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => {
                let _ = w.write_all(b"421 4.4.2 relay.test idle timeout\r\n");
                let _ = w.shutdown(Shutdown::Both);
                shared.idle_closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-relay.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING".into()
        } else if upper.starts_with("MAIL") {
            match shared.fault(Stage::Mail, &[]) {
                Some(Action::Reply(l)) => {
                    let _ = w.write_all(format!("{l}\r\n").as_bytes());
                    if l.starts_with("421") {
                        let _ = w.shutdown(Shutdown::Both);
                        return;
                    }
                    continue;
                }
                Some(Action::Drop) => {
                    let _ = w.shutdown(Shutdown::Both);
                    return;
                }
                Some(Action::Stall) => return stall(&mut r),
                None => {}
            }
            from = path_of(&line);
            rcpts.clear();
            "250 2.1.0 ok".into()
        } else if upper.starts_with("RCPT") {
            let to = path_of(&line);
            match shared.fault(Stage::Rcpt, std::slice::from_ref(&to)) {
                Some(Action::Reply(l)) => {
                    if l.starts_with("421") {
                        let _ = w.write_all(format!("{l}\r\n").as_bytes());
                        let _ = w.shutdown(Shutdown::Both);
                        return;
                    }
                    l
                }
                Some(Action::Drop) => {
                    let _ = w.shutdown(Shutdown::Both);
                    return;
                }
                Some(Action::Stall) => return stall(&mut r),
                None => {
                    rcpts.push(to);
                    "250 2.1.5 ok".into()
                }
            }
        } else if upper.starts_with("DATA") {
            if rcpts.is_empty() {
                "554 5.5.1 no valid recipients".into()
            } else {
                let fault = shared.fault(Stage::Data, &rcpts);
                if let Some(Action::Stall) = fault {
                    return stall(&mut r);
                }
                if w.write_all(b"354 go ahead\r\n").is_err() {
                    return;
                }
                let mut data = String::new();
                let mut lines = 0;
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    lines += 1;
                    if matches!(fault, Some(Action::Drop)) && lines >= 5 {
                        // Part of the message read; gone without a word.
                        let _ = w.shutdown(Shutdown::Both);
                        return;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                match fault {
                    Some(Action::Reply(l)) => l,
                    _ => {
                        shared.accepted.lock().unwrap().push(Accepted {
                            from: from.clone(),
                            to: std::mem::take(&mut rcpts),
                            data,
                        });
                        "250 2.0.0 queued".into()
                    }
                }
            }
        } else if upper.starts_with("RSET") {
            rcpts.clear();
            "250 2.0.0 ok".into()
        } else if upper.starts_with("QUIT") {
            let _ = w.write_all(b"221 2.0.0 bye\r\n");
            return;
        } else {
            "250 ok".into()
        };
        if w.write_all(format!("{reply}\r\n").as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// The world: store, clock, campaign worker steps, SMTP transport
// ---------------------------------------------------------------------------

const LIST: &str = "lokal-finansiering";
/// Campaign mail goes out with a VERP envelope sender.
const CAMPAIGN_FROM: &str = "-bounces+";
/// Five recipient domains, so all four lanes work (two per domain at most).
const DOMAINS: &[&str] = &[
    "a.example.org",
    "b.example.org",
    "c.example.net",
    "d.example.net",
    "e.example.com",
];

struct World {
    _dir: tempfile::TempDir,
    ctx: Arc<Context>,
    transport: Transport,
    offset: Arc<AtomicI64>,
    next_due: HashMap<u64, i64>,
    stop: tokio::sync::watch::Receiver<bool>,
    _stop_tx: tokio::sync::watch::Sender<bool>,
}

impl World {
    fn new(relay: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = env!("CARGO_MANIFEST_DIR");
        let text = format!(
            "domain = \"lista.example.se\"\nbase_url = \"https://lista.example.se\"\ndata_dir = \"{}\"\nlists_dir = \"{root}/lists\"\ntemplates_dir = \"{root}/templates\"\n[outbound]\ntransport = \"smtp\"\nrelay = \"{relay}\"\nconnections = 4\ntimeout_secs = 2\n",
            dir.path().join("data").display()
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
            offset,
            next_due: HashMap::new(),
            stop,
            _stop_tx: stop_tx,
        }
    }

    fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// Adds confirmed subscribers `{prefix}{i}@{domain}`, spread over the
    /// domains; returns their addresses.
    fn add(&self, prefix: &str, n: usize) -> Vec<String> {
        let list = self.ctx.lists.get(LIST).unwrap();
        (0..n)
            .map(|i| {
                let email = format!("{prefix}{i}@{}", DOMAINS[i % DOMAINS.len()]);
                utskick::subscription::by_admin::admin_add(
                    &self.ctx,
                    list,
                    &email,
                    Some("Test"),
                    BTreeMap::new(),
                    "test",
                )
                .unwrap();
                email
            })
            .collect()
    }

    fn queue(&self) -> u64 {
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
                list: LIST.into(),
                content,
                filters: vec![],
                at: None,
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

    /// Every delivery of campaign `id`, with its subscriber's address.
    fn deliveries(&self, id: u64) -> Vec<(String, utskick::store::Delivery)> {
        self.ctx
            .store
            .deliveries_after(id, None, 10_000)
            .unwrap()
            .into_iter()
            .map(|d| {
                let s = self
                    .ctx
                    .store
                    .subscriber_by_id(d.subscriber)
                    .unwrap()
                    .unwrap();
                (s.email, d)
            })
            .collect()
    }

    /// Ticks, moving the clock `step` seconds between ticks, until the
    /// campaign is done; at most `max` steps.
    async fn run_until_done(&mut self, id: u64, step: i64, max: usize) {
        for _ in 0..max {
            if self.campaign(id).status == CampaignStatus::Done {
                return;
            }
            self.advance(step);
            self.tick().await;
        }
        let c = self.campaign(id);
        panic!(
            "campaign {id} not done after {max} steps of {step} s: {:?} sent {} failed {} of {}",
            c.status, c.sent, c.failed, c.total
        );
    }
}

/// Each address in `expected` has exactly one accepted copy, and nobody else has any.
fn assert_exactly_once(copies: &BTreeMap<String, usize>, expected: &[String]) {
    let dupes: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "sent twice: {dupes:?}");
    let mut want: Vec<String> = expected.iter().map(|e| e.to_lowercase()).collect();
    want.sort();
    let have: Vec<String> = copies.keys().cloned().collect();
    assert_eq!(have, want, "accepted copies differ from the recipients");
}

// ---------------------------------------------------------------------------
// 1. 421 / 451 / 452 for a while, then normal
// ---------------------------------------------------------------------------

#[tokio::test]
async fn temporary_refusals_defer_then_everyone_gets_exactly_one_copy() {
    let relay = Relay::start();
    let mut w = World::new(&relay.addr);
    let mut everyone = w.add("anna", 10);
    everyone.extend(w.add("bo", 10));
    everyone.extend(w.add("cia", 20));
    // The first two connections get 421 instead of a greeting, the next two
    // MAILs 421; every anna* gets 451 and every bo* 452 at RCPT.
    relay.reply(
        Stage::Greeting,
        "421 4.3.2 relay.test busy, try later",
        None,
        Some(2),
    );
    relay.reply(Stage::Mail, "421 4.3.2 shutting down", None, Some(2));
    relay.reply(
        Stage::Rcpt,
        "451 4.3.0 greylisted, try again",
        Some("anna"),
        None,
    );
    relay.reply(
        Stage::Rcpt,
        "452 4.5.3 too many recipients today",
        Some("bo"),
        None,
    );
    let id = w.queue();
    w.tick().await;

    let c = w.campaign(id);
    assert_eq!(c.status, CampaignStatus::Sending, "deferrals keep it open");
    assert_eq!(c.total, 40);
    assert_eq!(c.failed, 0, "a 4xx never fails a delivery at once");
    // 20 refused at RCPT, up to 4 more by the 421s (one may hit an anna/bo).
    assert!(c.sent <= 20 && c.sent >= 16, "sent {}", c.sent);
    assert_eq!(relay.copies(CAMPAIGN_FROM).len() as u64, c.sent);
    let ds = w.deliveries(id);
    for (email, d) in &ds {
        if email.starts_with("anna") || email.starts_with("bo") {
            assert_eq!(d.state, DeliveryState::Deferred, "{email}");
        }
        if d.state == DeliveryState::Deferred {
            assert_eq!(d.attempts, 1);
            let e = d.last_error.as_deref().unwrap();
            assert!(
                e.contains("451") || e.contains("452") || e.contains("421"),
                "{email}: {e}"
            );
        }
    }
    let deferred = ds
        .iter()
        .filter(|(_, d)| d.state == DeliveryState::Deferred);
    assert!(deferred
        .clone()
        .any(|(_, d)| d.last_error.as_deref().unwrap().contains("greylisted")));
    assert!(deferred.clone().any(|(_, d)| d
        .last_error
        .as_deref()
        .unwrap()
        .contains("too many recipients")));
    assert!(deferred
        .clone()
        .any(|(_, d)| d.last_error.as_deref().unwrap().contains("421")));

    // Not due yet: nothing more goes.
    w.tick().await;
    assert_eq!(w.campaign(id).sent, c.sent);

    // The relay recovers; past the first retry delay (5 min) everyone gets it.
    relay.clear();
    w.run_until_done(id, 6 * 60, 5).await;
    let c = w.campaign(id);
    assert_eq!(
        (c.status, c.sent, c.failed, c.skipped),
        (CampaignStatus::Done, 40, 0, 0)
    );
    assert_exactly_once(&relay.copies(CAMPAIGN_FROM), &everyone);
    for (email, d) in w.deliveries(id) {
        assert_eq!(d.state, DeliveryState::Sent, "{email}");
        assert_eq!(d.last_error, None, "{email}: cleared on success");
    }
}

// ---------------------------------------------------------------------------
// 2. The connection dropped in the middle of DATA
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_connection_dropped_mid_data_is_resent_and_counted_once() {
    let relay = Relay::start();
    let mut w = World::new(&relay.addr);
    let everyone = w.add("p", 30);
    relay.on(Stage::Data, Action::Drop, None, Some(6));
    let id = w.queue();
    w.tick().await;
    assert_eq!(relay.hits(), 6, "six messages cut off mid-DATA");
    let c = w.campaign(id);
    assert_eq!(
        (c.status, c.sent, c.failed),
        (CampaignStatus::Sending, 24, 0)
    );
    assert_eq!(
        relay.accepted().len(),
        24,
        "the cut-off ones were not accepted"
    );
    let deferred: Vec<_> = w
        .deliveries(id)
        .into_iter()
        .filter(|(_, d)| d.state == DeliveryState::Deferred)
        .collect();
    assert_eq!(deferred.len(), 6);
    for (email, d) in &deferred {
        assert_eq!(d.attempts, 1, "{email}");
        assert!(d.last_error.is_some(), "{email}");
        assert_eq!(relay.copies(CAMPAIGN_FROM).get(email), None, "{email}");
    }
    w.run_until_done(id, 6 * 60, 3).await;
    let c = w.campaign(id);
    assert_eq!((c.sent, c.failed), (30, 0));
    assert_exactly_once(&relay.copies(CAMPAIGN_FROM), &everyone);
    // Whole messages, not the fragments: each copy ends with the list footer.
    for a in relay.accepted() {
        assert!(a.data.contains("Hej Test!"), "{}", a.data);
        assert!(a.data.contains("List-Unsubscribe:"));
    }
}

// ---------------------------------------------------------------------------
// 3. 550 for some recipients
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_550_fails_those_deliveries_counts_a_bounce_and_the_rest_go() {
    let relay = Relay::start();
    let mut w = World::new(&relay.addr);
    let alive = w.add("alive", 20);
    let gone = w.add("gone", 8);
    relay.reply(
        Stage::Rcpt,
        "550 5.1.1 mailbox gone (relay.test says so)",
        Some("gone"),
        None,
    );
    let id = w.queue();
    w.tick().await;
    let c = w.campaign(id);
    assert_eq!(
        (c.status, c.total, c.sent, c.failed),
        (CampaignStatus::Done, 28, 20, 8)
    );
    assert_exactly_once(&relay.copies(CAMPAIGN_FROM), &alive);
    for (email, d) in w.deliveries(id) {
        let s = w.ctx.store.subscriber(LIST, &email).unwrap().unwrap();
        if gone.contains(&email) {
            assert_eq!(d.state, DeliveryState::Failed, "{email}");
            assert_eq!(d.attempts, 1, "{email}: a 5xx is not retried");
            let e = d.last_error.as_deref().unwrap();
            assert!(
                e.contains("550") && e.contains("mailbox gone (relay.test says so)"),
                "{e}"
            );
            assert_eq!(s.bounces, 1, "{email}");
        } else {
            assert_eq!(d.state, DeliveryState::Sent, "{email}");
            assert_eq!(s.bounces, 0, "{email}");
        }
    }
    // Nothing left to do: later ticks send nothing more.
    w.advance(3600);
    w.tick().await;
    assert_eq!(relay.accepted().len(), 20);
}

/// The README: "a 5xx fails that delivery and counts a bounce", and "A
/// permanent failure (5.x.x) adds 1 to the subscriber's bounce score …
/// At `limits.bounce_threshold` (3) a confirmed subscriber becomes
/// `bounced`". A relay's 550 only bumps `bounces`: the score stays 0, so
/// an address the relay refuses is mailed in every campaign, forever.
#[tokio::test]
async fn relay_550s_add_to_the_bounce_score_until_the_address_is_bounced() {
    let relay = Relay::start();
    let mut w = World::new(&relay.addr);
    w.add("alive", 2);
    let gone = w.add("gone", 1).remove(0);
    relay.reply(Stage::Rcpt, "550 5.1.1 mailbox gone", Some("gone"), None);
    for round in 1..=3 {
        let id = w.queue();
        w.tick().await;
        assert_eq!(w.campaign(id).status, CampaignStatus::Done);
        let s = w.ctx.store.subscriber(LIST, &gone).unwrap().unwrap();
        assert_eq!(s.bounces, round);
        assert!(
            s.bounce_score >= f64::from(round) - 0.01,
            "score {}",
            s.bounce_score
        );
    }
    let s = w.ctx.store.subscriber(LIST, &gone).unwrap().unwrap();
    assert_eq!(s.status, Status::Bounced);
}

// ---------------------------------------------------------------------------
// 4. The relay down beyond the retry window
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_relay_down_beyond_the_retry_window_fails_every_delivery_visibly() {
    // A port nobody listens on: connection refused, every time.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut w = World::new(&format!("127.0.0.1:{port}"));
    w.add("p", 25);
    let id = w.queue();
    w.tick().await;
    let c = w.campaign(id);
    assert_eq!(
        (c.status, c.sent, c.failed),
        (CampaignStatus::Sending, 0, 0)
    );

    // Half-hour steps; still trying after two and a half days.
    let mut elapsed = 0;
    while elapsed < 60 * 3600 {
        w.advance(1800);
        elapsed += 1800;
        w.tick().await;
    }
    let c = w.campaign(id);
    assert_eq!(
        (c.status, c.failed),
        (CampaignStatus::Sending, 0),
        "still within the window"
    );
    for (email, d) in w.deliveries(id) {
        assert_eq!(d.state, DeliveryState::Deferred, "{email}");
        assert!(d.attempts >= 9, "{email}: {} attempts", d.attempts);
    }

    // Past three days: given up, visibly.
    while elapsed < 4 * 86_400 {
        w.advance(1800);
        elapsed += 1800;
        w.tick().await;
    }
    let c = w.campaign(id);
    assert_eq!(
        (c.status, c.total, c.sent, c.failed, c.skipped),
        (CampaignStatus::Done, 25, 0, 25, 0),
        "nothing lost: failed = recipients"
    );
    assert!(c.finished_at.is_some());
    let ds = w.deliveries(id);
    assert_eq!(ds.len(), 25);
    for (email, d) in ds {
        assert_eq!(d.state, DeliveryState::Failed, "{email}");
        assert_eq!(d.attempts, 11, "{email}: the first try and ten retries");
        assert!(d.done_at.is_some());
        let e = d.last_error.as_deref().unwrap_or("");
        assert!(e.contains("cannot connect to the relay"), "{email}: {e:?}");
        // Our relay's fault, not the recipient's: no bounce counted.
        let s = w.ctx.store.subscriber(LIST, &email).unwrap().unwrap();
        assert_eq!((s.bounces, s.status), (0, Status::Confirmed), "{email}");
    }
}

// ---------------------------------------------------------------------------
// 5. The system-mail queue against 451, then OK
// ---------------------------------------------------------------------------

#[tokio::test]
async fn system_mail_is_deferred_by_451_then_sent_once() {
    let relay = Relay::start();
    let w = World::new(&relay.addr);
    let people: Vec<String> = (0..20)
        .map(|i| format!("ny{i}@{}", DOMAINS[i % DOMAINS.len()]))
        .collect();
    for email in &people {
        subscribe_by_mail(&w, email);
    }
    // Two greetings refused, then 451 to every RCPT.
    relay.reply(Stage::Greeting, "421 4.3.2 relay.test busy", None, Some(2));
    relay.reply(Stage::Rcpt, "451 4.3.0 try again later", None, None);
    assert_eq!(drain_once(&w.ctx, &w.transport).await.unwrap(), 20);
    assert!(relay.accepted().is_empty());
    let queued = w.ctx.store.queued_mail().unwrap();
    assert_eq!(queued.len(), 20, "all kept for a retry");
    for m in &queued {
        assert_eq!(m.attempts, 1);
        assert!(m.next_attempt > w.ctx.now().timestamp());
        let e = m.last_error.as_deref().unwrap();
        assert!(e.contains("451") || e.contains("421"), "{e}");
    }
    assert!(w.ctx.store.dead_letters().unwrap().is_empty());
    // Not due yet.
    assert_eq!(drain_once(&w.ctx, &w.transport).await.unwrap(), 0);

    relay.clear();
    w.advance(61);
    assert_eq!(drain_once(&w.ctx, &w.transport).await.unwrap(), 20);
    assert!(w.ctx.store.queued_mail().unwrap().is_empty());
    assert!(w.ctx.store.dead_letters().unwrap().is_empty());
    assert_exactly_once(&relay.copies("lokal-finansiering-bounces@"), &people);
    // Later rounds send nothing again.
    w.advance(3600);
    assert_eq!(drain_once(&w.ctx, &w.transport).await.unwrap(), 0);
    assert_eq!(relay.accepted().len(), 20);
}

// ---------------------------------------------------------------------------
// 6. A stalled relay
// ---------------------------------------------------------------------------

/// The relay accepts the connection and never says a word:
/// `outbound.timeout_secs` (2 s here) ends the attempt and defers the
/// delivery. Regression: lettre's async client times only the TCP connect,
/// so before `RelaySettings::timeout` a silent relay held the lane for ever.
#[tokio::test]
async fn a_stalled_relay_times_out_and_the_delivery_is_deferred() {
    let relay = Relay::start();
    let mut w = World::new(&relay.addr);
    let one = w.add("stilla", 1);
    relay.on(Stage::Greeting, Action::Stall, None, Some(1));
    let id = w.queue();
    let guard = std::time::Duration::from_secs(20);
    let started = std::time::Instant::now();
    let finished = tokio::time::timeout(guard, w.tick()).await;
    assert!(
        finished.is_ok(),
        "the send to a silent relay did not time out within {guard:?} (relay sessions: {})",
        relay.sessions()
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let (_, d) = w.deliveries(id).remove(0);
    assert_eq!(d.state, DeliveryState::Deferred, "not lost, not failed");
    assert!(d.last_error.is_some());
    // The relay answers again: the retry delivers it once.
    w.run_until_done(id, 6 * 60, 2).await;
    assert_exactly_once(&relay.copies(CAMPAIGN_FROM), &one);
}

/// A subscribe request by mail: queues a confirmation (system mail).
fn subscribe_by_mail(w: &World, email: &str) {
    let req = Request {
        list: w.ctx.lists.get(LIST).unwrap(),
        email,
        name: "Ny",
        method: "mail",
        evidence: format!("<{email}.t@example>"),
        in_reply_to: None,
        attributes: Default::default(),
    };
    subscription::subscribe(&w.ctx, &req).unwrap();
}

/// System mail goes over the worker's own lanes: a few sessions carry many
/// mails.
#[tokio::test]
async fn system_mail_reuses_sessions() {
    let relay = Relay::start();
    let w = World::new(&relay.addr);
    let people: Vec<String> = (0..20).map(|i| format!("ett{i}@a.example.org")).collect();
    for email in &people {
        subscribe_by_mail(&w, email);
    }
    assert_eq!(drain_once(&w.ctx, &w.transport).await.unwrap(), 20);
    assert!(
        relay.sessions() <= 4,
        "20 mails took {} sessions with 4 connections",
        relay.sessions()
    );
    assert_exactly_once(&relay.copies("lokal-finansiering-bounces@"), &people);
}

/// A relay closes a session it finds idle (here after 100 ms, with a 421).
/// The lane sees the hang-up before its next message and opens a fresh
/// session: nothing fails, nothing goes twice.
#[tokio::test]
async fn a_lane_replaces_a_session_the_relay_closed_while_idle() {
    let relay = Relay::start();
    relay.shared.idle_close_ms.store(100, Ordering::SeqCst);
    let w = World::new(&relay.addr);
    let mut lane = w.transport.lane();
    let people: Vec<String> = (0..3).map(|i| format!("p{i}@a.example.org")).collect();
    for to in &people {
        lane.send(
            "lokal-finansiering-bounces@lista.example.se",
            std::slice::from_ref(to),
            b"Subject: hej\r\n\r\nhej\r\n",
        )
        .await
        .unwrap_or_else(|e| panic!("to {to}: {e:?}"));
        // Wait for the relay's hang-up itself, not for a guess at its time.
        let closed = relay.shared.idle_closed.load(Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while relay.shared.idle_closed.load(Ordering::SeqCst) == closed {
            assert!(
                std::time::Instant::now() < deadline,
                "the relay never hung up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    lane.close().await;
    assert_eq!(relay.sessions(), 3, "one fresh session after each hang-up");
    assert_exactly_once(&relay.copies("lokal-finansiering-bounces@"), &people);
}

/// The same for the system-mail queue.
#[tokio::test]
async fn a_stalled_relay_times_out_for_system_mail() {
    let relay = Relay::start();
    let w = World::new(&relay.addr);
    let list = w.ctx.lists.get(LIST).unwrap();
    let req = Request {
        list,
        email: "stilla@a.example.org",
        name: "",
        method: "mail",
        evidence: "<s@example>".into(),
        in_reply_to: None,
        attributes: Default::default(),
    };
    subscription::subscribe(&w.ctx, &req).unwrap();
    relay.on(Stage::Data, Action::Stall, None, Some(1));
    let guard = std::time::Duration::from_secs(20);
    let done = tokio::time::timeout(guard, drain_once(&w.ctx, &w.transport)).await;
    assert!(
        done.is_ok(),
        "drain_once hung on a silent relay for {guard:?}"
    );
    let queued = w.ctx.store.queued_mail().unwrap();
    assert_eq!(queued.len(), 1, "kept for a retry");
    assert_eq!(queued[0].attempts, 1);
}
