//! A recording SMTP server on loopback that can be told to refuse,
//! temporarily or for good, and to be slow.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
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

pub struct Sink {
    pub addr: String,
    pub got: Received,
    /// Milliseconds to wait before answering the end of DATA.
    pub delay_ms: Arc<AtomicU64>,
}

impl Sink {
    pub fn start(mode: Mode) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let got: Received = Arc::default();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (record, delay) = (got.clone(), delay_ms.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (record, delay) = (record.clone(), delay.clone());
                std::thread::spawn(move || session(stream, mode, record, delay));
            }
        });
        Sink {
            addr,
            got,
            delay_ms,
        }
    }

    /// Recipients (bare addresses) of messages whose envelope sender contains `from_part`.
    pub fn recipients(&self, from_part: &str) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(from, _, _)| from.contains(from_part))
            .map(|(_, to, _)| {
                let s = to.split_once('<').map(|x| x.1).unwrap_or(to);
                s.split('>').next().unwrap().to_string()
            })
            .collect()
    }
}

fn session(stream: std::net::TcpStream, mode: Mode, record: Received, delay: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
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
        } else if upper.starts_with("MAIL") {
            from = line.trim().to_string();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT") {
            to = line.trim().to_string();
            match mode {
                Mode::Accept => b"250 ok\r\n",
                Mode::Busy => b"451 4.3.0 try later\r\n",
                Mode::NoSuchUser => b"550 5.1.1 no such user\r\n",
            }
        } else if upper.starts_with("DATA") {
            let _ = w.write_all(b"354 go\r\n");
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
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
