//! Issue 16, end to end through SMTP against the real binary: the
//! partnership's discussion list (`lists/partnerskap.toml`, `posting =
//! "members"`). A member's post reaches every member with the list's
//! headers; a reply keeps its thread and its one tag; automatic mail is
//! never distributed; a stranger's post waits for the owners, who decide
//! by reply.

mod common;

use common::discussion::{list_addr, members, signed_post};
use common::{plain, Daemon, Mail, DOMAIN};

const OWNER: &str = "projektledare@example.se";

fn by_recipient(mut mails: Vec<Mail>) -> Vec<Mail> {
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    mails
}

fn header(m: &Mail, name: &str) -> String {
    m.header(name)
        .unwrap_or_else(|| panic!("no {name} in {}", m.raw))
}

#[test]
fn a_members_post_reaches_every_member_with_the_list_headers() {
    let mut d = Daemon::start("");
    members(
        &mut d,
        &["anna@example.org", "bo@example.org", "cia@example.org"],
    );
    let r = d.send(
        "anna@example.org",
        &list_addr(""),
        &signed_post(
            "Anna Berg <anna@example.org>",
            "Möte 12 januari",
            "m1@example.org",
            "",
            "Hej alla!\r\n\r\nVi ses i Östersund.",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let copies = by_recipient(d.wait_mails(3));
    let to: Vec<&str> = copies.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(
        to,
        ["anna@example.org", "bo@example.org", "cia@example.org"]
    );
    let mut unsubscribe = std::collections::HashSet::new();
    for m in &copies {
        // VERP: each copy's own envelope sender.
        let rp = m.reverse_path.clone().unwrap();
        assert!(rp.starts_with("partnerskap-bounces+"), "{rp}");
        assert_eq!(m.subject, "[Partnerskap] Möte 12 januari");
        assert_eq!(header(m, "Message-ID"), "<m1@example.org>");
        assert!(header(m, "List-Id").contains(&format!("<partnerskap.{DOMAIN}>")));
        assert_eq!(
            header(m, "List-Post"),
            format!("<mailto:{}>", list_addr(""))
        );
        assert!(header(m, "List-Help").contains(&list_addr("-request")));
        assert!(header(m, "List-Subscribe").contains(&list_addr("-subscribe")));
        let unsub = header(m, "List-Unsubscribe");
        assert!(
            unsub.contains("https://lista.example.se/unsubscribe/"),
            "{unsub}"
        );
        assert!(unsub.contains("mailto:partnerskap-unsubscribe+"), "{unsub}");
        unsubscribe.insert(unsub);
        assert_eq!(
            header(m, "List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click"
        );
        assert_eq!(header(m, "Precedence"), "list");
        assert_eq!(m.reply_to, list_addr(""));
        assert!(m.header("Auto-Submitted").is_none(), "{}", m.raw);
        // The author's signature is gone (tag and footer break it).
        assert!(!m.raw.contains("d=example.org"), "{}", m.raw);
        // No DMARC policy for example.org: the From is the author's.
        assert_eq!(header(m, "From"), "Anna Berg <anna@example.org>");
        assert!(m.text.starts_with("Hej alla!"), "{}", m.text);
        assert!(m.text.contains("Vi ses i Östersund."));
        assert!(m
            .text
            .contains("Lämna listan: https://lista.example.se/unsubscribe/"));
        // Not public: no archive link.
        assert!(m.header("List-Archive").is_none());
    }
    assert_eq!(unsubscribe.len(), 3, "each member their own way out");
    // It went through the campaign machinery, as a post.
    let campaigns = d.cli_ok(&["campaigns"]);
    assert!(
        campaigns.contains("[Partnerskap] Möte 12 januari"),
        "{campaigns}"
    );
}

#[test]
fn a_reply_keeps_its_thread_and_its_one_tag() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let reply = signed_post(
        "Bo <bo@example.org>",
        "SV: Re: [Partnerskap] Möte 12 januari",
        "m2@example.org",
        "In-Reply-To: <m1@example.org>\r\nReferences: <m0@example.org> <m1@example.org>\r\n",
        "Jag kommer.\r\n\r\nDen 1 dec. 2026 skrev Anna:\r\n> Vi ses i Östersund.",
    );
    let r = d.send("bo@example.org", &list_addr(""), &reply);
    assert!(r.starts_with("250"), "{r}");
    for m in d.wait_mails(2) {
        assert_eq!(m.subject, "[Partnerskap] Re: Möte 12 januari");
        assert_eq!(header(&m, "Message-ID"), "<m2@example.org>");
        assert_eq!(header(&m, "In-Reply-To"), "<m1@example.org>");
        assert_eq!(
            header(&m, "References"),
            "<m0@example.org> <m1@example.org>"
        );
    }
}

#[test]
fn automatic_mail_to_the_list_is_never_distributed() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    // A member's vacation notice.
    let vacation = signed_post(
        "Bo <bo@example.org>",
        "Autosvar: Möte 12 januari",
        "v1@example.org",
        "Auto-Submitted: auto-replied\r\n",
        "Jag är på semester till den 5 januari.",
    );
    assert!(d
        .send("bo@example.org", &list_addr(""), &vacation)
        .starts_with("250"));
    // Our own copy come back (our List-Id, our X-Loop).
    let echo = signed_post(
        "Anna <anna@example.org>",
        "[Partnerskap] Möte",
        "e1@example.org",
        &format!(
            "List-Id: Partnerskapet <partnerskap.{DOMAIN}>\r\nX-Loop: {}\r\n",
            list_addr("")
        ),
        "Hej",
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &echo)
        .starts_with("250"));
    // Our own VERP sender.
    let verp = signed_post(
        "Anna <anna@example.org>",
        "Hej",
        "e2@example.org",
        "",
        "Hej",
    );
    assert!(d
        .send(&list_addr("-bounces+abc"), &list_addr(""), &verp)
        .starts_with("250"));
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");
    // Each is on record with its reason (`utskick ignored`).
    let ignored: Vec<serde_json::Value> =
        serde_json::from_str(&d.cli_ok(&["ignored", "--format", "json"])).unwrap();
    let posts = ignored
        .iter()
        .filter(|r| r["list"] == "partnerskap" && r["address"] == "post")
        .count();
    assert_eq!(posts, 3, "{ignored:#?}");
}

/// The moderation mail's token: the part after '+' in its Reply-To.
fn moderation(d: &mut Daemon, author: &str) -> (Mail, Option<Mail>) {
    let mut mails = d.wait_mails(2);
    let i = mails
        .iter()
        .position(|m| m.to == OWNER)
        .expect("a mail to the owner");
    let owner = mails.remove(i);
    let notice = mails.pop();
    if let Some(n) = &notice {
        assert_eq!(n.to, author);
    }
    (owner, notice)
}

#[test]
fn a_strangers_post_is_held_approved_by_reply_and_a_second_is_rejected() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let stranger = "eva@example.net";
    let first = signed_post(
        "Eva Ek <eva@example.net>",
        "Fråga om delprojekt 3",
        "s1@example.net",
        "",
        "Hej! Får jag vara med på mötet?",
    );
    assert!(d.send(stranger, &list_addr(""), &first).starts_with("250"));
    let (to_owner, notice) = moderation(&mut d, stranger);
    assert!(
        to_owner.subject.contains("Fråga om delprojekt 3"),
        "{}",
        to_owner.subject
    );
    assert!(
        to_owner.text.contains("eva@example.net"),
        "{}",
        to_owner.text
    );
    assert!(
        to_owner.text.contains("Får jag vara med på mötet?"),
        "{}",
        to_owner.text
    );
    assert!(to_owner.reply_to.starts_with("partnerskap-confirm+"));
    let notice = notice.expect("the author is told once");
    assert!(notice.subject.contains("väntar"), "{}", notice.subject);

    // An auto-reply from the owner never approves.
    let away = format!(
        "From: {OWNER}\r\nTo: {to}\r\nSubject: Re: {s}\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <a1@example.se>\r\n\r\nok\r\n",
        to = to_owner.reply_to,
        s = to_owner.subject
    );
    assert!(d.send(OWNER, &to_owner.reply_to, &away).starts_with("250"));
    // The owner's own "ok" does.
    let ok = plain(
        OWNER,
        &to_owner.reply_to,
        &format!("Re: {}", to_owner.subject),
        "Ok!\r\n\r\n> Hej",
    );
    assert!(d.send(OWNER, &to_owner.reply_to, &ok).starts_with("250"));
    let copies = by_recipient(d.wait_mails(2));
    assert_eq!(copies[0].to, "anna@example.org");
    assert_eq!(copies[1].to, "bo@example.org");
    assert_eq!(copies[0].subject, "[Partnerskap] Fråga om delprojekt 3");
    assert_eq!(header(&copies[0], "Message-ID"), "<s1@example.net>");
    // The owners' view of the closed list's posts.
    let threads = d.cli_ok(&["threads", "partnerskap"]);
    assert!(
        threads.contains("== Fråga om delprojekt 3 (1 posts)"),
        "{threads}"
    );
    assert!(threads.contains("Eva Ek"), "{threads}");

    // A second post: held again (no second notice today), then rejected
    // with a reason the author gets.
    let second = signed_post(
        "Eva Ek <eva@example.net>",
        "Köp billiga klockor",
        "s2@example.net",
        "",
        "Reklam.",
    );
    assert!(d.send(stranger, &list_addr(""), &second).starts_with("250"));
    let to_owner = d.wait_mails(1).remove(0);
    assert_eq!(to_owner.to, OWNER);
    let no = plain(
        OWNER,
        &to_owner.reply_to,
        &format!("Re: {}", to_owner.subject),
        "Nej, det hör inte hit.\r\n\r\n> Reklam.",
    );
    assert!(d.send(OWNER, &to_owner.reply_to, &no).starts_with("250"));
    let told = d.wait_mails(1).remove(0);
    assert_eq!(told.to, stranger);
    assert!(told.text.contains("det hör inte hit."), "{}", told.text);
    assert!(!told.text.contains("Reklam."), "{}", told.text);
    // And nothing reached the members, nor the archive.
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");
    assert!(!d.cli_ok(&["threads", "partnerskap"]).contains("klockor"));
}

#[test]
fn accept_and_add_approves_the_post_and_invites_the_author() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org"]);
    let p = signed_post("Eva <eva@example.net>", "Hej", "s3@example.net", "", "Hej!");
    assert!(d
        .send("eva@example.net", &list_addr(""), &p)
        .starts_with("250"));
    let (to_owner, _) = moderation(&mut d, "eva@example.net");
    let yes = plain(
        OWNER,
        &to_owner.reply_to,
        &format!("Re: {}", to_owner.subject),
        "Godkänn och lägg till",
    );
    assert!(d.send(OWNER, &to_owner.reply_to, &yes).starts_with("250"));
    // The post goes to the members (Anna), and Eva is invited: a From
    // may be forged, so she becomes a member only when she confirms.
    let mails = d.wait_mails(2);
    assert_ne!(
        d.status_of("partnerskap", "eva@example.net").as_deref(),
        Some("confirmed")
    );
    let copy = mails
        .iter()
        .find(|m| m.subject == "[Partnerskap] Hej")
        .expect("the post went out");
    assert_eq!(copy.to, "anna@example.org");
    let invite = mails
        .iter()
        .find(|m| m.to == "eva@example.net")
        .expect("an invitation to Eva");
    assert!(invite.reply_to.starts_with("partnerskap-confirm+"));
    let yes = plain(
        "eva@example.net",
        &invite.reply_to,
        &format!("Re: {}", invite.subject),
        "ja",
    );
    assert!(d
        .send("eva@example.net", &invite.reply_to, &yes)
        .starts_with("250"));
    d.wait_mails(1);
    assert_eq!(
        d.status_of("partnerskap", "eva@example.net").as_deref(),
        Some("confirmed")
    );
}

/// Takes the confirmation of a member setting sent to `who`, answers it
/// from `who`, and returns the mail that says the setting is changed.
fn confirm_setting(d: &mut Daemon, who: &str) -> Mail {
    let ask = d.wait_mails(1).remove(0);
    assert_eq!(ask.to, who);
    assert!(ask.subject.starts_with("Bekräfta"), "{}", ask.subject);
    assert!(
        ask.reply_to.starts_with("partnerskap-confirm+"),
        "{}",
        ask.reply_to
    );
    let yes = plain(who, &ask.reply_to, &format!("Re: {}", ask.subject), "ja");
    assert!(d.send(who, &ask.reply_to, &yes).starts_with("250"));
    let said = d.wait_mails(1).remove(0);
    assert_eq!(said.to, who);
    said
}

#[test]
fn a_member_who_says_inte_mig_gets_no_copy_of_their_own_posts() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let r = d.send(
        "anna@example.org",
        &list_addr("-request"),
        &plain("anna@example.org", &list_addr("-request"), "inte-mig", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    // Only the person changes their subscription: a confirmation first.
    let said = confirm_setting(&mut d, "anna@example.org");
    assert!(said.subject.contains("inga kopior"), "{}", said.subject);
    let p = signed_post(
        "Anna <anna@example.org>",
        "Protokoll",
        "p1@example.org",
        "",
        "Bifogat.",
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &p)
        .starts_with("250"));
    let copies = d.wait_mails(1);
    assert_eq!(copies[0].to, "bo@example.org");
    // And back.
    let r = d.send(
        "anna@example.org",
        &list_addr("-request"),
        &plain(
            "anna@example.org",
            &list_addr("-request"),
            "Re: x",
            "mig-också",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    confirm_setting(&mut d, "anna@example.org");
    let p = signed_post(
        "Anna <anna@example.org>",
        "Igen",
        "p2@example.org",
        "",
        "Hej.",
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &p)
        .starts_with("250"));
    assert_eq!(d.wait_mails(2).len(), 2);
}

#[test]
fn a_members_from_on_a_strangers_envelope_is_held() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    // Anna's From on a stranger's envelope.
    let p = signed_post(
        "Anna <anna@example.org>",
        "Hej",
        "f1@example.org",
        "",
        "Hej",
    );
    assert!(d
        .send("mallory@example.net", &list_addr(""), &p)
        .starts_with("250"));
    let mails = d.wait_mails(2);
    assert!(mails.iter().any(|m| m.to == OWNER), "held for the owners");
    assert!(mails.iter().all(|m| m.to != "bo@example.org"));
}

#[test]
fn a_newsletter_list_still_sends_a_members_mail_to_the_owners() {
    // lokal-finansiering keeps posting = "owners": nothing is distributed.
    let mut d = Daemon::start("");
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "anna@example.org",
        "--consent",
        "t",
    ]);
    d.wait_mails(1);
    let to = format!("lokal-finansiering@{DOMAIN}");
    let r = d.send(
        "anna@example.org",
        &to,
        &plain("anna@example.org", &to, "Hej", "Hej"),
    );
    assert!(r.starts_with("250"), "{r}");
    let mails = d.wait_mails(1);
    assert_eq!(mails[0].to, OWNER);
}

/// A kill -9 while a post goes out: every member still gets it, and no
/// more go twice than the send window allows (the newsletters' bound).
#[test]
fn a_kill_during_distribution_keeps_the_crash_bound() {
    use common::sink::{Mode, Sink};
    use std::sync::atomic::Ordering;
    let n = 120;
    let connections = 2;
    let sink = Sink::start(Mode::Accept);
    let mut d = Daemon::start(&format!(
        "[outbound]\ntransport = \"smtp\"\nrelay = \"{}\"\nconnections = {connections}\n",
        sink.addr
    ));
    let mut csv = String::from("email,name\n");
    for i in 0..n {
        csv.push_str(&format!("m{i:03}@d{}.example.org,Medlem {i}\n", i % 8));
    }
    let path = d.dir.path().join("people.csv");
    std::fs::write(&path, csv).unwrap();
    d.cli_ok(&[
        "import",
        "partnerskap",
        path.to_str().unwrap(),
        "--consent",
        "test",
    ]);
    sink.delay_ms.store(3, Ordering::SeqCst);
    let author = "m000@d0.example.org";
    let p = signed_post(author, "Stort möte", "k1@example.org", "", "Hej alla!");
    assert!(d.send(author, &list_addr(""), &p).starts_with("250"));
    let copies = |sink: &Sink| sink.recipients("partnerskap-bounces+");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while copies(&sink).len() < 30 {
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    d.kill9();
    sink.delay_ms.store(0, Ordering::SeqCst);
    d.spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let got = copies(&sink);
        let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
        if distinct.len() >= n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} members got the post\n{}",
            distinct.len(),
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let got = copies(&sink);
    let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), n);
    let duplicates = got.len() - distinct.len();
    assert!(
        duplicates <= utskick::campaign::UNSYNCED_PER_LANE * connections,
        "{duplicates} duplicates after one kill -9"
    );
}

/// `sammandrag`: the member gets no single posts, and once the day is
/// over one digest (multipart/digest) that holds them all.
#[test]
fn a_member_who_chose_the_digest_gets_one_a_day() {
    use chrono::TimeZone;
    // This daemon runs in the test's process: no DNS here either.
    std::env::set_var("UTSKICK_DMARC_STUB_FILE", "/nonexistent/dmarc-stub.txt");
    let clock = utskick::time::ManualClock::at(
        chrono::Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(),
    );
    let (mut d, _daemon) = Daemon::start_on_clock("", &clock);
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let r = d.send(
        "anna@example.org",
        &list_addr("-request"),
        &plain("anna@example.org", &list_addr("-request"), "sammandrag", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    let said = confirm_setting(&mut d, "anna@example.org");
    assert!(said.subject.contains("sammandrag"), "{}", said.subject);
    for (subject, id) in [("Möte", "g1@example.org"), ("Protokoll", "g2@example.org")] {
        let p = signed_post("Bo <bo@example.org>", subject, id, "", "Hej alla!");
        assert!(d
            .send("bo@example.org", &list_addr(""), &p)
            .starts_with("250"));
        let copies = d.wait_mails(1);
        assert_eq!(
            copies[0].to, "bo@example.org",
            "only the single-post member"
        );
    }
    clock.advance(24 * 3600);
    let digest = d.wait_mails(1).remove(0);
    assert_eq!(digest.to, "anna@example.org");
    assert_eq!(
        digest.subject,
        "[Partnerskap] Sammandrag 2026-12-01 (2 inlägg)"
    );
    assert!(digest.raw.contains("multipart/digest"), "{}", digest.raw);
    assert!(digest.raw.contains("Message-ID: <g1@example.org>"));
    assert!(digest.raw.contains("Message-ID: <g2@example.org>"));
    assert!(header(&digest, "List-Unsubscribe").contains("/unsubscribe/"));
    assert!(digest
        .reverse_path
        .unwrap()
        .starts_with("partnerskap-bounces+"));
    // One a day: nothing more the same day.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(d.fresh_mails().is_empty());
}

/// A public discussion list's archive shows its posts as threads, replies
/// under what they answer, authors by name and never by address; a list
/// that is not public has no such page.
/// A daemon whose lists are `partnerskap` and the list files `extra`
/// (id, body) in a directory of the test's own.
fn daemon_with_lists(extra: &[(&str, &str)]) -> (Daemon, tempfile::TempDir) {
    let lists = tempfile::tempdir().unwrap();
    for (id, body) in extra {
        std::fs::write(lists.path().join(format!("{id}.toml")), body).unwrap();
    }
    std::fs::copy(
        common::repo("lists/partnerskap.toml"),
        lists.path().join("partnerskap.toml"),
    )
    .unwrap();
    let mut d = Daemon::prepare("");
    let config = std::fs::read_to_string(d.config_path()).unwrap();
    let config = config.replace(
        &format!("lists_dir = \"{}\"", common::repo("lists").display()),
        &format!("lists_dir = \"{}\"", lists.path().display()),
    );
    std::fs::write(d.config_path(), config).unwrap();
    d.spawn();
    (d, lists)
}

#[test]
fn a_public_lists_posts_are_archived_as_threads() {
    let (mut d, _lists) = daemon_with_lists(&[(
        "samtal",
        "name = \"Samtalet\"\naddress = \"samtal\"\nowners = [\"projektledare@example.se\"]\nposting = \"members\"\nsubject_tag = \"[Samtal]\"\npublic = true\n",
    )]);
    for (who, name) in [
        ("anna@example.org", "Anna Berg"),
        ("bo@example.org", "Bo Ek"),
    ] {
        d.cli_ok(&["add", "samtal", who, "--name", name, "--consent", "test"]);
    }
    d.wait_mails(2);
    let to = format!("samtal@{DOMAIN}");
    let posts = [
        (
            "Anna Berg <anna@example.org>",
            "Möte i Östersund",
            "t1@example.org",
            String::new(),
            "Ses vi den 12 januari?",
        ),
        (
            "Bo Ek <bo@example.org>",
            "SV: [Samtal] Möte i Östersund",
            "t2@example.org",
            "In-Reply-To: <t1@example.org>\r\nReferences: <t1@example.org>\r\n".to_string(),
            "Ja, jag kommer.",
        ),
        (
            "bo@example.org",
            "Budget för delprojekt 3",
            "t3@example.org",
            String::new(),
            "Se siffrorna.",
        ),
    ];
    for (from, subject, id, extra, body) in &posts {
        let envelope = if from.contains("anna") {
            "anna@example.org"
        } else {
            "bo@example.org"
        };
        let p = signed_post(from, subject, id, extra, body).replace(&list_addr(""), &to);
        assert!(d.send(envelope, &to, &p).starts_with("250"));
        d.wait_mails(2);
    }
    let (status, page) = common::http::http_get(
        &d.http,
        "/archive/samtal/threads",
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 200, "{page}");
    if let Some(path) = std::env::var_os("UTSKICK_SAVE_THREAD_PAGE") {
        std::fs::write(path, &page).unwrap();
    }
    assert_eq!(
        page.matches("<section class=\"thread\">").count(),
        2,
        "{page}"
    );
    let first = page.find("<h2>Möte i Östersund</h2>").expect("the thread");
    let reply = page.find("Ja, jag kommer.").unwrap();
    assert!(first < reply);
    assert!(page[..reply].contains("class=\"post depth-1\""), "{page}");
    assert!(page.contains("<strong>Anna Berg</strong>"), "{page}");
    assert!(page.contains("<strong>Bo Ek</strong>"));
    // No name in From: a dash, not the address.
    assert!(page.contains("<strong>–</strong>"), "{page}");
    assert!(
        !page.contains("anna@example.org") && !page.contains("bo@example.org"),
        "{page}"
    );
    assert!(
        !page.contains("[Samtal]"),
        "the tag is the list's, not the thread's: {page}"
    );
    let (_, archive) = common::http::http_get(
        &d.http,
        "/archive/samtal",
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert!(archive.contains("/archive/samtal/threads"), "{archive}");
    let (status, _) = common::http::http_get(
        &d.http,
        "/archive/partnerskap/threads",
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 404);
}

/// The footer sends members to "hjälp" for their settings: the help mail
/// of a discussion list names them (a newsletter list's does not).
#[test]
fn the_help_mail_of_a_discussion_list_names_the_member_settings() {
    let mut d = Daemon::start("");
    let r = d.send(
        "anna@example.org",
        &list_addr("-request"),
        &plain("anna@example.org", &list_addr("-request"), "hjälp", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    let help = d.wait_mails(1).remove(0);
    for word in ["inte-mig", "mig-också", "sammandrag", "enskilda"] {
        assert!(help.text.contains(word), "{word}: {}", help.text);
    }
    let lf = format!("lokal-finansiering-request@{DOMAIN}");
    let r = d.send(
        "anna@example.org",
        &lf,
        &plain("anna@example.org", &lf, "hjälp", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    let help = d.wait_mails(1).remove(0);
    assert!(!help.text.contains("sammandrag"), "{}", help.text);
}

/// The checks that hold a member's post: past the day's posts, or over
/// the size; `from_rewrite = "always"`; and `posting = "anyone"`, where a
/// stranger's post goes out.
#[test]
fn limits_hold_a_members_post_and_anyone_lets_a_stranger_post() {
    let (mut d, _lists) = daemon_with_lists(&[
        (
            "samtal",
            "name = \"Samtalet\"\naddress = \"samtal\"\nowners = [\"projektledare@example.se\"]\nposting = \"members\"\nsubject_tag = \"[Samtal]\"\nmax_post_bytes = 2048\nmax_posts_per_member_per_day = 1\nfrom_rewrite = \"always\"\n",
        ),
        (
            "torget",
            "name = \"Torget\"\naddress = \"torget\"\nowners = [\"projektledare@example.se\"]\nposting = \"anyone\"\nfrom_rewrite = \"never\"\n",
        ),
    ]);
    for list in ["samtal", "torget"] {
        for who in ["anna@example.org", "bo@example.org"] {
            d.cli_ok(&["add", list, who, "--consent", "test"]);
        }
    }
    d.wait_mails(4);
    let samtal = format!("samtal@{DOMAIN}");
    let send = |d: &Daemon, from: &str, to: &str, id: &str, body: &str| {
        let p = signed_post(from, "Hej", id, "", body).replace(&list_addr(""), to);
        assert!(d.send(from, to, &p).starts_with("250"));
    };
    // The first post of the day goes out, From the list (always).
    send(&d, "anna@example.org", &samtal, "l1@example.org", "Hej!");
    for m in d.wait_mails(2) {
        assert!(
            header(&m, "From").ends_with(&format!("<{samtal}>")),
            "{}",
            m.raw
        );
        assert_eq!(m.subject, "[Samtal] Hej");
    }
    // The second waits for the owners: the day's posts are used up.
    send(&d, "anna@example.org", &samtal, "l2@example.org", "Igen!");
    let (to_owner, _) = moderation(&mut d, "anna@example.org");
    assert!(to_owner.text.contains("redan skrivit"), "{}", to_owner.text);
    // Too big: refused, not kept; the author is told why.
    send(
        &d,
        "bo@example.org",
        &samtal,
        "l3@example.org",
        &"x".repeat(3000),
    );
    let told = d.wait_mails(1).remove(0);
    assert_eq!(told.to, "bo@example.org");
    assert!(told.text.contains("större"), "{}", told.text);
    // Anyone may post to torget; the From stays the author's (never).
    let torget = format!("torget@{DOMAIN}");
    send(
        &d,
        "eva@example.net",
        &torget,
        "l4@example.net",
        "Hej från en gäst.",
    );
    let copies = by_recipient(d.wait_mails(2));
    assert_eq!(copies[0].to, "anna@example.org");
    assert_eq!(header(&copies[0], "From"), "eva@example.net");
}

/// `attachments = "link"`: the copies carry a link instead of the file;
/// the link serves the file's bytes as a download, and only the token we
/// issued reaches it (a changed token, another list's path: 404), and only
/// while the post is kept (its author forgotten: 404).
#[test]
fn attachments_link_gives_each_copy_a_link_that_serves_the_file() {
    let body = std::fs::read_to_string(common::repo("lists/partnerskap.toml"))
        .unwrap()
        .replace("attachments = \"keep\"", "attachments = \"link\"");
    let (mut d, _lists) = daemon_with_lists(&[]);
    // The partnership's own file, with the link policy.
    std::fs::write(_lists.path().join("partnerskap.toml"), body).unwrap();
    let _ = d.terminate();
    d.spawn();
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let pdf = b"%PDF-1.4 plan for delprojekt 3\n%%EOF\n";
    let encoded = data_encoding::BASE64.encode(pdf);
    let raw = format!(
        "From: Anna Berg <anna@example.org>\r\nTo: {to}\r\nSubject: Planen\r\nMessage-ID: <att1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHär är planen.\r\n--b\r\nContent-Type: application/pdf; name=\"plan.pdf\"\r\nContent-Disposition: attachment; filename=\"plan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--b--\r\n",
        to = list_addr("")
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &raw)
        .starts_with("250"));
    let copies = d.wait_mails(2);
    let text = &copies[0].raw;
    assert!(
        !text.contains(&encoded),
        "the file itself is not sent: {text}"
    );
    let at = text
        .find("/files/partnerskap/")
        .expect("a link to the file");
    let path: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ']')
        .collect();
    assert!(path.ends_with("/plan.pdf"), "{path}");
    let get = |p: &str| {
        common::http::http_raw(
            &d.http,
            &format!("GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            std::time::Duration::from_secs(5),
        )
        .unwrap()
    };
    let full = common::http::http_raw(
        &d.http,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        std::time::Duration::from_secs(5),
    );
    let (status, body) = full.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.as_bytes(), pdf, "the file's bytes");
    // A token we did not issue, or another list's path: nothing.
    let token = path.split('/').nth(3).unwrap().to_string();
    let mut forged = token.clone().into_bytes();
    forged[5] = if forged[5] == b'a' { b'b' } else { b'a' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(get(&path.replace(&token, &forged)).0, 404);
    assert_eq!(
        get(&path.replace("/files/partnerskap/", "/files/lokal-finansiering/")).0,
        404
    );
    // Forgetting the author erases the post's bytes: the link is dead.
    d.cli_ok(&["forget", "anna@example.org"]);
    assert_eq!(get(&path).0, 404, "a forgotten author's file is gone");
}
