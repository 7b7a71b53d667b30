//! Hostile review of issue 18 (confirmation by In-Reply-To at
//! `L-request@D`, questions forwarded to the owners, the form's fill-time
//! stamp, archive downloads, the sender's links): attacks against the real
//! binary on loopback. Each test names the attack and passes where the
//! code is safe.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{plain, rand_id, Daemon, Mail, DOMAIN};
use mail_parser::MimeHeaders;

const LIST: &str = "lokal-finansiering";

fn addr(suffix: &str) -> String {
    format!("{LIST}{suffix}@{DOMAIN}")
}

/// Asks to subscribe `email` by mail (anyone can forge this) and returns
/// the confirmation mail.
fn request_subscription(d: &mut Daemon, email: &str) -> Mail {
    let to = addr("-subscribe");
    let r = d.send(email, &to, &plain(email, &to, "prenumerera", ""));
    assert!(r.starts_with("250"), "{r}");
    let mails = d.wait_mails(1);
    assert_eq!(mails[0].to, email);
    mails.into_iter().next().unwrap()
}

/// `email` answers `confirm` at its Reply-To, as most clients do, and is
/// welcomed.
fn confirm_by_reply(d: &mut Daemon, email: &str, confirm: &Mail) {
    let r = d.send(
        email,
        &confirm.reply_to,
        &plain(
            email,
            &confirm.reply_to,
            &format!("Re: {}", confirm.subject),
            "Ja",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let welcome = d.wait_mails(1);
    assert!(
        welcome[0].subject.contains("Välkommen"),
        "{}",
        welcome[0].subject
    );
}

/// A mail from `from` to `L-request@D` in the thread of `id`.
fn in_thread(from: &str, id: &str, subject: &str, body: &str) -> String {
    let to = addr("-request");
    format!(
        "In-Reply-To: {id}\r\nReferences: {id}\r\n{}",
        plain(from, &to, subject, body)
    )
}

/// `utskick ignored --format json`.
fn ignored(d: &Daemon) -> Vec<serde_json::Value> {
    serde_json::from_str(&d.cli_ok(&["ignored", "--format", "json"])).unwrap()
}

/// Collects every mail until a fresh sentinel's confirmation arrives (so
/// "no mail" is proven without a long wait); the sentinel's is left out.
fn mails_until_sentinel(d: &mut Daemon) -> Vec<Mail> {
    let sentinel = format!("sentinel-{}@example.net", rand_id());
    let to = addr("-subscribe");
    let r = d.send(&sentinel, &to, &plain(&sentinel, &to, "subscribe", ""));
    assert!(r.starts_with("250"), "{r}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut all = Vec::new();
    loop {
        all.extend(d.fresh_mails());
        if all.iter().any(|m| m.to == sentinel) {
            break;
        }
        assert!(Instant::now() < deadline, "no sentinel\n{}", d.log());
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_millis(300));
    all.extend(d.fresh_mails());
    all.retain(|m| m.to != sentinel);
    all
}

// ---------------------------------------------------------------------------
// Confirmation by In-Reply-To at L-request@D
// ---------------------------------------------------------------------------

/// Someone forges a subscription for the victim. The victim's client
/// answers the From (`L-request@D`) rather than the Reply-To, and the
/// victim writes "Sluta!" — the very reply that `says_no` exists for at
/// `L-confirm+TOKEN@D`. At the request address the thread's token was
/// applied without asking what the reply says: the victim was subscribed
/// by saying no.
#[test]
fn saying_no_at_the_request_address_in_the_confirmations_thread_subscribes_nobody() {
    let mut d = Daemon::start("");
    let victim = "offer@example.org";
    let confirm = request_subscription(&mut d, victim);
    let id = confirm.header("Message-ID").unwrap();
    for (subject, body) in [
        (
            format!("Re: {}", confirm.subject),
            "Sluta! Jag har inte bett om det här.".to_string(),
        ),
        ("avsluta".to_string(), String::new()),
    ] {
        let r = d.send(
            victim,
            &addr("-request"),
            &in_thread(victim, &id, &subject, &body),
        );
        assert!(r.starts_with("250"), "{r}");
        assert_ne!(
            d.status_of(LIST, victim).as_deref(),
            Some("confirmed"),
            "a reply that says no ({subject:?} / {body:?}) subscribed the victim"
        );
    }
    let sent = mails_until_sentinel(&mut d);
    assert!(
        sent.iter().all(|m| !m.subject.contains("Välkommen")),
        "a welcome went out: {:?}",
        sent.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
}

/// A subscriber who confirmed long ago answers, in the same thread, at the
/// request address: "avsluta". The thread's (used) subscribe token won
/// over the command word: the mail was recorded as "confirm: already
/// done" and the request to leave went nowhere, with no answer.
#[test]
fn leaving_in_the_thread_of_a_used_confirmation_is_not_swallowed() {
    let mut d = Daemon::start("");
    let email = "kvar@example.org";
    let confirm = request_subscription(&mut d, email);
    let id = confirm.header("Message-ID").unwrap();
    // Confirmed through the Reply-To, as most clients do.
    confirm_by_reply(&mut d, email, &confirm);
    assert_eq!(d.status_of(LIST, email).as_deref(), Some("confirmed"));
    // Later, in the same thread, to the request address.
    let r = d.send(
        email,
        &addr("-request"),
        &in_thread(email, &id, &format!("Re: {}", confirm.subject), "avsluta"),
    );
    assert!(r.starts_with("250"), "{r}");
    let answer = d.wait_mails(1);
    assert_eq!(answer[0].to, email);
    assert!(
        answer[0].reply_to.starts_with(&format!("{LIST}-confirm+")),
        "the request to leave got no confirmation to leave: {:?}",
        answer[0].subject
    );
}

/// The same at the Reply-To of the used confirmation (`L-confirm+TOKEN@D`):
/// "avsluta" there was taken as declining a subscription that was long
/// confirmed, recorded as ignored, and nothing else happened.
#[test]
fn leaving_at_the_reply_to_of_a_used_confirmation_is_not_swallowed() {
    let mut d = Daemon::start("");
    let email = "kvar@example.org";
    let confirm = request_subscription(&mut d, email);
    confirm_by_reply(&mut d, email, &confirm);
    let r = d.send(
        email,
        &confirm.reply_to,
        &plain(email, &confirm.reply_to, "avsluta", ""),
    );
    assert!(r.starts_with("250"), "{r}");
    let answer = d.wait_mails(1);
    assert!(
        answer[0].reply_to.starts_with(&format!("{LIST}-confirm+")),
        "'avsluta' to a used confirmation went nowhere: {:?}",
        answer[0].subject
    );
}

/// Tokens that must confirm nothing at the request address, however they
/// are dressed: an id on another domain, another list's confirmation, an
/// id in our shape whose token is changed, a thousand ids in References,
/// and the owner's post approval answered by an auto-responder that
/// keeps the thread. (These held.)
#[test]
fn thread_ids_that_are_not_ours_or_not_this_lists_confirm_nothing() {
    let mut d = Daemon::start("");
    let victim = "offer2@example.org";
    let confirm = request_subscription(&mut d, victim);
    let id = confirm.header("Message-ID").unwrap();
    let token = confirm.token();
    let inner = id.trim_matches(['<', '>']);
    let other_domain = format!("<{}>", inner.replace(DOMAIN, "example.org"));
    let mut many = String::new();
    for i in 0..1000 {
        many.push_str(&format!(
            " <utskick.{LIST}.{i}.0.{}@{DOMAIN}>",
            "a".repeat(35)
        ));
    }
    let cases = [
        other_domain.clone(),
        format!("<utskick.x.1.2.{token}@{DOMAIN}.evil.example>"),
        format!("<utskick.x.1.2.{token}@evil.example>"),
    ];
    for forged in &cases {
        let r = d.send(
            victim,
            &addr("-request"),
            &in_thread(victim, forged, "Re: ja", "ja"),
        );
        assert!(r.starts_with("250"), "{r}");
        assert_eq!(
            d.status_of(LIST, victim).as_deref(),
            Some("pending"),
            "{forged}"
        );
    }
    // Another list's request address with this list's confirmation.
    let to = format!("partnerskap-request@{DOMAIN}");
    let r = d.send(
        victim,
        &to,
        &format!(
            "In-Reply-To: {id}\r\nReferences: {id}\r\n{}",
            plain(victim, &to, "Re: ja", "ja")
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(d.status_of(LIST, victim).as_deref(), Some("pending"));
    // A thousand ids in our shape before the real one's forgery: answered
    // (one help at most), nothing confirmed.
    let forged = id.replacen(&token[..4], "zzzz", 1);
    let to = addr("-request");
    let r = d.send(
        victim,
        &to,
        &format!(
            "In-Reply-To: {forged}\r\nReferences:{many} {forged}\r\n{}",
            plain(victim, &to, "Re: ja", "ja")
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(d.status_of(LIST, victim).as_deref(), Some("pending"));
    let sent = mails_until_sentinel(&mut d);
    assert!(sent.len() <= cases.len() + 2, "{} answers", sent.len());
    assert!(sent.iter().all(|m| !m.subject.contains("Välkommen")));
}

/// The owner's post: an auto-responder without RFC 3834 headers answers
/// the preview's From (`L-request@D`) and keeps the thread. The token in
/// the preview's Message-ID must not approve it (the post stays a draft).
#[test]
fn an_owners_responder_answering_the_preview_in_its_thread_approves_nothing() {
    let mut d = Daemon::start("");
    let owner = "projektledare@example.se";
    let r = d.send(
        owner,
        &addr(""),
        &plain(
            owner,
            &addr(""),
            "Nytt om ansökan",
            "Hej alla!\n\nAnsökan öppnar i maj.",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    let preview = d.wait_mails(1);
    assert_eq!(preview[0].to, owner);
    let id = preview[0].header("Message-ID").unwrap();
    assert!(id.contains('.'), "{id}");
    for body in [
        "Jag är på semester till den 10 januari.",
        "Tack för ditt mejl, jag svarar så snart jag kan.",
        "Nej, vänta med den.",
    ] {
        let r = d.send(
            owner,
            &addr("-request"),
            &in_thread(owner, &id, &format!("Re: {}", preview[0].subject), body),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    let campaigns = d.cli_ok(&["campaigns"]);
    assert!(
        !campaigns.contains("sending")
            && !campaigns.contains("queued")
            && !campaigns.contains("done"),
        "{campaigns}"
    );
}

/// Our own forward coming back (an owner's address that forwards to the
/// request address), a question from the list's own addresses, and
/// several of the list's forwarding addresses in one transaction: one
/// copy per owner per address, no loop.
#[test]
fn forwarded_questions_do_not_loop_or_multiply() {
    let mut d = Daemon::start("");
    let asker = "fraga@example.org";
    let to = addr("-request");
    let q = plain(asker, &to, "Fråga om ansökan", "När öppnar ansökan?");
    let mut c = d.smtp();
    c.ehlo();
    let r = c.transaction(
        asker,
        &[&to, &to.to_uppercase(), &addr("-owner"), &addr("")],
        &q,
    );
    c.quit();
    assert!(r.starts_with("250"), "{r}");
    let forwarded = mails_until_sentinel(&mut d);
    assert!(forwarded.len() <= 3, "{} copies", forwarded.len());
    // The copy, sent back to us by an owner's forwarding rule.
    let back = forwarded[0].raw.clone();
    let r = d.send("projektledare@example.se", &to, &back);
    assert!(r.starts_with("250"), "{r}");
    // A question that claims to come from the list's own addresses.
    for from in [addr("-request"), addr("-owner"), addr("-bounces")] {
        let r = d.send(&from, &to, &plain(&from, &to, "Fråga", "hallå?"));
        assert!(r.starts_with("250"), "{r}");
    }
    let again = mails_until_sentinel(&mut d);
    assert!(
        again.is_empty(),
        "mail went out: {:?}",
        again
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// The web form's records
// ---------------------------------------------------------------------------

/// POSTs `body` to the subscribe form from source address `source`.
fn post_from(http: &str, source: std::net::Ipv4Addr, body: &str) -> u16 {
    let target: SocketAddr = http.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&target.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "POST /lists/{LIST}/subscribe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A form bot fills the honeypot from 60 addresses (20 posts an hour
/// each, within the per-IP limit): every post is recorded among the
/// ignored messages, and the log keeps 1000. The record of an ignored
/// mail (here an auto-reply at the request address) was pushed out: the
/// owners no longer see why a person's mail got no answer.
#[test]
fn form_bots_do_not_push_ignored_mail_out_of_the_log() {
    let d = Daemon::start("");
    let to = addr("-request");
    let auto = format!(
        "Auto-Submitted: auto-replied\r\n{}",
        plain("semester@example.org", &to, "Frånvaro", "Jag är borta.")
    );
    let r = d.send("semester@example.org", &to, &auto);
    assert!(r.starts_with("250"), "{r}");
    assert!(ignored(&d)
        .iter()
        .any(|r| r["sender"] == "semester@example.org"));
    let mut posted = 0;
    'flood: for host in 2..=255u8 {
        for i in 0..20 {
            let status = post_from(
                &d.http,
                std::net::Ipv4Addr::new(127, 0, 1, host),
                &format!("email=bot{host}x{i}%40example.net&website=http%3A%2F%2Fspam.example"),
            );
            assert_eq!(status, 200);
            posted += 1;
            if posted >= 1100 {
                break 'flood;
            }
        }
    }
    let records = ignored(&d);
    assert!(
        records
            .iter()
            .any(|r| r["sender"] == "semester@example.org"),
        "{posted} honeypot posts pushed the ignored mail out ({} records)",
        records.len()
    );
    assert!(records
        .iter()
        .any(|r| r["reason"] == "web form: honeypot filled"));
}

// ---------------------------------------------------------------------------
// Archive downloads and the sender's links
// ---------------------------------------------------------------------------

/// GET `path`: (status, lower-cased head, body).
fn get(http: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, buf[split + 4..].to_vec())
}

/// Queues a newsletter on `list` with the given attachment files and waits
/// until the archive shows it; returns the item's path.
fn archived_with(d: &Daemon, list: &str, files: &[(&str, &[u8])]) -> Option<String> {
    let md = d.dir.path().join(format!("n-{}.md", rand_id()));
    std::fs::write(&md, "---\nsubject: Nytt\n---\nHej!\n").unwrap();
    let mut args = vec![
        "queue".to_string(),
        list.to_string(),
        md.display().to_string(),
    ];
    for (name, bytes) in files {
        let dir = d.dir.path().join(rand_id());
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        args.push("--attach".into());
        args.push(p.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    d.cli_ok(&args);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (_, _, body) = get(&d.http, &format!("/archive/{list}"));
        let page = String::from_utf8_lossy(&body).to_string();
        if let Some(href) = page
            .split("class=\"archive-item\" href=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            return Some(href.to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// An HTML attachment called `form`: the security headers were left off
/// every path that ends in `/form` (meant for the snippet alone), so the
/// download came without its Content-Security-Policy and X-Frame-Options.
/// Other hostile names: quotes, CR/LF-looking text, traversal; a private
/// list's campaign is never served.
#[test]
fn attachment_downloads_keep_their_headers_whatever_their_name() {
    let d = Daemon::start("");
    d.cli_ok(&["add", LIST, "las@example.org", "--consent", "test"]);
    let html = b"<script>alert(document.domain)</script>";
    let item =
        archived_with(&d, LIST, &[("form", html), ("a\"b;c=d.html", html)]).expect("archived");
    let (status, head, body) = get(&d.http, &format!("{item}/0/form"));
    assert_eq!(status, 200, "{head}");
    assert_eq!(body, html);
    assert!(head.contains("content-disposition: attachment"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(head.contains("x-frame-options: deny"), "{head}");
    let (status, head, _) = get(&d.http, &format!("{item}/1/a%22b%3Bc%3Dd.html"));
    if status == 200 {
        assert!(
            head.contains("content-disposition: attachment; filename=\"a_b;c=d.html\""),
            "{head}"
        );
    }
    for path in [
        format!("{item}/0/..%2Fform"),
        format!("{item}/0/%2e%2e"),
        format!("{item}/-1/form"),
        format!("{item}/99999999999999999999/form"),
        format!("{item}/0/FORM"),
        format!("{}/0/form", item.replace(LIST, "partnerskap")),
    ] {
        assert_eq!(get(&d.http, &path).0, 404, "{path}");
    }
}

/// `privacy_url` is linked from every page, every mail and the snippet
/// that other sites paste (where our CSP does not reach): a
/// `javascript:` or `data:` address is refused where it is configured, in
/// `utskick.toml` and in a list file, with a line that names the key, so
/// it never reaches a link (and `web` links `/privacy` for anything that
/// is not http(s), should one ever get past).
#[test]
fn a_privacy_url_that_is_no_web_address_is_never_linked() {
    for bad in [
        "privacy_url = \"javascript:alert(document.domain)\"",
        "privacy_url = \"data:text/html,<script>alert(1)</script>\"",
        "contact = \"javascript:alert(1)\"",
    ] {
        let d = Daemon::prepare(bad);
        for args in [&["check"][..], &["serve"][..]] {
            let out = d.cli(args);
            assert!(!out.status.success(), "{bad}: {args:?} accepted it");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("privacy_url") || err.contains("contact"),
                "{bad}: {args:?}: {err}"
            );
        }
    }
    // A list file with one is refused the same way.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ond.toml"),
        "name = \"Ond\"\naddress = \"ond\"\nprivacy_url = \"javascript:alert(1)\"\n",
    )
    .unwrap();
    let d = Daemon::prepare("");
    let config = std::fs::read_to_string(d.config_path()).unwrap();
    let config: String = config
        .lines()
        .map(|l| {
            if l.starts_with("lists_dir") {
                format!("lists_dir = \"{}\"\n", dir.path().display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(d.config_path(), config).unwrap();
    let out = d.cli(&["check"]);
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("privacy_url"), "{err}");
}

/// An owner's post (From forgeable, but only the owner's reply sends it)
/// with an attachment whose name carries CR/LF, quotes and a header: the
/// newsletter's attachment headers stay one header each, with no
/// injected line; and the private list's campaign and another list's
/// campaign number are never downloadable. (This held.)
#[test]
fn hostile_attachment_names_inject_no_header_and_private_campaigns_stay_private() {
    let mut d = Daemon::start("");
    d.cli_ok(&["add", LIST, "las@example.org", "--consent", "test"]);
    assert_eq!(d.wait_mails(1).len(), 1);
    let owner = "projektledare@example.se";
    let post = format!(
        "From: {owner}\r\nTo: {to}\r\nSubject: Med bilaga\r\nMessage-ID: <{id}@test.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHej alla!\r\n--b\r\nContent-Type: text/html; name=\"x.html\"\r\nContent-Disposition: attachment; filename*=utf-8''ond%22%0D%0ABcc%3A%20offer%40example.org%0D%0AX-Evil%3A%201%22.html\r\nContent-Transfer-Encoding: base64\r\n\r\nPHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\r\n--b--\r\n",
        to = addr(""),
        id = rand_id()
    );
    let r = d.send(owner, &addr(""), &post);
    assert!(r.starts_with("250"), "{r}");
    let preview = d.wait_mails(1).remove(0);
    assert_eq!(preview.to, owner);
    // While it is a draft (all a forger gets), its attachment is no download.
    let campaigns = d.cli_ok(&["campaigns"]);
    let draft = campaigns
        .lines()
        .find(|l| l.contains("draft"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no draft in {campaigns}"))
        .to_string();
    // The name as stored: CR/LF made spaces.
    let stored: String = "ond\" Bcc: offer@example.org X-Evil: 1\".html"
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let download = format!("/archive/{LIST}/{draft}/0/{stored}");
    assert_eq!(get(&d.http, &download).0, 404, "{download}");
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
    let copy = d.wait_mails(1).remove(0);
    assert_eq!(copy.to, "las@example.org");
    for line in copy.raw.lines() {
        let l = line.to_ascii_lowercase();
        assert!(
            !l.starts_with("bcc:") && !l.starts_with("x-evil:"),
            "an injected header: {line:?}\n{}",
            copy.raw
        );
    }
    let msg = mail_parser::MessageParser::default()
        .parse(copy.raw.as_bytes())
        .unwrap();
    assert!(msg.bcc().is_none());
    let att = msg.attachments().next().expect("the attachment");
    let name = att.attachment_name().unwrap_or_default().to_string();
    assert!(!name.contains(['\r', '\n']), "{name:?}");
    // Once sent, the same download is served, as a download.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, head) = loop {
        let (status, head, _) = get(&d.http, &download);
        if status == 200 || Instant::now() > deadline {
            break (status, head);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200, "{download}");
    assert!(head.contains("content-disposition: attachment;"), "{head}");
    assert!(
        head.lines()
            .all(|l| !l.starts_with("bcc:") && !l.starts_with("x-evil:")),
        "{head}"
    );
    // The private list: a campaign that was sent is still no download,
    // under its own list or under the public one.
    d.cli_ok(&["add", "partnerskap", "p@example.org", "--consent", "test"]);
    let _ = d.wait_mails(1);
    let md = d.dir.path().join("p.md");
    std::fs::write(&md, "---\nsubject: Internt\n---\nHej!\n").unwrap();
    let file = d.dir.path().join("internt.pdf");
    std::fs::write(&file, b"%PDF-1.4 hemligt").unwrap();
    let out = d.cli_ok(&[
        "queue",
        "partnerskap",
        md.to_str().unwrap(),
        "--attach",
        file.to_str().unwrap(),
    ]);
    let id: u64 = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    let _ = d.wait_mails(1);
    for path in [
        format!("/archive/partnerskap/{id}/0/internt.pdf"),
        format!("/archive/{LIST}/{id}/0/internt.pdf"),
        format!("/archive/partnerskap/{id}"),
    ] {
        let (status, _, body) = get(&d.http, &path);
        assert_eq!(status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("hemligt"));
    }
}

/// POST `path` with no body: (status, body).
fn post(http: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, text)
}

/// A confirmation the victim declined ("Sluta!"), and one whose person
/// confirmed and then left: the used link said "Du är redan med … din
/// prenumeration är bekräftad. Du behöver inte göra något mer." to a
/// person who is on no list, so they do nothing and get nothing.
#[test]
fn a_used_link_of_someone_not_on_the_list_does_not_say_they_are() {
    let mut d = Daemon::start("");
    // Declined by mail.
    let victim = "nej@example.org";
    let confirm = request_subscription(&mut d, victim);
    let r = d.send(
        victim,
        &confirm.reply_to,
        &plain(
            victim,
            &confirm.reply_to,
            "Re: nej",
            "Sluta! Jag har inte bett om det här.",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(d.status_of(LIST, victim).as_deref(), Some("pending"));
    let path = format!("/confirm/{}", confirm.token());
    let (status, _, body) = get(&d.http, &path);
    let page = String::from_utf8_lossy(&body).to_string();
    assert!(
        !page.contains("redan med") && !page.contains("är bekräftad"),
        "GET {status}:\n{page}"
    );
    let (status, page) = post(&d.http, &path);
    assert!(
        !page.contains("redan med") && !page.contains("är bekräftad"),
        "POST {status}:\n{page}"
    );
    assert_ne!(d.status_of(LIST, victim).as_deref(), Some("confirmed"));
    // Confirmed, then left.
    let email = "gick@example.org";
    let confirm = request_subscription(&mut d, email);
    let path = format!("/confirm/{}", confirm.token());
    let (status, _) = post(&d.http, &path);
    assert_eq!(status, 200);
    assert_eq!(d.status_of(LIST, email).as_deref(), Some("confirmed"));
    let _welcome = d.wait_mails(1);
    d.cli_ok(&["remove", LIST, email]);
    assert_ne!(d.status_of(LIST, email).as_deref(), Some("confirmed"));
    let (status, _, body) = get(&d.http, &path);
    let page = String::from_utf8_lossy(&body).to_string();
    assert!(
        !page.contains("redan med") && !page.contains("är bekräftad"),
        "GET {status} after leaving:\n{page}"
    );
    // Still right for someone who is on the list.
    let email = "kvar2@example.org";
    let confirm = request_subscription(&mut d, email);
    let path = format!("/confirm/{}", confirm.token());
    assert_eq!(post(&d.http, &path).0, 200);
    let (_, _, body) = get(&d.http, &path);
    assert!(String::from_utf8_lossy(&body).contains("Du är redan med"));
}
