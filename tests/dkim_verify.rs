//! Verifies the DKIM signatures utskick writes, independently of the code
//! that writes them: RFC 6376 relaxed canonicalisation and RFC 8463
//! Ed25519-SHA256, with the public key derived from the configured seed.

mod common;

use data_encoding::BASE64;
use ed25519_dalek::{Signature, SigningKey, Verifier};
use sha2::{Digest, Sha256};

/// Splits a message into (header fields with their raw text, body).
fn split(raw: &str) -> (Vec<String>, &str) {
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header/body boundary");
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = fields.last_mut().expect("a continuation follows a field");
            last.push_str("\r\n");
            last.push_str(line);
        } else {
            fields.push(line.to_string());
        }
    }
    (fields, body)
}

/// RFC 6376 §3.4.2.
fn relaxed_header(field: &str) -> String {
    let (name, value) = field.split_once(':').unwrap();
    let value = value.replace("\r\n", "");
    let value = value
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}:{}", name.trim().to_ascii_lowercase(), value.trim())
}

/// RFC 6376 §3.4.4: runs of whitespace in a line become one space,
/// whitespace at line ends goes, empty lines at the end go.
fn relaxed_body(body: &str) -> String {
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|line| {
            let mut out = String::new();
            let mut in_space = false;
            for c in line.chars() {
                if c == ' ' || c == '\t' {
                    in_space = true;
                } else {
                    if in_space {
                        out.push(' ');
                    }
                    in_space = false;
                    out.push(c);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return String::new();
    }
    lines.join("\r\n") + "\r\n"
}

fn tag<'a>(sig: &'a str, name: &str) -> &'a str {
    sig.split(';')
        .map(str::trim)
        .find_map(|t| t.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {sig}"))
}

/// A public key to check a signature with.
enum Key<'a> {
    Ed25519(&'a SigningKey),
    Rsa(&'a rsa::RsaPublicKey),
}

/// Verifies the first DKIM-Signature of `raw` against `key`.
fn verify(raw: &str, key: &SigningKey) -> Result<(), String> {
    verify_with(raw, "ed25519-sha256", Key::Ed25519(key))
}

/// Verifies the first DKIM-Signature of `raw` with algorithm `a`
/// against `key`.
fn verify_with(raw: &str, a: &str, key: Key<'_>) -> Result<(), String> {
    let (fields, body) = split(raw);
    let sig_field = fields
        .iter()
        .filter(|f| f.to_ascii_lowercase().starts_with("dkim-signature:"))
        .find(|f| tag(&f.replace("\r\n", ""), "a") == a)
        .ok_or("not signed")?;
    let sig_value: String = sig_field.split_once(':').unwrap().1.replace("\r\n", "");
    assert_eq!(tag(&sig_value, "c"), "relaxed/relaxed");
    let bh = Sha256::digest(relaxed_body(body).as_bytes());
    if BASE64.encode(&bh) != tag(&sig_value, "bh").replace([' ', '\t'], "") {
        return Err("body hash mismatch".into());
    }
    let mut data = String::new();
    let mut used = vec![false; fields.len()];
    for name in tag(&sig_value, "h").split(':') {
        let name = name.trim().to_ascii_lowercase();
        // The last unused instance, from the bottom (RFC 6376 §5.4.2).
        if let Some(i) = (0..fields.len()).rev().find(|&i| {
            !used[i]
                && fields[i]
                    .split(':')
                    .next()
                    .unwrap()
                    .trim()
                    .to_ascii_lowercase()
                    == name
        }) {
            used[i] = true;
            data.push_str(&relaxed_header(&fields[i]));
            data.push_str("\r\n");
        }
    }
    // The signature field itself, with b= emptied, without a final CRLF.
    let b_value = tag(&sig_value, "b").to_string();
    let unfolded = format!("DKIM-Signature:{sig_value}");
    let unsigned = unfolded.replacen(&b_value, "", 1);
    if b_value.is_empty() || unsigned == unfolded {
        return Err("cannot blank b=".into());
    }
    data.push_str(&relaxed_header(&unsigned));
    let signature = BASE64
        .decode(b_value.replace([' ', '\t', '\r', '\n'], "").as_bytes())
        .map_err(|e| e.to_string())?;
    let digest = Sha256::digest(data.as_bytes());
    match key {
        Key::Ed25519(key) => {
            let signature = Signature::from_slice(&signature).map_err(|e| e.to_string())?;
            key.verifying_key()
                .verify(&digest, &signature)
                .map_err(|e| format!("signature does not verify: {e}"))
        }
        Key::Rsa(key) => key
            .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
            .map_err(|e| format!("signature does not verify: {e}")),
    }
}

fn signed_newsletter(seed: [u8; 32]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.key");
    std::fs::write(&key, BASE64.encode(&seed)).unwrap();
    let dkim = utskick::compose::system::load_dkim("utskick", "lista.example.se", &key).unwrap();
    newsletter_signed_with(&dkim)
}

fn newsletter_signed_with(dkim: &utskick::compose::system::DkimKeys) -> String {
    let list = utskick::daemon::lists::List::parse(
        "lokal-finansiering",
        "name = \"Lokal finansiering\"\naddress = \"lokal-finansiering\"\nattributes = [\"region\"]\n",
    )
    .unwrap();
    let content = utskick::store::Content {
        kind: utskick::store::Kind::Newsletter,
        source: "t.md".into(),
        subject: "Nyhetsbrev".into(),
        preheader: String::new(),
        markdown: "Hej {{name}}!\n\nHandboken är klar.\n".into(),
        title: String::new(),
        link: None,
        attachments: vec![],
    };
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let prepared = utskick::compose::mime::Prepared::new(&content, &list, &templates).unwrap();
    let attrs = [("region".to_string(), "Jämtland".to_string())]
        .into_iter()
        .collect();
    let r = utskick::compose::mime::Recipient {
        email: "asa@example.org",
        name: "Åsa Öberg",
        attributes: &attrs,
        unsubscribe_url: "https://lista.example.se/unsubscribe/abc",
        unsubscribe_mailto: "lokal-finansiering-unsubscribe+abc@lista.example.se",
        reply_to: "lokal-finansiering-reply+abc@lista.example.se",
        archive_url: "https://lista.example.se/archive/lokal-finansiering/1",
    };
    let env = utskick::compose::mime::Envelope {
        message_id: "m1@lista.example.se",
        date: chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00+01:00").unwrap(),
        domain: "lista.example.se",
    };
    let raw = prepared.message(&list, &r, &env, Some(dkim)).unwrap();
    let compiled = utskick::compose::mime::Prepared::new(&content, &list, &templates)
        .unwrap()
        .compile(&list);
    assert!(compiled.fallback().is_none(), "{:?}", compiled.fallback());
    let copy = compiled.message(&list, &r, &env, Some(dkim)).unwrap();
    // The same mail; only the signatures' t= (and so b=) may differ.
    let body = |m: &[u8]| {
        let m = String::from_utf8(m.to_vec()).unwrap();
        m[m.find("\r\nFrom:").unwrap()..].to_string()
    };
    assert_eq!(body(&raw), body(&copy));
    if COMPILED.with(|c| c.get()) {
        return String::from_utf8(copy).unwrap();
    }
    String::from_utf8(raw).unwrap()
}

thread_local! {
    /// Set: `newsletter_signed_with` returns the compiled campaign's copy.
    static COMPILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A compiled campaign's copy (`compose::compiled`) is signed as the
/// per-recipient one is, and verifies with each key.
#[test]
fn a_compiled_copy_verifies_with_rsa_and_ed25519() {
    COMPILED.with(|c| c.set(true));
    rsa_and_ed25519_keys_each_sign_and_each_signature_verifies();
    a_signed_newsletter_verifies_and_covers_the_unsubscribe_headers();
}

#[test]
fn rsa_and_ed25519_keys_each_sign_and_each_signature_verifies() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let dir = tempfile::tempdir().unwrap();
    let rsa_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let rsa_path = dir.path().join("rsa.pem");
    std::fs::write(
        &rsa_path,
        rsa_key
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let seed = [9u8; 32];
    let ed_path = dir.path().join("ed.key");
    std::fs::write(&ed_path, BASE64.encode(&seed)).unwrap();
    let keys = [
        utskick::daemon::config::DkimKey {
            selector: "rsa2026".into(),
            private_key_file: rsa_path,
        },
        utskick::daemon::config::DkimKey {
            selector: "ed2026".into(),
            private_key_file: ed_path,
        },
    ];
    let dkim = utskick::compose::system::DkimKeys::load(&keys, "lista.example.se").unwrap();
    let raw = newsletter_signed_with(&dkim);
    let (fields, _) = split(&raw);
    let signatures = fields
        .iter()
        .filter(|f| f.starts_with("DKIM-Signature"))
        .count();
    assert_eq!(signatures, 2, "{raw}");
    let public = rsa_key.to_public_key();
    verify_with(&raw, "rsa-sha256", Key::Rsa(&public)).unwrap();
    verify_with(
        &raw,
        "ed25519-sha256",
        Key::Ed25519(&SigningKey::from_bytes(&seed)),
    )
    .unwrap();
    // Each verifies only with its own key, and not once the mail changed.
    let changed = raw.replacen("Handboken", "Handbocken", 1);
    assert!(verify_with(&changed, "rsa-sha256", Key::Rsa(&public)).is_err());
    assert!(verify_with(
        &changed,
        "ed25519-sha256",
        Key::Ed25519(&SigningKey::from_bytes(&seed))
    )
    .is_err());
    let other = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    assert!(verify_with(&raw, "rsa-sha256", Key::Rsa(&other.to_public_key())).is_err());
}

#[test]
fn a_signed_newsletter_verifies_and_covers_the_unsubscribe_headers() {
    let seed = [7u8; 32];
    let raw = signed_newsletter(seed);
    let key = SigningKey::from_bytes(&seed);
    verify(&raw, &key).unwrap();
    let (fields, _) = split(&raw);
    let sig = fields
        .iter()
        .find(|f| f.starts_with("DKIM-Signature"))
        .unwrap()
        .replace("\r\n", "");
    let h = tag(sig.split_once(':').unwrap().1, "h").to_ascii_lowercase();
    for needed in [
        "from",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
        "reply-to",
        "subject",
    ] {
        assert!(
            h.split(':').any(|x| x.trim() == needed),
            "{needed} not signed: {h}"
        );
    }
}

#[test]
fn a_tampered_newsletter_does_not_verify() {
    let seed = [7u8; 32];
    let raw = signed_newsletter(seed);
    let key = SigningKey::from_bytes(&seed);
    let changed_header = raw.replacen(
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "List-Unsubscribe-Post: nothing",
        1,
    );
    assert_ne!(changed_header, raw);
    assert!(verify(&changed_header, &key).is_err());
    let changed_body = raw.replacen("Handboken", "Handbocken", 1);
    assert_ne!(changed_body, raw);
    assert!(verify(&changed_body, &key).is_err());
    let other_key = SigningKey::from_bytes(&[8u8; 32]);
    assert!(verify(&raw, &other_key).is_err());
}

/// Issue 16: a member's post from a domain with DMARC `p=reject` (the
/// stub stands in for the DNS) goes out `From:` the list, the author in
/// `Reply-To`, the author's own signature gone, and the real binary's
/// signature on the copy verifies over the new From, the tag and footer.
#[test]
fn a_rewritten_discussion_post_verifies() {
    let keys = tempfile::tempdir().unwrap();
    let seed = [11u8; 32];
    let key_path = keys.path().join("dkim.key");
    std::fs::write(&key_path, BASE64.encode(&seed)).unwrap();
    let mut d = common::Daemon::prepare(&format!(
        "[dkim]\nselector = \"utskick\"\nprivate_key_file = \"{}\"\n",
        key_path.display()
    ));
    std::fs::write(
        d.dir.path().join("dmarc-stub.txt"),
        "strict.example reject\nexample.org none\n",
    )
    .unwrap();
    d.spawn();
    for who in ["anna@strict.example", "bo@example.org"] {
        d.cli_ok(&["add", "partnerskap", who, "--consent", "test"]);
    }
    d.wait_mails(2);
    let list = format!("partnerskap@{}", common::DOMAIN);
    let post = format!(
        "DKIM-Signature: v=1; a=rsa-sha256; d=strict.example; s=x; b=AAAA\r\nFrom: =?utf-8?q?=C3=85sa_=C3=96berg?= <anna@strict.example>\r\nTo: {list}\r\nSubject: Protokoll\r\nMessage-ID: <d1@strict.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHär är protokollet från mötet.\r\n"
    );
    assert!(d
        .send("anna@strict.example", &list, &post)
        .starts_with("250"));
    let key = SigningKey::from_bytes(&seed);
    for m in d.wait_mails(2) {
        let msg = mail_parser::MessageParser::default()
            .parse(m.raw.as_bytes())
            .unwrap();
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some(list.as_str()), "{}", m.raw);
        assert_eq!(from.name(), Some("Åsa Öberg via Partnerskap"));
        let reply_to: Vec<&str> = msg
            .reply_to()
            .unwrap()
            .iter()
            .filter_map(|a| a.address())
            .collect();
        assert_eq!(reply_to, [list.as_str(), "anna@strict.example"]);
        assert!(!m.raw.contains("d=strict.example"), "{}", m.raw);
        verify(&m.raw, &key).unwrap_or_else(|e| panic!("{e}\n{}", m.raw));
        let (fields, _) = split(&m.raw);
        let sig = fields
            .iter()
            .find(|f| f.starts_with("DKIM-Signature"))
            .unwrap()
            .replace("\r\n", "");
        let h = tag(sig.split_once(':').unwrap().1, "h").to_ascii_lowercase();
        for needed in [
            "from",
            "reply-to",
            "subject",
            "list-id",
            "list-unsubscribe",
            "message-id",
        ] {
            assert!(
                h.split(':').any(|x| x == needed),
                "{needed} not signed: {h}"
            );
        }
        // A changed body or subject no longer verifies.
        let (head, body) = m.raw.split_once("\r\n\r\n").unwrap();
        assert!(verify(&format!("{head}\r\n\r\nX{body}"), &key).is_err());
        let changed = m.raw.replacen("Protokoll", "Protokol", 1);
        assert_ne!(changed, m.raw);
        assert!(verify(&changed, &key).is_err());
    }
}
