//! Hostile review of the newest changes (attachments = "link", the
//! per-campaign outcome counters, the workspace thread view, the
//! hostile_15 fixes). Each test here failed when written.

mod common;

use common::Daemon;

/// Adds `people` as confirmed subscribers and sends them a newsletter;
/// returns each one's copy.
fn newsletter_to(d: &mut Daemon, people: &[(&str, &str)]) -> Vec<common::Mail> {
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
    d.wait_mails(people.len())
}

fn dsn(to: &str, failed: &str, action: &str, status: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <{}@mx.example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nDelivery report.\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; {failed}\r\nAction: {action}\r\nStatus: {status}\r\nDiagnostic-Code: smtp; 450 {status} try later\r\n\r\n--b1--\r\n",
        common::rand_id()
    )
}

/// FINDING (low, statistics): a campaign's `bounced` counts delivery
/// reports, not copies. One copy that is first delayed (a warning: the
/// MTA is still trying) and then fails makes `bounced` 2 for one
/// recipient; a relay that repeats its report, or anyone holding the VERP
/// address of a copy (it is in every copy's Return-Path), can push the
/// count past the number of copies sent.
#[test]
fn hostile_one_copy_counts_at_most_one_bounce_for_its_campaign() {
    let mut d = Daemon::start("");
    let copies = newsletter_to(&mut d, &[("cilla@example.org", "Cilla")]);
    let c = &copies[0];
    let id = c
        .header("Message-ID")
        .unwrap()
        .split(".c")
        .nth(1)
        .and_then(|t| t.split('.').next())
        .unwrap()
        .to_string();
    let verp = c.reverse_path.clone().unwrap();
    let r = d.send(
        "",
        &verp,
        &dsn(&verp, "cilla@example.org", "delayed", "4.4.7"),
    );
    assert!(r.starts_with("250"), "{r}");
    let r = d.send(
        "",
        &verp,
        &dsn(&verp, "cilla@example.org", "failed", "5.1.1"),
    );
    assert!(r.starts_with("250"), "{r}");
    let status: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["status", &id, "--json"])).unwrap();
    assert!(
        status["outcome"]["bounced"].as_u64().unwrap() <= 1,
        "one copy to one person counted as more than one bounce: {status}"
    );
}

/// FINDING (low-medium): the audit log's filter is `char::is_control`,
/// which is Unicode's Cc only. A consent text (typed by an owner in the
/// workspace, or given to `import --consent`) keeps U+202E RIGHT-TO-LEFT
/// OVERRIDE, U+2066.. isolates and U+2028 LINE SEPARATOR, and `utskick
/// audit` prints them to root's terminal: bidi overrides reorder what the
/// line shows (Trojan Source), U+2028 breaks it in editors and some
/// terminals and log viewers.
#[test]
fn hostile_bidi_overrides_and_line_separators_reach_the_cli_audit_log() {
    let d = Daemon::start("");
    let csv = d.dir.path().join("folk.csv");
    std::fs::write(&csv, "email,name\nny@example.org,Ny\n").unwrap();
    let consent = "asked\u{202E}tegrof toor\u{202C}\u{2028}FORGED line\u{2066}x\u{2069}";
    d.cli_ok(&[
        "import",
        "lokal-finansiering",
        csv.to_str().unwrap(),
        "--consent",
        consent,
    ]);
    let audit = d.cli_ok(&["audit"]);
    assert!(
        audit.contains("asked"),
        "the import is not in the log:\n{audit}"
    );
    let bad: Vec<char> = audit
        .chars()
        .filter(|c| {
            matches!(*c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
        })
        .collect();
    assert!(
        bad.is_empty(),
        "`utskick audit` prints bidi/line-separator characters {bad:?}:\n{audit:?}"
    );
}
