//! A scripted SMTP relay on loopback, for the tests of what our relay
//! client and the campaign worker do against it: every line it reads is
//! kept, a [`Script`] decides the replies, and a gate ([`Relay::hold`])
//! can keep the answer to a finished message until the test lets it go,
//! so a campaign round is certainly under way while the test acts.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How the relay behaves.
#[derive(Clone, Default)]
pub struct Script {
    /// Extra EHLO lines (after the first), e.g. "STARTTLS".
    pub caps: Vec<String>,
    /// The reply to STARTTLS (with its CRLFs; may carry injected bytes).
    pub starttls: Option<String>,
    /// RCPT replies for recipients whose address starts with the key.
    pub rcpt: Vec<(String, String)>,
    /// The reply to every MAIL FROM, when set.
    pub mail: Option<String>,
    /// The reply to every BDAT, after its chunk is read, when set.
    pub bdat: Option<String>,
    /// EHLO is answered with this many continuation lines first.
    pub ehlo_flood: usize,
    /// The reply to DATA (instead of 354), when set.
    pub data: Option<String>,
    /// The greeting goes one byte a second.
    pub trickle: bool,
}

/// One message taken with 250.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The envelope sender, bare.
    pub from: String,
    /// The recipient, bare.
    pub to: String,
    /// The message, with the dot-stuffing undone.
    pub data: String,
}

#[derive(Default)]
struct Seen {
    lines: Vec<String>,
    accepted: Vec<Accepted>,
}

/// Holds the answer to a finished message whose envelope sender contains
/// `from_part`, while set.
#[derive(Default)]
struct GateState {
    from_part: Option<String>,
    /// The recipients of each message waiting at the gate now.
    waiting: Vec<Vec<String>>,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Seen>,
    gate: Mutex<GateState>,
    opened: Condvar,
}

impl Shared {
    /// Blocks while the gate holds mail from `from`.
    fn pass(&self, from: &str, rcpts: &[String]) {
        let mut g = self.gate.lock().unwrap();
        if !g.from_part.as_deref().is_some_and(|p| from.contains(p)) {
            return;
        }
        g.waiting.push(rcpts.to_vec());
        while g.from_part.as_deref().is_some_and(|p| from.contains(p)) {
            g = self.opened.wait(g).unwrap();
        }
        let at = g.waiting.iter().position(|w| w == rcpts).unwrap();
        g.waiting.remove(at);
    }
}

pub struct Relay {
    pub addr: String,
    shared: Arc<Shared>,
}

impl Relay {
    pub fn start(script: Script) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (s, script) = (s.clone(), script.clone());
                std::thread::spawn(move || session(stream, &script, &s));
            }
        });
        Relay { addr, shared }
    }

    /// Every line the relay read, in order.
    pub fn lines(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().lines.clone()
    }

    /// (envelope sender, recipient) of each message taken with 250.
    pub fn accepted(&self) -> Vec<(String, String)> {
        self.messages()
            .into_iter()
            .map(|a| (a.from, a.to))
            .collect()
    }

    /// Each message taken with 250, in order.
    pub fn messages(&self) -> Vec<Accepted> {
        self.shared.seen.lock().unwrap().accepted.clone()
    }

    /// From now on, a message whose envelope sender contains `from_part`
    /// is read whole but not answered until [`Relay::release`].
    pub fn hold(&self, from_part: &str) {
        self.shared.gate.lock().unwrap().from_part = Some(from_part.to_string());
    }

    /// Answers the held messages, and holds no more.
    pub fn release(&self) {
        self.shared.gate.lock().unwrap().from_part = None;
        self.shared.opened.notify_all();
    }

    /// The recipients of the messages waiting at the gate now.
    pub fn held(&self) -> Vec<String> {
        self.shared.gate.lock().unwrap().waiting.concat()
    }

    /// Waits (polling, up to `limit`) until a message waits at the gate.
    pub fn wait_held(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.held().is_empty() {
            assert!(Instant::now() < deadline, "no message reached the gate");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.release();
    }
}

/// The address between < and > of a MAIL or RCPT line.
pub fn path_of(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}

/// The message after a 354, up to the lone ".": its lines as they came
/// (dot-stuffed); None if the client left first.
pub fn read_data(r: &mut impl BufRead) -> Option<String> {
    let (mut data, mut line) = (String::new(), String::new());
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == ".\r\n" {
            return Some(data);
        }
        data.push_str(&line);
    }
}

fn session(stream: TcpStream, script: &Script, shared: &Shared) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    if script.trickle {
        for b in b"220 relay.test ESMTP\r\n" {
            if w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let _ = w.write_all(b"220 relay.test ESMTP\r\n");
    let (mut from, mut rcpts) = (String::new(), Vec::<String>::new());
    let mut line = String::new();
    let accept = |from: &str, rcpts: &mut Vec<String>, data: String| {
        shared.pass(from, rcpts);
        let mut s = shared.seen.lock().unwrap();
        for to in rcpts.drain(..) {
            s.accepted.push(Accepted {
                from: from.to_string(),
                to,
                data: data.clone(),
            });
        }
    };
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        shared.seen.lock().unwrap().lines.push(line.clone());
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            let flood = "250-".to_string() + &"X".repeat(70) + "\r\n";
            for _ in 0..script.ehlo_flood {
                if w.write_all(flood.as_bytes()).is_err() {
                    return;
                }
            }
            let mut out = String::from("250-relay.test\r\n250-PIPELINING\r\n");
            for c in &script.caps {
                out.push_str(&format!("250-{c}\r\n"));
            }
            out + "250 8BITMIME\r\n"
        } else if upper.starts_with("STARTTLS") {
            let reply = script.starttls.clone().unwrap_or("502 5.5.1 no\r\n".into());
            let _ = w.write_all(reply.as_bytes());
            if reply.starts_with('2') {
                // We cannot do TLS: whatever comes now is the handshake.
                let _ = w.shutdown(Shutdown::Both);
                return;
            }
            continue;
        } else if upper.starts_with("MAIL") {
            from = path_of(&line);
            rcpts.clear();
            script.mail.clone().unwrap_or("250 2.1.0 ok".into()) + "\r\n"
        } else if upper.starts_with("RCPT") {
            let to = path_of(&line);
            match script.rcpt.iter().find(|(p, _)| to.starts_with(p.as_str())) {
                Some((_, reply)) => reply.clone() + "\r\n",
                None => {
                    rcpts.push(to);
                    "250 2.1.5 ok\r\n".into()
                }
            }
        } else if upper.starts_with("DATA") {
            if rcpts.is_empty() {
                "554 5.5.1 no valid recipients\r\n".into()
            } else if let Some(reply) = &script.data {
                rcpts.clear();
                reply.clone() + "\r\n"
            } else {
                let _ = w.write_all(b"354 go ahead\r\n");
                let Some(data) = read_data(&mut r) else {
                    return;
                };
                let data = data
                    .split_inclusive("\r\n")
                    .map(|l| l.strip_prefix('.').unwrap_or(l))
                    .collect();
                accept(&from, &mut rcpts, data);
                "250 2.0.0 queued\r\n".into()
            }
        } else if upper.starts_with("BDAT") {
            let n: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            let mut chunk = vec![0; n];
            if std::io::Read::read_exact(&mut r, &mut chunk).is_err() {
                return;
            }
            match &script.bdat {
                Some(reply) => {
                    rcpts.clear();
                    reply.clone() + "\r\n"
                }
                None => {
                    accept(&from, &mut rcpts, String::from_utf8_lossy(&chunk).into());
                    "250 2.0.0 queued\r\n".into()
                }
            }
        } else if upper.starts_with("QUIT") {
            let _ = w.write_all(b"221 bye\r\n");
            return;
        } else {
            rcpts.clear();
            "250 ok\r\n".into()
        };
        if w.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
