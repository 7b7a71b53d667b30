//! Does an author's domain publish DMARC `p=reject` or `p=quarantine`?
//! Asked once per discussion post when `from_rewrite = "dmarc"` (issue 16):
//! then the copies go out `From:` the list, or the members' providers
//! would refuse them.
//!
//! One TXT query for `_dmarc.DOMAIN` through hickory-resolver (the
//! system's resolvers, from `/etc/resolv.conf`), with a timeout and a
//! cache of our own; when the domain has
//! no record, the organisational domain's (by the Public Suffix List,
//! `sp=` before `p=`). A look-up that fails or times out counts as strict:
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

/// The warning a daemon (and `utskick check`) gives when it runs on the
/// test-only stub, or None when the real DNS decides.
pub fn stub_warning() -> Option<String> {
    std::env::var_os(STUB_ENV).map(|path| {
        format!(
            "{STUB_ENV} is set ({}): DMARC policies come from that test stub, not the DNS; every domain not in it counts as having no policy, so no From is rewritten for it. Unset it outside tests.",
            std::path::Path::new(&path).display()
        )
    })
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
    if let Some(org) = organisational(domain).filter(|o| *o != domain) {
        if let Some(policy) = record(&format!("_dmarc.{org}")).await? {
            let p = tag(&policy, "sp").or_else(|| tag(&policy, "p"));
            return Some(strict_policy(&p.unwrap_or_default()));
        }
    }
    Some(false)
}

/// The organisational domain (RFC 7489 §3.2): the public suffix and one
/// label more, by the Public Suffix List (`lista.example.co.uk` →
/// `example.co.uk`, not `co.uk`).
fn organisational(domain: &str) -> Option<&str> {
    psl::domain_str(domain)
}

fn tag(record: &str, name: &str) -> Option<String> {
    record.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
    })
}

/// The `v=DMARC1` TXT record at `name`: Some(None) when there is none,
/// None when the DNS did not answer in time. Asked of the system's
/// resolvers (`/etc/resolv.conf`).
async fn record(name: &str) -> Option<Option<String>> {
    let builder = hickory_resolver::Resolver::builder_tokio().ok()?;
    let resolver = builder.with_options(options()).build();
    txt_record(&resolver, name).await
}

/// One try, [`DMARC_TIMEOUT`] for it, no cache of hickory's own (ours
/// keeps answers per domain).
fn options() -> hickory_resolver::config::ResolverOpts {
    let mut opts = hickory_resolver::config::ResolverOpts::default();
    opts.timeout = DMARC_TIMEOUT;
    opts.attempts = 1;
    opts.cache_size = 0;
    opts
}

/// [`record`], asking the server at `target` (over UDP).
/// [`record`], asking the server at `target` (over UDP).
#[cfg(test)]
async fn record_at(target: std::net::SocketAddr, name: &str) -> Option<Option<String>> {
    use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
    let servers = NameServerConfigGroup::from_ips_clear(&[target.ip()], target.port(), true);
    let config = ResolverConfig::from_parts(None, vec![], servers);
    let resolver = hickory_resolver::Resolver::builder_with_config(
        config,
        hickory_resolver::name_server::TokioConnectionProvider::default(),
    )
    .with_options(options())
    .build();
    txt_record(&resolver, name).await
}

/// The DMARC record among the TXT answers for `name`, within the timeout.
/// No such name, or no TXT record, is "none" (Some(None)); a server
/// failure or a timeout is None.
async fn txt_record(
    resolver: &hickory_resolver::TokioResolver,
    name: &str,
) -> Option<Option<String>> {
    // The absolute name: no search domains of resolv.conf appended.
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let lookup = tokio::time::timeout(DMARC_TIMEOUT, resolver.txt_lookup(fqdn)).await;
    match lookup {
        Err(_) => None,
        Ok(Err(e)) if e.is_no_records_found() => Some(None),
        Ok(Err(_)) => None,
        Ok(Ok(answer)) => Some(answer.iter().find_map(|txt| {
            let text: String = txt
                .txt_data()
                .iter()
                .map(|part| String::from_utf8_lossy(part))
                .collect();
            text.trim_start()
                .to_ascii_lowercase()
                .starts_with("v=dmarc1")
                .then_some(text)
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_organisational_domain_follows_the_public_suffix_list() {
        assert_eq!(organisational("lista.example.co.uk"), Some("example.co.uk"));
        assert_eq!(organisational("mail.example.se"), Some("example.se"));
        assert_eq!(organisational("example.se"), Some("example.se"));
    }

    #[test]
    fn policies_and_tags_are_read() {
        let record = "v=DMARC1; p=reject; sp=none; rua=mailto:a@x.se";
        assert_eq!(tag(record, "p").as_deref(), Some("reject"));
        assert_eq!(tag(record, "SP").as_deref(), Some("none"));
        assert!(strict_policy("Quarantine"));
        assert!(!strict_policy("none"));
    }

    /// A DNS server on loopback: answers each TXT question with `txt`
    /// (or with NXDOMAIN when `txt` is None), or stays silent.
    async fn server(txt: Option<&'static [u8]>, silent: bool) -> std::net::SocketAddr {
        let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, from)) = server.recv_from(&mut buf).await else {
                    return;
                };
                if silent {
                    continue;
                }
                // The question: the name's labels, then type and class.
                let mut end = 12;
                while buf[end] != 0 {
                    end += 1 + buf[end] as usize;
                }
                end += 5;
                let mut r = buf[..end].to_vec();
                r[2] = 0x81;
                r[3] = if txt.is_some() { 0x80 } else { 0x83 };
                r[4..12].copy_from_slice(&[0, 1, 0, u8::from(txt.is_some()), 0, 0, 0, 0]);
                if let Some(txt) = txt {
                    let len = (txt.len() + 1) as u8;
                    r.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, len]);
                    r.push(txt.len() as u8);
                    r.extend_from_slice(txt);
                }
                let _ = server.send_to(&r, from).await;
                let _ = n;
            }
        });
        at
    }

    /// The query goes out over UDP and its answer is read; NXDOMAIN is no
    /// record; a server that stays silent is a timeout (None), not a
    /// policy.
    #[tokio::test]
    async fn a_resolver_on_loopback_answers_and_a_silent_one_times_out() {
        let at = server(Some(b"v=DMARC1; p=quarantine"), false).await;
        let record = record_at(at, "_dmarc.example.org").await.unwrap().unwrap();
        assert_eq!(tag(&record, "p").as_deref(), Some("quarantine"));
        let nx = server(None, false).await;
        assert_eq!(record_at(nx, "_dmarc.example.org").await, Some(None));
        let silent = server(None, true).await;
        let t = std::time::Instant::now();
        assert_eq!(record_at(silent, "_dmarc.x.se").await, None);
        assert!(t.elapsed() >= DMARC_TIMEOUT);
    }
}
