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
    let confirms = reply_to
        .strip_prefix(&format!("{}-confirm+", list.address))
        .and_then(|rest| rest.strip_suffix(&format!("@{}", env.domain)))
        .filter(|token| !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|token| format!(".{token}"))
        .unwrap_or_default();
    let message_id = format!(
        "utskick.{}.{unique:x}.{:x}{confirms}@{}",
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
        for k in keys {
            all.extend(load_dkim(&k.selector, domain, &k.private_key_file)?.keys);
        }
        Ok(DkimKeys { keys: all })
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
    Ok(DkimKeys { keys: vec![config] })
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
}
