//! A recording SMTP server on loopback that can be told to refuse,
//! temporarily or for good, and to be slow; to refuse the next recipients
//! one by one (`fail_next`); and to be down (`down`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// 451 to RCPT.
    Busy,
    /// 550 to RCPT.
    NoSuchUser,
}

/// One accepted message: (MAIL FROM line, RCPT TO line, data).
pub type Received = Arc<Mutex<Vec<(String, String, String)>>>;

/// One accepted message as its sender gave it: (reverse path, forward
/// path, message bytes with the dot-stuffing undone).
pub type Message = (String, Vec<String>, Vec<u8>);

pub struct Sink {
    pub addr: String,
    pub got: Received,
    /// Milliseconds to wait before answering the end of DATA.
    pub delay_ms: Arc<AtomicU64>,
    /// Replies for the next recipients, in order (across sessions), in
    /// place of the mode's answer.
    pub script: Arc<Mutex<VecDeque<String>>>,
    /// While true, a new session is greeted with 421 and closed, and an
    /// open one answers MAIL with 421 and closes: the relay is down.
    pub down: Arc<AtomicBool>,
}

#[derive(Clone)]
struct Control {
    record: Received,
    delay: Arc<AtomicU64>,
    script: Arc<Mutex<VecDeque<String>>>,
    down: Arc<AtomicBool>,
}

impl Sink {
    pub fn start(mode: Mode) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let control = Control {
            record: Arc::default(),
            delay: Arc::new(AtomicU64::new(0)),
            script: Arc::default(),
            down: Arc::default(),
        };
        let sink = Sink {
            addr,
            got: control.record.clone(),
            delay_ms: control.delay.clone(),
            script: control.script.clone(),
            down: control.down.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let control = control.clone();
                std::thread::spawn(move || session(stream, mode, control));
            }
        });
        sink
    }

    /// The next recipient (whichever session it comes in) gets `reply`,
    /// e.g. "451 4.3.0 try again" or "550 5.1.1 no such user".
    pub fn fail_next(&self, reply: &str) {
        self.script.lock().unwrap().push_back(reply.to_string());
    }

    /// Every accepted message, in the order the sink took them.
    pub fn messages(&self) -> Vec<Message> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(from, to, data)| {
                let raw: String = data
                    .split_inclusive("\r\n")
                    .map(|line| line.strip_prefix('.').unwrap_or(line))
                    .collect();
                (path(from), vec![path(to)], raw.into_bytes())
            })
            .collect()
    }

    /// Recipients (bare addresses) of messages whose envelope sender contains `from_part`.
    pub fn recipients(&self, from_part: &str) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(from, _, _)| from.contains(from_part))
            .map(|(_, to, _)| path(to))
            .collect()
    }
}

/// The bare address of a MAIL FROM or RCPT TO line.
fn path(line: &str) -> String {
    let s = line.split_once('<').map(|x| x.1).unwrap_or(line);
    s.split('>').next().unwrap().to_string()
}

const DOWN: &[u8] = b"421 4.3.2 sink down\r\n";

fn session(stream: std::net::TcpStream, mode: Mode, control: Control) {
    let Control {
        record,
        delay,
        script,
        down,
    } = control;
    let _ = stream.set_nodelay(true);
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    if down.load(Ordering::SeqCst) {
        let _ = w.write_all(DOWN);
        return;
    }
    let _ = w.write_all(b"220 sink ESMTP\r\n");
    let (mut from, mut to) = (String::new(), String::new());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
        } else if upper.starts_with("MAIL") && down.load(Ordering::SeqCst) {
            let _ = w.write_all(DOWN);
            return;
        } else if upper.starts_with("MAIL") {
            from = line.trim().to_string();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT") {
            to = line.trim().to_string();
            if let Some(reply) = script.lock().unwrap().pop_front() {
                if w.write_all(format!("{reply}\r\n").as_bytes()).is_err() {
                    return;
                }
                continue;
            }
            match mode {
                Mode::Accept => b"250 ok\r\n",
                Mode::Busy => b"451 4.3.0 try later\r\n",
                Mode::NoSuchUser => b"550 5.1.1 no such user\r\n",
            }
        } else if upper.starts_with("DATA") {
            let _ = w.write_all(b"354 go\r\n");
            let Some(data) = super::relay::read_data(&mut r) else {
                return;
            };
            let ms = delay.load(Ordering::SeqCst);
            if ms > 0 {
                std::thread::sleep(Duration::from_millis(ms));
            }
            record
                .lock()
                .unwrap()
                .push((from.clone(), to.clone(), data));
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = w.write_all(b"221 bye\r\n");
            return;
        } else {
            b"250 ok\r\n"
        };
        if w.write_all(reply).is_err() {
            return;
        }
    }
}
