//! Runs `bounce::parse` and `bounce::complaint` over the real-world corpus in
//! `tests/corpus/bounces` (see `tests/corpus/README.md` for sources and
//! `expected.json`) and prints a table per family (sisimai's lhost/rhost
//! module, or the sample's format).
//!
//! A bounce sample is right when every expected recipient is among the
//! failures `parse` returns, with the expected permanence where it is known,
//! and no other recipient is returned. Auto-replies and other mail are right
//! when `parse` returns nothing. ARF reports: `complaint` names someone.
//!
//! The test fails by name, not by a percentage: it lists every sample that
//! goes wrong without a `known_miss` in `expected.json`, and every sample
//! with a `known_miss` that now comes out right (remove the field then).

use mail_parser::MessageParser;
use std::collections::BTreeMap;
use std::path::PathBuf;
use utskick::mail::automated::is_bounce;
use utskick::mail::bounce::{complaint, families, family, parse, Failure};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bounces")
}

struct Fixture {
    file: String,
    kind: String,
    family: String,
    /// Expected failed recipients (one, or four for the IIS file).
    recipients: Vec<String>,
    /// Other addresses the message's DSN names as a recipient (a forwarding
    /// Final-Recipient beside the Original-Recipient): naming them too is
    /// not a wrong attribution.
    dsn_named: Vec<String>,
    permanent: Option<bool>,
    reason: Option<String>,
    known_miss: Option<String>,
    /// The family `family()` names for a sample of another family's (an
    /// lhost sample whose marks are another's too).
    family_read_as: Option<String>,
    /// The reason `parse` gives where it differs from the expected one
    /// (`none` for no reason): the two vocabularies draw some lines apart.
    reason_read_as: Option<String>,
    raw: Vec<u8>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = corpus_dir();
    let json = std::fs::read_to_string(dir.join("expected.json")).expect("read expected.json");
    let entries: serde_json::Value = serde_json::from_str(&json).expect("parse expected.json");
    entries
        .as_array()
        .expect("expected.json is an array")
        .iter()
        .map(|e| {
            let file = e["file"].as_str().expect("file").to_string();
            let kind = e["kind"].as_str().expect("kind").to_string();
            let family = e["family"].as_str().unwrap_or("other").to_string();
            let mut recipients: Vec<String> = e["recipients"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(r) = e["recipient"].as_str() {
                if !recipients.iter().any(|x| x == r) {
                    recipients.push(r.to_string());
                }
            }
            let dsn_named = e["dsn"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .flat_map(|b| [&b["final_recipient"], &b["original_recipient"]])
                        .filter_map(|v| v.as_str())
                        .filter_map(|v| v.rsplit([';', ' ', '<']).next())
                        .map(|v| v.trim_end_matches('>').to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            let permanent = e["permanent"].as_bool();
            let reason = e["reason"].as_str().map(str::to_string);
            let known_miss = e["known_miss"].as_str().map(str::to_string);
            let family_read_as = e["family_read_as"].as_str().map(str::to_string);
            let reason_read_as = e["reason_read_as"].as_str().map(str::to_string);
            let mut raw = std::fs::read(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            // Some files start with an mbox "From " separator line.
            if raw.starts_with(b"From ") {
                let end = raw
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(raw.len(), |i| i + 1);
                raw.drain(..end);
            }
            Fixture {
                file,
                kind,
                family,
                recipients,
                dsn_named,
                permanent,
                reason,
                known_miss,
                family_read_as,
                reason_read_as,
                raw,
            }
        })
        .collect()
}

fn show(failures: &[Failure]) -> String {
    if failures.is_empty() {
        return "nothing".into();
    }
    failures
        .iter()
        .map(|f| {
            format!(
                "{} permanent={} status={:?} reason={:?}",
                f.recipient,
                f.permanent,
                f.status,
                f.reason.as_deref().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One family's row of the table.
#[derive(Default)]
struct Row {
    samples: usize,
    bounces: usize,
    attributed: usize,
    permanence_known: usize,
    permanence_right: usize,
    reason_right: usize,
    wrong_recipient: usize,
    non_bounces: usize,
    taken_for_bounce: usize,
}

/// What went wrong with one sample, or None when it is right.
fn judge(f: &Fixture, failures: &[Failure], row: &mut Row) -> Option<String> {
    row.samples += 1;
    if f.kind != "bounce" {
        row.non_bounces += 1;
        if failures.is_empty() {
            return None;
        }
        row.taken_for_bounce += 1;
        return Some(format!("{} taken for a bounce: {}", f.kind, show(failures)));
    }
    row.bounces += 1;
    let mut problems = Vec::new();
    let found: Vec<&Failure> = f
        .recipients
        .iter()
        .filter_map(|want| failures.iter().find(|x| &x.recipient == want))
        .collect();
    if found.len() == f.recipients.len() {
        row.attributed += 1;
    } else {
        problems.push(format!("recipient {} not found", f.recipients.join(", ")));
    }
    if failures.iter().any(|x| {
        !f.recipients.iter().any(|w| w == &x.recipient)
            && !f.dsn_named.iter().any(|w| w == &x.recipient)
    }) {
        row.wrong_recipient += 1;
        problems.push("a recipient that is not the expected one".into());
    }
    if let (Some(p), false) = (f.permanent, found.is_empty()) {
        row.permanence_known += 1;
        if found.iter().all(|g| g.permanent == p) {
            row.permanence_right += 1;
        } else {
            problems.push(format!("permanent expected {p}"));
        }
    }
    if let (Some(want), Some(got)) = (&f.reason, found.first()) {
        let got = got.reason.as_deref().unwrap_or("none");
        if got == want {
            row.reason_right += 1;
        }
        let expected = f.reason_read_as.as_deref().unwrap_or(want);
        if got != expected {
            problems.push(format!("reason {got}, expected {expected}"));
        }
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!("{}; got: {}", problems.join("; "), show(failures)))
    }
}

/// Family modules with no public sample in the corpus: their marks come
/// from reports seen in the held-out set, which stays unpublished.
const FAMILIES_WITHOUT_SAMPLE: &[&str] = &["mailenable"];

#[test]
fn check() {
    let all = fixtures();
    let mut table: BTreeMap<String, Row> = BTreeMap::new();
    let mut total = Row::default();
    let mut detected = (0, 0);
    let mut regressions = Vec::new();
    let mut now_passing = Vec::new();
    let mut known = 0;
    // sisimai lhost samples whose family `family()` names alike (printed only).
    let mut family_same = (0, 0);
    // Samples with a known miss that names a wrong recipient.
    let known_wrong = all
        .iter()
        .filter(|f| {
            f.known_miss
                .as_deref()
                .is_some_and(|m| m.contains("not the expected one"))
        })
        .count();

    let mut samples_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for f in &all {
        let msg = MessageParser::default()
            .parse(&f.raw)
            .unwrap_or_else(|| panic!("{}: mail-parser found no message", f.file));
        let failures = parse(&msg);
        if f.kind == "bounce" {
            detected.1 += 1;
            if is_bounce(&msg, None) {
                detected.0 += 1;
            }
        } else if !f.file.starts_with("arf-") {
            assert_eq!(complaint(&msg), None, "{}: not an ARF report", f.file);
        }
        if std::env::var_os("BOUNCE_REASONS").is_some() && f.kind == "bounce" {
            let got = failures
                .iter()
                .find(|x| f.recipients.contains(&x.recipient))
                .and_then(|x| x.reason.clone());
            println!(
                "REASON {} want={} got={}",
                f.file,
                f.reason.as_deref().unwrap_or("-"),
                got.as_deref().unwrap_or("-")
            );
        }
        if let Some(lhost) = f.family.strip_prefix("lhost-") {
            family_same.1 += 1;
            if family(&msg) == lhost {
                family_same.0 += 1;
            }
        }
        // A sample of a family with a module of its own is recognised as
        // that family, or as the one its `family_read_as` names.
        let read_as = family(&msg);
        samples_of.entry(read_as).or_default().push(f.file.clone());
        if let Some(lhost) = f
            .family
            .strip_prefix("lhost-")
            .filter(|l| families().any(|m| m == *l))
        {
            let want = f.family_read_as.as_deref().unwrap_or(lhost);
            if read_as != want {
                regressions.push(format!(
                    "{} [{}]: read as family {read_as}, expected {want}",
                    f.file, f.family
                ));
            }
        }
        let row = table.entry(f.family.clone()).or_default();
        let mut miss = judge(f, &failures, row);
        judge(f, &failures, &mut total);
        if f.file.starts_with("arf-") && miss.is_none() && complaint(&msg).is_none() {
            miss = Some("ARF report: complaint() names nobody".into());
        }
        match (&miss, &f.known_miss) {
            (Some(m), None) => regressions.push(format!("{} [{}]: {m}", f.file, f.family)),
            (Some(m), Some(_)) => {
                known += 1;
                println!("MISS {}: {m}", f.file);
            }
            (None, Some(why)) => {
                now_passing.push(format!("{} [{}] (known_miss was: {why})", f.file, f.family))
            }
            (None, None) => {}
        }
    }

    println!(
        "{:<34} {:>7} {:>7} {:>10} {:>10} {:>6} {:>5} {:>9}",
        "family", "samples", "bounces", "attributed", "permanence", "reason", "wrong", "non-b.hit"
    );
    let line = |name: &str, r: &Row| {
        format!(
            "{:<34} {:>7} {:>7} {:>10} {:>10} {:>6} {:>5} {:>9}",
            name.chars().take(34).collect::<String>(),
            r.samples,
            r.bounces,
            r.attributed,
            format!("{}/{}", r.permanence_right, r.permanence_known),
            r.reason_right,
            r.wrong_recipient,
            format!("{}/{}", r.taken_for_bounce, r.non_bounces),
        )
    };
    for (name, r) in &table {
        println!("{}", line(name, r));
    }
    println!("{}", line("TOTAL", &total));
    println!(
        "bounces attributed: {}/{} ({:.1}%); known misses: {known}; is_bounce detects {}/{}",
        total.attributed,
        total.bounces,
        100.0 * total.attributed as f64 / total.bounces.max(1) as f64,
        detected.0,
        detected.1
    );

    println!(
        "family() names sisimai's lhost module for {}/{} lhost samples",
        family_same.0, family_same.1
    );
    // Every family module has a sample it recognises, except those only
    // known from reports that cannot be published here.
    let without: Vec<&str> = families().filter(|m| !samples_of.contains_key(m)).collect();
    assert_eq!(
        without, FAMILIES_WITHOUT_SAMPLE,
        "families without a sample in the corpus"
    );
    for r in &regressions {
        println!("REGRESSION {r}");
    }
    for r in &now_passing {
        println!("NOW PASSING {r}");
    }
    assert!(
        regressions.is_empty() && now_passing.is_empty(),
        "{} sample(s) went wrong:\n  {}\n{} known miss(es) now pass (remove their known_miss):\n  {}",
        regressions.len(),
        regressions.join("\n  "),
        now_passing.len(),
        now_passing.join("\n  ")
    );
    assert_eq!(total.taken_for_bounce, 0, "non-bounces taken for bounces");
    assert_eq!(total.wrong_recipient, known_wrong, "wrong recipients");
}

#[test]
fn arf_reports_name_the_complained_about_recipient() {
    for f in fixtures().iter().filter(|f| f.file.starts_with("arf-")) {
        let msg = MessageParser::default().parse(&f.raw).expect("parse");
        assert!(parse(&msg).is_empty(), "{}", f.file);
        if f.known_miss.is_none() {
            assert!(complaint(&msg).is_some(), "{}", f.file);
        }
    }
}

/// Found by `cargo fuzz run dsn`: two addresses that overlap on one line
/// ("…@mx.facebook.com4-ff6d…@email-bounces…") made a slice run backwards
/// and panicked the session that received the bounce.
#[test]
fn regression_overlapping_addresses_on_one_line() {
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/fuzz-regressions/dsn-overlapping-addresses.eml"
    ))
    .unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let _ = utskick::mail::bounce::parse(&msg);
}

/// Not a check: prints what `parse` makes of every file in `$BOUNCE_DIR`
/// (`BOUNCE_DIR=dir cargo test --test bounce_corpus -- --ignored --nocapture`),
/// to look over mail that has no expected values.
#[test]
#[ignore]
fn dump_dir() {
    let Some(dir) = std::env::var_os("BOUNCE_DIR") else {
        return;
    };
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("BOUNCE_DIR")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    for path in names {
        let raw = std::fs::read(&path).unwrap();
        let Some(msg) = MessageParser::default().parse(&raw) else {
            println!("DUMP {}: not a message", path.display());
            continue;
        };
        println!(
            "DUMP {} bounce={} family={}: {}",
            path.file_name().unwrap().to_string_lossy(),
            is_bounce(&msg, None),
            family(&msg),
            show(&parse(&msg))
        );
    }
}
