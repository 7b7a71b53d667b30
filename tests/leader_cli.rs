//! The leader's CLI (issue 15): it speaks the locale, reads and shows times
//! in `timezone`, prints campaigns as sentences (JSON on request), and
//! refuses an import that would lose a column or take nothing. The real
//! binary, with and without a running daemon.

mod common;

use common::Daemon;

const LIST: &str = "lokal-finansiering";
const SV: &str = "sv_SE.UTF-8";

fn write(d: &Daemon, name: &str, text: &str) -> String {
    let p = d.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn newsletter(d: &Daemon) -> String {
    write(
        d,
        "december.md",
        "---\nsubject: Nyhetsbrev december\n---\n# Nyhetsbrev december\n\nHej!\n",
    )
}

fn out(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn add(d: &Daemon, email: &str, attrs: &[&str]) {
    let mut args = vec!["add", LIST, email, "--consent", "test"];
    for a in attrs {
        args.extend(["--attr", a]);
    }
    d.cli_ok(&args);
}

/// Queues the newsletter with `extra` flags; the campaign id from the echo
/// ("campaign N queued for …").
fn queue(d: &Daemon, extra: &[&str]) -> (String, String) {
    let md = newsletter(d);
    let mut args = vec!["queue", LIST, md.as_str()];
    args.extend(extra);
    let echo = d.cli_ok(&args);
    let id = echo
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no id in {echo:?}"))
        .to_string();
    (id, echo)
}

fn status_json(d: &Daemon, id: &str) -> serde_json::Value {
    let line = d.cli_ok(&["status", id, "--json"]);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn at_is_read_and_echoed_in_the_configured_zone_and_stored_in_utc() {
    let d = Daemon::prepare("");
    add(&d, "asa@example.se", &[]);
    let (id, echo) = queue(&d, &["--at", "2027-01-15T08:00"]);
    assert!(echo.contains("at 2027-01-15 08:00 CET"), "{echo}");
    assert!(
        !echo.contains("07:00") && !echo.contains("+00:00"),
        "{echo}"
    );
    assert_eq!(
        status_json(&d, &id)["scheduled_at"],
        "2027-01-15T07:00:00+00:00"
    );
    // The form with a space, in summer time.
    let (id, echo) = queue(&d, &["--at", "2027-06-15 08:00"]);
    assert!(echo.contains("2027-06-15 08:00 CEST"), "{echo}");
    assert_eq!(
        status_json(&d, &id)["scheduled_at"],
        "2027-06-15T06:00:00+00:00"
    );
    // An offset given is an offset kept.
    let (id, _) = queue(&d, &["--at", "2027-01-15T08:00:00Z"]);
    assert_eq!(
        status_json(&d, &id)["scheduled_at"],
        "2027-01-15T08:00:00+00:00"
    );

    // Another zone in utskick.toml moves the same typed time.
    let utc = Daemon::prepare("timezone = \"UTC\"");
    add(&utc, "asa@example.se", &[]);
    let (id, echo) = queue(&utc, &["--at", "2027-01-15T08:00"]);
    assert!(echo.contains("2027-01-15 08:00 UTC"), "{echo}");
    assert_eq!(
        status_json(&utc, &id)["scheduled_at"],
        "2027-01-15T08:00:00+00:00"
    );
}

#[test]
fn a_time_the_clocks_skip_is_refused_and_a_doubled_one_is_the_first() {
    let d = Daemon::prepare("");
    add(&d, "asa@example.se", &[]);
    let md = newsletter(&d);
    // 2027-03-28: Stockholm's clocks go from 02:00 to 03:00.
    let o = d.cli(&["queue", LIST, &md, "--at", "2027-03-28T02:30"]);
    let (_, err) = out(&o);
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(
        err.contains("2027-03-28 02:30 does not exist in Europe/Stockholm")
            && err.contains("2027-03-28 03:30"),
        "{err}"
    );
    let o = d.cli_in(SV, &["queue", LIST, &md, "--at", "2027-03-28 02:30"]);
    assert!(
        out(&o).1.contains("finns inte i Europe/Stockholm"),
        "{}",
        out(&o).1
    );
    assert_eq!(
        d.cli_ok(&["campaigns"]).lines().count(),
        1,
        "nothing queued"
    );
    // 2027-10-31: 02:30 happens twice; the first (summer time) is meant.
    let (id, echo) = queue(&d, &["--at", "2027-10-31T02:30"]);
    assert!(echo.contains("2027-10-31 02:30 CEST"), "{echo}");
    assert_eq!(
        status_json(&d, &id)["scheduled_at"],
        "2027-10-31T00:30:00+00:00"
    );
}

#[test]
fn an_unknown_timezone_is_refused_naming_the_key() {
    let d = Daemon::prepare("timezone = \"Europe/Stokholm\"");
    let o = d.cli(&["campaigns"]);
    let (_, err) = out(&o);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains("key `timezone`") && err.contains("\"Europe/Stokholm\" is not a time zone"),
        "{err}"
    );
}

#[test]
fn the_cli_speaks_swedish_when_the_locale_is_swedish() {
    let d = Daemon::prepare("");
    let o = d.cli_in(
        SV,
        &[
            "add",
            LIST,
            "asa@example.se",
            "--consent",
            "test",
            "--attr",
            "region=Skåne",
        ],
    );
    assert_eq!(
        out(&o).0.trim(),
        format!("lade till asa@example.se i {LIST}")
    );
    add(&d, "bo@example.se", &["region=Norrbotten"]);
    add(&d, "cia@example.se", &[]);
    let md = newsletter(&d);
    let o = d.cli_in(SV, &["queue", LIST, &md, "--at", "2027-01-15T08:00"]);
    let (echo, _) = out(&o);
    assert!(
        echo.contains("köad för lokal-finansiering: «Nyhetsbrev december» till 3 mottagare, skickas 2027-01-15 08:00 CET")
            && echo.contains("demonen körs inte"),
        "{echo}"
    );
    let (id, _) = queue(&d, &["--at", "2027-02-01 09:30", "--where", "region=Skåne"]);

    // The recipients before sending, not "total 0": the filter applied.
    let sv = out(&d.cli_in(SV, &["campaigns"])).0;
    assert!(sv.starts_with("id "), "{sv}");
    assert!(
        sv.contains("schemalagt")
            && sv.contains("2027-01-15 08:00 CET")
            && sv.contains("3 mottagare när det skickas")
            && sv.contains("1 mottagare när det skickas"),
        "{sv}"
    );
    let en = out(&d.cli_in("C", &["campaigns"])).0;
    assert!(
        en.contains("scheduled")
            && en.contains("3 recipients when sent")
            && en.contains("2027-02-01 09:30 CET"),
        "{en}"
    );
    let line = out(&d.cli_in(SV, &["status", &id])).0;
    assert_eq!(
        line.trim(),
        format!("Kampanj {id} «Nyhetsbrev december» ({LIST}): schemalagt 2027-02-01 09:30 CET, 1 mottagare när det skickas")
    );
    let line = out(&d.cli_in("en_GB.UTF-8", &["status", &id])).0;
    assert_eq!(
        line.trim(),
        format!("Campaign {id} \"Nyhetsbrev december\" ({LIST}): scheduled 2027-02-01 09:30 CET, 1 recipient when sent")
    );

    // LC_ALL, then LC_MESSAGES, come before LANG, as in gettext.
    let with = |vars: &[(&str, &str)]| {
        let mut c = std::process::Command::new(common::bin());
        c.arg("--config")
            .arg(d.config_path())
            .args(["status", &id])
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANG");
        for (k, v) in vars {
            c.env(k, v);
        }
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    assert!(with(&[("LC_ALL", "C"), ("LANG", SV)]).starts_with("Campaign"));
    assert!(with(&[("LC_MESSAGES", SV), ("LANG", "C")]).starts_with("Kampanj"));
    assert!(with(&[]).starts_with("Campaign"));

    // Errors that are ours, in the locale too.
    let o = d.cli_in(SV, &["status", "999"]);
    assert_eq!(out(&o).1.trim(), "utskick: ingen kampanj 999");
    let o = d.cli_in(SV, &["remove", "ingen", "asa@example.se"]);
    assert!(
        out(&o)
            .1
            .starts_with("utskick: ingen lista \"ingen\" (listorna: "),
        "{}",
        out(&o).1
    );
    // The table shows when people joined in the zone, to the minute.
    let table = out(&d.cli_in(SV, &["subscribers", LIST])).0;
    assert!(
        table.contains(" CE") && !table.contains("+00:00"),
        "{table}"
    );
    let o = d.cli_in(SV, &["add", LIST, "dan@example.se", "--consent", " "]);
    assert!(out(&o).1.contains("--consent måste"), "{}", out(&o).1);
    // Machine formats stay as they were.
    let json = out(&d.cli_in(SV, &["status", &id, "--json"])).0;
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["status"], "scheduled");
    assert_eq!(v["total"], 0);
    assert!(v.get("recipients_when_sent").is_none(), "{v}");
}

#[test]
fn status_and_steering_print_a_line_or_json_through_the_daemon() {
    let d = Daemon::start("");
    add(&d, "asa@example.se", &[]);
    let (id, _) = queue(&d, &["--at", "2030-01-15T08:00"]);
    let o = d.cli_in(SV, &["pause", &id]);
    assert_eq!(
        out(&o).0.trim(),
        format!("Kampanj {id} «Nyhetsbrev december» ({LIST}): pausat (schemalagt 2030-01-15 08:00 CET), 1 mottagare när det skickas")
    );
    let paused: serde_json::Value =
        serde_json::from_str(d.cli_ok(&["resume", &id, "--json"]).trim()).unwrap();
    assert_eq!(paused["status"], "scheduled");
    let line = d.cli_ok(&["cancel", &id]);
    assert!(
        line.starts_with(&format!(
            "Campaign {id} \"Nyhetsbrev december\" ({LIST}): cancelled "
        )) && line.trim_end().ends_with(", nothing sent"),
        "{line}"
    );
    assert_eq!(status_json(&d, &id)["status"], "cancelled");
    let o = d.cli_in(SV, &["resume", &id]);
    assert!(!o.status.success());
    assert!(
        out(&o)
            .1
            .contains(&format!("kampanj {id} har status avbrutet")),
        "{}",
        out(&o).1
    );
    // A campaign that has ended: --follow prints its last line and exits.
    let o = d.cli_in(SV, &["status", &id, "--follow"]);
    assert!(o.status.success());
    assert!(out(&o).0.contains("avbrutet"), "{:?}", out(&o));

    // One that is sent: the final line, with its numbers.
    let (sent, _) = queue(&d, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while status_json(&d, &sent)["status"] != "done" {
        assert!(std::time::Instant::now() < deadline, "never done");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = d.cli(&["status", &sent, "--follow"]);
    let (line, err) = out(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        line.contains(": done ") && line.trim_end().ends_with("1 of 1 sent, 0 failed"),
        "{line}"
    );
    let v = status_json(&d, &sent);
    assert_eq!(
        (v["sent"].as_u64(), v["total"].as_u64()),
        (Some(1), Some(1))
    );
}

/// partnerskap declares only `organisation`.
const UNDECLARED: &str = "email,name,organisation,region\nasa@example.se,Åsa,Byalaget,Skåne\nbo@example.se,Bo,,Norrbotten\n";

fn check_undeclared_column_is_refused(d: &Daemon) {
    let path = write(d, "natverket.csv", UNDECLARED);
    let o = d.cli(&["import", "partnerskap", &path, "--consent", "träffen"]);
    let (stdout, err) = out(&o);
    assert_eq!(o.status.code(), Some(65), "{stdout}{err}");
    let list_file = common::repo("lists").join("partnerskap.toml");
    assert_eq!(
        err.trim(),
        format!(
            "utskick: {path}: nothing imported: list partnerskap does not declare the column region; add `attributes = [\"organisation\", \"region\"]` to {}, or pass `--ignore-column region`",
            list_file.display()
        )
    );
    assert!(d.subscribers("partnerskap").is_empty(), "nothing written");
    let o = d.cli_in(
        SV,
        &["import", "partnerskap", &path, "--consent", "träffen"],
    );
    assert_eq!(o.status.code(), Some(65));
    assert!(
        out(&o).1.contains("listan partnerskap har inte kolumnen region; lägg till `attributes = [\"organisation\", \"region\"]` i"),
        "{}",
        out(&o).1
    );
    // A file of a header alone is checked too.
    let header = write(d, "tom.csv", "email,region\n");
    let o = d.cli(&["import", "partnerskap", &header, "--consent", "x"]);
    assert_eq!(o.status.code(), Some(65), "{:?}", out(&o));

    // Leaving the column out imports the rest.
    let o = d.cli(&[
        "import",
        "partnerskap",
        &path,
        "--consent",
        "träffen",
        "--ignore-column",
        "region",
    ]);
    let (stdout, err) = out(&o);
    assert!(o.status.success(), "{err}");
    assert!(stdout.contains("2 added"), "{stdout}");
    let subs = d.subscribers("partnerskap");
    assert_eq!(subs.len(), 2);
    assert!(
        subs.iter().all(|s| s["attributes"].get("region").is_none()),
        "{subs:?}"
    );
    assert_eq!(subs[0]["attributes"]["organisation"], "Byalaget");
}

#[test]
fn an_undeclared_column_is_refused_before_any_row_with_the_daemon() {
    let d = Daemon::start("");
    check_undeclared_column_is_refused(&d);
}

#[test]
fn an_undeclared_column_is_refused_before_any_row_without_the_daemon() {
    let d = Daemon::prepare("");
    check_undeclared_column_is_refused(&d);
}

#[test]
fn an_import_that_takes_no_row_of_its_file_fails() {
    let d = Daemon::prepare("");
    // No row readable.
    let path = write(&d, "fel.csv", "email,name\nnot-an-address,X\nalso bad,Y\n");
    let o = d.cli(&["import", LIST, &path, "--consent", "x"]);
    let (stdout, err) = out(&o);
    assert_eq!(o.status.code(), Some(65), "{err}");
    assert!(
        stdout.contains("0 added") && stdout.contains("2 unreadable"),
        "{stdout}"
    );
    assert!(
        err.contains("fel.csv:2: \"not-an-address\" is not an e-mail address")
            && err.contains("nothing imported: all 2 rows were refused"),
        "{err}"
    );
    // Every row refused: people who left are not re-added.
    let ok = write(&d, "ok.csv", "email,name\nasa@example.se,Åsa\n");
    d.cli_ok(&["import", LIST, &ok, "--consent", "x"]);
    // The same file again changes nothing, and that is no failure.
    let again = d.cli_ok(&["import", LIST, &ok, "--consent", "x"]);
    assert!(again.contains("1 unchanged"), "{again}");
    d.cli_ok(&["remove", LIST, "asa@example.se"]);
    let o = d.cli_in(SV, &["import", LIST, &ok, "--consent", "x"]);
    let (stdout, err) = out(&o);
    assert_eq!(o.status.code(), Some(65), "{err}");
    assert!(
        stdout.contains("0 tillagda") && stdout.contains("1 överhoppade"),
        "{stdout}"
    );
    assert!(
        err.contains("ok.csv:2: hoppades över: har lämnat listan")
            && err.contains("inget importerades: filens enda rad avvisades"),
        "{err}"
    );
}

/// `check` speaks the locale too: its own words in Swedish under `sv*`,
/// `ok`/`FAIL` leading each line in both for scripts.
#[test]
fn check_follows_the_locale() {
    let d = Daemon::start("");
    let sv = d.cli_in(SV, &["check"]);
    let sv = String::from_utf8_lossy(&sv.stdout).to_string();
    assert!(sv.contains("ok   konfiguration:"), "{sv}");
    assert!(sv.contains("ok   mallar: varje systembrev"), "{sv}");
    assert!(sv.contains("DNS-poster att publicera för"), "{sv}");
    assert!(!sv.contains("DNS records to publish"), "{sv}");
    let en = d.cli_in("C", &["check"]);
    let en = String::from_utf8_lossy(&en.stdout).to_string();
    assert!(en.contains("ok   configuration:"), "{en}");
    assert!(en.contains("DNS records to publish for"), "{en}");
}

/// `preview` ends on one line that says how the copies would be made:
/// compiled, or rendered per recipient naming the template's construct
/// (issue 17; a condition on an attribute the list does not declare).
#[test]
fn preview_says_whether_the_campaign_is_sent_compiled() {
    let d = Daemon::prepare("");
    let md = newsletter(&d);
    let o = d.cli_in(SV, &["preview", LIST, &md]);
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim_end().lines().last(),
        Some("utskicket sänds förkompilerat: mallarna renderas en gång och varje exemplar fylls i"),
        "{stdout}"
    );
    let o = d.cli(&["preview", LIST, &md]);
    assert!(
        out(&o).0.trim_end().ends_with(
            "the campaign is sent compiled: the templates are rendered once and each copy is filled in"
        ),
        "{}",
        out(&o).0
    );

    let md = write(
        &d,
        "region.md",
        "---\nsubject: Nytt\n---\nHej{{#if attributes.kommun}} från {{attributes.kommun}}{{/if}}!\n",
    );
    let o = d.cli_in(SV, &["preview", LIST, &md]);
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stderr}");
    let last = stdout
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        last.starts_with("utskicket renderas per mottagare (långsammare), eftersom ")
            && last.ends_with("region.md: `{{#if attributes.kommun}}` beror på mottagaren"),
        "{stdout}"
    );
    let o = d.cli(&[
        "preview",
        LIST,
        &md,
        "--out",
        &d.dir.path().join("x.eml").display().to_string(),
    ]);
    let stdout = out(&o).0;
    assert!(
        stdout
            .trim_end()
            .ends_with("region.md: `{{#if attributes.kommun}}` depends on the recipient")
            && stdout.contains("the campaign is rendered per recipient (slower), because "),
        "{stdout}"
    );
}
