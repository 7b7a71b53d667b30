//! The leader's workspace under `/admin` (issue 15), against the real
//! binary on loopback: sign-in by the mailed one-time link, the session
//! cookie, a campaign queued through the form and found in the audit log;
//! and what an attacker tries: no session, a missing or wrong `csrf`, a
//! used or expired link, a stranger's address, a cookie from before
//! logout, a client outside `allow_from`, too many requests.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::admin::{call, csrf_of, enc, link_token, sign_in_as, Answer};
use common::{Daemon, DOMAIN};

const OWNER: &str = "projektledare@example.se";
const LIST: &str = "lokal-finansiering";

/// Signs `OWNER` in through the mailed link; returns the session id.
fn sign_in(d: &mut Daemon) -> String {
    sign_in_as(d, OWNER)
}

#[test]
fn an_owner_signs_in_by_the_mailed_link_queues_a_newsletter_and_the_log_says_so() {
    let mut d = Daemon::start("");
    d.cli_ok(&[
        "add",
        LIST,
        "anna@example.org",
        "--name",
        "Anna",
        "--consent",
        "asked at the meeting",
    ]);
    d.wait_mails(1); // the welcome

    // No session: to the sign-in page.
    let r = call(&d, "GET", "/admin", None, None);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").as_deref(), Some("/admin/login"));
    let r = call(&d, "GET", "/admin/login", None, None);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("name=\"email\""), "{}", r.body);

    // The link arrives as a system mail, automatic, valid 15 minutes.
    let r = call(
        &d,
        "POST",
        "/admin/login",
        None,
        Some(&format!("email={}", enc(OWNER))),
    );
    assert_eq!(r.status, 200);
    let mails = d.wait_mails(1);
    let mail = &mails[0];
    assert_eq!(mail.to, OWNER);
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(
        mail.text.contains("https://lista.example.se/admin/login/"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("15 minuter"), "{}", mail.text);
    let token = link_token(mail);
    assert!(!d.log().contains(&token), "the token reached the log");

    // The link's GET only shows a button.
    let r = call(&d, "GET", &format!("/admin/login/{token}"), None, None);
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_none());
    assert!(r.body.contains("<form method=\"post\">"), "{}", r.body);

    // Its POST starts the session: the cookie as the issue says.
    let r = call(&d, "POST", &format!("/admin/login/{token}"), None, None);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location").as_deref(), Some("/admin"));
    let cookie = r.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Secure"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("utskick_session=")
        .to_string();

    // The overview shows the owner's lists and their counts.
    let r = call(&d, "GET", "/admin", Some(&session), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("Lokal finansiering – för landsbygdens utveckling"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Partnerskapet"), "{}", r.body);
    assert!(
        r.body.contains("anna@example.org"),
        "the latest join: {}",
        r.body
    );
    assert!(r.body.contains("<html lang=\"sv\">"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let csrf = csrf_of(&r.body);

    // A refusal names the line, as `queue` does, and queues nothing.
    let bad = format!(
        "csrf={csrf}&markdown={}",
        enc("# December\n\nHej {{#if name}}du\n")
    );
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/campaigns"),
        Some(&session),
        Some(&bad),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("nyhetsbrev.md"), "{}", r.body);
    assert!(d.cli_ok(&["campaigns"]).lines().count() <= 1);

    // The preview counts the recipients.
    let good = format!(
        "csrf={csrf}&subject={}&markdown={}",
        enc("Nyhetsbrev december"),
        enc("Hej {{first_name}}!\n\nHandboken är klar.\n")
    );
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/campaigns"),
        Some(&session),
        Some(&format!("{good}&action=preview")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Går till 1 mottagare"), "{}", r.body);
    assert!(r.body.contains("Handboken är klar"), "{}", r.body);

    // Queued as `utskick queue` would, at a local time.
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/campaigns"),
        Some(&session),
        Some(&format!("{good}&at=2099-01-15T08%3A00")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let listed = d.cli_ok(&["campaigns"]);
    assert!(listed.contains("Nyhetsbrev december"), "{listed}");
    assert!(listed.contains("scheduled"), "{listed}");
    let r = call(&d, "GET", "/admin/campaigns", Some(&session), None);
    assert!(r.body.contains("Nyhetsbrev december"), "{}", r.body);
    assert!(r.body.contains("schemalagt"), "{}", r.body);

    // Paused and cancelled from the page, through the same code as the CLI.
    let id: String = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    for (action, status) in [("pause", "paused"), ("cancel", "cancelled")] {
        let r = call(
            &d,
            "POST",
            &format!("/admin/campaigns/{id}/steer"),
            Some(&session),
            Some(&format!("csrf={csrf}&action={action}")),
        );
        assert_eq!(r.status, 303, "{}", r.body);
        assert!(d.cli_ok(&["campaigns"]).contains(status));
    }

    // The audit log names who, what and when, on the page and in the CLI;
    // the CLI's own change is there too.
    let r = call(&d, "GET", "/admin/log", Some(&session), None);
    assert_eq!(r.status, 200);
    for needle in [
        "projektledare@example.se (workspace)",
        "queue",
        "pause",
        "cancel",
        "cli (",
        "add",
    ] {
        assert!(
            r.body.contains(needle),
            "{needle} missing in the log page: {}",
            r.body
        );
    }
    let audit = d.cli_ok(&["audit"]);
    assert!(
        audit.contains("projektledare@example.se (workspace)"),
        "{audit}"
    );
    assert!(audit.contains("Nyhetsbrev december"), "{audit}");
    assert!(audit.contains("sign-in"), "{audit}");
    let audit = d.cli_ok(&["audit", "--since", "2099-01-01"]);
    assert_eq!(audit.lines().count(), 1, "only the header: {audit}");

    // Logout ends the session on the server: the old cookie is refused.
    let r = call(
        &d,
        "POST",
        "/admin/logout",
        Some(&session),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert!(d.cli_ok(&["audit"]).contains("sign-out"));
    let r = call(&d, "GET", "/admin", Some(&session), None);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").as_deref(), Some("/admin/login"));
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/campaigns"),
        Some(&session),
        Some(&good),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        d.cli_ok(&["campaigns"]).lines().count(),
        2,
        "nothing more queued"
    );
}

#[test]
fn a_missing_or_wrong_csrf_is_refused_and_changes_nothing() {
    let mut d = Daemon::start("");
    let session = sign_in(&mut d);
    let csrf = csrf_of(&call(&d, "GET", "/admin", Some(&session), None).body);
    let md = format!("markdown={}", enc("# Hej\n\nText\n"));
    let path = format!("/admin/lists/{LIST}/campaigns");
    for form in [
        md.clone(),
        format!("csrf=&{md}"),
        format!("csrf={}&{md}", "0".repeat(csrf.len())),
        format!("csrf={}x&{md}", csrf),
    ] {
        let r = call(&d, "POST", &path, Some(&session), Some(&form));
        assert_eq!(r.status, 403, "{form}: {}", r.body);
    }
    for (path, form) in [
        (
            format!("/admin/lists/{LIST}/add"),
            "email=x%40example.org&consent=yes".to_string(),
        ),
        ("/admin/logout".to_string(), String::new()),
    ] {
        assert_eq!(
            call(&d, "POST", &path, Some(&session), Some(&form)).status,
            403,
            "{path}"
        );
    }
    assert_eq!(
        d.cli_ok(&["campaigns"]).lines().count(),
        1,
        "nothing queued"
    );
    assert!(d.status_of(LIST, "x@example.org").is_none());
    // Another session's token is wrong too.
    assert_eq!(
        call(&d, "GET", "/admin", Some(&session), None).status,
        200,
        "still signed in"
    );
    // No session at all: a POST is refused, a GET sent to sign in.
    assert_eq!(
        call(&d, "POST", &path, None, Some(&format!("csrf={csrf}&{md}"))).status,
        403
    );
    assert_eq!(call(&d, "GET", "/admin/campaigns", None, None).status, 303);
    assert_eq!(
        call(&d, "GET", "/admin/campaigns", Some("forged"), None).status,
        303
    );
    // With the token, the same form goes through.
    let r = call(
        &d,
        "POST",
        &path,
        Some(&session),
        Some(&format!("csrf={csrf}&{md}")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn a_strangers_address_gets_the_same_page_and_no_mail_and_a_link_works_once() {
    let mut d = Daemon::start("");
    let owner = call(
        &d,
        "POST",
        "/admin/login",
        None,
        Some(&format!("email={}", enc(OWNER))),
    );
    let mails = d.wait_mails(1);
    let stranger = call(
        &d,
        "POST",
        "/admin/login",
        None,
        Some("email=stranger%40example.org"),
    );
    assert_eq!(
        (owner.status, &owner.body),
        (stranger.status, &stranger.body)
    );
    let nonsense = call(
        &d,
        "POST",
        "/admin/login",
        None,
        Some("email=not-an-address"),
    );
    assert_eq!(
        (owner.status, &owner.body),
        (nonsense.status, &nonsense.body)
    );
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");

    let token = link_token(&mails[0]);
    assert_eq!(
        call(&d, "POST", &format!("/admin/login/{token}"), None, None).status,
        303
    );
    // Used: the link does nothing any more.
    let r = call(&d, "POST", &format!("/admin/login/{token}"), None, None);
    assert_eq!(r.status, 410);
    assert!(r.header("set-cookie").is_none());
    assert_eq!(
        call(&d, "GET", &format!("/admin/login/{token}"), None, None).status,
        410
    );
    // A made-up or altered one neither.
    let altered = format!("{}a", &token[..token.len() - 1]);
    assert_eq!(
        call(&d, "POST", &format!("/admin/login/{altered}"), None, None).status,
        410
    );
    assert_eq!(call(&d, "POST", "/admin/login/x", None, None).status, 410);
}

#[test]
fn sign_in_requests_are_limited_per_address_and_per_ip() {
    let mut d = Daemon::start("");
    for _ in 0..6 {
        let r = call(
            &d,
            "POST",
            "/admin/login",
            None,
            Some(&format!("email={}", enc(OWNER))),
        );
        assert_eq!(r.status, 200);
    }
    // Five links an hour for one address (case and +tags count as one).
    let r = call(
        &d,
        "POST",
        "/admin/login",
        None,
        Some("email=Projektledare%2Bx%40example.se"),
    );
    assert_eq!(r.status, 200);
    d.wait_mails(5);
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");
    // Ten requests an hour from one client; then 429.
    for _ in 0..3 {
        call(
            &d,
            "POST",
            "/admin/login",
            None,
            Some("email=a%40example.org"),
        );
    }
    let r = call(
        &d,
        "POST",
        "/admin/login",
        None,
        Some("email=b%40example.org"),
    );
    assert_eq!(r.status, 429, "{}", r.body);
}

#[test]
fn a_client_outside_allow_from_gets_403_and_a_disabled_workspace_is_not_there() {
    let d = Daemon::start("[admin]\nallow_from = [\"192.0.2.0/24\"]\n");
    for (method, path) in [
        ("GET", "/admin"),
        ("GET", "/admin/login"),
        ("POST", "/admin/login"),
    ] {
        let form = (method == "POST").then_some("email=projektledare%40example.se");
        assert_eq!(
            call(&d, method, path, None, form).status,
            403,
            "{method} {path}"
        );
    }
    drop(d);
    let mut d = Daemon::start("[admin]\nallow_from = [\"127.0.0.0/8\"]\n");
    sign_in(&mut d);
    drop(d);
    let d = Daemon::start("[admin]\nenabled = false\n");
    assert_eq!(call(&d, "GET", "/admin/login", None, None).status, 404);
    assert_eq!(call(&d, "GET", "/admin", None, None).status, 404);
}

#[test]
fn subscribers_are_searched_paged_added_removed_and_exported() {
    let mut d = Daemon::start("");
    for i in 0..60 {
        d.cli_ok(&[
            "add",
            LIST,
            &format!("p{i:02}@example.org"),
            "--attr",
            &format!("region={}", if i % 2 == 0 { "Norr" } else { "Syd" }),
            "--consent",
            "test",
        ]);
    }
    d.cli_ok(&[
        "add",
        LIST,
        "kb@example.org",
        "--name",
        "Karl Berg",
        "--consent",
        "test",
    ]);
    d.cli_ok(&[
        "add",
        LIST,
        "ao@example.org",
        "--name",
        "Åsa Öberg",
        "--consent",
        "test",
    ]);
    d.wait_mails(62); // the welcomes
    let session = sign_in(&mut d);
    let base = format!("/admin/lists/{LIST}/subscribers");
    let r = call(&d, "GET", &base, Some(&session), None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.matches("/person?email&#x3D;").count(),
        50,
        "a page of 50"
    );
    assert!(
        r.body.contains("after&#x3D;p47%40example.org"),
        "the next page's cursor: {}",
        r.body
    );
    let r = call(
        &d,
        "GET",
        &format!("{base}?after=p47%40example.org"),
        Some(&session),
        None,
    );
    assert_eq!(r.body.matches("/person?email&#x3D;").count(), 12);
    let r = call(
        &d,
        "GET",
        &format!("{base}?q=p1&attr=region&value=norr"),
        Some(&session),
        None,
    );
    assert_eq!(
        r.body.matches("/person?email&#x3D;").count(),
        5,
        "{}",
        r.body
    );
    let csrf = csrf_of(&r.body);
    // By name, in any case (the sieve over the stored records lets them by).
    for (q, who) in [
        ("BERG", "kb@example.org"),
        ("öBERG", "ao@example.org"),
        ("Åsa", "ao@example.org"),
    ] {
        let r = call(
            &d,
            "GET",
            &format!("{base}?q={}", enc(q)),
            Some(&session),
            None,
        );
        assert_eq!(
            r.body.matches("/person?email&#x3D;").count(),
            1 + usize::from(q == "BERG"),
            "{q}: {}",
            r.body
        );
        assert!(r.body.contains(who), "{q}: {}", r.body);
    }
    // Add needs a consent text, as the CLI does.
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/add"),
        Some(&session),
        Some(&format!("csrf={csrf}&email=ny%40example.org")),
    );
    assert_eq!(r.status, 422);
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/add"),
        Some(&session),
        Some(&format!("csrf={csrf}&email=ny%40example.org&consent=asked")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        d.status_of(LIST, "ny@example.org").as_deref(),
        Some("confirmed")
    );
    // Remove asks first; the POST acts.
    let r = call(
        &d,
        "GET",
        &format!("/admin/lists/{LIST}/person?email=ny%40example.org&confirm=remove"),
        Some(&session),
        None,
    );
    assert!(r.body.contains("/remove"), "{}", r.body);
    assert_eq!(
        d.status_of(LIST, "ny@example.org").as_deref(),
        Some("confirmed"),
        "a GET changes nothing"
    );
    call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/remove"),
        Some(&session),
        Some(&format!("csrf={csrf}&email=ny%40example.org")),
    );
    assert_eq!(
        d.status_of(LIST, "ny@example.org").as_deref(),
        Some("unsubscribed")
    );
    // Forget erases.
    call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/forget"),
        Some(&session),
        Some(&format!("csrf={csrf}&email=ny%40example.org")),
    );
    assert!(d.status_of(LIST, "ny@example.org").is_none());
    assert!(
        !d.cli_ok(&["audit"]).contains("ny@example.org"),
        "forgotten in the audit log too"
    );
    // The export streams every row.
    let r = call(&d, "GET", &format!("{base}.csv"), Some(&session), None);
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .starts_with("email,name,status,subscribed_at,organisation,region\r\n"),
        "{}",
        r.body
    );
    // The header and the sixty-two; the one forgotten is gone.
    assert_eq!(r.body.lines().count(), 1 + 62, "{}", r.body);
    // Import: a preview first, with the line that cannot be read.
    let csv = "email,name,region\nimp1@example.org,Imp,Norr\nnot-an-address,X,Syd\n";
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/import"),
        Some(&session),
        Some(&format!(
            "csrf={csrf}&step=preview&consent=asked&csv={}",
            enc(csv)
        )),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("<td>3</td>"),
        "the bad line named: {}",
        r.body
    );
    assert!(
        d.status_of(LIST, "imp1@example.org").is_none(),
        "a preview writes nothing"
    );
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/import"),
        Some(&session),
        Some(&format!(
            "csrf={csrf}&step=import&consent=asked&csv={}",
            enc(csv)
        )),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        d.status_of(LIST, "imp1@example.org").as_deref(),
        Some("confirmed")
    );
    // A pasted file larger than a public form's 16 kB is taken (the
    // workspace's own limit is 2 MB).
    let big: String = std::iter::once("email,name\n".to_string())
        .chain((0..3000).map(|i| format!("stor{i:04}@example.org,Stor {i}\n")))
        .collect();
    let form = format!("csrf={csrf}&step=preview&consent=asked&csv={}", enc(&big));
    assert!(form.len() > 100_000);
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/import"),
        Some(&session),
        Some(&form),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("3000"), "{}", r.body);
    // Another owner's list is not there for this owner (none here: a list
    // that does not exist answers alike).
    assert_eq!(
        call(
            &d,
            "GET",
            "/admin/lists/nope/subscribers",
            Some(&session),
            None
        )
        .status,
        404
    );
}

#[test]
fn a_closed_lists_request_is_approved_and_the_report_downloads() {
    let mut d = Daemon::start("");
    // Someone confirms their address on the closed list; they then wait.
    let to = format!("partnerskap-subscribe@{DOMAIN}");
    d.send(
        "vera@example.org",
        &to,
        &common::plain("vera@example.org", &to, "subscribe", ""),
    );
    let mails = d.wait_mails(1);
    let token = mails[0].token();
    let confirm = format!("partnerskap-confirm+{token}@{DOMAIN}");
    d.send(
        "vera@example.org",
        &confirm,
        &common::plain("vera@example.org", &confirm, "Re: bekräfta", "ja"),
    );
    d.wait_mails(2); // "awaiting approval", and the owner's request
    let session = sign_in(&mut d);
    let r = call(
        &d,
        "GET",
        "/admin/lists/partnerskap/approvals",
        Some(&session),
        None,
    );
    assert!(r.body.contains("vera@example.org"), "{}", r.body);
    let csrf = csrf_of(&r.body);
    let r = call(
        &d,
        "POST",
        "/admin/lists/partnerskap/approve",
        Some(&session),
        Some(&format!("csrf={csrf}&email=vera%40example.org")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        d.status_of("partnerskap", "vera@example.org").as_deref(),
        Some("confirmed")
    );
    let r = call(
        &d,
        "GET",
        &format!("/admin/report?list={LIST}"),
        Some(&session),
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<th scope=\"row\">"), "{}", r.body);
    let r = call(
        &d,
        "GET",
        "/admin/report.svg?list=partnerskap",
        Some(&session),
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("image/svg+xml"));
    assert!(r.body.contains("<svg") && !r.body.contains("<script"));
    let r = call(
        &d,
        "GET",
        "/admin/report.csv?list=partnerskap",
        Some(&session),
        None,
    );
    assert!(
        r.body.starts_with("month,confirmed,joins,leaves"),
        "{}",
        r.body
    );
    assert!(r
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
}

#[test]
fn a_link_runs_out_after_15_minutes_and_a_session_after_12_idle_hours() {
    let clock = utskick::time::ManualClock::at(chrono::Utc::now());
    let (mut d, _daemon) = Daemon::start_on_clock("", &clock);
    let ask = |d: &Daemon| {
        call(
            d,
            "POST",
            "/admin/login",
            None,
            Some(&format!("email={}", enc(OWNER))),
        )
    };
    ask(&d);
    let token = link_token(&d.wait_mails(1)[0]);
    clock.advance(15 * 60);
    let r = call(&d, "POST", &format!("/admin/login/{token}"), None, None);
    assert_eq!(r.status, 410, "an expired link does nothing");
    assert!(r.header("set-cookie").is_none());

    ask(&d);
    let token = link_token(&d.wait_mails(1)[0]);
    clock.advance(15 * 60 - 1);
    let r = call(&d, "POST", &format!("/admin/login/{token}"), None, None);
    assert_eq!(r.status, 303, "a link in its last second works");
    let cookie = r.header("set-cookie").unwrap();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("utskick_session=")
        .to_string();
    // Each request moves the idle clock; twelve idle hours end the session.
    for _ in 0..3 {
        clock.advance(11 * 3600);
        assert_eq!(call(&d, "GET", "/admin", Some(&session), None).status, 200);
    }
    clock.advance(12 * 3600);
    assert_eq!(call(&d, "GET", "/admin", Some(&session), None).status, 303);
    assert_eq!(
        call(&d, "GET", "/admin", Some(&session), None).status,
        303,
        "and stays ended"
    );

    // A session kept busy still ends seven days after it began.
    ask(&d);
    let token = link_token(&d.wait_mails(1)[0]);
    let r = call(&d, "POST", &format!("/admin/login/{token}"), None, None);
    let session = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("utskick_session=")
        .to_string();
    for _ in 0..15 {
        clock.advance(11 * 3600);
        assert_eq!(call(&d, "GET", "/admin", Some(&session), None).status, 200);
    }
    clock.advance(11 * 3600);
    assert_eq!(
        call(&d, "GET", "/admin", Some(&session), None).status,
        303,
        "7 days after sign-in, however busy"
    );
}

#[test]
fn a_material_announcement_is_queued_from_the_form_as_announce_would() {
    let mut d = Daemon::start("");
    let session = sign_in(&mut d);
    let csrf = csrf_of(
        &call(
            &d,
            "GET",
            &format!("/admin/lists/{LIST}/campaigns"),
            Some(&session),
            None,
        )
        .body,
    );
    let path = format!("/admin/lists/{LIST}/campaigns");
    let form = |link: &str| {
        format!(
            "csrf={csrf}&kind=announcement&subject={}&link={}&markdown={}",
            enc("Handboken är klar"),
            enc(link),
            enc("Läs den *nu*.")
        )
    };
    let r = call(
        &d,
        "POST",
        &path,
        Some(&session),
        Some(&form("javascript:alert(1)")),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("is not a web address"), "{}", r.body);
    let r = call(
        &d,
        "POST",
        &path,
        Some(&session),
        Some(&form("https://example.se/handbok.pdf")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let listed = d.cli_ok(&["campaigns"]);
    assert!(
        listed.contains("announcement") && listed.contains("Handboken är klar"),
        "{listed}"
    );
}

/// A `multipart/form-data` body as a browser sends it.
fn multipart(boundary: &str, fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes());
    }
    for (file, data) in files {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n").bytes());
        body.extend_from_slice(data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    body
}

fn call_multipart(d: &Daemon, path: &str, cookie: &str, boundary: &str, body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(&d.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nCookie: utskick_session={cookie}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        d.http,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        head: head.to_string(),
        body: body.to_string(),
    }
}

#[test]
fn a_newsletter_with_an_attachment_is_queued_from_the_form() {
    let mut d = Daemon::start("[limits]\nmax_attachment_bytes = 4096\n");
    let session = sign_in(&mut d);
    let csrf = csrf_of(
        &call(
            &d,
            "GET",
            &format!("/admin/lists/{LIST}/campaigns"),
            Some(&session),
            None,
        )
        .body,
    );
    let path = format!("/admin/lists/{LIST}/campaigns");
    let b = "----utskickTest7";
    let fields = [
        ("csrf", csrf.as_str()),
        ("subject", "Program"),
        ("markdown", "Programmet bifogas.\r\n"),
    ];
    // Without the csrf field: refused, in this encoding too.
    let body = multipart(b, &fields[1..], &[("program.pdf", b"%PDF-1.4 x")]);
    assert_eq!(call_multipart(&d, &path, &session, b, &body).status, 403);
    // Too big together: refused with the limit named, nothing queued.
    let body = multipart(b, &fields, &[("stor.pdf", &[b'x'; 5000])]);
    let r = call_multipart(&d, &path, &session, b, &body);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("at most"), "{}", r.body);
    let body = multipart(b, &fields, &[("program.pdf", b"%PDF-1.4 x")]);
    let r = call_multipart(&d, &path, &session, b, &body);
    assert_eq!(r.status, 303, "{}", r.body);
    let listed = d.cli_ok(&["campaigns"]);
    let id = listed
        .lines()
        .nth(1)
        .expect(&listed)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let status = d.cli_ok(&["status", &id, "--json"]);
    assert!(status.contains("program.pdf"), "{status}");
}

#[test]
fn the_clis_changes_without_a_daemon_are_in_the_audit_log_too() {
    let d = Daemon::prepare("");
    let csv = d.dir.path().join("people.csv");
    std::fs::write(&csv, "email,name\nolle@example.org,Olle\n").unwrap();
    d.cli_ok(&[
        "import",
        LIST,
        csv.to_str().unwrap(),
        "--consent",
        "met at the fair",
    ]);
    d.cli_ok(&["remove", LIST, "olle@example.org"]);
    let audit = d.cli_ok(&["audit", "--format", "csv"]);
    let lines: Vec<&str> = audit.lines().collect();
    assert_eq!(lines.len(), 3, "{audit}");
    assert!(
        lines[1].contains(",cli (") && lines[1].contains(",import,"),
        "{audit}"
    );
    assert!(
        lines[2].contains(",remove,") && lines[2].contains("olle@example.org"),
        "{audit}"
    );
    d.cli_ok(&["forget", "olle@example.org"]);
    let audit = d.cli_ok(&["audit", "--format", "csv"]);
    assert!(!audit.contains("olle@example.org"), "{audit}");
    assert!(audit.contains("(forgotten)"), "{audit}");
}

/// A discussion list's posts, for its owners only: the workspace shows the
/// closed `partnerskap` list's threads (authors by name), while the public
/// archive has none for it, and a newsletter list has no thread page.
#[test]
fn the_owners_see_a_closed_discussion_lists_threads() {
    let mut d = Daemon::start("");
    for (email, name) in [("anna@example.org", "Anna Berg"), ("bo@example.org", "Bo")] {
        d.cli_ok(&[
            "add",
            "partnerskap",
            email,
            "--name",
            name,
            "--consent",
            "test",
        ]);
    }
    d.wait_mails(2);
    let to = format!("partnerskap@{DOMAIN}");
    let post = format!(
        "From: Anna Berg <anna@example.org>\r\nTo: {to}\r\nSubject: Delprojekt 3\r\nMessage-ID: <p1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVi ses i Ljusdal.\r\n"
    );
    assert!(d.send("anna@example.org", &to, &post).starts_with("250"));
    d.wait_mails(2);
    let session = sign_in(&mut d);
    let overview = call(&d, "GET", "/admin", Some(&session), None);
    assert!(
        overview.body.contains("/admin/lists/partnerskap/threads"),
        "{}",
        overview.body
    );
    let page = call(
        &d,
        "GET",
        "/admin/lists/partnerskap/threads",
        Some(&session),
        None,
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Delprojekt 3"), "{}", page.body);
    assert!(page.body.contains("Anna Berg"), "{}", page.body);
    assert!(page.body.contains("Vi ses i Ljusdal."), "{}", page.body);
    assert!(!page.body.contains("anna@example.org"), "{}", page.body);
    assert_eq!(
        call(&d, "GET", "/archive/partnerskap/threads", None, None).status,
        404,
        "a closed list's posts are not public"
    );
    assert_eq!(
        call(&d, "GET", "/admin/lists/partnerskap/threads", None, None).status,
        303,
        "nor there without a session"
    );
    assert_eq!(
        call(
            &d,
            "GET",
            "/admin/lists/lokal-finansiering/threads",
            Some(&session),
            None
        )
        .status,
        404,
        "a newsletter list has no threads"
    );
}
