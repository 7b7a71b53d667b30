//! End to end through SMTP: replies to newsletters, bounces, complaints,
//! and the leader's post to the list address.

mod common;

use common::{plain, Daemon, Mail, DOMAIN};

fn addr(suffix: &str) -> String {
    format!("lokal-finansiering{suffix}@{DOMAIN}")
}

const OWNER: &str = "projektledare@example.se";

/// Adds `people` as confirmed subscribers and sends them a newsletter;
/// returns each one's copy.
fn newsletter_to(d: &mut Daemon, people: &[(&str, &str)]) -> Vec<Mail> {
    for (email, name) in people {
        d.cli_ok(&[
            "add",
            "lokal-finansiering",
            email,
            "--name",
            name,
            "--consent",
            "test",
        ]);
    }
    d.wait_mails(people.len()); // welcome mails
    let md = d.dir.path().join("nyhet.md");
    std::fs::write(&md, "# Nyhetsbrev\n\nHej {{name}}! Handboken är klar.\n").unwrap();
    d.cli_ok(&["queue", "lokal-finansiering", md.to_str().unwrap()]);
    let mails = d.wait_mails(people.len());
    assert!(mails
        .iter()
        .all(|m| m.reply_to.starts_with("lokal-finansiering-reply+")));
    mails
}

/// Queues another newsletter to the list and returns its `n` copies: each
/// copy has its own VERP address, and a copy fails (and counts) once.
fn another_newsletter(d: &mut Daemon, n: usize) -> Vec<Mail> {
    let md = d.dir.path().join(format!("nyhet-{}.md", common::rand_id()));
    std::fs::write(&md, "# Nyhetsbrev\n\nHej {{name}}! Foldern är klar.\n").unwrap();
    d.cli_ok(&["queue", "lokal-finansiering", md.to_str().unwrap()]);
    d.wait_mails(n)
}

/// A reply in Gmail's Swedish style, quoting the newsletter with its footer.
fn gmail_reply(from: &str, to: &str, subject: &str, own: &str) -> String {
    let body = format!(
        "{own}\r\n\r\nDen tis 1 dec. 2026 kl 08:00 skrev Lokal finansiering <{}>:\r\n\r\n> Hej! Handboken är klar.\r\n>\r\n> Vill du inte ha fler utskick? Avsluta prenumerationen här\r\n> eller svara med ordet avsluta.\r\n",
        addr("")
    );
    plain(from, to, &format!("Re: {subject}"), &body)
}

fn status(d: &Daemon, email: &str) -> String {
    d.status_of("lokal-finansiering", email).unwrap()
}

#[test]
fn a_reply_that_says_avsluta_leaves_the_list() {
    let mut d = Daemon::start("");
    let copies = newsletter_to(&mut d, &[("anna@example.org", "Anna")]);
    let m = &copies[0];
    let r = d.send(
        "anna@example.org",
        &m.reply_to,
        &gmail_reply(
            "Anna <anna@example.org>",
            &m.reply_to,
            &m.subject,
            "Avsluta",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let goodbye = d.wait_mails(1);
    assert_eq!(goodbye[0].to, "anna@example.org");
    assert!(
        goodbye[0].text.contains(&addr("-subscribe")),
        "says how to come back: {}",
        goodbye[0].text
    );
    assert_eq!(status(&d, "anna@example.org"), "unsubscribed");
}

#[test]
fn a_reply_with_a_question_reaches_the_leader_even_though_the_quote_says_avsluta() {
    let mut d = Daemon::start("");
    let copies = newsletter_to(&mut d, &[("bo@example.org", "Bo")]);
    let m = &copies[0];
    let own = "Tack! Kan ni skicka handboken i tryck?\r\n\r\nBo";
    let r = d.send(
        "bo@example.org",
        &m.reply_to,
        &gmail_reply("Bo Ek <bo@example.org>", &m.reply_to, &m.subject, own),
    );
    assert!(r.starts_with("250"), "{r}");
    let fwd = d.wait_mails(1);
    assert_eq!(fwd[0].to, OWNER);
    assert_eq!(
        fwd[0].header("From").as_deref(),
        Some("Bo Ek <bo@example.org>")
    );
    assert!(
        fwd[0].subject.starts_with("[Lokal finansiering"),
        "{}",
        fwd[0].subject
    );
    assert!(fwd[0].subject.contains("Re: "), "{}", fwd[0].subject);
    assert!(
        fwd[0].reply_to.eq_ignore_ascii_case("bo@example.org"),
        "{}",
        fwd[0].reply_to
    );
    assert!(fwd[0].text.contains("handboken i tryck"));
    assert_eq!(status(&d, "bo@example.org"), "confirmed");
}

#[test]
fn avsluta_from_someone_the_newsletter_was_forwarded_to_unsubscribes_no_one() {
    let mut d = Daemon::start("");
    let copies = newsletter_to(&mut d, &[("cia@example.org", "Cia")]);
    let m = &copies[0];
    let r = d.send(
        "kollega@example.net",
        &m.reply_to,
        &gmail_reply("kollega@example.net", &m.reply_to, &m.subject, "avsluta"),
    );
    assert!(r.starts_with("250"), "{r}");
    let fwd = d.wait_mails(1);
    assert_eq!(fwd[0].to, OWNER);
    assert_eq!(status(&d, "cia@example.org"), "confirmed");
}

#[test]
fn an_auto_reply_to_a_newsletter_does_nothing_and_is_recorded() {
    let mut d = Daemon::start("");
    let copies = newsletter_to(&mut d, &[("dan@example.org", "Dan")]);
    let m = &copies[0];
    let msg = format!(
        "Auto-Submitted: auto-replied\r\n{}",
        plain(
            "dan@example.org",
            &m.reply_to,
            "Frånvaro: Re: Nyhetsbrev",
            "Jag är ledig till 7 januari. avsluta"
        )
    );
    let r = d.send("dan@example.org", &m.reply_to, &msg);
    assert!(r.starts_with("250"), "{r}");
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");
    assert_eq!(status(&d, "dan@example.org"), "confirmed");
    let ignored = d.cli_ok(&["ignored", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&ignored).unwrap();
    assert!(
        rows.iter().any(|r| r["address"] == "reply"
            && r["reason"] == "an auto-reply"
            && r["sender"] == "dan@example.org"),
        "{ignored}"
    );
    // The same record as CSV: its own columns, filled.
    let csv = d.cli_ok(&["ignored", "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("at,list,address,sender,reason,subject"),
        "{csv}"
    );
    assert!(
        lines.any(|l| l.contains(",reply,dan@example.org,an auto-reply,")
            && l.contains("Frånvaro: Re: Nyhetsbrev")),
        "{csv}"
    );
}

fn dsn(to: &str, failed: &str, status: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <{}@mx.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; 550 {status} User unknown\r\n\r\n--b1--\r\n",
        common::rand_id()
    )
}

/// The reason decides the weight: a full mailbox is not an unknown user.
/// Three final "mailbox full" reports (one on each of three copies) leave
/// the subscriber on the list (0.5 each against a threshold of 3), and the
/// reason shows in `subscribers` and `person`; three "user unknown" ones
/// (below) do not.
#[test]
fn a_full_mailbox_weighs_less_than_an_unknown_user_and_its_reason_shows() {
    let mut d = Daemon::start("");
    let mut copies = newsletter_to(&mut d, &[("gun@example.org", "Gun")]);
    for _ in 0..3 {
        copies.extend(another_newsletter(&mut d, 1));
    }
    for copy in &copies[..3] {
        let verp = copy.reverse_path.clone().unwrap();
        let report = dsn(&verp, "gun@example.org", "5.2.2").replace(
            "550 5.2.2 User unknown",
            "552 5.2.2 Mailbox full: quota exceeded",
        );
        let r = d.send("", &verp, &report);
        assert!(r.starts_with("250"), "{r}");
    }
    let subs = d.subscribers("lokal-finansiering");
    let gun = subs
        .iter()
        .find(|s| s["email"] == "gun@example.org")
        .unwrap();
    assert_eq!(gun["bounces"], 3, "{gun}");
    assert_eq!(gun["status"], "confirmed", "{gun}");
    assert_eq!(gun["last_bounce_reason"], "mailboxfull", "{gun}");
    assert!(gun["bounce_score"].as_f64().unwrap() < 1.6, "{gun}");
    let person = d.cli_ok(&["person", "gun@example.org"]);
    assert!(
        person.contains("last_bounce_reason") && person.contains("mailboxfull"),
        "{person}"
    );
    // Then the address is gone: one unknown-user report (on the fourth
    // copy) counts in full.
    let verp = copies[3].reverse_path.clone().unwrap();
    let r = d.send("", &verp, &dsn(&verp, "gun@example.org", "5.1.1"));
    assert!(r.starts_with("250"), "{r}");
    let subs = d.subscribers("lokal-finansiering");
    let gun = subs
        .iter()
        .find(|s| s["email"] == "gun@example.org")
        .unwrap();
    assert_eq!(gun["last_bounce_reason"], "userunknown", "{gun}");
    let score = gun["bounce_score"].as_f64().unwrap();
    assert!((2.4..2.6).contains(&score), "1.5 + 1: {gun}");
}

#[test]
fn three_permanent_bounces_make_a_subscriber_bounced() {
    let mut d = Daemon::start("");
    let copies = newsletter_to(
        &mut d,
        &[("eva@example.org", "Eva"), ("fia@example.org", "Fia")],
    );
    // One copy fails once: each of three newsletters' copies to Eva
    // bounces.
    let mut evas = vec![copies
        .iter()
        .find(|m| m.to == "eva@example.org")
        .cloned()
        .unwrap()];
    for _ in 0..2 {
        let more = another_newsletter(&mut d, 2);
        evas.extend(more.into_iter().filter(|m| m.to == "eva@example.org"));
    }
    assert_eq!(evas.len(), 3);
    for (i, eva) in evas.iter().enumerate() {
        let verp = eva.reverse_path.clone().unwrap();
        assert!(verp.starts_with("lokal-finansiering-bounces+"), "{verp}");
        let r = d.send("", &verp, &dsn(&verp, "eva@example.org", "5.1.1"));
        assert!(r.starts_with("250"), "{r}");
        let subs = d.subscribers("lokal-finansiering");
        let s = subs
            .iter()
            .find(|s| s["email"] == "eva@example.org")
            .unwrap();
        assert_eq!(s["bounces"], i as u64 + 1);
    }
    assert_eq!(status(&d, "eva@example.org"), "bounced");
    assert_eq!(status(&d, "fia@example.org"), "confirmed");
    // Fia's own VERP address: one temporary failure counts, lightly. A
    // temporary failure is a delay notice (`Action: delayed`): `failed` is
    // final whatever its status says (RFC 3464 §2.3.3).
    let fia_verp = copies
        .iter()
        .find(|m| m.to == "fia@example.org")
        .and_then(|m| m.reverse_path.clone())
        .unwrap();
    let delayed =
        |to: &str| dsn(to, "fia@example.org", "4.2.2").replace("Action: failed", "Action: delayed");
    let r = d.send("", &fia_verp, &delayed(&fia_verp));
    assert!(r.starts_with("250"), "{r}");
    let subs = d.subscribers("lokal-finansiering");
    let fia = subs
        .iter()
        .find(|s| s["email"] == "fia@example.org")
        .unwrap();
    assert_eq!(fia["bounces"], 1, "the token named Fia: {fia}");
    assert_eq!(
        fia["status"], "confirmed",
        "one temporary failure is not a reason to stop"
    );
    // A report to the bare bounce address is bound to nothing we sent: it
    // counts for no one, even though it names Fia (anyone can write one).
    let r = d.send("", &addr("-bounces"), &delayed(&addr("-bounces")));
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(
        d.subscribers("lokal-finansiering")
            .iter()
            .find(|s| s["email"] == "fia@example.org")
            .unwrap()["bounces"],
        1
    );
    // Bounces are never answered (a temporary failure draws no probe).
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");
    // The next newsletter skips Eva.
    let md = d.dir.path().join("nr2.md");
    std::fs::write(&md, "# Nr 2\n\nHej {{name}}!\n").unwrap();
    d.cli_ok(&["queue", "lokal-finansiering", md.to_str().unwrap()]);
    let next = d.wait_mails(1);
    assert_eq!(next[0].to, "fia@example.org");
}

#[test]
fn a_complaint_unsubscribes_the_complainer() {
    let mut d = Daemon::start("");
    let copies = newsletter_to(&mut d, &[("gun@example.org", "Gun")]);
    let verp = copies[0].reverse_path.clone().unwrap();
    let arf = format!(
        "From: feedback@mailbox.example\r\nTo: {verp}\r\nSubject: Complaint\r\nMessage-ID: <{}@mailbox.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n--f\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n\r\n--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: gun@example.org\r\n\r\n--f--\r\n",
        common::rand_id()
    );
    let r = d.send("", &verp, &arf);
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(status(&d, "gun@example.org"), "unsubscribed");
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");
}

#[test]
fn the_leaders_post_is_previewed_approved_and_sent_to_every_subscriber() {
    let mut d = Daemon::start("");
    for (e, n) in [("h1@example.org", "Hanna"), ("h2@example.org", "Hugo")] {
        d.cli_ok(&[
            "add",
            "lokal-finansiering",
            e,
            "--name",
            n,
            "--consent",
            "test",
        ]);
    }
    d.wait_mails(2);
    let post = format!(
        "From: Projektledaren <{OWNER}>\r\nTo: {}\r\nSubject: Inbjudan till träffen i Östersund\r\nMessage-ID: <{}@example.se>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHej {{{{name}}}}!\r\n\r\nVälkommen till träffen den 21 januari.\r\n<script>alert(1)</script>\r\n\r\n--m\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"program.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJSB0ZXN0Cg==\r\n--m--\r\n",
        addr(""),
        common::rand_id()
    );
    let r = d.send(OWNER, &addr(""), &post);
    assert!(r.starts_with("250"), "{r}");
    let preview = d.wait_mails(1);
    assert_eq!(preview[0].to, OWNER);
    assert!(
        preview[0].text.contains("Inbjudan till träffen"),
        "{}",
        preview[0].text
    );
    assert!(
        preview[0].text.contains("program.pdf"),
        "{}",
        preview[0].text
    );
    assert!(
        preview[0].text.contains('2'),
        "the recipient count: {}",
        preview[0].text
    );
    assert!(preview[0]
        .reply_to
        .starts_with("lokal-finansiering-confirm+"));
    // Nothing is sent before the approval.
    assert!(d.cli_ok(&["campaigns"]).contains("draft"));

    // The owner approves by replying.
    let to = preview[0].reply_to.clone();
    let r = d.send(
        OWNER,
        &to,
        &plain(
            OWNER,
            &to,
            &format!("Re: {}", preview[0].subject),
            "Ja, skicka.",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let sent = d.wait_mails(2);
    let mut to: Vec<_> = sent.iter().map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, ["h1@example.org", "h2@example.org"]);
    let hanna = sent.iter().find(|m| m.to == "h1@example.org").unwrap();
    assert!(hanna.text.contains("Hej Hanna!"), "{}", hanna.text);
    assert!(hanna.raw.contains("program.pdf"));
    assert!(!hanna.html.contains("<script>"), "{}", hanna.html);
    assert!(hanna.header("List-Unsubscribe").is_some());
}

#[test]
fn a_forged_owner_post_goes_nowhere_without_the_round_trip() {
    let mut d = Daemon::start("");
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "i@example.org",
        "--consent",
        "test",
    ]);
    d.wait_mails(1);
    // From says owner; the preview goes to the real owner mailbox, not to
    // the forger, and nothing reaches subscribers.
    let r = d.send(
        "forger@example.net",
        &addr(""),
        &plain(OWNER, &addr(""), "Köp billigt", "spam"),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert_eq!(m[0].to, OWNER);
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");
}

#[test]
fn a_post_from_anyone_else_reaches_the_owners_only() {
    let mut d = Daemon::start("");
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "j@example.org",
        "--consent",
        "test",
    ]);
    d.wait_mails(1);
    let r = d.send(
        "j@example.org",
        &addr(""),
        &plain("j@example.org", &addr(""), "Fråga", "Hej alla!"),
    );
    assert!(r.starts_with("250"), "{r}");
    let m = d.wait_mails(1);
    assert_eq!(m[0].to, OWNER);
    assert!(m[0].text.contains("Hej alla!"));
}

/// An owner's post from Thunderbird or Apple Mail comes `format=flowed`,
/// wrapped at 72: the newsletter joins the wrapped lines (RFC 3676) and
/// keeps the owner's own line breaks, in the text and the HTML.
#[test]
fn a_flowed_post_is_unwrapped_and_keeps_its_own_line_breaks() {
    let mut d = Daemon::start("");
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "h2@example.org",
        "--name",
        "Hanna",
        "--consent",
        "test",
    ]);
    assert_eq!(d.wait_mails(1).len(), 1);
    let owner = "projektledare@example.se";
    let to = "lokal-finansiering@lista.example.se";
    let post = plain(
        owner,
        to,
        "Handboken",
        "Handboken om lokala finansieringsl\u{f6}sningar \r\nfinns nu p\u{e5} webben.\r\n\r\nH\u{e4}lsningar\r\nKarin",
    )
    .replace(
        "Content-Type: text/plain; charset=utf-8",
        "Content-Type: text/plain; charset=utf-8; format=flowed",
    );
    let r = d.send(owner, to, &post);
    assert!(r.starts_with("250"), "{r}");
    let preview = d.wait_mails(1).remove(0);
    let r = d.send(
        owner,
        &preview.reply_to,
        &plain(
            owner,
            &preview.reply_to,
            &format!("Re: {}", preview.subject),
            "ok",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let sent = d.wait_mails(1).remove(0);
    assert_eq!(sent.to, "h2@example.org");
    assert!(
        sent.text
            .contains("Handboken om lokala finansieringsl\u{f6}sningar finns nu p\u{e5} webben."),
        "{}",
        sent.text
    );
    assert!(
        sent.html.contains("finansieringsl\u{f6}sningar finns nu"),
        "{}",
        sent.html
    );
    // "Hälsningar" and "Karin" stay two lines.
    assert!(sent.html.contains("H\u{e4}lsningar<br"), "{}", sent.html);
}

/// What a campaign led to, bound by the tokens its copies carried: a
/// reply, a reply that leaves, a delivery report to one copy's VERP
/// address and a one-click unsubscribe count on the campaign (shown by
/// `status --json` and the workspace); a forged token counts nowhere.
#[test]
fn a_campaign_counts_the_replies_bounces_and_unsubscribes_it_led_to() {
    let mut d = Daemon::start("");
    let copies = newsletter_to(
        &mut d,
        &[
            ("anna@example.org", "Anna"),
            ("bo@example.org", "Bo"),
            ("cilla@example.org", "Cilla"),
            ("dan@example.org", "Dan"),
        ],
    );
    let copy = |who: &str| copies.iter().find(|m| m.to == who).unwrap().clone();
    // The copy's Message-ID names its campaign: utskick.L.cN.sX@D.
    let id = copy("anna@example.org")
        .header("Message-ID")
        .unwrap()
        .split(".c")
        .nth(1)
        .and_then(|t| t.split('.').next())
        .unwrap()
        .to_string();
    // Anna asks a question; Bo replies "avsluta".
    let a = copy("anna@example.org");
    let r = d.send(
        "anna@example.org",
        &a.reply_to,
        &gmail_reply(
            "Anna <anna@example.org>",
            &a.reply_to,
            &a.subject,
            "När är nästa träff?",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let b = copy("bo@example.org");
    let r = d.send(
        "bo@example.org",
        &b.reply_to,
        &gmail_reply("Bo <bo@example.org>", &b.reply_to, &b.subject, "avsluta"),
    );
    assert!(r.starts_with("250"), "{r}");
    // Cilla's copy bounces.
    let c = copy("cilla@example.org");
    let verp = c.reverse_path.clone().unwrap();
    let r = d.send("", &verp, &dsn(&verp, "cilla@example.org", "5.1.1"));
    assert!(r.starts_with("250"), "{r}");
    // Dan leaves by the link (RFC 8058 one-click).
    let dan = copy("dan@example.org");
    let link = dan
        .header("List-Unsubscribe")
        .unwrap()
        .split(['<', '>'])
        .find(|p| p.starts_with("http"))
        .unwrap()
        .to_string();
    let path = link.split_once("//").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    let body = "List-Unsubscribe=One-Click";
    let (status, _) = common::http::http_raw(
        &d.http,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 200);
    // A forged reply token counts nowhere.
    let forged = a.reply_to.replacen("reply+", "reply+AAAA", 1);
    d.send(
        "eve@example.org",
        &forged,
        &plain("eve@example.org", &forged, "Re: x", "hej"),
    );
    let status: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["status", &id, "--json"])).unwrap();
    assert_eq!(
        status["outcome"],
        serde_json::json!({"bounced": 1, "unsubscribed": 2, "replies": 1}),
        "{status}"
    );
}
