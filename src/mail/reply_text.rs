//! Finds the subscriber's own words in a reply to a newsletter — the text above the quoted newsletter, without the mail client's signature — so that the "avsluta" in our quoted footer never unsubscribes anyone; pure text work, no I/O.
//!
//! # What counts as the quote
//!
//! The body is read line by line from the top; the quote starts at the first
//! of these:
//!
//! * a line starting with `>`. When the last non-blank line above it ends
//!   with `:` and carries a digit, an `@` or a "wrote"/"skrev" word, that line
//!   is the attribution and belongs to the quote too (Yandex, Mail.ru and
//!   other clients whose attribution is not one of the patterns below);
//! * an attribution such as "On Tue, Dec 3, 2026 at 10:15 AM Anna <a@b.se>
//!   wrote:" or "Den tis 3 dec. 2026 kl 10:15 skrev Anna <a@b.se>:", which
//!   Gmail, Apple Mail and Thunderbird wrap over up to three lines. It must
//!   start like one ("On ", "Den ", "Am ", a date, ...), end with `:` and
//!   hold a "wrote" word, so "On your remote host you can run:" is text;
//! * an Outlook header block: at least three header lines (From/Från,
//!   Sent/Skickat, To/Till, Subject/Ämne, Date, Cc, also in bold `*From:*`
//!   and a few other languages) among which a From line;
//! * "-----Original Message-----", "-----Ursprungligt meddelande-----",
//!   "---------- Forwarded message ---------", "Vidarebefordrat meddelande",
//!   Apple's "Begin forwarded message:", and a line of ten or more
//!   underscores (Outlook's separator, and the footer Mailman appends).
//!
//! # Interleaved and bottom-posted replies
//!
//! For a reply written between quotes, [`own_text`] is the text ABOVE the
//! first quote: that is the part the unsubscribe decision reads, and a person
//! who answers point by point has something else on their mind. Only when
//! nothing is written above the quote (bottom posting, as Thunderbird users
//! often do) is the first unquoted text below a `>` block taken instead;
//! otherwise a bottom-posted "avsluta" would be forwarded to the project
//! leader instead of unsubscribing.
//!
//! # Signatures
//!
//! Everything from a `-- ` (or `--`) line down is dropped, and so are, at
//! the end of the text, mobile signatures ("Sent from my iPhone", "Skickat
//! från min iPhone", "Get Outlook for iOS"), a short `-Name` line, and lines
//! of only dashes or underscores. Closings such as "Hälsningar" or "Tack!"
//! are kept: they are the person's own words.

use crate::mail::html_text::html_to_text;
use mail_parser::{Message, PartType};

/// The reply's own text: the part above the quote, from the first text/plain part, or from the HTML part converted to text when there is no plain part.
///
/// Signatures ("-- " block, "Sent from my iPhone", "Skickat från min
/// iPhone", "-Name") are removed, closings kept, trailing whitespace
/// trimmed. Empty when the message has no text at all.
pub fn own_text(msg: &Message<'_>) -> String {
    // `text_body` lists the HTML part too when an alternative has no plain
    // part; the plain part wins wherever there is one.
    let parts = || {
        msg.text_body
            .iter()
            .chain(&msg.html_body)
            .filter_map(|&id| msg.part(id))
    };
    if let Some(text) = parts().find_map(|p| match &p.body {
        PartType::Text(t) => Some(t),
        _ => None,
    }) {
        return own_text_of(text);
    }
    parts()
        .find_map(|p| match &p.body {
            PartType::Html(h) => Some(own_text_of(&html_to_text(h))),
            _ => None,
        })
        .unwrap_or_default()
}

/// The same for a plain text body.
pub fn own_text_of(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.lines().collect();
    let (start, end) = find_quote(&lines, 0).unwrap_or((lines.len(), Some(lines.len())));
    let mut own = strip_signature(&lines[..start]);
    if own.is_empty() {
        if let Some(end) = end {
            let next = find_quote(&lines, end).map_or(lines.len(), |(s, _)| s);
            own = strip_signature(&lines[end..next]);
        }
    }
    own.join("\n")
}

// ---------------------------------------------------------------------------
// Finding the quote
// ---------------------------------------------------------------------------

/// Where the first quote at or after line `from` starts, and where it ends
/// when the text after it is not all quote (only a `>` block ends; after a
/// header block or a separator everything is the quoted message).
fn find_quote(lines: &[&str], from: usize) -> Option<(usize, Option<usize>)> {
    for i in from..lines.len() {
        if is_quoted(lines[i]) {
            let start = attribution_above(lines, from, i).unwrap_or(i);
            return Some((start, Some(quote_block_end(lines, i))));
        }
        if let Some(n) = attribution_at(lines, i) {
            let mut j = i + n;
            while j < lines.len() && lines[j].trim().is_empty() {
                j += 1;
            }
            // An attribution followed by unmarked text (an HTML quote turned
            // into plain text without "> ") leaves nothing of ours below it.
            let end = (j < lines.len() && is_quoted(lines[j])).then(|| quote_block_end(lines, j));
            return Some((i, end));
        }
        if header_block_at(lines, i) || is_separator(lines[i]) {
            return Some((i, None));
        }
    }
    None
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// The line after a run of `>` lines, blank lines inside the run included.
fn quote_block_end(lines: &[&str], start: usize) -> usize {
    let mut end = start;
    let mut i = start;
    while i < lines.len() {
        if is_quoted(lines[i]) {
            end = i + 1;
        } else if !lines[i].trim().is_empty() {
            break;
        }
        i += 1;
    }
    end
}

/// Words that say "wrote" in an attribution line, lower case.
const WROTE: &[&str] = &[
    "wrote",
    "writes",
    "skrev",
    "schrieb",
    "écrit",
    "escribió",
    "escreveu",
    "scrisse",
    "schreef",
    "kirjoitti",
    "napisał",
    "написал",
    "написала",
];

/// How attribution lines begin (besides a digit, for "3 dec. 2026 kl. 10:15
/// skrev ..." and "02.04.2012 14:20 ...").
const ATTRIBUTION_START: &[&str] = &[
    "On ", "on ", "Den ", "den ", "Am ", "Le ", "El ", "Il ", "Op ", "Em ", "På ", "W dniu ",
    "Dne ",
];

fn has_wrote_word(text: &str) -> bool {
    let lower = text.to_lowercase();
    WROTE.iter().any(|w| {
        lower.match_indices(w).any(|(at, _)| {
            // A whole word: "beskrev" or "rewrote" in ordinary text is not one.
            let before = lower[..at].chars().next_back();
            let after = lower[at + w.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphabetic)
        })
    })
}

/// Number of lines (1 to 3) of an attribution starting at line `i`.
fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    let first = lines[i].trim_start();
    let starts_like_one = ATTRIBUTION_START.iter().any(|s| first.starts_with(s))
        || first.starts_with(|c: char| c.is_ascii_digit());
    if !starts_like_one {
        return None;
    }
    let mut joined = String::new();
    for (n, line) in lines[i..].iter().take(3).enumerate() {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        if n > 0 {
            joined.push(' ');
        }
        joined.push_str(line);
        if joined.ends_with(':') && joined.len() <= 400 && has_wrote_word(&joined) {
            return Some(n + 1);
        }
    }
    None
}

/// The attribution line just above the `>` line `quote` (blank lines
/// between allowed), not above line `from`.
fn attribution_above(lines: &[&str], from: usize, quote: usize) -> Option<usize> {
    let p = (from..quote).rev().find(|&p| !lines[p].trim().is_empty())?;
    let line = lines[p].trim();
    let looks_like_one = line.ends_with(':')
        && line.len() <= 400
        && (line.contains(|c: char| c.is_ascii_digit())
            || line.contains('@')
            || has_wrote_word(line));
    looks_like_one.then_some(p)
}

/// Header names that open a quoted Outlook header block, lower case.
const FROM_FIELDS: &[&str] = &["from", "från", "von", "de", "van", "fra", "da", "от"];

/// The other header names of such a block, lower case.
const OTHER_FIELDS: &[&str] = &[
    "sent",
    "date",
    "to",
    "cc",
    "subject",
    "reply-to",
    "skickat",
    "datum",
    "till",
    "kopia",
    "ämne",
    "gesendet",
    "an",
    "betreff",
    "envoyé",
    "à",
    "objet",
    "sendt",
    "til",
    "emne",
    "verzonden",
    "aan",
    "onderwerp",
    "enviado",
    "fecha",
    "para",
    "asunto",
    "отправлено",
    "дата",
    "кому",
    "тема",
];

/// The lower-case header name a line starts with ("From:", "*Från:*"), if
/// it is one of the known ones; the bool says whether it is a From name.
fn header_field(line: &str) -> Option<bool> {
    let l = line.trim().trim_start_matches('*').trim_start();
    let colon = l.find(':')?;
    if colon > 30 {
        return None;
    }
    let name = l[..colon]
        .trim()
        .trim_end_matches('*')
        .trim()
        .to_lowercase();
    if FROM_FIELDS.contains(&name.as_str()) {
        Some(true)
    } else if OTHER_FIELDS.contains(&name.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// True when an Outlook-style header block (three or more header lines,
/// one of them From) starts at line `i`.
fn header_block_at(lines: &[&str], i: usize) -> bool {
    if header_field(lines[i]).is_none() {
        return false;
    }
    let (mut fields, mut from, mut other) = (0, false, 0);
    for line in lines[i..].iter().take(12) {
        if line.trim().is_empty() {
            continue;
        }
        match header_field(line) {
            Some(is_from) => {
                fields += 1;
                from |= is_from;
            }
            // One wrapped value (a long To: list) may sit between fields.
            None if other == 0 && fields < 3 => other += 1,
            None => break,
        }
    }
    fields >= 3 && from
}

/// Marker texts of "original message" and forward separators, lower case,
/// without their dashes.
const SEPARATORS: &[&str] = &[
    "original message",
    "ursprungligt meddelande",
    "originalmeddelande",
    "forwarded message",
    "vidarebefordrat meddelande",
    "ursprüngliche nachricht",
    "weitergeleitete nachricht",
    "message d'origine",
    "message transféré",
    "mensaje original",
];

/// Apple Mail style forward lines, lower case.
const FORWARD_LINES: &[&str] = &[
    "begin forwarded message:",
    "vidarebefordrat brev:",
    "början på vidarebefordrat brev:",
    "start of forwarded message:",
    "anfang der weitergeleiteten nachricht:",
];

fn is_separator(line: &str) -> bool {
    let t = line.trim();
    if t.len() >= 10 && t.chars().all(|c| c == '_') {
        return true;
    }
    let lower = t.to_lowercase();
    if FORWARD_LINES.contains(&lower.as_str()) {
        return true;
    }
    let core = lower.trim_matches(|c: char| c == '-' || c == '*' || c == '=' || c.is_whitespace());
    t.starts_with("--") && SEPARATORS.contains(&core)
}

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

/// The lines of `own` without signature, trailing whitespace and leading or
/// trailing blank lines.
fn strip_signature<'a>(own: &[&'a str]) -> Vec<&'a str> {
    let end = own
        .iter()
        .position(|l| l.trim_end() == "--")
        .unwrap_or(own.len());
    let mut lines: Vec<&str> = own[..end].iter().map(|l| l.trim_end()).collect();
    while let Some(last) = lines.last() {
        if last.trim().is_empty()
            || is_mobile_signature(last)
            || is_dash_name(last)
            || is_rule(last)
        {
            lines.pop();
        } else {
            break;
        }
    }
    let first = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    lines.split_off(first)
}

/// Words that make "Sent from ..." a client's signature rather than a sentence.
const MAIL_APPS: &[&str] = &[
    "outlook",
    "mail",
    "e-post",
    "gmail",
    "yahoo",
    "aol",
    "samsung",
    "galaxy",
    "android",
    "ios",
    "iphone",
    "ipad",
    "blackberry",
    "windows",
    "huawei",
    "proton",
    "protonmail",
];

/// "Sent from my iPhone", "Skickat från min iPad", "Sent from my Verizon
/// Wireless BlackBerry", "Get Outlook for Android" — but not "Sent from my
/// desk, is much easier then my mobile phone." (a sentence).
fn is_mobile_signature(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    // Outlook appends a link: "Get Outlook for iOS<https://aka.ms/o0ukef>".
    let lower = lower.split(['<', '(']).next().unwrap_or_default().trim();
    let plain = |rest: &str| {
        rest.chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
            && (1..=5).contains(&rest.split_whitespace().count())
    };
    for mine in ["sent from my ", "skickat från min ", "skickat från mitt "] {
        if let Some(rest) = lower.strip_prefix(mine) {
            return plain(rest) && rest.split_whitespace().count() <= 3;
        }
    }
    [
        "sent from ",
        "skickat från ",
        "get outlook for ",
        "hämta outlook för ",
    ]
    .iter()
    .filter_map(|p| lower.strip_prefix(p))
    .any(|rest| plain(rest) && rest.split_whitespace().any(|w| MAIL_APPS.contains(&w)))
}

/// A "-Anna" or "-Abhishek Kona" line (a dash glued to a short name).
fn is_dash_name(line: &str) -> bool {
    let t = line.trim();
    t.len() <= 40
        && t.strip_prefix('-')
            .is_some_and(|r| r.starts_with(char::is_alphabetic))
        && t.split_whitespace().count() <= 3
}

/// A line of only dashes, underscores, equals signs or stars (a separator
/// left above a cut quote).
fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 3 && t.chars().all(|c| matches!(c, '-' | '_' | '=' | '*' | '~'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    /// The end of our newsletter, as subscribers quote it.
    const NEWSLETTER: &str = "Nyhetsbrev december\n\
        \n\
        Hej! Här kommer nyheterna från projektet Lokal finansiering.\n\
        \n\
        --\n\
        Vill du inte ha fler utskick? Klicka på https://example.se/a/XYZ eller svara med ordet avsluta.";

    const QUESTION: &str = "Tack! Kan ni skicka handboken i tryck?";

    /// `NEWSLETTER` with every line prefixed by `prefix`.
    fn quoted(prefix: &str) -> String {
        NEWSLETTER
            .lines()
            .map(|l| format!("{prefix}{l}").trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn gmail_sv_attribution_wrapped_over_two_lines() {
        let body = format!(
            "Avsluta\n\nDen tis 3 dec. 2026 kl 10:15 skrev Lokal finansiering <\n\
             nyhetsbrev@example.se>:\n\n{}\n",
            quoted("> ")
        );
        assert_eq!(own_text_of(&body), "Avsluta");
        let body = body.replacen("Avsluta", QUESTION, 1);
        assert_eq!(own_text_of(&body), QUESTION);
    }

    #[test]
    fn gmail_en_attribution() {
        let body = format!(
            "Unsubscribe please\n\nOn Tue, Dec 3, 2026 at 10:15 AM Lokal finansiering <\n\
             nyhetsbrev@example.se> wrote:\n\n{}\n",
            quoted("> ")
        );
        assert_eq!(own_text_of(&body), "Unsubscribe please");
        let one_line = body.replace("<\nnyhetsbrev", "<nyhetsbrev");
        assert_eq!(own_text_of(&one_line), "Unsubscribe please");
    }

    #[test]
    fn outlook_sv_header_block_without_quote_marks() {
        let body = format!(
            "{QUESTION}\n\nHälsningar\nAnna\n\n________________________________\n\
             Från: Lokal finansiering <nyhetsbrev@example.se>\n\
             Skickat: den 3 december 2026 10:15\n\
             Till: Anna Andersson <anna@example.se>\n\
             Ämne: Nyhetsbrev december\n\n{NEWSLETTER}\n"
        );
        // The closing is the person's own; only the quote goes.
        assert_eq!(
            own_text_of(&body),
            format!("{QUESTION}\n\nHälsningar\nAnna")
        );
    }

    #[test]
    fn outlook_en_bold_header_block() {
        let body = format!(
            "Avsluta\n\n*From:* Lokal finansiering [mailto:nyhetsbrev@example.se]\n\
             *Sent:* Tuesday, December 3, 2026 10:15 AM\n\
             *To:* anna@example.se\n\
             *Subject:* Nyhetsbrev december\n\n{NEWSLETTER}\n"
        );
        assert_eq!(own_text_of(&body), "Avsluta");
    }

    #[test]
    fn original_message_separators() {
        for sep in [
            "-----Original Message-----",
            "-----Ursprungligt meddelande-----",
            "----- Original Message -----",
            "---------- Forwarded message ---------",
            "---------- Vidarebefordrat meddelande ---------",
            "Begin forwarded message:",
        ] {
            let body = format!(
                "{QUESTION}\n\n{sep}\nFrom: nyhetsbrev@example.se\nSubject: Nyhetsbrev\n\n{NEWSLETTER}"
            );
            assert_eq!(own_text_of(&body), QUESTION, "{sep}");
        }
    }

    #[test]
    fn apple_mail_en_and_sv_with_mobile_signature() {
        let en = format!(
            "Avsluta\n\nSent from my iPhone\n\n\
             > On 3 Dec 2026, at 10:15, Lokal finansiering <nyhetsbrev@example.se> wrote:\n>\n{}",
            quoted("> ")
        );
        assert_eq!(own_text_of(&en), "Avsluta");
        let sv = format!(
            "{QUESTION}\n\nSkickat från min iPhone\n\n\
             3 dec. 2026 kl. 10:15 skrev Lokal finansiering <nyhetsbrev@example.se>:\n\n{}",
            quoted("> ")
        );
        assert_eq!(own_text_of(&sv), QUESTION);
    }

    #[test]
    fn thunderbird_sv_and_en() {
        let sv = format!(
            "Avsluta\n\nDen 2026-12-03 kl. 10:15, skrev Lokal finansiering:\n{}\n",
            quoted("> ")
        );
        assert_eq!(own_text_of(&sv), "Avsluta");
        let en = format!(
            "{QUESTION}\n\nOn 12/3/26 10:15 AM, Lokal finansiering wrote:\n{}\n",
            quoted("> ")
        );
        assert_eq!(own_text_of(&en), QUESTION);
    }

    #[test]
    fn bottom_posted_reply_is_read_below_the_quote() {
        let body = format!(
            "On 12/3/26 10:15 AM, Lokal finansiering wrote:\n{}\n\nUnsubscribe please\n",
            quoted("> ")
        );
        assert_eq!(own_text_of(&body), "Unsubscribe please");
    }

    #[test]
    fn a_bare_quote_gives_no_own_text() {
        // The quoted footer's "avsluta" must never come through.
        let gmail = format!(
            "\n\nDen tis 3 dec. 2026 kl 10:15 skrev Lokal finansiering <nyhetsbrev@example.se>:\n\n{}\n",
            quoted("> ")
        );
        assert_eq!(own_text_of(&gmail), "");
        let outlook = format!(
            "From: Lokal finansiering <nyhetsbrev@example.se>\nSent: Tuesday\nTo: anna@example.se\n\
             Subject: Nyhetsbrev\n\n{NEWSLETTER}"
        );
        assert_eq!(own_text_of(&outlook), "");
        // A Gmail-style attribution followed by unmarked text: all of it is quote.
        let unmarked =
            format!("On Tue, Dec 3, 2026 at 10:15 AM Lokal <n@example.se> wrote:\n\n{NEWSLETTER}");
        assert_eq!(own_text_of(&unmarked), "");
    }

    #[test]
    fn interleaved_reply_gives_the_text_above_the_first_quote() {
        let body = "Hej,\nOn Tue, Dec 3, 2026 at 10:15 AM Lokal <n@example.se> wrote:\n\
                    > Kommer ni till mötet?\n\nJa, två personer.\n\n> Avsluta genom att svara avsluta.\n\nAvsluta";
        assert_eq!(own_text_of(body), "Hej,");
    }

    #[test]
    fn text_that_only_looks_like_a_quote_header_stays() {
        let body = "Den nya handboken är bra. Skicka den gärna till:\nAnna Andersson\nByvägen 1";
        assert_eq!(own_text_of(body), body);
        let body = "On Monday we meet at 10:00, the agenda:\n- budget\n- handbook";
        assert_eq!(own_text_of(body), body);
    }

    #[test]
    fn signatures_go_closings_stay() {
        assert_eq!(
            own_text_of("Avsluta\n\n-- \nAnna Andersson\nByalaget"),
            "Avsluta"
        );
        assert_eq!(own_text_of("Avsluta\n\nSkickat från min iPad"), "Avsluta");
        assert_eq!(
            own_text_of("Avsluta\n\nHämta Outlook för Android<https://aka.ms/x>"),
            "Avsluta"
        );
        assert_eq!(own_text_of("Tack!\n\n-Anna\n"), "Tack!");
        assert_eq!(
            own_text_of("Tack!\n\nHälsningar\nAnna  \n\n"),
            "Tack!\n\nHälsningar\nAnna"
        );
        let sentence = "Avsluta\n\nSent from my desk, because the phone is broken.";
        assert_eq!(own_text_of(sentence), sentence);
        assert_eq!(own_text_of("Sluta -- nu!"), "Sluta -- nu!");
    }

    #[test]
    fn crlf_bodies() {
        let body = "Avsluta\r\n\r\nOn Tue, Dec 3, 2026 at 10:15 AM Lokal <n@example.se> wrote:\r\n> avsluta\r\n";
        assert_eq!(own_text_of(body), "Avsluta");
    }

    fn parse(raw: &str) -> Message<'_> {
        MessageParser::default()
            .parse(raw.as_bytes())
            .expect("parse")
    }

    #[test]
    fn own_text_prefers_the_plain_part() {
        let raw = "From: anna@example.se\r\nSubject: Re: Nyhetsbrev\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/alternative; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
            Avsluta\r\n\r\nDen tis 3 dec. 2026 kl 10:15 skrev Lokal <n@example.se>:\r\n> svara med ordet avsluta\r\n\
            --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
            <p>Something else</p>\r\n--b--\r\n";
        assert_eq!(own_text(&parse(raw)), "Avsluta");
    }

    #[test]
    fn own_text_converts_an_html_only_reply() {
        let gmail = "From: anna@example.se\r\nSubject: Re: Nyhetsbrev\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/html; charset=utf-8\r\n\r\n\
            <div dir=\"ltr\">Tack! Kan ni skicka handboken i tryck?</div><br><div class=\"gmail_quote\">\
            <div dir=\"ltr\" class=\"gmail_attr\">Den tis 3 dec. 2026 kl 10:15 skrev Lokal finansiering &lt;\
            <a href=\"mailto:n@example.se\">n@example.se</a>&gt;:<br></div><blockquote class=\"gmail_quote\">\
            <p>Hej!</p><p>Vill du inte ha fler utskick? Svara med ordet avsluta.</p></blockquote></div>\r\n";
        assert_eq!(own_text(&parse(gmail)), QUESTION);
        let outlook = "From: anna@example.se\r\nSubject: SV: Nyhetsbrev\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/html; charset=utf-8\r\n\r\n\
            <html><head><style>p.MsoNormal {margin:0}</style></head><body>\
            <p class=MsoNormal>Avsluta<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>\
            <div style='border-top:solid #E1E1E1 1.0pt'><p class=MsoNormal><b>Från:</b> Lokal finansiering \
            &lt;n@example.se&gt;<br><b>Skickat:</b> den 3 december 2026 10:15<br><b>Till:</b> \
            anna@example.se<br><b>Ämne:</b> Nyhetsbrev</p></div><p class=MsoNormal>svara med ordet avsluta</p>\
            </body></html>\r\n";
        assert_eq!(own_text(&parse(outlook)), "Avsluta");
    }

    #[test]
    fn own_text_of_an_empty_message() {
        let raw = "From: anna@example.se\r\nSubject: Re\r\nContent-Type: image/png\r\n\r\nxx\r\n";
        assert_eq!(own_text(&parse(raw)), "");
    }
}
