//! A 250 after DATA only once the message is on the disk (issue 19).
//!
//! The real daemon runs with `strace` attached (`-f -tt -T -yy -xx`:
//! every thread, wall-clock times, durations, file paths and socket
//! addresses for each fd, data in hex). Several SMTP sessions send subscribe
//! requests at once. The log is then read back, and for every `250` the
//! daemon wrote to a client after DATA there must be an `fsync` or
//! `fdatasync` of a file in the store that returned 0, began after the
//! message's final `.` line was read from that socket, and ended before the
//! `250` was written. (sled's own flush ends in `sync_file_range`, which
//! does not count; its flusher thread's `fsync` every 500 ms rarely falls in
//! the window, and never for every message.)
//!
//! Needs `strace` and ptrace. Without `strace` the test says so and passes,
//! unless `UTSKICK_TEST_STRACE=require` (CI: `.ci/run` installs strace and
//! sets it).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{plain, Daemon, DOMAIN};

const SESSIONS: usize = 8;
const PER_SESSION: usize = 8;

#[test]
fn every_250_after_data_follows_an_fdatasync_of_the_store() {
    let required = std::env::var("UTSKICK_TEST_STRACE").is_ok_and(|v| v == "require");
    if Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            !required,
            "UTSKICK_TEST_STRACE=require, but strace is not installed"
        );
        eprintln!(
            "durable_ack: SKIPPED: strace is not installed (apt-get install strace); \
             set UTSKICK_TEST_STRACE=require to make this a failure"
        );
        return;
    }

    let d = Daemon::start("");
    let pid = d.child.as_ref().unwrap().id();
    let log = d.dir.path().join("strace.log");
    let mut strace = Command::new("strace")
        .args(["-f", "-tt", "-T", "-yy", "-xx", "-s", "65536", "-e"])
        .arg("trace=fsync,fdatasync,sync_file_range,write,writev,sendto,sendmsg,read,readv,recvfrom,recvmsg")
        .arg("-o")
        .arg(&log)
        .arg("-p")
        .arg(pid.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace starts");
    wait_traced(pid, strace.id(), &mut strace);

    let threads: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let addr = d.smtp.clone();
            std::thread::spawn(move || {
                let mut c = common::Client::connect(&addr);
                c.ehlo();
                for i in 0..PER_SESSION {
                    let who = format!("ack{s}x{i}@example.org");
                    let to = format!("lokal-finansiering-subscribe@{DOMAIN}");
                    let r = c.transaction(&who, &[&to], &plain(&who, &to, "prenumerera", ""));
                    assert!(r.starts_with("250"), "{who}: {r}");
                }
                c.quit();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    // Detach (SIGINT), so the log is complete; the daemon runs on.
    unsafe {
        libc::kill(strace.id() as i32, libc::SIGINT);
    }
    strace.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let store = std::fs::canonicalize(d.data().join("store")).unwrap();
    let trace = Trace::parse(&text, &store);

    assert_eq!(
        trace.acks.len(),
        SESSIONS * PER_SESSION,
        "expected one 250 after DATA per message in the trace (the parser found {}), \
         {} syncs of the store",
        trace.acks.len(),
        trace.syncs.len()
    );
    let uncovered: Vec<&Ack> = trace
        .acks
        .iter()
        .filter(|a| {
            !trace
                .syncs
                .iter()
                .any(|s| s.start >= a.data_read && s.end <= a.replied)
        })
        .collect();
    let syncs_per_file = trace.syncs.iter().fold(HashMap::new(), |mut m, s| {
        *m.entry(format!("{} {}", s.call, s.path)).or_insert(0) += 1;
        m
    });
    assert!(
        uncovered.is_empty(),
        "{} of {} acknowledgements have no fsync/fdatasync of the store between the \
         message's last line and the 250, e.g. on {} read at {:.6}, 250 at {:.6}; \
         syncs seen: {:?}",
        uncovered.len(),
        trace.acks.len(),
        uncovered[0].conn,
        uncovered[0].data_read,
        uncovered[0].replied,
        syncs_per_file
    );
    eprintln!(
        "durable_ack: {} acknowledgements, each after a sync of the store; syncs: {:?}",
        trace.acks.len(),
        syncs_per_file
    );
}

/// Waits until strace traces every thread of `pid`.
fn wait_traced(pid: u32, tracer: u32, strace: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = strace.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            strace
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("strace exited ({status}) before it attached: {err}");
        }
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
        let all = tasks.into_iter().all(|t| {
            let status =
                std::fs::read_to_string(t.unwrap().path().join("status")).unwrap_or_default();
            status
                .lines()
                .any(|l| l.split_whitespace().eq(["TracerPid:", &tracer.to_string()]))
        });
        if all {
            return;
        }
        assert!(Instant::now() < deadline, "strace did not attach");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A 250 to a message: when its final line had been read, when the reply
/// write began (seconds since midnight, strace's clock).
#[derive(Debug)]
struct Ack {
    conn: String,
    data_read: f64,
    replied: f64,
}

/// A sync of a store file that returned 0.
#[derive(Debug)]
struct Sync {
    call: String,
    path: String,
    start: f64,
    end: f64,
}

struct Trace {
    acks: Vec<Ack>,
    syncs: Vec<Sync>,
}

/// One finished system call.
struct Call {
    name: String,
    /// What `-yy` shows for the first argument: a path or `TCP:[a->b]`.
    fd: String,
    data: Vec<u8>,
    ret: i64,
    start: f64,
    end: f64,
}

impl Trace {
    fn parse(text: &str, store: &Path) -> Trace {
        let store = store.to_string_lossy().to_string();
        let mut pending: HashMap<&str, (f64, String)> = HashMap::new();
        let mut calls = Vec::new();
        let mut first = None;
        for line in text.lines() {
            // "PID TIME CALL", the pid padded with spaces to one width.
            let Some((pid, rest)) = line.split_once(' ') else {
                continue;
            };
            let Some((time, rest)) = rest.trim_start().split_once(' ') else {
                continue;
            };
            let Some(mut start) = seconds(time) else {
                continue;
            };
            // Past midnight: keep counting.
            let first = *first.get_or_insert(start);
            if start < first - 43_200.0 {
                start += 86_400.0;
            }
            if rest.starts_with("---") || rest.starts_with("+++") {
                continue;
            }
            if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
                pending.insert(pid, (start, head.to_string()));
                continue;
            }
            let (start, whole) = if let Some(tail) = rest.strip_prefix("<... ") {
                let Some((start, head)) = pending.remove(pid) else {
                    continue;
                };
                let tail = tail.split_once(" resumed>").map_or("", |(_, t)| t);
                (start, format!("{head}{tail}"))
            } else {
                (start, rest.to_string())
            };
            if let Some(call) = Call::parse(&whole, start) {
                calls.push(call);
            }
        }
        calls.sort_by(|a, b| a.start.total_cmp(&b.start));

        let syncs = calls
            .iter()
            .filter(|c| {
                (c.name == "fsync" || c.name == "fdatasync")
                    && c.ret == 0
                    && c.fd.starts_with(&store)
            })
            .map(|c| Sync {
                call: c.name.clone(),
                path: c.fd[store.len()..].to_string(),
                start: c.start,
                end: c.end,
            })
            .collect();

        // Per connection: after a 354, read until the lone "." line; the
        // next reply is the message's.
        #[derive(Default)]
        struct Conn {
            in_data: bool,
            buf: Vec<u8>,
            data_read: Option<f64>,
        }
        let mut conns: HashMap<&str, Conn> = HashMap::new();
        let mut acks = Vec::new();
        for c in &calls {
            if !c.fd.starts_with("TCP:") || c.ret <= 0 {
                continue;
            }
            let conn = conns.entry(c.fd.as_str()).or_default();
            match c.name.as_str() {
                "read" | "readv" | "recvfrom" | "recvmsg" if conn.in_data => {
                    conn.buf.extend_from_slice(&c.data);
                    if conn.buf.starts_with(b".\r\n")
                        || conn.buf.windows(5).any(|w| w == b"\r\n.\r\n")
                    {
                        conn.in_data = false;
                        conn.data_read = Some(c.end);
                    }
                }
                "write" | "writev" | "sendto" | "sendmsg" => {
                    if c.data.starts_with(b"354") {
                        conn.in_data = true;
                        conn.buf.clear();
                    } else if let Some(data_read) = conn.data_read.take() {
                        if c.data.starts_with(b"250") {
                            acks.push(Ack {
                                conn: c.fd.clone(),
                                data_read,
                                replied: c.start,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Trace { acks, syncs }
    }
}

impl Call {
    /// `name(fd<desc>, "\x..", …) = ret <duration>`
    fn parse(s: &str, start: f64) -> Option<Call> {
        let (name, args) = s.split_once('(')?;
        let (_, after_fd) = args.split_once('<')?;
        let end_of_fd = [">,", ">)"].iter().filter_map(|m| after_fd.find(m)).min()?;
        let fd = &after_fd[..end_of_fd];
        // -xx writes paths in hex too.
        let fd = if fd.starts_with("\\x") {
            String::from_utf8_lossy(&hex(fd)).into_owned()
        } else {
            fd.to_string()
        };
        let rest = &after_fd[end_of_fd..];
        let data = match rest.split_once('"') {
            Some((_, quoted)) => hex(quoted.split('"').next()?),
            None => Vec::new(),
        };
        let (_, ret) = s.rsplit_once(") = ")?;
        let ret_num: i64 = ret.split_whitespace().next()?.parse().ok()?;
        let duration: f64 = ret
            .rsplit_once('<')
            .and_then(|(_, d)| d.strip_suffix('>'))
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0);
        Some(Call {
            name: name.to_string(),
            fd,
            data,
            ret: ret_num,
            start,
            end: start + duration,
        })
    }
}

/// `HH:MM:SS.micros` as seconds.
fn seconds(t: &str) -> Option<f64> {
    let mut it = t.split(':');
    let h: f64 = it.next()?.parse().ok()?;
    let m: f64 = it.next()?.parse().ok()?;
    let s: f64 = it.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// `\x48\x45` (strace -xx) as bytes.
fn hex(s: &str) -> Vec<u8> {
    s.split("\\x")
        .filter(|p| !p.is_empty())
        .filter_map(|p| u8::from_str_radix(&p[..2.min(p.len())], 16).ok())
        .collect()
}
