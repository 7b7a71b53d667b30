//! Import, export, person, forget, backup and restore through the CLI of
//! the real binary, with and without a running daemon.

mod common;

use common::Daemon;

fn write(d: &Daemon, name: &str, bytes: &[u8]) -> String {
    let p = d.dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

#[test]
fn import_reads_excel_exports_reports_bad_rows_and_is_idempotent() {
    let mut d = Daemon::start("");
    let csv = "\u{feff}E-post;Namn;organisation;region\r\nasa@example.se;\"Öberg; Åsa\";Byalaget;Jämtland\r\nnot-an-address;X;;\r\nbo@example.se;Bo;;Skåne\r\nBO@example.se;Bo igen;;\r\n";
    let path = write(&d, "deltagare.csv", csv.as_bytes());
    let out = d.cli(&[
        "import",
        "lokal-finansiering",
        &path,
        "--consent",
        "anmälningslista träffen i Ljusdal 2026-11-20",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("2 added")
            && stdout.contains("1 unchanged")
            && stdout.contains("1 unreadable"),
        "{stdout}"
    );
    assert!(
        stderr.contains("deltagare.csv:3:"),
        "bad row by line: {stderr}"
    );
    let subs = d.subscribers("lokal-finansiering");
    assert_eq!(subs.len(), 2);
    let asa = subs
        .iter()
        .find(|s| s["email"] == "asa@example.se")
        .unwrap();
    assert_eq!(asa["status"], "confirmed");
    assert_eq!(asa["name"], "Öberg; Åsa");
    assert_eq!(asa["attributes"]["region"], "Jämtland");
    assert_eq!(asa["consent"]["method"], "import");
    assert!(asa["consent"]["evidence"]
        .as_str()
        .unwrap()
        .contains("Ljusdal"));
    // Nobody gets mail from an import with consent.
    d.assert_no_new_mail_except_sentinel("sentinel@example.org");
    // Again: nothing changes.
    let before = d.subscribers("lokal-finansiering");
    let out = d.cli_ok(&["import", "lokal-finansiering", &path, "--consent", "igen"]);
    assert!(
        out.contains("0 added") && out.contains("3 unchanged"),
        "{out}"
    );
    let after = d.subscribers("lokal-finansiering");
    assert_eq!(before, after);
    // The export imports back unchanged into another daemon.
    let export = d.cli_ok(&["subscribers", "lokal-finansiering", "--format", "csv"]);
    let mut d2 = Daemon::start("");
    let path2 = write(&d2, "export.csv", export.as_bytes());
    let out = d2.cli_ok(&[
        "import",
        "lokal-finansiering",
        &path2,
        "--consent",
        "flytt från gamla listan",
    ]);
    assert!(
        out.contains("2 added") && out.contains("1 skipped"),
        "the pending sentinel is not imported: {out}"
    );
    let mine: Vec<(String, String, String)> = d2
        .subscribers("lokal-finansiering")
        .iter()
        .map(|s| {
            (
                s["email"].to_string(),
                s["name"].to_string(),
                s["attributes"].to_string(),
            )
        })
        .collect();
    let theirs: Vec<(String, String, String)> = after
        .iter()
        .filter(|s| s["status"] == "confirmed")
        .map(|s| {
            (
                s["email"].to_string(),
                s["name"].to_string(),
                s["attributes"].to_string(),
            )
        })
        .collect();
    assert_eq!(mine, theirs);
    d2.assert_no_new_mail_except_sentinel("sentinel@example.org");
}

/// A file read a batch at a time while the batches before it are
/// imported: bad rows in the middle, at the start and at the end of a file
/// many batches long are each reported with their line, in the file's
/// order, and every good row around them is imported; without a daemon
/// (this process's big batches) and through one (the socket's small ones).
#[test]
fn a_big_file_with_bad_rows_throughout_reports_each_by_line() {
    let mut d = Daemon::prepare("");
    let file = |prefix: &str| {
        let mut csv = String::from("email,name,organisation\n");
        let (mut good, mut bad) = (0, Vec::new());
        for i in 0..1_500 {
            let line = 2 + good + bad.len();
            if i == 0 || i % 211 == 7 {
                csv.push_str(&format!("{prefix}{i}-at-example.org,X,\n"));
                bad.push(format!(
                    "{line}: \"{prefix}{i}-at-example.org\" is not an e-mail address"
                ));
            } else if i % 307 == 11 || i == 1_499 {
                csv.push_str(&format!("{prefix}{i}@example.org,X,Y,Z\n"));
                bad.push(format!("{line}: 4 fields where the header has 3"));
            } else {
                csv.push_str(&format!("{prefix}{i}@example.org,P {i},\n"));
                good += 1;
            }
        }
        (csv, good, bad)
    };
    let mut imported = 0;
    for (prefix, daemon) in [("a", false), ("b", true)] {
        if daemon {
            d.spawn();
        }
        let (csv, good, bad) = file(prefix);
        let name = format!("{prefix}.csv");
        let path = write(&d, &name, csv.as_bytes());
        let out = d.cli(&["import", "lokal-finansiering", &path, "--consent", "x"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let reported: Vec<String> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{path}:")))
            .map(str::to_string)
            .collect();
        assert_eq!(reported, bad, "daemon {daemon}: {stderr}");
        assert!(
            stdout.contains(&format!("{good} added")),
            "daemon {daemon}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("{} unreadable", bad.len())),
            "daemon {daemon}: {stdout}"
        );
        imported += good;
        assert_eq!(d.subscribers("lokal-finansiering").len(), imported);
    }
}

#[test]
fn invite_sends_invitations_and_subscribes_no_one() {
    let mut d = Daemon::start("");
    let path = write(
        &d,
        "inbjudan.csv",
        "email,name\nkarin@example.se,Karin\nlars@example.se,Lars\n".as_bytes(),
    );
    let out = d.cli_ok(&["import", "lokal-finansiering", &path, "--invite"]);
    assert!(out.contains("2 invited"), "{out}");
    let mails = d.wait_mails(2);
    assert!(mails
        .iter()
        .all(|m| m.reply_to.starts_with("lokal-finansiering-confirm+")));
    assert!(mails.iter().any(|m| m.text.contains("Hej Karin!")));
    let subs = d.subscribers("lokal-finansiering");
    assert!(subs.iter().all(|s| s["status"] == "pending"), "{subs:?}");
    // The cap: inviting again today sends nothing.
    let out = d.cli_ok(&["import", "lokal-finansiering", &path, "--invite"]);
    assert!(out.contains("0 invited"), "{out}");
    // Karin accepts by replying.
    let karin = mails.iter().find(|m| m.to == "karin@example.se").unwrap();
    let to = karin.reply_to.clone();
    d.send(
        "karin@example.se",
        &to,
        &common::plain("karin@example.se", &to, "Re: inbjudan", "Ja!"),
    );
    assert!(d.wait_mails(1)[0].subject.contains("Välkommen"));
    assert_eq!(
        d.status_of("lokal-finansiering", "karin@example.se")
            .as_deref(),
        Some("confirmed")
    );
    assert_eq!(
        d.status_of("lokal-finansiering", "lars@example.se")
            .as_deref(),
        Some("pending")
    );
}

#[test]
fn person_and_forget_then_an_import_keeps_them_out() {
    let mut d = Daemon::start("");
    d.cli_ok(&[
        "add",
        "lokal-finansiering",
        "mona@example.se",
        "--name",
        "Mona",
        "--consent",
        "telefon",
    ]);
    d.cli_ok(&[
        "add",
        "partnerskap",
        "mona@example.se",
        "--consent",
        "styrgruppen",
    ]);
    d.wait_mails(2);
    let person: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["person", "Mona@Example.se"])).unwrap();
    assert_eq!(
        person["subscriptions"].as_array().unwrap().len(),
        2,
        "{person}"
    );
    assert_eq!(person["subscriptions"][0]["consent"]["evidence"], "telefon");
    assert_eq!(person["forgotten"], false);
    let out = d.cli_ok(&["forget", "mona@example.se"]);
    assert!(out.contains("suppression"), "{out}");
    let person: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["person", "mona@example.se"])).unwrap();
    assert!(person["subscriptions"].as_array().unwrap().is_empty());
    assert_eq!(person["forgotten"], true);
    let path = write(
        &d,
        "gammal.csv",
        b"email,name\nmona@example.se,Mona\nnils@example.se,Nils\n",
    );
    let out = d.cli(&[
        "import",
        "lokal-finansiering",
        &path,
        "--consent",
        "gammal lista",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gammal.csv:2: skipped: forgotten"),
        "{stderr}"
    );
    assert!(d
        .status_of("lokal-finansiering", "mona@example.se")
        .is_none());
    assert_eq!(
        d.status_of("lokal-finansiering", "nils@example.se")
            .as_deref(),
        Some("confirmed")
    );
    // Explicitly overridden.
    d.cli_ok(&[
        "import",
        "lokal-finansiering",
        &path,
        "--consent",
        "hon bad om det själv",
        "--allow-forgotten",
    ]);
    assert_eq!(
        d.status_of("lokal-finansiering", "mona@example.se")
            .as_deref(),
        Some("confirmed")
    );
}

/// The confirmed and pending tallies `lists` shows for `list`.
fn tallies(d: &Daemon, list: &str) -> (u64, u64) {
    let lists = d.cli_ok(&["lists"]);
    let row: Vec<&str> = lists
        .lines()
        .find(|l| l.starts_with(&format!("{list} ")))
        .unwrap_or_else(|| panic!("no {list} in {lists}"))
        .split_whitespace()
        .collect();
    // list, address, subscription, confirmed, pending, ...
    (row[3].parse().unwrap(), row[4].parse().unwrap())
}

/// Issue 17 (import at scale): an import without a daemon is killed
/// (SIGKILL) part way through, between or inside its writes: an import
/// with consent writes each batch's id index entries, then its records,
/// then the tallies, not in one transaction (`Store::write_records`), so
/// it is killed at three points of its log's growth, each in a fresh data
/// dir. Running the same file again adds every row that is not there,
/// exactly once, and the tallies `lists` shows count each person once; a
/// third run adds nothing and says so. Duplicates within the file (one
/// spelled in capitals) count as there already.
#[test]
fn an_import_killed_part_way_and_run_again_adds_every_row_once() {
    for kill_at in [1 << 20, 3 << 20, 6 << 20] {
        killed_when_the_log_passes(kill_at);
    }
}

fn killed_when_the_log_passes(kill_at: u64) {
    let d = Daemon::prepare("");
    const N: u64 = 12_000;
    let mut csv = String::from("email,name\n");
    for i in 0..N {
        csv.push_str(&format!("p{i}@example.org,Person {i}\n"));
    }
    csv.push_str("p7@example.org,Igen\nP8@EXAMPLE.org,Igen\n");
    let path = write(&d, "stor.csv", csv.as_bytes());
    let import = || {
        let mut c = std::process::Command::new(common::bin());
        c.arg("--config")
            .arg(d.config_path())
            .args(["import", "lokal-finansiering", &path, "--consent", "x"])
            .env("LANG", "C");
        c
    };
    let mut first = import()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the store's log has grown to `kill_at`: part way (or, on
    // a fast machine, as it ends; the checks below hold either way).
    let log = d.data().join("store").join("db");
    loop {
        if first.try_wait().unwrap().is_some() {
            break;
        }
        if std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) > kill_at {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = first.kill();
    let killed = first.wait().unwrap();
    eprintln!("the first import ended at {kill_at} bytes of log: {killed:?}");
    let again = import().output().unwrap();
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let number = |word: &str| -> u64 {
        let before = &out[..out.find(&format!(" {word}")).unwrap()];
        before.rsplit([' ', ',']).next().unwrap().parse().unwrap()
    };
    assert_eq!(number("added") + number("unchanged"), N + 2, "{out}");
    let subs = d.subscribers("lokal-finansiering");
    assert_eq!(subs.len() as u64, N);
    assert!(subs.iter().all(|s| s["status"] == "confirmed"));
    assert_eq!(tallies(&d, "lokal-finansiering"), (N, 0));
    let third = d.cli_ok(&["import", "lokal-finansiering", &path, "--consent", "x"]);
    assert!(
        third.contains("0 added") && third.contains(&format!("{} unchanged", N + 2)),
        "{third}"
    );
    assert_eq!(tallies(&d, "lokal-finansiering"), (N, 0));
}

#[test]
fn backup_while_running_then_restore_into_a_new_dir_is_equal() {
    let mut d = Daemon::start("");
    for (e, n) in [("a@example.se", "A"), ("b@example.se", "B")] {
        d.cli_ok(&[
            "add",
            "lokal-finansiering",
            e,
            "--name",
            n,
            "--attr",
            "region=Skåne",
            "--consent",
            "test",
        ]);
    }
    d.wait_mails(2);
    let md = write(&d, "n.md", b"# Nyhet\n\nHej {{name}}!\n");
    d.cli_ok(&["queue", "lokal-finansiering", &md]);
    d.wait_mails(2);
    // The copies are out; the campaign is marked done a moment later. The
    // backup is compared with what the daemon says after it, so it waits
    // for that (under load the two could straddle the change).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !d.cli_ok(&["campaigns"]).contains(" done ") {
        assert!(
            std::time::Instant::now() < deadline,
            "the campaign never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let backup = d.dir.path().join("backup.jsonl");
    let out = d.cli_ok(&["backup", backup.to_str().unwrap()]);
    assert!(out.contains("backed up"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let original_subs = d.subscribers("lokal-finansiering");
    let original_campaigns = d.cli_ok(&["campaigns"]);
    let original_lists = d.cli_ok(&["lists"]);

    // A new daemon's config, restored before it starts.
    let d2dir = tempfile::tempdir().unwrap();
    let cfg = d2dir.path().join("u.toml");
    std::fs::write(
        &cfg,
        format!(
            "domain = \"{}\"\nbase_url = \"https://lista.example.se\"\ndata_dir = \"{}\"\nlists_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
            common::DOMAIN,
            d2dir.path().join("data").display(),
            common::repo("lists").display(),
            common::repo("templates").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["restore", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let subs: Vec<serde_json::Value> = serde_json::from_slice(
        &run(&["subscribers", "lokal-finansiering", "--format", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(subs, original_subs);
    assert_eq!(
        String::from_utf8_lossy(&run(&["lists"]).stdout),
        original_lists,
        "the counts come back with the records"
    );
    assert_eq!(
        String::from_utf8_lossy(&run(&["campaigns"]).stdout),
        original_campaigns
    );
    assert_eq!(
        std::fs::read(d.data().join("secret")).unwrap(),
        std::fs::read(d2dir.path().join("data/secret")).unwrap(),
        "the secret comes back, so links in sent mail keep working"
    );
    // Restoring again, into the now non-empty dir, is refused.
    let out = run(&["restore", backup.to_str().unwrap()]);
    assert!(!out.status.success());
    // And into the running daemon's dir, too.
    let out = d.cli(&["restore", backup.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn report_counts_and_draws_the_network() {
    let mut d = Daemon::start("");
    for e in ["r1@example.se", "r2@example.se", "r3@example.se"] {
        d.cli_ok(&["add", "lokal-finansiering", e, "--consent", "test"]);
    }
    d.cli_ok(&["remove", "lokal-finansiering", "r3@example.se"]);
    d.wait_mails(3);
    let svg = d.dir.path().join("tillvaxt.svg");
    let out = d.cli_ok(&[
        "report",
        "lokal-finansiering",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let month = chrono::Utc::now().format("%Y").to_string();
    let row = out
        .lines()
        .find(|l| l.contains(&month))
        .unwrap_or_else(|| panic!("{out}"));
    let numbers: Vec<&str> = row
        .split_whitespace()
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    // Month, year, then: confirmed 2, joins 3, leaves 1.
    assert!(numbers.len() >= 4, "{row}");
    assert_eq!(&numbers[1..4], ["2", "3", "1"], "{row}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg") || text.starts_with("<?xml"),
        "{}",
        &text[..80]
    );
    assert!(text.trim_end().ends_with("</svg>"));
    // Issue 18: a plain title, said once, and the source with the list's
    // name and the day under the chart.
    assert!(
        text.contains("<title>Antal prenumeranter per månad</title>"),
        "{text}"
    );
    assert!(!text.contains("tillväxt"), "{text}");
    assert!(
        text.contains(">Källa: utskick, Lokal finansiering – för landsbygdens utveckling, "),
        "{text}"
    );
}

#[test]
fn check_reports_a_good_setup_and_a_broken_relay() {
    let d = Daemon::start("");
    let out = d.cli_ok(&["check"]);
    assert!(
        out.contains("ok   templates") && out.contains("DNS records to publish"),
        "{out}"
    );
    assert!(out.contains("_dmarc.") && out.contains("v=spf1"), "{out}");
    // dkim-keygen into the configured path, then check prints the record.
    let key = d.dir.path().join("dkim.key");
    let cfg = std::fs::read_to_string(d.config_path()).unwrap();
    std::fs::write(
        d.config_path(),
        format!(
            "{cfg}\n[dkim]\nselector = \"s2026\"\nprivate_key_file = \"{}\"\n",
            key.display()
        ),
    )
    .unwrap();
    // RSA-2048 by default: the big receivers verify nothing else.
    let out = d.cli_ok(&["dkim-keygen"]);
    assert!(
        out.contains("s2026._domainkey.lista.example.se. IN TXT \"v=DKIM1; k=rsa; p="),
        "{out}"
    );
    assert!(
        !d.cli(&["dkim-keygen"]).status.success(),
        "never overwrites a key"
    );
    let out = d.cli_ok(&["check"]);
    assert!(out.contains("s2026._domainkey"), "{out}");
    assert!(!out.contains("WARN"), "an RSA key needs no warning: {out}");
    // A relay that is not there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = std::fs::read_to_string(d.config_path()).unwrap();
    std::fs::write(
        d.config_path(),
        format!("{cfg}\n[outbound]\ntransport = \"smtp\"\nrelay = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let out = d.cli(&["check"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FAIL relay"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
