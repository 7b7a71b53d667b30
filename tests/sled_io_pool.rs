//! sled's IO pool as vendored (vendor/sled/PATCHED.md: one idle thread is
//! woken per task, `notify_one`) under the load that would show a lost or
//! stranded task: many threads writing and flushing at once on log
//! segments of 1 KiB, so that nearly every flush seals a buffer, buffers
//! fill segments, and removals free segments (a freed segment at the
//! file's end is truncated by another pool task, which a thread taking the
//! next segment waits for under the segment accountant's lock while pool
//! threads writing buffers queue for that lock). A flush waits until its
//! buffer's pool task has written it, so a task that no thread takes
//! shows here as a flush that never returns.
//!
//! Each writer reports every flush it finishes; the test fails when no
//! flush finishes for `STALL` (a stranded task), not merely when the run
//! is slow on a busy machine. `SLED_POOL_ROUNDS=N` (default 300) sets the
//! flushes per writer, for a longer run by hand.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Threads writing and flushing at once: more than the pool's seven
/// resident threads, so tasks queue behind busy threads.
const WRITERS: usize = 12;

/// sled's smallest segment (it refuses less than 256 bytes): a
/// record of a few hundred bytes fills one in a write or two.
const SEGMENT: usize = 1024;

/// How long the whole run may go without any flush finishing before it
/// counts as stranded: far beyond a 1 KiB write even on a loaded CI box.
const STALL: Duration = Duration::from_secs(60);

fn rounds() -> usize {
    std::env::var("SLED_POOL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The pool's threads now (sled names them `sled-io-N`), from /proc.
fn pool_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("sled-io-"))
        .count()
}

#[test]
fn concurrent_flushes_on_tiny_segments_all_finish() {
    let dir = tempfile::tempdir().unwrap();
    // Two databases: the pool is one per process, shared by every store
    // the process opens (the tests open many at once).
    let dbs: Vec<sled::Db> = (0..2)
        .map(|i| {
            sled::Config::new()
                .path(dir.path().join(format!("db{i}")))
                .segment_size(SEGMENT)
                .open()
                .unwrap()
        })
        .collect();
    let rounds = rounds();
    let (done_tx, done_rx) = mpsc::channel::<Duration>();
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let db = dbs[w % dbs.len()].clone();
        let done_tx = done_tx.clone();
        handles.push(std::thread::spawn(move || {
            for i in 0..rounds {
                let key = format!("w{w:02}-{:04}", i % 50);
                // 100..700 bytes: some writes take a whole buffer.
                let value = vec![(w + i) as u8; 100 + (w * 37 + i * 53) % 600];
                db.insert(key.as_bytes(), value).unwrap();
                if i % 4 == 3 {
                    // Garbage, so segments empty and are freed (truncated).
                    db.remove(format!("w{w:02}-{:04}", (i + 25) % 50).as_bytes())
                        .unwrap();
                }
                let started = Instant::now();
                db.flush().unwrap();
                done_tx.send(started.elapsed()).unwrap();
            }
        }));
    }
    drop(done_tx);
    let (mut flushes, mut most_threads) = (0usize, 0usize);
    let mut took_all = Vec::with_capacity(WRITERS * rounds);
    loop {
        match done_rx.recv_timeout(STALL) {
            Ok(took) => {
                flushes += 1;
                took_all.push(took);
                if flushes % 64 == 0 {
                    most_threads = most_threads.max(pool_threads());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "no flush finished for {STALL:?} after {flushes} of {}: \
                 a log buffer's write task was stranded on sled's IO pool \
                 ({} pool threads)",
                WRITERS * rounds,
                pool_threads()
            ),
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(flushes, WRITERS * rounds);
    took_all.sort();
    let at = |q: f64| took_all[((took_all.len() - 1) as f64 * q) as usize];
    eprintln!(
        "sled IO pool: {flushes} flushes by {WRITERS} threads; flush p50 {:?} \
         p99 {:?} p99.9 {:?} max {:?}; at most {most_threads} pool threads seen",
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}
