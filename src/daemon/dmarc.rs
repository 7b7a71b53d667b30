//! Does an author's domain publish DMARC `p=reject` or `p=quarantine`?
//! Asked once per discussion post when `from_rewrite = "dmarc"` (issue 16):
//! then the copies go out `From:` the list, or the members' providers
//! would refuse them.
//!
//! One TXT query for `_dmarc.DOMAIN` over UDP to the first `nameserver`
//! of `/etc/resolv.conf`, with a timeout and a cache; when the domain has
//! no record, the organisational domain's (its last two labels, `sp=`
//! before `p=`). A look-up that fails or times out counts as strict:
//! rewriting a From costs a little cosmetics, not rewriting one that
//! needed it costs the delivery.
//!
//! Tests never reach the DNS: `UTSKICK_DMARC_STUB_FILE` names a file of
//! `domain policy` lines (`example.org reject`) read instead, and a domain
//! not in it has no policy. It is for tests only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one look-up may take.
pub const DMARC_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an answer is kept.
pub const DMARC_CACHE: Duration = Duration::from_secs(3600);
/// How long a failed look-up is kept (as strict).
const FAILED_CACHE: Duration = Duration::from_secs(300);
/// Domains in the cache at most; it is emptied when full.
const CACHE_MAX: usize = 10_000;
/// The environment variable that names a test's stub file.
pub const STUB_ENV: &str = "UTSKICK_DMARC_STUB_FILE";

pub struct Dmarc {
    stub: Option<HashMap<String, bool>>,
    cache: Mutex<HashMap<String, (bool, Instant)>>,
}

impl Default for Dmarc {
    fn default() -> Dmarc {
        Dmarc::from_env()
    }
}

/// Is a DMARC policy value strict enough that the From must change?
fn strict_policy(p: &str) -> bool {
    let p = p.trim().to_ascii_lowercase();
    p == "reject" || p == "quarantine"
}

impl Dmarc {
    /// The real DNS, or the stub file `UTSKICK_DMARC_STUB_FILE` names.
    pub fn from_env() -> Dmarc {
        let stub = std::env::var_os(STUB_ENV).map(|path| {
            std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    Some((w.next()?.to_ascii_lowercase(), strict_policy(w.next()?)))
                })
                .collect()
        });
        Dmarc {
            stub,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Does `domain` publish `p=reject` or `p=quarantine`?
    pub async fn strict(&self, domain: &str) -> bool {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Some(stub) = &self.stub {
            return stub.get(&domain).copied().unwrap_or(false);
        }
        if let Some((strict, until)) = self.cache.lock().ok().and_then(|c| c.get(&domain).copied())
        {
            if until > Instant::now() {
                return strict;
            }
        }
        let (strict, keep) = match lookup(&domain).await {
            Some(strict) => (strict, DMARC_CACHE),
            None => (true, FAILED_CACHE),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(domain, (strict, Instant::now() + keep));
        }
        strict
    }
}

/// The policy of `domain` or of its organisational domain; None when the
/// DNS did not answer.
async fn lookup(domain: &str) -> Option<bool> {
    if let Some(policy) = record(&format!("_dmarc.{domain}")).await? {
        return Some(strict_policy(&tag(&policy, "p").unwrap_or_default()));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() > 2 {
        let org = labels[labels.len() - 2..].join(".");
        if let Some(policy) = record(&format!("_dmarc.{org}")).await? {
            let p = tag(&policy, "sp").or_else(|| tag(&policy, "p"));
            return Some(strict_policy(&p.unwrap_or_default()));
        }
    }
    Some(false)
}

fn tag(record: &str, name: &str) -> Option<String> {
    record.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
    })
}

/// The `v=DMARC1` TXT record at `name`: Some(None) when there is none,
/// None when the DNS did not answer in time.
async fn record(name: &str) -> Option<Option<String>> {
    let server = std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("nameserver"))
                    .then(|| w.next().map(str::to_string))
                    .flatten()
            })
        })
        .unwrap_or_else(|| "127.0.0.1".into());
    let addr: std::net::IpAddr = server.parse().ok()?;
    record_at(std::net::SocketAddr::new(addr, 53), name).await
}

/// [`record`], asking the server at `target`.
async fn record_at(target: std::net::SocketAddr, name: &str) -> Option<Option<String>> {
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let id: u16 = rand::random();
    let query = query(id, name)?;
    let answer = tokio::time::timeout(DMARC_TIMEOUT, async {
        let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
        socket.send_to(&query, target).await.ok()?;
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.ok()?;
            if from == target && n >= 12 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                return Some(buf[..n].to_vec());
            }
        }
    })
    .await
    .ok()??;
    parse_txt(&answer)
}

/// A recursive TXT query for `name`.
fn query(id: u16, name: &str) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        if label.len() > 63 {
            return None;
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 16, 0, 1]);
    Some(q)
}

/// Skips a (possibly compressed) name at `at`; the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)? as usize;
        if len == 0 {
            return Some(at + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        at += 1 + len;
    }
}

/// The DMARC record among a response's TXT answers. NXDOMAIN and an
/// empty answer are "none" (Some(None)); a server failure is None.
fn parse_txt(msg: &[u8]) -> Option<Option<String>> {
    let rcode = msg.get(3)? & 0x0f;
    match rcode {
        0 => {}
        3 => return Some(None),
        _ => return None,
    }
    let qd = u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]) as usize;
    let an = u16::from_be_bytes([*msg.get(6)?, *msg.get(7)?]) as usize;
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(msg, at)? + 4;
    }
    for _ in 0..an {
        at = skip_name(msg, at)?;
        let rtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
        let len = u16::from_be_bytes([*msg.get(at + 8)?, *msg.get(at + 9)?]) as usize;
        let data = msg.get(at + 10..at + 10 + len)?;
        at += 10 + len;
        if rtype != 16 {
            continue;
        }
        let mut text = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let n = data[i] as usize;
            text.extend_from_slice(data.get(i + 1..i + 1 + n)?);
            i += 1 + n;
        }
        let text = String::from_utf8_lossy(&text).to_string();
        if text
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("v=dmarc1")
        {
            return Some(Some(text));
        }
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txt_answer_is_read() {
        // A response to `_dmarc.x.se TXT` with one answer, its name
        // compressed to the question's.
        let mut r = query(7, "_dmarc.x.se").unwrap();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        let txt = b"v=DMARC1; p=reject; rua=mailto:a@x.se";
        r.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, (txt.len() + 1) as u8]);
        r.push(txt.len() as u8);
        r.extend_from_slice(txt);
        let record = parse_txt(&r).unwrap().unwrap();
        assert_eq!(tag(&record, "p").as_deref(), Some("reject"));
        assert!(strict_policy("Quarantine"));
        assert!(!strict_policy("none"));
        let mut nx = query(7, "_dmarc.x.se").unwrap();
        nx[3] = 0x83;
        assert_eq!(parse_txt(&nx), Some(None));
    }

    /// The query goes out over UDP and the answer to its id is read; a
    /// server that stays silent is a timeout (None), not a policy.
    #[tokio::test]
    async fn a_resolver_on_loopback_answers_and_a_silent_one_times_out() {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let mut r = buf[..n].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[7] = 1;
            let txt = b"v=DMARC1; p=quarantine";
            r.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, (txt.len() + 1) as u8]);
            r.push(txt.len() as u8);
            r.extend_from_slice(txt);
            server.send_to(&r, from).await.unwrap();
        });
        let record = record_at(at, "_dmarc.example.org").await.unwrap().unwrap();
        assert_eq!(tag(&record, "p").as_deref(), Some("quarantine"));
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let t = std::time::Instant::now();
        assert_eq!(
            record_at(silent.local_addr().unwrap(), "_dmarc.x.se").await,
            None
        );
        assert!(t.elapsed() >= DMARC_TIMEOUT);
    }
}
