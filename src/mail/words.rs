//! The command words people write in a Subject or a first line, in Swedish
//! and English, and how they are found. Pure.

/// Words that subscribe, in Subject or the first line (spec: any case).
pub const SUBSCRIBE_WORDS: &[&str] = &["subscribe", "prenumerera", "join"];

/// Words that unsubscribe.
pub const UNSUBSCRIBE_WORDS: &[&str] = &[
    "unsubscribe",
    "avsluta",
    "avprenumerera",
    "avregistrera",
    "sluta",
    "stop",
    "leave",
];

/// Words that ask for help.
pub const HELP_WORDS: &[&str] = &["help", "hjälp"];

/// Words that approve an owner's post (or a person waiting on a closed
/// list) when the reply's own text begins with one, any case.
pub const APPROVAL_WORDS: &[&str] = &["ok", "ja", "skicka", "godkänn", "send", "approve"];

/// Does `text` begin with an approval word ("Ok!", "Ja, skicka.")?
pub fn begins_with_approval(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
        .find(|w| !w.is_empty())
        .is_some_and(|w| APPROVAL_WORDS.contains(&w.to_lowercase().as_str()))
}

/// On a discussion list: no copy of one's own posts (`inte-mig`).
pub const NOTMETOO_WORDS: &[&str] = &["inte-mig", "nomail-self", "notmetoo"];
/// On a discussion list: copies of one's own posts again.
pub const METOO_WORDS: &[&str] = &["mig-också", "mig-ocksa", "metoo", "mail-self"];

/// On a discussion list: one digest a day instead of each post.
pub const DIGEST_WORDS: &[&str] = &["sammandrag", "digest"];
/// On a discussion list: each post again.
pub const NODIGEST_WORDS: &[&str] = &["enskilda", "nodigest"];

/// A member's setting on a discussion list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// true: no copies of one's own posts.
    NotMeToo(bool),
    /// true: a digest a day.
    Digest(bool),
}

impl Setting {
    /// The name the `member-setting` template reads.
    pub fn name(self) -> &'static str {
        match self {
            Setting::NotMeToo(true) => "notmetoo",
            Setting::NotMeToo(false) => "metoo",
            Setting::Digest(true) => "digest",
            Setting::Digest(false) => "nodigest",
        }
    }

    /// The setting [`Setting::name`] names.
    pub fn from_name(name: &str) -> Option<Setting> {
        [
            Setting::NotMeToo(true),
            Setting::NotMeToo(false),
            Setting::Digest(true),
            Setting::Digest(false),
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// A member's setting word. The whole trimmed text must be it.
pub fn member_setting(text: &str) -> Option<Setting> {
    let t = text
        .trim()
        .trim_end_matches(['.', '!', '?'])
        .trim()
        .to_lowercase();
    let is = |words: &[&str]| words.contains(&t.as_str());
    if is(NOTMETOO_WORDS) {
        Some(Setting::NotMeToo(true))
    } else if is(METOO_WORDS) {
        Some(Setting::NotMeToo(false))
    } else if is(DIGEST_WORDS) {
        Some(Setting::Digest(true))
    } else if is(NODIGEST_WORDS) {
        Some(Setting::Digest(false))
    } else {
        None
    }
}

/// A command word found in a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    Subscribe,
    Unsubscribe,
    Help,
}

/// Strips reply and forward prefixes: "Re: SV: Sv: AW: Fwd: VS:".
pub fn strip_subject_prefixes(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_lowercase();
        let stripped = [
            "re:", "sv:", "aw:", "vs:", "fwd:", "fw:", "vb:", "antw:", "ang:",
        ]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| s[p.len()..].trim_start());
        match stripped {
            Some(rest) => s = rest,
            None => return s,
        }
    }
}

/// Reads one command word: the whole trimmed text (less trailing
/// punctuation) must be the word, so "Stop sending me the handbook" is not one.
pub fn command_word(text: &str) -> Option<Word> {
    let t = text
        .trim()
        .trim_end_matches(['.', '!', '?'])
        .trim()
        .to_lowercase();
    let is = |words: &[&str]| words.contains(&t.as_str());
    if is(SUBSCRIBE_WORDS) {
        Some(Word::Subscribe)
    } else if is(UNSUBSCRIBE_WORDS) {
        Some(Word::Unsubscribe)
    } else if is(HELP_WORDS) {
        Some(Word::Help)
    } else {
        None
    }
}

/// The first line of the body that is neither empty nor quoted.
pub fn first_own_line(body: &str) -> Option<&str> {
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('>'))
}
