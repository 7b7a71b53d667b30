//! Issue 16, attacked: a hostile review of discussion lists, end to end
//! through SMTP against the real binary (`lists/partnerskap.toml`,
//! `posting = "members"`). Each test here failed on the code it was
//! written against; each names the rule it holds the code to.

mod common;

use common::discussion::{list_addr, members, post};
use common::{plain, Daemon, Mail, DOMAIN};

const OWNER: &str = "projektledare@example.se";

/// Mail that arrives within `secs` seconds (none is fine).
fn mails_within(d: &mut Daemon, secs: u64) -> Vec<Mail> {
    std::thread::sleep(std::time::Duration::from_secs(secs));
    d.fresh_mails()
}

/// "Only the person changes their subscription": a member setting sent to
/// `L-request@D` under someone else's From (here on the forger's own
/// envelope) must not change that member's delivery. Subscribe and
/// unsubscribe at the same address ask the person to confirm with a
/// token; `sammandrag` and `inte-mig` are applied at once.
#[test]
fn a_forged_from_at_the_request_address_does_not_change_a_members_delivery() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let r = d.send(
        "mallory@example.net",
        &list_addr("-request"),
        &plain(
            "Anna <anna@example.org>",
            &list_addr("-request"),
            "sammandrag",
            "",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    // Whatever answer goes out (to Anna), let it go out first.
    let answer = mails_within(&mut d, 2);
    // Bo posts: Anna, who asked for nothing, must get her copy.
    let p = post("Bo <bo@example.org>", "Möte", "fg1@example.org", "", "Hej!");
    assert!(d
        .send("bo@example.org", &list_addr(""), &p)
        .starts_with("250"));
    let copies = mails_within(&mut d, 4);
    let to: Vec<&str> = copies.iter().map(|m| m.to.as_str()).collect();
    assert!(
        to.contains(&"anna@example.org"),
        "a stranger's forged 'sammandrag' switched Anna to the digest without her confirmation \
         (answer: {:?}); the post went to {to:?}",
        answer
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
}

/// An approval by mail must come from an owner (`subscription::confirm`
/// refuses a newsletter approval from a non-owner); a held discussion
/// post's moderation token, forwarded to (or read by) someone else, lets
/// anyone approve it.
#[test]
fn a_non_owner_with_a_forwarded_preview_cannot_approve_a_held_post() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let stranger = "eva@example.net";
    let p = post(
        "Eva Ek <eva@example.net>",
        "Köp billiga klockor",
        "fw1@example.net",
        "",
        "Reklam.",
    );
    assert!(d.send(stranger, &list_addr(""), &p).starts_with("250"));
    let mails = d.wait_mails(2);
    let to_owner = mails
        .iter()
        .find(|m| m.to == OWNER)
        .expect("a preview to the owner");
    assert!(to_owner.reply_to.starts_with("partnerskap-confirm+"));
    // The owner forwards the preview to a colleague (or the spammer's
    // accomplice reads it): the colleague answers "ok".
    let ok = plain(
        "Mallory <mallory@example.net>",
        &to_owner.reply_to,
        &format!("Re: {}", to_owner.subject),
        "ok",
    );
    assert!(d
        .send("mallory@example.net", &to_owner.reply_to, &ok)
        .starts_with("250"));
    let after = mails_within(&mut d, 4);
    let leaked: Vec<&str> = after
        .iter()
        .filter(|m| m.to == "anna@example.org" || m.to == "bo@example.org")
        .map(|m| m.to.as_str())
        .collect();
    assert!(
        leaked.is_empty(),
        "a non-owner's 'ok' distributed the held post to {leaked:?}"
    );
}

/// A flood of posts from one stranger: the author hears once a day, but
/// each post is a preview to every owner, without bound. The request
/// address bounds a mailbox's questions to the owners
/// (`limits.questions_per_day`, 10); held posts should be bounded too.
#[test]
fn a_flood_of_held_posts_does_not_mail_bomb_the_owners() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org"]);
    let n = 25;
    for i in 0..n {
        let p = post(
            "Spam <spam@example.net>",
            &format!("Erbjudande {i}"),
            &format!("flood{i}@example.net"),
            "",
            "Köp nu.",
        );
        assert!(d
            .send("spam@example.net", &list_addr(""), &p)
            .starts_with("250"));
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(mails_within(&mut d, 2));
    }
    let previews = got.iter().filter(|m| m.to == OWNER).count();
    assert!(
        previews <= 10,
        "{previews} previews of one stranger's {n} posts reached the owner"
    );
}

/// "Act on nothing you cannot bind to a token we issued or to the
/// person's own confirmation." A stranger posts under someone else's
/// `From:` (on the stranger's own envelope); the owner, who sees only the
/// From in the preview, answers "godkänn och lägg till": the From's
/// address becomes a confirmed member, though its owner never asked and
/// never confirmed (the mail's envelope was not theirs). At most they
/// should be asked to confirm.
#[test]
fn accept_and_add_does_not_make_a_forged_from_a_confirmed_member() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org"]);
    let victim = "victim@example.com";
    let p = post(
        "Victim <victim@example.com>",
        "Jag vill vara med",
        "aa1@example.net",
        "",
        "Lägg gärna till mig.",
    );
    assert!(d
        .send("mallory@example.net", &list_addr(""), &p)
        .starts_with("250"));
    let mails = d.wait_mails(2);
    let to_owner = mails
        .iter()
        .find(|m| m.to == OWNER)
        .expect("a preview to the owner");
    let yes = plain(
        OWNER,
        &to_owner.reply_to,
        &format!("Re: {}", to_owner.subject),
        "Godkänn och lägg till",
    );
    assert!(d.send(OWNER, &to_owner.reply_to, &yes).starts_with("250"));
    let _ = mails_within(&mut d, 3);
    assert_ne!(
        d.status_of("partnerskap", victim).as_deref(),
        Some("confirmed"),
        "an address that only appeared in a forged From became a confirmed member"
    );
}

/// The thread archive shows authors "by name only, never an address";
/// but the posts' text is shown as it came, and a reply's attribution
/// line ("Anna Berg <anna@example.org> skrev:") and signature put the
/// members' addresses on the public page for every harvester.
#[test]
fn the_public_thread_archive_shows_no_members_address() {
    let lists = tempfile::tempdir().unwrap();
    std::fs::write(
        lists.path().join("samtal.toml"),
        "name = \"Samtalet\"\naddress = \"samtal\"\nowners = [\"projektledare@example.se\"]\nposting = \"members\"\nsubject_tag = \"[Samtal]\"\npublic = true\n",
    )
    .unwrap();
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
    for (who, name) in [
        ("anna@example.org", "Anna Berg"),
        ("bo@example.org", "Bo Ek"),
    ] {
        d.cli_ok(&["add", "samtal", who, "--name", name, "--consent", "test"]);
    }
    d.wait_mails(2);
    let to = format!("samtal@{DOMAIN}");
    let first = post(
        "Anna Berg <anna@example.org>",
        "Möte",
        "ar1@example.org",
        "",
        "Ses vi den 12 januari?",
    )
    .replace(&list_addr(""), &to);
    assert!(d.send("anna@example.org", &to, &first).starts_with("250"));
    d.wait_mails(2);
    let reply = post(
        "Bo Ek <bo@example.org>",
        "SV: [Samtal] Möte",
        "ar2@example.org",
        "In-Reply-To: <ar1@example.org>\r\nReferences: <ar1@example.org>\r\n",
        "Ja, jag kommer.\r\n\r\nDen 1 dec. 2026 skrev Anna Berg <anna@example.org>:\r\n> Ses vi den 12 januari?",
    )
    .replace(&list_addr(""), &to);
    assert!(d.send("bo@example.org", &to, &reply).starts_with("250"));
    d.wait_mails(2);
    let (status, page) = common::http::http_get(
        &d.http,
        "/archive/samtal/threads",
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Ja, jag kommer."), "{page}");
    assert!(
        !page.contains("anna@example.org"),
        "a member's address on the public archive page: {page}"
    );
}

/// "Every HTML part of a post passes through the one sanitiser": an HTML
/// part inside a forwarded message (`message/rfc822`, which mail clients
/// show inline) reaches every member as the author wrote it, script,
/// event handler and `javascript:` link included. (A `text/html` part at
/// any depth of the post's own tree is sanitised; the nested message's
/// parts are not in that tree.)
#[test]
fn html_in_a_forwarded_message_is_sanitised_in_the_copies() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let raw = format!(
        "From: Anna <anna@example.org>\r\nTo: {to}\r\nSubject: Vidarebefordrat\r\nMessage-ID: <nest1@example.org>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSe nedan.\r\n--outer\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\nFrom: x@example.com\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p onmouseover=\"steal()\">Hej</p><script>alert(document.cookie)</script><a href=\"javascript:alert(1)\">klicka</a>\r\n--outer--\r\n",
        to = list_addr("")
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &raw)
        .starts_with("250"));
    let copies = d.wait_mails(2);
    for m in &copies {
        let lower = m.raw.to_lowercase();
        assert!(
            !lower.contains("<script")
                && !lower.contains("onmouseover")
                && !lower.contains("javascript:"),
            "an unsanitised HTML part reached {}: {}",
            m.to,
            m.raw
        );
    }
}

/// README, "Forget erases every record that holds the address". Issue 16
/// adds records that hold it: a post's campaign (its author, its raw
/// bytes with the `From:`), a held post's pending record (the author) and
/// the thread archive and `utskick threads` (the author's name and
/// words). After `utskick forget` the store still holds the address.
#[test]
fn forget_erases_the_authors_posts_and_held_posts() {
    use data_encoding::BASE64;
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let p = post(
        "Anna Berg <anna@example.org>",
        "Mitt inlägg",
        "fo1@example.org",
        "",
        "Hej alla.",
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &p)
        .starts_with("250"));
    d.wait_mails(2);
    let held = post(
        "Eva Ek <eva@example.net>",
        "Fråga",
        "fo2@example.net",
        "",
        "Får jag vara med?",
    );
    assert!(d
        .send("eva@example.net", &list_addr(""), &held)
        .starts_with("250"));
    d.wait_mails(2);
    for who in ["anna@example.org", "eva@example.net"] {
        d.cli_ok(&["forget", who]);
    }
    let backup = d.dir.path().join("after-forget.jsonl");
    d.cli_ok(&["backup", backup.to_str().unwrap()]);
    let mut holding = Vec::new();
    for line in std::fs::read_to_string(&backup).unwrap().lines().skip(1) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let value = BASE64
            .decode(record["value"].as_str().unwrap().as_bytes())
            .unwrap();
        let text = String::from_utf8_lossy(&value).to_lowercase();
        for who in ["anna@example.org", "eva@example.net"] {
            if text.contains(who) {
                holding.push(format!("{} holds {who}", record["tree"]));
            }
        }
    }
    assert!(
        holding.is_empty(),
        "after `utskick forget` the store still holds the addresses: {holding:?}"
    );
}

/// RFC 5322 3.6.2: a `From:` with more than one address needs a
/// `Sender:`, and the large providers refuse such mail. A member's post
/// whose From names the member and someone else (here a bank) goes to
/// every member under both names, and the DMARC decision
/// (`from_rewrite = "dmarc"`) looked only at the member's domain.
#[test]
fn a_post_whose_from_names_someone_besides_the_member_is_not_distributed_as_is() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let p = post(
        "Anna <anna@example.org>, Styrelsen <styrelsen@bank.example>",
        "Viktigt från banken",
        "mf1@example.org",
        "",
        "Logga in här.",
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &p)
        .starts_with("250"));
    for m in mails_within(&mut d, 4) {
        if m.to == "bo@example.org" {
            let from = m.header("From").unwrap_or_default();
            assert!(!from.contains("bank.example"), "Bo got a copy From: {from}");
        }
    }
}

/// The DMARC stub (`UTSKICK_DMARC_STUB_FILE`) is "for tests only", yet a
/// daemon honours it silently: with the variable set (the tests set it),
/// every domain not in the file has no policy, so no From is ever
/// rewritten and DMARC-strict authors' copies are refused by the
/// members' providers. A daemon that runs on the stub must say so.
#[test]
fn a_daemon_on_the_dmarc_stub_says_so() {
    let d = Daemon::start("");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = d.log();
    assert!(
        log.contains("UTSKICK_DMARC_STUB_FILE"),
        "the daemon runs on the test-only DMARC stub without a word in its log: {log}"
    );
}

/// A parser differential: a part with two `Content-Type` fields, the
/// first `text/html` (what most readers, Python's `email` among them,
/// go by) and the last `text/plain` (what mail-parser goes by). The
/// sanitiser sees a plain text part and passes it on untouched, both
/// fields included, so the members' clients render the author's HTML,
/// script and all.
#[test]
fn a_part_with_two_content_types_is_not_a_way_past_the_sanitiser() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let raw = format!(
        "From: Anna <anna@example.org>\r\nTo: {to}\r\nSubject: Two types\r\nMessage-ID: <ct2@example.org>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHej.\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n\r\n<img src=x onerror=\"alert(1)\"><script>alert(2)</script>\r\n--b1--\r\n",
        to = list_addr("")
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &raw)
        .starts_with("250"));
    for m in d.wait_mails(2) {
        let lower = m.raw.to_lowercase();
        assert!(
            !(lower.contains("content-type: text/html") && lower.contains("<script")),
            "{} got an HTML part the sanitiser never saw: {}",
            m.to,
            m.raw
        );
    }
}

/// README: a rejected post "is discarded", and an undecided one "is
/// discarded after `limits.token_days`". The draft is only marked
/// cancelled: the post's bytes (up to `inbound.max_message_bytes` each,
/// from anyone, without bound) stay in the store for good, so a stranger
/// who mails the list fills the disk and the author's words are kept
/// against the word of the README.
#[test]
fn a_rejected_post_is_discarded_from_the_store() {
    use data_encoding::BASE64;
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org"]);
    let marker = "Q7XJ-unique-words-of-the-rejected-post";
    let p = post(
        "Eva Ek <eva@example.net>",
        "Reklam",
        "rj1@example.net",
        "",
        &format!("{marker}\r\n{}", "x".repeat(200_000)),
    );
    assert!(d
        .send("eva@example.net", &list_addr(""), &p)
        .starts_with("250"));
    let mails = d.wait_mails(2);
    let to_owner = mails
        .iter()
        .find(|m| m.to == OWNER)
        .expect("a preview to the owner");
    let no = plain(
        OWNER,
        &to_owner.reply_to,
        &format!("Re: {}", to_owner.subject),
        "Nej",
    );
    assert!(d.send(OWNER, &to_owner.reply_to, &no).starts_with("250"));
    d.wait_mails(1);
    let backup = d.dir.path().join("after-reject.jsonl");
    d.cli_ok(&["backup", backup.to_str().unwrap()]);
    let mut kept = Vec::new();
    for line in std::fs::read_to_string(&backup).unwrap().lines().skip(1) {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let value = BASE64
            .decode(record["value"].as_str().unwrap().as_bytes())
            .unwrap();
        if String::from_utf8_lossy(&value).contains(marker) {
            kept.push(format!("{} ({} bytes)", record["tree"], value.len()));
        }
    }
    assert!(
        kept.is_empty(),
        "the rejected post is still in the store: {kept:?}"
    );
}

/// RFC 5322 2.1.1: a line of a message is at most 998 octets. A post's
/// header fields travel on as they came, so one post with a References
/// field on one long line (a thread of 60 ids, or a crafted one) makes
/// every member's copy a message the receiving servers may refuse: a
/// bounce for every member, each counted against that member.
#[test]
fn a_copy_has_no_line_longer_than_998_octets() {
    let mut d = Daemon::start("");
    members(&mut d, &["anna@example.org", "bo@example.org"]);
    let ids: Vec<String> = (0..60)
        .map(|i| format!("<thread-{i:03}-abcdefghijklmnop@example.org>"))
        .collect();
    let p = post(
        "Anna <anna@example.org>",
        "Re: Lång tråd",
        "ll1@example.org",
        &format!(
            "In-Reply-To: {}\r\nReferences: {}\r\n",
            ids[59],
            ids.join(" ")
        ),
        "Hej.",
    );
    assert!(d
        .send("anna@example.org", &list_addr(""), &p)
        .starts_with("250"));
    for m in d.wait_mails(2) {
        let longest = m.raw.split("\r\n").map(str::len).max().unwrap_or(0);
        assert!(
            longest <= 998,
            "{}'s copy has a line of {longest} octets",
            m.to
        );
    }
}
