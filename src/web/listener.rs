//! The HTTP listeners (the public one and `[metrics]`): hyper's HTTP/1
//! server over a tokio `TcpListener`, with what `axum::serve` lacks.
//!
//! - A request line and its headers must be complete within
//!   `header_timeout` of the server starting to wait for them (hyper's
//!   `header_read_timeout`: from the connect, and again after each
//!   response); a byte at a time does not stretch it.
//! - A connection idle after a response is closed after `keep_alive`.
//! - At most `max_connections` are open. At the cap, the connection idle
//!   the longest (no request in progress: it has sent nothing yet, half a
//!   header, or waits between requests) is closed to make room; when every
//!   one is busy with a request, the newcomer gets 503 and is closed. So a
//!   crowd of idle sockets never locks out a real request, and the
//!   listener never holds more descriptors than the cap.
//! - On shutdown, idle connections close at once, requests in flight get
//!   [`DRAIN`] to finish, then the rest are cut.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::daemon::config::Http;

/// How long shutdown waits for requests in flight.
pub const DRAIN: Duration = Duration::from_secs(3);
/// How long a refused connection's 503 may take to write.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);
/// Connections the `[metrics]` listener keeps open (a scraper needs one).
const METRICS_CONNECTIONS: usize = 16;

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 5\r\nretry-after: 5\r\nconnection: close\r\n\r\nbusy\n";

/// What a listener allows its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub keep_alive: Duration,
}

impl Limits {
    /// The public listener's limits from `[http]`. `descriptors` is the
    /// soft `RLIMIT_NOFILE` in force: the cap never takes more than half
    /// of it, so SMTP, the admin socket and the store keep theirs.
    pub fn public(http: &Http, descriptors: Option<u64>) -> Limits {
        let mut max = http.max_connections;
        if let Some(n) = descriptors {
            let half = usize::try_from(n / 2).unwrap_or(usize::MAX).max(1);
            if half < max {
                tracing::warn!(
                    configured = max,
                    allowed = half,
                    "http.max_connections lowered to half the open-file limit"
                );
                max = half;
            }
        }
        Limits {
            max_connections: max,
            header_timeout: Duration::from_secs(http.header_timeout_secs),
            keep_alive: Duration::from_secs(http.keep_alive_secs),
        }
    }

    /// The `[metrics]` listener's: the public timeouts, a small cap.
    pub fn metrics(http: &Http) -> Limits {
        Limits {
            max_connections: METRICS_CONNECTIONS,
            ..Limits::public(http, None)
        }
    }
}

/// One open connection, as the cap and the keep-alive watch see it.
struct Slot {
    /// Requests whose response has not been written out yet.
    in_flight: AtomicUsize,
    /// Requests begun on this connection.
    requests: AtomicU64,
    /// Milliseconds after the registry's epoch when it last became idle
    /// (opened, or a response ended).
    idle_since: AtomicU64,
    /// Rung when the cap closes this connection to make room.
    evict: Notify,
}

impl Slot {
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// The open connections of one listener.
struct Registry {
    slots: Mutex<BTreeMap<u64, Arc<Slot>>>,
    next: AtomicU64,
    epoch: Instant,
    cap: usize,
}

impl Registry {
    fn new(cap: usize) -> Registry {
        Registry {
            slots: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
            epoch: Instant::now(),
            cap,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// A slot for a new connection. At the cap, the longest-idle
    /// connection is told to close and gives up its place; None when
    /// every connection is busy with a request.
    fn admit(&self) -> Option<(u64, Arc<Slot>)> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() >= self.cap {
            let victim = slots
                .iter()
                .filter(|(_, s)| s.is_idle())
                .min_by_key(|(_, s)| s.idle_since.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(slot) = slots.remove(&victim) {
                slot.evict.notify_one();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            evict: Notify::new(),
        });
        slots.insert(id, slot.clone());
        Some((id, slot))
    }

    fn release(&self, id: u64) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

/// Frees a connection's place when its task ends, however it ends.
struct Release(Arc<Registry>, u64);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// A request in progress, from its head until its response body is
/// dropped (written out, or the connection gone).
struct Busy(Arc<Slot>, Arc<Registry>);

impl Busy {
    fn new(slot: Arc<Slot>, registry: Arc<Registry>) -> Busy {
        slot.in_flight.fetch_add(1, Ordering::AcqRel);
        slot.requests.fetch_add(1, Ordering::Relaxed);
        Busy(slot, registry)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since.store(self.1.now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` turns true.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let registry = Arc::new(Registry::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::daemon::stopped(&mut shutdown) => break,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some((id, slot)) = registry.admit() else {
            tracing::warn!(%peer, "http connection refused: every connection is busy");
            connections.spawn(refuse(stream));
            continue;
        };
        let release = Release(registry.clone(), id);
        connections.spawn(connection(
            stream,
            peer,
            app.clone(),
            builder.clone(),
            limits.keep_alive,
            (slot, registry.clone(), release),
            shutdown.clone(),
        ));
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN, drain).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "http connections still open at shutdown were cut"
        );
    }
}

/// 503 to a connection past the cap, then close.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_WRITE, stream.write_all(REFUSAL)).await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    builder: http1::Builder,
    keep_alive: Duration,
    (slot, registry, _release): (Arc<Slot>, Arc<Registry>, Release),
    mut shutdown: watch::Receiver<bool>,
) {
    let service = {
        let slot = slot.clone();
        let registry = registry.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let busy = Busy::new(slot.clone(), registry.clone());
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                let response: Response = match tower_service::Service::call(&mut app, request).await
                {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                // The request counts as in progress until hyper drops the
                // body, after its last frame.
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        let _ = &busy;
                        frame
                    }))
                }))
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        // The keep-alive watch: a connection that has been answered and
        // asks nothing more is closed `keep_alive` after its last response.
        // (Before its first request, the header timeout alone applies.)
        let idle_until = if slot.is_idle() {
            registry.at(slot.idle_since.load(Ordering::Relaxed)) + keep_alive
        } else {
            Instant::now() + keep_alive
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "http connection ended");
                }
                return;
            }
            _ = slot.evict.notified() => {
                tracing::debug!(%peer, "idle http connection closed to make room");
                return;
            }
            _ = crate::daemon::stopped(&mut shutdown), if !draining => {
                // Closes an idle connection at once; one mid-request ends
                // after its response.
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = tokio::time::sleep_until(idle_until) => {
                let idle_for = Instant::now()
                    .saturating_duration_since(registry.at(slot.idle_since.load(Ordering::Relaxed)));
                if slot.is_idle()
                    && slot.requests.load(Ordering::Relaxed) > 0
                    && idle_for >= keep_alive
                {
                    tracing::debug!(%peer, "idle keep-alive connection closed");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let r = Registry::new(2);
        let (a, slot_a) = r.admit().unwrap();
        let (_b, slot_b) = r.admit().unwrap();
        // b is busy; a is the only idle one, so a goes.
        slot_b.in_flight.fetch_add(1, Ordering::AcqRel);
        let (_c, _) = r.admit().unwrap();
        assert!(!r.slots.lock().unwrap().contains_key(&a));
        // The eviction was signalled (a stored permit).
        let notified = slot_a.evict.notified();
        tokio::pin!(notified);
        assert!(futures_poll_ready(notified));
    }

    #[test]
    fn when_every_connection_is_busy_the_newcomer_is_refused() {
        let r = Registry::new(1);
        let (id, slot) = r.admit().unwrap();
        slot.in_flight.fetch_add(1, Ordering::AcqRel);
        assert!(r.admit().is_none());
        slot.in_flight.fetch_sub(1, Ordering::AcqRel);
        r.release(id);
        assert!(r.admit().is_some());
    }

    #[test]
    fn the_cap_takes_at_most_half_the_descriptors() {
        let http = Http {
            max_connections: 1024,
            ..Http::default()
        };
        assert_eq!(Limits::public(&http, Some(1024)).max_connections, 512);
        assert_eq!(Limits::public(&http, Some(65536)).max_connections, 1024);
        assert_eq!(Limits::public(&http, None).max_connections, 1024);
    }

    fn futures_poll_ready<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        f.poll(&mut cx).is_ready()
    }
}
