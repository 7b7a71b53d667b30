//! Hostile review of issue 13: attacks by an outsider against the real
//! binary that still work. Each test names the attack; its comment says
//! what the safe behaviour would be. These tests FAIL while the attack
//! works.

mod common;

use common::http::http_get;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Daemon;

const LIST: &str = "lokal-finansiering";

/// Slow POST ("R-U-Dead-Yet"): one client opens as many connections as the
/// cap allows, sends complete request heads for the subscribe form with a
/// large Content-Length, and trickles the body a byte a second. Each such
/// connection counts as busy (a request in progress), so it is never
/// evicted, and there is no per-client share on the web listener: every
/// newcomer gets 503 until the attacker's requests time out, and the
/// attacker simply reconnects.
///
/// Safe behaviour: a real visitor's GET /healthz is answered (200) while
/// one client trickles request bodies: a slow body is shed like a slow
/// header (a body deadline), or one address cannot take every slot.
#[test]
#[ignore = "open: the web listener has no per-client share and no minimum body rate; see the closing note of issue 13"]
fn slow_post_bodies_from_one_client_take_every_http_slot() {
    let d = Daemon::start("[http]\nlisten = \"127.0.0.1:0\"\nmax_connections = 8\n");
    let sock: SocketAddr = d.http.parse().unwrap();
    let stop = Instant::now() + Duration::from_secs(40);
    // The attacker: 8 connections, each reopened as soon as it is closed.
    for _ in 0..8 {
        std::thread::spawn(move || {
            while Instant::now() < stop {
                let Ok(mut s) = TcpStream::connect(sock) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let head = format!(
                    "POST /lists/{LIST}/subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\nemail="
                );
                if s.write_all(head.as_bytes()).is_err() {
                    continue;
                }
                let mut buf = [0u8; 512];
                while Instant::now() < stop {
                    match s.read(&mut buf) {
                        // Answered (503 busy, or a timeout) or closed: again.
                        Ok(_) => break,
                        Err(_) if s.write_all(b"a").is_ok() => {}
                        Err(_) => break,
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(30) {
        match http_get(&d.http, "/healthz", Duration::from_secs(5)) {
            Ok((200, _)) => answered += 1,
            other => failures.push(format!(
                "{:?} into the attack: {other:?}",
                started.elapsed()
            )),
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    assert!(
        failures.is_empty(),
        "one client trickling request bodies locked visitors out ({answered} answered, {} refused): {failures:#?}",
        failures.len()
    );
}

/// Reads SMTP replies until `want` lines ending a reply have come, the
/// session closes, or `limit` passes; returns every line.
fn smtp_lines(s: &mut TcpStream, want: usize, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let mut lines: Vec<String> = Vec::new();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        lines = String::from_utf8_lossy(&got)
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let finals = lines
            .iter()
            .filter(|l| l.as_bytes().get(3) == Some(&b' '))
            .count();
        if finals >= want || lines.iter().any(|l| l.starts_with("421")) {
            break;
        }
    }
    lines
}

/// The junk-command limit counts only NOOP, RSET, VRFY, HELP and commands
/// not offered. A session of nothing but HELO/EHLO, a repeated MAIL FROM
/// (503), RCPT TO addresses that are not ours (550) and DATA without a
/// recipient (554) delivers nothing, yet is counted neither as junk nor
/// as errors: it holds its slot (and probes recipients) for the whole
/// session lifetime.
///
/// Safe behaviour: like a session of NOOPs, it gets 421 after at most
/// 100 such commands (Postfix counts HELO/EHLO-free 5xx answers towards
/// its error limit, and RSET/NOOP/VRFY/ETRN as junk).
#[test]
fn helo_and_refused_mail_rcpt_data_commands_escape_the_junk_command_limit() {
    let d = Daemon::start("");
    let mut s = TcpStream::connect(&d.smtp).unwrap();
    s.set_nodelay(true).unwrap();
    let greeting = smtp_lines(&mut s, 1, Duration::from_secs(5));
    assert!(greeting[0].starts_with("220"), "{greeting:?}");
    let mut commands = String::new();
    for _ in 0..150 {
        commands.push_str("HELO x.example.net\r\n");
    }
    commands.push_str("MAIL FROM:<a@example.net>\r\n");
    for _ in 0..150 {
        commands.push_str("MAIL FROM:<a@example.net>\r\n");
        commands.push_str("RCPT TO:<nobody@elsewhere.example>\r\n");
        commands.push_str("DATA\r\n");
    }
    let n = 150 + 1 + 450;
    s.write_all(commands.as_bytes()).unwrap();
    let lines = smtp_lines(&mut s, n, Duration::from_secs(20));
    let cut = lines.iter().position(|l| l.starts_with("421"));
    assert!(
        cut.is_some_and(|i| i <= 120),
        "{n} commands that deliver nothing, no 421 (cut at {cut:?}); last replies: {:?}",
        &lines[lines.len().saturating_sub(4)..]
    );
}

/// The per-mailbox confirmation budget folds case and `+tag`, but not the
/// dots Gmail ignores: `v.ictim@gmail.com`, `vi.ctim@gmail.com`, … and
/// `victim@googlemail.com` all land in one inbox. Thirty forged subscribe
/// requests mail that inbox thirty confirmations in a minute.
///
/// Safe behaviour: at most the daily cap (3) of confirmations reach one
/// Gmail inbox, whatever dots the forger sprinkles in.
#[test]
fn gmail_dot_variants_of_one_inbox_escape_the_confirmation_budget() {
    let mut d = Daemon::start("");
    let to = format!("{LIST}-subscribe@{}", common::DOMAIN);
    let local = "victimsson";
    let mut variants = Vec::new();
    for i in 1..local.len() {
        variants.push(format!("{}.{}@gmail.com", &local[..i], &local[i..]));
    }
    for i in 1..local.len() - 1 {
        variants.push(format!(
            "{}.{}.{}@gmail.com",
            &local[..i],
            &local[i..i + 1],
            &local[i + 1..]
        ));
    }
    variants.push(format!("{local}@googlemail.com"));
    let mut c = d.smtp();
    c.ehlo();
    for email in &variants {
        let r = c.transaction(email, &[&to], &common::plain(email, &to, "prenumerera", ""));
        assert!(r.starts_with("250"), "{r}");
    }
    c.quit();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut reached = 0;
    while Instant::now() < deadline {
        reached += d
            .fresh_mails()
            .iter()
            .filter(|m| {
                let m = m.to.to_ascii_lowercase();
                m.ends_with("@gmail.com") || m.ends_with("@googlemail.com")
            })
            .count();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        reached <= 3,
        "{reached} confirmations reached one Gmail inbox ({} variants sent)",
        variants.len()
    );
}

/// `{{{name}}}` is refused ("would put a value into the HTML unescaped"),
/// but Handlebars' whitespace-control spelling of the same raw output,
/// `{{~{name}~}}`, passes the check; and since expressions are put back
/// after the sanitiser has run, the value reaches the HTML raw. A
/// subscriber's name (which anyone sets in the subscribe form) is then
/// live markup in the newsletter.
///
/// Safe behaviour: the campaign is refused like `{{{name}}}`, or the name
/// arrives escaped.
#[test]
fn whitespace_control_triple_stash_bypasses_the_unescaped_value_check() {
    let mut d = Daemon::start("");
    let email = "namn@example.org";
    d.cli_ok(&[
        "add",
        LIST,
        email,
        "--name",
        "<img src=x onerror=alert(1)>",
        "--consent",
        "test",
    ]);
    let _welcome = d.wait_mails(1);
    let md = d.dir.path().join("raw.md");
    std::fs::write(&md, "# Hej\n\nHej {{~{name}~}}!\n").unwrap();
    let out = d.cli(&["queue", LIST, md.to_str().unwrap()]);
    if !out.status.success() {
        // Refused: the safe outcome.
        return;
    }
    let copy = d.wait_mails(1).remove(0);
    assert!(
        !copy.html.contains("<img src=x") && !copy.html.contains("onerror=alert"),
        "the subscriber's name reached the HTML unescaped:\n{}",
        copy.html
    );
}

/// The hourly cap per destination domain makes mail past it wait for the
/// first later hour with room, first come first served, and a subscribe
/// request by mail costs the sender nothing (a forged From will do). So a
/// stranger who mails a few hundred requests for made-up addresses at a
/// big provider fills its hours ahead: every real person at that
/// provider who signs up afterwards waits hours (at the defaults, 250
/// forged requests per hour of delay) for a confirmation, while our
/// relay mails the strangers.
///
/// Safe behaviour: one real request for a fresh address is not queued
/// behind a flood of forged ones (the cap sheds the flood, or is fair per
/// source), so its confirmation leaves at once.
#[test]
#[ignore = "open: the hourly per-domain cap is first come, first served; see the closing note of issue 13"]
fn a_flood_of_forged_requests_pushes_real_confirmations_hours_back() {
    let mut d = Daemon::start("[limits]\nconfirmations_per_domain_per_hour = 5\n");
    let to = format!("{LIST}-subscribe@{}", common::DOMAIN);
    let mut c = d.smtp();
    c.ehlo();
    for n in 0..20 {
        let email = format!("made-up-{n}-{}@gmail.com", common::rand_id());
        let r = c.transaction(
            &email,
            &[&to],
            &common::plain(&email, &to, "prenumerera", ""),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    c.quit();
    let real = "real.person@gmail.com";
    let r = d.send(real, &to, &common::plain(real, &to, "prenumerera", ""));
    assert!(r.starts_with("250"), "{r}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = false;
    while Instant::now() < deadline && !got {
        got = d.fresh_mails().iter().any(|m| m.to == real);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        got,
        "the real person's confirmation waits behind the forged flood (log says deferred: {})",
        d.log().contains("hourly confirmation cap reached")
    );
}

const OWNER: &str = "projektledare@example.se";

/// A post with `From: owner` sent by `sender`, with `subject`; one
/// confirmed subscriber; returns the preview that reached the owner.
fn forged_post(d: &mut Daemon, sender: &str, from: &str, subject: &str) -> common::Mail {
    d.cli_ok(&["add", LIST, "h1@example.org", "--consent", "test"]);
    let _welcome = d.wait_mails(1);
    let to = format!("{LIST}@{}", common::DOMAIN);
    let r = d.send(
        sender,
        &to,
        &common::plain(
            from,
            &to,
            subject,
            "Köp billiga klockor på https://evil.example/",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    d.wait_mails(1).remove(0)
}

/// Did the post reach the subscriber within a few seconds?
fn post_went_out(d: &mut Daemon) -> bool {
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        if d.fresh_mails().iter().any(|m| m.to == "h1@example.org") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// "A reply that says its writer is away never approves": away words in
/// the first line refuse it, but before looking, the post's own subject
/// is cut out of that line (as "our words, quoted back"). The post's
/// subject is the forger's choice: a post titled "semester" erases the
/// word "semester" from the owner's unmarked vacation reply ("Ja, jag är
/// på semester …"), which then approves the forged post.
///
/// Safe behaviour: the vacation reply does not approve, whatever the
/// forged post's subject (only the quoted-back subject as a whole phrase,
/// or nothing, is discounted).
#[test]
fn a_forged_posts_subject_erases_the_away_words_of_the_owners_vacation_reply() {
    let mut d = Daemon::start("");
    let preview = forged_post(&mut d, "forger@example.net", OWNER, "semester");
    assert!(preview.to.eq_ignore_ascii_case(OWNER), "{}", preview.to);
    let reply = common::plain(
        OWNER,
        &preview.reply_to,
        &format!("Re: {}", preview.subject),
        "Ja, jag är på semester till och med den 7 januari och läser inte min e-post.\r\n",
    );
    let r = d.send(OWNER, &preview.reply_to, &reply);
    assert!(r.starts_with("250"), "{r}");
    assert!(
        !post_went_out(&mut d),
        "the owner's vacation reply approved the forged post"
    );
}
