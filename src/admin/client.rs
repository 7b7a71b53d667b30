//! The CLI's side: send a request to the running daemon, or, when none
//! runs, carry it out in this process (sled admits one process at a time,
//! so there is no third way).

use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::admin::execute::{cli_who, execute_as};
use crate::admin::protocol::{Failure, Line, Request, Response, Streamed};
use crate::daemon::config::Config;
use crate::daemon::context::system_clock;
use crate::outbound::{self, Transport};

/// Sends `request` to a daemon listening on `socket`. `Ok(None)` means no
/// daemon answers there (no socket, or a stale one), so the caller may open
/// the store itself.
pub async fn call(
    socket: &Path,
    request: &Request,
) -> anyhow::Result<Option<Result<Response, Failure>>> {
    call_streaming(socket, request, |_| Ok(())).await
}

/// Like [`call`], for a request answered as a stream (`subscribers`):
/// `each` gets every line before the closing one (other requests have
/// none). `Ok(None)`: no daemon.
pub async fn call_streaming(
    socket: &Path,
    request: &Request,
    mut each: impl FnMut(Streamed) -> std::io::Result<()>,
) -> anyhow::Result<Option<Result<Response, Failure>>> {
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => anyhow::bail!("{}: cannot reach the daemon: {e}", socket.display()),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.shutdown().await?;
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        reader.read_until(b'\n', &mut buf).await?;
        if buf.is_empty() {
            anyhow::bail!("the daemon closed the connection without a complete answer");
        }
        match serde_json::from_slice::<Line>(&buf)? {
            Line::Head { attributes } => each(Streamed::Head { attributes })?,
            Line::Row(r) => each(Streamed::Row(r))?,
            Line::Ok(v) => return Ok(Some(Ok(Response::from_wire(request, v)?))),
            Line::Err(f) => return Ok(Some(Err(f))),
        }
    }
}

/// Carries `request` out in this process (no daemon runs), then sends what
/// it queued; if that fails, `unsent` hears why (the daemon sends it when
/// it runs).
pub async fn execute_here(
    config: Config,
    request: Request,
    unsent: impl FnOnce(&anyhow::Error),
) -> Result<Response, Failure> {
    Here::open(config)?.execute(request, unsent).await
}

/// The store and the mail transport, opened in this process (no daemon
/// runs) for one request or several: a big import's batches share one,
/// where each opening builds the whole context (the store, every
/// template compiled) again.
pub struct Here {
    ctx: std::sync::Arc<crate::daemon::context::Context>,
    transport: Transport,
    /// Who asks, for the audit log: this process's Unix user.
    who: String,
}

impl Here {
    /// Opens the store of `config` in this process.
    pub fn open(config: Config) -> Result<Here, Failure> {
        Here::open_with_cache(config, crate::store::CACHE_CAPACITY)
    }

    /// `open` for many writes in a row (a big import): a big page cache
    /// (`store::BULK_CACHE_CAPACITY`).
    pub fn open_for_bulk(config: Config) -> Result<Here, Failure> {
        Here::open_with_cache(config, crate::store::BULK_CACHE_CAPACITY)
    }

    fn open_with_cache(config: Config, cache: u64) -> Result<Here, Failure> {
        let transport = Transport::from_config(&config)?;
        let ctx = std::sync::Arc::new(crate::daemon::build_context_with_cache(
            config,
            system_clock(),
            cache,
        )?);
        // SAFETY: getuid cannot fail.
        let who = cli_who(unsafe { libc::getuid() });
        Ok(Here {
            ctx,
            transport,
            who,
        })
    }

    /// Carries `request` out, sends what it queued (`unsent` hears why
    /// not), and makes it durable before answering.
    pub async fn execute(
        &self,
        request: Request,
        unsent: impl FnOnce(&anyhow::Error),
    ) -> Result<Response, Failure> {
        let response = execute_as(&self.ctx, &self.who, request).await?;
        if let Err(e) = outbound::drain_once(&self.ctx, &self.transport).await {
            unsent(&e);
        }
        self.ctx.store.sync().await?;
        Ok(response)
    }
}
