//! One compiled copy written into one buffer: the header block
//! (`headers`), then the frame with the two parts pre-encoded
//! (`encode`), the bytes `Prepared::assemble` gives for the same inputs.
//! A copy this cannot write (DKIM, base64, a CR or LF in a link, an
//! address lettre refuses) is left to `Prepared::assemble`.

use std::borrow::Cow;
use std::cell::RefCell;

use super::encode::Filled;
use super::headers;
use super::{values, variant_index, Compiled, PREHEADER_SLOT, SUBJECT_SLOT};
use crate::address::{header_safe, is_header_safe};
use crate::compose::mime::{mailbox, Envelope, Recipient};
use crate::daemon::lists::List;

thread_local! {
    /// A sending thread's buffers for the filled lines of a copy's two
    /// parts, kept from copy to copy.
    static FILLED: RefCell<[Filled; 2]> = RefCell::default();
}

impl Compiled {
    /// Appends the copy for `r` to `out`; `None` (with `out` as it was)
    /// when this copy is one for the ordinary assembly.
    pub(super) fn write_copy(
        &self,
        list: &List,
        r: &Recipient<'_>,
        env: &Envelope<'_>,
        out: &mut Vec<u8>,
    ) -> Option<()> {
        FILLED.with(|filled| match filled.try_borrow_mut() {
            Ok(mut filled) => self.write_copy_with(list, r, env, out, &mut filled),
            Err(_) => self.write_copy_with(list, r, env, out, &mut Default::default()),
        })
    }

    fn write_copy_with(
        &self,
        list: &List,
        r: &Recipient<'_>,
        env: &Envelope<'_>,
        out: &mut Vec<u8>,
        filled: &mut [Filled; 2],
    ) -> Option<()> {
        let mut values = values(self.public, &self.attributes, r);
        let index = variant_index(&self.varied, &values);
        let v = &self.variants[index];
        let subject = safe(super::fill(&v.subject, &values));
        let preheader = safe(super::fill(&v.preheader, &values));
        values[SUBJECT_SLOT] = Cow::Owned(subject);
        values[PREHEADER_SLOT] = Cow::Owned(preheader);
        let parts = &self.encoded[index];
        let encodings = [
            parts[0].measure(&values, &mut filled[0])?,
            parts[1].measure(&values, &mut filled[1])?,
        ];
        let lines = self.kept.domain(list, env.domain)?;
        let to = mailbox(r.name, r.email).ok()?;
        let reply_to = mailbox("", r.reply_to).ok()?;
        let message_id = message_id(env.message_id);

        out.reserve(parts[0].estimate + parts[1].estimate + self.frame.estimate);
        out.extend_from_slice(&lines.0);
        headers::address(out, "To", &to);
        headers::address(out, "Reply-To", &reply_to);
        headers::text(out, "Subject", &values[SUBJECT_SLOT]);
        self.kept.date(out, env.date);
        let mut bracketed = String::with_capacity(message_id.len() + 2);
        bracketed.push('<');
        bracketed.push_str(&message_id);
        bracketed.push('>');
        headers::text(out, "Message-ID", &bracketed);
        out.extend_from_slice(&lines.1);
        let unsubscribe = unsubscribe(r.unsubscribe_url, r.unsubscribe_mailto);
        headers::text(out, "List-Unsubscribe", &unsubscribe);
        self.frame
            .write_body(out, &message_id, encodings, |i, out: &mut Vec<u8>| {
                parts[i].write(encodings[i], &filled[i], out)
            });
        Some(())
    }
}

/// The Message-ID without <>, as `assemble` makes it
/// (`header_safe(id).replace(['<', '>', ' '], "")`), borrowed when that
/// changes nothing (an id of ours never has them).
fn message_id(id: &str) -> Cow<'_, str> {
    if is_header_safe(id) && !id.contains(['<', '>', ' ']) {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(header_safe(id).replace(['<', '>', ' '], ""))
    }
}

/// `header_safe(value)`, without a copy when it would not change it.
fn safe(value: String) -> String {
    match is_header_safe(&value) {
        true => value,
        false => header_safe(&value),
    }
}

/// List-Unsubscribe's value as `assemble` makes it (`header_safe` of
/// `<{bracket_safe(url)}>, <mailto:{bracket_safe(mailto)}>`), in one
/// String: `bracket_safe` leaves no space or control character for
/// `header_safe` to change, and drops every one (`header_safe` makes a
/// control character a space, and `bracket_safe` drops spaces).
fn unsubscribe(url: &str, mailto: &str) -> String {
    let safe = |c: &char| !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>' | ',');
    // Ours are printable ASCII without those: copied whole, not char by
    // char (a filtered extend was a tenth of a copy's writing).
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b','))
    };
    let push = |value: &mut String, s: &str| match plain(s) {
        true => value.push_str(s),
        false => value.extend(s.chars().filter(safe)),
    };
    let mut value = String::with_capacity(url.len() + mailto.len() + 14);
    value.push('<');
    push(&mut value, url);
    value.push_str(">, <mailto:");
    push(&mut value, mailto);
    value.push('>');
    value
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::compose::compiled::CompiledOr;
    use crate::compose::mime::{bracket_safe, Prepared};

    #[test]
    fn is_header_safe_says_when_header_safe_changes_nothing() {
        for value in [
            "",
            "a",
            "a b",
            " a",
            "a ",
            "a  b",
            "a\tb",
            "a\u{a0}b",
            "a\u{1}b",
            "Åsa Öberg",
            "a\u{2003}b",
            "a\r\nb",
            "📬 x",
        ] {
            assert_eq!(
                is_header_safe(value),
                header_safe(value) == value,
                "{value:?}"
            );
        }
    }

    #[test]
    fn unsubscribe_is_assembles_value() {
        for (url, mailto) in [
            ("https://x.se/u/abc", "l-unsubscribe+abc@x.se"),
            (
                " a\tb\r\nc\u{1}d\u{a0}e\u{2003}f<g>,h ",
                "<m>,\u{7f} n\u{85}o",
            ),
            ("", ""),
            // Printable ASCII all through (copied whole), and with one
            // character that is not (filtered) at either end.
            (
                "https://lista.example.se/unsubscribe/abcdefghij234567",
                "lokal-finansiering-unsubscribe+abcdefghij234567@lista.example.se",
            ),
            ("https://x.se/u/abc\u{7f}", "~l@x.se"),
            ("\u{a0}https://x.se/u/abc", "l@x.se\t"),
        ] {
            let want = header_safe(&format!(
                "<{}>, <mailto:{}>",
                bracket_safe(url),
                bracket_safe(mailto)
            ));
            assert_eq!(unsubscribe(url, mailto), want, "{url:?} {mailto:?}");
        }
    }

    /// The benchmark's newsletter: an ordinary copy is written by
    /// `write_copy` (not left to the ordinary assembly) and is the
    /// per-recipient copy; one with a CR LF in its link, or with so many
    /// emoji in its name that its text part is base64, is left to it.
    #[test]
    fn ordinary_copies_are_written_directly_and_the_rest_assembled() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let list = List::parse(
            "lokal-finansiering",
            &std::fs::read_to_string(root.join("lists/lokal-finansiering.toml")).unwrap(),
        )
        .unwrap();
        let text = std::fs::read_to_string(root.join("bench/newsletter.md")).unwrap();
        let (content, _) =
            crate::compose::newsletter::parse_newsletter("newsletter.md", &text).unwrap();
        let prepared = Prepared::new(&content, &list, &root.join("templates")).unwrap();
        let CompiledOr::Compiled(compiled) =
            Prepared::new(&content, &list, &root.join("templates"))
                .unwrap()
                .compile(&list)
        else {
            panic!("the benchmark newsletter compiles");
        };
        let attributes: BTreeMap<String, String> =
            [("region".to_string(), "Jämtland".to_string())].into();
        let emoji = "📬".repeat(3000);
        let env = Envelope {
            message_id: "utskick.lf.c12.r34@lista.example.se",
            date: chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00+01:00").unwrap(),
            domain: "lista.example.se",
        };
        for (name, url, direct) in [
            (
                "Åsa Öberg",
                "https://lista.example.se/unsubscribe/abc",
                true,
            ),
            ("", "https://lista.example.se/unsubscribe/abc", true),
            ("Åsa", "https://lista.example.se/unsubscribe/a\r\nb", false),
            (
                emoji.as_str(),
                "https://lista.example.se/unsubscribe/abc",
                false,
            ),
        ] {
            let r = Recipient {
                email: "asa@example.org",
                name,
                attributes: &attributes,
                unsubscribe_url: url,
                unsubscribe_mailto: "lf-unsubscribe+abc@lista.example.se",
                reply_to: "lf-reply+abc@lista.example.se",
                archive_url: "https://lista.example.se/archive/lokal-finansiering/12",
            };
            let mut out = Vec::new();
            let written = compiled.write_copy(&list, &r, &env, &mut out).is_some();
            assert_eq!(written, direct, "{url:?}");
            let want = prepared.message(&list, &r, &env, None).unwrap();
            if written {
                assert!(out == want, "{}", String::from_utf8_lossy(&out));
            } else {
                assert!(out.is_empty());
            }
            assert!(compiled.message(&list, &r, &env, None).unwrap() == want);
        }
    }
}
