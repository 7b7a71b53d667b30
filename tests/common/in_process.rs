//! The daemon in the test's own process, on a clock the test moves: for
//! tests where time must pass (a token's age, a day's budget) without
//! sleeping. It serves real SMTP, HTTP and the admin socket on loopback,
//! exactly as `utskick serve` does; only the clock is the test's.

use std::thread::JoinHandle;

use utskick::daemon::{self, config::Config, Listeners};
use utskick::time::ManualClock;

use super::Daemon;

/// A running in-process daemon; stopped (as by SIGTERM) when dropped.
pub struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Daemon {
    /// Starts the daemon of `Daemon::start(extra)` in this process, on
    /// `clock`. The returned guard stops it; keep it alive for the test.
    pub fn start_on_clock(extra: &str, clock: &ManualClock) -> (Daemon, InProcess) {
        let mut d = Daemon::prepare(extra);
        let config = Config::load(&d.config_path(), true).expect("test configuration");
        let clock = clock.clock();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let ctx = daemon::build_context(config, clock).expect("context");
                let listeners = Listeners::bind(&ctx.config).await.expect("listeners");
                let addrs = (
                    listeners.smtp.local_addr().unwrap(),
                    listeners.http.local_addr().unwrap(),
                );
                ready_tx.send(addrs).unwrap();
                daemon::run(ctx, listeners, async {
                    let _ = stop_rx.await;
                })
                .await
                .expect("daemon");
            });
        });
        let (smtp, http) = ready_rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the in-process daemon did not start");
        d.smtp = smtp.to_string();
        d.http = http.to_string();
        (
            d,
            InProcess {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
        )
    }
}
