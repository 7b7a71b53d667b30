//! The wire protocol of the inbound listener: LMTP, BDAT, limits.

mod common;

use common::{plain, Client, Daemon, DOMAIN};

fn addr(suffix: &str) -> String {
    format!("lokal-finansiering{suffix}@{DOMAIN}")
}

#[test]
fn lmtp_gives_one_reply_per_recipient() {
    let mut d = Daemon::start("[inbound]\nlisten = \"127.0.0.1:0\"\nprotocol = \"lmtp\"\n");
    let mut c = d.smtp();
    assert!(c.greeting.contains("LMTP"), "{}", c.greeting);
    assert!(c.cmd("EHLO x").starts_with("500"), "EHLO is not LMTP");
    assert!(c.cmd("LHLO mta.example").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@example.org>").starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<{}>", addr("-subscribe")))
        .starts_with("250"));
    assert!(c.cmd("RCPT TO:<stranger@example.com>").starts_with("550"));
    assert!(c
        .cmd(&format!("RCPT TO:<partnerskap-subscribe@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send_raw(&common::dot_stuff(&plain(
        "a@example.org",
        &addr("-subscribe"),
        "subscribe",
        "",
    )));
    // Two accepted recipients: two replies.
    let first = c.reply();
    let second = c.reply();
    assert!(
        first.starts_with("250") && second.starts_with("250"),
        "{first} / {second}"
    );
    assert!(
        c.cmd("NOOP").starts_with("250"),
        "no third reply was left behind"
    );
    c.quit();
    let mails = d.wait_mails(2);
    assert!(mails.iter().all(|m| m.to == "a@example.org"));
}

#[test]
fn bdat_chunks_are_accepted() {
    let mut d = Daemon::start("");
    let mut c = d.smtp();
    assert!(c.ehlo().contains("CHUNKING"));
    assert!(c.cmd("MAIL FROM:<b@example.org>").starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<{}>", addr("-subscribe")))
        .starts_with("250"));
    let msg = plain("b@example.org", &addr("-subscribe"), "subscribe", "");
    let (a, b) = msg.split_at(msg.len() / 2);
    c.send_raw(format!("BDAT {}\r\n{a}", a.len()).as_bytes());
    assert!(c.reply().starts_with("250"));
    c.send_raw(format!("BDAT {} LAST\r\n{b}", b.len()).as_bytes());
    let r = c.reply();
    assert!(r.starts_with("250"), "{r}");
    c.quit();
    assert_eq!(d.wait_mails(1)[0].to, "b@example.org");
}

#[test]
fn commands_out_of_order_and_garbage_get_errors_not_a_crash() {
    let d = Daemon::start("");
    let mut c = d.smtp();
    assert!(
        c.cmd("MAIL FROM:<a@example.org>").starts_with("503"),
        "hello first"
    );
    c.ehlo();
    assert!(c
        .cmd(&format!("RCPT TO:<{}>", addr("-subscribe")))
        .starts_with("503"));
    assert!(c.cmd("DATA").starts_with("503"));
    assert!(c.cmd("MAIL FROM:<not an address").starts_with("501"));
    assert!(c.cmd("FROB").starts_with("500"));
    assert!(c.cmd("STARTTLS").starts_with("502"));
    assert!(c.cmd("VRFY root").starts_with("252"));
    let long = "X".repeat(5000);
    assert!(c.cmd(&long).starts_with("500"));
    // Binary noise.
    c.send_raw(b"\x00\xff\xfe\r\n");
    assert!(c.reply().starts_with("500"));
    assert!(c.cmd("NOOP").starts_with("250"));
    c.quit();
    // Still serving.
    let mut c = d.smtp();
    c.ehlo();
    c.quit();
}

#[test]
fn too_many_errors_end_the_session() {
    let d = Daemon::start("");
    let mut c = d.smtp();
    for _ in 0..10 {
        assert!(c.cmd("FROB").starts_with("500"));
    }
    let last = c.reply();
    assert!(last.starts_with("421"), "{last}");
    assert_eq!(c.reply(), "<closed>");
}

#[test]
fn idle_clients_are_disconnected() {
    let d = Daemon::start("[inbound]\nlisten = \"127.0.0.1:0\"\nidle_timeout_secs = 1\n");
    let mut c = d.smtp();
    c.ehlo();
    let started = std::time::Instant::now();
    let r = c.reply();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn connections_over_the_cap_are_told_to_come_back() {
    let d = Daemon::start("[inbound]\nlisten = \"127.0.0.1:0\"\nmax_connections = 2\n");
    let _a = d.smtp();
    let _b = d.smtp();
    let third = Client::connect(&d.smtp);
    assert!(third.greeting.starts_with("421"), "{}", third.greeting);
    drop(_a);
    // A slot frees up once the daemon sees the session end.
    let fourth = connect_when_a_slot_frees(&d.smtp);
    assert!(fourth.greeting.starts_with("220"), "{}", fourth.greeting);
}

#[test]
fn a_message_with_dots_and_8bit_text_survives_intact() {
    let mut d = Daemon::start("");
    let to = addr("-request");
    // Leading dots are stuffed by the client and unstuffed by us; the
    // command word is on the first body line.
    let msg = plain(
        "=?utf-8?q?J=C3=B6rgen?= <j@example.org>",
        &to,
        "",
        "prenumerera\r\n.\r\n..två punkter\r\nÅÄÖ åäö",
    );
    let r = d.send("j@example.org", &to, &msg);
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert!(m[0].text.contains("Hej Jörgen!"), "{}", m[0].text);
}

#[test]
fn a_bdat_size_that_overflows_is_refused_not_a_crash() {
    let d = Daemon::start("");
    let mut c = d.smtp();
    c.ehlo();
    assert!(c.cmd("MAIL FROM:<b@example.org>").starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<{}>", addr("-subscribe")))
        .starts_with("250"));
    c.send_raw(b"BDAT 10\r\n0123456789");
    assert!(c.reply().starts_with("250"));
    let r = c.cmd("BDAT 18446744073709551610");
    assert!(
        r.starts_with("552") || r.starts_with("501") || r.starts_with("500"),
        "{r}"
    );
    c.stream.shutdown(std::net::Shutdown::Both).unwrap();
    // The daemon still serves.
    let mut c = d.smtp();
    c.ehlo();
}

/// Malformed mail, each with its defined outcome: accepted and answered
/// with help (it is still a person's mail), or refused as unparseable.
/// The daemon survives all of it.
#[test]
fn malformed_mail_has_a_defined_outcome_and_never_kills_the_daemon() {
    let d = Daemon::start("[inbound]\nlisten = \"127.0.0.1:0\"\nmax_message_bytes = 4194304\n");
    let to = addr("-request");
    let nested = {
        let mut m = String::from("From: n@example.org\r\nSubject: nested\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n");
        for i in 0..200 {
            m.push_str(&format!(
                "--b{i}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n",
                i + 1
            ));
        }
        m.push_str("hjälp\r\n");
        m
    };
    let long_header = format!(
        "From: l@example.org\r\nX-Long: {}\r\nSubject: hjälp\r\n\r\nhej\r\n",
        "a".repeat(1024 * 1024)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("broken MIME boundary", "From: a@example.org\r\nSubject: hjälp\r\nContent-Type: multipart/mixed; boundary=\"never\"\r\n\r\n--other\r\nno end\r\n".into(), "250"),
        ("unknown charset", "From: b@example.org\r\nSubject: =?x-unknown-42?q?hj=E4lp?=\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\n\u{e4}\r\n".into(), "250"),
        ("8-bit headers", "From: Åsa Öberg <c@example.org>\r\nSubject: hjälp åäö\r\n\r\nhej\r\n".into(), "250"),
        ("a 1 MB header line", long_header, "250"),
        ("200 nested multiparts", nested, "250"),
        ("NUL bytes", "From: e@example.org\r\nSubject: hj\u{0}lp\r\n\r\nhe\u{0}j\r\n".into(), "250"),
        ("no header at all", "\r\n\r\njust a body\r\n".into(), "554"),
        ("binary noise", "\u{1}\u{2}\u{3}\u{7f} :::: \u{fffd}\r\n".into(), "554"),
    ];
    for (what, msg, want) in cases {
        let mut c = d.smtp();
        c.ehlo();
        let r = c.transaction("x@example.org", &[&to], &msg);
        assert!(r.starts_with(want), "{what}: {r}");
        c.quit();
    }
    // Still serving, and still answering.
    let mut c = d.smtp();
    c.ehlo();
    c.quit();
}

#[test]
fn a_thousand_connections_at_once_get_421_over_the_cap_and_the_daemon_serves_on() {
    let d = Daemon::start("");
    let mut open = Vec::new();
    let (mut ok, mut busy) = (0, 0);
    for _ in 0..1000 {
        let s = std::net::TcpStream::connect(&d.smtp).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        open.push(s);
    }
    for s in &open {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line);
        if line.starts_with("220") {
            ok += 1;
        } else if line.starts_with("421") {
            busy += 1;
        }
    }
    assert_eq!(ok, 64, "the default cap ({busy} got 421)");
    assert_eq!(ok + busy, 1000);
    drop(open);
    let mut c = connect_when_a_slot_frees(&d.smtp);
    assert!(c.greeting.starts_with("220"), "{}", c.greeting);
    c.ehlo();
}

#[test]
fn bare_lf_line_ends_are_understood() {
    let mut d = Daemon::start("");
    let mut c = d.smtp();
    let to = addr("-subscribe");
    c.send_raw(
        format!("EHLO lf.example\nMAIL FROM:<lf@example.org>\nRCPT TO:<{to}>\nDATA\n").as_bytes(),
    );
    let replies: Vec<String> = (0..4).map(|_| c.reply()).collect();
    assert!(
        replies[..3].iter().all(|r| r.starts_with("250")) && replies[3].starts_with("354"),
        "{replies:?}"
    );
    c.send_raw(
        format!("From: lf@example.org\nTo: {to}\nSubject: subscribe\n\nhej\r\n.\r\n").as_bytes(),
    );
    let r = c.reply();
    assert!(r.starts_with("250"), "{r}");
    c.quit();
    assert_eq!(d.wait_mails(1)[0].to, "lf@example.org");
}

/// Connects until the greeting is not a 421 (the daemon has seen a closed
/// session and freed its slot), or ten seconds have passed.
fn connect_when_a_slot_frees(addr: &str) -> Client {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let c = Client::connect(addr);
        if !c.greeting.starts_with("421") || std::time::Instant::now() > deadline {
            return c;
        }
    }
}

#[test]
fn the_junk_command_count_starts_over_after_a_delivered_message() {
    // An MTA that keeps one session open for many messages, with an RSET
    // between them, is not cut at the 100th.
    let d = Daemon::start("");
    let mut c = d.smtp();
    c.ehlo();
    let to = addr("-subscribe");
    for round in 0..3 {
        for i in 0..90 {
            let r = c.cmd(if i % 2 == 0 { "NOOP" } else { "RSET" });
            assert!(r.starts_with("250"), "round {round}, command {i}: {r}");
        }
        let from = format!("mta{round}@example.org");
        let r = c.transaction(&from, &[&to], &plain(&from, &to, "subscribe", ""));
        assert!(r.starts_with("250"), "{r}");
    }
    c.quit();
}

#[test]
fn commands_not_offered_count_as_errors_and_end_the_session() {
    let d = Daemon::start("");
    let mut c = d.smtp();
    c.ehlo();
    for _ in 0..10 {
        assert!(c.cmd("ETRN example.org").starts_with("502"));
    }
    let last = c.reply();
    assert!(last.starts_with("421"), "{last}");
    assert_eq!(c.reply(), "<closed>");
}

#[test]
fn a_bdat_transaction_that_stalls_between_chunks_is_cut_at_the_data_deadline() {
    let d = Daemon::start("[inbound]\nlisten = \"127.0.0.1:0\"\ndata_timeout_secs = 2\n");
    let mut c = d.smtp();
    c.ehlo();
    assert!(c.cmd("MAIL FROM:<slow@example.org>").starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<{}>", addr("-subscribe")))
        .starts_with("250"));
    let started = std::time::Instant::now();
    c.send_raw(b"BDAT 5\r\nFrom:");
    assert!(c.reply().starts_with("250"));
    // The next chunk never comes; the idle timeout (300 s) is not what ends it.
    let r = c.reply();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "cut only after {took:?}"
    );
}
