//! A compiled campaign (`compose::compiled`) gives the very bytes
//! `Prepared::message` gives, for the shipped layouts in sv and en, both
//! kinds, with and without attachments, and for recipients whose names,
//! addresses and attributes try every slot: empty, ASCII, not ASCII,
//! quotes and markup, CR LF injections, long. A template the slots cannot
//! express is rendered per recipient, with the same bytes too.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::layouts::{ascii_layouts, local_list};

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
    // A lane's buffer, kept from copy to copy as the sender keeps it.
    let mut lane = Vec::new();
    for (i, copy) in copies().iter().enumerate() {
        for archive in ["", "https://lista.example.se/archive/lokal-finansiering/12"] {
            let (id, date) = envelope(i);
            // Copies cross second boundaries, in two offsets, and two
            // domains take turns: what the compiled headers keep from the
            // copy before must not show in the next.
            let date = (date
                + chrono::Duration::milliseconds(350 * (2 * i + archive.len().min(1)) as i64))
            .with_timezone(
                &[
                    chrono::FixedOffset::east_opt(3600),
                    chrono::FixedOffset::east_opt(0),
                ][i % 2]
                    .unwrap(),
            );
            let env = Envelope {
                message_id: &id,
                date,
                domain: ["lista.example.se", "example.se"][(i / 2) % 2],
            };
            let r = copy.recipient(archive);
            let want = prepared.message(list, &r, &env, None).unwrap();
            let got = compiled.message(list, &r, &env, None).unwrap();
            lane.clear();
            compiled
                .write_message(list, &r, &env, None, &mut lane)
                .unwrap();
            assert!(lane == want, "copy {i}: into a kept buffer, it differs");
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

/// The list of the shipped lists/lokal-finansiering.toml, attributes and
/// all, as the benchmark sends to.
fn shipped_list() -> List {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/lists/lokal-finansiering.toml");
    let list = List::parse(
        "lokal-finansiering",
        &std::fs::read_to_string(path).unwrap(),
    )
    .unwrap();
    assert_eq!(list.attributes, ["organisation", "region"]);
    list
}

fn parse(text: &str) -> Content {
    utskick::compose::newsletter::parse_newsletter("x.md", text)
        .unwrap()
        .0
}

/// The benchmark's newsletter, with its `{{#if attributes.region}} i
/// {{attributes.region}}{{/if}}`, compiles, and its copies are the
/// per-recipient copies for a region present, empty, missing, of spaces,
/// not ASCII, with CR LF.
#[test]
fn the_benchmark_newsletter_compiles_and_gives_the_same_bytes() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/newsletter.md"))
        .unwrap();
    assert!(text.contains("{{#if attributes.region}} i {{attributes.region}}{{/if}}"));
    let content = parse(&text);
    for list in [shipped_list(), list("sv", true), list("sv", false)] {
        assert!(same_bytes(&content, &list, true) > 50);
        let regions = [
            Some("Jämtland"),
            Some(""),
            None,
            Some(" "),
            Some("   \t"),
            Some("Västerbotten & <Norrbotten> \"Övre\" 日本"),
            Some("Härjedalen\r\nBcc: x@example.org"),
            Some("\r\n"),
        ];
        let compiled = Prepared::new(&content, &list, templates())
            .unwrap()
            .compile(&list);
        let prepared = Prepared::new(&content, &list, templates()).unwrap();
        let mut bodies = std::collections::BTreeSet::new();
        for (i, region) in regions.iter().enumerate() {
            let mut attributes = BTreeMap::new();
            if let Some(region) = region {
                attributes.insert("region".to_string(), region.to_string());
            }
            let copy = Copy {
                email: "asa@example.org".into(),
                name: "Åsa Öberg",
                attributes,
                token: format!("tok{i}abcdefghijklmnopqrstuvwxyz234567"),
            };
            let (id, date) = envelope(0);
            let env = Envelope {
                message_id: &id,
                date,
                domain: "lista.example.se",
            };
            let r = copy.recipient("https://lista.example.se/archive/lokal-finansiering/12");
            let want = prepared.message(&list, &r, &env, None).unwrap();
            let got = compiled.message(&list, &r, &env, None).unwrap();
            assert!(want == got, "region {region:?} differs");
            bodies.insert(got);
        }
        assert_eq!(bodies.len(), regions.len(), "each region its own copy");
    }
    // The text as rendered: " i Jämtland" after "nätverket", nothing when
    // the region is empty or missing, the spaces when it is spaces.
    let list = shipped_list();
    let prepared = Prepared::new(&content, &list, templates()).unwrap();
    let compiled = Prepared::new(&content, &list, templates())
        .unwrap()
        .compile(&list);
    for (region, want) in [
        (Some("Jämtland"), "nätverket i Jämtland."),
        (Some(""), "nätverket."),
        (None, "nätverket."),
        (Some("  "), "nätverket i   ."),
    ] {
        let mut attributes = BTreeMap::new();
        if let Some(region) = region {
            attributes.insert("region".to_string(), region.to_string());
        }
        let copy = Copy {
            email: "asa@example.org".into(),
            name: "Åsa",
            attributes,
            token: "tokabcdefghijklmnopqrstuvwxyz234567".into(),
        };
        let r = copy.recipient("");
        let (id, date) = envelope(0);
        let env = Envelope {
            message_id: &id,
            date,
            domain: "lista.example.se",
        };
        let got = compiled.message(&list, &r, &env, None).unwrap();
        assert_eq!(got, prepared.message(&list, &r, &env, None).unwrap());
        let mail = mail_parser::MessageParser::default().parse(&got).unwrap();
        let text = mail.body_text(0).unwrap();
        assert!(text.contains(want), "{region:?}: {text}");
    }
}

/// Two attributes and the name tested, in the body and the subject, in
/// `#if` and `#unless`, with `else`: eight variants, every copy the
/// per-recipient copy.
#[test]
fn conditions_on_two_attributes_and_the_name_compile() {
    let text = "---\n\
subject: Nytt{{#if attributes.organisation}} för {{attributes.organisation}}{{/if}}\n\
---\n\
{{#if name}}Hej {{name}}!{{else}}Hej!{{/if}}\n\
\n\
Du får det här{{#if attributes.region}} i {{attributes.region}}{{else}} utan region{{/if}}.\n\
\n\
{{#unless attributes.organisation}}Ingen organisation angiven.{{/unless}}\n\
\n\
{{#if this.attributes.region}}Region: {{attributes.region}}{{/if}}\n";
    let content = parse(text);
    for list in [list("sv", true), list("en", false), shipped_list()] {
        let compiled = Prepared::new(&content, &list, templates())
            .unwrap()
            .compile(&list);
        // Three fields here, and the shipped layouts test archive_url.
        assert_eq!(format!("{compiled:?}"), "Compiled(16 variants)");
        assert!(same_bytes(&content, &list, true) > 50);
    }
}

/// `#if` on an attribute the list does not declare (a subscriber may
/// still have it, from an import) falls back and names it; so do more
/// than `MAX_TESTED` fields tested.
#[test]
fn an_undeclared_attribute_and_too_many_conditions_fall_back() {
    let list = list("sv", true);
    let cases = [
        (
            "Hej{{#if attributes.okänd}} {{attributes.okänd}}{{/if}}.\n".to_string(),
            "`{{#if attributes.okänd}}`".to_string(),
        ),
        (
            "{{#if attributes.region}}R{{else if attributes.organisation}}O{{/if}}\n".to_string(),
            "`{{#if attributes.region}}`".to_string(),
        ),
        (
            "{{#if attributes}}A{{/if}}\n".to_string(),
            "`{{#if attributes}}`".to_string(),
        ),
        (
            "{{#if attributes.region.x}}A{{/if}}\n".to_string(),
            "`{{#if attributes.region.x}}`".to_string(),
        ),
    ];
    for (markdown, why) in cases {
        let content = parse(&format!("---\nsubject: Nytt\n---\n{markdown}"));
        let compiled = Prepared::new(&content, &list, templates())
            .unwrap()
            .compile(&list);
        let fallback = compiled
            .fallback()
            .unwrap_or_else(|| panic!("{markdown:?} compiled"))
            .to_string();
        assert!(fallback.contains(&why), "{markdown:?}: {fallback}");
        same_bytes(&content, &list, false);
    }
    // Six fields compile (64 variants): five here and the layouts'
    // archive_url; a seventh falls back.
    let mut wide = List::parse(
        "lokal-finansiering",
        "name = \"Bred\"\naddress = \"lokal-finansiering\"\nlanguage = \"sv\"\n\
         attributes = [\"a\", \"b\", \"c\", \"d\"]\n",
    )
    .unwrap();
    let six = "{{#if name}}N{{/if}} {{#if email}}E{{/if}} {{#if attributes.a}}A{{/if}} \
               {{#if attributes.b}}B{{/if}} {{#unless attributes.c}}C{{/unless}}\n";
    let content = parse(&format!("---\nsubject: Nytt\n---\n{six}"));
    let compiled = Prepared::new(&content, &wide, templates())
        .unwrap()
        .compile(&wide);
    assert_eq!(format!("{compiled:?}"), "Compiled(64 variants)");
    let prepared = Prepared::new(&content, &wide, templates()).unwrap();
    for bits in 0..16u32 {
        let attributes: BTreeMap<String, String> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, k)| (k.to_string(), format!("{k} å")))
            .collect();
        let copy = Copy {
            email: "x@y.se".into(),
            name: if bits & 1 == 0 { "Åsa" } else { "" },
            attributes,
            token: format!("tok{bits}abcdefghijklmnopqrstuvwxyz234567"),
        };
        let (id, date) = envelope(0);
        let env = Envelope {
            message_id: &id,
            date,
            domain: "lista.example.se",
        };
        let r = copy.recipient("");
        assert!(
            compiled.message(&wide, &r, &env, None).unwrap()
                == prepared.message(&wide, &r, &env, None).unwrap(),
            "{bits:b}"
        );
    }
    let seven = format!("{six}\n{{{{#if attributes.d}}}}D{{{{/if}}}}\n");
    let content = parse(&format!("---\nsubject: Nytt\n---\n{seven}"));
    let compiled = Prepared::new(&content, &wide, templates())
        .unwrap()
        .compile(&wide);
    let fallback = compiled
        .fallback()
        .expect("seven fields fall back")
        .to_string();
    assert!(
        fallback.contains(
            "conditions on more than 6 fields (name, email, attributes.a, attributes.b, attributes.c, attributes.d, archive_url)"
        ),
        "{fallback}"
    );
    wide.public = true;
    same_bytes(&content, &wide, false);
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
fn a_construct_on_an_attribute_falls_back_with_the_same_bytes() {
    let list = list("en", true);
    for (markdown, construct) in [
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

/// A layout of the list's own that tests an attribute the list does not
/// declare falls back and names its file and line; one that tests a
/// declared attribute compiles.
#[test]
fn a_layout_that_tests_an_attribute_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let lang = dir.path().join("sv");
    std::fs::create_dir_all(&lang).unwrap();
    let layout = std::fs::read_to_string(templates().join("sv/newsletter.txt.hbs")).unwrap();
    std::fs::write(
        lang.join("newsletter.txt.hbs"),
        format!("{{{{body}}}}\n{{{{#if attributes.kommun}}}}\nFör {{{{attributes.kommun}}}}\n{{{{/if}}}}\n{layout}"),
    )
    .unwrap();
    let list = list("sv", true);
    let content = newsletter(vec![]);
    let compiled = Prepared::new(&content, &list, dir.path())
        .unwrap()
        .compile(&list);
    let why = compiled.fallback().expect("falls back").to_string();
    assert!(
        why.ends_with("newsletter.txt.hbs:2: `{{#if attributes.kommun}}`"),
        "{why}"
    );
    std::fs::write(
        lang.join("newsletter.txt.hbs"),
        format!("{{{{body}}}}\n{{{{#if attributes.organisation}}}}\nFör {{{{attributes.organisation}}}}\n{{{{/if}}}}\n{layout}"),
    )
    .unwrap();
    let compiled = Prepared::new(&content, &list, dir.path())
        .unwrap()
        .compile(&list);
    assert!(compiled.fallback().is_none(), "{:?}", compiled.fallback());
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

/// Values that change how a part is transfer-encoded, against a fixed
/// text that alone is 7bit: not ASCII, a line pushed to 75 and 76
/// columns and far past, `=`, trailing spaces, a value starting a line
/// with `.`, so many emoji that the part is base64, CR LF in a link;
/// subjects and names that need RFC 2047 and folding; sv and en. Every
/// copy is the per-recipient copy, and all three encodings occur.
#[test]
fn values_that_change_the_transfer_encoding_give_the_same_bytes() {
    let markdown = "---\n\
subject: News for {{name}} in {{attributes.region}}\n\
preheader: For {{attributes.organisation}}\n\
---\n\
Hello {{name}}!\n\
\n\
{{attributes.region}} is where you are.\n\
\n\
Organisation: {{attributes.organisation}}\n";
    let long = "x".repeat(80);
    // A line of exactly 75 columns, after the first, is too long for the
    // chooser; the first line only at 76 (the copies must show both).
    let names: Vec<String> = vec![
        "Bob".into(),
        "Åsa Öberg".into(),
        long.clone(),
        // "Hello {{name}}!", the text part's first line, at 75 and 76.
        "x".repeat(68),
        "x".repeat(69),
        "a=b =c".into(),
        "Trailing   ".into(),
        "📬".repeat(40),
        "Eve\r\nBcc: victim@example.org".into(),
        "Maximiliana Theodora Åkerström-Lindqvist von Hohenzollern-Sigmaringen Ekelund".into(),
        ".".into(),
    ];
    let regions: Vec<String> = vec![
        "Jamtland".into(),
        "Jämtland".into(),
        "ends with space ".into(),
        "tab\tend\t".into(),
        ".Punkt".into(),
        "=3D=".into(),
        // "{{region}} is where you are." at 74, 75 and 76 columns.
        "y".repeat(56),
        "y".repeat(57),
        "y".repeat(58),
        "y".repeat(70),
        String::new(),
        "日本語 ".repeat(20),
    ];
    let mut encodings = std::collections::BTreeSet::new();
    for lang in ["sv", "en"] {
        let dir = ascii_layouts(lang);
        let list = local_list(lang);
        let content = parse(markdown);
        let compiled = Prepared::new(&content, &list, dir.path())
            .unwrap()
            .compile(&list);
        assert!(compiled.fallback().is_none(), "{:?}", compiled.fallback());
        let prepared = Prepared::new(&content, &list, dir.path()).unwrap();
        let mut n = 0;
        for (i, name) in names.iter().enumerate() {
            for (j, region) in regions.iter().enumerate() {
                let attributes: BTreeMap<String, String> = [
                    ("region".to_string(), region.clone()),
                    (
                        "organisation".to_string(),
                        names[(i + j) % names.len()].clone(),
                    ),
                ]
                .into_iter()
                .collect();
                let token = match (i + j) % 4 {
                    0 => format!("t{i}x{j}abcdefghijklmnopqrstuvwxyz23456"),
                    1 => format!("t{i}x{j}abcdefghijklmnopqrstuvwxyz234567"),
                    2 => format!("t{i}x{j}\r\nX-Evil: 1"),
                    _ => "t".into(),
                };
                // The link carries the token (CR LF and all); the
                // addresses a clean one, or the copy is not addressable.
                let url = format!("https://lista.example.se/unsubscribe/{token}");
                let email = ["asa@example.org", "o'neil+tag=1@exämple.se"][(n / 3) % 2];
                let (id, date) = envelope(n);
                let env = Envelope {
                    message_id: &id,
                    date,
                    domain: "lista.example.se",
                };
                let r = Recipient {
                    email,
                    name,
                    attributes: &attributes,
                    unsubscribe_url: &url,
                    unsubscribe_mailto: "local-unsubscribe+t@lista.example.se",
                    reply_to: "local-reply+t@lista.example.se",
                    archive_url: "https://lista.example.se/archive/local/3",
                };
                let want = prepared.message(&list, &r, &env, None).unwrap();
                let got = compiled.message(&list, &r, &env, None).unwrap();
                assert!(
                    want == got,
                    "{lang} name {name:?} region {region:?} differs:\n--- per recipient\n{}\n--- compiled\n{}",
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                );
                let mut into = b"kept".to_vec();
                compiled
                    .write_message(&list, &r, &env, None, &mut into)
                    .unwrap();
                assert!(into[4..] == want[..], "write_message differs");
                let text = String::from_utf8_lossy(&got);
                for encoding in ["7bit", "quoted-printable", "base64"] {
                    if text.contains(&format!("Content-Transfer-Encoding: {encoding}")) {
                        encodings.insert(encoding);
                    }
                }
                n += 1;
            }
        }
    }
    assert_eq!(encodings.len(), 3, "{encodings:?}");
}
