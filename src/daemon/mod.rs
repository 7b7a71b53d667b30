//! The daemon: builds the context, binds every listener, runs the inbound
//! server, the web server, the admin socket, the outbound worker and the
//! housekeeping task, and shuts them down in order.
//!
//! Crash-only: nothing here needs a clean stop to stay correct. A clean stop
//! only saves the clients a retry.

pub mod check;
pub mod config;
pub mod context;
pub mod dmarc;
pub mod files;
pub mod lists;
pub mod memory;

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::compose::templates::Templates;
use crate::daemon::config::Config;
use crate::daemon::context::{Context, Metrics};
use crate::daemon::lists::Lists;
use crate::outbound::{self, Transport};
use crate::store::Store;
use crate::time::Clock;
use crate::token::Secret;
use crate::{admin, mail::listener as inbound, web};

/// How often expired confirmations, stale pending subscribers and old
/// counters are purged.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// Everything a process needs to act on the store: the daemon, or the CLI
/// when no daemon runs.
pub fn build_context(config: Config, clock: Clock) -> anyhow::Result<Context> {
    build_context_with_cache(config, clock, crate::store::CACHE_CAPACITY)
}

/// `build_context` with a store page cache of `cache` bytes: a process
/// that writes much alone (an import without a daemon) takes a big one.
pub fn build_context_with_cache(
    config: Config,
    clock: Clock,
    cache: u64,
) -> anyhow::Result<Context> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", config.data_dir.display()))?;
    restrict(&config.data_dir, 0o700);
    let lists = Lists::for_config(&config)?;
    let templates = Templates::load(&config.templates_dir, &lists)?;
    let secret = Secret::load_or_create(&config.secret_path())?;
    let dkim = match &config.dkim {
        Some(d) => Some(crate::compose::system::DkimKeys::load(
            &d.keys(),
            &config.domain,
        )?),
        None => None,
    };
    let store = Store::open_with_cache(&config.store_dir(), cache)?;
    Ok(Context {
        dkim,
        dmarc: crate::daemon::dmarc::Dmarc::from_env(),
        config,
        lists,
        templates,
        secret,
        store,
        clock,
        mail_ready: tokio::sync::Notify::new(),
        campaign_ready: tokio::sync::Notify::new(),
        metrics: Metrics::default(),
    })
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot restrict permissions");
    }
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop.
    Stopped,
    /// The store failed (a full disk) and space has returned: the caller
    /// starts afresh, which reopens the store.
    Restart,
}

/// How often a failed store checks whether the disk takes writes again.
const DISK_PROBE_EVERY: Duration = Duration::from_secs(2);
/// What the probe writes: enough to notice a disk that is still full.
const DISK_PROBE_BYTES: usize = 256 * 1024;

/// Can `dir` take a write of some size again?
fn disk_takes_writes(dir: &Path) -> bool {
    use std::io::Write;
    let path = dir.join(".utskick-disk-probe");
    let ok = std::fs::File::create(&path)
        .and_then(|mut f| {
            f.write_all(&vec![0u8; DISK_PROBE_BYTES])
                .and_then(|_| f.sync_all())
        })
        .is_ok();
    let _ = std::fs::remove_file(&path);
    ok
}

/// Resolves once the store has failed and the disk takes writes again.
async fn store_recovered(ctx: Arc<Context>) {
    loop {
        tokio::time::sleep(DISK_PROBE_EVERY).await;
        if ctx.store.has_failed() {
            tracing::error!(
                "the store cannot write (is the disk full?): answering 451 until it can"
            );
            if disk_takes_writes(&ctx.config.data_dir) {
                tracing::warn!("the disk takes writes again: restarting to reopen the store");
                return;
            }
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: systemd and most
/// shells start a service at a soft 1024, which a crowd of idle HTTP
/// connections would use up for SMTP, the admin socket and the store too.
/// Returns the soft limit now in force (None if it cannot be read).
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
pub fn raise_open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open-file limit");
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::debug!(
                from = lim.rlim_cur as u64,
                to = lim.rlim_max as u64,
                "open-file limit raised"
            );
            lim = raised;
        } else {
            tracing::warn!(
                soft = lim.rlim_cur as u64,
                hard = lim.rlim_max as u64,
                error = %std::io::Error::last_os_error(),
                "cannot raise the open-file limit"
            );
        }
    }
    Some(lim.rlim_cur as u64)
}

/// The sockets the daemon serves, bound before it runs: `main` binds them
/// from the configuration, a test may bind its own.
pub struct Listeners {
    pub smtp: TcpListener,
    pub http: TcpListener,
    /// `/metrics` alone, on a listener of its own (loopback by default).
    pub metrics: TcpListener,
    pub admin: UnixListener,
}

impl Listeners {
    /// Binds the listeners the configuration names. Call it after the store
    /// is open (`build_context`): holding the store's lock is what makes an
    /// admin socket file left behind stale, so it is replaced, and made
    /// private.
    pub async fn bind(cfg: &Config) -> anyhow::Result<Listeners> {
        let smtp = TcpListener::bind(cfg.inbound.listen)
            .await
            .map_err(|e| anyhow::anyhow!("inbound.listen {}: {e}", cfg.inbound.listen))?;
        let http = TcpListener::bind(cfg.http.listen)
            .await
            .map_err(|e| anyhow::anyhow!("http.listen {}: {e}", cfg.http.listen))?;
        let metrics = TcpListener::bind(cfg.metrics.listen)
            .await
            .map_err(|e| anyhow::anyhow!("metrics.listen {}: {e}", cfg.metrics.listen))?;
        let socket_path = cfg.socket_path();
        let _ = std::fs::remove_file(&socket_path);
        let admin = UnixListener::bind(&socket_path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", socket_path.display()))?;
        restrict(&socket_path, 0o600);
        Ok(Listeners {
            smtp,
            http,
            metrics,
            admin,
        })
    }
}

/// Runs `ctx` (its clock included, see `build_context`) on `listeners`
/// until `shutdown` resolves, then stops accepting, lets sessions finish the
/// message in hand (within a few seconds), sends what is due, and syncs the
/// store.
pub async fn run(
    ctx: Context,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Exit> {
    let descriptors = raise_open_file_limit();
    let transport = Transport::from_config(&ctx.config)?;
    let ctx = Arc::new(ctx);
    let cfg = &ctx.config;
    let Listeners {
        smtp,
        http,
        metrics,
        admin: admin_listener,
    } = listeners;
    let socket_path = cfg.socket_path();

    let (stop_tx, stop_rx) = watch::channel(false);
    let smtp_addr = smtp.local_addr()?;
    let http_addr = http.local_addr()?;
    let metrics_addr = metrics.local_addr()?;
    let inbound_task = tokio::spawn(inbound::serve(ctx.clone(), smtp, stop_rx.clone()));
    // Built before anything starts, so a broken page template stops the
    // daemon with its file name.
    let app = web::router(ctx.clone())?;
    let web_task = tokio::spawn(web::serve(
        app,
        http,
        web::Limits::public(&cfg.http, descriptors),
        stop_rx.clone(),
    ));
    let metrics_task = tokio::spawn(web::serve(
        web::metrics_router(ctx.clone()),
        metrics,
        web::Limits::metrics(&cfg.http),
        stop_rx.clone(),
    ));
    let admin_task = tokio::spawn(admin::serve(ctx.clone(), admin_listener, stop_rx.clone()));
    let worker_task = tokio::spawn(outbound::run_worker(
        ctx.clone(),
        transport.clone(),
        stop_rx.clone(),
    ));
    let campaign_thread = campaign_thread(ctx.clone(), transport, stop_rx.clone())?;
    let housekeeping = tokio::spawn(housekeeping(ctx.clone(), stop_rx.clone()));
    let trimmer = tokio::spawn(crate::daemon::memory::trim_every(
        crate::daemon::memory::TRIM_EVERY,
        stop_rx.clone(),
    ));

    if let Some(warning) = crate::daemon::dmarc::stub_warning() {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        smtp = %smtp_addr,
        protocol = ?cfg.inbound.protocol,
        http = %http_addr,
        metrics = %metrics_addr,
        lists = ctx.lists.iter().count(),
        "utskick serving"
    );
    // One plain line for people and scripts (tests read the ports from it;
    // new listeners are added before `lists:`, so older readers still
    // parse it). Written, not println!: a closed stdout (a reader that went
    // away, say after the daemon restarted itself) must not take the
    // daemon down.
    let _ = writeln!(
        std::io::stdout(),
        "utskick ready: {} on {smtp_addr}, http on {http_addr}, metrics on {metrics_addr}, lists: {}",
        match cfg.inbound.protocol {
            crate::daemon::config::Protocol::Smtp => "smtp",
            crate::daemon::config::Protocol::Lmtp => "lmtp",
        },
        ctx.lists
            .iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let exit = tokio::select! {
        _ = shutdown => Exit::Stopped,
        _ = store_recovered(ctx.clone()) => Exit::Restart,
    };
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = inbound_task.await;
    let _ = admin_task.await;
    let _ = web_task.await;
    let _ = metrics_task.await;
    let _ = worker_task.await;
    // Joined off the runtime: the thread ends once its round is recorded.
    let _ = tokio::task::spawn_blocking(move || campaign_thread.join()).await;
    let _ = housekeeping.await;
    let _ = trimmer.await;
    if exit == Exit::Stopped {
        ctx.store.sync().await?;
    }
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("stopped");
    Ok(exit)
}

/// The campaign worker on a thread of its own with a single-threaded
/// runtime: its dispatcher, lanes and recorder hand each copy on several
/// times, and on one thread a hand-off is a queue push, not a futex wake
/// of another worker thread (BENCHMARKS.md, issue 17: the kernel's thread
/// wake-ups were a third of the CPU per message). Signing, which can take
/// milliseconds a copy, is spread over the cores by the lanes themselves
/// (`campaign::send`), and store flushes run on this runtime's blocking
/// pool.
fn campaign_thread(
    ctx: Arc<Context>,
    transport: Transport,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("utskick-campaign-io")
        .build()?;
    Ok(std::thread::Builder::new()
        .name("utskick-campaigns".into())
        .spawn(move || runtime.block_on(crate::campaign::run_worker(ctx, transport, stop)))?)
}

async fn housekeeping(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let cutoff = ctx.now_secs().saturating_sub(ctx.token_max_age() as u32);
        if let Err(e) = crate::campaign::expire_drafts(&ctx, cutoff) {
            tracing::error!(error = %e, "expiring drafts failed");
        }
        let unconfirmed_cutoff = ctx.now_secs().saturating_sub(
            ctx.config
                .limits
                .unconfirmed_days
                .saturating_mul(crate::time::SECS_PER_DAY as u32),
        );
        match ctx.store.purge_stale(cutoff, unconfirmed_cutoff, ctx.now()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired confirmations purged"),
            Err(e) => tracing::error!(error = %e, "purge failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Resolves once `shutdown` is true (at once if it already is; a sender
/// gone counts as true).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed at the call,
/// not at the first poll, so a signal that comes right after start-up is
/// not lost to the default action.
pub fn signals() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
