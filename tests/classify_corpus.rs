//! Runs `classify` over the real-world corpus in `tests/corpus/bounces`
//! (see `tests/corpus/README.md` for sources and `expected.json`).
//!
//! The envelope sender is unknown for these files, so every call passes
//! `reverse_path = None`; `classify` then falls back to a `Return-Path` header.

use mail_parser::MessageParser;
use std::path::PathBuf;
use utskick::mail::automated::{automated, is_bounce, Automated};
use utskick::mail::bounce::{parse, reports_no_failure};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bounces")
}

struct Fixture {
    file: String,
    kind: String,
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
            let mut raw = std::fs::read(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            // Seven files start with an mbox "From " separator line.
            if raw.starts_with(b"From ") {
                let end = raw
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(raw.len(), |i| i + 1);
                raw.drain(..end);
            }
            Fixture { file, kind, raw }
        })
        .collect()
}

fn classify(f: &Fixture) -> (bool, Option<Automated>) {
    let msg = MessageParser::default()
        .parse(&f.raw)
        .unwrap_or_else(|| panic!("{}: mail-parser found no message", f.file));
    (is_bounce(&msg, None), automated(&msg, None))
}

#[test]
fn corpus_has_enough_fixtures() {
    let all = fixtures();
    assert!(all.len() >= 140, "only {} fixtures", all.len());
    let count = |k: &str| all.iter().filter(|f| f.kind == k).count();
    // Issue 14 widened the corpus: at least 500 bounces and 50 non-bounces.
    assert!(count("bounce") >= 500, "{} bounces", count("bounce"));
    assert!(
        count("auto-reply") + count("other") >= 50,
        "{} non-bounces",
        count("auto-reply") + count("other")
    );
}

#[test]
fn every_bounce_is_detected() {
    let mut missed = Vec::new();
    let mut n = 0;
    for f in fixtures().iter().filter(|f| f.kind == "bounce") {
        n += 1;
        let (bounce, auto) = classify(f);
        if !bounce || auto != Some(Automated::Bounce) {
            missed.push(format!("{}: is_bounce={bounce} automated={auto:?}", f.file));
        }
    }
    println!("bounces detected: {}/{n}", n - missed.len());
    assert!(missed.is_empty(), "missed bounces:\n{}", missed.join("\n"));
}

#[test]
fn every_auto_reply_is_automated() {
    let mut missed = Vec::new();
    let mut n = 0;
    for f in fixtures().iter().filter(|f| f.kind == "auto-reply") {
        n += 1;
        let (bounce, auto) = classify(f);
        println!("{}: is_bounce={bounce} automated={auto:?}", f.file);
        if auto.is_none() {
            missed.push(f.file.clone());
        }
    }
    println!("auto-replies detected: {}/{n}", n - missed.len());
    assert!(missed.is_empty(), "auto-replies not detected: {missed:?}");
}

#[test]
fn other_messages() {
    // What each non-bounce, non-auto-reply file must give, and why.
    let expected: &[(&str, Option<Automated>)] = &[
        // ARF (RFC 5965) complaint / opt-out reports: reports from a feedback
        // loop, never answered, and not delivery failures.
        ("arf-01.eml", Some(Automated::ListOrBulk)),
        ("arf-12.eml", Some(Automated::ListOrBulk)),
        // Ordinary mail (one with a forwarded message/rfc822 attachment).
        ("is-not-bounce-01.eml", None),
        ("is-not-bounce-02.eml", None),
        // Amazon SNS "Delivery" notification sent from no-reply@: a machine
        // notification, not a failure.
        ("lhost-amazonses-12.eml", Some(Automated::ListOrBulk)),
        // Bluebottle challenge/response mail: it carries no standard marker
        // (only vendor X-Bluebottle-* headers), so it looks like a person's
        // "RE: BLAH". It must at least not be a bounce.
        ("bounceparser-bluebottle.eml", None),
    ];
    let all = fixtures();
    let others: Vec<&Fixture> = all.iter().filter(|f| f.kind == "other").collect();
    for (name, _) in expected {
        assert!(
            others.iter().any(|f| f.file == *name),
            "{name} is gone from the corpus"
        );
    }
    // The rest (ordinary mail, read receipts, challenge/response, success
    // reports added with issue 14): whatever else they are, no bounce.
    // A report of success (`Action: delivered`) or a challenge/response
    // mail may look like a delivery report to `is_bounce`; what matters is
    // that nothing would count it: no failure parsed, and the bounce
    // handler's no-failure check holds (`feedback::bounces`).
    for f in others {
        let (bounce, auto) = classify(f);
        println!("{}: is_bounce={bounce} automated={auto:?}", f.file);
        let msg = MessageParser::default().parse(&f.raw).unwrap();
        assert!(parse(&msg).is_empty(), "{} names a failure", f.file);
        assert!(
            !bounce || reports_no_failure(&msg),
            "{} would count as a bounce",
            f.file
        );
        if let Some((_, want)) = expected.iter().find(|(name, _)| *name == f.file) {
            assert!(!bounce, "{} is not a bounce", f.file);
            assert_eq!(auto, *want, "{}", f.file);
        }
    }
}

/// The router sees the envelope sender too, and a forwarding relay may put
/// a person's address there: every bounce and auto-reply of the corpus is
/// still automated mail, never a person's request.
#[test]
fn bounces_and_auto_replies_are_automated_whatever_the_envelope_sender() {
    let missed: Vec<String> = fixtures()
        .iter()
        .filter(|f| f.kind != "other")
        .filter(|f| {
            let msg = MessageParser::default().parse(&f.raw).unwrap();
            automated(&msg, Some("someone@example.org")).is_none()
        })
        .map(|f| format!("{} ({})", f.file, f.kind))
        .collect();
    assert!(missed.is_empty(), "taken for a person's mail: {missed:?}");
}
