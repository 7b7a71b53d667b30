//! The relay client (issue 17, part 2) against a scripted loopback relay
//! that records what arrives before it answers: PIPELINING puts MAIL, RCPT
//! and DATA in one write, CHUNKING sends the message's own bytes with
//! `BDAT n LAST`, refusals are per message and keep the session, a 421 or
//! silence ends it, replies are read however they are cut.
//!
//! Each relay thread asserts on what it reads; a failed assertion closes
//! its socket (the client's send fails) and `Relay::finish` re-raises it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use utskick::daemon::config::Tls;
use utskick::outbound::{Ahead, Lane, Login, RelaySettings, SendError, Transport};

const FROM: &str = "lista-bounces@lista.example.se";
const TO: &str = "anna@example.org";
/// What a relay thread waits for a client's bytes before it gives up.
const RELAY_PATIENCE: Duration = Duration::from_secs(20);

/// One side of a session, as the relay sees it.
struct Conn {
    s: TcpStream,
    /// Read and not yet taken.
    pending: Vec<u8>,
}

impl Conn {
    fn say(&mut self, text: &str) {
        self.s.write_all(text.as_bytes()).unwrap();
    }

    /// Says `text` one byte per write (with TCP_NODELAY: a segment each).
    fn say_bytewise(&mut self, text: &str) {
        for b in text.as_bytes() {
            self.s.write_all(std::slice::from_ref(b)).unwrap();
        }
    }

    fn fill(&mut self) -> usize {
        let mut buf = [0u8; 65536];
        let n = self.s.read(&mut buf).expect("the client went silent");
        self.pending.extend_from_slice(&buf[..n]);
        n
    }

    /// What arrives in one read (or was read before and not taken).
    fn one_read(&mut self) -> Vec<u8> {
        if self.pending.is_empty() {
            self.fill();
        }
        std::mem::take(&mut self.pending)
    }

    /// Everything up to and including `end`.
    fn until(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = self.pending.windows(end.len()).position(|w| w == end) {
                let rest = self.pending.split_off(at + end.len());
                return std::mem::replace(&mut self.pending, rest);
            }
            assert!(
                self.fill() > 0,
                "the client hung up; had {:?}",
                text(&self.pending)
            );
        }
    }

    /// Exactly `n` bytes.
    fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.pending.len() < n {
            assert!(self.fill() > 0, "the client hung up");
        }
        let rest = self.pending.split_off(n);
        std::mem::replace(&mut self.pending, rest)
    }

    /// The greeting and EHLO with this reply.
    fn hello(&mut self, ehlo_reply: &str) {
        self.say("220 relay.test ESMTP\r\n");
        let ehlo = text(&self.until(b"\r\n"));
        assert_eq!(ehlo, "EHLO lista.example.se\r\n");
        self.say(ehlo_reply);
    }

    /// The client's QUIT, answered; then nothing more.
    fn quit(&mut self) {
        assert_eq!(text(&self.until(b"\r\n")), "QUIT\r\n");
        self.say("221 bye\r\n");
    }

    /// True if the client closes the connection without sending a byte.
    fn hangs_up(&mut self) -> bool {
        self.pending.is_empty() && self.fill() == 0
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PIPELINING: &str = "250-relay.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n";
const CHUNKING: &str =
    "250-relay.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10240000\r\n250 CHUNKING\r\n";

/// What the relay does with one session.
type Script = Box<dyn FnOnce(&mut Conn) + Send>;

struct Relay {
    port: u16,
    thread: JoinHandle<()>,
}

impl Relay {
    /// Serves `sessions.len()` connections in turn, each by its script;
    /// then accepts no more.
    fn start(sessions: Vec<Script>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            for script in sessions {
                let (s, _) = listener.accept().unwrap();
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(RELAY_PATIENCE)).unwrap();
                let mut conn = Conn {
                    s,
                    pending: Vec::new(),
                };
                script(&mut conn);
            }
        });
        Relay { port, thread }
    }

    fn lane(&self, timeout: Duration, credentials: Option<Login>) -> Lane {
        Transport::Smtp(Arc::new(RelaySettings {
            timeout,
            host: "127.0.0.1".into(),
            port: self.port,
            tls: Tls::None,
            tls_client: None,
            credentials,
            hello: "lista.example.se".into(),
            bdat_refused: Default::default(),
        }))
        .lane()
    }

    /// Waits for the relay's scripts; a failed assertion there fails the test.
    fn finish(self) {
        if let Err(e) = self.thread.join() {
            std::panic::resume_unwind(e);
        }
    }
}

async fn send(lane: &mut Lane, raw: &[u8]) -> Result<(), SendError> {
    lane.send(FROM, &[TO.to_string()], raw).await
}

fn envelope_lines() -> String {
    format!("MAIL FROM:<{FROM}>\r\nRCPT TO:<{TO}>\r\n")
}

#[tokio::test]
async fn mail_rcpt_and_data_go_in_one_write_and_the_message_in_the_next() {
    let raw = b"Subject: hej\r\n\r\n.en rad med punkt\r\n..och en med tv\xc3\xa5\r\nslut\r\n";
    let relay = Relay::start(vec![Box::new(|c: &mut Conn| {
        c.hello(PIPELINING);
        for _ in 0..2 {
            // One read holds all three commands: a client that waited for
            // MAIL's reply would have sent only MAIL by now.
            let first = text(&c.one_read());
            assert_eq!(
                first,
                format!("MAIL FROM:<{FROM}> BODY=8BITMIME\r\nRCPT TO:<{TO}>\r\nDATA\r\n")
            );
            // The three replies in one write.
            c.say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
            let body = c.one_read();
            assert_eq!(
                body,
                b"Subject: hej\r\n\r\n..en rad med punkt\r\n...och en med tv\xc3\xa5\r\nslut\r\n.\r\n"
                    .to_vec(),
                "the stuffed message and the terminator, in one write"
            );
            c.say("250 2.0.0 queued\r\n");
        }
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    send(&mut lane, raw).await.unwrap();
    send(&mut lane, raw).await.unwrap();
    lane.close().await;
    relay.finish();
}

#[tokio::test]
async fn bdat_carries_the_message_byte_exact_when_chunking_is_offered() {
    // A line that is only "." would end DATA; with BDAT nothing is undone
    // or added, not even a missing final CRLF.
    let raw: &[u8] = b"Subject: punkter\r\n\r\n.\r\n..two\r\n.three\r\nno final newline";
    let expected = raw.to_vec();
    let relay = Relay::start(vec![Box::new(move |c: &mut Conn| {
        c.hello(CHUNKING);
        let head = format!("{}BDAT {} LAST\r\n", envelope_lines(), expected.len());
        assert_eq!(
            text(&c.exact(head.len())),
            head,
            "MAIL, RCPT, BDAT together"
        );
        assert_eq!(c.exact(expected.len()), expected, "the bytes, unchanged");
        c.say("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued\r\n");
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    send(&mut lane, raw).await.unwrap();
    lane.close().await;
    relay.finish();
}

/// A relay that offers CHUNKING and then refuses BDAT ("502 not
/// implemented") got nothing: every copy failed. Now the session resets,
/// sends the same copy with DATA, and uses DATA for the rest of it.
#[tokio::test]
async fn a_refused_bdat_sends_the_copy_again_with_data_in_the_same_session() {
    let raw: &[u8] = b"Subject: x\r\n\r\n.dot\r\n";
    let relay = Relay::start(vec![Box::new(move |c: &mut Conn| {
        c.hello(CHUNKING);
        let head = format!("{}BDAT {} LAST\r\n", envelope_lines(), raw.len());
        assert_eq!(text(&c.exact(head.len())), head);
        assert_eq!(c.exact(raw.len()), raw);
        c.say("250 ok\r\n250 ok\r\n502 5.5.1 BDAT not implemented\r\n");
        assert_eq!(text(&c.until(b"\r\n")), "RSET\r\n");
        c.say("250 ok\r\n");
        // The same copy and the next one, each with DATA.
        for _ in 0..2 {
            assert_eq!(
                text(&c.until(b"DATA\r\n")),
                format!("{}DATA\r\n", envelope_lines())
            );
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            assert_eq!(c.until(b"\r\n.\r\n"), b"Subject: x\r\n\r\n..dot\r\n.\r\n");
            c.say("250 queued\r\n");
        }
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    send(&mut lane, raw).await.unwrap();
    send(&mut lane, raw).await.unwrap();
    lane.close().await;
    relay.finish();
}

/// A relay that offers CHUNKING but does not know BDAT reads the chunk
/// after its 502 as commands, a refusal a line, so RSET's reply is not
/// RSET's and the session is out of step. That copy failed for good (the
/// 502 read as the recipient's permanent refusal), and every session after
/// it tried BDAT again: the whole campaign failed. Now the copy fails
/// transient, and the next session to that relay sends with DATA.
#[tokio::test]
async fn a_relay_that_reads_the_bdat_chunk_as_commands_gets_the_copy_with_data_next_time() {
    let raw: &[u8] = b"Subject: x\r\nMIME-Version: 1.0\r\n\r\nhej\r\n";
    let relay = Relay::start(vec![
        Box::new(move |c: &mut Conn| {
            c.hello(CHUNKING);
            let head = format!("{}BDAT {} LAST\r\n", envelope_lines(), raw.len());
            assert_eq!(text(&c.exact(head.len())), head);
            assert_eq!(c.exact(raw.len()), raw);
            let mut replies = "250 ok\r\n250 ok\r\n500 5.5.1 unknown command\r\n".to_string();
            for _ in raw.split(|b| *b == b'\n').skip(1) {
                replies.push_str("500 5.5.1 unknown command\r\n");
            }
            c.say(&replies);
            assert_eq!(text(&c.until(b"\r\n")), "RSET\r\n");
            c.say("250 ok\r\n");
            // Out of step: the client must not go on in this session.
            let mut rest = Vec::new();
            let _ = c.s.read_to_end(&mut rest);
            assert!(
                !text(&rest).contains("MAIL FROM"),
                "a message in a session out of step: {}",
                text(&rest)
            );
        }),
        Box::new(move |c: &mut Conn| {
            c.hello(CHUNKING);
            assert_eq!(
                text(&c.until(b"DATA\r\n")),
                format!("{}DATA\r\n", envelope_lines())
            );
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            assert_eq!(c.until(b"\r\n.\r\n"), [raw, b".\r\n"].concat());
            c.say("250 queued\r\n");
            c.quit();
        }),
    ]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    let e = send(&mut lane, raw).await.unwrap_err();
    assert!(!e.permanent && !e.bounce, "{e:?}");
    send(&mut lane, raw).await.unwrap();
    lane.close().await;
    relay.finish();
}

#[tokio::test]
async fn a_refused_recipient_fails_that_message_and_the_session_carries_the_next() {
    let relay = Relay::start(vec![Box::new(|c: &mut Conn| {
        c.hello(PIPELINING);
        let first = format!("{}DATA\r\n", envelope_lines());
        assert_eq!(text(&c.until(b"DATA\r\n")), first);
        c.say("250 2.1.0 ok\r\n550 5.1.1 <anna@example.org>: no such user\r\n554 5.5.1 no valid recipients\r\n");
        // No message follows; the transaction is reset.
        assert_eq!(text(&c.until(b"\r\n")), "RSET\r\n");
        c.say("250 2.0.0 ok\r\n");
        assert_eq!(text(&c.until(b"DATA\r\n")), first);
        c.say("250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(c.until(b"\r\n.\r\n"), b"Subject: two\r\n\r\nok\r\n.\r\n");
        c.say("250 queued\r\n");
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    let e = send(&mut lane, b"Subject: one\r\n\r\nnope\r\n")
        .await
        .unwrap_err();
    assert!(e.permanent, "{e:?}");
    assert!(
        e.message.contains("550")
            && e.message.contains("5.1.1")
            && e.message.contains("no such user"),
        "{e:?}"
    );
    send(&mut lane, b"Subject: two\r\n\r\nok\r\n")
        .await
        .unwrap();
    lane.close().await;
    relay.finish();
}

#[tokio::test]
async fn a_refused_recipient_under_bdat_consumes_the_chunk_and_the_session_goes_on() {
    let raw: &[u8] = b"Subject: x\r\n\r\nx\r\n";
    let relay = Relay::start(vec![Box::new(move |c: &mut Conn| {
        c.hello(CHUNKING);
        let head = format!("{}BDAT {} LAST\r\n", envelope_lines(), raw.len());
        for reply in [
            "250 ok\r\n452 4.2.2 mailbox full\r\n554 5.5.1 no valid recipients\r\n",
            "250 ok\r\n250 ok\r\n250 queued\r\n",
        ] {
            assert_eq!(text(&c.exact(head.len())), head);
            assert_eq!(c.exact(raw.len()), raw);
            c.say(reply);
            if reply.contains("452") {
                assert_eq!(text(&c.until(b"\r\n")), "RSET\r\n");
                c.say("250 ok\r\n");
            }
        }
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    let e = send(&mut lane, raw).await.unwrap_err();
    assert!(!e.permanent && e.message.contains("(452)"), "{e:?}");
    assert!(e.message.contains("mailbox full"), "{e:?}");
    send(&mut lane, raw).await.unwrap();
    lane.close().await;
    relay.finish();
}

/// A relay that answers DATA with 354 after refusing every recipient (it
/// should say 503 or 554) gets no message: the client hangs up.
#[tokio::test]
async fn a_relay_that_takes_data_after_refusing_the_recipient_gets_no_message() {
    let relay = Relay::start(vec![
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
            assert!(c.hangs_up(), "the client sent something after the 354");
        }),
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            c.say("250 queued\r\n");
            c.quit();
        }),
    ]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    let e = send(&mut lane, b"x\r\n").await.unwrap_err();
    assert!(e.permanent && e.message.contains("no such user"), "{e:?}");
    send(&mut lane, b"y\r\n").await.unwrap();
    lane.close().await;
    relay.finish();
}

#[tokio::test]
async fn a_4xx_to_mail_is_transient_and_the_session_stays() {
    let relay = Relay::start(vec![Box::new(|c: &mut Conn| {
        c.hello(PIPELINING);
        c.until(b"DATA\r\n");
        c.say("451 4.3.0 try again later\r\n503 5.5.1 need MAIL first\r\n503 5.5.1 need MAIL first\r\n");
        assert_eq!(text(&c.until(b"\r\n")), "RSET\r\n");
        c.say("250 ok\r\n");
        c.until(b"DATA\r\n");
        c.say("250 ok\r\n250 ok\r\n354 go\r\n");
        c.until(b"\r\n.\r\n");
        c.say("250 queued\r\n");
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    let e = send(&mut lane, b"x\r\n").await.unwrap_err();
    assert!(!e.permanent, "{e:?}");
    assert!(
        e.message.contains("451") && e.message.contains("try again later"),
        "{e:?}"
    );
    send(&mut lane, b"x\r\n").await.unwrap();
    lane.close().await;
    relay.finish();
}

#[tokio::test]
async fn a_421_mid_session_is_transient_and_the_next_message_opens_a_fresh_session() {
    let relay = Relay::start(vec![
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            c.say("250 queued\r\n");
            c.until(b"DATA\r\n");
            // RFC 5321: a 421 and the relay closes.
            c.say("421 4.3.2 shutting down\r\n");
        }),
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            c.say("250 queued\r\n");
            c.quit();
        }),
    ]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    send(&mut lane, b"1\r\n").await.unwrap();
    let e = send(&mut lane, b"2\r\n").await.unwrap_err();
    assert!(!e.permanent && e.message.contains("421"), "{e:?}");
    // A second session in the relay's script: without it this fails.
    send(&mut lane, b"2\r\n").await.unwrap();
    lane.close().await;
    relay.finish();
}

/// Every reply arrives one byte per segment, the EHLO one multi-line: it
/// is read whole, and its CHUNKING is seen (BDAT follows).
#[tokio::test]
async fn replies_split_byte_by_byte_are_read_whole() {
    let raw: &[u8] = b"Subject: bitar\r\n\r\nhej\r\n";
    let relay = Relay::start(vec![Box::new(move |c: &mut Conn| {
        c.say_bytewise("220-relay.test ESMTP\r\n220 second line\r\n");
        assert_eq!(text(&c.until(b"\r\n")), "EHLO lista.example.se\r\n");
        c.say_bytewise(CHUNKING);
        let head = format!("{}BDAT {} LAST\r\n", envelope_lines(), raw.len());
        assert_eq!(text(&c.exact(head.len())), head);
        assert_eq!(c.exact(raw.len()), raw);
        c.say_bytewise("250-2.1.0 sender\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued\r\n");
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    send(&mut lane, raw).await.unwrap();
    lane.close().await;
    relay.finish();
}

/// Without PIPELINING or CHUNKING: one command, one reply.
#[tokio::test]
async fn a_relay_without_extensions_gets_lock_step() {
    let relay = Relay::start(vec![Box::new(|c: &mut Conn| {
        c.hello("250 relay.test\r\n");
        assert_eq!(text(&c.one_read()), format!("MAIL FROM:<{FROM}>\r\n"));
        c.say("250 ok\r\n");
        assert_eq!(text(&c.one_read()), format!("RCPT TO:<{TO}>\r\n"));
        c.say("250 ok\r\n");
        assert_eq!(text(&c.one_read()), "DATA\r\n");
        c.say("354 go\r\n");
        assert_eq!(c.until(b"\r\n.\r\n"), b"..x\r\n.\r\n");
        c.say("250 queued\r\n");
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(10), None);
    send(&mut lane, b".x\r\n").await.unwrap();
    lane.close().await;
    relay.finish();
}

/// The relay takes the whole message and never answers the final ".":
/// the send ends at the timeout with a transient error (a retry may
/// duplicate it, as RFC 1047 warns), and the next message opens a fresh
/// session.
#[tokio::test]
async fn a_relay_silent_after_the_final_dot_gives_a_transient_timeout() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let relay = Relay::start(vec![
        Box::new(move |c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            // Silent until the test is over with this session.
            let _ = done_rx.recv();
        }),
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            c.say("250 queued\r\n");
            c.quit();
        }),
    ]);
    let mut lane = relay.lane(Duration::from_secs(1), None);
    let e = send(&mut lane, b"x\r\n").await.unwrap_err();
    assert!(!e.permanent, "{e:?}");
    assert!(e.message.contains("did not answer within 1 s"), "{e:?}");
    done_tx.send(()).unwrap();
    send(&mut lane, b"x\r\n").await.unwrap();
    lane.close().await;
    relay.finish();
}

/// AUTH PLAIN where offered, else AUTH LOGIN, with the configured login.
#[tokio::test]
async fn the_client_logs_in_with_plain_or_login() {
    let b64 = |s: &str| data_encoding::BASE64.encode(s.as_bytes());
    let plain = format!("AUTH PLAIN {}\r\n", b64("\0lista\0hemligt"));
    let (user, pass) = (
        format!("{}\r\n", b64("lista")),
        format!("{}\r\n", b64("hemligt")),
    );
    let relay = Relay::start(vec![
        Box::new(move |c: &mut Conn| {
            c.hello("250-relay.test\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n");
            assert_eq!(text(&c.until(b"\r\n")), plain);
            c.say("235 2.7.0 ok\r\n");
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            c.say("250 queued\r\n");
            c.quit();
        }),
        Box::new(move |c: &mut Conn| {
            c.hello("250-relay.test\r\n250 AUTH LOGIN\r\n");
            assert_eq!(text(&c.until(b"\r\n")), "AUTH LOGIN\r\n");
            c.say("334 VXNlcm5hbWU6\r\n");
            assert_eq!(text(&c.until(b"\r\n")), user);
            c.say("334 UGFzc3dvcmQ6\r\n");
            assert_eq!(text(&c.until(b"\r\n")), pass);
            c.say("535 5.7.8 bad credentials\r\n");
        }),
    ]);
    let login = Login {
        user: "lista".into(),
        password: "hemligt".into(),
    };
    let mut lane = relay.lane(Duration::from_secs(10), Some(login.clone()));
    send(&mut lane, b"x\r\n").await.unwrap();
    lane.close().await;
    // A refused login is the relay's or our configuration's fault, never
    // the recipient's: transient.
    let mut lane = relay.lane(Duration::from_secs(10), Some(login));
    let e = send(&mut lane, b"x\r\n").await.unwrap_err();
    assert!(!e.permanent && e.message.contains("535"), "{e:?}");
    relay.finish();
}

// ---------------------------------------------------------------------------
// TLS: STARTTLS and implicit TLS against a relay with a test CA's
// certificate (tests/tls/).
// ---------------------------------------------------------------------------

mod tls {
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use utskick::outbound::TlsClient;

    fn file(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/tls/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    pub fn acceptor() -> tokio_rustls::TlsAcceptor {
        let certs = vec![CertificateDer::from_pem_slice(&file("test-relay.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(&file("test-relay.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// A client that trusts the test CA only.
    pub fn client() -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&file("test-ca.pem")).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsClient {
            config: Arc::new(config),
            name: ServerName::try_from("127.0.0.1".to_string()).unwrap(),
        }
    }

    pub async fn line<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> String {
        let mut l = String::new();
        r.read_line(&mut l).await.unwrap();
        l
    }

    pub async fn say<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>, text: &str) {
        r.get_mut().write_all(text.as_bytes()).await.unwrap();
        r.get_mut().flush().await.unwrap();
    }

    /// From EHLO to QUIT over an encrypted stream; returns the message.
    pub async fn session<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>) -> String {
        assert_eq!(line(r).await, "EHLO lista.example.se\r\n");
        say(r, "250-relay.test\r\n250 PIPELINING\r\n").await;
        assert!(line(r).await.starts_with("MAIL FROM:"));
        assert!(line(r).await.starts_with("RCPT TO:"));
        assert_eq!(line(r).await, "DATA\r\n");
        say(r, "250 ok\r\n250 ok\r\n354 go\r\n").await;
        let mut data = String::new();
        loop {
            let l = line(r).await;
            if l == ".\r\n" || l.is_empty() {
                break;
            }
            data.push_str(&l);
        }
        say(r, "250 queued\r\n").await;
        assert_eq!(line(r).await, "QUIT\r\n");
        say(r, "221 bye\r\n").await;
        data
    }
}

fn tls_lane(port: u16, mode: Tls, client: utskick::outbound::TlsClient) -> Transport {
    Transport::Smtp(Arc::new(RelaySettings {
        timeout: Duration::from_secs(10),
        host: "127.0.0.1".into(),
        port,
        tls: mode,
        tls_client: Some(client),
        credentials: None,
        hello: "lista.example.se".into(),
        bdat_refused: Default::default(),
    }))
}

#[tokio::test]
async fn starttls_says_ehlo_again_and_sends_the_message_encrypted() {
    use tokio::io::BufReader;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut r = BufReader::new(tcp);
        tls::say(&mut r, "220 relay.test ESMTP\r\n").await;
        assert_eq!(tls::line(&mut r).await, "EHLO lista.example.se\r\n");
        tls::say(
            &mut r,
            "250-relay.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n",
        )
        .await;
        assert_eq!(tls::line(&mut r).await, "STARTTLS\r\n");
        tls::say(&mut r, "220 2.0.0 go ahead\r\n").await;
        let stream = tls::acceptor().accept(r.into_inner()).await.unwrap();
        tls::session(&mut BufReader::new(stream)).await
    });
    let mut lane = tls_lane(port, Tls::Starttls, tls::client()).lane();
    send(&mut lane, b"Subject: krypterat\r\n\r\nhej\r\n")
        .await
        .unwrap();
    lane.close().await;
    assert_eq!(relay.await.unwrap(), "Subject: krypterat\r\n\r\nhej\r\n");
}

#[tokio::test]
async fn implicit_tls_carries_the_session_and_an_untrusted_certificate_is_refused() {
    use tokio::io::BufReader;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = tokio::spawn(async move {
        let mut got = Vec::new();
        // The probe, then a message, then a client that trusts only
        // Mozilla's roots (the handshake fails on its side).
        for i in 0..3 {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(stream) = tls::acceptor().accept(tcp).await else {
                assert_eq!(i, 2, "handshake {i} failed");
                continue;
            };
            let mut r = BufReader::new(stream);
            tls::say(&mut r, "220 relay.test ESMTP\r\n").await;
            if i == 0 {
                assert_eq!(tls::line(&mut r).await, "EHLO lista.example.se\r\n");
                tls::say(&mut r, "250 relay.test\r\n").await;
                assert_eq!(tls::line(&mut r).await, "QUIT\r\n");
                tls::say(&mut r, "221 bye\r\n").await;
            } else {
                got.push(tls::session(&mut r).await);
            }
        }
        got
    });
    let transport = tls_lane(port, Tls::Tls, tls::client());
    assert_eq!(transport.probe().await.unwrap(), "EHLO accepted, TLS");
    let mut lane = transport.lane();
    send(&mut lane, b"hej\r\n").await.unwrap();
    lane.close().await;
    let webpki_only = utskick::outbound::TlsClient::new("127.0.0.1").unwrap();
    let mut lane = tls_lane(port, Tls::Tls, webpki_only).lane();
    let e = send(&mut lane, b"hej\r\n").await.unwrap_err();
    assert!(!e.permanent && e.message.contains("tls error"), "{e:?}");
    assert_eq!(relay.await.unwrap(), vec!["hej\r\n".to_string()]);
}

/// Bytes that come with STARTTLS's 220, before the handshake, could be an
/// attacker's (the STARTTLS injection of CVE-2011-0411): the session is
/// refused, not encrypted with them waiting in its buffer.
#[tokio::test]
async fn bytes_injected_before_the_tls_handshake_refuse_the_session() {
    use tokio::io::BufReader;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut r = BufReader::new(tcp);
        tls::say(&mut r, "220 relay.test ESMTP\r\n").await;
        tls::line(&mut r).await;
        tls::say(
            &mut r,
            "250-relay.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n",
        )
        .await;
        assert_eq!(tls::line(&mut r).await, "STARTTLS\r\n");
        tls::say(
            &mut r,
            "220 2.0.0 go ahead\r\n250-relay.test\r\n250 PIPELINING\r\n",
        )
        .await;
        // The client leaves without a handshake.
        assert_eq!(tls::line(&mut r).await, "");
    });
    let mut lane = tls_lane(port, Tls::Starttls, tls::client()).lane();
    let e = send(&mut lane, b"hej\r\n").await.unwrap_err();
    assert!(
        !e.permanent && e.message.contains("before the TLS handshake"),
        "{e:?}"
    );
    drop(lane);
    relay.await.unwrap();
}

// ---------------------------------------------------------------------------
// The next copy's envelope behind the final "." (RFC 2920, example 2)
// ---------------------------------------------------------------------------

const TO2: &str = "bo@example.org";
const TO3: &str = "cilla@example.org";

fn envelope_of(to: &str) -> String {
    format!("MAIL FROM:<{FROM}>\r\nRCPT TO:<{to}>\r\nDATA\r\n")
}

/// Sends `raw` to `to` with `next` (recipient, bytes) behind it.
async fn send_ahead(
    lane: &mut Lane,
    to: &str,
    raw: &[u8],
    next: Option<(&str, &[u8])>,
) -> (Result<(), SendError>, Ahead) {
    let next_to = next.map(|(to, _)| [to.to_string()]);
    let next = next
        .zip(next_to.as_ref())
        .map(|((_, raw), to)| (FROM, &to[..], raw));
    lane.send_ahead(FROM, &[to.to_string()], raw, next).await
}

/// The relay answers a copy's "." only once it has read the next copy's
/// whole envelope: a client that waited for the 250 before it sent MAIL
/// would time out. Three copies, two round trips after the first
/// envelope's, on one session.
#[tokio::test]
async fn the_next_envelope_rides_with_the_final_dot_to_a_relay_that_waits_for_it() {
    let two = "tv\u{e5}\r\n".as_bytes();
    let relay = Relay::start(vec![Box::new(|c: &mut Conn| {
        c.hello(PIPELINING);
        assert_eq!(text(&c.until(b"DATA\r\n")), envelope_of(TO));
        c.say("250 ok\r\n250 ok\r\n354 go\r\n");
        // The second copy is not ASCII: its MAIL says so.
        let want = format!("..ett\r\n.\r\n{}", envelope_of(TO2))
            .replace("se>\r\n", "se> BODY=8BITMIME\r\n");
        assert_eq!(
            text(&c.until(b"DATA\r\n")),
            want,
            "stuffed, with the next envelope"
        );
        c.say("250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        let want = format!("tv\u{e5}\r\n.\r\n{}", envelope_of(TO3));
        assert_eq!(
            text(&c.until(b"DATA\r\n")),
            want,
            "from the copy's own buffer"
        );
        c.say("250 queued 2\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(
            text(&c.until(b"\r\n.\r\n")),
            "tre\r\n.\r\n",
            "a final CRLF added"
        );
        c.say("250 queued 3\r\n");
        c.quit();
    })]);
    // Far below the relay's patience: a client that did not pipeline
    // would fail here.
    let mut lane = relay.lane(Duration::from_secs(2), None);
    assert!(lane.sends_ahead(), "a lane with no session yet may");
    let (r, a) = send_ahead(&mut lane, TO, b".ett\r\n", Some((TO2, two))).await;
    r.unwrap();
    assert!(matches!(a, Ahead::Open), "{a:?}");
    let (r, a) = send_ahead(&mut lane, TO2, two, Some((TO3, b"tre"))).await;
    r.unwrap();
    assert!(matches!(a, Ahead::Open), "{a:?}");
    let (r, a) = send_ahead(&mut lane, TO3, b"tre", None).await;
    r.unwrap();
    assert!(matches!(a, Ahead::NotSent), "{a:?}");
    assert!(lane.sends_ahead());
    lane.close().await;
    relay.finish();
}

/// (a) The "." refused with 550, the next envelope taken: the copy fails
/// (a bounce, as a refused message always was) and the next goes on in
/// the same session.
#[tokio::test]
async fn a_refused_final_dot_fails_that_copy_and_the_next_goes_on_in_the_same_session() {
    let relay = Relay::start(vec![Box::new(|c: &mut Conn| {
        c.hello(PIPELINING);
        c.until(b"DATA\r\n");
        c.say("250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(
            text(&c.until(b"DATA\r\n")),
            format!("1\r\n.\r\n{}", envelope_of(TO2))
        );
        c.say("550 5.7.1 content refused\r\n250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(text(&c.until(b"\r\n.\r\n")), "2\r\n.\r\n");
        c.say("250 queued\r\n");
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(2), None);
    let (r, a) = send_ahead(&mut lane, TO, b"1\r\n", Some((TO2, b"2\r\n"))).await;
    let e = r.unwrap_err();
    assert!(
        e.permanent && e.bounce && e.message.contains("content refused"),
        "{e:?}"
    );
    assert!(matches!(a, Ahead::Open), "{a:?}");
    send_ahead(&mut lane, TO2, b"2\r\n", None).await.0.unwrap();
    lane.close().await;
    relay.finish();
}

/// (b) The "." answered 421 and the relay hangs up: the copy is
/// transient; the next one, whose envelope was never answered, goes on
/// its own on a fresh session.
#[tokio::test]
async fn a_421_to_the_final_dot_ends_the_session_and_the_next_copy_goes_on_a_fresh_one() {
    let relay = Relay::start(vec![
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            assert_eq!(text(&c.until(b"DATA\r\n")), envelope_of(TO2));
            c.say("421 4.3.2 shutting down\r\n");
        }),
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            assert_eq!(text(&c.until(b"DATA\r\n")), envelope_of(TO2));
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            assert_eq!(text(&c.until(b"\r\n.\r\n")), "2\r\n.\r\n");
            c.say("250 queued\r\n");
            c.quit();
        }),
    ]);
    let mut lane = relay.lane(Duration::from_secs(2), None);
    let (r, a) = send_ahead(&mut lane, TO, b"1\r\n", Some((TO2, b"2\r\n"))).await;
    let e = r.unwrap_err();
    assert!(!e.permanent && e.message.contains("421"), "{e:?}");
    assert!(matches!(a, Ahead::NotSent), "{a:?}");
    send_ahead(&mut lane, TO2, b"2\r\n", None).await.0.unwrap();
    lane.close().await;
    relay.finish();
}

/// (c) The relay reads the message and the next envelope and hangs up
/// without a word: the copy is transient (it may have been taken: a
/// retry can duplicate it, as a silent "." always could), and the next
/// goes on a fresh session.
#[tokio::test]
async fn a_hang_up_before_any_reply_fails_the_copy_and_the_next_goes_on_a_fresh_session() {
    let relay = Relay::start(vec![
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            assert_eq!(
                text(&c.until(b"DATA\r\n")),
                format!("1\r\n.\r\n{}", envelope_of(TO2))
            );
        }),
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            assert_eq!(text(&c.until(b"DATA\r\n")), envelope_of(TO2));
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            c.say("250 queued\r\n");
            c.quit();
        }),
    ]);
    let mut lane = relay.lane(Duration::from_secs(2), None);
    let (r, a) = send_ahead(&mut lane, TO, b"1\r\n", Some((TO2, b"2\r\n"))).await;
    let e = r.unwrap_err();
    assert!(!e.permanent && !e.bounce, "{e:?}");
    assert!(matches!(a, Ahead::NotSent), "{a:?}");
    send_ahead(&mut lane, TO2, b"2\r\n", None).await.0.unwrap();
    lane.close().await;
    relay.finish();
}

/// (d) The next copy's RCPT refused: this copy is sent, the next fails
/// on its own (a bounce), the session is reset and carries a third.
#[tokio::test]
async fn a_refused_next_recipient_fails_that_copy_alone_and_the_session_is_reset_and_kept() {
    let relay = Relay::start(vec![Box::new(|c: &mut Conn| {
        c.hello(PIPELINING);
        c.until(b"DATA\r\n");
        c.say("250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(
            text(&c.until(b"DATA\r\n")),
            format!("1\r\n.\r\n{}", envelope_of(TO2))
        );
        c.say("250 queued\r\n250 ok\r\n550 5.1.1 <bo@example.org>: no such user\r\n554 5.5.1 no valid recipients\r\n");
        assert_eq!(text(&c.until(b"\r\n")), "RSET\r\n");
        c.say("250 ok\r\n");
        assert_eq!(text(&c.until(b"DATA\r\n")), envelope_of(TO3));
        c.say("250 ok\r\n250 ok\r\n354 go\r\n");
        assert_eq!(text(&c.until(b"\r\n.\r\n")), "3\r\n.\r\n");
        c.say("250 queued\r\n");
        c.quit();
    })]);
    let mut lane = relay.lane(Duration::from_secs(2), None);
    let (r, a) = send_ahead(&mut lane, TO, b"1\r\n", Some((TO2, b"2\r\n"))).await;
    r.unwrap();
    let Ahead::Failed(e) = a else { panic!("{a:?}") };
    assert!(
        e.permanent && e.bounce && e.message.contains("no such user"),
        "{e:?}"
    );
    send_ahead(&mut lane, TO3, b"3\r\n", None).await.0.unwrap();
    lane.close().await;
    relay.finish();
}

/// (e) The next copy's DATA refused after its recipient was taken: as any
/// refused DATA, not the recipient's (no bounce), RSET, session kept.
/// And a 421 to the next MAIL: this copy sent, the next transient, a
/// fresh session.
#[tokio::test]
async fn a_refused_next_data_or_a_421_to_the_next_mail_fails_only_the_next_copy() {
    let relay = Relay::start(vec![
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"DATA\r\n");
            c.say("250 queued\r\n250 ok\r\n250 ok\r\n554 5.7.1 policy says no\r\n");
            assert_eq!(text(&c.until(b"\r\n")), "RSET\r\n");
            c.say("250 ok\r\n");
            assert_eq!(text(&c.until(b"DATA\r\n")), envelope_of(TO3));
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            assert_eq!(
                text(&c.until(b"DATA\r\n")),
                format!("3\r\n.\r\n{}", envelope_of(TO))
            );
            c.say("250 queued\r\n421 4.3.2 too many messages\r\n");
        }),
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            assert_eq!(text(&c.until(b"DATA\r\n")), envelope_of(TO));
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"\r\n.\r\n");
            c.say("250 queued\r\n");
            c.quit();
        }),
    ]);
    let mut lane = relay.lane(Duration::from_secs(2), None);
    let (r, a) = send_ahead(&mut lane, TO, b"1\r\n", Some((TO2, b"2\r\n"))).await;
    r.unwrap();
    let Ahead::Failed(e) = a else { panic!("{a:?}") };
    assert!(
        e.permanent && !e.bounce && e.message.contains("policy"),
        "{e:?}"
    );
    let (r, a) = send_ahead(&mut lane, TO3, b"3\r\n", Some((TO, b"4\r\n"))).await;
    r.unwrap();
    let Ahead::Failed(e) = a else { panic!("{a:?}") };
    assert!(!e.permanent && e.message.contains("421"), "{e:?}");
    send_ahead(&mut lane, TO, b"4\r\n", None).await.0.unwrap();
    lane.close().await;
    relay.finish();
}

/// A lane closed with a transaction open (its envelope went ahead, the
/// relay said 354) hangs up instead of saying QUIT, which the relay would
/// read as message text; a plain `send` of another copy does the same
/// first, then opens a fresh session.
#[tokio::test]
async fn an_open_transaction_is_ended_by_hanging_up_never_by_a_message() {
    let relay = Relay::start(vec![
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            c.until(b"DATA\r\n");
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"DATA\r\n");
            c.say("250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n");
            assert!(
                c.hangs_up(),
                "the client sent something in the open transaction"
            );
        }),
        Box::new(|c: &mut Conn| {
            c.hello(PIPELINING);
            assert_eq!(text(&c.until(b"DATA\r\n")), envelope_of(TO3));
            c.say("250 ok\r\n250 ok\r\n354 go\r\n");
            c.until(b"DATA\r\n");
            c.say("250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n");
            assert!(
                c.hangs_up(),
                "the client sent something in the open transaction"
            );
        }),
    ]);
    let mut lane = relay.lane(Duration::from_secs(2), None);
    let (r, a) = send_ahead(&mut lane, TO, b"1\r\n", Some((TO2, b"2\r\n"))).await;
    r.unwrap();
    assert!(matches!(a, Ahead::Open), "{a:?}");
    // Not the copy whose envelope went: a fresh session.
    let (r, a) = send_ahead(&mut lane, TO3, b"3\r\n", Some((TO2, b"2\r\n"))).await;
    r.unwrap();
    assert!(matches!(a, Ahead::Open), "{a:?}");
    lane.close().await;
    relay.finish();
}

/// Under implicit TLS the envelope rides as well (each part is written to
/// the TLS stream, then one flush), to a relay that waits for it.
#[tokio::test]
async fn the_next_envelope_rides_with_the_final_dot_under_tls() {
    use tokio::io::BufReader;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let stream = tls::acceptor().accept(tcp).await.unwrap();
        let mut r = BufReader::new(stream);
        tls::say(&mut r, "220 relay.test ESMTP\r\n").await;
        assert_eq!(tls::line(&mut r).await, "EHLO lista.example.se\r\n");
        tls::say(&mut r, "250-relay.test\r\n250 PIPELINING\r\n").await;
        let mut got = String::new();
        for _ in 0..3 {
            got.push_str(&tls::line(&mut r).await);
        }
        assert_eq!(got, envelope_of(TO));
        tls::say(&mut r, "250 ok\r\n250 ok\r\n354 go\r\n").await;
        got.clear();
        for _ in 0..5 {
            got.push_str(&tls::line(&mut r).await);
        }
        assert_eq!(got, format!("1\r\n.\r\n{}", envelope_of(TO2)));
        tls::say(&mut r, "250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n").await;
        got.clear();
        for _ in 0..2 {
            got.push_str(&tls::line(&mut r).await);
        }
        assert_eq!(got, "2\r\n.\r\n");
        tls::say(&mut r, "250 queued\r\n").await;
        assert_eq!(tls::line(&mut r).await, "QUIT\r\n");
        tls::say(&mut r, "221 bye\r\n").await;
    });
    let mut lane = tls_lane(port, Tls::Tls, tls::client()).lane();
    let (r, a) = send_ahead(&mut lane, TO, b"1\r\n", Some((TO2, b"2\r\n"))).await;
    r.unwrap();
    assert!(matches!(a, Ahead::Open), "{a:?}");
    send_ahead(&mut lane, TO2, b"2\r\n", None).await.0.unwrap();
    lane.close().await;
    relay.await.unwrap();
}

/// With CHUNKING a copy already goes in one write (`BDAT n LAST`), and
/// without PIPELINING nothing rides: the next copy is not sent ahead.
#[tokio::test]
async fn nothing_rides_with_bdat_or_on_a_lock_step_relay() {
    let raw: &[u8] = b"x\r\n";
    let relay = Relay::start(vec![
        Box::new(move |c: &mut Conn| {
            c.hello(CHUNKING);
            let head = format!("{}BDAT {} LAST\r\n", envelope_lines(), raw.len());
            assert_eq!(text(&c.exact(head.len())), head);
            assert_eq!(c.exact(raw.len()), raw);
            c.say("250 ok\r\n250 ok\r\n250 queued\r\n");
            c.quit();
        }),
        Box::new(|c: &mut Conn| {
            c.hello("250 relay.test\r\n");
            for (line, reply) in [
                (format!("MAIL FROM:<{FROM}>\r\n"), "250 ok\r\n"),
                (format!("RCPT TO:<{TO}>\r\n"), "250 ok\r\n"),
                ("DATA\r\n".to_string(), "354 go\r\n"),
                ("x\r\n.\r\n".to_string(), "250 queued\r\n"),
            ] {
                assert_eq!(text(&c.one_read()), line);
                c.say(reply);
            }
            c.quit();
        }),
    ]);
    for _ in 0..2 {
        let mut lane = relay.lane(Duration::from_secs(2), None);
        let (r, a) = send_ahead(&mut lane, TO, raw, Some((TO2, b"2\r\n"))).await;
        r.unwrap();
        assert!(matches!(a, Ahead::NotSent), "{a:?}");
        assert!(!lane.sends_ahead());
        lane.close().await;
    }
    relay.finish();
}
