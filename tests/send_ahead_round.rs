//! A campaign round through the real daemon to a relay with PIPELINING
//! and no CHUNKING, where a lane writes the next copy's envelope behind a
//! copy's final "." and keeps that copy, made, for its next send.

mod common;

use common::rand_id;
use common::round::{Round, LIST};

/// Copies larger than a lane keeps its buffers for (256 KiB): the copy
/// taken ahead must still go whole, to the right person, once each.
#[test]
fn copies_larger_than_the_kept_buffer_go_whole_when_taken_ahead() {
    const N: usize = 6;
    let r = Round::start(1);
    let people: Vec<String> = (0..N).map(|i| format!("big{i}@x.example.org")).collect();
    r.import(&people);
    let subject = "Stort brev";
    let line = "Ett stycke text som upprepas for att gora brevet stort nog. ";
    let mut md = format!("# {subject}\n\nHej {{{{name}}}}!\n\n");
    for _ in 0..5000 {
        md.push_str(line);
        md.push_str("\n\n");
    }
    let path = r.d.dir.path().join(format!("stort-{}.md", rand_id()));
    std::fs::write(&path, md).unwrap();
    let out = r.d.cli_ok(&["queue", LIST, path.to_str().unwrap()]);
    let id = out.split_whitespace().nth(1).unwrap().to_string();
    let s = r.wait_done(&id);
    let took = r.relay.messages();
    for m in &took {
        assert!(
            m.data.len() > 256 * 1024,
            "a copy to {} went with {} bytes",
            m.to,
            m.data.len()
        );
    }
    let copies = r.copies(subject);
    let mut got: Vec<String> = copies.iter().map(|m| m.to.clone()).collect();
    got.sort();
    let mut want = people.clone();
    want.sort();
    assert_eq!(got, want, "one whole copy each: {s}");
    assert_eq!(s["sent"].as_u64(), Some(N as u64), "{s}");
}
