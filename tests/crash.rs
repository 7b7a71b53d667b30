//! Seeded crash tests (issue 8, item 1): the real binary is killed with
//! SIGKILL at a random, seeded moment
//!
//! - during an inbound flood of subscribe mail and confirmation replies from
//!   2–4 concurrent SMTP connections (file transport), and
//! - during a send to many recipients (1,000 by default) through an SMTP
//!   relay on loopback,
//!
//! then restarted, and checked: every message that got a 250 has its effect
//! and its answer goes out; every confirmation that went out carries a live
//! token; every recipient gets the newsletter; duplicates stay within the
//! messages the lanes may send ahead of the flush; the campaign finishes.
//!
//! Environment:
//! - `CRASH_SEEDS=N` (default 20): seeds 0..N; each seed runs both
//!   scenarios (a seed passes when both do).
//! - `CRASH_SEED=S`: run seed S only (to replay a failure).
//! - `CRASH_SCENARIO=flood|send`: run one scenario only.
//! - `CRASH_RECIPIENTS=N` (default 1000): recipients in the send scenario.
//!
//! Each seed prints one line (straight to stderr, so it shows without
//! `--nocapture`), and the run ends with `crash seeds: P passed, F failed`.
//! The seed fixes every choice the test makes (client count, message mix,
//! kill point, relay delay, connections); thread scheduling is the OS's, so
//! a replay explores the same plan, not the same interleaving.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::sink::{Mode, Sink};
use common::{dot_stuff, plain, Daemon, DOMAIN};
use utskick::campaign::UNSYNCED_PER_LANE;

const LIST: &str = "lokal-finansiering";

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

/// One line on the real stderr: the test harness captures `eprintln!`, not this.
fn say(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

#[test]
fn crash_seeds() {
    let seeds: Vec<u64> = match env_u64("CRASH_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("CRASH_SEEDS").unwrap_or(20)).collect(),
    };
    let recipients = env_u64("CRASH_RECIPIENTS").unwrap_or(1000) as usize;
    let only = std::env::var("CRASH_SCENARIO")
        .ok()
        .filter(|s| !s.is_empty());
    if let Some(o) = &only {
        assert!(
            o == "flood" || o == "send",
            "CRASH_SCENARIO={o:?}: flood or send"
        );
    }
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut passed = 0;
    for &seed in &seeds {
        let t = Instant::now();
        let mut parts = Vec::new();
        let mut failed = Vec::new();
        for (scenario, run) in [
            ("flood", &flood as &dyn Fn(u64) -> String),
            ("send", &|seed| send(seed, recipients)),
        ] {
            if only.as_deref().is_some_and(|o| o != scenario) {
                continue;
            }
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed))) {
                Ok(summary) => parts.push(format!("{scenario}: {summary}")),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into());
                    let first = msg.lines().next().unwrap_or_default();
                    parts.push(format!("{scenario}: FAILED: {}", clip(first, 300)));
                    failed.push(format!("seed {seed} ({scenario}): {}", tail(&msg, 6000)));
                }
            }
        }
        let secs = t.elapsed().as_secs_f64();
        if failed.is_empty() {
            passed += 1;
            say(&format!(
                "crash seed {seed:>3} ok   {secs:4.1}s | {}",
                parts.join(" | ")
            ));
        } else {
            say(&format!(
                "crash seed {seed:>3} FAIL {secs:4.1}s | {} | replay: CRASH_SEED={seed}",
                parts.join(" | ")
            ));
            failures.extend(failed);
        }
    }
    say(&format!(
        "crash seeds: {passed} passed, {} failed ({:.0}s)",
        seeds.len() - passed,
        started.elapsed().as_secs_f64()
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

fn tail(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        s.to_string()
    } else {
        format!("…{}", s.chars().skip(count - n).collect::<String>())
    }
}

fn log_tail(d: &Daemon) -> String {
    let log = d.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn wait_until(what: &str, limit: Duration, d: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}\n{}",
            log_tail(d)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// An SMTP client that reports a dead server instead of panicking.

struct Smtp {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Smtp {
    fn connect(addr: &str) -> std::io::Result<Smtp> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_write_timeout(Some(Duration::from_secs(20)))?;
        s.set_nodelay(true)?;
        let mut c = Smtp {
            r: BufReader::new(s.try_clone()?),
            w: s,
        };
        let greeting = c.reply()?;
        if !greeting.starts_with("220") {
            return Err(std::io::Error::other(greeting));
        }
        let ehlo = c.cmd("EHLO crash.example")?;
        if !ehlo.starts_with("250") {
            return Err(std::io::Error::other(ehlo));
        }
        Ok(c)
    }

    fn reply(&mut self) -> std::io::Result<String> {
        let mut all = Vec::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end().to_string();
            let more = line.as_bytes().get(3) == Some(&b'-');
            all.push(line);
            if !more {
                return Ok(all.join("\n"));
            }
        }
    }

    fn cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.w.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// One transaction; the reply to the end of DATA (or the first refusal).
    fn send(&mut self, from: &str, to: &str, message: &str) -> std::io::Result<String> {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"))?;
        if !r.starts_with("250") {
            return Ok(r);
        }
        let r = self.cmd(&format!("RCPT TO:<{to}>"))?;
        if !r.starts_with("250") {
            self.cmd("RSET")?;
            return Ok(r);
        }
        let r = self.cmd("DATA")?;
        if !r.starts_with("354") {
            return Ok(r);
        }
        self.w.write_all(&dot_stuff(message))?;
        self.reply()
    }

    fn quit(mut self) {
        let _ = self.cmd("QUIT");
    }
}

// ---------------------------------------------------------------------------
// The file outbox, read incrementally.

#[derive(Debug, Clone)]
struct OutMail {
    to: String,
    subject: String,
    reply_to: String,
}

impl OutMail {
    fn is_confirmation(&self) -> bool {
        self.reply_to.starts_with(&format!("{LIST}-confirm+"))
    }

    fn is_welcome(&self) -> bool {
        self.subject.starts_with("Välkommen till")
    }
}

#[derive(Default)]
struct Outbox {
    read: HashMap<PathBuf, OutMail>,
}

impl Outbox {
    /// Reads mails not read before; returns them. A `.json` that does not
    /// parse yet (being written, or cut by the kill) is skipped this round.
    fn scan(&mut self, dir: &Path) -> Vec<OutMail> {
        let mut fresh = Vec::new();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return fresh;
        };
        for p in rd.filter_map(|e| e.ok()).map(|e| e.path()) {
            if p.extension().is_none_or(|x| x != "json") || self.read.contains_key(&p) {
                continue;
            }
            let Some(env) = std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            else {
                continue;
            };
            let Ok(raw) = std::fs::read(p.with_extension("eml")) else {
                continue;
            };
            let Some(msg) = mail_parser::MessageParser::default().parse(&raw) else {
                continue;
            };
            let m = OutMail {
                to: env["forward_path"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase(),
                subject: msg.subject().unwrap_or_default().to_string(),
                reply_to: msg
                    .reply_to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .unwrap_or_default()
                    .to_string(),
            };
            self.read.insert(p, m.clone());
            fresh.push(m);
        }
        fresh
    }

    fn all(&self) -> impl Iterator<Item = &OutMail> {
        self.read.values()
    }
}

// ---------------------------------------------------------------------------
// Scenario 1: an inbound flood of subscribe mail and confirmation replies.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subscribe,
    Confirm,
}

#[derive(Default)]
struct Flood {
    /// Confirmations seen in the outbox and not yet answered: (person, Reply-To).
    confirmations: Mutex<Vec<(String, String)>>,
    /// Messages that got a 250: (kind, person).
    acked: Mutex<Vec<(Kind, String)>>,
    /// Messages sent whose answer never came (the kill cut them).
    cut: Mutex<Vec<(Kind, String)>>,
    acks: AtomicUsize,
    stop: AtomicBool,
}

fn subscribe_mail(email: &str) -> String {
    let to = format!("{LIST}-subscribe@{DOMAIN}");
    plain(email, &to, "prenumerera", "")
}

fn confirm_mail(email: &str, reply_to: &str) -> String {
    plain(
        email,
        reply_to,
        "SV: Bekräfta din prenumeration",
        "Ja tack!\r\n\r\n> Bekräfta",
    )
}

fn flood_client(addr: String, seed: u64, t: usize, shared: Arc<Flood>) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(t as u64 + 1));
    let confirm_share = rng.gen_range(0.2..0.6);
    let mut conn: Option<Smtp> = None;
    let mut i = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        if conn.is_none() {
            match Smtp::connect(&addr) {
                Ok(c) => conn = Some(c),
                Err(_) => return, // the daemon is gone
            }
        }
        let c = conn.as_mut().unwrap();
        let answer = if rng.gen_bool(confirm_share) {
            shared.confirmations.lock().unwrap().pop()
        } else {
            None
        };
        let (kind, email, message, to) = match answer {
            Some((email, reply_to)) => (
                Kind::Confirm,
                email.clone(),
                confirm_mail(&email, &reply_to),
                reply_to,
            ),
            None => {
                i += 1;
                // Distinct people, spread over a few domains.
                let email = format!("s{seed}t{t}n{i}@d{}.example.org", rng.gen_range(0..5));
                (
                    Kind::Subscribe,
                    email.clone(),
                    subscribe_mail(&email),
                    format!("{LIST}-subscribe@{DOMAIN}"),
                )
            }
        };
        match c.send(&email, &to, &message) {
            Ok(r) if r.starts_with("250") => {
                shared.acked.lock().unwrap().push((kind, email));
                shared.acks.fetch_add(1, Ordering::SeqCst);
            }
            Ok(r) => panic!("{kind:?} from {email} refused: {r}"),
            Err(_) => {
                shared.cut.lock().unwrap().push((kind, email));
                return;
            }
        }
        // Now and then a client hangs up and comes back.
        if rng.gen_ratio(1, 8) {
            conn.take().unwrap().quit();
        }
    }
}

fn flood(seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let clients = rng.gen_range(2..=4);
    let kill_at = rng.gen_range(3..=150);
    let mut d = Daemon::start("");
    let outbox_dir = d.data().join("outbox");
    let shared = Arc::new(Flood::default());
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let (addr, shared) = (d.smtp.clone(), shared.clone());
            std::thread::spawn(move || flood_client(addr, seed, t, shared))
        })
        .collect();

    // Feed the confirmations that arrive to the clients, and kill at the
    // chosen number of acknowledgements.
    let mut outbox = Outbox::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for m in outbox.scan(&outbox_dir) {
            if m.is_confirmation() {
                shared
                    .confirmations
                    .lock()
                    .unwrap()
                    .push((m.to.clone(), m.reply_to.clone()));
            }
        }
        if shared.acks.load(Ordering::SeqCst) >= kill_at {
            break;
        }
        if threads.iter().all(|t| t.is_finished()) {
            break; // a client failed; its panic is reported below
        }
        assert!(
            Instant::now() < deadline,
            "the flood never reached {kill_at} acks"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    d.kill9();
    shared.stop.store(true, Ordering::SeqCst);
    for t in threads {
        if let Err(p) = t.join() {
            std::panic::resume_unwind(p);
        }
    }
    let acked = shared.acked.lock().unwrap().clone();
    let cut = shared.cut.lock().unwrap().len();
    assert!(
        acked.len() >= kill_at,
        "the clients stopped at {} acks, before the kill point {kill_at}\n{}",
        acked.len(),
        log_tail(&d)
    );
    let subscribed: BTreeSet<String> = acked
        .iter()
        .filter(|(k, _)| *k == Kind::Subscribe)
        .map(|(_, e)| e.clone())
        .collect();
    let confirmed: BTreeSet<String> = acked
        .iter()
        .filter(|(k, _)| *k == Kind::Confirm)
        .map(|(_, e)| e.clone())
        .collect();

    d.spawn();

    // Every acknowledged message has its effect.
    let status: BTreeMap<String, String> = d
        .subscribers(LIST)
        .into_iter()
        .map(|s| {
            (
                s["email"].as_str().unwrap().to_lowercase(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let lost: Vec<&String> = subscribed
        .iter()
        .filter(|e| {
            !matches!(
                status.get(*e).map(String::as_str),
                Some("pending" | "confirmed")
            )
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged subscribes have no pending or confirmed record after kill -9 at {} acks: {lost:?}\n{}",
        lost.len(),
        subscribed.len(),
        acked.len(),
        log_tail(&d)
    );
    let unconfirmed: Vec<(&String, Option<&String>)> = confirmed
        .iter()
        .map(|e| (e, status.get(e)))
        .filter(|(_, s)| s.map(String::as_str) != Some("confirmed"))
        .collect();
    assert!(
        unconfirmed.is_empty(),
        "acknowledged confirmation replies did not confirm: {unconfirmed:?}\n{}",
        log_tail(&d)
    );

    // Every acknowledged subscribe gets its confirmation, and every
    // acknowledged confirmation its welcome: already out, or out after restart.
    let missing = |outbox: &Outbox| -> (Vec<String>, Vec<String>) {
        let conf: HashSet<&str> = outbox
            .all()
            .filter(|m| m.is_confirmation())
            .map(|m| m.to.as_str())
            .collect();
        let welcome: HashSet<&str> = outbox
            .all()
            .filter(|m| m.is_welcome())
            .map(|m| m.to.as_str())
            .collect();
        (
            subscribed
                .iter()
                .filter(|e| !conf.contains(e.as_str()))
                .cloned()
                .collect(),
            confirmed
                .iter()
                .filter(|e| !welcome.contains(e.as_str()))
                .cloned()
                .collect(),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        outbox.scan(&outbox_dir);
        let (no_confirmation, no_welcome) = missing(&outbox);
        if no_confirmation.is_empty() && no_welcome.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after restart, acknowledged mail never got its answer: no confirmation to {no_confirmation:?}, no welcome to {no_welcome:?}\n{}",
            log_tail(&d)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Every confirmation that went out, before or after the kill, carries a
    // live token: replying to each one now confirms its person.
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    for m in outbox.all().filter(|m| m.is_confirmation()) {
        pending.insert(m.to.clone(), m.reply_to.clone());
    }
    let mut c = Smtp::connect(&d.smtp).expect("the restarted daemon answers SMTP");
    for (email, reply_to) in &pending {
        if status.get(email).map(String::as_str) == Some("confirmed") {
            continue;
        }
        let r = c
            .send(email, reply_to, &confirm_mail(email, reply_to))
            .unwrap();
        assert!(r.starts_with("250"), "confirm {email} after restart: {r}");
    }
    c.quit();
    let after: BTreeMap<String, String> = d
        .subscribers(LIST)
        .into_iter()
        .map(|s| {
            (
                s["email"].as_str().unwrap().to_lowercase(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let dead: Vec<(&String, Option<&String>)> = pending
        .keys()
        .map(|e| (e, after.get(e)))
        .filter(|(_, s)| s.map(String::as_str) != Some("confirmed"))
        .collect();
    assert!(
        dead.is_empty(),
        "confirmations that went out carry tokens that no longer confirm: {dead:?}\n{}",
        log_tail(&d)
    );
    let _ = d.terminate();
    format!(
        "{clients} clients, killed at {} acks ({} subscribe, {} confirm, {cut} cut), {} confirmations out, all confirmed after restart",
        acked.len(),
        subscribed.len(),
        confirmed.len(),
        pending.len()
    )
}

// ---------------------------------------------------------------------------
// Scenario 2: a send to many recipients through a relay.

fn campaign_status(d: &Daemon, id: &str) -> serde_json::Value {
    let out = d.cli_ok(&["status", id, "--json"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("status {id}: {e}: {out}"))
}

fn send(seed: u64, n: usize) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let connections = rng.gen_range(2..=4usize);
    let delay_ms = rng.gen_range(1..=3u64);
    // Where to kill: right after queueing (while the recipients are being
    // fixed), or after k messages reached the relay.
    let kill_after = if rng.gen_ratio(1, 8) {
        0
    } else {
        rng.gen_range(1..(n * 9 / 10).max(2))
    };
    let second_kill = rng
        .gen_ratio(1, 3)
        .then(|| rng.gen_range(1..=(n / 5).max(1)));
    let sink = Sink::start(Mode::Accept);
    let mut d = Daemon::start(&format!(
        "[outbound]\ntransport = \"smtp\"\nrelay = \"{}\"\nconnections = {connections}\n",
        sink.addr
    ));

    // The recipients, in one import; spread over domains so every lane works
    // (the daemon sends at most two at a time to one domain).
    let mut csv = String::from("email,name,region\n");
    let mut expected = BTreeSet::new();
    for i in 0..n {
        let email = format!("r{i:04}@d{}.example.org", i % 8);
        csv.push_str(&format!("{email},Person {i},Jämtland\n"));
        expected.insert(email);
    }
    let csv_path = d.dir.path().join("people.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let t = Instant::now();
    let out = d.cli_ok(&[
        "import",
        LIST,
        csv_path.to_str().unwrap(),
        "--consent",
        "crash test",
    ]);
    assert!(out.contains(&format!("{n} added")), "{out}");
    let import_secs = t.elapsed().as_secs_f64();

    let md = d.dir.path().join("nyhet.md");
    std::fs::write(
        &md,
        "---\nsubject: Nyhetsbrev\n---\n# Nyhetsbrev\n\nHej {{name}}!\n\nHandboken är klar.\n",
    )
    .unwrap();
    sink.delay_ms.store(delay_ms, Ordering::SeqCst);
    let t = Instant::now();
    let out = d.cli_ok(&["queue", LIST, md.to_str().unwrap()]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let newsletters = |sink: &Sink| sink.recipients("-bounces+").len();
    let wait_for_sent = |d: &Daemon, sink: &Sink, k: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while newsletters(sink) < k {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} sent before the kill point {k}\n{}",
                newsletters(sink),
                log_tail(d)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_for_sent(&d, &sink, kill_after);
    d.kill9();
    let before = newsletters(&sink);
    let rate = before as f64 / t.elapsed().as_secs_f64();
    let mut kills = 1;
    let mut killed_at = vec![before.to_string()];
    // Sometimes a second kill, while the restarted daemon resumes the send.
    if let Some(more) = second_kill {
        if before + more + 2 * connections < n {
            d.spawn();
            wait_for_sent(&d, &sink, before + more);
            d.kill9();
            kills += 1;
            killed_at.push(newsletters(&sink).to_string());
        }
    }
    sink.delay_ms.store(0, Ordering::SeqCst);

    d.spawn();
    let t = Instant::now();
    wait_until(
        "the campaign to finish",
        Duration::from_secs(150),
        &d,
        || campaign_status(&d, &id)["status"] == "done",
    );
    let resume_secs = t.elapsed().as_secs_f64();

    let got = sink.recipients("-bounces+");
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &got {
        *copies.entry(r.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !copies.contains_key(e.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {n} recipients never got the newsletter (killed after {killed_at:?} sent): {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let strangers: Vec<&&str> = copies.keys().filter(|r| !expected.contains(**r)).collect();
    assert!(strangers.is_empty(), "sent to strangers: {strangers:?}");
    let duplicates = got.len() - copies.len();
    let twice: Vec<(&&str, &usize)> = copies.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        duplicates <= UNSYNCED_PER_LANE * connections * kills,
        "{duplicates} duplicates after {kills} kill -9 with {connections} connections, each {UNSYNCED_PER_LANE} ahead of the flush (killed after {killed_at:?} sent): {twice:?}"
    );
    let s = campaign_status(&d, &id);
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(s["total"], n as u64, "{s}");
    assert_eq!(s["sent"], n as u64, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["skipped"], 0, "{s}");
    let _ = d.terminate();
    format!(
        "{n} recipients, {connections} connections, relay delay {delay_ms} ms, kill point {kill_after}: killed after {} sent ({rate:.0}/s), {duplicates} duplicates, done in {resume_secs:.1}s after restart (import {import_secs:.1}s)",
        killed_at.join(" and ")
    )
}
