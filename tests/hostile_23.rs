//! Hostile review of compiled copies: per-recipient values built from
//! pieces that try header encoding, folding, quoted-printable line ends,
//! control and line-separator characters and MIME look-alikes. Every
//! compiled copy must be the per-recipient copy byte for byte.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::layouts::{ascii_layouts, local_list};

use utskick::compose::mime::{Envelope, Prepared, Recipient};

const PIECES: &[&str] = &[
    "a",
    "Åsa",
    " ",
    "  ",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "\0",
    "\u{2028}",
    "\u{85}",
    "\u{a0}",
    "\u{b}",
    "\u{c}",
    "\u{7f}",
    "\u{200b}",
    "=?utf-8?q?Bcc:_x?=",
    "=?",
    "?=",
    "\"",
    "\\",
    ",",
    "<",
    ">",
    "(",
    ")",
    ";",
    ":",
    "@",
    ".",
    "=",
    "--utskick-alt-",
    "📬",
    "é",
    "€",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "yyyyyyyyyyyy",
    "Bcc: v@x.se",
    "&",
    "'",
    "`",
    "{{name}}",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn value(&mut self) -> String {
        let n = (self.next() % 7) as usize;
        (0..n)
            .map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize])
            .collect()
    }
}

#[test]
fn hostile_values_give_the_per_recipient_bytes() {
    let markdown = "---\n\
subject: Till {{name}} {{attributes.region}}\n\
preheader: Om {{attributes.organisation}}\n\
---\n\
Hello {{name}}!\n\
\n\
Region: {{attributes.region}}\n\
\n\
{{attributes.organisation}} x {{email}}\n\
\n\
[link](https://example.se/?a={{attributes.region}})\n";
    let templates = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"));
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let emails = ["asa@example.org", "o'neil+tag=1@exämple.se", "a.b@x.se "];
    let mut n = 0;
    let mut compared = 0;
    for lang in ["sv", "en"] {
        let dir = ascii_layouts(lang);
        let list = local_list(lang);
        let (content, _) =
            utskick::compose::newsletter::parse_newsletter("n.md", markdown).unwrap();
        for tdir in [dir.path(), templates] {
            let compiled = Prepared::new(&content, &list, tdir).unwrap().compile(&list);
            assert!(compiled.fallback().is_none(), "{:?}", compiled.fallback());
            let prepared = Prepared::new(&content, &list, tdir).unwrap();
            for _ in 0..3000 {
                let name = rng.value();
                let attributes: BTreeMap<String, String> = [
                    ("region".to_string(), rng.value()),
                    ("organisation".to_string(), rng.value()),
                ]
                .into();
                let url = format!("https://lista.example.se/u/{}", rng.value());
                let mailto = format!("local-unsubscribe+{}@lista.example.se", rng.value());
                let email = emails[(rng.next() % emails.len() as u64) as usize];
                let id = format!("utskick.local.c1.s{n:x}@lista.example.se");
                n += 1;
                let env = Envelope {
                    message_id: &id,
                    date: chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00+01:00")
                        .unwrap(),
                    domain: "lista.example.se",
                };
                let r = Recipient {
                    email,
                    name: &name,
                    attributes: &attributes,
                    unsubscribe_url: &url,
                    unsubscribe_mailto: &mailto,
                    reply_to: "local-reply+t@lista.example.se",
                    archive_url: "https://lista.example.se/archive/local/3",
                };
                let want = prepared.message(&list, &r, &env, None);
                let got = compiled.message(&list, &r, &env, None);
                match (want, got) {
                    (Ok(want), Ok(got)) => {
                        assert!(
                            want == got,
                            "name {name:?} attrs {attributes:?} url {url:?} mailto {mailto:?} email {email:?}:\n--- per recipient\n{}\n--- compiled\n{}",
                            String::from_utf8_lossy(&want),
                            String::from_utf8_lossy(&got)
                        );
                        compared += 1;
                    }
                    (Err(_), Err(_)) => {}
                    (w, g) => panic!(
                        "one fails: {:?} vs {:?} for {name:?} {email:?}",
                        w.map(|_| ()),
                        g.map(|_| ())
                    ),
                }
            }
        }
    }
    assert!(compared > 1000, "{compared}");
}
