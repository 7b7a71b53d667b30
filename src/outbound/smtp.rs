//! Our SMTP client for relay sessions: connect (plain, STARTTLS or
//! implicit TLS), EHLO, AUTH PLAIN or LOGIN, then one message at a time
//! with as few writes and round trips as the relay allows: with PIPELINING
//! (RFC 2920) MAIL, RCPT and DATA go in one write and the dot-stuffed
//! message in the next, and the next copy's MAIL, RCPT and DATA, when the
//! caller has it ready, ride behind the final "." in that same write
//! ([`Session::send_ahead`]: one write and one read a copy); with
//! CHUNKING (RFC 3030) MAIL, RCPT and `BDAT n
//! LAST` with the message's own bytes go in one (a relay that offers
//! CHUNKING and then refuses BDAT gets the copy again with DATA, and DATA
//! from then on, in later sessions too; if it lost step, reading the
//! chunk as commands, the copy fails transient); otherwise lock-step.
//! Replies are parsed by smtp-proto.
//!
//! It decides what a reply means for one message (permanent for 5xx) and
//! whether the session can carry the next one; when to replace a session
//! (idle, hung up) is `outbound`'s (mod.rs) business.

use std::fmt::Write as _;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use smtp_proto::{EhloResponse, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::daemon::config::Tls;

mod wire;
use wire::{expect, silent, Stream, Wire};

/// A write buffer that grew past this for a large message is shrunk
/// afterwards, so a lane does not keep its biggest message's size for ever.
const KEEP_OUT_BUF: usize = 256 * 1024;
/// Lines of an EHLO reply we read capabilities from; the rest are ignored.
const MAX_EHLO_LINES: usize = 64;

/// A failed delivery, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
    /// The refusal is the recipient's (their address, their mailbox), so
    /// a permanent one counts on their bounce score. False for a refusal
    /// of our own envelope sender: a relay that wants AUTH or will not
    /// relay for our domain says nothing about anyone on the list.
    pub bounce: bool,
}

impl SendError {
    fn transient(message: impl Into<String>) -> SendError {
        SendError {
            permanent: false,
            message: message.into(),
            bounce: false,
        }
    }
}

/// The relay's user name and password (`outbound.username`, the password
/// from `outbound.password_env`).
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login {{ user: {:?}, password: <hidden> }}", self.user)
    }
}

/// The TLS client: Mozilla's roots (webpki-roots) through rustls with the
/// `ring` provider, TLS 1.2 and 1.3, and the relay's name to verify.
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub config: Arc<rustls::ClientConfig>,
    pub name: ServerName<'static>,
}

impl TlsClient {
    /// Fails for a host that is neither a DNS name nor an IP address.
    pub fn new(host: &str) -> anyhow::Result<TlsClient> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| anyhow::anyhow!("{host:?} cannot be a TLS server name: {e}"))?;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }
}

/// How to reach and log in to the relay.
#[derive(Debug)]
pub struct RelaySettings {
    /// For the connect and for every reply and write: a relay that accepts
    /// and then says nothing must not hold a lane (or the system-mail
    /// queue) for ever.
    pub timeout: Duration,
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    /// Made once at start-up, so bad TLS settings show there; None for
    /// `tls = "none"`.
    pub tls_client: Option<TlsClient>,
    pub credentials: Option<Login>,
    /// The name we give in EHLO.
    pub hello: String,
    /// Set once this relay refused BDAT after offering CHUNKING: later
    /// sessions to it use DATA from the start.
    pub bdat_refused: Arc<AtomicBool>,
}

/// Why an exchange stopped.
enum Fault {
    /// The relay said no; the session may go on (unless it said 421).
    Refused(Response<String>),
    /// The session is unusable: silence, hang-up, garbage, I/O error.
    Broken(String),
}

impl Fault {
    fn error(&self) -> SendError {
        match self {
            Fault::Refused(r) => refusal(r),
            Fault::Broken(m) => SendError::transient(m.clone()),
        }
    }
}

/// A negative reply as an error that carries the relay's words (bounce
/// reasons read them): "permanent error (550): 5.1.1 mailbox gone".
fn refusal(r: &Response<String>) -> SendError {
    let permanent = (500..600).contains(&r.code);
    let kind = match r.code {
        400..=499 => "transient error",
        500..=599 => "permanent error",
        _ => "unexpected reply",
    };
    let mut message = format!("{kind} ({}): ", r.code);
    if r.esc[0] != 0 {
        let _ = write!(message, "{}.{}.{} ", r.esc[0], r.esc[1], r.esc[2]);
    }
    let text: String = r
        .message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    message.push_str(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    SendError {
        permanent,
        message: message.trim_end().to_string(),
        // 500, 502, 503 and 504 refuse the command (not recognised, not
        // implemented, out of sequence): never the mailbox. A relay that
        // advertises CHUNKING and then refuses BDAT must not bounce the
        // list. (501 stays a bounce: at RCPT it is a bad address.)
        bounce: permanent && !matches!(r.code, 500 | 502 | 503 | 504),
    }
}

/// What the relay offers, from its EHLO reply (smtp-proto's reading).
fn capabilities(reply: &Response<String>) -> EhloResponse<String> {
    // smtp-proto reads capabilities from the reply's wire form; ours is
    // already parsed into lines, so it is put back together.
    let lines: Vec<&str> = reply.message.split('\n').take(MAX_EHLO_LINES).collect();
    let mut wire = String::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        let _ = write!(wire, "250{sep}{}\r\n", line.trim_end_matches('\r'));
    }
    EhloResponse::parse(&mut wire.as_bytes().iter()).unwrap_or_default()
}

/// Appends `raw` dot-stuffed, with the terminator: a "." that starts a
/// line is doubled (after any LF, so a relay that takes a bare LF for a
/// line end reads no early end), found with memchr, copied in runs. The
/// message is ended with CRLF before the final ".".
pub fn stuff_into(out: &mut Vec<u8>, raw: &[u8]) {
    out.reserve(raw.len() + raw.len() / 512 + 8);
    if raw.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut from = 0;
    for at in memchr::memmem::find_iter(raw, b"\n.") {
        out.extend_from_slice(&raw[from..=at]);
        out.push(b'.');
        from = at + 1;
    }
    out.extend_from_slice(&raw[from..]);
    if !raw.is_empty() && !raw.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// The outcome of a failed message: the error, and whether the session
/// can carry the next one.
pub struct Failed {
    pub error: SendError,
    pub keep: bool,
}

impl From<Fault> for Failed {
    fn from(f: Fault) -> Failed {
        let keep = matches!(&f, Fault::Refused(r) if r.code != 421);
        Failed {
            error: f.error(),
            keep,
        }
    }
}

/// What became of the next copy's envelope given to
/// [`Session::send_ahead`].
pub enum Ahead {
    /// Not written, or written on a session that broke before the relay
    /// answered it: the next copy goes on its own, as usual.
    NotSent,
    /// The relay took it and waits for the message (354): the session's
    /// next send must be that copy.
    Open,
    /// The envelope was refused or lost: that copy's outcome.
    Failed(Failed),
}

/// One session with the relay.
pub struct Session {
    wire: Wire,
    /// The relay's EHLO capabilities (`smtp_proto::EXT_*`).
    caps: u32,
    /// Commands and messages are put together here and written at once.
    out: Vec<u8>,
    /// A transaction's command ends in `out` and its replies, kept from
    /// message to message.
    ends: Vec<usize>,
    replies: Vec<Response<String>>,
    /// When it last carried a message.
    pub used: Instant,
    /// Its socket, to look for a hang-up between messages; None under
    /// TLS, where a waiting byte may be a record TLS has not read yet.
    pub fd: Option<RawFd>,
    /// The last transaction failed on a refusal that is not about the
    /// recipient: of MAIL FROM, or of DATA after every RCPT was taken.
    not_recipient: bool,
    /// `RelaySettings::bdat_refused`.
    bdat_refused: Arc<AtomicBool>,
    /// The copy (envelope, length) whose envelope went ahead and was
    /// taken: the relay said 354 and waits for its bytes.
    open: Option<(Envelope, usize)>,
}

impl Session {
    /// Connects, reads the greeting, says EHLO, starts TLS and logs in as
    /// configured. Every failure here is transient: the relay's state or
    /// our configuration, never the recipient's.
    pub async fn open(s: &RelaySettings) -> Result<Session, SendError> {
        Self::open_inner(s).await.map_err(|f| match f {
            Fault::Refused(r) => SendError::transient(format!(
                "the relay refused the session: {}",
                refusal(&r).message
            )),
            Fault::Broken(m) => SendError::transient(m),
        })
    }

    async fn open_inner(s: &RelaySettings) -> Result<Session, Fault> {
        let unreachable = |e: String| {
            Fault::Broken(format!(
                "cannot connect to the relay {}:{}: {e}",
                s.host, s.port
            ))
        };
        let tcp = tokio::time::timeout(s.timeout, TcpStream::connect((s.host.as_str(), s.port)))
            .await
            .map_err(|_| unreachable(silent(s.timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
        // Our writes are whole commands or messages: Nagle would only hold
        // the last segment of one until the relay's delayed ACK.
        let _ = tcp.set_nodelay(true);
        let fd = (s.tls == Tls::None).then(|| tcp.as_raw_fd());
        let stream = if s.tls == Tls::Tls {
            Stream::Tls(Box::new(handshake(s, tcp).await?))
        } else {
            Stream::Plain(tcp)
        };
        let mut wire = Wire::new(stream, s.timeout);
        expect(wire.reply().await?, 2)?;
        let mut caps = ehlo(&mut wire, &s.hello).await?;
        if s.tls == Tls::Starttls {
            if caps.capabilities & smtp_proto::EXT_START_TLS == 0 {
                return Err(Fault::Broken(
                    "STARTTLS is not supported on this server".into(),
                ));
            }
            wire.command(b"STARTTLS\r\n", 2).await?;
            // Anything the relay sent after its 220 came before TLS and
            // could be an attacker's (CVE-2011-0411's injection).
            if wire.start < wire.end {
                return Err(Fault::Broken(
                    "the relay sent data before the TLS handshake".into(),
                ));
            }
            let Stream::Plain(tcp) = wire.stream else {
                unreachable!("STARTTLS on a plain stream only")
            };
            wire = Wire::new(Stream::Tls(Box::new(handshake(s, tcp).await?)), s.timeout);
            caps = ehlo(&mut wire, &s.hello).await?;
        }
        if let Some(login) = &s.credentials {
            auth(&mut wire, &caps, login).await?;
        }
        let mut caps = caps.capabilities;
        if s.bdat_refused.load(Ordering::Relaxed) {
            caps &= !smtp_proto::EXT_CHUNKING;
        }
        Ok(Session {
            wire,
            caps,
            bdat_refused: s.bdat_refused.clone(),
            out: Vec::new(),
            ends: Vec::new(),
            replies: Vec::new(),
            used: Instant::now(),
            fd,
            not_recipient: false,
            open: None,
        })
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self.wire.stream, Stream::Tls(_))
    }

    /// True if the relay sent bytes nobody asked for (a 421 before it hung
    /// up, read along with an earlier reply): the session is out of step.
    pub fn has_unread(&self) -> bool {
        self.wire.start < self.wire.end
    }

    /// True if the relay takes a next copy's envelope behind this copy's
    /// final "." ([`Session::send_ahead`]): it offers PIPELINING, and
    /// copies go with DATA (with CHUNKING a copy already goes in one write).
    pub fn sends_ahead(&self) -> bool {
        self.caps & smtp_proto::EXT_PIPELINING != 0 && self.caps & smtp_proto::EXT_CHUNKING == 0
    }

    /// True while the relay holds an open transaction (its 354 came) for a
    /// copy whose envelope went ahead: only that copy's bytes may follow,
    /// and QUIT would be read as message text.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// True if the open transaction is this copy's.
    pub fn holds(&self, envelope: &Envelope, raw: &[u8]) -> bool {
        self.open
            .as_ref()
            .is_some_and(|(e, len)| e == envelope && *len == raw.len())
    }

    /// Sends one message. On a refusal the session is reset (RSET) and
    /// kept where SMTP allows; after a 421, silence or a hang-up it is not.
    pub async fn send(&mut self, envelope: &Envelope, raw: &[u8]) -> Result<(), Failed> {
        self.send_ahead(envelope, raw, None).await.0
    }

    /// Sends one message as [`Session::send`] does, and where the relay
    /// allows ([`Session::sends_ahead`]) writes `next`'s envelope (MAIL,
    /// RCPT, DATA) behind its final "." in the same write, as RFC 2920's
    /// second example does: the relay answers the "." and the envelope
    /// together, one round trip a copy. The reply to the "." decides this
    /// copy; the envelope's replies decide `next` on their own. If the
    /// relay took the envelope (`Ahead::Open`), the session's next send
    /// must be `next` (same envelope, same bytes), and writes only its
    /// body: once the relay said 354 only hanging up ends the transaction
    /// without a message. `next` is rendered already for that reason: a
    /// copy that cannot be made is never announced.
    pub async fn send_ahead(
        &mut self,
        envelope: &Envelope,
        raw: &[u8],
        next: Option<(&Envelope, &[u8])>,
    ) -> (Result<(), Failed>, Ahead) {
        self.not_recipient = false;
        // The rcpt count of `next`'s envelope, once it is written.
        let mut written = None;
        let result = match self.open.take() {
            Some((open, len)) if open == *envelope && len == raw.len() => {
                self.message(raw, false, next, &mut written).await
            }
            Some(other) => {
                // Another copy's transaction is open: nothing but hanging
                // up ends it without a message (`Lane` never gets here).
                // It stays marked open, so `quit` hangs up too.
                self.open = Some(other);
                return (
                    Err(Failed {
                        error: SendError::transient("the session holds another copy's transaction"),
                        keep: false,
                    }),
                    Ahead::NotSent,
                );
            }
            None => self.transaction(envelope, raw, next, &mut written).await,
        };
        let result = match result {
            Err(Step::BdatRefused(f)) => {
                // The relay offered CHUNKING but does not take BDAT: the
                // rest of this session uses DATA, and this copy goes again
                // with it once RSET has ended the refused transaction in
                // step.
                self.caps &= !smtp_proto::EXT_CHUNKING;
                self.bdat_refused.store(true, Ordering::Relaxed);
                match self.wire.command(b"RSET\r\n", 2).await {
                    Ok(_) if !self.has_unread() => {
                        self.not_recipient = false;
                        self.transaction(envelope, raw, next, &mut written).await
                    }
                    // Out of step (it read the chunk as commands): the copy
                    // was not refused, it goes again, with DATA.
                    _ => Err(Step::HangUp(Fault::Broken(format!(
                        "the relay refused BDAT ({}) and lost step; the copy goes again with DATA",
                        f.error().message
                    )))),
                }
            }
            r => r,
        };
        let this = self.finish(result).await;
        let (Some(rcpts), Some((next_envelope, next_raw))) = (written, next) else {
            return (this, Ahead::NotSent);
        };
        if let Err(Failed { keep: false, .. }) = &this {
            // The session is gone (a 421, a hang-up, silence) before the
            // relay answered the envelope: nothing of the next copy was
            // refused or can have been delivered (no byte of it was sent),
            // so it goes on its own, on a fresh session, as it would have
            // without riding here.
            return (this, Ahead::NotSent);
        }
        // The relay answered the "." and stays: the envelope's replies.
        self.not_recipient = false;
        let mut step = self.pipelined_replies(rcpts + 2).await;
        if step.is_ok() {
            step = self.judge_envelope(rcpts, false, false).map(drop);
        }
        if step.is_ok() && self.has_unread() {
            // More than the replies we asked for: out of step, and the
            // relay now waits for a message.
            step = Err(Step::HangUp(Fault::Broken(
                "the relay sent replies nobody asked for".into(),
            )));
        }
        let ahead = match step {
            Ok(()) => {
                self.open = Some((next_envelope.clone(), next_raw.len()));
                Ahead::Open
            }
            Err(step) => match self.finish(Err(step)).await {
                Err(failed) => Ahead::Failed(failed),
                Ok(()) => unreachable!("finish keeps a failure"),
            },
        };
        (this, ahead)
    }

    /// What a transaction's result means for the copy and the session:
    /// RSET after a refusal inside it, and a refusal that is not about
    /// the recipient counts on nobody's bounce score.
    async fn finish(&mut self, result: Result<(), Step>) -> Result<(), Failed> {
        if self.out.capacity() > KEEP_OUT_BUF {
            self.out = Vec::new();
        }
        self.used = Instant::now();
        let failed = match result {
            Ok(()) => return Ok(()),
            Err(Step::Unsendable(message)) => Err(Failed {
                error: SendError::transient(message),
                keep: true,
            }),
            Err(Step::Ended(f)) => Err(f.into()),
            Err(Step::Reset(f) | Step::BdatRefused(f)) => {
                let mut failed = Failed::from(f);
                if failed.keep && self.wire.command(b"RSET\r\n", 2).await.is_err() {
                    failed.keep = false;
                }
                Err(failed)
            }
            Err(Step::HangUp(f)) => Err(Failed {
                error: f.error(),
                keep: false,
            }),
        };
        failed.map_err(|mut f| {
            if self.not_recipient {
                f.error.bounce = false;
            }
            f
        })
    }

    /// MAIL FROM's parameters for this envelope and message: SMTPUTF8 for
    /// non-ASCII addresses, BODY=8BITMIME for a non-ASCII message (as
    /// lettre did), neither to a relay that does not offer it.
    fn params(&self, envelope: &Envelope, raw: &[u8]) -> Result<String, &'static str> {
        let from: &str = envelope.from().map_or("", |a| a.as_ref());
        let has = |ext: u32| self.caps & ext != 0;
        let mut params = String::new();
        if !from.is_ascii()
            || envelope
                .to()
                .iter()
                .any(|a| !AsRef::<str>::as_ref(a).is_ascii())
        {
            if !has(smtp_proto::EXT_SMTP_UTF8) {
                return Err(
                    "the envelope has non-ASCII addresses but the relay does not offer SMTPUTF8",
                );
            }
            params.push_str(" SMTPUTF8");
        }
        if !raw.is_ascii() {
            if !has(smtp_proto::EXT_8BIT_MIME) {
                return Err(
                    "the message has non-ASCII bytes but the relay does not offer 8BITMIME",
                );
            }
            params.push_str(" BODY=8BITMIME");
        }
        Ok(params)
    }

    async fn transaction(
        &mut self,
        envelope: &Envelope,
        raw: &[u8],
        next: Option<(&Envelope, &[u8])>,
        written: &mut Option<usize>,
    ) -> Result<(), Step> {
        let to = envelope.to();
        let has = |ext: u32| self.caps & ext != 0;
        let (pipelining, chunking) = (
            has(smtp_proto::EXT_PIPELINING),
            has(smtp_proto::EXT_CHUNKING),
        );
        let params = self.params(envelope, raw).map_err(Step::Unsendable)?;

        // The envelope: MAIL, each RCPT, then DATA; or, with CHUNKING and
        // one recipient, the whole message as `BDAT n LAST`. Each command's
        // end offset in `out`, for lock-step.
        self.out.clear();
        self.ends.clear();
        put_envelope(&mut self.out, &mut self.ends, envelope, &params);
        let bdat_now = chunking && to.len() == 1;
        if bdat_now {
            bdat_head(&mut self.out, raw);
            if !pipelining {
                // Lock-step writes `out` a command at a time.
                self.out.extend_from_slice(raw);
            }
        } else if !chunking {
            self.out.extend_from_slice(b"DATA\r\n");
        }
        if bdat_now || !chunking {
            self.ends.push(self.out.len());
        }

        if pipelining {
            // With BDAT the message follows its command from its own
            // buffer, in the same vectored write.
            let body: &[u8] = if bdat_now { raw } else { b"" };
            self.wire
                .write_parts([&self.out, body])
                .await
                .map_err(Step::Ended)?;
            self.pipelined_replies(self.ends.len()).await?;
        } else {
            self.replies.clear();
            let mut from = 0;
            for (i, &end) in self.ends.iter().enumerate() {
                self.wire
                    .write(&self.out[from..end])
                    .await
                    .map_err(Step::Ended)?;
                from = end;
                let r = self.wire.reply().await.map_err(Step::Ended)?;
                let want = if i == to.len() + 1 && !chunking { 3 } else { 2 };
                let stop = r.code / 100 != want;
                self.replies.push(r);
                if stop {
                    break;
                }
            }
        }
        if self.judge_envelope(to.len(), chunking, bdat_now)? {
            return Ok(());
        }
        self.message(raw, chunking, next, written).await
    }

    /// Reads the replies to `count` pipelined commands into `replies`;
    /// after a 421 no more come.
    async fn pipelined_replies(&mut self, count: usize) -> Result<(), Step> {
        self.replies.clear();
        for _ in 0..count {
            let r = self.wire.reply().await.map_err(Step::Ended)?;
            let closing = r.code == 421;
            self.replies.push(r);
            if closing {
                break;
            }
        }
        Ok(())
    }

    /// What the replies to an envelope of `rcpts` recipients (MAIL, each
    /// RCPT, then DATA or BDAT if it was sent) say: true if the message
    /// went with them (`BDAT n LAST`) and is taken, false if it is to
    /// follow.
    fn judge_envelope(
        &mut self,
        rcpts: usize,
        chunking: bool,
        bdat_now: bool,
    ) -> Result<bool, Step> {
        let replies = &mut self.replies;
        // The first refusal of MAIL or a RCPT fails the message, as with
        // lettre; the replies after it were read to stay in step.
        let mut refused = None;
        for (i, r) in replies.iter().take(1 + rcpts).enumerate() {
            match r.code / 100 {
                2 => {}
                4 | 5 => {
                    if refused.is_none() {
                        // The first reply is MAIL FROM's.
                        self.not_recipient = i == 0;
                        refused = Some(i);
                    }
                }
                _ => return Err(Step::Ended(Fault::Broken(refusal(r).message))),
            }
        }
        // The reply to DATA or BDAT, if it came.
        let last = (replies.len() > 1 + rcpts).then(|| replies.swap_remove(1 + rcpts));
        if let Some(i) = refused {
            let taken = !chunking && last.as_ref().is_some_and(|d| d.code / 100 == 3);
            let f = Fault::Refused(replies.swap_remove(i));
            return Err(if matches!(&f, Fault::Refused(r) if r.code == 421) {
                Step::Ended(f)
            } else if taken {
                // DATA was taken (from a relay that should have said 503
                // or 554): any message now would reach the recipients it
                // took. Hanging up ends the transaction with nothing sent.
                Step::HangUp(f)
            } else {
                Step::Reset(f)
            });
        }
        if bdat_now || !chunking {
            let Some(last) = last else {
                return Err(Step::Ended(Fault::Broken(
                    "the relay's replies ended early".into(),
                )));
            };
            // Every RCPT was taken: a refusal of DATA itself ("554 5.7.1
            // policy", "554 transaction failed") is about the sender or the
            // relay. BDAT's reply is the message's own, and stays one.
            self.not_recipient = !chunking;
            if chunking && bdat_unknown(&last) {
                return Err(Step::BdatRefused(Fault::Refused(last)));
            }
            expect(last, if chunking { 2 } else { 3 }).map_err(Step::reset_or_end)?;
            self.not_recipient = false;
        }
        Ok(bdat_now)
    }

    /// The message: dot-stuffed after DATA's 354, or as one BDAT chunk.
    /// Sent from the copy's own buffer where no byte changes (BDAT, or
    /// DATA with no line to stuff); else stuffed into `out`. With DATA
    /// and a `next` copy the relay can take, `next`'s envelope follows the
    /// final "." in the same write, and `written` says how many RCPTs it
    /// has.
    async fn message(
        &mut self,
        raw: &[u8],
        chunking: bool,
        next: Option<(&Envelope, &[u8])>,
        written: &mut Option<usize>,
    ) -> Result<(), Step> {
        self.out.clear();
        let layout = if chunking {
            bdat_head(&mut self.out, raw);
            Layout::OutThenRaw
        } else if needs_stuffing(raw) {
            stuff_into(&mut self.out, raw);
            Layout::Out
        } else {
            let end: &[u8] = if raw.is_empty() || raw.ends_with(b"\r\n") {
                b".\r\n"
            } else {
                b"\r\n.\r\n"
            };
            self.out.extend_from_slice(end);
            Layout::RawThenOut
        };
        if let Some((next_envelope, next_raw)) = next.filter(|_| self.sends_ahead()) {
            // A copy this relay cannot take goes on its own, to fail there.
            if let Ok(params) = self.params(next_envelope, next_raw) {
                self.ends.clear();
                put_envelope(&mut self.out, &mut self.ends, next_envelope, &params);
                self.out.extend_from_slice(b"DATA\r\n");
                *written = Some(next_envelope.to().len());
            }
        }
        let parts: [&[u8]; 2] = match layout {
            Layout::OutThenRaw => [&self.out, raw],
            Layout::Out => [&self.out, b""],
            Layout::RawThenOut => [raw, &self.out],
        };
        self.wire.write_parts(parts).await.map_err(Step::Ended)?;
        // A relay silent after the final "." may have taken the message:
        // the retry can duplicate it (within the lanes' run-ahead bound).
        // The transaction is over whatever the reply: no RSET after it.
        let r = self.wire.reply().await.map_err(Step::Ended)?;
        if chunking && bdat_unknown(&r) {
            return Err(Step::BdatRefused(Fault::Refused(r)));
        }
        expect(r, 2).map(drop).map_err(Step::Ended)
    }

    /// Says QUIT and closes; a relay gone silent holds us up for at most
    /// the timeout.
    pub async fn quit(mut self) {
        let timeout = self.wire.timeout;
        let _ = tokio::time::timeout(timeout, async {
            // In an open transaction QUIT would be message text: closing
            // alone ends it, with nothing delivered.
            if self.open.is_none() {
                let _ = self.wire.command(b"QUIT\r\n", 2).await;
            }
            let _ = match &mut self.wire.stream {
                Stream::Plain(s) => s.shutdown().await,
                Stream::Tls(s) => s.shutdown().await,
            };
        })
        .await;
    }
}

/// How a transaction failed, and what the session needs next.
enum Step {
    /// The transaction is over (or the session is gone): nothing to do.
    Ended(Fault),
    /// A refusal inside the transaction: RSET, then the session goes on.
    Reset(Fault),
    /// The relay waits for a message we must not send.
    HangUp(Fault),
    /// We cannot send it to this relay; nothing was written.
    Unsendable(&'static str),
    /// BDAT itself was refused (500, 502, 503, 504) after the relay
    /// offered CHUNKING: the copy can go again with DATA.
    BdatRefused(Fault),
}

/// A refusal of the BDAT command itself, not of the message: "not
/// recognised", "not implemented", "bad sequence", "parameter not
/// implemented".
fn bdat_unknown(r: &Response<String>) -> bool {
    matches!(r.code, 500 | 502 | 503 | 504)
}

impl Step {
    fn reset_or_end(f: Fault) -> Step {
        match f {
            f @ Fault::Refused(_) => Step::Reset(f),
            f => Step::Ended(f),
        }
    }
}

/// How a message's bytes and `out` make up its write.
enum Layout {
    /// `BDAT n LAST`, then the copy's own bytes.
    OutThenRaw,
    /// The dot-stuffed copy with its terminator.
    Out,
    /// The copy's own bytes, then its terminator.
    RawThenOut,
}

/// Appends MAIL FROM (with `params`) and each RCPT TO to `out`, and each
/// command's end offset to `ends`.
fn put_envelope(out: &mut Vec<u8>, ends: &mut Vec<usize>, envelope: &Envelope, params: &str) {
    let from: &str = envelope.from().map_or("", |a| a.as_ref());
    let _ = write!(Bytes(out), "MAIL FROM:<{from}>{params}\r\n");
    ends.push(out.len());
    for rcpt in envelope.to() {
        let _ = write!(Bytes(out), "RCPT TO:<{rcpt}>\r\n");
        ends.push(out.len());
    }
}

/// The command before a copy's bytes: `BDAT n LAST`.
fn bdat_head(out: &mut Vec<u8>, raw: &[u8]) {
    let _ = write!(Bytes(out), "BDAT {} LAST\r\n", raw.len());
}

/// True if DATA would change `raw`: a line that starts with ".".
fn needs_stuffing(raw: &[u8]) -> bool {
    raw.first() == Some(&b'.') || memchr::memmem::find(raw, b"\n.").is_some()
}

/// `write!` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

async fn handshake(s: &RelaySettings, tcp: TcpStream) -> Result<TlsStream<TcpStream>, Fault> {
    let Some(tls) = &s.tls_client else {
        return Err(Fault::Broken("TLS is not configured".into()));
    };
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    match tokio::time::timeout(s.timeout, connector.connect(tls.name.clone(), tcp)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(Fault::Broken(format!("tls error: {e}"))),
        Err(_) => Err(Fault::Broken(silent(s.timeout))),
    }
}

async fn ehlo(wire: &mut Wire, hello: &str) -> Result<EhloResponse<String>, Fault> {
    let reply = wire
        .command(format!("EHLO {hello}\r\n").as_bytes(), 2)
        .await?;
    Ok(capabilities(&reply))
}

/// AUTH PLAIN if offered, else LOGIN, as lettre chose.
async fn auth(wire: &mut Wire, caps: &EhloResponse<String>, login: &Login) -> Result<(), Fault> {
    let b64 = |s: &[u8]| data_encoding::BASE64.encode(s);
    let offers =
        |m: u64| caps.capabilities & smtp_proto::EXT_AUTH != 0 && caps.auth_mechanisms & m != 0;
    if offers(smtp_proto::AUTH_PLAIN) {
        let token = b64(format!("\0{}\0{}", login.user, login.password).as_bytes());
        wire.command(format!("AUTH PLAIN {token}\r\n").as_bytes(), 2)
            .await?;
    } else if offers(smtp_proto::AUTH_LOGIN) {
        wire.command(b"AUTH LOGIN\r\n", 3).await?;
        wire.command(format!("{}\r\n", b64(login.user.as_bytes())).as_bytes(), 3)
            .await?;
        wire.command(
            format!("{}\r\n", b64(login.password.as_bytes())).as_bytes(),
            2,
        )
        .await?;
    } else {
        return Err(Fault::Broken(
            "the relay offers neither AUTH PLAIN nor AUTH LOGIN".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_proto::response::parser::ResponseReceiver;

    fn stuffed(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        stuff_into(&mut out, raw);
        out
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_with_crlf() {
        assert_eq!(stuffed(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(stuffed(b".first\r\nx"), b"..first\r\nx\r\n.\r\n");
        assert_eq!(stuffed(b"bare\n.lf\r\n"), b"bare\n..lf\r\n.\r\n");
        assert_eq!(stuffed(b"no dots. here.\r\n"), b"no dots. here.\r\n.\r\n");
        assert_eq!(stuffed(b""), b".\r\n");
        assert_eq!(stuffed(b"end\r\n."), b"end\r\n..\r\n.\r\n");
    }

    fn reply(wire: &str) -> Response<String> {
        let mut p = ResponseReceiver::default();
        p.parse(&mut wire.as_bytes().iter()).unwrap()
    }

    #[test]
    fn capabilities_come_from_a_multi_line_ehlo() {
        let r = reply(
            "250-relay.test hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH LOGIN PLAIN\r\n250-8BITMIME\r\n250 CHUNKING\r\n",
        );
        let c = capabilities(&r);
        for ext in [
            smtp_proto::EXT_PIPELINING,
            smtp_proto::EXT_CHUNKING,
            smtp_proto::EXT_8BIT_MIME,
            smtp_proto::EXT_AUTH,
        ] {
            assert_ne!(c.capabilities & ext, 0, "{ext:#x}");
        }
        assert_ne!(c.auth_mechanisms & smtp_proto::AUTH_PLAIN, 0);
        assert_eq!(c.capabilities & smtp_proto::EXT_SMTP_UTF8, 0);
        assert_eq!(capabilities(&reply("250 relay.test\r\n")).capabilities, 0);
        // Postfix 3.7's smtp-sink, with its empty last line.
        let sink = reply("250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250-XCLIENT NAME HELO\r\n250-XFORWARD NAME ADDR PROTO HELO\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 \r\n");
        let c = capabilities(&sink).capabilities;
        assert_ne!(c & smtp_proto::EXT_PIPELINING, 0);
        assert_ne!(c & smtp_proto::EXT_8BIT_MIME, 0);
    }

    #[test]
    fn a_refusal_keeps_the_relays_words_and_enhanced_code() {
        let e = refusal(&reply(
            "550-5.1.1 mailbox gone\r\n550 5.1.1 (relay.test says so)\r\n",
        ));
        assert!(e.permanent);
        assert_eq!(
            e.message,
            "permanent error (550): 5.1.1 mailbox gone (relay.test says so)"
        );
        let e = refusal(&reply("451 4.3.0 greylisted, try again\r\n"));
        assert!(!e.permanent);
        assert_eq!(
            e.message,
            "transient error (451): 4.3.0 greylisted, try again"
        );
    }
}
