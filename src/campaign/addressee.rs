//! Who one copy of a campaign is for: the recipient the templates see, the
//! links in the copy and its Message-ID. One constructor for the three kinds
//! of copy (a subscriber's own, a test copy, a local preview), so their
//! links cannot drift apart.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset};

use crate::compose::mime::{Envelope, Recipient};
use crate::daemon::config::Config;
use crate::daemon::lists::{list_address, List};
use crate::store::Frozen;

/// Which copy.
pub enum Copy<'a> {
    /// A subscriber's own copy of campaign `campaign`: its links carry the
    /// subscriber's token.
    Own {
        campaign: u64,
        /// The subscriber's id.
        id: u64,
        /// What was frozen of them when the campaign started.
        to: &'a Frozen,
        token: &'a str,
    },
    /// A test copy to `to` (`preview --to`), record `id`: its links carry
    /// no valid token, so it cannot unsubscribe anyone; replies go to the
    /// owners.
    Test { to: &'a str, id: u64 },
    /// A preview rendered locally for the list's sample person; never sent.
    Preview,
}

/// The parts of a [`Recipient`] and the Message-ID of one copy; a
/// subscriber's own copy borrows the address, name and (when they hold
/// every declared one) attributes from what was frozen of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee<'a> {
    pub email: Cow<'a, str>,
    pub name: Cow<'a, str>,
    /// Every attribute the list declares is present, so strict templates
    /// never miss one.
    pub attributes: Cow<'a, BTreeMap<String, String>>,
    pub unsubscribe_url: String,
    pub unsubscribe_mailto: String,
    pub reply_to: String,
    /// The copy's page in the public archive ("View in browser"); "" for
    /// a list that is not public. A test copy or preview, which is no
    /// campaign yet, links to the archive's list of campaigns.
    pub archive_url: String,
    /// Without <>.
    pub message_id: String,
}

impl<'a> Addressee<'a> {
    pub fn new(config: &Config, list: &List, copy: Copy<'a>) -> Addressee<'a> {
        let d = &config.domain;
        let base = config.base_url();
        let archive = |campaign: Option<u64>| match (list.public, campaign) {
            (false, _) => String::new(),
            (true, Some(c)) => {
                let mut url = String::with_capacity(base.len() + list.id.len() + 30);
                let _ = write!(url, "{base}/archive/{}/{c}", list.id);
                url
            }
            (true, None) => format!("{base}/archive/{}", list.id),
        };
        let declared = |fill: &dyn Fn(&str) -> String| -> BTreeMap<String, String> {
            list.attributes
                .iter()
                .map(|a| (a.clone(), fill(a)))
                .collect()
        };
        match copy {
            Copy::Own {
                campaign,
                id,
                to: s,
                token,
            } => {
                // What they have, with "" for any declared one they lack.
                let attributes = if list.attributes.iter().all(|a| s.attributes.contains_key(a)) {
                    Cow::Borrowed(&s.attributes)
                } else {
                    let mut attributes = declared(&|_| String::new());
                    attributes.extend(s.attributes.clone());
                    Cow::Owned(attributes)
                };
                Addressee {
                    email: Cow::Borrowed(&s.email),
                    name: Cow::Borrowed(&s.name),
                    attributes,
                    unsubscribe_url: [base, "/unsubscribe/", token].concat(),
                    unsubscribe_mailto: list_address(list, "unsubscribe", Some(token), d),
                    reply_to: list_address(list, "reply", Some(token), d),
                    archive_url: archive(Some(campaign)),
                    message_id: {
                        let mut m = String::with_capacity(list.id.len() + d.len() + 48);
                        let _ = write!(m, "utskick.{}.c{campaign}.s{id:x}@{d}", list.id);
                        m
                    },
                }
            }
            Copy::Test { to, id } => Addressee {
                email: Cow::Borrowed(to),
                name: Cow::Borrowed(""),
                attributes: Cow::Owned(declared(&|_| String::new())),
                unsubscribe_url: format!("{base}/unsubscribe/test"),
                unsubscribe_mailto: list_address(list, "request", None, d),
                reply_to: list_address(list, "owner", None, d),
                archive_url: archive(None),
                message_id: format!("utskick.{}.test{id}@{d}", list.id),
            },
            Copy::Preview => Addressee {
                email: Cow::Borrowed("anna.andersson@example.se"),
                name: Cow::Borrowed("Anna Andersson"),
                attributes: Cow::Owned(declared(&|a| format!("({a})"))),
                unsubscribe_url: format!("{base}/unsubscribe/preview"),
                unsubscribe_mailto: list_address(list, "unsubscribe", None, d),
                reply_to: list_address(list, "reply", None, d),
                archive_url: archive(None),
                message_id: format!("utskick.{}.preview@{d}", list.id),
            },
        }
    }

    pub fn recipient(&self) -> Recipient<'_> {
        Recipient {
            email: &self.email,
            name: &self.name,
            attributes: &self.attributes,
            unsubscribe_url: &self.unsubscribe_url,
            unsubscribe_mailto: &self.unsubscribe_mailto,
            reply_to: &self.reply_to,
            archive_url: &self.archive_url,
        }
    }

    /// The envelope of this copy, sent (or shown) at `date`.
    pub fn envelope<'b>(&'b self, date: DateTime<FixedOffset>, domain: &'b str) -> Envelope<'b> {
        Envelope {
            message_id: &self.message_id,
            date,
            domain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Frozen, Status, Subscriber, RECORD_VERSION};

    fn list(public: bool) -> List {
        let toml = format!("name = \"Nätet\"\naddress = \"nat\"\npublic = {public}\n");
        List::parse("nat", &toml).unwrap()
    }

    /// The link must be the route `web::archive` serves:
    /// `/archive/{list}/{campaign}`.
    #[test]
    fn a_copy_links_its_archive_page_only_when_the_list_is_public() {
        let config = Config {
            domain: "example.se".into(),
            base_url: "https://lista.example.se/".into(),
            ..Config::default()
        };
        let now = chrono::Utc::now();
        let s = Subscriber {
            v: RECORD_VERSION,
            id: 7,
            list: "nat".into(),
            email: "a@example.org".into(),
            name: "Anna".into(),
            status: Status::Confirmed,
            attributes: BTreeMap::new(),
            consent: None,
            created_at: now,
            subscribed_at: Some(now),
            unsubscribed_at: None,
            bounces: 0,
            bounce_score: 0.0,
            last_bounce_at: None,
            last_bounce_reason: None,
            probe_sent_at: None,
            notmetoo: false,
            digest: false,
            updated_at: now,
        };
        let frozen = Frozen {
            email: s.email.clone(),
            name: s.name.clone(),
            attributes: s.attributes.clone(),
        };
        let own = |list: &List| {
            Addressee::new(
                &config,
                list,
                Copy::Own {
                    campaign: 12,
                    id: s.id,
                    to: &frozen,
                    token: "t",
                },
            )
            .archive_url
            .clone()
        };
        assert_eq!(own(&list(true)), "https://lista.example.se/archive/nat/12");
        let test = Addressee::new(
            &config,
            &list(true),
            Copy::Test {
                to: "b@x.se",
                id: 3,
            },
        );
        assert_eq!(test.archive_url, "https://lista.example.se/archive/nat");
        let preview = Addressee::new(&config, &list(true), Copy::Preview);
        assert_eq!(preview.archive_url, "https://lista.example.se/archive/nat");
        assert_eq!(own(&list(false)), "");
        assert_eq!(
            Addressee::new(&config, &list(false), Copy::Preview).archive_url,
            ""
        );
    }

    /// A copy borrows the frozen attributes when they hold every declared
    /// one, and fills a missing one with "" (strict templates need it); an
    /// attribute the list no longer declares stays either way.
    #[test]
    fn a_copy_has_every_declared_attribute() {
        let config = Config {
            domain: "example.se".into(),
            ..Config::default()
        };
        let toml = "name = \"N\"\naddress = \"nat\"\nattributes = [\"region\", \"kommun\"]\n";
        let list = List::parse("nat", toml).unwrap();
        let attrs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        for (frozen, want, borrowed) in [
            (
                attrs(&[("region", "Gotland"), ("kommun", "Visby"), ("old", "x")]),
                attrs(&[("region", "Gotland"), ("kommun", "Visby"), ("old", "x")]),
                true,
            ),
            (
                attrs(&[("region", "Gotland"), ("old", "x")]),
                attrs(&[("region", "Gotland"), ("kommun", ""), ("old", "x")]),
                false,
            ),
            (
                BTreeMap::new(),
                attrs(&[("region", ""), ("kommun", "")]),
                false,
            ),
        ] {
            let to = Frozen {
                email: "a@example.org".into(),
                name: "Anna".into(),
                attributes: frozen,
            };
            let copy = Addressee::new(
                &config,
                &list,
                Copy::Own {
                    campaign: 1,
                    id: 2,
                    to: &to,
                    token: "t",
                },
            );
            assert_eq!(*copy.attributes, want);
            assert_eq!(matches!(copy.attributes, Cow::Borrowed(_)), borrowed);
            assert_eq!(copy.email, "a@example.org");
        }
    }
}
