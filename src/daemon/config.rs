//! `utskick.toml`: embedded defaults, then the file, validated once at start.
//!
//! Every key has a default, so no file is needed. A bad file is refused with
//! one line that names the file, the key and what is wrong; nothing else in
//! the crate re-validates what this module accepted.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a configuration could not be used. The message is shown to the user as is.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Domain of every list address.
    pub domain: String,
    /// Public root of the web pages, used in links.
    pub base_url: String,
    pub data_dir: PathBuf,
    pub lists_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub inbound: Inbound,
    pub http: Http,
    pub metrics: MetricsListener,
    pub outbound: Outbound,
    pub dkim: Option<Dkim>,
    pub limits: Limits,
    /// `[admin]`: the leader's workspace under `/admin`.
    pub admin: Admin,
    /// Who sends the lists' mail (a list may override it); default: the
    /// list's name.
    pub organisation: String,
    /// How readers reach a person (a list may override it); default: the
    /// list's `L-owner@D` address.
    pub contact: String,
    /// The privacy policy (a list may override it); default: the daemon's
    /// own `{base_url}/privacy` page.
    pub privacy_url: String,
    /// The zone of the times the leader types and reads (the CLI, the
    /// workspace): an IANA name, `Europe/Stockholm` by default. Records
    /// keep UTC.
    pub timezone: crate::time::Zone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Smtp,
    Lmtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Inbound {
    pub listen: SocketAddr,
    pub protocol: Protocol,
    pub max_message_bytes: usize,
    /// Simultaneous inbound sessions; the next one gets 421.
    pub max_connections: usize,
    /// Sessions one client address may hold at once (its share of
    /// `max_connections`; Postfix's `smtpd_client_connection_count_limit`);
    /// the next one gets 421.
    pub max_connections_per_ip: usize,
    /// Networks whose sessions are not held to `max_connections_per_ip`:
    /// the MTA that hands us the mail. Loopback by default.
    pub per_ip_exempt: Vec<Network>,
    /// Seconds a client may stay silent before the session is closed (RFC 5321 §4.5.3.2 asks for minutes; we are a local service).
    pub idle_timeout_secs: u64,
    /// Seconds a whole session may last, however busy; then 421.
    pub session_lifetime_secs: u64,
    /// Seconds for a whole DATA (or BDAT) phase, from the 354 (or the first
    /// BDAT) to the end of the message; then 421.
    pub data_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    pub listen: SocketAddr,
    /// Open connections; past it the longest-idle one is closed to make
    /// room, or, when every one is busy with a request, the newcomer gets
    /// 503. Never more than half the descriptors the process may open.
    pub max_connections: usize,
    /// Seconds for a request line and its headers, from the moment the
    /// server waits for them (the connection opened, or the previous
    /// response went out).
    pub header_timeout_secs: u64,
    /// Seconds a connection may stay idle after a response before it is
    /// closed (the header timeout bounds it too).
    pub keep_alive_secs: u64,
}

/// `[metrics]`: `/metrics` on a listener of its own, loopback by default,
/// so counts that move with what strangers do are not public.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsListener {
    pub listen: SocketAddr,
}

/// An IP network, `192.0.2.0/24` or `::1/128`; a bare address is a
/// network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` lies in this network (an IPv4-mapped IPv6 address
    /// counts as the IPv4 address it carries).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl TryFrom<String> for Network {
    type Error = String;

    fn try_from(s: String) -> Result<Network, String> {
        let bad = || format!("{s:?} is not a network (like 192.0.2.0/24 or ::1/128)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.as_str(), None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Network { addr, prefix })
    }
}

/// `[admin]`: the leader's workspace on the `[http]` listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    /// Off: every `/admin` path is a 404.
    pub enabled: bool,
    /// The networks the workspace answers; empty: any. Others get 403.
    pub allow_from: Vec<Network>,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            enabled: true,
            allow_from: Vec::new(),
        }
    }
}

impl Admin {
    /// Whether a client at `ip` may use the workspace.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_from.is_empty() || self.allow_from.iter().any(|n| n.contains(ip))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outbound {
    pub transport: TransportKind,
    /// `host:port` of the relay.
    pub relay: String,
    pub tls: Tls,
    pub username: String,
    /// Name of the environment variable that holds the relay password; the
    /// password itself never sits in the file.
    pub password_env: String,
    pub connections: u32,
    /// 0: no limit.
    pub max_per_hour: u32,
    /// Seconds to wait for the relay: to connect, and for each answer.
    pub timeout_secs: u64,
}

/// `[dkim]`: one key in the old form (`selector`, `private_key_file`,
/// defaults "utskick" and "dkim.pem"), several as `[[dkim.keys]]`, or both
/// (the bare key first). Every key signs every mail: RSA for the receivers
/// that verify only RSA (Gmail, Microsoft, Yahoo), Ed25519 beside it as
/// RFC 8463 recommends. Use [`Dkim::keys`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dkim {
    pub selector: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub keys: Vec<DkimKey>,
}

/// One DKIM key: its selector (`SELECTOR._domainkey.DOMAIN`) and the file
/// that holds the private key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKey {
    pub selector: String,
    pub private_key_file: PathBuf,
}

impl Dkim {
    /// The keys that sign, in order: the bare one (if set, or if there is
    /// no `[[dkim.keys]]`, with its defaults), then `[[dkim.keys]]`.
    pub fn keys(&self) -> Vec<DkimKey> {
        let bare_set = self.selector.is_some() || self.private_key_file.is_some();
        let mut keys = Vec::with_capacity(self.keys.len() + 1);
        if bare_set || self.keys.is_empty() {
            keys.push(DkimKey {
                selector: self.selector.clone().unwrap_or_else(|| "utskick".into()),
                private_key_file: self
                    .private_key_file
                    .clone()
                    .unwrap_or_else(|| "dkim.pem".into()),
            });
        }
        keys.extend(self.keys.iter().cloned());
        keys
    }
}

/// Checks `organisation`, `contact` and `privacy_url` (of the configuration
/// or a list): one line each, and a link only to the web or a mailbox, since
/// every page and mail footer shows them.
pub fn check_sender(organisation: &str, contact: &str, privacy_url: &str) -> Result<(), String> {
    for (key, value) in [
        ("organisation", organisation),
        ("contact", contact),
        ("privacy_url", privacy_url),
    ] {
        if value.chars().any(char::is_control) {
            return Err(format!("key `{key}`: must be one line"));
        }
    }
    let web = |v: &str| v.starts_with("https://") || v.starts_with("http://");
    if !privacy_url.trim().is_empty() && !web(privacy_url.trim()) {
        return Err(format!(
            "key `privacy_url`: {privacy_url:?} must start with https:// or http://"
        ));
    }
    // A contact is an address, a web page, or words (a phone number): never
    // another kind of link.
    let contact = contact.trim().to_ascii_lowercase();
    if let Some((scheme, _)) = contact.split_once(':') {
        if !contact.contains('@')
            && !contact.contains(char::is_whitespace)
            && !web(&contact)
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            && !scheme
                .chars()
                .all(|c| c.is_ascii_digit() || c == '+' || c == '-')
        {
            return Err(format!(
                "key `contact`: {contact:?}: give an e-mail address, an https:// page or plain words"
            ));
        }
    }
    Ok(())
}

/// Limits that protect strangers and the daemon itself (keys beyond the spec; documented in the README).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Confirmations to join per mailbox (the address without its `+tag`),
    /// per list, per day: the first, then the same pending confirmation
    /// again when the person asks again. A forged From cannot flood a
    /// stranger past it. (`confirmations_per_day`, its old name, still works.)
    #[serde(alias = "confirmations_per_day")]
    pub subscribe_confirmations_per_day: u32,
    /// Confirmations to leave per mailbox, per list, per day: a subscriber
    /// who asks to leave always gets one.
    pub unsubscribe_confirmations_per_day: u32,
    /// Invitations (`import --invite`) per mailbox, per list, per day.
    pub invitations_per_day: u32,
    /// All other automatic answers (help, already subscribed, unknown
    /// token) per mailbox per day, across lists.
    pub replies_per_day: u32,
    /// Questions (mail with no command) that `L-request@D` forwards to the
    /// owners per mailbox, per list, per day; past it they are recorded in
    /// `ignored`, not forwarded.
    pub questions_per_day: u32,
    /// Confirmations and invitations of every list in one hour (0: no
    /// cap); past it they wait in the outbox for the next hour with room.
    pub confirmations_per_hour: u32,
    /// The same, to one destination domain (0: no cap).
    pub confirmations_per_domain_per_hour: u32,
    /// Days a confirmation token stays valid.
    pub token_days: u32,
    /// Days an unconfirmed person's record is kept before it is purged.
    pub unconfirmed_days: u32,
    /// Total size of a campaign's attachments; bigger files belong behind a link.
    pub max_attachment_bytes: usize,
    /// Bounce score at which a subscriber becomes `bounced` (a permanent
    /// bounce adds 1, a temporary one 0.2; the score halves in 14 days).
    pub bounce_threshold: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "localhost".into(),
            base_url: "http://127.0.0.1:8080".into(),
            data_dir: "data".into(),
            lists_dir: "lists".into(),
            templates_dir: "templates".into(),
            inbound: Inbound::default(),
            http: Http::default(),
            metrics: MetricsListener::default(),
            outbound: Outbound::default(),
            dkim: None,
            limits: Limits::default(),
            admin: Admin::default(),
            organisation: String::new(),
            contact: String::new(),
            privacy_url: String::new(),
            timezone: crate::time::Zone::default(),
        }
    }
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            listen: ([127, 0, 0, 1], 2525).into(),
            protocol: Protocol::Smtp,
            max_message_bytes: 10 * 1024 * 1024,
            max_connections: 64,
            max_connections_per_ip: 16,
            per_ip_exempt: vec![
                Network {
                    addr: IpAddr::from([127, 0, 0, 0]),
                    prefix: 8,
                },
                Network {
                    addr: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
            idle_timeout_secs: 300,
            session_lifetime_secs: 600,
            data_timeout_secs: 300,
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: ([127, 0, 0, 1], 8080).into(),
            max_connections: 1024,
            header_timeout_secs: 10,
            keep_alive_secs: 10,
        }
    }
}

impl Default for MetricsListener {
    fn default() -> Self {
        MetricsListener {
            listen: ([127, 0, 0, 1], 9090).into(),
        }
    }
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            transport: TransportKind::File,
            relay: "127.0.0.1:25".into(),
            tls: Tls::None,
            username: String::new(),
            password_env: "UTSKICK_SMTP_PASSWORD".into(),
            connections: 4,
            max_per_hour: 0,
            timeout_secs: 60,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            subscribe_confirmations_per_day: 3,
            unsubscribe_confirmations_per_day: 5,
            invitations_per_day: 1,
            replies_per_day: 5,
            questions_per_day: 10,
            confirmations_per_hour: 1000,
            confirmations_per_domain_per_hour: 250,
            token_days: 7,
            unconfirmed_days: 30,
            max_attachment_bytes: 10 * 1024 * 1024,
            bounce_threshold: 3.0,
        }
    }
}

impl Config {
    /// Loads `path`. A missing file is fine when `required` is false (the
    /// default path): then the embedded defaults apply.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default())
            }
            Err(e) => {
                return Err(ConfigError {
                    file,
                    message: format!("cannot read: {e}"),
                })
            }
        };
        Config::parse(&text, &file)
    }

    /// Parses and validates the text of a configuration file named `file`.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_string(),
            message,
        };
        let value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err(one_line_toml_error(&e, text)))?;
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().message().to_string();
            if path == "." || path.is_empty() {
                err(inner)
            } else {
                err(format!("key `{path}`: {inner}"))
            }
        })?;
        config.validate().map_err(err)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if !is_domain(&self.domain) {
            return Err(format!(
                "key `domain`: {:?} is not a domain name (letters, digits, '-' and '.')",
                self.domain
            ));
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://"))
            || self.base_url.len() <= "https://".len()
        {
            return Err(format!(
                "key `base_url`: {:?} must start with http:// or https://",
                self.base_url
            ));
        }
        check_sender(&self.organisation, &self.contact, &self.privacy_url)?;
        if self.inbound.max_message_bytes < 1024 {
            return Err("key `inbound.max_message_bytes`: must be at least 1024".into());
        }
        if self.inbound.max_connections == 0 {
            return Err("key `inbound.max_connections`: must be at least 1".into());
        }
        if self.inbound.max_connections_per_ip == 0 {
            return Err("key `inbound.max_connections_per_ip`: must be at least 1".into());
        }
        for (key, secs) in [
            ("inbound.idle_timeout_secs", self.inbound.idle_timeout_secs),
            (
                "inbound.session_lifetime_secs",
                self.inbound.session_lifetime_secs,
            ),
            ("inbound.data_timeout_secs", self.inbound.data_timeout_secs),
            ("http.header_timeout_secs", self.http.header_timeout_secs),
            ("http.keep_alive_secs", self.http.keep_alive_secs),
        ] {
            if secs == 0 {
                return Err(format!("key `{key}`: must be at least 1"));
            }
            // tokio's timer and Instant arithmetic need sane bounds.
            if secs > 86_400 {
                return Err(format!("key `{key}`: must be at most 86400 (a day)"));
            }
        }
        if self.http.max_connections == 0 {
            return Err("key `http.max_connections`: must be at least 1".into());
        }
        if self.metrics.listen == self.http.listen && self.http.listen.port() != 0 {
            return Err(format!(
                "key `metrics.listen`: {} is the public http.listen; /metrics needs a listener of its own",
                self.metrics.listen
            ));
        }
        if self.outbound.timeout_secs == 0 {
            return Err("key `outbound.timeout_secs`: must be at least 1".into());
        }
        if self.outbound.connections == 0 {
            return Err("key `outbound.connections`: must be at least 1".into());
        }
        if self.outbound.transport == TransportKind::Smtp {
            match self.outbound.relay.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => {
                    return Err(format!(
                        "key `outbound.relay`: {:?} is not host:port",
                        self.outbound.relay
                    ))
                }
            }
        }
        if let Some(dkim) = &self.dkim {
            let keys = dkim.keys();
            for (i, k) in keys.iter().enumerate() {
                let selector_ok = !k.selector.is_empty()
                    && k.selector.split('.').all(|label| {
                        !label.is_empty()
                            && label
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    });
                if !selector_ok {
                    return Err(format!(
                        "key `dkim`: selector {:?} is not a DNS label (letters, digits, '-', '_')",
                        k.selector
                    ));
                }
                if keys[..i].iter().any(|o| o.selector == k.selector) {
                    return Err(format!(
                        "key `dkim.keys`: selector {:?} is used twice; each key needs its own",
                        k.selector
                    ));
                }
            }
        }
        if self.limits.token_days == 0 {
            return Err("key `limits.token_days`: must be at least 1".into());
        }
        Ok(())
    }

    /// The public root without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    pub fn secret_path(&self) -> PathBuf {
        self.data_dir.join("secret")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.data_dir.join("utskick.sock")
    }
}

fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// toml's own message spans several lines with a source excerpt; keep the
/// position and the reason on one line.
fn one_line_toml_error(e: &toml::de::Error, text: &str) -> String {
    let reason = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {reason}")
        }
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        Config::parse(text, "utskick.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_privacy_url_or_contact_that_is_no_web_or_mail_address_is_refused() {
        assert!(error("privacy_url = \"javascript:alert(1)\"\n").contains("privacy_url"));
        assert!(error("contact = \"javascript:alert(1)\"\n").contains("contact"));
        assert!(error("organisation = \"A\\nBcc: x@y\"\n").contains("organisation"));
        assert!(Config::parse("contact = \"Karin, 070-123 45 67\"\n", "utskick.toml").is_ok());
        assert!(Config::parse("contact = \"Ring: 070-123 45 67\"\n", "utskick.toml").is_ok());
        assert!(error("contact = \"data:text/html,x\"\n").contains("contact"));
    }

    #[test]
    fn who_sends_is_read_from_the_top_level() {
        let c = Config::parse(
            "organisation = \"Lokal finansiering\"\ncontact = \"kontakt@example.se\"\nprivacy_url = \"https://example.se/integritet\"\n",
            "utskick.toml",
        )
        .unwrap();
        assert_eq!(c.organisation, "Lokal finansiering");
        assert_eq!(c.contact, "kontakt@example.se");
        assert_eq!(c.privacy_url, "https://example.se/integritet");
        assert!(error("contact = 3\n").contains("contact"));
    }

    #[test]
    fn the_workspace_answers_only_the_networks_in_allow_from() {
        let c = Config::parse("", "utskick.toml").unwrap();
        assert!(c.admin.enabled);
        assert!(c.admin.allows("203.0.113.9".parse().unwrap()));
        let c = Config::parse(
            "[admin]\nenabled = false\nallow_from = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n",
            "utskick.toml",
        )
        .unwrap();
        assert!(!c.admin.enabled);
        assert!(c.admin.allows("192.0.2.200".parse().unwrap()));
        assert!(c.admin.allows("::ffff:192.0.2.1".parse().unwrap()));
        assert!(c.admin.allows("2001:db8:5::1".parse().unwrap()));
        assert!(!c.admin.allows("192.0.3.1".parse().unwrap()));
        assert!(!c.admin.allows("127.0.0.1".parse().unwrap()));
        assert!(error("[admin]\nallow_from = [\"192.0.2.0/33\"]\n").contains("admin.allow_from"));
        assert!(error("[admin]\nallow = []\n").contains("allow"));
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::parse("", "utskick.toml").unwrap();
        assert_eq!(c.domain, "localhost");
        assert_eq!(c.inbound.listen.to_string(), "127.0.0.1:2525");
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.outbound.transport, TransportKind::File);
        assert_eq!(c.inbound.max_message_bytes, 10485760);
        assert!(c.dkim.is_none());
        assert_eq!(c.timezone, crate::time::Zone::STOCKHOLM);
    }

    #[test]
    fn the_leaders_timezone_is_read_and_an_unknown_one_refused() {
        let c = Config::parse("timezone = \"UTC\"\n", "utskick.toml").unwrap();
        assert_eq!(c.timezone, crate::time::Zone::UTC);
        assert_eq!(
            error("timezone = \"Europe/Stokholm\"\n"),
            "utskick.toml: key `timezone`: \"Europe/Stokholm\" is not a time zone (an IANA name such as \"Europe/Stockholm\" or \"UTC\")"
        );
    }

    #[test]
    fn the_spec_example_parses() {
        let c = Config::parse(
            r#"
domain = "example.se"
base_url = "https://lista.example.se"
[inbound]
listen = "0.0.0.0:25"
protocol = "lmtp"
[outbound]
transport = "smtp"
relay = "smtp.example.se:587"
tls = "starttls"
max_per_hour = 300
[dkim]
selector = "s1"
"#,
            "utskick.toml",
        )
        .unwrap();
        assert_eq!(c.inbound.protocol, Protocol::Lmtp);
        assert_eq!(c.outbound.tls, Tls::Starttls);
        let keys = c.dkim.unwrap().keys();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].selector, "s1");
        assert_eq!(keys[0].private_key_file, PathBuf::from("dkim.pem"));
    }

    #[test]
    fn dkim_takes_one_key_or_several() {
        let keys = |text: &str| Config::parse(text, "u.toml").unwrap().dkim.unwrap().keys();
        let key = |s: &str, f: &str| DkimKey {
            selector: s.into(),
            private_key_file: f.into(),
        };
        assert_eq!(keys("[dkim]\n"), [key("utskick", "dkim.pem")]);
        assert_eq!(
            keys("[[dkim.keys]]\nselector = \"rsa2026\"\nprivate_key_file = \"r.pem\"\n[[dkim.keys]]\nselector = \"ed2026\"\nprivate_key_file = \"e.key\"\n"),
            [key("rsa2026", "r.pem"), key("ed2026", "e.key")]
        );
        assert_eq!(
            keys("[dkim]\nprivate_key_file = \"r.pem\"\n[[dkim.keys]]\nselector = \"ed\"\nprivate_key_file = \"e.key\"\n"),
            [key("utskick", "r.pem"), key("ed", "e.key")]
        );
        for (text, want) in [
            ("[[dkim.keys]]\nselector = \"a\"\n", "dkim.keys"),
            ("[[dkim.keys]]\nselector = \"a\"\nprivate_key_file = \"x\"\n[[dkim.keys]]\nselector = \"a\"\nprivate_key_file = \"y\"\n", "used twice"),
            ("[dkim]\nselector = \"a b\"\n", "not a DNS label"),
        ] {
            let e = error(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn bad_files_name_the_file_the_key_and_the_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "[inbound]\nlisten = \"nowhere\"\n",
                "utskick.toml: key `inbound.listen`: invalid socket address syntax",
            ),
            (
                "[inbound]\nprotocol = \"pop3\"\n",
                "utskick.toml: key `inbound.protocol`: unknown variant `pop3`, expected `smtp` or `lmtp`",
            ),
            (
                "[outbound]\nconnections = -1\n",
                "utskick.toml: key `outbound.connections`: invalid value: integer `-1`, expected u32",
            ),
            (
                "domian = \"example.se\"\n",
                "utskick.toml: key `domian`: unknown field `domian`, expected one of `domain`",
            ),
            (
                "[outbound]\ntls = \"ssl\"\n",
                "utskick.toml: key `outbound.tls`: unknown variant `ssl`, expected one of `none`, `starttls`, `tls`",
            ),
            (
                "domain = \"exa mple.se\"\n",
                "utskick.toml: key `domain`: \"exa mple.se\" is not a domain name",
            ),
            (
                "base_url = \"lista.example.se\"\n",
                "utskick.toml: key `base_url`: \"lista.example.se\" must start with http:// or https://",
            ),
            (
                "[outbound]\ntransport = \"smtp\"\nrelay = \"smtp.example.se\"\n",
                "utskick.toml: key `outbound.relay`: \"smtp.example.se\" is not host:port",
            ),
            ("domain = \n", "utskick.toml: line 1: "),
            (
                "[inbound]\nmax_message_bytes = 10\n",
                "utskick.toml: key `inbound.max_message_bytes`: must be at least 1024",
            ),
            (
                "[inbound]\nper_ip_exempt = [\"10.0.0.0/33\"]\n",
                "utskick.toml: key `inbound.per_ip_exempt[0]`: \"10.0.0.0/33\" is not a network",
            ),
            (
                "[inbound]\nper_ip_exempt = [\"localhost\"]\n",
                "utskick.toml: key `inbound.per_ip_exempt[0]`: \"localhost\" is not a network",
            ),
            (
                "[inbound]\nmax_connections_per_ip = 0\n",
                "utskick.toml: key `inbound.max_connections_per_ip`: must be at least 1",
            ),
            (
                "[inbound]\nsession_lifetime_secs = 0\n",
                "utskick.toml: key `inbound.session_lifetime_secs`: must be at least 1",
            ),
            (
                "[inbound]\ndata_timeout_secs = 100000\n",
                "utskick.toml: key `inbound.data_timeout_secs`: must be at most 86400",
            ),
            (
                "[http]\nheader_timeout_secs = 0\n",
                "utskick.toml: key `http.header_timeout_secs`: must be at least 1",
            ),
            (
                "[http]\nmax_connections = 0\n",
                "utskick.toml: key `http.max_connections`: must be at least 1",
            ),
            (
                "[http]\nlisten = \"127.0.0.1:8080\"\n[metrics]\nlisten = \"127.0.0.1:8080\"\n",
                "utskick.toml: key `metrics.listen`: 127.0.0.1:8080 is the public http.listen",
            ),
            (
                "[metrics]\npath = \"/m\"\n",
                "utskick.toml: key `metrics.path`: unknown field `path`",
            ),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(
                got.starts_with(want),
                "for {text:?}\n got: {got}\nwant: {want}…"
            );
            assert!(!got.contains('\n'), "multi-line error: {got}");
        }
    }

    #[test]
    fn listener_limits_have_defaults_and_take_their_keys() {
        let c = Config::parse("", "utskick.toml").unwrap();
        assert_eq!(c.inbound.max_connections_per_ip, 16);
        assert_eq!(c.inbound.session_lifetime_secs, 600);
        assert_eq!(c.inbound.data_timeout_secs, 300);
        assert_eq!(c.http.max_connections, 1024);
        assert_eq!(c.http.header_timeout_secs, 10);
        assert_eq!(c.http.keep_alive_secs, 10);
        assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9090");
        let loopback: Vec<IpAddr> = vec![
            "127.0.0.1".parse().unwrap(),
            "127.9.9.9".parse().unwrap(),
            "::1".parse().unwrap(),
            "::ffff:127.0.0.1".parse().unwrap(),
        ];
        for ip in loopback {
            assert!(
                c.inbound.per_ip_exempt.iter().any(|n| n.contains(ip)),
                "{ip}"
            );
        }
        let c = Config::parse(
            "[inbound]\nmax_connections_per_ip = 2\nper_ip_exempt = [\"192.0.2.0/24\", \"2001:db8::25\"]\nsession_lifetime_secs = 5\ndata_timeout_secs = 4\n[http]\nmax_connections = 50\nheader_timeout_secs = 7\nkeep_alive_secs = 3\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
            "utskick.toml",
        )
        .unwrap();
        let exempt = |ip: &str| {
            c.inbound
                .per_ip_exempt
                .iter()
                .any(|n| n.contains(ip.parse().unwrap()))
        };
        assert!(exempt("192.0.2.200"));
        assert!(!exempt("192.0.3.1"));
        assert!(!exempt("127.0.0.1"));
        assert!(exempt("2001:db8::25"));
        assert!(!exempt("2001:db8::26"));
        assert_eq!(c.inbound.max_connections_per_ip, 2);
        assert_eq!(
            (
                c.http.max_connections,
                c.http.header_timeout_secs,
                c.http.keep_alive_secs
            ),
            (50, 7, 3)
        );
        assert_eq!(c.metrics.listen.port(), 0);
    }

    #[test]
    fn a_missing_default_file_is_fine_but_a_named_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("utskick.toml");
        assert!(Config::load(&path, false).is_ok());
        let e = Config::load(&path, true).unwrap_err().to_string();
        assert!(e.contains("utskick.toml: cannot read"), "{e}");
    }
}
