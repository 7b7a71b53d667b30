//! Runs `bounce::parse` and `bounce::complaint` over the real-world corpus in
//! `tests/corpus/bounces` (see `tests/corpus/README.md` for sources and
//! `expected.json`) and prints a score table.
//!
//! Bounces: is the expected recipient among the failures `parse` returns,
//! and is its permanence the expected one (where known)? Auto-replies and
//! other mail: `parse` must return nothing. ARF reports: `complaint` is
//! printed.

use mail_parser::MessageParser;
use std::path::PathBuf;
use utskick::mail::automated::is_bounce;
use utskick::mail::bounce::{complaint, parse, Failure};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bounces")
}

struct Fixture {
    file: String,
    kind: String,
    /// Expected failed recipients (one, or four for the IIS file).
    recipients: Vec<String>,
    permanent: Option<bool>,
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
            let permanent = e["permanent"].as_bool();
            let mut raw = std::fs::read(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            // Seven files start with an mbox "From " separator line.
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
                recipients,
                permanent,
                raw,
            }
        })
        .collect()
}

/// (right, out of)
#[derive(Default)]
struct Score(usize, usize);

impl Score {
    fn add(&mut self, ok: bool) {
        self.1 += 1;
        if ok {
            self.0 += 1;
        }
    }
    fn pct(&self) -> f64 {
        if self.1 == 0 {
            100.0
        } else {
            100.0 * self.0 as f64 / self.1 as f64
        }
    }
    fn line(&self, what: &str) -> String {
        format!("{what}: {}/{} ({:.1}%)", self.0, self.1, self.pct())
    }
}

fn show(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| {
            format!(
                "{} permanent={} status={:?} [{}]",
                f.recipient, f.permanent, f.status, f.diagnostic
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn check() {
    let all = fixtures();
    assert_eq!(all.len(), 143, "corpus size");
    let mut permanent_attr = Score::default();
    let mut temporary_attr = Score::default();
    let mut unknown_attr = Score::default();
    let mut permanence = Score::default();
    let mut non_bounces = Score::default();
    let mut detected = Score::default();
    let mut misses = Vec::new();

    for f in &all {
        let msg = MessageParser::default()
            .parse(&f.raw)
            .unwrap_or_else(|| panic!("{}: mail-parser found no message", f.file));
        let failures = parse(&msg);
        if f.kind == "bounce" {
            detected.add(is_bounce(&msg, None));
            for want in &f.recipients {
                let got = failures.iter().find(|x| &x.recipient == want);
                let score = match f.permanent {
                    Some(true) => &mut permanent_attr,
                    Some(false) => &mut temporary_attr,
                    None => &mut unknown_attr,
                };
                score.add(got.is_some());
                match (got, f.permanent) {
                    (None, _) => misses.push(format!(
                        "{}: recipient {want} not found; got: {}",
                        f.file,
                        show(&failures)
                    )),
                    (Some(g), Some(p)) => {
                        permanence.add(g.permanent == p);
                        if g.permanent != p {
                            misses.push(format!(
                                "{}: permanent={} expected {p}: {}",
                                f.file,
                                g.permanent,
                                show(&failures)
                            ));
                        }
                    }
                    (Some(_), None) => {}
                }
            }
        } else {
            // Nothing but a delivery failure may yield failures.
            non_bounces.add(!failures.is_empty());
            if !failures.is_empty() {
                misses.push(format!(
                    "{} ({}): taken for a bounce: {}",
                    f.file,
                    f.kind,
                    show(&failures)
                ));
            }
            if f.file.starts_with("arf-") {
                println!("{}: complaint() = {:?}", f.file, complaint(&msg));
            } else {
                assert_eq!(complaint(&msg), None, "{}: not an ARF report", f.file);
            }
        }
    }

    println!(
        "{}",
        permanent_attr.line("permanent bounces attributed to the right recipient")
    );
    println!(
        "{}",
        temporary_attr.line("temporary bounces attributed to the right recipient")
    );
    println!(
        "{}",
        unknown_attr.line("bounces of unknown permanence attributed to the right recipient")
    );
    println!(
        "{}",
        permanence.line("permanence correct (where expected is known)")
    );
    println!(
        "non-bounces taken for bounces: {}/{}",
        non_bounces.0, non_bounces.1
    );
    println!(
        "{}",
        detected.line("bounces that automated::is_bounce detects")
    );
    for m in &misses {
        println!("MISS {m}");
    }

    assert!(
        permanent_attr.pct() >= 95.0,
        "{}",
        permanent_attr.line("permanent bounces attributed")
    );
    assert_eq!(non_bounces.0, 0, "non-bounces taken for bounces");
    assert!(
        permanence.pct() >= 90.0,
        "{}",
        permanence.line("permanence correct")
    );
}

#[test]
fn arf_reports_name_the_complained_about_recipient() {
    for f in fixtures().iter().filter(|f| f.file.starts_with("arf-")) {
        let msg = MessageParser::default().parse(&f.raw).expect("parse");
        assert!(parse(&msg).is_empty(), "{}", f.file);
        assert!(complaint(&msg).is_some(), "{}", f.file);
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
