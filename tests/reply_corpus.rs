//! Runs `reply::own_text` over the real-world replies in `tests/corpus/replies`
//! (see `tests/corpus/README.md`, section "replies/expected.json", for sources
//! and the meaning of each field).
//!
//! `.eml` files go through `own_text` (first text/plain part), `.html` bodies
//! through `html_to_text` and then `own_text_of`, `.txt` bodies through
//! `own_text_of`. For interleaved replies the expected value is
//! `text_above_first_quote`, since that is what `own_text` documents.
//!
//! A mismatch writes `<file>.actual` beside the fixture, to diff against.
//!
//! Known misses (4 of 43), all deliberate:
//!
//! * `talon-iphone.eml`, `talon-sparrow.eml`: talon keeps signatures and
//!   expects "Sent from my iPhone" and the `-- ` block with "Sent with
//!   Sparrow"; `own_text` drops signatures (our answer is "Hello").
//! * `erp-email_1_8.txt`: nothing is written above the first quote, so the
//!   corpus's `text_above_first_quote` is empty; `own_text` then takes the
//!   bottom-posted text below the first `>` block ("I will reply under this
//!   one"), so that a bottom-posted "avsluta" still unsubscribes. The same
//!   rule is what makes `talon-thunderbird.eml` (bottom-posted "Hello") pass.
//! * `talon-html-reply-separated-by-hr.html`: talon cuts the whole `<div>`
//!   holding the `<hr>`, which also removes the name "Bob" written above the
//!   line; we keep "Bob" (it is above the quote) and give "Hi there Bob".

use mail_parser::MessageParser;
use std::path::PathBuf;
use utskick::mail::html_text::html_to_text;
use utskick::mail::reply_text::{own_text, own_text_of};

/// The score reached when this test was written; raise it when it improves.
const FLOOR: usize = 39;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/replies")
}

fn actual_for(file: &str, raw: &[u8]) -> String {
    if file.ends_with(".eml") {
        let msg = MessageParser::default()
            .parse(raw)
            .unwrap_or_else(|| panic!("{file}: mail-parser found no message"));
        own_text(&msg)
    } else {
        let text = String::from_utf8_lossy(raw);
        if file.ends_with(".html") {
            own_text_of(&html_to_text(&text))
        } else {
            own_text_of(&text)
        }
    }
}

/// Both sides brought to the form `compare` names.
fn normalise(compare: &str, s: &str) -> String {
    if compare.starts_with("whitespace-insensitive") {
        s.split_whitespace().collect()
    } else if compare.starts_with("exact after removing trailing whitespace") {
        let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
        lines.join("\n").trim_end().to_string()
    } else if compare.starts_with("exact after trimming") {
        s.trim().to_string()
    } else {
        panic!("unknown compare mode {compare:?}")
    }
}

#[test]
fn check() {
    let dir = corpus_dir();
    let json = std::fs::read_to_string(dir.join("expected.json")).expect("read expected.json");
    let entries: serde_json::Value = serde_json::from_str(&json).expect("parse expected.json");
    let entries = entries.as_array().expect("expected.json is an array");
    let (mut ran, mut exact, mut misses) = (0, 0, Vec::new());
    for e in entries {
        let file = e["file"].as_str().expect("file");
        let compare = e["compare"].as_str().expect("compare");
        let expected = match e["layout"].as_str() {
            Some("interleaved") => e["text_above_first_quote"].as_str(),
            _ => e["reply_text"].as_str(),
        }
        .unwrap_or_else(|| panic!("{file}: no expected text"));
        let raw = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let actual = actual_for(file, &raw);
        ran += 1;
        let out = dir.join(format!("{file}.actual"));
        if normalise(compare, &actual) == normalise(compare, expected) {
            exact += 1;
            let _ = std::fs::remove_file(out);
        } else {
            std::fs::write(&out, &actual).expect("write .actual");
            misses.push(file.to_string());
        }
    }
    println!("reply corpus: {exact}/{ran} exact");
    for m in &misses {
        println!("  miss: {m} (see {m}.actual)");
    }
    assert!(ran >= 40, "only {ran} fixtures ran");
    assert!(
        exact >= FLOOR,
        "reply corpus: {exact}/{ran} exact, floor is {FLOOR}; misses: {misses:?}"
    );
}
