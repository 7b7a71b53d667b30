//! The command line: inject and its sysexits codes, admin commands with and
//! without a running daemon, output formats, and bad configuration files.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{bin, plain, repo, Daemon, DOMAIN};

fn addr(suffix: &str) -> String {
    format!("lokal-finansiering{suffix}@{DOMAIN}")
}

fn inject(d: &Daemon, args: &[&str], stdin: &[u8]) -> (i32, String) {
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(d.config_path())
        .arg("inject")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn check_inject(d: &mut Daemon) {
    // Recipient from the To header.
    let msg = plain("k@example.org", &addr("-subscribe"), "subscribe", "");
    let (code, err) = inject(d, &[], msg.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.wait_mails(1)[0].to, "k@example.org");
    // Explicit recipient that is not a list address: 67.
    let (code, err) = inject(d, &["--recipient", "nobody@example.com"], msg.as_bytes());
    assert_eq!(code, 67, "{err}");
    assert!(
        err.starts_with("utskick: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    // No list address in the headers either: 67.
    let other = plain("k@example.org", "someone@example.com", "x", "");
    assert_eq!(inject(d, &[], other.as_bytes()).0, 67);
    // Not a message at all: 65.
    assert_eq!(
        inject(
            d,
            &["--recipient", &addr("-subscribe")],
            b"\x00\x01 garbage"
        )
        .0,
        65
    );
    assert_eq!(inject(d, &["--recipient", &addr("-subscribe")], b"").0, 65);
}

#[test]
fn inject_through_the_running_daemon() {
    let mut d = Daemon::start("");
    check_inject(&mut d);
}

#[test]
fn inject_and_admin_commands_without_a_daemon() {
    let mut d = Daemon::start("");
    d.terminate();
    check_inject(&mut d);
    // The CLI queued and sent the confirmation itself, and the store it left
    // is what the next daemon sees.
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "L@Example.ORG",
        "--name",
        "Lena",
        "--attr",
        "region=Jämtland",
        "--consent",
        "listan på mötet",
    ]);
    assert_eq!(d.wait_mails(1)[0].to, "L@example.org");
    d.spawn();
    assert_eq!(
        d.status_of("lokal-finansiering", "L@example.org")
            .as_deref(),
        Some("confirmed")
    );
}

#[test]
fn inject_refuses_a_message_over_the_size_limit() {
    let d = Daemon::start("[inbound]\nlisten = \"127.0.0.1:0\"\nmax_message_bytes = 2048\n");
    let msg = plain(
        "k@example.org",
        &addr("-subscribe"),
        "subscribe",
        &"x".repeat(4000),
    );
    let (code, err) = inject(&d, &[], msg.as_bytes());
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("max_message_bytes"), "{err}");
}

#[test]
fn admin_commands_and_formats() {
    let mut d = Daemon::start("");
    let out = d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "m@example.org",
        "--name",
        "Maja, \"Mo\" Berg",
        "--attr",
        "organisation=Byalaget",
        "--consent",
        "bad om det i telefon 2026-11-20",
    ]);
    assert!(out.contains("added"), "{out}");
    d.wait_mails(1);
    // Adding again is harmless.
    assert!(d
        .cli_ok(&[
            "add",
            "lokal-finansiering",
            "m@example.org",
            "--consent",
            "x"
        ])
        .contains("already"));

    let table = d.cli_ok(&["subscribers", "lokal-finansiering"]);
    assert!(
        table.lines().next().unwrap().starts_with("email"),
        "{table}"
    );
    assert!(
        table.contains("m@example.org") && table.contains("Byalaget"),
        "{table}"
    );
    let csv = d.cli_ok(&["subscribers", "lokal-finansiering", "--format", "csv"]);
    assert!(csv.contains("\"Maja, \"\"Mo\"\" Berg\""), "{csv}");
    let json = d.subscribers("lokal-finansiering");
    let s = &json[0];
    for key in [
        "email",
        "name",
        "status",
        "bounces",
        "subscribed_at",
        "attributes",
    ] {
        assert!(s.get(key).is_some(), "missing {key}: {s}");
    }
    assert_eq!(s["attributes"]["organisation"], "Byalaget");
    assert_eq!(s["consent"]["method"], "admin");
    assert_eq!(s["consent"]["evidence"], "bad om det i telefon 2026-11-20");

    let lists = d.cli_ok(&["lists"]);
    assert!(
        lists.contains("lokal-finansiering") && lists.contains("partnerskap"),
        "{lists}"
    );

    let only_pending = d.cli_ok(&[
        "subscribers",
        "lokal-finansiering",
        "--status",
        "pending",
        "--format",
        "json",
    ]);
    assert_eq!(only_pending.trim(), "[]");

    assert!(d
        .cli_ok(&["remove", "lokal-finansiering", "m@example.org"])
        .contains("removed"));
    assert_eq!(
        d.status_of("lokal-finansiering", "m@example.org")
            .as_deref(),
        Some("unsubscribed")
    );

    // Errors: one line on stderr, non-zero exit, nothing changed.
    for args in [
        vec!["subscribers", "no-such-list"],
        vec![
            "add",
            "lokal-finansiering",
            "not-an-address",
            "--consent",
            "x",
        ],
        vec![
            "add",
            "lokal-finansiering",
            "n@example.org",
            "--consent",
            " ",
        ],
        vec![
            "add",
            "lokal-finansiering",
            "n@example.org",
            "--attr",
            "shoe=42",
            "--consent",
            "x",
        ],
        vec![
            "add",
            "lokal-finansiering",
            "n@example.org",
            "--attr",
            "novalue",
            "--consent",
            "x",
        ],
        vec!["remove", "lokal-finansiering", "never@example.org"],
        vec!["subscribers", "lokal-finansiering", "--status", "maybe"],
    ] {
        let out = d.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("utskick: ") && err.trim_end().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    assert_eq!(d.subscribers("lokal-finansiering").len(), 1);
}

#[test]
fn bad_configuration_files_are_named_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[inbound]\nlisten = \"localhost\"\n",
            "key `inbound.listen`",
        ),
        (
            "[outbound]\ntransport = \"carrier-pigeon\"\n",
            "key `outbound.transport`: unknown variant `carrier-pigeon`",
        ),
        (
            "domain = 42\n",
            "key `domain`: invalid type: integer `42`, expected a string",
        ),
        ("[inbound\n", "line 1"),
    ];
    for (text, want) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(bin())
            .arg("--config")
            .arg(&path)
            .arg("lists")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(
            err.contains("bad.toml: ") && err.contains(want),
            "want {want:?} in {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    let out = Command::new(bin())
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .arg("lists")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml: cannot read"));
    // A bad list file names the file.
    let lists = dir.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(
        lists.join("trasig.toml"),
        "name = \"T\"\naddress = \"a+b\"\n",
    )
    .unwrap();
    let cfg = dir.path().join("ok.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\nlists_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
            dir.path().join("data").display(),
            lists.display(),
            repo("templates").display()
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("lists")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("trasig.toml: key `address`"), "{err}");
}

#[test]
fn inject_never_answers_the_null_sender_of_the_return_path() {
    let mut d = Daemon::start("");
    let msg = format!(
        "Return-Path: <>\r\n{}",
        plain("person@example.org", &addr("-request"), "hjälp", "")
    );
    let (code, err) = inject(&d, &[], msg.as_bytes());
    assert_eq!(code, 0, "{err}");
    d.assert_no_new_mail_except_sentinel("sentinel9@example.org");
}

#[test]
fn inject_defers_when_the_configuration_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[inbound]\nlisten = \"nowhere\"\n").unwrap();
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&bad)
        .arg("inject")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"From: a@b.se\r\n\r\nx\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `subscribers` streams: a list longer than one page (512) comes out
/// whole and in order in every format, through the daemon and without it,
/// with the list's declared attributes as columns.
#[test]
fn subscribers_stream_past_a_page_in_every_format() {
    let mut d = Daemon::start("");
    let n = 1_300;
    let mut csv = String::from("email,name,organisation,region\n");
    for i in 0..n {
        csv.push_str(&format!(
            "p{i:05}@example.org,Person {i},\"Byalag, nr {i}\",\n"
        ));
    }
    let path = d.data().join("many.csv");
    std::fs::write(&path, csv).unwrap();
    let out = d.cli_ok(&[
        "import",
        "lokal-finansiering",
        path.to_str().unwrap(),
        "--consent",
        "listan från mötet",
    ]);
    assert!(out.contains(&format!("{n} added")), "{out}");

    let csv = d.cli_ok(&["subscribers", "lokal-finansiering", "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), n + 1, "header and one line each");
    assert_eq!(
        lines[0],
        "email,name,status,bounces,subscribed_at,organisation,region"
    );
    for (i, line) in lines[1..].iter().enumerate() {
        assert!(
            line.starts_with(&format!("p{i:05}@example.org,Person {i},confirmed,0,")),
            "line {}: {line}",
            i + 2
        );
        assert!(line.ends_with(&format!(",\"Byalag, nr {i}\",")), "{line}");
    }
    let json: Vec<serde_json::Value> =
        serde_json::from_str(&d.cli_ok(&["subscribers", "lokal-finansiering", "--format", "json"]))
            .unwrap();
    assert_eq!(json.len(), n);
    assert_eq!(json[n - 1]["email"], format!("p{:05}@example.org", n - 1));
    let table = d.cli_ok(&["subscribers", "lokal-finansiering"]);
    assert_eq!(table.lines().count(), n + 1);
    let none = d.cli_ok(&[
        "subscribers",
        "lokal-finansiering",
        "--status",
        "bounced",
        "--format",
        "csv",
    ]);
    assert_eq!(none.lines().count(), 1, "only the header: {none}");

    // Without a daemon the CLI reads the store itself: the same bytes.
    assert!(d.terminate().success());
    let local = d.cli(&["subscribers", "lokal-finansiering", "--format", "csv"]);
    assert!(local.status.success());
    assert_eq!(String::from_utf8(local.stdout).unwrap(), csv);
}
