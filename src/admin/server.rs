//! The daemon's side of the admin socket: one request line in, one answer
//! line out (a `subscribers` listing streamed a page at a time).

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::admin::execute::{cli_who, execute_as, SubscriberPages};
use crate::admin::protocol::{Failure, Line, Request};
use crate::daemon::context::Context;

/// How long a client may take to send its request line.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Longest request line: a whole message for `inject`, base64-encoded, plus room.
fn max_request_bytes(ctx: &Context) -> usize {
    ctx.config.inbound.max_message_bytes / 3 * 4 + 64 * 1024
}

/// Serves admin requests on `listener` until `shutdown` turns true.
pub async fn serve(ctx: Arc<Context>, listener: UnixListener, mut shutdown: watch::Receiver<bool>) {
    // Requests in flight finish before shutdown goes on, so a CLI call that
    // changed the store also gets its answer.
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        while in_flight.try_join_next().is_some() {}
        let stream = tokio::select! {
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let ctx = ctx.clone();
        in_flight.spawn(async move {
            if let Err(e) = answer(&ctx, stream).await {
                tracing::warn!(error = %e, "admin connection failed");
            }
        });
    }
    while in_flight.join_next().await.is_some() {}
}

fn line(l: &Line) -> anyhow::Result<Vec<u8>> {
    let mut out = serde_json::to_vec(l)?;
    out.push(b'\n');
    Ok(out)
}

async fn answer(ctx: &Context, stream: UnixStream) -> anyhow::Result<()> {
    // Who asks, for the audit log: the kernel's word for the peer's user
    // (the socket is 0600, so it is the daemon's own user or root).
    let who = match stream.peer_cred() {
        Ok(cred) => cli_who(cred.uid()),
        Err(_) => "cli".to_string(),
    };
    let (read, mut write) = stream.into_split();
    let mut request = Vec::new();
    let limit = max_request_bytes(ctx) as u64;
    let mut reader = BufReader::new(read).take(limit);
    // A client that connects and says nothing must not hold up shutdown.
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_until(b'\n', &mut request))
        .await
        .map_err(|_| anyhow::anyhow!("no request within {REQUEST_TIMEOUT:?}"))??;
    let response = match serde_json::from_slice::<Request>(&request) {
        Ok(Request::Subscribers { list, status }) => {
            tracing::info!(command = "subscribers", "admin request");
            return stream_subscribers(ctx, &mut write, &list, status.as_deref()).await;
        }
        Ok(request) => {
            let span = tracing::info_span!("admin", command = request.name());
            let _enter = span.enter();
            tracing::info!("admin request");
            drop(_enter);
            execute_as(ctx, &who, request).await
        }
        Err(e) if request.len() as u64 >= limit => {
            Err(Failure::usage(format!("request too large ({e})")))
        }
        Err(e) => Err(Failure::usage(format!("bad admin request: {e}"))),
    };
    let body = match response {
        Ok(r) => Line::Ok(serde_json::to_value(&r)?),
        Err(f) => Line::Err(f),
    };
    write.write_all(&line(&body)?).await?;
    Ok(())
}

/// Answers a subscriber listing as a stream: a `head` line, one `row` line
/// per subscriber, then `{"ok": rows}` (or `err` at the first failure).
async fn stream_subscribers(
    ctx: &Context,
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    list: &str,
    status: Option<&str>,
) -> anyhow::Result<()> {
    let mut pages = match SubscriberPages::new(ctx, list, status) {
        Ok(p) => p,
        Err(f) => return Ok(write.write_all(&line(&Line::Err(f))?).await?),
    };
    let head = Line::Head {
        attributes: pages.attributes.clone(),
    };
    write.write_all(&line(&head)?).await?;
    let mut n = 0u64;
    loop {
        match pages.next_page() {
            Ok(Some(rows)) => {
                let mut out = Vec::new();
                for r in rows {
                    out.extend(line(&Line::Row(r))?);
                    n += 1;
                }
                write.write_all(&out).await?;
            }
            Ok(None) => break,
            Err(e) => {
                return Ok(write
                    .write_all(&line(&Line::Err(Failure::from(e)))?)
                    .await?)
            }
        }
    }
    write.write_all(&line(&Line::Ok(n.into()))?).await?;
    Ok(())
}
