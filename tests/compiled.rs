//! A compiled campaign (`compose::compiled`) gives the very bytes
//! `Prepared::message` gives, for the shipped layouts in sv and en, both
//! kinds, with and without attachments, and for recipients whose names,
//! addresses and attributes try every slot: empty, ASCII, not ASCII,
//! quotes and markup, CR LF injections, long. A template the slots cannot
//! express is rendered per recipient, with the same bytes too.

use std::collections::BTreeMap;
use std::path::Path;

use utskick::compose::compiled::CompiledOr;
use utskick::compose::mime::{Envelope, Prepared, Recipient};
use utskick::daemon::lists::List;
use utskick::store::{Attachment, Content};

fn templates() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
}

fn list(lang: &str, public: bool) -> List {
    List::parse(
        "lokal-finansiering",
        &format!(
            "name = \"Lokal finansiering – för landsbygdens utveckling\"\n\
             address = \"lokal-finansiering\"\nlanguage = \"{lang}\"\n\
             public = {public}\n\
             description = \"Nyheter om lokala finansieringslösningar.\"\n\
             attributes = [\"organisation\", \"region\"]\n\
             organisation = \"Föreningen Lokal finansiering\"\n\
             contact = \"kontakt@example.se\"\n\
             privacy_url = \"https://example.se/integritet\"\n"
        ),
    )
    .unwrap()
}

/// A newsletter with the constructs the compiler must carry: the default
/// greeting (`drop_space_before_empty` makes it a condition on the
/// field), fields in a heading's line, in links and in the preheader,
/// long lines, text that is not ASCII, `=` and quotes (quoted-printable).
const NEWSLETTER: &str = "---\n\
subject: Nyhetsbrev december – till {{first_name}}, {{attributes.region}}\n\
preheader: Läs om handboken, {{name}}\n\
---\n\
Hej {{first_name}}!\n\
\n\
Det här är nyhetsbrevet för december från projektet Lokal finansiering – för landsbygdens utveckling, till {{name}} <{{email}}> på {{attributes.organisation}}, i {{attributes.region}}. Och en rad som är mycket längre än sjuttiosex tecken så att den måste brytas.\n\
\n\
## Handboken är klar\n\
\n\
Läs [handboken](https://example.se/handbok?till={{email}}&a=1) eller svara till {{email}}. Formeln är a=b och \"citat\" och 'apostrof'.\n\
\n\
- **Ljusdal**, 14 januari: {{attributes.region}}\n\
- Östersund: ÅÄÖ åäö € 📬\n\
\n\
Hälsningar\\\n\
{{list.name}}\n";

fn newsletter(attachments: Vec<Attachment>) -> Content {
    let (mut content, _) =
        utskick::compose::newsletter::parse_newsletter("december.md", NEWSLETTER).unwrap();
    content.attachments = attachments;
    content
}

fn pdf() -> Vec<Attachment> {
    vec![
        Attachment {
            filename: "Handbok för lokal finansiering.pdf".into(),
            content_type: "application/pdf".into(),
            data: b"%PDF-1.4\n% utskick test\n".repeat(100),
        },
        Attachment {
            filename: "program.txt".into(),
            content_type: "text/plain".into(),
            data: "Program för träffen\nkl 10 fika\n".as_bytes().to_vec(),
        },
    ]
}

fn announcement(attachments: Vec<Attachment>) -> Content {
    utskick::compose::newsletter::announcement(
        "Handboken om lokala finansieringslösningar",
        Some("https://lokalfinansiering.example.se/handbok"),
        Some((
            "handbok.md",
            "Handboken visar hur bygder samlar in **eget kapital**, med exempel från [fem orter](https://lokalfinansiering.example.se/orter).\n",
        )),
        attachments,
    )
    .unwrap()
}

/// Names that try the header encoder, the escaper and the first-name rule.
const NAMES: &[&str] = &[
    "",
    "Bob Smith",
    "Åsa Öberg",
    "Anna \"Annie\" O'Neil <a@b> & co = 1",
    "Eve\r\nBcc: victim@example.org",
    "   ",
    "  Karin  Åström  ",
    "Ödön\u{1}\u{7f}Tab\there",
    "Maximiliana Theodora von Hohenzollern-Sigmaringen Åkerström-Lindqvist Ekelund",
    "日本 太郎",
];

fn attribute_sets() -> Vec<BTreeMap<String, String>> {
    let set = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    vec![
        set(&[]),
        set(&[("region", "Jämtland")]),
        set(&[
            ("organisation", "Byalaget \"Hede\" & <Vemdalen>"),
            ("region", "Härjedalen\r\nX-Evil: 1"),
        ]),
        set(&[("region", ""), ("organisation", "Ö"), ("okänd", "x")]),
    ]
}

struct Copy {
    email: String,
    name: &'static str,
    attributes: BTreeMap<String, String>,
    token: String,
}

impl Copy {
    fn recipient(&self, archive: &'static str) -> Recipient<'_> {
        // Leaked into the struct's lifetime for the test's simplicity.
        let url: &'static str = Box::leak(
            format!("https://lista.example.se/unsubscribe/{}", self.token).into_boxed_str(),
        );
        let mailto: &'static str = Box::leak(
            format!(
                "lokal-finansiering-unsubscribe+{}@lista.example.se",
                self.token
            )
            .into_boxed_str(),
        );
        let reply: &'static str = Box::leak(
            format!("lokal-finansiering-reply+{}@lista.example.se", self.token).into_boxed_str(),
        );
        Recipient {
            email: &self.email,
            name: self.name,
            attributes: &self.attributes,
            unsubscribe_url: url,
            unsubscribe_mailto: mailto,
            reply_to: reply,
            archive_url: archive,
        }
    }
}

fn copies() -> Vec<Copy> {
    let mut out = Vec::new();
    let emails = ["asa@example.org", "o'neil+tag=1@exämple.se", "x@y.se"];
    for (i, name) in NAMES.iter().enumerate() {
        for (j, attributes) in attribute_sets().into_iter().enumerate() {
            out.push(Copy {
                email: emails[(i + j) % emails.len()].to_string(),
                name,
                attributes,
                token: format!("tok{i}x{j}abcdefghijklmnopqrstuvwxyz234567"),
            });
        }
    }
    out
}

fn envelope(n: usize) -> (String, chrono::DateTime<chrono::FixedOffset>) {
    (
        format!("utskick.lokal-finansiering.c12.s{n:x}@lista.example.se"),
        chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00+01:00").unwrap(),
    )
}

/// Every copy, both ways, byte for byte; returns how many were compared.
fn same_bytes(content: &Content, list: &List, must_compile: bool) -> usize {
    let compiled = Prepared::new(content, list, templates())
        .unwrap()
        .compile(list);
    if must_compile {
        assert!(
            matches!(compiled, CompiledOr::Compiled(_)),
            "falls back: {:?}",
            compiled.fallback()
        );
    }
    let prepared = Prepared::new(content, list, templates()).unwrap();
    let mut n = 0;
    for (i, copy) in copies().iter().enumerate() {
        for archive in ["", "https://lista.example.se/archive/lokal-finansiering/12"] {
            let (id, date) = envelope(i);
            let env = Envelope {
                message_id: &id,
                date,
                domain: "lista.example.se",
            };
            let r = copy.recipient(archive);
            let want = prepared.message(list, &r, &env, None).unwrap();
            let got = compiled.message(list, &r, &env, None).unwrap();
            if want != got {
                panic!(
                    "copy {i} ({:?}, {:?}) differs:\n--- per recipient\n{}\n--- compiled\n{}",
                    copy.name,
                    copy.attributes,
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                );
            }
            n += 1;
        }
    }
    n
}

#[test]
fn shipped_layouts_compile_and_give_the_same_bytes() {
    for lang in ["sv", "en"] {
        for public in [true, false] {
            let list = list(lang, public);
            for attachments in [vec![], pdf()] {
                assert!(same_bytes(&newsletter(attachments.clone()), &list, true) > 50);
                assert!(same_bytes(&announcement(attachments), &list, true) > 50);
            }
        }
    }
}

#[test]
fn the_benchmark_newsletter_gives_the_same_bytes() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/newsletter.md"))
        .unwrap();
    let (content, _) =
        utskick::compose::newsletter::parse_newsletter("newsletter.md", &text).unwrap();
    same_bytes(&content, &list("sv", true), false);
}

/// `{{#if x}} {{/if}}{{x}}`, as `drop_space_before_empty` writes ` {{x}}!`,
/// compiles for any recipient field (the space is a slot), and a plain
/// `{{#if first_name}}` as variants.
#[test]
fn a_space_before_a_field_and_a_condition_on_the_name_compile() {
    let list = list("sv", true);
    for markdown in [
        "Hej från {{attributes.region}}! Och {{attributes.organisation}}, {{email}}; {{name}}.\n",
        "{{#if first_name}}Hej {{first_name}}!{{else}}Hej!{{/if}}\n\n{{#unless name}}Vem?{{/unless}}\n",
    ] {
        let text = format!("---\nsubject: Nytt {{{{first_name}}}}!\n---\n{markdown}");
        let (content, _) =
            utskick::compose::newsletter::parse_newsletter("x.md", &text).unwrap();
        assert!(same_bytes(&content, &list, true) > 50);
    }
}

/// A slot filled with the wrong value must show: the compiled copy for
/// one recipient is not the copy for another.
#[test]
fn each_copy_carries_its_own_values() {
    let list = list("sv", true);
    let compiled = Prepared::new(&newsletter(vec![]), &list, templates())
        .unwrap()
        .compile(&list);
    let copies = copies();
    let (id, date) = envelope(1);
    let env = Envelope {
        message_id: &id,
        date,
        domain: "lista.example.se",
    };
    let a = compiled
        .message(&list, &copies[8].recipient(""), &env, None)
        .unwrap();
    let b = compiled
        .message(&list, &copies[9].recipient(""), &env, None)
        .unwrap();
    assert_ne!(a, b);
    let text = String::from_utf8(a).unwrap();
    assert!(text.contains("unsubscribe/tok2x0"), "{text}");
    assert!(!text.contains("\u{e000}"), "a marker leaked: {text}");
}

/// Constructs that let a recipient's value decide fall back, name the
/// construct, and still give the same bytes.
#[test]
fn a_condition_on_an_attribute_falls_back_with_the_same_bytes() {
    let list = list("en", true);
    for (markdown, construct) in [
        (
            "Hi{{#if attributes.region}} from {{attributes.region}}{{/if}}.\n",
            "{{#if attributes.region}}",
        ),
        (
            "{{#each attributes}}- {{@key}}: {{this}}\n{{/each}}",
            "{{#each attributes}}",
        ),
        ("Letters: {{len name}}\n", "{{len name}}"),
        (
            "{{#if (eq attributes.region \"Jämtland\")}}J{{/if}}\n",
            "{{#if (eq attributes.region \"Jämtland\")}}",
        ),
        ("## Hello {{name}}\n\nText.\n", "heading"),
    ] {
        let text = format!("---\nsubject: News\n---\n{markdown}");
        let (content, _) = utskick::compose::newsletter::parse_newsletter("x.md", &text).unwrap();
        let compiled = Prepared::new(&content, &list, templates())
            .unwrap()
            .compile(&list);
        let why = compiled
            .fallback()
            .unwrap_or_else(|| panic!("{markdown:?} compiled"));
        assert!(why.to_string().contains(construct), "{markdown:?}: {why}");
        same_bytes(&content, &list, false);
    }
}

/// A layout of the list's own that tests an attribute falls back and
/// names its file and line.
#[test]
fn a_layout_that_tests_an_attribute_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let lang = dir.path().join("sv");
    std::fs::create_dir_all(&lang).unwrap();
    let layout = std::fs::read_to_string(templates().join("sv/newsletter.txt.hbs")).unwrap();
    std::fs::write(
        lang.join("newsletter.txt.hbs"),
        format!("{{{{body}}}}\n{{{{#if attributes.organisation}}}}\nFör {{{{attributes.organisation}}}}\n{{{{/if}}}}\n{layout}"),
    )
    .unwrap();
    let list = list("sv", true);
    let content = newsletter(vec![]);
    let compiled = Prepared::new(&content, &list, dir.path())
        .unwrap()
        .compile(&list);
    let why = compiled.fallback().expect("falls back").to_string();
    assert!(
        why.ends_with("newsletter.txt.hbs:2: `{{#if attributes.organisation}}`"),
        "{why}"
    );
}

/// The worker calls `message` from several lanes at once.
#[test]
fn copies_are_made_from_several_threads_at_once() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let list = list("en", true);
    let compiled = Prepared::new(&announcement(pdf()), &list, templates())
        .unwrap()
        .compile(&list);
    send_sync(&compiled);
    let copies = copies();
    let make = |i: usize| {
        let (id, date) = envelope(i);
        let env = Envelope {
            message_id: &id,
            date,
            domain: "lista.example.se",
        };
        compiled
            .message(&list, &copies[i].recipient(""), &env, None)
            .unwrap()
    };
    let n = copies.len();
    let alone: Vec<Vec<u8>> = (0..n).map(make).collect();
    let together: Vec<Vec<u8>> = std::thread::scope(|s| {
        let lanes: Vec<_> = (0..4)
            .map(|lane| {
                let make = &make;
                s.spawn(move || {
                    (0..n)
                        .filter(|i| i % 4 == lane)
                        .map(|i| (i, make(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Vec<u8>)> =
            lanes.into_iter().flat_map(|l| l.join().unwrap()).collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, m)| m).collect()
    });
    assert_eq!(alone, together);
}
