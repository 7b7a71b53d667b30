//! End to end: the real binary, real SMTP on loopback, the file outbox, and
//! the CLI against the running daemon.

mod common;

use common::{plain, Daemon, DOMAIN};

fn addr(suffix: &str) -> String {
    format!("lokal-finansiering{suffix}@{DOMAIN}")
}

/// Subscribes `email` and returns the confirmation mail.
fn request_subscription(d: &mut Daemon, email: &str, from_header: &str) -> common::Mail {
    let r = d.send(
        email,
        &addr("-subscribe"),
        &plain(from_header, &addr("-subscribe"), "prenumerera", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    let mails = d.wait_mails(1);
    assert_eq!(mails[0].to, email);
    mails.into_iter().next().unwrap()
}

fn reply_to(d: &mut Daemon, email: &str, mail: &common::Mail) -> String {
    let body = format!(
        "Ja tack!\r\n\r\n> {}\r\n",
        mail.text.lines().next().unwrap_or("")
    );
    d.send(
        email,
        &mail.reply_to,
        &plain(
            email,
            &mail.reply_to,
            &format!("SV: {}", mail.subject),
            &body,
        ),
    )
}

#[test]
fn subscribe_confirm_by_reply_and_get_a_welcome() {
    let mut d = Daemon::start("");
    let email = "asa@example.org";
    let confirm = request_subscription(
        &mut d,
        email,
        "=?utf-8?q?=C3=85sa_=C3=96berg?= <asa@example.org>",
    );

    // The confirmation: Swedish, token in Reply-To, Message-ID and the
    // link, never in the Subject the reader sees (it reads as phishing).
    let token = confirm.token();
    assert_eq!(confirm.reply_to, addr(&format!("-confirm+{token}")));
    assert!(!confirm.subject.contains(&token), "{}", confirm.subject);
    assert!(confirm.subject.chars().count() <= 78, "{}", confirm.subject);
    assert!(
        confirm
            .header("Message-ID")
            .unwrap()
            .ends_with(&format!(".{token}@{DOMAIN}>")),
        "{:?}",
        confirm.header("Message-ID")
    );
    assert!(confirm.subject.contains("Bekräfta"), "{}", confirm.subject);
    assert!(
        confirm
            .text
            .contains(&format!("https://lista.example.se/confirm/{token}")),
        "{}",
        confirm.text
    );
    // Greeted by the first name alone (issue 18).
    assert!(confirm.text.contains("Hej Åsa!"), "{}", confirm.text);
    assert_eq!(
        confirm.header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert!(confirm
        .header("List-Id")
        .unwrap()
        .contains(&format!("<lokal-finansiering.{DOMAIN}>")));
    assert!(confirm.header("Message-ID").is_some() && confirm.header("Date").is_some());
    assert_eq!(
        confirm.reverse_path.as_deref(),
        Some(addr("-bounces").as_str())
    );
    assert!(!confirm.html.is_empty());
    // Pending until the reply comes, visible while the daemon runs.
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("pending")
    );

    let r = reply_to(&mut d, email, &confirm);
    assert!(r.starts_with("250"), "{r}");
    let welcome = d.wait_mails(1);
    assert_eq!(welcome[0].to, email);
    assert!(
        welcome[0].subject.contains("Välkommen"),
        "{}",
        welcome[0].subject
    );

    let subs = d.subscribers("lokal-finansiering");
    let s = subs.iter().find(|s| s["email"] == email).unwrap();
    assert_eq!(s["status"], "confirmed");
    assert_eq!(s["name"], "Åsa Öberg");
    assert!(s["subscribed_at"].as_str().unwrap().starts_with("20"));
    let consent = &s["consent"];
    assert_eq!(consent["method"], "mail");
    assert!(
        consent["evidence"]
            .as_str()
            .unwrap()
            .contains("@test.example>"),
        "{consent}"
    );
    assert!(
        consent["confirmed_by"]
            .as_str()
            .unwrap()
            .contains("@test.example>"),
        "{consent}"
    );

    // The same reply again changes nothing and sends nothing.
    let r = reply_to(&mut d, email, &confirm);
    assert!(r.starts_with("250"), "{r}");
    d.assert_no_new_mail_except_sentinel("sentinel1@example.org");

    // Subscribing again: told they are already in.
    let r = d.send(
        email,
        &addr("-subscribe"),
        &plain(email, &addr("-subscribe"), "hej", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert!(m[0].text.contains("redan"), "{}", m[0].text);
}

/// A reply that reaches `L-request@D` instead of the Reply-To (a client
/// that answers the From): its In-Reply-To names the confirmation.
#[test]
fn a_reply_at_the_request_address_confirms_by_its_in_reply_to() {
    let mut d = Daemon::start("");
    let email = "bo@example.org";
    let confirm = request_subscription(&mut d, email, email);
    let to = addr("-request");
    let id = confirm.header("Message-ID").unwrap();
    // A forged id on our domain, in the same shape, confirms nothing.
    let forged = id.replacen(&confirm.token()[..4], "zzzz", 1);
    let r = d.send(
        email,
        &to,
        &format!(
            "In-Reply-To: {forged}\r\nReferences: {forged}\r\n{}",
            plain(email, &to, &format!("Re: {}", confirm.subject), "ok")
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("pending")
    );
    let m = d.wait_mails(1);
    assert!(!m[0].subject.contains("Välkommen"), "{}", m[0].subject);
    // The real one does.
    let r = d.send(
        email,
        &to,
        &format!(
            "In-Reply-To: {id}\r\nReferences: <older@example.org> {id}\r\n{}",
            plain(email, &to, &format!("Re: {}", confirm.subject), "ok")
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert!(m[0].subject.contains("Välkommen"), "{}", m[0].subject);
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("confirmed")
    );
    // Later, a question in the same thread: the confirmation is used, so
    // it is a person's question for the owners, not "already done".
    let r = d.send(
        email,
        &to,
        &format!(
            "In-Reply-To: {id}\r\n{}",
            plain(
                email,
                &to,
                &format!("Re: {}", confirm.subject),
                "Var hittar jag handboken?"
            )
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert_eq!(m[0].to, "projektledare@example.se");
    assert!(m[0].text.contains("handboken"), "{}", m[0].text);
}

/// Mail still in flight from before the Subject lost its token, and the
/// owners' mails, which keep it: a token in the Subject confirms too.
#[test]
fn a_request_mail_with_the_token_in_its_subject_confirms() {
    let mut d = Daemon::start("");
    let email = "bo@example.org";
    let confirm = request_subscription(&mut d, email, email);
    let to = addr("-request");
    let r = d.send(
        email,
        &to,
        &plain(
            email,
            &to,
            &format!("Re: {}, kod {}", confirm.subject, confirm.token()),
            "ok",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert!(m[0].subject.contains("Välkommen"), "{}", m[0].subject);
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("confirmed")
    );
}

#[test]
fn request_address_commands_and_help() {
    let mut d = Daemon::start("");
    let to = addr("-request");
    // A command word on the first line of the body.
    let r = d.send(
        "cm@example.org",
        &to,
        &plain("cm@example.org", &to, "", "Prenumerera\r\n\r\n-- \r\nCarl"),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert!(m[0].subject.contains("Bekräfta"), "{}", m[0].subject);
    // Help in the Subject.
    let r = d.send(
        "dm@example.org",
        &to,
        &plain("dm@example.org", &to, "hjälp", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert!(m[0].text.contains(&addr("-subscribe")), "{}", m[0].text);
    assert_eq!(
        m[0].header("Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    // A question, not a command: a person wrote it, so it reaches the
    // owners unchanged, and the asker gets no "we did not understand".
    let r = d.send(
        "em@example.org",
        &to,
        &plain(
            "Eva Mark <em@example.org>",
            &to,
            "Fråga om handboken",
            "Hej! Finns handboken på engelska?",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert_eq!(m[0].to, "projektledare@example.se");
    assert_eq!(m[0].subject, "Fråga om handboken");
    assert!(m[0].text.contains("engelska"), "{}", m[0].text);
    assert!(
        m[0].raw.contains("X-Original-Sender: em@example.org"),
        "{}",
        m[0].raw
    );
    d.assert_no_new_mail_except_sentinel("sentinel-q@example.org");
}

/// Questions at `L-request@D` reach the owners, but one mailbox's flood
/// only so far: past `questions_per_day` they are recorded, not forwarded.
#[test]
fn a_flood_of_questions_from_one_mailbox_reaches_the_owners_only_so_far() {
    let mut d = Daemon::start("[limits]\nquestions_per_day = 2\n");
    let to = addr("-request");
    for (i, from) in ["flod@example.org", "Flod+2@Example.org", "flod@example.org"]
        .iter()
        .enumerate()
    {
        let r = d.send(
            from,
            &to,
            &plain(from, &to, &format!("Fråga {i}"), "Hur gör man?"),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    let m = d.wait_mails(2);
    assert!(m.iter().all(|m| m.to == "projektledare@example.se"));
    d.assert_no_new_mail_except_sentinel("sentinel-flod@example.org");
    let ignored: Vec<serde_json::Value> =
        serde_json::from_str(&d.cli_ok(&["ignored", "--format", "json"])).unwrap();
    assert!(
        ignored.iter().any(|r| r["subject"] == "Fråga 2"
            && r["reason"]
                .as_str()
                .unwrap()
                .contains("questions for today")),
        "{ignored:?}"
    );
}

#[test]
fn forged_and_expired_tokens_get_a_friendly_help_reply() {
    let mut d = Daemon::start("");
    let email = "cecilia@example.org";
    let confirm = request_subscription(&mut d, email, email);
    let token = confirm.token();

    // One character changed: the MAC fails.
    let mut forged: Vec<u8> = token.clone().into_bytes();
    let last = forged.len() - 3;
    forged[last] = if forged[last] == b'a' { b'b' } else { b'a' };
    let forged = String::from_utf8(forged).unwrap();
    let to = addr(&format!("-confirm+{forged}"));
    let r = d.send(email, &to, &plain(email, &to, "SV: bekräfta", "ja"));
    assert!(r.starts_with("250"), "{r}");
    let help = d.wait_mails(1);
    assert!(
        help[0].text.contains("gått ut")
            || help[0].text.contains("okänd")
            || help[0].text.contains("känner inte igen"),
        "{}",
        help[0].text
    );
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("pending")
    );

    // A token of the right record, correctly signed, but 8 days old.
    let secret: [u8; 32] = std::fs::read(d.data().join("secret"))
        .unwrap()
        .try_into()
        .unwrap();
    let secret = utskick::token::Secret::from_bytes(secret);
    let real = utskick::token::Token::decode(&token).unwrap();
    let old = real.issued - 8 * 86_400;
    let expired = secret.mint(
        utskick::token::Purpose::ConfirmSubscribe,
        "lokal-finansiering",
        email,
        real.id,
        old,
    );
    let to = addr(&format!("-confirm+{expired}"));
    let r = d.send(email, &to, &plain(email, &to, "SV: bekräfta", "ja"));
    assert!(r.starts_with("250"), "{r}");
    let help = d.wait_mails(1);
    assert_eq!(help[0].to, email);
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("pending")
    );

    // A token minted with another secret for the same record.
    let other = utskick::token::Secret::from_bytes([9; 32]).mint(
        utskick::token::Purpose::ConfirmSubscribe,
        "lokal-finansiering",
        email,
        real.id,
        real.issued,
    );
    let to = addr(&format!("-confirm+{other}"));
    let r = d.send(email, &to, &plain(email, &to, "SV: bekräfta", "ja"));
    assert!(r.starts_with("250"), "{r}");
    d.wait_mails(1);
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("pending")
    );

    // The web page for a forged token is a friendly 404, not an error.
    let (status, body) = http(&d.http, "GET", &format!("/confirm/{forged}"));
    assert_eq!(status, 404);
    assert!(body.contains("Länken fungerar inte"), "{body}");
    // The genuine one still works.
    let r = reply_to(&mut d, email, &confirm);
    assert!(r.starts_with("250"), "{r}");
    d.wait_mails(1);
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("confirmed")
    );
}

#[test]
fn unsubscribe_by_mail_confirmed_by_reply() {
    let mut d = Daemon::start("");
    let email = "dora@example.org";
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        email,
        "--name",
        "Dora",
        "--consent",
        "anmälde sig på träffen i Ljusdal",
    ]);
    let welcome = d.wait_mails(1);
    assert_eq!(welcome[0].to, email);

    let to = addr("-unsubscribe");
    let r = d.send(email, &to, &plain(email, &to, "", ""));
    assert!(r.starts_with("250"), "{r}");
    let confirm = d.wait_mails(1);
    assert!(!confirm[0].subject.contains(&confirm[0].token()));
    assert!(
        confirm[0].subject.contains("lämna"),
        "{}",
        confirm[0].subject
    );
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("confirmed")
    );

    let r = reply_to(&mut d, email, &confirm[0]);
    assert!(r.starts_with("250"), "{r}");
    let goodbye = d.wait_mails(1);
    assert_eq!(goodbye[0].to, email);
    assert!(
        goodbye[0].text.contains(&addr("-subscribe")),
        "says how to come back: {}",
        goodbye[0].text
    );
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("unsubscribed")
    );

    // Someone who is not on the list asks to leave: told so, nothing else.
    let r = d.send(
        "nobody@example.org",
        &to,
        &plain("nobody@example.org", &to, "", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert_eq!(m[0].to, "nobody@example.org");
    assert!(d
        .status_of("lokal-finansiering", "nobody@example.org")
        .is_none());
}

#[test]
fn smtp_refuses_foreign_recipients_and_oversized_mail() {
    let d = Daemon::start("[inbound]\nlisten = \"127.0.0.1:0\"\nmax_message_bytes = 4096\n");
    let mut c = d.smtp();
    assert!(c.greeting.starts_with("220 "), "{}", c.greeting);
    let ehlo = c.ehlo();
    for ext in ["PIPELINING", "SIZE 4096", "8BITMIME"] {
        assert!(ehlo.contains(ext), "{ehlo}");
    }
    assert!(c.cmd("MAIL FROM:<x@example.org>").starts_with("250"));
    for rcpt in [
        "someone@example.com",
        "lokal-finansiering@example.com",
        "postmaster@lista.example.se",
        "lokal-finansiering-nope@lista.example.se",
    ] {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert!(r.starts_with("550 5.1.1"), "{rcpt}: {r}");
    }
    assert!(c.cmd("RSET").starts_with("250"));
    // SIZE declared too big.
    let r = c.cmd("MAIL FROM:<x@example.org> SIZE=5000");
    assert!(r.starts_with("552"), "{r}");
    // Data too big, discovered while reading; the session goes on.
    let big = plain(
        "x@example.org",
        &addr("-subscribe"),
        "big",
        &"x".repeat(8000),
    );
    let r = c.transaction("x@example.org", &[&addr("-subscribe")], &big);
    assert!(r.starts_with("552"), "{r}");
    assert!(c.cmd("NOOP").starts_with("250"));
    // Garbage that is not a mail: 554, nothing changes.
    let r = c.transaction("x@example.org", &[&addr("-subscribe")], "\u{1}\u{2}\u{3}");
    assert!(r.starts_with("554") || r.starts_with("250"), "{r}");
    c.quit();
    assert!(d.subscribers("lokal-finansiering").is_empty());
}

#[test]
fn pipelined_commands_get_their_replies_in_order() {
    let mut d = Daemon::start("");
    let mut c = d.smtp();
    let msg = plain("pipe@example.org", &addr("-subscribe"), "subscribe", "");
    let mut batch = format!(
        "EHLO c.example\r\nMAIL FROM:<pipe@example.org>\r\nRCPT TO:<nobody@{DOMAIN}>\r\nRCPT TO:<{}>\r\nDATA\r\n",
        addr("-subscribe")
    )
    .into_bytes();
    batch.extend(common::dot_stuff(&msg));
    batch.extend(b"QUIT\r\n");
    c.send_raw(&batch);
    let replies: Vec<String> = (0..7).map(|_| c.reply()).collect();
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        ["250", "250", "550", "250", "354", "250", "221"],
        "{replies:#?}"
    );
    d.wait_mails(1);
}

#[test]
fn auto_replies_and_bounces_of_the_corpus_are_never_answered() {
    let mut d = Daemon::start("");
    let dir = common::repo("tests/corpus/bounces");
    let expected: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut c = d.smtp();
    c.ehlo();
    let mut sent = 0;
    for e in &expected {
        if e["kind"] == "other" {
            continue;
        }
        let raw = std::fs::read(dir.join(e["file"].as_str().unwrap())).unwrap();
        let mut text = String::from_utf8_lossy(&raw).to_string();
        if text.starts_with("From ") {
            text = text.split_once('\n').unwrap().1.to_string();
        }
        // Every command address, with a real sender in the envelope.
        for to in [addr("-subscribe"), addr("-request"), addr("-unsubscribe")] {
            let r = c.transaction("someone@example.org", &[&to], &text);
            assert!(r.starts_with("250"), "{}: {r}", e["file"]);
            sent += 1;
        }
    }
    c.quit();
    assert!(sent >= 137 * 3, "{sent}");
    d.assert_no_new_mail_except_sentinel("sentinel2@example.org");
}

#[test]
fn vacation_notices_and_list_mail_are_ignored() {
    let mut d = Daemon::start("");
    let to = addr("-subscribe");
    let cases = [
        ("Auto-Submitted: auto-replied\r\n", "Frånvaro"),
        ("Precedence: bulk\r\n", "subscribe"),
        ("X-Autoreply: yes\r\n", "subscribe"),
        ("", "Frånvarande: tillbaka 2 januari"),
        ("", "Automatiskt svar: hej"),
        ("X-Apple-Action: VACATION\r\n", "subscribe"),
        (
            "List-Id: <other.example.org>\r\nPrecedence: list\r\n",
            "subscribe",
        ),
    ];
    for (headers, subject) in cases {
        let msg = format!(
            "{headers}{}",
            plain("away@example.org", &to, subject, "Jag är borta.")
        );
        let r = d.send("away@example.org", &to, &msg);
        assert!(r.starts_with("250"), "{r}");
    }
    // The null sender and MAILER-DAEMON are never answered either.
    let r = d.send("", &to, &plain("someone@example.org", &to, "subscribe", ""));
    assert!(r.starts_with("250"), "{r}");
    let r = d.send(
        "x@example.org",
        &to,
        &plain("MAILER-DAEMON@example.org", &to, "subscribe", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    d.assert_no_new_mail_except_sentinel("sentinel3@example.org");
    assert!(d
        .status_of("lokal-finansiering", "away@example.org")
        .is_none());
}

#[test]
fn the_confirmation_flood_is_capped_per_address_per_day() {
    let mut d = Daemon::start("");
    let victim = "victim@example.org";
    let to = addr("-subscribe");
    for _ in 0..5 {
        let r = d.send(
            "forger@example.net",
            &to,
            &plain(victim, &to, "subscribe", ""),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    // Five requests, three mails: the first and two resends of the same
    // confirmation (one token), then nothing more today.
    let m = d.wait_mails(3);
    assert!(m.iter().all(|m| m.to == victim));
    assert!(m.iter().all(|x| x.reply_to == m[0].reply_to), "one token");
    d.assert_no_new_mail_except_sentinel("sentinel4@example.org");
    // The other list has its own budget.
    let to = format!("partnerskap-subscribe@{DOMAIN}");
    let r = d.send(
        "forger@example.net",
        &to,
        &plain(victim, &to, "subscribe", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(d.wait_mails(1)[0].to, victim);
}

#[test]
fn closed_list_needs_an_owners_approval_by_reply() {
    let mut d = Daemon::start("");
    let email = "eva@example.org";
    let to = format!("partnerskap-subscribe@{DOMAIN}");
    let r = d.send(email, &to, &plain("Eva Ek <eva@example.org>", &to, "", ""));
    assert!(r.starts_with("250"), "{r}");
    let confirm = d.wait_mails(1);
    let r = reply_to(&mut d, email, &confirm[0]);
    assert!(r.starts_with("250"), "{r}");
    // The person is told to wait; the owner gets an approval request.
    let mails = d.wait_mails(2);
    let notice = mails
        .iter()
        .find(|m| m.to == email)
        .expect("a notice to the person");
    assert!(!notice.subject.is_empty());
    let approval = mails
        .iter()
        .find(|m| m.to == "projektledare@example.se")
        .expect("a request to the owner");
    assert!(approval.text.contains(email), "{}", approval.text);
    assert_eq!(
        d.status_of("partnerskap", email).as_deref(),
        Some("awaiting_approval")
    );

    // Someone else replying to the approval request does nothing.
    let r = reply_to(&mut d, "intruder@example.org", approval);
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        d.status_of("partnerskap", email).as_deref(),
        Some("awaiting_approval")
    );

    // The owner replies: approved and welcomed.
    let r = reply_to(&mut d, "projektledare@example.se", approval);
    assert!(r.starts_with("250"), "{r}");
    let welcome = d.wait_mails(1);
    assert_eq!(welcome[0].to, email);
    assert_eq!(
        d.status_of("partnerskap", email).as_deref(),
        Some("confirmed")
    );
}

#[test]
fn closed_list_approval_from_the_cli() {
    let mut d = Daemon::start("");
    let email = "fia@example.org";
    let to = format!("partnerskap-subscribe@{DOMAIN}");
    d.send(email, &to, &plain(email, &to, "", ""));
    let confirm = d.wait_mails(1);
    reply_to(&mut d, email, &confirm[0]);
    d.wait_mails(2);
    let out = d.cli_ok(&[
        "add",
        "partnerskap",
        email,
        "--consent",
        "godkänd av projektledaren",
    ]);
    assert!(out.contains("approved"), "{out}");
    assert_eq!(d.wait_mails(1)[0].to, email);
    assert_eq!(
        d.status_of("partnerskap", email).as_deref(),
        Some("confirmed")
    );
}

#[test]
fn the_confirmation_link_needs_a_post() {
    let mut d = Daemon::start("");
    let email = "gun@example.org";
    let confirm = request_subscription(&mut d, email, email);
    let path = format!("/confirm/{}", confirm.token());
    // A link scanner's GET shows a page and changes nothing.
    let (status, body) = http(&d.http, "GET", &path);
    assert_eq!(status, 200);
    assert!(
        body.contains("<form method=\"post\">") && body.contains("Bekräfta"),
        "{body}"
    );
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("pending")
    );
    let (status, body) = http(&d.http, "POST", &path);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Välkommen"), "{body}");
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("confirmed")
    );
    assert_eq!(d.wait_mails(1)[0].to, email);
    // Idempotent.
    let (status, body) = http(&d.http, "POST", &path);
    assert_eq!(status, 200);
    assert!(body.contains("Du är redan med"), "{body}");
    assert_eq!(http(&d.http, "GET", "/healthz").0, 200);
}

#[test]
fn kill_9_then_restart_keeps_every_acknowledged_change() {
    let mut d = Daemon::start("");
    let n = 30;
    let mut c = d.smtp();
    c.ehlo();
    for i in 0..n {
        let email = format!("p{i}@example.org");
        let r = c.transaction(
            &email,
            &[&addr("-subscribe")],
            &plain(&email, &addr("-subscribe"), "subscribe", ""),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    // The last 250 is in; kill at once, without a chance to flush.
    d.kill9();
    d.spawn();
    let subs = d.subscribers("lokal-finansiering");
    assert_eq!(subs.len(), n, "{subs:?}");
    assert!(subs.iter().all(|s| s["status"] == "pending"));
    // Every confirmation was queued durably: all of them go out (some may
    // have gone before the kill; at-least-once, never lost).
    let out = d.data().join("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut to: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                // A .json still being written does not parse yet: skip it this round.
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                Some(v["forward_path"][0].as_str()?.to_string())
            })
            .collect();
        to.sort();
        to.dedup();
        if to.len() == n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} confirmations went out",
            to.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut d = Daemon::start("");
    assert!(d.data().join("utskick.sock").exists());
    let status = d.terminate();
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert!(!d.data().join("utskick.sock").exists());
    // Without a daemon the CLI opens the store itself.
    let out = d.cli_ok(&["lists"]);
    assert!(
        out.contains("lokal-finansiering") && out.contains("partnerskap"),
        "{out}"
    );
}

/// A minimal HTTP/1.1 client: (status, body).
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn saying_no_to_a_confirmation_subscribes_no_one() {
    let mut d = Daemon::start("");
    let email = "ovald@example.org";
    let confirm = request_subscription(&mut d, email, email);
    let to = confirm.reply_to.clone();
    let body = "Sluta! Jag har inte bett om det här.\r\n\r\n> Bekräfta\r\n";
    let r = d.send(
        email,
        &to,
        &plain(email, &to, &format!("SV: {}", confirm.subject), body),
    );
    assert!(r.starts_with("250"), "{r}");
    d.assert_no_new_mail_except_sentinel("sentinel5@example.org");
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("pending")
    );
    // The token is spent: a later "yes" does nothing either.
    let r = reply_to(&mut d, email, &confirm);
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("pending")
    );
}

#[test]
fn case_variants_of_an_address_are_one_person_and_share_the_cap() {
    let mut d = Daemon::start("");
    let to = addr("-subscribe");
    for from in [
        "Victim@Example.org",
        "victim@example.org",
        "VICTIM@example.ORG",
        "vIcTiM@example.org",
    ] {
        let r = d.send(
            "forger@example.net",
            &to,
            &plain(from, &to, "subscribe", ""),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    // Four spellings, one budget: three mails, all the same confirmation.
    let m = d.wait_mails(3);
    assert!(m
        .iter()
        .all(|m| m.to.eq_ignore_ascii_case("victim@example.org")));
    assert!(m.iter().all(|x| x.reply_to == m[0].reply_to), "one token");
    d.assert_no_new_mail_except_sentinel("sentinel6@example.org");
    let subs = d.subscribers("lokal-finansiering");
    assert_eq!(
        subs.iter()
            .filter(|s| s["email"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("victim@example.org"))
            .count(),
        1
    );
}

#[test]
fn a_duplicate_recipient_is_handled_once() {
    let mut d = Daemon::start("");
    let mut c = d.smtp();
    c.ehlo();
    let to = addr("-subscribe");
    let r = c.transaction(
        "dup@example.org",
        &[&to, &to, &to.to_uppercase()],
        &plain("dup@example.org", &to, "subscribe", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    c.quit();
    assert_eq!(d.wait_mails(1)[0].to, "dup@example.org");
    d.assert_no_new_mail_except_sentinel("sentinel7@example.org");
}

#[test]
fn our_own_forwarded_mail_coming_back_is_dropped() {
    let mut d = Daemon::start("");
    let to = addr("-owner");
    let r = d.send(
        "someone@example.org",
        &to,
        &plain("someone@example.org", &to, "Fråga om handboken", "Hej!"),
    );
    assert!(r.starts_with("250"), "{r}");
    let fwd = d.wait_mails(1);
    assert_eq!(fwd[0].to, "projektledare@example.se");
    assert_eq!(fwd[0].header("X-Loop").as_deref(), Some(addr("").as_str()));
    // The forward comes back (an owner alias pointing at the list).
    let r = d.send("someone@example.org", &to, &fwd[0].raw);
    assert!(r.starts_with("250"), "{r}");
    d.assert_no_new_mail_except_sentinel("sentinel8@example.org");
}

#[test]
fn an_old_token_does_not_bring_back_someone_who_left() {
    // Tokens and departures are dated to the second: the clock moves past
    // the second the tokens were issued in, rather than the test sleeping.
    let clock = utskick::time::ManualClock::at(chrono::Utc::now());
    let (mut d, _daemon) = Daemon::start_on_clock("", &clock);
    let email = "hanna@example.org";
    // Two open tokens: an invitation's, and then her own request's (asking
    // again by mail the same day would resend one token, not make another).
    let csv = d.dir.path().join("inbjudan.csv");
    std::fs::write(&csv, format!("email,name\n{email},Hanna\n")).unwrap();
    d.cli_ok(&[
        "import",
        "lokal-finansiering",
        csv.to_str().unwrap(),
        "--invite",
    ]);
    let first = d.wait_mails(1).remove(0);
    assert_eq!(first.to, email);
    let second = request_subscription(&mut d, email, email);
    assert_ne!(first.reply_to, second.reply_to);
    reply_to(&mut d, email, &second);
    d.wait_mails(1);
    clock.advance(2);
    d.cli_ok(&["remove", "lokal-finansiering", email]);
    clock.advance(2);
    let r = reply_to(&mut d, email, &first);
    assert!(r.starts_with("250"), "{r}");
    d.wait_mails(1); // the help reply about an expired link
    assert_eq!(
        d.status_of("lokal-finansiering", email).as_deref(),
        Some("unsubscribed")
    );
}
