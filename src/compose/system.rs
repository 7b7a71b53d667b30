//! Pure message building: a rendered template, a list and a recipient become
//! the bytes of a system mail with the headers the spec names.
//!
//! Every header value that could hold user data (names, subjects) passes
//! through `address::header_safe` and lettre's RFC 2047 encoder, so no CR or
//! LF from outside reaches a header.

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{ContentType, HeaderName, HeaderValue, Headers};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::address;
use crate::compose::templates::Rendered;
use crate::daemon::lists;
use crate::daemon::lists::List;

/// RFC 3834 §5: what kind of automatic mail this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoSubmitted {
    /// An answer to a person's mail (confirmations, help, goodbye).
    Replied,
    /// Not caused by a mail (admin actions, notices to owners).
    Generated,
}

/// The parts of a system mail that are not in the template.
pub struct Envelope<'a> {
    pub list: &'a List,
    pub domain: &'a str,
    pub to_email: &'a str,
    pub to_name: &'a str,
    /// `Reply-To`; None for the list's request address.
    pub reply_to: Option<String>,
    pub auto: AutoSubmitted,
    /// Message-ID of the mail this answers, for threading.
    pub in_reply_to: Option<String>,
    /// Signs the mail when `[dkim]` is configured.
    pub dkim: Option<&'a DkimKeys>,
}

fn mailbox(name: &str, email: &str) -> anyhow::Result<Mailbox> {
    let name = address::header_safe(name);
    let addr = email
        .parse()
        .map_err(|e| anyhow::anyhow!("cannot address mail to {email:?}: {e}"))?;
    Ok(Mailbox::new((!name.is_empty()).then_some(name), addr))
}

fn raw(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str(name),
        address::header_safe(&value),
    )
}

/// The `List-Id` value: `Name <id.domain>` (RFC 2919).
pub fn list_id(list: &List, domain: &str) -> String {
    format!(
        "{} <{}.{}>",
        address::header_safe(&list.name),
        list.address,
        domain
    )
}

/// How every system mail's Message-ID begins: `utskick.L.N.R[.TOKEN]@D`.
const MESSAGE_ID_PREFIX: &str = "utskick.";

/// The confirmation token that ends one of our system mails' Message-IDs
/// (`id` with or without its brackets), the inverse of [`system_mail`]'s
/// ids; None for any other id, or one on another domain. The caller still
/// verifies the token against its record.
pub fn confirmation_token_in(id: &str, domain: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase();
    let local = id
        .strip_suffix(&format!("@{}", domain.to_ascii_lowercase()))?
        .strip_prefix(MESSAGE_ID_PREFIX)?;
    Some(local.rsplit('.').next()?.to_string())
}

/// Builds the message; returns its Message-ID (without brackets) and bytes.
pub fn system_mail(
    env: &Envelope<'_>,
    rendered: &Rendered,
    unique: u64,
) -> anyhow::Result<(String, Vec<u8>)> {
    let list = env.list;
    let from = mailbox(
        &list.name,
        &lists::list_address(list, "request", None, env.domain),
    )?;
    let reply_to = env
        .reply_to
        .clone()
        .unwrap_or_else(|| lists::list_address(list, "request", None, env.domain));
    // A mail that asks for a confirmation (Reply-To `L-confirm+TOKEN@D`)
    // carries its token in its Message-ID too, not in a Subject the reader
    // sees: a reply that reaches `L-request@D` names it in In-Reply-To.
    let confirms = lists::confirm_token(list, &reply_to, env.domain)
        .map(|token| format!(".{token}"))
        .unwrap_or_default();
    let message_id = format!(
        "{MESSAGE_ID_PREFIX}{}.{unique:x}.{:x}{confirms}@{}",
        list.id,
        rand::random::<u32>(),
        env.domain
    );
    let mut builder = Message::builder()
        .from(from)
        .to(mailbox(env.to_name, env.to_email)?)
        .reply_to(mailbox("", &reply_to)?)
        .subject(address::header_safe(&rendered.subject))
        .message_id(Some(format!("<{message_id}>")))
        .date_now()
        .raw_header(raw(
            "Auto-Submitted",
            match env.auto {
                AutoSubmitted::Replied => "auto-replied".into(),
                AutoSubmitted::Generated => "auto-generated".into(),
            },
        ))
        .raw_header(raw("List-Id", list_id(list, env.domain)))
        // Ask Exchange not to answer our mail with its own auto-replies.
        .raw_header(raw("X-Auto-Response-Suppress", "All".into()));
    if let Some(irt) = &env.in_reply_to {
        let irt = address::header_safe(irt);
        if irt.starts_with('<') && irt.ends_with('>') && !irt.contains(' ') {
            builder = builder.in_reply_to(irt.clone()).references(irt);
        }
    }
    let message = builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(rendered.html.clone()),
                ),
        )
        .map_err(|e| anyhow::anyhow!("cannot build mail: {e}"))?;
    let bytes = match env.dkim {
        Some(dkim) => dkim.formatted(message),
        None => message.formatted(),
    };
    Ok((message_id, bytes))
}

/// Headers the DKIM signature covers: lettre signs only From, Subject, To
/// and Date unless told more, and a receiver should be able to trust the
/// list headers and Reply-To too.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "MIME-Version",
    // Not Content-Type: for a multipart message lettre writes that header
    // with the body, after signing, so it signs it as absent and every
    // verifier then fails (found by tests/dkim_verify.rs, confirmed with
    // dkimpy). Lettre's "simple" header canonicalisation fails the same
    // check for any message, so we sign relaxed/relaxed only.
];

/// The DKIM keys that sign every mail, each with its own signature: RSA
/// for the receivers that verify only RSA (Gmail, Microsoft, Yahoo), and
/// Ed25519 beside it as RFC 8463 recommends.
pub struct DkimKeys {
    keys: Vec<DkimConfig>,
    /// The same keys, for messages lettre did not build (discussion posts).
    raw: Vec<crate::compose::dkim::RawSigner>,
}

impl std::fmt::Debug for DkimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKeys")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl DkimKeys {
    /// Loads every key `[dkim]` names (`config::Dkim::keys`).
    pub fn load(keys: &[crate::daemon::config::DkimKey], domain: &str) -> anyhow::Result<DkimKeys> {
        let mut all = Vec::with_capacity(keys.len());
        let mut raw = Vec::with_capacity(keys.len());
        for k in keys {
            let one = load_dkim(&k.selector, domain, &k.private_key_file)?;
            all.extend(one.keys);
            raw.extend(one.raw);
        }
        Ok(DkimKeys { keys: all, raw })
    }

    /// `message` (CRLF line ends, built by us or not) with one
    /// `DKIM-Signature` per key on top, covering those of `headers` it
    /// has; see `compose::dkim`.
    pub fn sign_raw(&self, message: &[u8], headers: &[&str], now: u64) -> Vec<u8> {
        crate::compose::dkim::sign(message, &self.raw, headers, now)
    }

    /// The message's bytes with one DKIM-Signature per key, first key
    /// first, above the other header fields (RFC 6376 §5.6).
    ///
    /// lettre keeps one field per name and replaces a signature when it
    /// signs again, so each signature is taken out as soon as it is made.
    /// No signature covers another: `DKIM-Signature` is not in the signed
    /// header list.
    pub fn formatted(&self, mut message: Message) -> Vec<u8> {
        let mut out = Vec::new();
        for key in &self.keys {
            message.sign(key);
            if let Some(sig) = message.headers_mut().remove_raw("DKIM-Signature") {
                let mut field = Headers::new();
                field.insert_raw(sig);
                out.extend(field.to_string().into_bytes());
            }
        }
        out.extend(message.formatted());
        out
    }
}

/// Reads a DKIM key: an RSA key in PKCS#1 PEM, or an Ed25519 key as the
/// base64 of its 32-byte seed (RFC 8463), and builds the signing setup
/// for that one key.
pub fn load_dkim(selector: &str, domain: &str, path: &std::path::Path) -> anyhow::Result<DkimKeys> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("dkim.private_key_file {}: cannot read: {e}", path.display())
    })?;
    let algorithm = if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        DkimSigningAlgorithm::Rsa
    } else {
        DkimSigningAlgorithm::Ed25519
    };
    let key = DkimSigningKey::new(text.trim(), algorithm).map_err(|e| {
        anyhow::anyhow!(
            "dkim.private_key_file {}: not an RSA PKCS#1 PEM key nor a base64 Ed25519 seed ({e})",
            path.display()
        )
    })?;
    let config = DkimConfig::new(
        selector.to_string(),
        domain.to_string(),
        key,
        SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    );
    let raw = crate::compose::dkim::RawKey::parse(&text)
        .map(|key| crate::compose::dkim::RawSigner {
            selector: selector.to_string(),
            domain: domain.to_string(),
            key,
        })
        .into_iter()
        .collect();
    Ok(DkimKeys {
        keys: vec![config],
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::lists::List;

    #[test]
    fn headers_are_present_and_names_cannot_inject() {
        let list = List::parse(
            "lf",
            "name = \"Lokal finansiering – nätverket\"\naddress = \"lf\"\n",
        )
        .unwrap();
        let env = Envelope {
            list: &list,
            domain: "example.se",
            to_email: "asa@example.se",
            to_name: "Åsa Öberg\r\nBcc: victim@example.com",
            reply_to: Some("lf-confirm+abc@example.se".into()),
            auto: AutoSubmitted::Replied,
            in_reply_to: Some("<x@y>".into()),
            dkim: None,
        };
        let rendered = Rendered {
            subject: "Bekräfta\r\nBcc: victim@example.com".into(),
            text: "Hej".into(),
            html: "<p>Hej</p>".into(),
        };
        let (id, bytes) = system_mail(&env, &rendered, 7).unwrap();
        // The confirmation's token rides in its Message-ID, and comes back.
        assert_eq!(
            confirmation_token_in(&format!("<{id}>"), "EXAMPLE.se").as_deref(),
            Some("abc")
        );
        assert_eq!(confirmation_token_in(&id, "example.org"), None);
        assert_eq!(
            confirmation_token_in("<abc@example.se>", "example.se"),
            None
        );
        let text = String::from_utf8(bytes).unwrap();
        let headers = &text[..text.find("\r\n\r\n").unwrap()];
        assert!(
            !headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{headers}"
        );
        for h in [
            "Auto-Submitted: auto-replied",
            "List-Id: ",
            "Reply-To: lf-confirm+abc@example.se",
            "Date: ",
            "In-Reply-To: <x@y>",
        ] {
            assert!(headers.contains(h), "missing {h} in\n{headers}");
        }
        assert!(
            headers.contains(&format!("Message-ID: <{id}>")),
            "{headers}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.to().unwrap().first().unwrap().name().unwrap(),
            "Åsa Öberg Bcc: victim@example.com"
        );
        assert_eq!(
            parsed.subject().unwrap(),
            "Bekräfta Bcc: victim@example.com"
        );
        assert_eq!(parsed.body_text(0).unwrap().trim(), "Hej");
    }

    #[test]
    fn dkim_signs_the_list_headers_with_the_configured_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dkim.key");
        use data_encoding::BASE64;
        std::fs::write(&path, BASE64.encode(&[42u8; 32])).unwrap();
        let dkim = load_dkim("s1", "example.se", &path).unwrap();
        let list = List::parse("lf", "name = \"LF\"\naddress = \"lf\"\n").unwrap();
        let env = Envelope {
            list: &list,
            domain: "example.se",
            to_email: "a@example.org",
            to_name: "",
            reply_to: None,
            auto: AutoSubmitted::Generated,
            in_reply_to: None,
            dkim: Some(&dkim),
        };
        let rendered = Rendered {
            subject: "S".into(),
            text: "T".into(),
            html: "<p>T</p>".into(),
        };
        let (_, bytes) = system_mail(&env, &rendered, 1).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let sig = text
            .replace("\r\n ", " ")
            .lines()
            .find(|l| l.starts_with("DKIM-Signature:"))
            .expect("signed")
            .to_string();
        for part in [
            "a=ed25519-sha256",
            "d=example.se",
            "s=s1",
            "c=relaxed/relaxed",
            "list-id",
            "reply-to",
        ] {
            assert!(sig.contains(part), "{part} missing in {sig}");
        }
        std::fs::write(&path, "not a key").unwrap();
        let e = load_dkim("s1", "example.se", &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dkim.private_key_file"), "{e}");
    }

    // ---- The system mails' copy, as a reader gets it (issue 18) ----

    use crate::compose::templates::{Templates, SYSTEM_MAILS};
    use crate::daemon::lists::{Language, Lists, Sender};
    use serde_json::{json, Value};
    use std::path::Path;

    /// A fixed token, 36 characters like a real one.
    const TOKEN: &str = "ab3defghij2klmnopq4rstuvwx5yz6abcdef";
    const ORGANISATION: &str = "Lokal finansiering – för landsbygdens utveckling";
    const CONTACT: &str = "kontakt@lokalfinansiering.se";
    const PRIVACY_URL: &str = "https://lokalfinansiering.se/integritet";
    /// The MSO-only fixed-width table that holds the 600 px column in
    /// Outlook for Windows, which ignores `max-width`.
    const MSO_OPEN: &str = "<!--[if mso]><table role=\"presentation\" width=\"600\" align=\"center\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\"><tr><td><![endif]-->";
    const MSO_CLOSE: &str = "<!--[if mso]></td></tr></table><![endif]-->";
    /// Where a text part's footer begins (a signature separator).
    const TEXT_FOOTER: &str = "\n-- \n";
    /// Where an HTML part's footer cell begins.
    const HTML_FOOTER: &str = "border-top:1px solid #e2ded2";
    /// RFC 5322 §2.1.1's recommended line length, as templates/README.md asks.
    const MAX_TEXT_LINE: usize = 76;

    /// What `subscription::answer::base_data` gives every template, for a
    /// fixed reader, list and sender, plus the confirmation variables.
    fn sample(lang: &str) -> Value {
        let address = |suffix: &str| format!("lokal-finansiering{suffix}@lista.example.se");
        let name = "Karin Åström";
        let description = match lang {
            "sv" => "Nyheter, metoder och träffar om lokal finansiering på landsbygden.",
            _ => "News, methods and meetings on local financing in the countryside.",
        };
        let sender = Sender {
            organisation: ORGANISATION.into(),
            contact: CONTACT.into(),
            privacy_url: PRIVACY_URL.into(),
        };
        json!({
            "list": {
                "id": "lokal-finansiering",
                "name": "Lokal finansiering – nätverket",
                "description": description,
                "address": address(""),
            },
            "sender": sender,
            "email": "karin.astrom@example.org",
            "name": name,
            "first_name": crate::compose::mime::first_name(name),
            "subscribe_address": address("-subscribe"),
            "unsubscribe_address": address("-unsubscribe"),
            "request_address": address("-request"),
            "owner_address": address("-owner"),
            "list_url": "https://lista.example.se/lists/lokal-finansiering",
            "expires_days": 7,
            "reason_unknown_token": false,
            "reason_not_subscribed": false,
            "reason_unknown_command": false,
            "discussion": false,
            "token": TOKEN,
            "confirm_url": format!("https://lista.example.se/confirm/{TOKEN}"),
            "confirm_address": address(&format!("-confirm+{TOKEN}")),
            "login_url": format!("https://lista.example.se/admin/login/{TOKEN}"),
            "login_minutes": 15,
        })
    }

    /// `data` with the fields of `changes` replaced.
    fn with(data: &Value, changes: Value) -> Value {
        let mut data = data.clone();
        for (k, v) in changes.as_object().unwrap() {
            data[k] = v.clone();
        }
        data
    }

    /// Each golden case: its file name, the mail, and its data: [`sample`]
    /// changed as `subscription` and `feedback::posts` change it.
    fn cases(lang: &str) -> Vec<(&'static str, &'static str, Value)> {
        let base = sample(lang);
        // A preview goes to the owner who posted: no name, their address.
        let post = with(
            &base,
            json!({
                "email": "projektledare@lokalfinansiering.se",
                "name": "",
                "first_name": "",
                "post_subject": "Träff i Östersund den 21 januari",
                "problem": "",
                "recipients": 2,
                "attachments": ["program.pdf (1 kB)"],
                "preview": "Hej!\n\nVälkommen till träffen den 21 januari.",
            }),
        );
        let problem = with(
            &post,
            json!({
                "problem": "the attachment setup.exe is not allowed",
                "preview": "",
                "token": "",
                "confirm_url": "",
                "confirm_address": "",
            }),
        );
        let mut cases: Vec<_> = SYSTEM_MAILS
            .iter()
            .map(|name| {
                let data = match *name {
                    "post-preview" => post.clone(),
                    "moderate-post" => with(&post, json!({
                        "author": "asa.oberg@example.org",
                        "author_name": "Åsa Öberg",
                        "envelope": "bounce@mailer.example.net",
                        "reason": if lang == "sv" { "avsändaren är inte medlem i listan" } else { "the sender is not a member of the list" },
                    })),
                    "post-held" => with(&base, json!({
                        "post_subject": "[Partnerskap] Möte",
                        "rejected": false,
                        "reason": if lang == "sv" { "avsändaren är inte medlem i listan" } else { "the sender is not a member of the list" },
                    })),
                    "member-setting" => with(&base, json!({"setting": "notmetoo"})),
                    _ => base.clone(),
                };
                (*name, *name, data)
            })
            .collect();
        cases.extend([
            (
                "help-unknown-token",
                "help",
                with(&base, json!({"reason_unknown_token": true})),
            ),
            (
                "help-not-subscribed",
                "help",
                with(&base, json!({"reason_not_subscribed": true})),
            ),
            (
                "help-unknown-command",
                "help",
                with(&base, json!({"reason_unknown_command": true})),
            ),
            ("post-preview-problem", "post-preview", problem),
            (
                "help-discussion",
                "help",
                with(&base, json!({"discussion": true})),
            ),
            (
                "post-too-big",
                "post-held",
                with(
                    &base,
                    json!({
                        "post_subject": "[Partnerskap] Möte",
                        "rejected": true,
                        "too_big": true,
                        "size_kb": 7300,
                        "max_kb": 5120,
                    }),
                ),
            ),
            (
                "post-rejected",
                "post-held",
                with(
                    &base,
                    json!({
                        "post_subject": "[Partnerskap] Möte",
                        "rejected": true,
                        "reason": "Det hör inte hit.",
                    }),
                ),
            ),
            (
                "member-setting-metoo",
                "member-setting",
                with(&base, json!({"setting": "metoo"})),
            ),
            (
                "member-setting-digest",
                "member-setting",
                with(&base, json!({"setting": "digest"})),
            ),
            (
                "member-setting-nodigest",
                "member-setting",
                with(&base, json!({"setting": "nodigest"})),
            ),
            (
                "member-setting-confirm-digest",
                "member-setting",
                with(&base, json!({"setting": "digest", "confirm": true})),
            ),
        ]);
        cases
    }

    /// Compares `actual` with `tests/golden/system/LANG/FILE`;
    /// `UPDATE_EXPECT=1` rewrites it. Returns the mismatch, if any, and
    /// leaves `FILE.actual` beside the expected file to diff.
    fn golden_file(lang: &str, file: &str, actual: &str) -> Option<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/system")
            .join(lang);
        let path = dir.join(file);
        let actual_path = dir.join(format!("{file}.actual"));
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, actual).unwrap();
            let _ = std::fs::remove_file(&actual_path);
            return None;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected == actual {
            let _ = std::fs::remove_file(&actual_path);
            return None;
        }
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&actual_path, actual).unwrap();
        Some(format!(
            "{} differs; see {}",
            path.display(),
            actual_path.display()
        ))
    }

    #[test]
    fn golden_system_mails_in_swedish_and_english() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates = Templates::load(&root, &Lists::default()).unwrap();
        let mut differs = vec![];
        let mut rendered = 0;
        for (lang, language) in [("sv", Language::Sv), ("en", Language::En)] {
            for (file, mail, data) in cases(lang) {
                let r = templates.render(language, "", mail, &data).unwrap();
                rendered += 1;
                let what = format!("{lang}/{file}");
                for (ext, actual) in [
                    ("subject", format!("{}\n", r.subject)),
                    ("txt", r.text.clone()),
                    ("html", r.html.clone()),
                ] {
                    differs.extend(golden_file(lang, &format!("{file}.{ext}"), &actual));
                }
                check_copy(&what, mail, data["token"].as_str().unwrap(), &r);
            }
        }
        assert_eq!(rendered, 2 * (SYSTEM_MAILS.len() + 11));
        assert!(
            differs.is_empty(),
            "{} (run with UPDATE_EXPECT=1 if the change is intended)",
            differs.join("\n")
        );
    }

    /// What every system mail keeps, whatever its copy says.
    fn check_copy(what: &str, mail: &str, token: &str, r: &Rendered) {
        // Confirmations and invitations are matched by their Reply-To (and
        // the lead's Message-ID): a token in the subject looks like
        // phishing and is cut on phones. Owners' mails keep it last.
        match mail {
            "confirm-subscribe" | "confirm-unsubscribe" | "invite" => {
                assert!(!r.subject.contains(TOKEN), "{what}: {}", r.subject);
            }
            // A refused post has no token to carry.
            "approve-request" | "post-preview" if !token.is_empty() => {
                assert!(
                    r.subject.ends_with(&format!(" {TOKEN}")),
                    "{what}: {}",
                    r.subject
                );
            }
            _ => {}
        }
        // The column holds in Outlook for Windows.
        let (open, column, close) = (
            r.html.find(MSO_OPEN),
            r.html.find("max-width:600px"),
            r.html.find(MSO_CLOSE),
        );
        assert!(
            open.is_some() && open < column && column < close,
            "{what}: the 600 px column needs the MSO wrapper around it"
        );
        assert!(
            r.html.contains("<meta name=\"supported-color-schemes\""),
            "{what}"
        );
        // Every footer says who sends the mail and how to reach them.
        let text_footer = &r.text[r.text.rfind(TEXT_FOOTER).unwrap_or_else(|| {
            panic!(
                "{what}: no footer after a signature separator in\n{}",
                r.text
            )
        })..];
        let html_footer = &r.html[r.html.rfind(HTML_FOOTER).expect(what)..];
        for needle in [ORGANISATION, CONTACT, PRIVACY_URL] {
            assert!(
                text_footer.contains(needle),
                "{what}: {needle} missing in\n{text_footer}"
            );
        }
        for needle in [
            ORGANISATION.to_string(),
            format!("href=\"mailto:{CONTACT}\""),
            format!("href=\"{PRIVACY_URL}\""),
        ] {
            assert!(
                html_footer.contains(&needle),
                "{what}: {needle} missing in\n{html_footer}"
            );
        }
        // Signed by the project, and no comma after "Hälsningar".
        assert!(!r.text.contains("Hälsningar,"), "{what}");
        assert!(
            r.text.contains(&format!("\n{ORGANISATION}\n\n-- \n")),
            "{what}: not signed by the organisation"
        );
        // No raw greeting with the full name: "Hej Karin!".
        assert!(!r.text.contains("Karin Åström!"), "{what}");
        assert!(!r.html.contains("Karin Åström!"), "{what}");
        // Lines a phone shows whole; an address or URL alone on its line
        // cannot be broken and may be longer.
        for line in r.text.lines() {
            let lone_word = !line.trim().contains(char::is_whitespace);
            assert!(
                line.chars().count() <= MAX_TEXT_LINE || lone_word,
                "{what}: line longer than {MAX_TEXT_LINE} characters: {line:?}"
            );
        }
    }

    #[test]
    fn no_system_template_breaks_words_anywhere() {
        // `word-break: break-all` splits addresses mid-word on phones; the
        // templates wrap long words with `overflow-wrap` instead.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for lang in ["sv", "en"] {
            for mail in SYSTEM_MAILS {
                for variant in ["subject", "txt", "html"] {
                    let path = root.join(lang).join(format!("{mail}.{variant}.hbs"));
                    let source = std::fs::read_to_string(&path).unwrap();
                    assert!(!source.contains("break-all"), "{}", path.display());
                }
            }
        }
    }

    #[test]
    fn the_greeting_without_a_name_is_plain() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates = Templates::load(&root, &Lists::default()).unwrap();
        for (lang, language, greeting) in [
            ("sv", Language::Sv, "Hej!\n"),
            ("en", Language::En, "Hello,\n"),
        ] {
            let mut data = sample(lang);
            data["name"] = json!("");
            data["first_name"] = json!("");
            let r = templates.render(language, "", "welcome", &data).unwrap();
            assert!(r.text.starts_with(greeting), "{}", r.text);
        }
    }
}
