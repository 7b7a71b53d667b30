//! Who one copy of a campaign is for: the recipient the templates see, the
//! links in the copy and its Message-ID. One constructor for the three kinds
//! of copy (a subscriber's own, a test copy, a local preview), so their
//! links cannot drift apart.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};

use crate::compose::mime::{Envelope, Recipient};
use crate::daemon::config::Config;
use crate::daemon::lists::{list_address, List};
use crate::store::Subscriber;

/// Which copy.
pub enum Copy<'a> {
    /// A subscriber's own copy of campaign `campaign`: its links carry the
    /// subscriber's token.
    Own {
        campaign: u64,
        subscriber: &'a Subscriber,
        token: &'a str,
    },
    /// A test copy to `to` (`preview --to`), record `id`: its links carry
    /// no valid token, so it cannot unsubscribe anyone; replies go to the
    /// owners.
    Test { to: &'a str, id: u64 },
    /// A preview rendered locally for the list's sample person; never sent.
    Preview,
}

/// The owned parts of a [`Recipient`] and the Message-ID of one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    pub email: String,
    pub name: String,
    /// Every attribute the list declares is present, so strict templates
    /// never miss one.
    pub attributes: BTreeMap<String, String>,
    pub unsubscribe_url: String,
    pub unsubscribe_mailto: String,
    pub reply_to: String,
    /// Without <>.
    pub message_id: String,
}

impl Addressee {
    pub fn new(config: &Config, list: &List, copy: Copy<'_>) -> Addressee {
        let d = &config.domain;
        let base = config.base_url();
        let declared = |fill: &dyn Fn(&str) -> String| -> BTreeMap<String, String> {
            list.attributes
                .iter()
                .map(|a| (a.clone(), fill(a)))
                .collect()
        };
        match copy {
            Copy::Own {
                campaign,
                subscriber: s,
                token,
            } => {
                let mut attributes = declared(&|_| String::new());
                attributes.extend(s.attributes.clone());
                Addressee {
                    email: s.email.clone(),
                    name: s.name.clone(),
                    attributes,
                    unsubscribe_url: format!("{base}/unsubscribe/{token}"),
                    unsubscribe_mailto: list_address(list, "unsubscribe", Some(token), d),
                    reply_to: list_address(list, "reply", Some(token), d),
                    message_id: format!("utskick.{}.c{campaign}.s{:x}@{d}", list.id, s.id),
                }
            }
            Copy::Test { to, id } => Addressee {
                email: to.to_string(),
                name: String::new(),
                attributes: declared(&|_| String::new()),
                unsubscribe_url: format!("{base}/unsubscribe/test"),
                unsubscribe_mailto: list_address(list, "request", None, d),
                reply_to: list_address(list, "owner", None, d),
                message_id: format!("utskick.{}.test{id}@{d}", list.id),
            },
            Copy::Preview => Addressee {
                email: "anna.andersson@example.se".into(),
                name: "Anna Andersson".into(),
                attributes: declared(&|a| format!("({a})")),
                unsubscribe_url: format!("{base}/unsubscribe/preview"),
                unsubscribe_mailto: list_address(list, "unsubscribe", None, d),
                reply_to: list_address(list, "reply", None, d),
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
        }
    }

    /// The envelope of this copy, sent (or shown) at `date`.
    pub fn envelope<'a>(&'a self, date: DateTime<FixedOffset>, domain: &'a str) -> Envelope<'a> {
        Envelope {
            message_id: &self.message_id,
            date,
            domain,
        }
    }
}
