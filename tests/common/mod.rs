//! Test harness: the real `utskick` binary on loopback ports in a temporary
//! directory, a small SMTP/LMTP client that speaks the wire protocol, and a
//! reader for the file outbox.
#![allow(dead_code)]

pub mod admin;
pub mod discussion;
pub mod http;
pub mod in_process;
pub mod layouts;
pub mod relay;
pub mod reports;
pub mod round;
pub mod sink;
pub mod webdriver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DOMAIN: &str = "lista.example.se";

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub smtp: String,
    pub http: String,
    /// The `[metrics]` listener (`/metrics`).
    pub metrics: String,
    pub seen: std::collections::HashSet<PathBuf>,
    /// The daemon's last ready line, as printed.
    pub ready: String,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_utskick")
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

impl Daemon {
    /// Starts a daemon with `extra` appended to its configuration.
    pub fn start(extra: &str) -> Daemon {
        let mut d = Daemon::prepare(extra);
        d.spawn();
        d
    }

    /// Writes the configuration of `start` into a fresh directory, without
    /// starting anything (for the CLI alone, or `spawn_with`).
    pub fn prepare(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "domain = \"{DOMAIN}\"\nbase_url = \"https://lista.example.se\"\ndata_dir = \"{data}\"\nlists_dir = \"{lists}\"\ntemplates_dir = \"{templates}\"\n{extra}\n",
            data = dir.path().join("data").display(),
            lists = repo("lists").display(),
            templates = repo("templates").display(),
        );
        let config = if config.contains("[inbound]") {
            config
        } else {
            format!("{config}\n[inbound]\nlisten = \"127.0.0.1:0\"\n")
        };
        let config = if config.contains("[http]") {
            config
        } else {
            format!("{config}\n[http]\nlisten = \"127.0.0.1:0\"\n")
        };
        let config = if config.contains("[metrics]") {
            config
        } else {
            format!("{config}\n[metrics]\nlisten = \"127.0.0.1:0\"\n")
        };
        std::fs::write(dir.path().join("utskick.toml"), config).unwrap();
        Daemon {
            dir,
            child: None,
            smtp: String::new(),
            http: String::new(),
            metrics: String::new(),
            seen: Default::default(),
            ready: String::new(),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("utskick.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// (Re)starts the process and waits for its ready line.
    pub fn spawn(&mut self) {
        self.spawn_with(|_| {});
    }

    /// `spawn`, with `customize` applied to the command first (say, a
    /// `pre_exec` that lowers a resource limit).
    pub fn spawn_with(&mut self, customize: impl FnOnce(&mut Command)) {
        let mut command = Command::new(bin());
        command
            .arg("--config")
            .arg(self.config_path())
            .arg("serve")
            .env("RUST_LOG", "utskick=debug")
            // No test asks the DNS for a DMARC policy: the stub file (no
            // policy for any domain unless a test writes one) answers.
            .env(
                "UTSKICK_DMARC_STUB_FILE",
                self.dir.path().join("dmarc-stub.txt"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("daemon.log"))
                    .unwrap(),
            ));
        customize(&mut command);
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("utskick ready"),
            "daemon did not start: {line:?}\n{}",
            self.log()
        );
        // "utskick ready: smtp on A, http on B, metrics on C, lists: …"
        let after = |key: &str| {
            let rest = &line[line.find(key).unwrap() + key.len()..];
            rest.split([',', ' ']).next().unwrap().to_string()
        };
        self.smtp = after(" on ");
        self.http = after("http on ");
        self.metrics = after("metrics on ");
        self.ready = line.trim_end().to_string();
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        c.wait().unwrap()
    }

    /// The CLI in English (`LANG=C`, whatever the machine's locale), as
    /// the tests read its lines.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_in("C", args)
    }

    /// The CLI with `LANG=lang` (and no `LC_ALL` or `LC_MESSAGES`).
    pub fn cli_in(&self, lang: &str, args: &[&str]) -> std::process::Output {
        Command::new(bin())
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("LANG", lang)
            .output()
            .unwrap()
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "utskick {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn subscribers(&self, list: &str) -> Vec<serde_json::Value> {
        let out = self.cli_ok(&["subscribers", list, "--format", "json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
    }

    pub fn status_of(&self, list: &str, email: &str) -> Option<String> {
        self.subscribers(list)
            .into_iter()
            .find(|s| s["email"] == email)
            .map(|s| s["status"].as_str().unwrap().to_string())
    }

    pub fn smtp(&self) -> Client {
        Client::connect(&self.smtp)
    }

    /// Sends one message over SMTP and returns the final reply.
    pub fn send(&self, from: &str, to: &str, message: &str) -> String {
        let mut c = self.smtp();
        c.ehlo();
        let r = c.transaction(from, &[to], message);
        c.quit();
        r
    }

    fn outbox(&self) -> PathBuf {
        self.data().join("outbox")
    }

    /// The outbox's complete mails not returned before, with their times.
    fn fresh_paths(&self) -> Vec<(std::time::SystemTime, PathBuf)> {
        std::fs::read_dir(self.outbox())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .filter(|p| !self.seen.contains(p))
                    // The file transport writes the .eml, then the .json:
                    // a complete .json means a complete pair.
                    .filter(|p| {
                        std::fs::read(p).ok().is_some_and(|b| {
                            serde_json::from_slice::<serde_json::Value>(&b).is_ok()
                        })
                    })
                    .map(|p| (std::fs::metadata(&p).unwrap().modified().unwrap(), p))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every mail that arrived since the last look, by arrival; waits for none.
    pub fn fresh_mails(&mut self) -> Vec<Mail> {
        let mut fresh = self.fresh_paths();
        fresh.sort();
        let mails = fresh.iter().map(|(_, p)| Mail::read(p)).collect();
        for (_, p) in fresh {
            self.seen.insert(p);
        }
        mails
    }

    /// Waits for `n` mails not returned before, and returns them by arrival.
    pub fn wait_mails(&mut self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut fresh = self.fresh_paths();
            if fresh.len() >= n {
                fresh.sort();
                let mails: Vec<Mail> = fresh.iter().map(|(_, p)| Mail::read(p)).collect();
                for (_, p) in fresh {
                    self.seen.insert(p);
                }
                assert_eq!(
                    mails.len(),
                    n,
                    "more mails than expected: {:#?}",
                    mails
                        .iter()
                        .map(|m| (&m.to, &m.subject))
                        .collect::<Vec<_>>()
                );
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n} mails, have {}\n{}",
                fresh.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Asserts that no new mail arrives: sends a sentinel subscribe request
    /// from a fresh address and checks that its answer is the only new mail.
    pub fn assert_no_new_mail_except_sentinel(&mut self, sentinel: &str) {
        let r = self.send(
            sentinel,
            &format!("lokal-finansiering-subscribe@{DOMAIN}"),
            &plain(
                sentinel,
                &format!("lokal-finansiering-subscribe@{DOMAIN}"),
                "subscribe",
                "",
            ),
        );
        assert!(r.starts_with("250"), "{r}");
        let mails = self.wait_mails(1);
        assert_eq!(
            mails[0].to, sentinel,
            "an unexpected mail went out: {:?}",
            mails[0].subject
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One mail from the file outbox.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub reverse_path: Option<String>,
    pub subject: String,
    pub reply_to: String,
    pub raw: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    fn read(json: &Path) -> Mail {
        let env: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
        let eml = json.with_extension("eml");
        let raw = std::fs::read(&eml).unwrap();
        let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let reply_to = msg
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string();
        Mail {
            to: env["forward_path"][0].as_str().unwrap().to_string(),
            reverse_path: env["reverse_path"].as_str().map(str::to_string),
            subject: msg.subject().unwrap_or_default().to_string(),
            reply_to,
            text: msg.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
            html: msg.body_html(0).map(|t| t.to_string()).unwrap_or_default(),
            raw: String::from_utf8_lossy(&raw).to_string(),
        }
    }

    /// The token of a confirmation mail: the part after '+' in Reply-To.
    pub fn token(&self) -> String {
        let local = self.reply_to.split('@').next().unwrap();
        local
            .split_once('+')
            .expect("a token in Reply-To")
            .1
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        header_in(&self.raw, name)
    }
}

/// The first header field `name` of the message `raw`, unfolded.
pub fn header_in(raw: &str, name: &str) -> Option<String> {
    let head = &raw[..raw.find("\r\n\r\n").unwrap_or(raw.len())];
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim().to_string())
}

/// A plain message.
pub fn plain(from: &str, to: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@test.example>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        rand_id()
    )
}

pub fn rand_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A line-oriented SMTP/LMTP client over a real socket.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub greeting: String,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = Client {
            stream,
            reader,
            greeting: String::new(),
        };
        c.greeting = c.reply();
        c
    }

    /// Reads one (possibly multi-line) reply; returns its lines joined by '\n'.
    pub fn reply(&mut self) -> String {
        let mut all = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            if n == 0 {
                all.push("<closed>".to_string());
                break;
            }
            let line = line.trim_end().to_string();
            let more = line.as_bytes().get(3) == Some(&b'-');
            all.push(line);
            if !more {
                break;
            }
        }
        all.join("\n")
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    pub fn ehlo(&mut self) -> String {
        let r = self.cmd("EHLO client.example");
        assert!(r.starts_with("250"), "{r}");
        r
    }

    /// MAIL, RCPT…, DATA, message; returns the reply to the message (SMTP).
    pub fn transaction(&mut self, from: &str, to: &[&str], message: &str) -> String {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        if !r.starts_with("250") {
            return r;
        }
        let mut any = false;
        let mut last = String::new();
        for rcpt in to {
            last = self.cmd(&format!("RCPT TO:<{rcpt}>"));
            any |= last.starts_with("250");
        }
        if !any {
            self.cmd("RSET");
            return last;
        }
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "{r}");
        self.send_raw(&dot_stuff(message));
        self.reply()
    }

    pub fn quit(&mut self) {
        let _ = self.stream.write_all(b"QUIT\r\n");
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
    }
}

/// The message as DATA wants it: CRLF line ends, leading dots doubled, and the terminator.
pub fn dot_stuff(message: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in message.replace("\r\n", "\n").split('\n') {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    while out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    out.push_str(".\r\n");
    out.into_bytes()
}
