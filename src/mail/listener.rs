//! The inbound listener: SMTP or LMTP on a tokio accept loop, with
//! smtp-proto parsing the client's pipelined commands.
//!
//! It accepts mail only for list addresses (550 for anything else: never an
//! open relay), caps connections, message size and idle time, and answers
//! 250 only after the commands layer has written and synced what the message
//! changed. It knows nothing of subscriptions itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_proto::request::receiver::{
    BdatReceiver, DataReceiver, DummyDataReceiver, RequestReceiver,
};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::address;
use crate::daemon::config::Protocol;
use crate::daemon::context::{Context, Metrics};
use crate::daemon::lists;
use crate::mail::router::Refusal;

/// Recipients per transaction (RFC 5321 §4.5.3.1.8 asks servers to take at least 100).
const MAX_RECIPIENTS: usize = 100;
/// Protocol errors a client may make before we hang up.
const MAX_ERRORS: u32 = 10;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Time for one DATA or BDAT phase (RFC 5321 §4.5.3.2.6: 10 minutes).
const DATA_TIMEOUT: Duration = Duration::from_secs(600);
/// How long shutdown waits for sessions that are mid-message.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown` turns true, then waits for the
/// sessions in flight to finish their current message.
pub async fn serve(ctx: Arc<Context>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(ctx.config.inbound.max_connections));
    let mut sessions = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
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
        sessions.spawn(async move {
            let mut socket = socket;
            let Ok(_permit) = permit else {
                tracing::warn!(%peer, "connection refused: too many connections");
                let _ = socket
                    .write_all(b"421 4.7.0 Too many connections, try again later\r\n")
                    .await;
                return;
            };
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
    let drain = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!("sessions still open at shutdown were cut");
    }
}

/// Writes with a deadline.
async fn write(socket: &mut TcpStream, bytes: &[u8], limit: Duration) -> std::io::Result<()> {
    tokio::time::timeout(limit, socket.write_all(bytes))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client does not read"))?
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
    errors: u32,
    out: Vec<u8>,
    quit: bool,
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
            errors: 0,
            out: Vec::new(),
            quit: false,
        }
    }

    fn reply(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn reset(&mut self) {
        self.reverse_path = None;
        self.recipients.clear();
        self.message = Vec::new();
    }

    fn max_bytes(&self) -> usize {
        self.ctx.config.inbound.max_message_bytes
    }

    async fn run(
        mut self,
        mut socket: TcpStream,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        // The last reply of a message is one small write; without NODELAY it
        // waits for the client's delayed ACK (~40 ms a message on loopback).
        socket.set_nodelay(true)?;
        let idle = Duration::from_secs(self.ctx.config.inbound.idle_timeout_secs);
        let banner = if self.lmtp { "LMTP" } else { "ESMTP" };
        let greeting = format!("220 {} utskick {banner} ready", self.ctx.config.domain);
        self.reply(&greeting);
        socket.write_all(&std::mem::take(&mut self.out)).await?;
        tracing::debug!("session opened");
        let mut state = State::Command(RequestReceiver::default());
        let mut buf = vec![0u8; READ_CHUNK];
        // Time runs from the last reply, not the last byte: a client that
        // trickles a byte a minute must still finish its command in time.
        let mut last_progress = Instant::now();
        loop {
            let allowed = match state {
                State::Command(_) => idle,
                _ => DATA_TIMEOUT,
            };
            let left = allowed.saturating_sub(last_progress.elapsed());
            let read = tokio::select! {
                r = tokio::time::timeout(left, socket.read(&mut buf)) => r,
                _ = shutdown.changed(), if matches!(state, State::Command(_)) && self.message.is_empty() => {
                    write(&mut socket, b"421 4.3.2 Service shutting down, try again later\r\n", idle).await?;
                    return Ok(());
                }
            };
            let n = match read {
                Err(_) => {
                    write(
                        &mut socket,
                        b"421 4.4.2 Timeout, closing connection\r\n",
                        idle,
                    )
                    .await?;
                    return Ok(());
                }
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(e),
            };
            let mut bytes = buf[..n].iter();
            self.ingest(&mut state, &mut bytes).await;
            if !self.out.is_empty() {
                last_progress = Instant::now();
                // A client that sends but never reads must not hold the slot.
                write(&mut socket, &std::mem::take(&mut self.out), idle).await?;
            }
            if self.quit {
                return Ok(());
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
                    if let Some(next) = self.command(request) {
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
                return Some(State::Bdat(BdatReceiver::new(chunk_size, is_last)));
            }
            Request::Rset => {
                self.reset();
                self.reply("250 2.0.0 OK");
            }
            Request::Noop { .. } => self.reply("250 2.0.0 OK"),
            Request::Quit => {
                self.reply("221 2.0.0 Bye");
                self.quit = true;
            }
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
            }
        }
        None
    }

    /// Hands the finished message to the commands layer, per recipient.
    async fn deliver(&mut self) {
        let message = std::mem::take(&mut self.message);
        let reverse_path = self.reverse_path.clone().unwrap_or_default();
        let recipients = std::mem::take(&mut self.recipients);
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
