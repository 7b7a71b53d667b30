//! A full disk under the store: the daemon answers 451 (try later), keeps
//! running, corrupts nothing, and recovers when space returns. Needs root
//! to mount a small tmpfs, so it is ignored in a plain `cargo test`;
//! `.ci/run` runs it (as root) with `--ignored`.

mod common;

use std::process::Command;

use common::{plain, Daemon, DOMAIN};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root to mount a tmpfs: run with --ignored (CI does)"]
fn a_full_disk_gets_451_and_recovers() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "run as root: the test mounts a tmpfs"
    );
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(ok.success(), "mount failed");
    let _mount = Mount(data.clone());
    // Fixed ports, so the daemon comes back where it was after it restarts
    // itself; data_dir on the tmpfs.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (smtp, http) = (free(), free());
    let mut d = Daemon::start(&format!(
        "[inbound]\nlisten = \"127.0.0.1:{smtp}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n"
    ));
    d.kill9();
    let cfg = std::fs::read_to_string(d.config_path()).unwrap();
    let cfg = cfg
        .lines()
        .map(|l| {
            if l.starts_with("data_dir") {
                format!("data_dir = \"{}\"", data.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(d.config_path(), cfg).unwrap();
    d.spawn();
    let to = format!("lokal-finansiering-subscribe@{DOMAIN}");
    assert!(d
        .send(
            "a@example.org",
            &to,
            &plain("a@example.org", &to, "subscribe", "")
        )
        .starts_with("250"));

    // Fill the disk.
    let filler = data.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", filler.display()))
        .output();
    let mut refused = 0;
    for i in 0..20 {
        let from = format!("full{i}@example.org");
        let r = d.send(
            &from,
            &to,
            &plain(&from, &to, "subscribe", &"x".repeat(20_000)),
        );
        assert!(r.starts_with("250") || r.starts_with("451"), "{r}");
        if r.starts_with("451") {
            refused += 1;
        }
    }
    assert!(refused > 0, "a full disk must answer 451 at some point");
    // Still alive and answering.
    let mut c = d.smtp();
    c.ehlo();
    c.quit();

    // Space returns: the daemon notices, reopens its store (it restarts
    // itself in place), and mail is accepted again.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = std::panic::catch_unwind(|| {
            d.send(
                "b@example.org",
                &to,
                &plain("b@example.org", &to, "subscribe", ""),
            )
        });
        if matches!(&r, Ok(reply) if reply.starts_with("250")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery after space returned: {r:?}\n{}",
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // The daemon may still be restarting itself: ask until it answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Ok(s) =
            std::panic::catch_unwind(|| d.status_of("lokal-finansiering", "b@example.org"))
        {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert_eq!(status.as_deref(), Some("pending"));

    // Nothing corrupt: a restart reads everything acknowledged.
    d.kill9();
    d.spawn();
    assert_eq!(
        d.status_of("lokal-finansiering", "a@example.org")
            .as_deref(),
        Some("pending")
    );
    assert_eq!(
        d.status_of("lokal-finansiering", "b@example.org")
            .as_deref(),
        Some("pending")
    );
}
