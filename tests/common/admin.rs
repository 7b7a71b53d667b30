//! The leader's workspace over HTTP, for the tests that sign in and post
//! forms: one request per connection, the mailed sign-in link, the
//! forms' `csrf` field.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{Daemon, Mail};

/// One answer: status, the header block, the body.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head
            .lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|l| l[name.len() + 1..].trim().to_string())
    }
}

/// A raw request over a fresh connection: `extra` header lines (each
/// ending in CRLF), the session cookie and an urlencoded form when given.
pub fn call_to(
    addr: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
    extra: &str,
) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: utskick_session={c}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Answer {
        status,
        head: head.to_string(),
        body,
    }
}

pub fn call(
    d: &Daemon,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Answer {
    call_to(&d.http, method, path, cookie, form, "")
}

pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest.get(n + 2..).unwrap_or("");
    }
    out
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The login link's token from the mail in the outbox.
pub fn link_token(mail: &Mail) -> String {
    let at = mail
        .text
        .find("/admin/login/")
        .expect("a login link in the mail");
    mail.text[at + "/admin/login/".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The `csrf` field of a page's forms.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field");
    page[at + 19..].split('"').next().unwrap().to_string()
}

/// Signs `owner` in through the mailed link; returns the session id.
pub fn sign_in_as(d: &mut Daemon, owner: &str) -> String {
    let r = call(
        d,
        "POST",
        "/admin/login",
        None,
        Some(&format!("email={}", enc(owner))),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mails = d.wait_mails(1);
    assert_eq!(mails[0].to, owner);
    let token = link_token(&mails[0]);
    let r = call(d, "POST", &format!("/admin/login/{token}"), None, None);
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie");
    cookie
        .split(';')
        .next()
        .unwrap()
        .trim()
        .strip_prefix("utskick_session=")
        .unwrap()
        .to_string()
}
