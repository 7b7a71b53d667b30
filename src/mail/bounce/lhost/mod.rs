//! One module per MTA or mail service that writes delivery reports (the
//! `lhost` families of sisimai, whose names and marks these follow, and a
//! few more the wild showed: MailEnable, airmail). Each module says how its
//! reports are recognised and what it writes around a failed recipient that
//! no other family writes; reading the recipients is shared (`dsn.rs`, the
//! RFC 3464 core, then `text.rs`, the RFC 3464-ish fallback for text).
//!
//! A family's cues, headings and respelling apply to every report, not only
//! to reports recognised as that family: relays wrap each other's text, and
//! a report from an MTA never seen before is read with everything the known
//! ones taught. The family that is recognised names the report in
//! `utskick ignored` when it names nobody on the list.
//!
//! Adding a family: one file here with its [`Lhost`], one line in [`ALL`]
//! (specific marks before generic ones: the first family whose `detect`
//! holds wins), and a sample with its `family` in
//! `tests/corpus/bounces/expected.json`. Pure.

mod activehunter;
mod airmail;
mod amavis;
mod amazonses;
mod amazonworkmail;
mod aol;
mod apachejames;
mod barracuda;
mod bigfoot;
mod biglobe;
mod courier;
mod domino;
mod dragonfly;
mod einsundeins;
mod exchange2003;
mod exchange2007;
mod exim;
mod ezweb;
mod facebook;
mod gmail;
mod gmx;
mod googlegroups;
mod gsuite;
mod imailserver;
mod interscanmss;
mod kddi;
mod mailenable;
mod mailfoundry;
mod mailmarshalsmtp;
mod mailru;
mod mcafee;
mod messagelabs;
mod messagingserver;
mod mfilter;
mod mxlogic;
mod notes;
mod office365;
mod opensmtpd;
mod outlook;
mod postfix;
mod powermta;
mod qmail;
mod receivingses;
mod sendgrid;
mod sendmail;
mod surfcontrol;
mod v5sendmail;
mod verizon;
mod x1;
mod x2;
mod x3;
mod x6;
mod yahoo;
mod yandex;
mod zoho;

use mail_parser::Message;

/// A family of delivery reports.
pub(crate) struct Lhost {
    /// sisimai's name for it (`postfix`, `exchange2007`, ...).
    pub name: &'static str,
    /// Whether a report is this family's, from its header and text.
    pub detect: fn(&Head) -> bool,
    /// What this family writes just before a failed recipient on its line
    /// (lower case, without a trailing colon), beyond the common cues.
    pub cues: &'static [&'static str],
    /// Lines (lower case) that head a list of failed addresses, one a line.
    pub headings: &'static [&'static str],
    /// Rewrites a line that spells an address in this family's own way so
    /// that the address reads as one (X.400's `dda:SMTP=a@b`).
    pub respell: Option<fn(&str) -> Option<String>>,
    /// The reason of a failure whose wording gives none, when the family
    /// fails for one reason only.
    pub reason: Option<&'static str>,
}

/// Every family, in the order they are tried.
pub(crate) const ALL: &[&Lhost] = &[
    &activehunter::LHOST,
    &amavis::LHOST,
    &amazonworkmail::LHOST,
    &receivingses::LHOST,
    &amazonses::LHOST,
    &aol::LHOST,
    &yahoo::LHOST,
    &apachejames::LHOST,
    &barracuda::LHOST,
    &bigfoot::LHOST,
    &biglobe::LHOST,
    &facebook::LHOST,
    &gmx::LHOST,
    &googlegroups::LHOST,
    &gsuite::LHOST,
    &gmail::LHOST,
    &mcafee::LHOST,
    &messagelabs::LHOST,
    &mfilter::LHOST,
    &surfcontrol::LHOST,
    &yandex::LHOST,
    &zoho::LHOST,
    &mailru::LHOST,
    &ezweb::LHOST,
    &kddi::LHOST,
    &verizon::LHOST,
    &interscanmss::LHOST,
    &mailfoundry::LHOST,
    &mailmarshalsmtp::LHOST,
    &dragonfly::LHOST,
    &opensmtpd::LHOST,
    &exchange2007::LHOST,
    &office365::LHOST,
    &outlook::LHOST,
    &einsundeins::LHOST,
    &domino::LHOST,
    &notes::LHOST,
    &imailserver::LHOST,
    &messagingserver::LHOST,
    &courier::LHOST,
    &powermta::LHOST,
    &sendgrid::LHOST,
    &mailenable::LHOST,
    &airmail::LHOST,
    &exchange2003::LHOST,
    &x1::LHOST,
    &x3::LHOST,
    &mxlogic::LHOST,
    &v5sendmail::LHOST,
    &exim::LHOST,
    &sendmail::LHOST,
    &postfix::LHOST,
    &qmail::LHOST,
    &x2::LHOST,
    &x6::LHOST,
];

/// What a family is recognised by, lower case: the header fields (without
/// `Received`, kept apart), and the report's own text.
pub(crate) struct Head {
    /// `From`, as written.
    pub from: String,
    /// `Subject`, decoded.
    pub subject: String,
    /// `Message-ID`, with its angle brackets.
    pub message_id: String,
    /// Every `Received` field.
    pub received: Vec<String>,
    /// Every other field: (name, value).
    pub fields: Vec<(String, String)>,
    /// The fields other than `Received`, one a line (`name:value`).
    pub header: String,
    /// The report's text (not the returned original).
    pub text: String,
}

impl Head {
    /// The header and `texts` (the report's text parts) of `msg`.
    pub(crate) fn of(msg: &Message<'_>, texts: &[String]) -> Head {
        let mut head = Head {
            from: String::new(),
            subject: msg.subject().unwrap_or("").trim().to_lowercase(),
            message_id: String::new(),
            received: Vec::new(),
            fields: Vec::new(),
            header: String::new(),
            text: texts.join("\n").to_lowercase(),
        };
        for (name, value) in msg.headers_raw() {
            let name = name.trim().to_ascii_lowercase();
            let value = crate::mail::bounce_words::unfold(value)
                .trim()
                .to_lowercase();
            match name.as_str() {
                "received" => {
                    head.received.push(value);
                    continue;
                }
                "from" if head.from.is_empty() => head.from = value.clone(),
                "message-id" if head.message_id.is_empty() => head.message_id = value.clone(),
                _ => {}
            }
            head.header.push_str(&name);
            head.header.push(':');
            head.header.push_str(&value);
            head.header.push('\n');
            head.fields.push((name, value));
        }
        head
    }

    /// Whether a field named `name` (lower case) is present and not empty.
    pub fn has(&self, name: &str) -> bool {
        self.field(name).is_some_and(|v| !v.is_empty())
    }

    /// The first field named `name` (lower case).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a `Received` field contains `s`.
    pub fn received_has(&self, s: &str) -> bool {
        self.received.iter().any(|r| r.contains(s))
    }
}

/// The first family whose marks `head` carries.
pub(crate) fn detect(head: &Head) -> Option<&'static Lhost> {
    ALL.iter().find(|l| (l.detect)(head)).copied()
}

/// Every family's cues before a failed recipient.
pub(crate) fn cues() -> impl Iterator<Item = &'static str> {
    ALL.iter().flat_map(|l| l.cues.iter().copied())
}

/// Every family's headings over a list of failed addresses.
pub(crate) fn headings() -> impl Iterator<Item = &'static str> {
    ALL.iter().flat_map(|l| l.headings.iter().copied())
}

/// `line` as the first family that spells addresses its own way rewrites
/// it, or as it is.
pub(crate) fn respell(line: &str) -> std::borrow::Cow<'_, str> {
    ALL.iter()
        .filter_map(|l| l.respell)
        .find_map(|f| f(line))
        .map_or(std::borrow::Cow::Borrowed(line), std::borrow::Cow::Owned)
}
