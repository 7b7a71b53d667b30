//! `lists/<id>.toml`: the lists this daemon serves, loaded and validated at start.
//!
//! A list here is configuration only; its subscribers live in the store.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::address::{self, split};
use crate::daemon::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Sv,
    En,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Sv => "sv",
            Language::En => "en",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subscription {
    /// Double opt-in.
    Open,
    /// Double opt-in, then an owner approves.
    Closed,
}

/// Who may post to `L@D` and have it distributed (issue 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Posting {
    /// Newsletters only: an owner's post waits for the owner's approval,
    /// anyone else's reaches the owners. Today's behaviour, the default.
    Owners,
    /// A discussion list: a confirmed member's post goes to every
    /// confirmed member; anyone else's is held for the owners.
    Members,
    /// Every post goes out; only what the checks flag is held.
    Anyone,
}

/// Where replies to a distributed post go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyTo {
    /// `Reply-To: L@D`: the discussion stays on the list.
    List,
    /// No Reply-To of ours: replies go to the author (or their own Reply-To).
    Author,
}

/// When a post's `From:` becomes the list's own address (DMARC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FromRewrite {
    /// When the author's domain publishes DMARC `p=reject` or `p=quarantine`.
    Dmarc,
    Always,
    Never,
}

/// Where the author goes when `From:` was rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorIn {
    /// `Reply-To:` (beside the list's own when `reply_to = "list"`).
    ReplyTo,
    /// `Cc:`.
    Cc,
}

/// What happens to a post's attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attachments {
    Keep,
    /// Replaced by a line that names the file.
    Strip,
    /// Replaced by a line that names the file and links it, served at
    /// `/files/LIST/TOKEN/NAME` (`campaign::files`).
    Link,
}

/// The discussion settings of a list; absent keys keep today's
/// newsletter-only behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discussion {
    pub posting: Posting,
    /// Put before a post's subject, never twice; "" for none.
    pub subject_tag: String,
    pub reply_to: ReplyTo,
    pub from_rewrite: FromRewrite,
    pub rewrite_author_in: AuthorIn,
    /// A bigger post is held for the owners.
    pub max_post_bytes: usize,
    pub attachments: Attachments,
    /// Further posts by one member that day are held for the owners.
    pub max_posts_per_member_per_day: u32,
}

/// `max_post_bytes` when the list file has none: 5 MiB.
pub const DEFAULT_MAX_POST_BYTES: usize = 5 * 1024 * 1024;
/// `max_posts_per_member_per_day` when the list file has none.
pub const DEFAULT_MAX_POSTS_PER_DAY: u32 = 20;

impl Default for Discussion {
    fn default() -> Discussion {
        Discussion {
            posting: Posting::Owners,
            subject_tag: String::new(),
            reply_to: ReplyTo::List,
            from_rewrite: FromRewrite::Dmarc,
            rewrite_author_in: AuthorIn::ReplyTo,
            max_post_bytes: DEFAULT_MAX_POST_BYTES,
            attachments: Attachments::Keep,
            max_posts_per_member_per_day: DEFAULT_MAX_POSTS_PER_DAY,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    name: String,
    address: String,
    #[serde(default = "default_language")]
    language: Language,
    #[serde(default)]
    owners: Vec<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "default_subscription")]
    subscription: Subscription,
    #[serde(default)]
    attributes: Vec<String>,
    /// Shown on the web index and in the public archive (default true).
    #[serde(default = "default_public")]
    public: bool,
    /// Who sends this list's mail, how to reach them and where the privacy
    /// policy is; each overrides the key of the same name in `utskick.toml`.
    #[serde(default)]
    organisation: Option<String>,
    #[serde(default)]
    contact: Option<String>,
    #[serde(default)]
    privacy_url: Option<String>,
    #[serde(default)]
    posting: Option<Posting>,
    #[serde(default)]
    subject_tag: Option<String>,
    #[serde(default)]
    reply_to: Option<ReplyTo>,
    #[serde(default)]
    from_rewrite: Option<FromRewrite>,
    #[serde(default)]
    rewrite_author_in: Option<AuthorIn>,
    #[serde(default)]
    max_post_bytes: Option<usize>,
    #[serde(default)]
    attachments: Option<Attachments>,
    #[serde(default)]
    max_posts_per_member_per_day: Option<u32>,
}

fn default_public() -> bool {
    true
}

fn default_language() -> Language {
    Language::Sv
}

fn default_subscription() -> Subscription {
    Subscription::Open
}

/// One list, as configured.
#[derive(Debug, Clone, Serialize)]
pub struct List {
    /// File stem: the list's name in commands and URLs.
    pub id: String,
    pub name: String,
    /// Local part of the list address (lower case).
    pub address: String,
    pub language: Language,
    /// Owner addresses, normalised.
    pub owners: Vec<String>,
    pub description: String,
    pub subscription: Subscription,
    pub attributes: Vec<String>,
    /// Listed on `/` and archived publicly.
    pub public: bool,
    /// Who sends, how to reach them, the privacy policy: what every page
    /// and mail footer names. Complete once [`Lists::for_config`] loaded it.
    pub sender: Sender,
    /// Posting policy and the rules of distributed posts (issue 16).
    pub discussion: Discussion,
    /// The list file's own `organisation`, `contact`, `privacy_url`, before
    /// the configuration's defaults fill the gaps.
    overrides: Sender,
}

/// Who sends a list's mail and how to reach them (issue 18: every page and
/// mail footer says it). Filled from the list file, then `utskick.toml`,
/// then defaults: the list's name, its `L-owner@D` address and the
/// daemon's own `/privacy` page.
///
/// Templates see the three fields and `contact_href` (see
/// [`Sender::contact_href`]), so a footer can link the contact without a
/// helper of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sender {
    /// The organisation or project behind the list.
    pub organisation: String,
    /// An address (or URL) that reaches a person.
    pub contact: String,
    /// The privacy policy's URL.
    pub privacy_url: String,
}

/// An absolute http or https address, with nothing in it that would end
/// an attribute or a line.
pub fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

impl Sender {
    /// Where a link to the contact points: the URL itself when the contact
    /// is one, `mailto:` and the address when it holds an `@`, and empty
    /// (no link, the text alone) for anything else, a phone number say.
    pub fn contact_href(&self) -> String {
        let c = self.contact.trim();
        if c.starts_with("https://") || c.starts_with("http://") {
            c.to_string()
        } else if c.contains('@') && !c.contains(char::is_whitespace) {
            format!("mailto:{c}")
        } else {
            String::new()
        }
    }
}

impl Serialize for Sender {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut m = s.serialize_struct("Sender", 4)?;
        m.serialize_field("organisation", &self.organisation)?;
        m.serialize_field("contact", &self.contact)?;
        m.serialize_field("privacy_url", &self.privacy_url)?;
        m.serialize_field("contact_href", &self.contact_href())?;
        m.end()
    }
}

impl List {
    /// Is `email` one of the owners? Case-insensitive, local part
    /// included, as addresses compare everywhere else.
    pub fn is_owner(&self, email: &str) -> bool {
        self.owner(email).is_some()
    }

    /// The owner's address as configured, for `email` in any case.
    pub fn owner(&self, email: &str) -> Option<&str> {
        let email = address::normalize(email).to_lowercase();
        self.owners
            .iter()
            .find(|o| o.to_lowercase() == email)
            .map(String::as_str)
    }
}

/// All lists, by id.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    by_id: BTreeMap<String, List>,
}

fn trimmed(value: Option<String>) -> String {
    value.map(|v| v.trim().to_string()).unwrap_or_default()
}

impl List {
    /// Fills [`List::sender`]: the list file's keys first, then the
    /// configuration's, then the defaults (the list's name, `L-owner@D`,
    /// `{base_url}/privacy`).
    pub fn resolve_sender(&mut self, config: &Config) {
        let pick = |own: &str, global: &str, default: String| {
            if !own.is_empty() {
                own.to_string()
            } else if !global.trim().is_empty() {
                global.trim().to_string()
            } else {
                default
            }
        };
        self.sender = Sender {
            organisation: pick(
                &self.overrides.organisation,
                &config.organisation,
                self.name.clone(),
            ),
            contact: pick(
                &self.overrides.contact,
                &config.contact,
                list_address(self, "owner", None, &config.domain),
            ),
            privacy_url: pick(
                &self.overrides.privacy_url,
                &config.privacy_url,
                format!("{}/privacy", config.base_url()),
            ),
        };
        // Every page, every mail and the snippet on other sites link it:
        // only a web address, never `javascript:` or `data:`.
        if !is_web_url(&self.sender.privacy_url) {
            tracing::warn!(
                list = %self.id,
                privacy_url = %self.sender.privacy_url,
                "privacy_url is no http(s) address: the daemon's own /privacy page is linked instead"
            );
            self.sender.privacy_url = format!("{}/privacy", config.base_url());
        }
    }
}

impl Lists {
    /// The lists of `config.lists_dir`, each with its [`Sender`] complete.
    pub fn for_config(config: &Config) -> anyhow::Result<Lists> {
        let mut lists = Lists::load(&config.lists_dir)?;
        for list in lists.by_id.values_mut() {
            list.resolve_sender(config);
        }
        Ok(lists)
    }

    /// Reads every `*.toml` in `dir`. A missing directory means no lists.
    /// [`List::sender`] stays empty: daemons load with [`Lists::for_config`].
    pub fn load(dir: &Path) -> anyhow::Result<Lists> {
        let mut lists = Lists::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(lists),
            Err(e) => anyhow::bail!("{}: cannot read: {e}", dir.display()),
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            let list =
                List::parse(&id, &text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            lists.insert(list)?;
        }
        Ok(lists)
    }

    pub fn insert(&mut self, list: List) -> anyhow::Result<()> {
        if let Some(other) = self
            .by_id
            .values()
            .find(|l| local_parts_collide(&l.address, &list.address))
        {
            anyhow::bail!(
                "lists `{}` and `{}` use addresses that collide ({} and {})",
                other.id,
                list.id,
                other.address,
                list.address
            );
        }
        self.by_id.insert(list.id.clone(), list);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&List> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &List> {
        self.by_id.values()
    }

    /// The list whose local part is `local` (already lower case).
    pub fn by_address(&self, local: &str) -> Option<&List> {
        self.by_id.values().find(|l| l.address == local)
    }
}

impl List {
    pub fn parse(id: &str, text: &str) -> Result<List, String> {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "list id {id:?} (the file name) must be lower-case letters, digits, '-' or '_'"
            ));
        }
        let file: ListFile = toml::from_str(text).map_err(|e| {
            let reason = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            match e.span() {
                Some(span) => {
                    let at = span.start.min(text.len());
                    let line = text[..at].matches('\n').count() + 1;
                    // Name the key whose value was refused, as config.rs does.
                    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let key = text[start..]
                        .split_once('=')
                        .map(|(k, _)| k.trim())
                        .filter(|k| !k.is_empty() && !k.contains(char::is_whitespace));
                    match key {
                        Some(key) => format!("line {line}: key `{key}`: {reason}"),
                        None => format!("line {line}: {reason}"),
                    }
                }
                None => reason,
            }
        })?;
        let local = file.address.trim().to_ascii_lowercase();
        if !address::is_valid_list_local(&local) {
            return Err(format!(
                "key `address`: {:?} is not a usable local part (letters, digits, '.', '_' or '-'; no '+')",
                file.address
            ));
        }
        let mut owners = Vec::new();
        for owner in &file.owners {
            if !address::is_valid(owner) {
                return Err(format!("key `owners`: {owner:?} is not an e-mail address"));
            }
            owners.push(address::normalize(owner));
        }
        for attr in &file.attributes {
            if attr.is_empty()
                || !attr
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "key `attributes`: {attr:?} must be letters, digits, '_' or '-'"
                ));
            }
        }
        crate::daemon::config::check_sender(
            file.organisation.as_deref().unwrap_or_default(),
            file.contact.as_deref().unwrap_or_default(),
            file.privacy_url.as_deref().unwrap_or_default(),
        )?;
        if file.name.trim().is_empty() {
            return Err("key `name`: must not be empty".into());
        }
        let defaults = Discussion::default();
        let subject_tag = address::header_safe(file.subject_tag.as_deref().unwrap_or_default())
            .trim()
            .to_string();
        if subject_tag.chars().count() > 40 {
            return Err("key `subject_tag`: at most 40 characters".into());
        }
        let max_post_bytes = file.max_post_bytes.unwrap_or(defaults.max_post_bytes);
        if max_post_bytes < 1024 {
            return Err("key `max_post_bytes`: must be at least 1024".into());
        }
        let discussion = Discussion {
            posting: file.posting.unwrap_or(defaults.posting),
            subject_tag,
            reply_to: file.reply_to.unwrap_or(defaults.reply_to),
            from_rewrite: file.from_rewrite.unwrap_or(defaults.from_rewrite),
            rewrite_author_in: file.rewrite_author_in.unwrap_or(defaults.rewrite_author_in),
            max_post_bytes,
            attachments: file.attachments.unwrap_or(defaults.attachments),
            max_posts_per_member_per_day: file
                .max_posts_per_member_per_day
                .unwrap_or(defaults.max_posts_per_member_per_day),
        };
        Ok(List {
            id: id.to_string(),
            name: file.name.trim().to_string(),
            address: local,
            language: file.language,
            owners,
            description: file.description,
            subscription: file.subscription,
            attributes: file.attributes,
            public: file.public,
            sender: Sender::default(),
            discussion,
            overrides: Sender {
                organisation: trimmed(file.organisation),
                contact: trimmed(file.contact),
                privacy_url: trimmed(file.privacy_url),
            },
        })
    }
}

/// The suffixes that a list's local part grows for its command addresses.
const SUFFIXES: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "request",
    "owner",
    "confirm",
    "reply",
    "bounces",
];

/// What mail to one of a list's addresses asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `L@D`
    Post,
    /// `L-subscribe@D`
    Subscribe,
    /// `L-unsubscribe@D`
    Unsubscribe,
    /// `L-request@D`
    Request,
    /// `L-owner@D`
    Owner,
    /// `L-confirm+TOKEN@D`
    Confirm(String),
    /// `L-unsubscribe+TOKEN@D`
    UnsubscribeToken(String),
    /// `L-reply+TOKEN@D`
    Reply(String),
    /// `L-bounces+TOKEN@D` or `L-bounces@D`
    Bounces(Option<String>),
}

/// Whether two lists' addresses would be ambiguous: `news` and `news-request`.
pub fn local_parts_collide(a: &str, b: &str) -> bool {
    let derived = |base: &str, other: &str| {
        other == base
            || SUFFIXES
                .iter()
                .any(|s| other.strip_prefix(base).and_then(|r| r.strip_prefix('-')) == Some(s))
    };
    derived(a, b) || derived(b, a)
}

/// Reads a recipient as one of our lists' addresses. None means the address is
/// not ours, and the caller refuses it (550).
pub fn parse_recipient<'l>(
    rcpt: &str,
    domain: &str,
    lists: &'l Lists,
) -> Option<(&'l List, Action)> {
    let rcpt = rcpt.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, rdomain) = split(rcpt)?;
    if !rdomain.eq_ignore_ascii_case(domain) {
        return None;
    }
    // Our own local parts are lower case and tokens are lower-case base32, so
    // folding is safe and survives mail servers that upper-case addresses.
    let local = local.to_ascii_lowercase();
    let (base, token) = match local.split_once('+') {
        Some((base, token)) => (base, Some(token)),
        None => (local.as_str(), None),
    };
    if let Some(token) = token {
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
    }
    if let Some(list) = lists.by_address(base) {
        return match token {
            None => Some((list, Action::Post)),
            Some(_) => None,
        };
    }
    let (list_local, suffix) = base.rsplit_once('-')?;
    let list = lists.by_address(list_local)?;
    let token = token.map(str::to_string);
    let action = match (suffix, token) {
        ("subscribe", None) => Action::Subscribe,
        ("unsubscribe", None) => Action::Unsubscribe,
        ("unsubscribe", Some(t)) => Action::UnsubscribeToken(t),
        ("request", None) => Action::Request,
        ("owner", None) => Action::Owner,
        ("confirm", Some(t)) => Action::Confirm(t),
        ("reply", Some(t)) => Action::Reply(t),
        ("bounces", t) => Action::Bounces(t),
        _ => return None,
    };
    Some((list, action))
}

/// The TOKEN of `address` when it is `list`'s `L-confirm+TOKEN@D` (the
/// inverse of [`list_address`] for confirmations).
pub fn confirm_token<'a>(list: &List, address: &'a str, domain: &str) -> Option<&'a str> {
    let (local, rdomain) = split(address)?;
    if !rdomain.eq_ignore_ascii_case(domain) {
        return None;
    }
    let token = local
        .strip_prefix(&list.address)?
        .strip_prefix("-confirm+")?;
    (!token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(token)
}

/// The full address of a list's command address: `suffix` "" gives `L@D`.
pub fn list_address(list: &List, suffix: &str, token: Option<&str>, domain: &str) -> String {
    // In one allocation: a campaign makes a few of these per copy.
    let token_len = token.map_or(0, |t| t.len() + 1);
    let mut address =
        String::with_capacity(list.address.len() + suffix.len() + 1 + token_len + 1 + domain.len());
    address.push_str(&list.address);
    if !suffix.is_empty() {
        address.push('-');
        address.push_str(suffix);
    }
    if let Some(t) = token {
        address.push('+');
        address.push_str(t);
    }
    address.push('@');
    address.push_str(domain);
    address
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_confirm_address_gives_back_its_token() {
        let list = List::parse("nat", "name = \"N\"\naddress = \"nat\"\n").unwrap();
        let a = list_address(&list, "confirm", Some("abc234"), "example.se");
        assert_eq!(confirm_token(&list, &a, "example.se"), Some("abc234"));
        assert_eq!(confirm_token(&list, &a, "example.org"), None);
        let request = list_address(&list, "request", None, "example.se");
        assert_eq!(confirm_token(&list, &request, "example.se"), None);
        assert_eq!(
            confirm_token(&list, "nat-confirm+@example.se", "example.se"),
            None
        );
    }

    #[test]
    fn sender_comes_from_the_list_then_the_config_then_defaults() {
        let mut config = Config {
            domain: "example.se".into(),
            base_url: "https://lista.example.se/".into(),
            ..Config::default()
        };
        let mut bare = List::parse("nat", "name = \"Nätet\"\naddress = \"nat\"\n").unwrap();
        bare.resolve_sender(&config);
        assert_eq!(bare.sender.organisation, "Nätet");
        assert_eq!(bare.sender.contact, "nat-owner@example.se");
        assert_eq!(bare.sender.privacy_url, "https://lista.example.se/privacy");

        config.organisation = "Lokal finansiering".into();
        config.contact = "kontakt@example.se".into();
        config.privacy_url = "https://example.se/integritet".into();
        bare.resolve_sender(&config);
        assert_eq!(bare.sender.organisation, "Lokal finansiering");
        assert_eq!(bare.sender.contact, "kontakt@example.se");
        assert_eq!(bare.sender.privacy_url, "https://example.se/integritet");

        let mut own = List::parse(
            "nat",
            "name = \"Nätet\"\naddress = \"nat\"\ncontact = \" karin@example.se \"\n",
        )
        .unwrap();
        own.resolve_sender(&config);
        assert_eq!(own.sender.contact, "karin@example.se");
        assert_eq!(own.sender.contact_href(), "mailto:karin@example.se");
        assert_eq!(own.sender.organisation, "Lokal finansiering");
        // Templates see the link target beside the three fields.
        let json = serde_json::to_value(&own.sender).unwrap();
        assert_eq!(json["contact_href"], "mailto:karin@example.se");
        assert_eq!(json["privacy_url"], "https://example.se/integritet");
        let web = Sender {
            contact: "https://example.se/kontakt".into(),
            ..Sender::default()
        };
        assert_eq!(web.contact_href(), "https://example.se/kontakt");
        let phone = Sender {
            contact: "070-123 45 67".into(),
            ..Sender::default()
        };
        assert_eq!(phone.contact_href(), "");
    }

    use super::*;

    #[test]
    fn the_projects_own_lists_load() {
        let lists = Lists::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/lists"))).unwrap();
        let lf = lists.get("lokal-finansiering").unwrap();
        assert_eq!(lf.subscription, Subscription::Open);
        assert_eq!(lf.language, Language::Sv);
        assert_eq!(lf.discussion, Discussion::default());
        assert_eq!(lf.discussion.posting, Posting::Owners);
        let p = lists.get("partnerskap").unwrap();
        assert_eq!(p.subscription, Subscription::Closed);
        assert_eq!(p.discussion.posting, Posting::Members);
        assert_eq!(p.discussion.subject_tag, "[Partnerskap]");
        assert!(!p.owners.is_empty());
    }

    #[test]
    fn owners_compare_without_case() {
        let l = List::parse(
            "x",
            "name = \"X\"\naddress = \"x\"\nowners = [\"Ledare@Example.se\"]\n",
        )
        .unwrap();
        for from in [
            "ledare@example.se",
            "LEDARE@EXAMPLE.SE",
            " <Ledare@example.SE> ",
        ] {
            assert_eq!(l.owner(from), Some("Ledare@example.se"), "{from}");
        }
        assert!(!l.is_owner("ledare2@example.se"));
    }

    #[test]
    fn bad_list_files_say_what_is_wrong() {
        let e = List::parse("x", "name = \"X\"\naddress = \"a+b\"\n").unwrap_err();
        assert!(e.starts_with("key `address`"), "{e}");
        let e = List::parse(
            "x",
            "name = \"X\"\naddress = \"x\"\nowners = [\"nobody\"]\n",
        )
        .unwrap_err();
        assert!(e.starts_with("key `owners`"), "{e}");
        let e = List::parse(
            "x",
            "name = \"X\"\naddress = \"x\"\nsubscription = \"maybe\"\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown variant `maybe`"), "{e}");
        for (key, value) in [
            ("posting", "\"everyone\""),
            ("reply_to", "\"sender\""),
            ("from_rewrite", "\"sometimes\""),
            ("attachments", "\"zip\""),
            ("rewrite_author_in", "\"bcc\""),
        ] {
            let e = List::parse(
                "x",
                &format!("name = \"X\"\naddress = \"x\"\n{key} = {value}\n"),
            )
            .unwrap_err();
            assert!(e.contains(&format!("key `{key}`")), "{e}");
            assert!(e.contains("unknown variant"), "{e}");
        }
        let e =
            List::parse("x", "name = \"X\"\naddress = \"x\"\nmax_post_bytes = 10\n").unwrap_err();
        assert!(e.starts_with("key `max_post_bytes`"), "{e}");
        let e = List::parse("Bad Id", "name = \"X\"\naddress = \"x\"\n").unwrap_err();
        assert!(e.contains("list id"), "{e}");
    }

    #[test]
    fn colliding_addresses_are_refused() {
        let mut lists = Lists::default();
        lists
            .insert(List::parse("a", "name = \"A\"\naddress = \"news\"\n").unwrap())
            .unwrap();
        let e = lists
            .insert(List::parse("b", "name = \"B\"\naddress = \"news-request\"\n").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("collide"), "{e}");
    }

    fn lists() -> Lists {
        let mut l = Lists::default();
        l.insert(
            List::parse(
                "lokal-finansiering",
                "name = \"LF\"\naddress = \"lokal-finansiering\"\n",
            )
            .unwrap(),
        )
        .unwrap();
        l.insert(List::parse("partnerskap", "name = \"P\"\naddress = \"partnerskap\"\n").unwrap())
            .unwrap();
        l
    }

    #[test]
    fn recipients_table() {
        let lists = lists();
        let t = |s: &str| parse_recipient(s, "example.se", &lists).map(|(l, a)| (l.id.clone(), a));
        let lf = || "lokal-finansiering".to_string();
        let cases: Vec<(&str, Option<(String, Action)>)> = vec![
            ("lokal-finansiering@example.se", Some((lf(), Action::Post))),
            (
                "<lokal-finansiering@EXAMPLE.SE>",
                Some((lf(), Action::Post)),
            ),
            (
                "Lokal-Finansiering-Subscribe@example.se",
                Some((lf(), Action::Subscribe)),
            ),
            (
                "lokal-finansiering-unsubscribe@example.se",
                Some((lf(), Action::Unsubscribe)),
            ),
            (
                "lokal-finansiering-request@example.se",
                Some((lf(), Action::Request)),
            ),
            (
                "lokal-finansiering-owner@example.se",
                Some((lf(), Action::Owner)),
            ),
            (
                "lokal-finansiering-confirm+abc234@example.se",
                Some((lf(), Action::Confirm("abc234".into()))),
            ),
            (
                "LOKAL-FINANSIERING-CONFIRM+ABC234@EXAMPLE.SE",
                Some((lf(), Action::Confirm("abc234".into()))),
            ),
            (
                "lokal-finansiering-unsubscribe+xyz@example.se",
                Some((lf(), Action::UnsubscribeToken("xyz".into()))),
            ),
            (
                "lokal-finansiering-reply+xyz@example.se",
                Some((lf(), Action::Reply("xyz".into()))),
            ),
            (
                "lokal-finansiering-bounces+xyz@example.se",
                Some((lf(), Action::Bounces(Some("xyz".into())))),
            ),
            (
                "lokal-finansiering-bounces@example.se",
                Some((lf(), Action::Bounces(None))),
            ),
            (
                "partnerskap-subscribe@example.se",
                Some(("partnerskap".into(), Action::Subscribe)),
            ),
            // Not ours: the daemon is never an open relay.
            ("lokal-finansiering@example.com", None),
            ("someone@example.se", None),
            ("lokal-finansiering-confirm@example.se", None),
            ("lokal-finansiering-confirm+@example.se", None),
            ("lokal-finansiering-confirm+a.b@example.se", None),
            ("lokal-finansiering+x@example.se", None),
            ("lokal-finansiering-subscribe+x@example.se", None),
            ("lokal-finansiering-foo@example.se", None),
            ("", None),
            ("@example.se", None),
            ("lokal-finansiering", None),
        ];
        for (input, want) in cases {
            assert_eq!(t(input), want, "{input}");
        }
    }
}
