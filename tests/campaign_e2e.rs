//! End to end: the real binary queues a newsletter from a Markdown file and
//! sends it through SMTP to a sink on loopback, surviving a kill -9.

mod common;

use std::time::{Duration, Instant};

use common::sink::{Mode, Sink};
use common::Daemon;
use mail_parser::MimeHeaders;
use utskick::campaign::UNSYNCED_PER_LANE;

const CONNECTIONS: usize = 4;

fn smtp_daemon(sink: &Sink) -> Daemon {
    Daemon::start(&format!(
        "[outbound]\ntransport = \"smtp\"\nrelay = \"{}\"\nconnections = {CONNECTIONS}\n",
        sink.addr
    ))
}

fn status(d: &Daemon, id: &str) -> serde_json::Value {
    let out = d.cli_ok(&["status", id, "--json"]);
    serde_json::from_str(out.trim()).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_newsletter_reaches_every_subscriber_through_a_kill_9() {
    let sink = Sink::start(Mode::Accept);
    let mut d = smtp_daemon(&sink);
    let n = 160;
    for i in 0..n {
        let region = if i % 2 == 0 { "Jämtland" } else { "Skåne" };
        d.cli_ok(&[
            "add",
            "lokal-finansiering",
            &format!("p{i:03}@example.org"),
            "--name",
            &format!("Person {i}"),
            "--attr",
            &format!("region={region}"),
            "--consent",
            "test",
        ]);
    }
    let md = d.dir.path().join("december.md");
    std::fs::write(
        &md,
        "---\nsubject: Nyhetsbrev december\npreheader: Handboken är klar\n---\n# Nyhetsbrev december\n\nHej {{name}}!\n\nHandboken om lokal finansiering är klar.\n",
    )
    .unwrap();
    // Dry run: counts, queues nothing.
    let out = d.cli_ok(&[
        "queue",
        "lokal-finansiering",
        md.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(out.contains(&format!("{n} recipients")), "{out}");
    let out = d.cli_ok(&[
        "queue",
        "lokal-finansiering",
        md.to_str().unwrap(),
        "--where",
        "region=Jämtland",
        "--dry-run",
    ]);
    assert!(out.contains(&format!("{} recipients", n / 2)), "{out}");

    // Slow relay, so the kill lands mid-send.
    sink.delay_ms.store(20, std::sync::atomic::Ordering::SeqCst);
    let out = d.cli_ok(&["queue", "lokal-finansiering", md.to_str().unwrap()]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    // Killed with more copies out than the bound allows duplicates, so
    // the bound below can fail.
    let window = UNSYNCED_PER_LANE * CONNECTIONS;
    wait_for("the send to be well under way", || {
        sink.recipients("-bounces+").len() > 2 * window
    });
    d.kill9();
    let before = sink.recipients("-bounces+").len();
    assert!(before < n, "the kill came too late to test anything");
    sink.delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    d.spawn();
    wait_for("the campaign to finish", || {
        status(&d, &id)["status"] == "done"
    });

    let got = sink.recipients("-bounces+");
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), n, "every subscriber got the newsletter");
    let duplicates = got.len() - unique.len();
    assert!(
        duplicates <= UNSYNCED_PER_LANE * CONNECTIONS,
        "{duplicates} duplicates after a kill -9 with {CONNECTIONS} connections, each {UNSYNCED_PER_LANE} ahead of the flush"
    );
    let s = status(&d, &id);
    assert_eq!(s["sent"], n as u64);
    assert_eq!(s["total"], n as u64);

    // Each copy is personal.
    let received = sink.got.lock().unwrap();
    let copy = received
        .iter()
        .find(|(from, to, _)| from.contains("-bounces+") && to.contains("<p007@example.org>"))
        .unwrap();
    assert!(copy.2.contains("Person 7"), "{}", copy.2);
    assert!(copy
        .2
        .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    drop(received);

    // The campaigns listing shows it.
    let list = d.cli_ok(&["campaigns"]);
    assert!(list.contains(&id) && list.contains("done"), "{list}");
}

#[test]
fn the_one_click_link_unsubscribes_without_a_page() {
    let sink = Sink::start(Mode::Accept);
    let mut d = smtp_daemon(&sink);
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "eva@example.org",
        "--consent",
        "test",
    ]);
    let md = d.dir.path().join("nyhet.md");
    std::fs::write(&md, "# Nyhet\n\nHej {{name}}!\n").unwrap();
    d.cli_ok(&["queue", "lokal-finansiering", md.to_str().unwrap()]);
    wait_for("the newsletter", || {
        !sink.recipients("-bounces+").is_empty()
    });
    let from = sink
        .got
        .lock()
        .unwrap()
        .iter()
        .find(|(f, _, _)| f.contains("-bounces+"))
        .unwrap()
        .0
        .clone();
    let token = from
        .split_once('+')
        .unwrap()
        .1
        .split('@')
        .next()
        .unwrap()
        .to_string();
    // RFC 8058: a POST with the one-click body, no page, answers 200.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&d.http).unwrap();
    let body = "List-Unsubscribe=One-Click";
    write!(
        s,
        "POST /unsubscribe/{token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(
        d.status_of("lokal-finansiering", "eva@example.org")
            .as_deref(),
        Some("unsubscribed")
    );
    let _ = d.terminate();
}

#[test]
fn an_announcement_with_an_attachment_and_a_test_copy() {
    let sink = Sink::start(Mode::Accept);
    let d = smtp_daemon(&sink);
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "kim@example.org",
        "--name",
        "Kim",
        "--consent",
        "test",
    ]);
    let pdf = d.dir.path().join("handbok.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n% test\n").unwrap();
    // One test copy first, to the leader only.
    let md = d.dir.path().join("intro.md");
    std::fs::write(&md, "# Handboken\n\nHej {{name}}! Här är handboken.\n").unwrap();
    let out = d.cli_ok(&[
        "preview",
        "lokal-finansiering",
        md.to_str().unwrap(),
        "--to",
        "leader@example.org",
    ]);
    assert!(out.contains("test copy queued"), "{out}");
    wait_for("the test copy", || {
        sink.recipients("")
            .iter()
            .any(|r| r == "leader@example.org")
    });

    let out = d.cli_ok(&[
        "announce",
        "lokal-finansiering",
        "--title",
        "Handboken om lokala finansieringslösningar",
        "--link",
        "https://example.se/handbok",
        "--attach",
        pdf.to_str().unwrap(),
        "--body",
        md.to_str().unwrap(),
    ]);
    assert!(out.starts_with("campaign "), "{out}");
    wait_for("the announcement", || {
        !sink.recipients("-bounces+").is_empty()
    });
    let received = sink.got.lock().unwrap();
    let (_, _, data) = received
        .iter()
        .find(|(from, _, _)| from.contains("-bounces+"))
        .unwrap();
    let msg = mail_parser::MessageParser::default()
        .parse(data.as_bytes())
        .unwrap();
    assert!(
        msg.subject()
            .unwrap()
            .contains("Handboken om lokala finansieringslösningar"),
        "{:?}",
        msg.subject()
    );
    let attachment = msg.attachment(0).expect("the handbook is attached");
    assert_eq!(attachment.attachment_name(), Some("handbok.pdf"));
    assert_eq!(attachment.content_type().unwrap().ctype(), "application");
    assert_eq!(attachment.content_type().unwrap().subtype(), Some("pdf"));
    assert!(msg.body_text(0).unwrap().contains("Hej Kim!"));
    assert!(msg
        .body_html(0)
        .unwrap()
        .contains("https://example.se/handbok"));
}

#[test]
fn queue_refuses_bad_input_with_one_clear_line() {
    let sink = Sink::start(Mode::Accept);
    let d = smtp_daemon(&sink);
    let md = d.dir.path().join("fel.md");
    std::fs::write(&md, "---\nsubject: Hej\n---\nHej {{nmae}}!\n").unwrap();
    let out = d.cli(&["queue", "lokal-finansiering", md.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("fel.md:4") && err.contains("nmae"), "{err}");
    let ok = d.dir.path().join("ok.md");
    std::fs::write(&ok, "# Hej\n").unwrap();
    for args in [
        vec![
            "queue",
            "lokal-finansiering",
            ok.to_str().unwrap(),
            "--where",
            "roll=partner",
        ],
        vec![
            "queue",
            "lokal-finansiering",
            ok.to_str().unwrap(),
            "--at",
            "i morgon",
        ],
        vec!["queue", "no-such-list", ok.to_str().unwrap()],
        vec!["queue", "lokal-finansiering", "/nonexistent.md"],
        vec![
            "announce",
            "lokal-finansiering",
            "--title",
            "X",
            "--attach",
            "/nonexistent.pdf",
        ],
    ] {
        let out = d.cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.starts_with("utskick: ") && err.trim_end().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        d.cli_ok(&["campaigns"]).lines().count(),
        1,
        "nothing queued (only the header line)"
    );
}
