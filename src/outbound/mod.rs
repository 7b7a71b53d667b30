//! Sending: the transports (file outbox, or an SMTP relay through our own
//! client in `smtp.rs`) and the worker that drains the store's queue of
//! system mail.
//!
//! Whether a failure is permanent or transient is decided here, once. A mail
//! leaves the queue only after the transport accepted it (at-least-once: a
//! crash between the two sends it again), or after a permanent failure or
//! the last retry, when it is kept in the dead-letter tree with its error.

mod smtp;

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::{AsyncFileTransport, AsyncTransport, Tokio1Executor};
use tokio::task::JoinSet;

use crate::daemon::config::{Config, Tls, TransportKind};
use crate::daemon::context::{Context, Metrics};
use crate::store::OutMail;
use crate::time::{SECS_PER_HOUR as HOUR, SECS_PER_MINUTE as MIN};

pub use lettre::address::Envelope;
pub use smtp::{stuff_into, Login, RelaySettings, SendError, Session, TlsClient};

/// Retry delays after the 1st, 2nd, … transient failure; after the last the
/// mail is given up (about two days in all, like an MTA's queue lifetime).
const SYSTEM_MAIL_RETRY_DELAYS_SECS: &[i64] = &[
    MIN,
    5 * MIN,
    15 * MIN,
    HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    24 * HOUR,
];
/// Mails taken from the queue per round.
const BATCH: usize = 64;
/// How long the worker sleeps when nothing wakes it, to pick up retries.
const IDLE_POLL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    /// A relay: each lane (campaign senders, the system-mail worker) holds
    /// its own session to it.
    Smtp(Arc<RelaySettings>),
}

/// True if the relay closed the session or sent something unasked (a 421
/// before it hangs up): either way the session cannot carry a message.
fn peer_gone(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: `fd` is the socket of a session that is still open (the
    // caller holds it); MSG_PEEK leaves any byte for the session to read, and
    // MSG_DONTWAIT never blocks.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock;
    }
    true
}

/// True for a relay on this machine, where a plain connection never
/// leaves it.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A lane's session unused for this long is closed before the next message:
/// relays hang up on idle sessions (Postfix after 300 s, hosted relays sooner).
const LANE_IDLE: Duration = Duration::from_secs(30);

/// One sending lane: a campaign sender task owns one, and with it one
/// relay connection that stays open between messages.
pub enum Lane {
    File(AsyncFileTransport<Tokio1Executor>),
    /// The session is boxed: it holds its buffers and is far bigger than
    /// a file transport.
    Relay(Arc<RelaySettings>, Option<Box<Session>>),
}

/// The SMTP envelope of a message: its paths parsed and checked once
/// (a campaign builds each copy's when it makes the copy, not again for
/// each write it rides in). A bad recipient is a permanent failure that
/// counts as a bounce; a bad sender one that does not.
pub fn envelope(reverse_path: &str, forward_path: &[String]) -> Result<Envelope, SendError> {
    let from = if reverse_path.is_empty() {
        None
    } else {
        Some(reverse_path.parse().map_err(|e| SendError {
            permanent: true,
            message: format!("bad envelope sender: {e}"),
            bounce: false,
        })?)
    };
    let to = forward_path
        .iter()
        .map(|a| a.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SendError {
            permanent: true,
            message: format!("bad recipient: {e}"),
            bounce: true,
        })?;
    Envelope::new(from, to).map_err(|e| SendError {
        permanent: true,
        message: format!("bad envelope: {e}"),
        bounce: false,
    })
}

/// Writes to the file outbox. A full disk or a missing directory can be
/// mended by an admin, so its failures are transient.
async fn send_file(
    t: &AsyncFileTransport<Tokio1Executor>,
    envelope: &Envelope,
    raw: &[u8],
) -> Result<(), SendError> {
    t.send_raw(envelope, raw)
        .await
        .map(drop)
        .map_err(|e| SendError {
            permanent: false,
            message: e.to_string(),
            bounce: false,
        })
}

/// What became of the next copy given to [`Lane::send_ahead`].
#[derive(Debug)]
pub enum Ahead {
    /// Not sent, or sent on a session that broke before the relay
    /// answered it (so nothing of it was refused or delivered): the next
    /// copy goes on its own, as usual.
    NotSent,
    /// Its envelope went with this copy's end of data and the relay waits
    /// for its bytes: the lane's next send must be that copy.
    Open,
    /// Its envelope went and failed: that copy's outcome.
    Failed(SendError),
}

impl Lane {
    /// Sends one message.
    pub async fn send(
        &mut self,
        reverse_path: &str,
        forward_path: &[String],
        raw: &[u8],
    ) -> Result<(), SendError> {
        self.send_ahead(reverse_path, forward_path, raw, None)
            .await
            .0
    }

    /// True if a next copy given to [`Lane::send_ahead`] can go with this
    /// one: a relay lane whose session pipelines DATA, or has yet to open.
    pub fn sends_ahead(&self) -> bool {
        match self {
            Lane::File(_) => false,
            Lane::Relay(_, conn) => conn.as_ref().is_none_or(|s| s.sends_ahead()),
        }
    }

    /// Sends one message, and where the relay pipelines DATA writes the
    /// envelope of `next` (reverse path, forward path, its rendered bytes)
    /// behind this message's final "." in the same write (RFC 2920's
    /// second example): one write and one read a copy instead of two.
    /// The first result is this message's, as `send` would give it. With
    /// `Ahead::Open` the lane's next send must be `next`, with the same
    /// paths and bytes; it then writes only the message.
    pub async fn send_ahead(
        &mut self,
        reverse_path: &str,
        forward_path: &[String],
        raw: &[u8],
        next: Option<(&str, &[String], &[u8])>,
    ) -> (Result<(), SendError>, Ahead) {
        let this = match envelope(reverse_path, forward_path) {
            Ok(e) => e,
            Err(e) => return (Err(e), Ahead::NotSent),
        };
        // A next copy with an envelope we cannot write goes on its own,
        // and fails there.
        let next = next.and_then(|(rp, fp, raw)| Some((envelope(rp, fp).ok()?, raw)));
        self.send_envelope_ahead(&this, raw, next.as_ref().map(|(e, raw)| (e, *raw)))
            .await
    }

    /// [`Lane::send_ahead`] with the envelopes built already
    /// ([`envelope`]); `next` is left out by a caller whose envelope
    /// could not be built.
    pub async fn send_envelope_ahead(
        &mut self,
        this: &Envelope,
        raw: &[u8],
        next: Option<(&Envelope, &[u8])>,
    ) -> (Result<(), SendError>, Ahead) {
        match self {
            Lane::File(t) => (send_file(t, this, raw).await, Ahead::NotSent),
            Lane::Relay(settings, conn) => {
                if let Some(session) = conn.as_ref() {
                    if session.is_open() {
                        // Its envelope went ahead and the relay waits for
                        // its bytes: no idle or hang-up check (a relay gone
                        // meanwhile fails this write, transiently). Any
                        // other copy here is a defect; hanging up ends the
                        // open transaction with nothing delivered.
                        if !session.holds(this, raw) {
                            *conn = None;
                        }
                    } else if session.used.elapsed() >= LANE_IDLE {
                        // The relay may have hung up on an idle session; a
                        // fresh one is cheaper than finding out.
                        if let Some(old) = conn.take() {
                            old.quit().await;
                        }
                    } else if session.fd.is_some_and(peer_gone) || session.has_unread() {
                        // It hung up (or said 421) since the last message:
                        // sending on it would fail, or worse, look like a
                        // failure after the relay took the message.
                        *conn = None;
                    }
                }
                Self::relay_send(settings, conn, this, raw, next).await
            }
        }
    }

    async fn relay_send(
        settings: &RelaySettings,
        conn: &mut Option<Box<Session>>,
        envelope: &Envelope,
        raw: &[u8],
        next: Option<(&Envelope, &[u8])>,
    ) -> (Result<(), SendError>, Ahead) {
        if conn.is_none() {
            match Session::open(settings).await {
                Ok(s) => *conn = Some(Box::new(s)),
                Err(e) => return (Err(e), Ahead::NotSent),
            }
        }
        let session = conn.as_mut().expect("connected above");
        let (this, ahead) = session.send_ahead(envelope, raw, next).await;
        let mut keep = true;
        let this = this.map_err(|failed| {
            keep &= failed.keep;
            failed.error
        });
        let ahead = match ahead {
            smtp::Ahead::NotSent => Ahead::NotSent,
            smtp::Ahead::Open => Ahead::Open,
            smtp::Ahead::Failed(failed) => {
                keep &= failed.keep;
                Ahead::Failed(failed.error)
            }
        };
        if !keep {
            // A 421, a hang-up or silence: the next message opens a fresh
            // session.
            *conn = None;
        }
        (this, ahead)
    }

    /// Hangs up a session that holds an open transaction (a copy whose
    /// envelope went ahead and that is not to be sent after all): the
    /// relay drops it with nothing delivered. Any other session stays.
    pub fn hang_up_open(&mut self) {
        if let Lane::Relay(_, conn) = self {
            if conn.as_ref().is_some_and(|s| s.is_open()) {
                *conn = None;
            }
        }
    }

    /// Ends the session politely.
    pub async fn close(&mut self) {
        if let Lane::Relay(_, conn) = self {
            if let Some(old) = conn.take() {
                old.quit().await;
            }
        }
    }
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Transport> {
        match config.outbound.transport {
            TransportKind::File => {
                let dir = config.outbox_dir();
                std::fs::create_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", dir.display()))?;
                Ok(Transport::File(AsyncFileTransport::with_envelope(dir)))
            }
            TransportKind::Smtp => {
                let o = &config.outbound;
                let (host, port) = o
                    .relay
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.trim_matches(['[', ']']), p.parse::<u16>().ok()?)))
                    .ok_or_else(|| {
                        anyhow::anyhow!("outbound.relay {:?} is not host:port", o.relay)
                    })?;
                // Bad TLS settings show at start-up, not at the first send.
                let tls_client = match o.tls {
                    Tls::None => None,
                    Tls::Starttls | Tls::Tls => Some(TlsClient::new(host)?),
                };
                let credentials = if o.username.is_empty() {
                    None
                } else if o.tls == Tls::None && !is_loopback(host) {
                    // AUTH PLAIN and LOGIN are the password in base64: over
                    // a plain connection anyone on the path reads it.
                    anyhow::bail!(
                        "outbound.username is set but outbound.tls is \"none\": the password would cross the network to {host} in clear; set tls = \"starttls\" or \"tls\""
                    );
                } else {
                    let password = std::env::var(&o.password_env).map_err(|_| {
                        anyhow::anyhow!(
                            "outbound.username is set but the environment variable {} (outbound.password_env) is not",
                            o.password_env
                        )
                    })?;
                    Some(Login {
                        user: o.username.clone(),
                        password,
                    })
                };
                let relay = RelaySettings {
                    timeout: Duration::from_secs(o.timeout_secs),
                    host: host.to_string(),
                    port,
                    tls: o.tls,
                    tls_client,
                    credentials,
                    hello: config.domain.clone(),
                    bdat_refused: Default::default(),
                };
                Ok(Transport::Smtp(Arc::new(relay)))
            }
        }
    }

    /// Tries the relay as `check` does: connect, EHLO, STARTTLS and AUTH
    /// when configured. Describes what worked.
    pub async fn probe(&self) -> Result<String, SendError> {
        match self {
            Transport::Smtp(relay) => {
                let conn = Session::open(relay).await?;
                let tls = if conn.is_encrypted() { "TLS" } else { "no TLS" };
                let auth = if relay.credentials.is_some() {
                    ", AUTH accepted"
                } else {
                    ""
                };
                conn.quit().await;
                Ok(format!("EHLO accepted, {tls}{auth}"))
            }
            Transport::File(_) => Ok("no relay".into()),
        }
    }

    /// A lane for one campaign sender task.
    pub fn lane(&self) -> Lane {
        match self {
            Transport::File(t) => Lane::File(t.clone()),
            Transport::Smtp(relay) => Lane::Relay(relay.clone(), None),
        }
    }
}

/// System mails waiting to be sent (or retried).
pub fn queue_depth(ctx: &Context) -> usize {
    ctx.store.outbox_len()
}

/// When to try again after `attempts` failures; None: give up.
pub fn retry_delay(attempts: u32) -> Option<i64> {
    SYSTEM_MAIL_RETRY_DELAYS_SECS
        .get(attempts as usize - 1)
        .copied()
}

/// Drains the queue until `shutdown` fires; a round in progress finishes
/// first. The worker keeps `outbound.connections` lanes, so system mail
/// reuses relay sessions (with TCP_NODELAY) between rounds.
pub async fn run_worker(
    ctx: Arc<Context>,
    transport: Transport,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut lanes = Vec::new();
    loop {
        if let Err(e) = drain_with(&ctx, &transport, &mut lanes).await {
            tracing::error!(error = %e, "outbound round failed");
        }
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            _ = ctx.mail_ready.notified() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
    for lane in &mut lanes {
        lane.close().await;
    }
}

/// Sends what is due now, `outbound.connections` at a time, on fresh
/// lanes that it closes afterwards. Returns how many mails were handled.
pub async fn drain_once(ctx: &Arc<Context>, transport: &Transport) -> anyhow::Result<usize> {
    let mut lanes = Vec::new();
    let result = drain_with(ctx, transport, &mut lanes).await;
    for lane in &mut lanes {
        lane.close().await;
    }
    result
}

type Sent = (OutMail, Result<(), SendError>);

/// Sends what is due now over `lanes` (topped up to `outbound.connections`).
async fn drain_with(
    ctx: &Arc<Context>,
    transport: &Transport,
    lanes: &mut Vec<Lane>,
) -> anyhow::Result<usize> {
    let mut total = 0;
    let mut tried = std::collections::HashSet::new();
    loop {
        // What we send must be durable first: a confirmation whose pending
        // record a crash could still lose would carry a dead token. Read,
        // then sync: everything read was written before the flush began,
        // so the flush covers it (syncing first would leave a gap for a
        // write that lands between the two).
        let now = ctx.now().timestamp();
        let mut due = ctx.store.due_mail(now, BATCH)?;
        ctx.store.sync().await?;
        // A mail whose send task died stays due: try it once per call.
        due.retain(|m| tried.insert(m.id));
        if due.is_empty() {
            return Ok(total);
        }
        total += due.len();
        let parallel = (ctx.config.outbound.connections.max(1) as usize).min(due.len());
        while lanes.len() < parallel {
            lanes.push(transport.lane());
        }
        let queue = Arc::new(Mutex::new(VecDeque::from(due)));
        let mut set = JoinSet::new();
        for mut lane in lanes.drain(..parallel) {
            let queue = queue.clone();
            set.spawn(async move {
                let mut done: Vec<Sent> = Vec::new();
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some(mail) = next else { break };
                    let r = lane
                        .send(&mail.reverse_path, &mail.forward_path, &mail.raw)
                        .await;
                    done.push((mail, r));
                }
                (lane, done)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((lane, done)) => {
                    lanes.push(lane);
                    results.extend(done);
                }
                Err(e) => tracing::error!(error = %e, "send task failed"),
            }
        }
        let now = ctx.now().timestamp();
        ctx.store.write(|tx| {
            for (mut mail, result) in results {
                match result {
                    Ok(()) => {
                        Metrics::inc(&ctx.metrics.mails_sent);
                        tracing::debug!(id = mail.id, "mail sent");
                        tx.remove_mail(mail.id);
                    }
                    Err(e) => {
                        mail.attempts += 1;
                        mail.last_error = Some(e.message.clone());
                        match (e.permanent, retry_delay(mail.attempts)) {
                            (false, Some(delay)) => {
                                Metrics::inc(&ctx.metrics.mails_deferred);
                                tracing::warn!(id = mail.id, attempts = mail.attempts, error = %e.message, "send deferred");
                                mail.next_attempt = now + delay;
                                tx.update_mail(&mail);
                            }
                            _ => {
                                Metrics::inc(&ctx.metrics.mails_failed);
                                tracing::error!(id = mail.id, permanent = e.permanent, error = %e.message, "send failed for good");
                                tx.bury_mail(&mail);
                            }
                        }
                    }
                }
            }
            Ok(())
        })?;
        ctx.store.sync().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every relay session (campaign lanes and system mail alike) has Nagle
    /// off: with Nagle on, the last segment of a write waits for the
    /// relay's delayed ACK (~40 ms a message).
    #[tokio::test]
    async fn relay_sessions_have_nagle_off() {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = std::io::BufReader::new(s);
            let mut line = String::new();
            w.write_all(b"220 relay.test ESMTP\r\n").unwrap();
            r.read_line(&mut line).unwrap();
            w.write_all(b"250 relay.test\r\n").unwrap();
            // Hold the session until the client leaves.
            let _ = r.read_line(&mut line);
        });
        let settings = RelaySettings {
            timeout: Duration::from_secs(5),
            host: "127.0.0.1".into(),
            port,
            tls: Tls::None,
            tls_client: None,
            credentials: None,
            hello: "lista.example.se".into(),
            bdat_refused: Default::default(),
        };
        let session = Session::open(&settings).await.unwrap();
        let fd = session.fd.expect("a plain session keeps its socket");
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: fd is the open socket of `session`; `on` and `len` are
        // valid for the sizes given.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&mut on as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        assert_ne!(on, 0, "TCP_NODELAY is off on a relay session");
    }

    #[test]
    fn retries_back_off_then_give_up() {
        assert_eq!(retry_delay(1), Some(60));
        assert!(retry_delay(2).unwrap() > retry_delay(1).unwrap());
        assert_eq!(
            retry_delay(SYSTEM_MAIL_RETRY_DELAYS_SECS.len() as u32 + 1),
            None
        );
    }
}
