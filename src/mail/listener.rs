//! The inbound listener: SMTP or LMTP on a tokio accept loop, with
//! smtp-proto parsing the client's pipelined commands.
//!
//! It accepts mail only for list addresses (550 for anything else: never an
//! open relay), and answers 250 only after the commands layer has written
//! and synced what the message changed. It knows nothing of subscriptions
//! itself.
//!
//! No client gets all the slots: sessions are capped in all and per client
//! address (loopback, the MTA, exempt by default); a session is closed
//! with 421 when it idles too long, lives too long, spends too long in one
//! DATA (or BDAT) phase, or sends too many commands that deliver nothing
//! (NOOP, RSET, VRFY, HELP, and those not offered, such as ETRN or AUTH;
//! unrecognised commands count as errors, of which 10 end the session).
//! On shutdown a session between
//! messages is closed at once and one mid-message gets
//! [`SHUTDOWN_GRACE`] to finish it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_proto::request::receiver::{
    BdatReceiver, DataReceiver, DummyDataReceiver, RequestReceiver,
};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::address;
use crate::daemon::config::{Network, Protocol};
use crate::daemon::context::{Context, Metrics};
use crate::daemon::lists;
use crate::mail::router::Refusal;

/// Recipients per transaction (RFC 5321 §4.5.3.1.8 asks servers to take at least 100).
const MAX_RECIPIENTS: usize = 100;
/// Protocol errors a client may make before we hang up.
const MAX_ERRORS: u32 = 10;
/// NOOP, RSET, VRFY, HELP and commands not offered (ETRN, AUTH, …) a
/// session may send between delivered messages (Postfix's
/// `smtpd_junk_command_limit`); the next one gets 421.
const MAX_JUNK_COMMANDS: u32 = 100;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// On shutdown, how long a session mid-message gets to finish it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long shutdown waits for sessions before it cuts them: the grace,
/// and a moment for the 421.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a farewell (a 421) may take to write.
const FAREWELL_WRITE: Duration = Duration::from_secs(1);

/// Sessions per client address. An IPv6 client is counted by its /64, the
/// least a host is usually given.
struct PerIp {
    max: usize,
    exempt: Vec<Network>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A session's place in [`PerIp`], given back when it ends.
struct IpShare {
    per_ip: Arc<PerIp>,
    /// None: exempt, not counted.
    key: Option<IpAddr>,
}

impl PerIp {
    fn new(max: usize, exempt: Vec<Network>) -> PerIp {
        PerIp {
            max,
            exempt,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for a session from `ip`; None when `ip` has its share.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpShare> {
        let ip = ip.to_canonical();
        if self.exempt.iter().any(|n| n.contains(ip)) {
            return Some(IpShare {
                per_ip: self.clone(),
                key: None,
            });
        }
        let key = match ip {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
            v4 => v4,
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpShare {
            per_ip: self.clone(),
            key: Some(key),
        })
    }
}

impl Drop for IpShare {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.per_ip.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// Accepts connections until `shutdown` turns true, then gives the
/// sessions in flight [`SHUTDOWN_GRACE`] to finish their current message.
pub async fn serve(ctx: Arc<Context>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let inbound = &ctx.config.inbound;
    let limit = Arc::new(Semaphore::new(inbound.max_connections));
    let per_ip = Arc::new(PerIp::new(
        inbound.max_connections_per_ip,
        inbound.per_ip_exempt.clone(),
    ));
    let mut sessions = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = crate::daemon::stopped(&mut shutdown) => break,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while sessions.try_join_next().is_some() {}
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let permit = limit.clone().try_acquire_owned();
        let share = per_ip.admit(peer.ip());
        sessions.spawn(async move {
            let mut socket = socket;
            let refusal: &[u8] = if permit.is_err() {
                tracing::warn!(%peer, "connection refused: too many connections");
                b"421 4.7.0 Too many connections, try again later\r\n"
            } else if share.is_none() {
                tracing::warn!(%peer, "connection refused: too many connections from this address");
                b"421 4.7.0 Too many connections from your address, try again later\r\n"
            } else {
                b""
            };
            if !refusal.is_empty() {
                let _ = tokio::time::timeout(FAREWELL_WRITE, socket.write_all(refusal)).await;
                return;
            }
            let (_permit, _share) = (permit, share);
            let span = tracing::info_span!("session", %peer);
            if let Err(e) = Session::new(ctx)
                .run(socket, shutdown)
                .instrument(span.clone())
                .await
            {
                span.in_scope(|| tracing::debug!(error = %e, "session ended with an error"));
            }
        });
    }
    drop(listener);
    let drain = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!(
            open = sessions.len(),
            "sessions still open at shutdown were cut"
        );
    }
}

/// Writes with a deadline.
async fn write(socket: &mut TcpStream, bytes: &[u8], limit: Duration) -> std::io::Result<()> {
    tokio::time::timeout(limit, socket.write_all(bytes))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client does not read"))?
}

/// A 421 for `cut`, then the session ends.
async fn farewell(socket: &mut TcpStream, cut: Cut) -> std::io::Result<()> {
    write(socket, cut.reply(), FAREWELL_WRITE).await
}

/// Drives one session's state machine over `chunks` as if they arrived
/// from a client, and returns everything it answered. For the fuzz target
/// and protocol tests: no socket, no timeouts.
#[doc(hidden)]
pub async fn replay(ctx: Arc<Context>, chunks: &[&[u8]]) -> Vec<u8> {
    let mut session = Session::new(ctx);
    session.greeted = false;
    let mut state = State::Command(RequestReceiver::default());
    let mut answered = Vec::new();
    for chunk in chunks {
        let mut bytes = chunk.iter();
        session.ingest(&mut state, &mut bytes).await;
        answered.append(&mut session.out);
        if session.quit {
            break;
        }
    }
    answered
}

enum State {
    Command(RequestReceiver),
    Data(DataReceiver),
    Bdat(BdatReceiver),
    /// Reading and throwing away a message that broke the size limit.
    Discard(DummyDataReceiver, bool),
}

struct Session {
    ctx: Arc<Context>,
    lmtp: bool,
    greeted: bool,
    reverse_path: Option<String>,
    recipients: Vec<String>,
    message: Vec<u8>,
    /// When the DATA or BDAT phase of the message in hand began.
    data_started: Option<Instant>,
    errors: u32,
    /// Commands since the last delivered message that delivered nothing.
    junk: u32,
    /// Set by `reply` when the current command got a 4xx or 5xx answer, and
    /// by `junk_command` when it counted the command itself.
    refused: bool,
    junk_counted: bool,
    out: Vec<u8>,
    quit: bool,
}

/// Why a session is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Idle,
    Data,
    Lifetime,
    Shutdown,
}

impl Cut {
    fn reply(self) -> &'static [u8] {
        match self {
            Cut::Idle => b"421 4.4.2 Timeout, closing connection\r\n",
            Cut::Data => b"421 4.4.2 The message took too long, closing connection\r\n",
            Cut::Lifetime => b"421 4.4.2 Session time limit reached, closing connection\r\n",
            Cut::Shutdown => b"421 4.3.2 Service shutting down, try again later\r\n",
        }
    }
}

impl Session {
    fn new(ctx: Arc<Context>) -> Session {
        let lmtp = ctx.config.inbound.protocol == Protocol::Lmtp;
        Session {
            ctx,
            lmtp,
            greeted: false,
            reverse_path: None,
            recipients: Vec::new(),
            message: Vec::new(),
            data_started: None,
            errors: 0,
            junk: 0,
            refused: false,
            junk_counted: false,
            out: Vec::new(),
            quit: false,
        }
    }

    fn reply(&mut self, line: &str) {
        if line.starts_with(['4', '5']) {
            self.refused = true;
        }
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn reset(&mut self) {
        self.reverse_path = None;
        self.recipients.clear();
        self.message = Vec::new();
        self.data_started = None;
    }

    fn max_bytes(&self) -> usize {
        self.ctx.config.inbound.max_message_bytes
    }

    /// Counts a command that delivers nothing; past the limit, answers 421
    /// instead and ends the session. True when it did.
    fn junk_command(&mut self) -> bool {
        self.junk_counted = true;
        self.junk += 1;
        if self.junk > MAX_JUNK_COMMANDS {
            tracing::info!("session closed: too many commands without mail");
            self.reply("421 4.7.0 Too many commands without mail, closing connection");
            self.quit = true;
        }
        self.quit
    }

    /// No message is in hand: no DATA or BDAT phase has begun.
    fn between_messages(&self, state: &State) -> bool {
        matches!(state, State::Command(_)) && self.data_started.is_none()
    }

    async fn run(
        mut self,
        mut socket: TcpStream,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        // The last reply of a message is one small write; without NODELAY it
        // waits for the client's delayed ACK (~40 ms a message on loopback).
        socket.set_nodelay(true)?;
        let (idle, data_limit, lifetime) = {
            let inbound = &self.ctx.config.inbound;
            (
                Duration::from_secs(inbound.idle_timeout_secs),
                Duration::from_secs(inbound.data_timeout_secs),
                Duration::from_secs(inbound.session_lifetime_secs),
            )
        };
        let ends = Instant::now() + lifetime;
        let banner = if self.lmtp { "LMTP" } else { "ESMTP" };
        let greeting = format!("220 {} utskick {banner} ready", self.ctx.config.domain);
        self.reply(&greeting);
        write(&mut socket, &std::mem::take(&mut self.out), idle).await?;
        tracing::debug!("session opened");
        let mut state = State::Command(RequestReceiver::default());
        let mut buf = vec![0u8; READ_CHUNK];
        // Time runs from the last reply, not the last byte: a client that
        // trickles a byte a minute must still finish its command in time.
        let mut last_progress = Instant::now();
        // Set on shutdown: the message in hand must be done by then.
        let mut stop_by: Option<Instant> = None;
        loop {
            // The earliest deadline, and what it is.
            let (mut deadline, mut cut) = match self.data_started {
                Some(started) => (started + data_limit, Cut::Data),
                None => (last_progress + idle, Cut::Idle),
            };
            for (at, why) in [(Some(ends), Cut::Lifetime), (stop_by, Cut::Shutdown)] {
                if let Some(at) = at.filter(|at| *at < deadline) {
                    (deadline, cut) = (at, why);
                }
            }
            let read = tokio::select! {
                r = tokio::time::timeout_at(deadline, socket.read(&mut buf)) => r,
                _ = crate::daemon::stopped(&mut shutdown), if stop_by.is_none() => {
                    if self.between_messages(&state) {
                        return farewell(&mut socket, Cut::Shutdown).await;
                    }
                    stop_by = Some(Instant::now() + SHUTDOWN_GRACE);
                    continue;
                }
            };
            let n = match read {
                Err(_) => {
                    tracing::info!(?cut, "session closed");
                    return farewell(&mut socket, cut).await;
                }
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(e),
            };
            let mut bytes = buf[..n].iter();
            self.ingest(&mut state, &mut bytes).await;
            if !self.out.is_empty() {
                last_progress = Instant::now();
                // A client that sends but never reads must not hold the
                // slot, nor past the session's end.
                let limit = idle
                    .min(ends.saturating_duration_since(last_progress))
                    .max(FAREWELL_WRITE);
                write(&mut socket, &std::mem::take(&mut self.out), limit).await?;
            }
            if self.quit {
                return Ok(());
            }
            if stop_by.is_some() && self.between_messages(&state) {
                return farewell(&mut socket, Cut::Shutdown).await;
            }
        }
    }

    /// Feeds received bytes through the state machine; replies collect in `out`.
    async fn ingest(&mut self, state: &mut State, bytes: &mut std::slice::Iter<'_, u8>) {
        loop {
            match state {
                State::Command(receiver) => {
                    let request = match receiver.ingest(bytes) {
                        Ok(r) => r.into_owned(),
                        Err(ProtoError::NeedsMoreData { .. }) => return,
                        Err(e) => {
                            self.protocol_error(e);
                            if self.quit {
                                return;
                            }
                            continue;
                        }
                    };
                    // A greeting again, or a command we refused (a second
                    // MAIL, RCPT to a stranger, DATA without recipients)
                    // delivers nothing either: it counts as junk too.
                    let greeting_again = self.greeted
                        && matches!(
                            request,
                            Request::Helo { .. } | Request::Ehlo { .. } | Request::Lhlo { .. }
                        );
                    self.refused = false;
                    self.junk_counted = false;
                    let next = self.command(request);
                    if (greeting_again || self.refused) && !self.junk_counted && !self.quit {
                        self.junk_command();
                    }
                    if let Some(next) = next {
                        *state = next;
                    }
                    if self.quit {
                        return;
                    }
                }
                State::Data(receiver) => {
                    let done = receiver.ingest(bytes, &mut self.message);
                    let too_big = self.message.len() > self.max_bytes();
                    if too_big && !done {
                        // Stop buffering; read on to the terminator, then refuse.
                        self.message = Vec::new();
                        *state = State::Discard(DummyDataReceiver::new_data(receiver), false);
                        continue;
                    }
                    if !done {
                        return;
                    }
                    if too_big {
                        self.refuse_too_big();
                    } else {
                        self.deliver().await;
                    }
                    *state = State::Command(RequestReceiver::default());
                }
                State::Bdat(receiver) => {
                    let done = receiver.ingest(bytes, &mut self.message);
                    if self.message.len() > self.max_bytes() {
                        // The rest of this chunk is discarded; later chunks get 552 too.
                        self.message = Vec::new();
                        *state = State::Discard(DummyDataReceiver::new_bdat(0), true);
                        self.reply("552 5.3.4 Message too big");
                        self.reset();
                        continue;
                    }
                    if !done {
                        return;
                    }
                    if receiver.is_last {
                        self.deliver().await;
                    } else {
                        let n = self.message.len();
                        self.reply(&format!("250 2.0.0 {n} octets received"));
                    }
                    *state = State::Command(RequestReceiver::default());
                }
                State::Discard(receiver, bdat) => {
                    if !receiver.ingest(bytes) {
                        return;
                    }
                    if !*bdat {
                        self.refuse_too_big();
                    }
                    *state = State::Command(RequestReceiver::default());
                }
            }
        }
    }

    fn refuse_too_big(&mut self) {
        Metrics::inc(&self.ctx.metrics.messages_rejected);
        let limit = self.max_bytes();
        self.reply(&format!(
            "552 5.3.4 Message exceeds the size limit of {limit} bytes"
        ));
        self.reset();
    }

    fn protocol_error(&mut self, e: ProtoError) {
        self.errors += 1;
        let line = match e {
            ProtoError::UnknownCommand => "500 5.5.1 Command not recognised".to_string(),
            ProtoError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax".to_string(),
            ProtoError::InvalidRecipientAddress => {
                "501 5.1.3 Bad recipient address syntax".to_string()
            }
            ProtoError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
            ProtoError::InvalidParameter { param } => {
                format!("501 5.5.4 Invalid parameter {param}")
            }
            ProtoError::UnsupportedParameter { param } => {
                format!(
                    "555 5.5.4 Unsupported parameter {}",
                    address::header_safe(&param)
                )
            }
            ProtoError::ResponseTooLong => "500 5.5.6 Line too long".to_string(),
            _ => "500 5.5.2 Syntax error".to_string(),
        };
        self.reply(&line);
        if self.errors >= MAX_ERRORS {
            self.reply("421 4.7.0 Too many errors, closing connection");
            self.quit = true;
        }
    }

    /// Handles one command; returns the next state when it changes.
    fn command(&mut self, request: Request<String>) -> Option<State> {
        tracing::trace!(command = request.name(), "command");
        match request {
            Request::Ehlo { .. } if self.lmtp => {
                self.reply("500 5.5.1 This is an LMTP server: use LHLO")
            }
            Request::Lhlo { .. } if !self.lmtp => {
                self.reply("500 5.5.1 This is an SMTP server: use EHLO")
            }
            Request::Helo { .. } if self.lmtp => {
                self.reply("500 5.5.1 This is an LMTP server: use LHLO")
            }
            Request::Ehlo { .. } | Request::Lhlo { .. } => {
                self.reset();
                self.greeted = true;
                let max = self.max_bytes();
                let domain = self.ctx.config.domain.clone();
                self.reply(&format!("250-{domain}"));
                self.reply("250-PIPELINING");
                self.reply(&format!("250-SIZE {max}"));
                self.reply("250-8BITMIME");
                self.reply("250-SMTPUTF8");
                self.reply("250-CHUNKING");
                self.reply("250 ENHANCEDSTATUSCODES");
            }
            Request::Helo { .. } => {
                self.reset();
                self.greeted = true;
                let domain = self.ctx.config.domain.clone();
                self.reply(&format!("250 {domain}"));
            }
            Request::Mail { from } => {
                if !self.greeted {
                    self.reply("503 5.5.1 Say hello first");
                } else if self.reverse_path.is_some() {
                    self.reply("503 5.5.1 Sender already given");
                } else if from.size > self.max_bytes() {
                    let max = self.max_bytes();
                    self.reply(&format!(
                        "552 5.3.4 Message exceeds the size limit of {max} bytes"
                    ));
                } else {
                    self.reverse_path = Some(from.address);
                    self.reply("250 2.1.0 Sender OK");
                }
            }
            Request::Rcpt { to } => {
                if self.reverse_path.is_none() {
                    self.reply("503 5.5.1 Need MAIL first");
                } else if self.recipients.len() >= MAX_RECIPIENTS {
                    self.reply("452 4.5.3 Too many recipients");
                } else if lists::parse_recipient(
                    &to.address,
                    &self.ctx.config.domain,
                    &self.ctx.lists,
                )
                .is_none()
                {
                    Metrics::inc(&self.ctx.metrics.messages_rejected);
                    tracing::info!("recipient refused: not a list address");
                    self.reply("550 5.1.1 No such list address here");
                } else if self
                    .recipients
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&to.address))
                {
                    // The same address twice would run its handler twice.
                    self.reply("250 2.1.5 Recipient OK (duplicate ignored)");
                } else {
                    self.recipients.push(to.address);
                    self.reply("250 2.1.5 Recipient OK");
                }
            }
            Request::Data => {
                if self.reverse_path.is_none() {
                    self.reply("503 5.5.1 Need MAIL first");
                } else if self.recipients.is_empty() {
                    self.reply("554 5.5.1 No valid recipients");
                } else {
                    self.message = Vec::new();
                    self.data_started = Some(Instant::now());
                    self.reply("354 Start mail input; end with <CRLF>.<CRLF>");
                    return Some(State::Data(DataReceiver::new()));
                }
            }
            Request::Bdat {
                chunk_size,
                is_last,
            } => {
                if self.reverse_path.is_none() || self.recipients.is_empty() {
                    self.reply("503 5.5.1 Need MAIL and RCPT first");
                    return Some(State::Discard(
                        DummyDataReceiver::new_bdat(chunk_size),
                        true,
                    ));
                }
                if self
                    .message
                    .len()
                    .checked_add(chunk_size)
                    .is_none_or(|total| total > self.max_bytes())
                {
                    let max = self.max_bytes();
                    self.reply(&format!(
                        "552 5.3.4 Message exceeds the size limit of {max} bytes"
                    ));
                    self.reset();
                    return Some(State::Discard(
                        DummyDataReceiver::new_bdat(chunk_size),
                        true,
                    ));
                }
                self.data_started.get_or_insert_with(Instant::now);
                return Some(State::Bdat(BdatReceiver::new(chunk_size, is_last)));
            }
            Request::Rset => {
                if !self.junk_command() {
                    self.reset();
                    self.reply("250 2.0.0 OK");
                }
            }
            Request::Noop { .. } => {
                if !self.junk_command() {
                    self.reply("250 2.0.0 OK")
                }
            }
            Request::Quit => {
                self.reply("221 2.0.0 Bye");
                self.quit = true;
            }
            _ if self.junk_command() => {}
            Request::Vrfy { .. } => self.reply("252 2.5.0 Cannot verify, send mail to find out"),
            Request::Help { .. } => {
                self.reply("214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321")
            }
            Request::StartTls => {
                self.reply("502 5.5.1 STARTTLS not offered: put an MTA in front for TLS")
            }
            Request::Auth { .. } => self.reply("502 5.5.1 AUTH not offered"),
            _ => {
                self.errors += 1;
                self.reply("502 5.5.1 Command not implemented");
                if self.errors >= MAX_ERRORS {
                    self.reply("421 4.7.0 Too many errors, closing connection");
                    self.quit = true;
                }
            }
        }
        None
    }

    /// Hands the finished message to the commands layer, per recipient.
    async fn deliver(&mut self) {
        let message = std::mem::take(&mut self.message);
        let reverse_path = self.reverse_path.clone().unwrap_or_default();
        let recipients = std::mem::take(&mut self.recipients);
        // A message is progress: the junk count starts again (as Postfix's).
        self.junk = 0;
        let mut replies = Vec::with_capacity(recipients.len());
        for rcpt in &recipients {
            let result =
                crate::mail::router::handle_inbound(&self.ctx, rcpt, Some(&reverse_path), &message)
                    .await;
            match &result {
                Ok(handled) => tracing::info!(outcome = handled.what, "message accepted"),
                Err(e) => tracing::warn!(error = %e, "message not accepted"),
            }
            replies.push(result);
        }
        if self.lmtp {
            // RFC 2033: one reply per accepted recipient, in order.
            for r in &replies {
                let line = reply_for(r);
                self.reply(&line);
            }
        } else {
            // One reply for all: a temporary failure anywhere makes the client
            // retry, and the handlers are safe to run again.
            let worst = replies
                .iter()
                .find(|r| matches!(r, Err(Refusal::Temporary(_))))
                .or_else(|| replies.iter().find(|r| r.is_err()))
                .unwrap_or(&replies[0]);
            let line = reply_for(worst);
            self.reply(&line);
        }
        self.reset();
    }
}

fn reply_for(result: &Result<crate::subscription::answer::Handled, Refusal>) -> String {
    match result {
        Ok(_) => "250 2.0.0 Message accepted".into(),
        Err(Refusal::Unparseable) => "554 5.6.0 Message could not be parsed".into(),
        Err(Refusal::UnknownRecipient) => "550 5.1.1 No such list address here".into(),
        // RFC 3463 X.3.1: the mail system is full; the sender keeps the mail.
        Err(Refusal::Temporary(e)) if is_disk_full(e) => {
            "451 4.3.1 Mail system full, try again later".into()
        }
        Err(Refusal::Temporary(_)) => "451 4.3.0 Temporary failure, try again later".into(),
    }
}

/// Whether a temporary failure is the store's full disk (typed, not read
/// from the message).
fn is_disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<crate::store::StoreError>()
            .is_some_and(|s| s.is_disk_full())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_ip(max: usize, exempt: &[&str]) -> Arc<PerIp> {
        let exempt = exempt
            .iter()
            .map(|n| Network::try_from(n.to_string()).unwrap())
            .collect();
        Arc::new(PerIp::new(max, exempt))
    }

    #[test]
    fn one_address_gets_its_share_and_gets_it_back() {
        let p = per_ip(2, &[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = p.admit(ip).unwrap();
        let _b = p.admit(ip).unwrap();
        assert!(p.admit(ip).is_none());
        assert!(p.admit("192.0.2.2".parse().unwrap()).is_some());
        drop(a);
        assert!(p.admit(ip).is_some());
    }

    #[test]
    fn exempt_networks_are_not_counted() {
        let p = per_ip(1, &["127.0.0.0/8", "::1/128"]);
        let held: Vec<_> = (0..10)
            .map(|_| p.admit("127.0.0.1".parse().unwrap()).unwrap())
            .collect();
        assert!(p.admit("::1".parse().unwrap()).is_some());
        assert!(p.admit("::ffff:127.0.0.5".parse().unwrap()).is_some());
        assert!(p.open.lock().unwrap().is_empty());
        drop(held);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let p = per_ip(1, &[]);
        let _a = p.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(p.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_none());
        assert!(p.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
        // An IPv4-mapped address is the IPv4 client.
        let _v4 = p.admit("192.0.2.9".parse().unwrap()).unwrap();
        assert!(p.admit("::ffff:192.0.2.9".parse().unwrap()).is_none());
    }
}
