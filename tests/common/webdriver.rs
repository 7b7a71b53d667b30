//! A small W3C WebDriver client for the browser test: chromedriver on a free
//! loopback port, spoken to in JSON over HTTP/1.1 on a plain `TcpStream`.
//! Only the handful of commands the test needs; no WebDriver crate (that
//! would bring hyper and a TLS stack into the build for a few calls).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key W3C WebDriver uses for an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The browser binary: `UTSKICK_CHROMIUM`, or Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("UTSKICK_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM))
}

/// The driver binary: `UTSKICK_CHROMEDRIVER`, or Debian's `/usr/bin/chromedriver`.
pub fn chromedriver_path() -> PathBuf {
    std::env::var_os("UTSKICK_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMEDRIVER))
}

/// Panics with an install hint unless both binaries exist: a browser test
/// that was asked to run must never pass by doing nothing.
pub fn require_browser() {
    let missing: Vec<String> = [chromium_path(), chromedriver_path()]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "the browser test needs chromium and chromedriver, missing: {}\n\
         install them with: apt-get update && apt-get install -y chromium chromium-driver\n\
         (or run .ci/browser.sh; UTSKICK_CHROMIUM / UTSKICK_CHROMEDRIVER override the paths)",
        missing.join(", ")
    );
}

/// An error answer from the driver (`{"value": {"error": ..., "message": ...}}`).
#[derive(Debug, Clone)]
pub struct WdError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebDriver {} {}: {}",
            self.status, self.error, self.message
        )
    }
}

/// A reference to an element in the current page.
#[derive(Debug, Clone)]
pub struct Element(pub String);

/// A chromedriver process with one headless Chromium session. Dropping it
/// deletes the session and kills the driver.
pub struct Browser {
    driver: Option<Child>,
    addr: String,
    session: Option<String>,
    /// The browser profile and the driver's log.
    pub dir: tempfile::TempDir,
    /// Where [`Browser::screenshot`] writes, and where a failing test leaves
    /// `failure.png` and `failure.html`.
    pub screenshots: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session.
    pub fn start(screenshots: &Path) -> Browser {
        require_browser();
        std::fs::create_dir_all(screenshots).unwrap();
        // A failure of an earlier run must not look like one of this run.
        for stale in ["failure.png", "failure.html"] {
            let _ = std::fs::remove_file(screenshots.join(stale));
        }
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = dir.path().join("chromedriver.log");
        let child = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver_path().display()));
        let mut b = Browser {
            driver: Some(child),
            addr: format!("127.0.0.1:{port}"),
            session: None,
            dir,
            screenshots: screenshots.to_path_buf(),
        };
        b.wait_ready();
        b.new_session();
        b
    }

    fn driver_log(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        // The end is what matters.
        let start = log.len().saturating_sub(4000);
        let start = (start..log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(0);
        log[start..].to_string()
    }

    /// Polls `GET /status` until the driver says it is ready.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(c) = self.driver.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "chromedriver exited at start ({status})\n{}",
                        self.driver_log()
                    );
                }
            }
            if let Ok((200, v)) = http(&self.addr, "GET", "/status", None) {
                if v["value"]["ready"] == true {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not get ready on {}\n{}",
                self.addr,
                self.driver_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn new_session(&mut self) {
        let profile = self.dir.path().join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-quic".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--window-size=1280,1000".to_string(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {
                        "binary": chromium_path().display().to_string(),
                        "args": args,
                    }
                }
            }
        });
        let v = self
            .raw("POST", "/session", Some(caps))
            .unwrap_or_else(|e| {
                panic!("cannot open a browser session: {e}\n{}", self.driver_log())
            });
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_string();
        self.session = Some(id);
        // Navigation and element look-ups: generous, but not forever.
        self.cmd(
            "POST",
            "/timeouts",
            Some(json!({"pageLoad": 30_000, "script": 10_000, "implicit": 0})),
        )
        .unwrap();
    }

    /// One request to the driver; the `value` of the answer, or its error.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let (status, v) = http(&self.addr, method, path, body.as_ref()).map_err(|e| WdError {
            status: 0,
            error: "transport".into(),
            message: format!("{method} {path}: {e}"),
        })?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if status != 200 {
            return Err(WdError {
                status,
                error: value["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_string(),
                message: value["message"]
                    .as_str()
                    .unwrap_or(&v.to_string())
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            });
        }
        Ok(value)
    }

    /// A command in the session: `path` is relative to `/session/{id}`.
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let id = self.session.as_deref().expect("a session");
        self.raw(method, &format!("/session/{id}{path}"), body)
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.cmd(method, path, body)
            .unwrap_or_else(|e| panic!("{e} (at {})", self.url_or_unknown()))
    }

    /// Opens `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    pub fn current_url(&self) -> String {
        self.ok("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn url_or_unknown(&self) -> String {
        self.cmd("GET", "/url", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "<unknown url>".into())
    }

    pub fn title(&self) -> String {
        self.ok("GET", "/title", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The page's HTML as the browser has it now.
    pub fn source(&self) -> String {
        self.ok("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The first element matching the CSS selector, if any (no waiting).
    pub fn try_find(&self, css: &str) -> Option<Element> {
        match self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        ) {
            Ok(v) => Some(Element(
                v[ELEMENT_KEY]
                    .as_str()
                    .unwrap_or_else(|| panic!("no element reference in {v}"))
                    .to_string(),
            )),
            Err(e) if e.error == "no such element" => None,
            // The document is being replaced under the look-up: try again.
            Err(e) if e.error == "stale element reference" || e.error == "unknown error" => None,
            Err(e) => panic!("find {css:?}: {e}"),
        }
    }

    /// Every element matching the CSS selector (no waiting).
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.ok(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str())
                    .map(|s| Element(s.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for an element matching `css`.
    pub fn wait_for_within(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            if Instant::now() >= deadline {
                let src = self.source();
                let start = src.find("<body").unwrap_or(0);
                let end = (start + 3000).min(src.len());
                let end = (end..src.len())
                    .find(|i| src.is_char_boundary(*i))
                    .unwrap_or(src.len());
                panic!(
                    "no element {css:?} after {timeout:?} at {}\n{}",
                    self.url_or_unknown(),
                    &src[start..end]
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to 10 s for an element matching `css`.
    pub fn wait_for(&self, css: &str) -> Element {
        self.wait_for_within(css, Duration::from_secs(10))
    }

    /// Waits up to 10 s until the current URL satisfies `pred`.
    pub fn wait_url(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.current_url();
            if pred(&url) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "the browser did not reach {what}; it is at {url}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, e: &Element) {
        self.ok("POST", &format!("/element/{}/click", e.0), Some(json!({})));
    }

    /// Clicks something that loads a new page (a submit button, a link) and
    /// waits up to 10 s until the old document is gone. A POST may answer at
    /// the same URL, so the URL alone cannot tell; the old `<html>` element
    /// turning stale can.
    pub fn click_and_wait_for_new_page(&self, e: &Element) {
        let old = self.wait_for("html");
        self.click(e);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = None;
        loop {
            match self.cmd("GET", &format!("/element/{}/name", old.0), None) {
                // Chromium says "stale element reference", or, caught in the
                // middle of the swap, an inspector error that the node "does
                // not belong to the document"; a driver that no longer knows
                // the reference at all says "no such element".
                Err(e)
                    if e.error == "stale element reference"
                        || e.error == "no such element"
                        || e.message.contains("does not belong to the document") =>
                {
                    break
                }
                Err(e) if e.status == 0 => panic!("waiting for a new page: {e}"),
                Err(e) => last = Some(e),
                Ok(_) => {}
            }
            assert!(
                Instant::now() < deadline,
                "the click did not load a new page; still at {} (last error: {last:?})",
                self.url_or_unknown()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // And the new one has loaded.
        self.wait_for("body");
    }

    /// Types `text` into the element (W3C "Element Send Keys").
    pub fn send_keys(&self, e: &Element, text: &str) {
        self.ok(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    pub fn clear(&self, e: &Element) {
        self.ok("POST", &format!("/element/{}/clear", e.0), Some(json!({})));
    }

    /// The element's rendered text.
    pub fn text(&self, e: &Element) -> String {
        self.ok("GET", &format!("/element/{}/text", e.0), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// An attribute as written in the HTML (None when absent).
    pub fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.ok("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .as_str()
            .map(str::to_string)
    }

    /// A DOM property, e.g. `value` of an input.
    pub fn property(&self, e: &Element, name: &str) -> Value {
        self.ok("GET", &format!("/element/{}/property/{name}", e.0), None)
    }

    pub fn displayed(&self, e: &Element) -> bool {
        self.ok("GET", &format!("/element/{}/displayed", e.0), None) == true
    }

    /// The text of the whole page (`body`).
    pub fn body_text(&self) -> String {
        let body = self.wait_for("body");
        self.text(&body)
    }

    /// A PNG of the viewport.
    pub fn screenshot_png(&self) -> Vec<u8> {
        let v = self.ok("GET", "/screenshot", None);
        data_encoding::BASE64
            .decode(v.as_str().expect("base64 screenshot").as_bytes())
            .expect("a base64 screenshot")
    }

    /// Saves a PNG of the viewport as `name` in the screenshot folder.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.screenshot_png();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        let path = self.screenshots.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page
    /// and returns what it returns. Through the driver, so the page's CSP
    /// does not apply to it.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.ok(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Like [`Browser::execute`], for a script that ends by calling its
    /// last argument (the callback) with the result.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.ok(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.ok(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    /// Lays the page out as a screen `width` × `height` CSS pixels would
    /// (a phone when `mobile`: the viewport meta tag applies).
    pub fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// Presses and releases one key (W3C key codes, e.g. `\u{E004}` for Tab).
    pub fn press(&self, key: &str) {
        self.ok(
            "POST",
            "/actions",
            Some(json!({"actions": [{
                "type": "key",
                "id": "keyboard",
                "actions": [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}],
            }]})),
        );
        let _ = self.cmd("DELETE", "/actions", None);
    }

    pub fn delete_session(&mut self) {
        if let Some(id) = self.session.take() {
            let _ = self.raw("DELETE", &format!("/session/{id}"), None);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && self.session.is_some() {
            // Leave the evidence of a failure beside the screenshots.
            if let Ok(v) = self.cmd("GET", "/screenshot", None) {
                if let Some(png) = v
                    .as_str()
                    .and_then(|s| data_encoding::BASE64.decode(s.as_bytes()).ok())
                {
                    let _ = std::fs::write(self.screenshots.join("failure.png"), png);
                }
            }
            if let Ok(v) = self.cmd("GET", "/source", None) {
                if let Some(s) = v.as_str() {
                    let _ = std::fs::write(self.screenshots.join("failure.html"), s);
                }
            }
            eprintln!(
                "browser failure: see failure.png and failure.html in {}",
                self.screenshots.display()
            );
        }
        self.delete_session();
        if let Some(mut c) = self.driver.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 exchange with a JSON body (`Connection: close`); the status
/// and the parsed JSON answer (`Null` for an empty body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if body.is_some() || method == "POST" {
        req.push_str("Content-Type: application/json; charset=utf-8\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", payload.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(payload.as_bytes())?;
    s.flush()?;

    // chromedriver keeps the connection open whatever the request says: read
    // the header, then exactly Content-Length bytes (or the chunks).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(bad(format!(
                "connection closed in the header after {} bytes",
                raw.len()
            )));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut rest = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("bad status line: {head:?}")))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            if let Some(body) = dechunk(&rest) {
                rest = body;
                break;
            }
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(bad("connection closed in a chunked body".into()));
            }
            rest.extend_from_slice(&buf[..n]);
        }
    } else if let Some(n) = header("content-length").and_then(|n| n.parse::<usize>().ok()) {
        while rest.len() < n {
            let got = s.read(&mut buf)?;
            if got == 0 {
                return Err(bad(format!("short body: {} of {n} bytes", rest.len())));
            }
            rest.extend_from_slice(&buf[..got]);
        }
        rest.truncate(n);
    } else {
        s.read_to_end(&mut rest)?;
    }
    let value = if rest.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&rest).map_err(|e| {
            bad(format!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&rest[..rest.len().min(300)])
            ))
        })?
    };
    Ok((status, value))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}
