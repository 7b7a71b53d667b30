//! `check` and `dkim-keygen`: is this installation ready to go live, and
//! which DNS records must be published for its mail to be delivered.
//!
//! Reads configuration, lists, templates and the DKIM key; talks to the
//! relay once. Never opens the store, so it works while the daemon runs.

use std::fmt::Write as _;
use std::path::Path;

use data_encoding::BASE64;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::EncodePublicKey;

use crate::compose::mime::Prepared;
use crate::compose::templates::{Templates, SYSTEM_MAILS};
use crate::daemon::config::{Config, TransportKind};
use crate::daemon::files::{create_private, Existing};
use crate::daemon::lists::Lists;
use crate::outbound::Transport;
use crate::store::{Content, Kind};

/// Key algorithms `dkim-keygen` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Ed25519,
    Rsa,
}

/// RSA key size: 2048 bits is what receivers expect and DNS TXT records hold.
const RSA_BITS: usize = 2048;

/// The DNS TXT value for the public half of the key in `path`.
pub fn dkim_txt(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("dkim.private_key_file {}: cannot read: {e}", path.display())
    })?;
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(&text)
            .map_err(|e| anyhow::anyhow!("{}: not an RSA key: {e}", path.display()))?;
        let public = key.to_public_key().to_public_key_der()?;
        Ok(format!(
            "v=DKIM1; k=rsa; p={}",
            BASE64.encode(public.as_bytes())
        ))
    } else {
        let seed: [u8; 32] = BASE64
            .decode(text.trim().as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: not the base64 of a 32-byte Ed25519 seed",
                    path.display()
                )
            })?;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        Ok(format!(
            "v=DKIM1; k=ed25519; p={}",
            BASE64.encode(public.as_bytes())
        ))
    }
}

/// Makes a key (mode 0600; an existing file is never overwritten) and
/// returns the DNS record to publish. It goes where `[dkim]` says: the
/// first configured key whose file is not there yet (so with two
/// `[[dkim.keys]]`, run it once per key), or the first key.
pub fn keygen(config: &Config, algorithm: Algorithm) -> anyhow::Result<String> {
    let keys = config.dkim.clone().unwrap_or_default().keys();
    let key = keys
        .iter()
        .find(|k| !k.private_key_file.exists())
        .unwrap_or(&keys[0]);
    let path = &key.private_key_file;
    let secret = match algorithm {
        Algorithm::Ed25519 => {
            let mut seed = [0u8; 32];
            rand::Rng::fill(&mut rand::rngs::OsRng, &mut seed);
            BASE64.encode(&seed) + "\n"
        }
        Algorithm::Rsa => rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)?
            .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)?
            .to_string(),
    };
    use std::io::Write;
    create_private(path, Existing::Refuse)
        .and_then(|mut f| f.write_all(secret.as_bytes()))
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (an existing key is never overwritten)",
                path.display()
            )
        })?;
    let selector = &key.selector;
    let several = config.dkim.as_ref().is_some_and(|d| !d.keys.is_empty());
    let table = if several { "[[dkim.keys]]" } else { "[dkim]" };
    let mut out = format!(
        "wrote {}\npublish: {selector}._domainkey.{}. IN TXT \"{}\"\nand add to utskick.toml (if it is not there):\n{table}\nselector = \"{selector}\"\nprivate_key_file = \"{}\"",
        path.display(),
        config.domain,
        dkim_txt(path)?,
        path.display()
    );
    match algorithm {
        Algorithm::Rsa => out.push_str(
            "\n(the record is longer than 255 characters: in a zone file, split it into quoted strings of at most 255)",
        ),
        Algorithm::Ed25519 => out.push_str(
            "\nnote: Gmail, Microsoft and Yahoo verify only RSA signatures; sign with an RSA key too (a second [[dkim.keys]])",
        ),
    }
    Ok(out)
}

/// Runs every check; returns the report and whether all passed. With
/// `sv`, the report's own words are Swedish (what the checks quote from
/// elsewhere, an error or a path, stays as it is); `ok`, `FAIL` and
/// `WARN` lead each line in both, for scripts.
pub async fn check(config: &Config, config_name: &str, sv: bool) -> (String, bool) {
    let tr = |sv_text: &str, en_text: &str| -> String {
        if sv {
            sv_text.to_string()
        } else {
            en_text.to_string()
        }
    };
    let mut out = String::new();
    let mut ok = true;
    let mut line = |passed: bool, what: &str, detail: String| {
        ok &= passed;
        let _ = writeln!(
            out,
            "{} {what}: {detail}",
            if passed { "ok  " } else { "FAIL" }
        );
    };
    line(
        true,
        &tr("konfiguration", "configuration"),
        config_name.to_string(),
    );
    let lists = match Lists::for_config(config) {
        Ok(l) => {
            let ids: Vec<_> = l.iter().map(|l| l.id.clone()).collect();
            line(
                !ids.is_empty(),
                &tr("listor", "lists"),
                if ids.is_empty() {
                    tr("inga i lists_dir", "none in lists_dir")
                } else {
                    ids.join(", ")
                },
            );
            l
        }
        Err(e) => {
            line(false, &tr("listor", "lists"), format!("{e:#}"));
            Lists::default()
        }
    };
    match Templates::load(&config.templates_dir, &lists) {
        Ok(t) => {
            let mut failures = Vec::new();
            for list in lists.iter() {
                for name in SYSTEM_MAILS {
                    let data = sample_data(list);
                    if let Err(e) = t.render(list.language, &list.id, name, &data) {
                        failures.push(format!("{}/{name}: {e}", list.id));
                    }
                }
                let sample = Content {
                    kind: Kind::Newsletter,
                    source: "sample.md".into(),
                    subject: "Prov".into(),
                    preheader: String::new(),
                    markdown: "# Prov\n\nHej {{first_name}}!\n".into(),
                    title: String::new(),
                    link: None,
                    attachments: vec![],
                };
                for kind in [Kind::Newsletter, Kind::Announcement] {
                    let content = Content {
                        kind,
                        title: "Prov".into(),
                        ..sample.clone()
                    };
                    if let Err(e) = Prepared::new(&content, list, &config.templates_dir) {
                        failures.push(format!("{}/{kind:?}: {e}", list.id));
                    }
                }
            }
            let detail = if failures.is_empty() {
                tr(
                    "varje systembrev och layout går att fylla med exempeldata",
                    "every system mail and layout renders with sample data",
                )
            } else {
                failures.join("; ")
            };
            line(failures.is_empty(), &tr("mallar", "templates"), detail);
        }
        Err(e) => line(false, &tr("mallar", "templates"), format!("{e:#}")),
    }
    match crate::web::Pages::load(&config.templates_dir) {
        Ok(_) => line(
            true,
            &tr("webbsidor", "web pages"),
            tr("går att kompilera", "compile"),
        ),
        Err(e) => line(false, &tr("webbsidor", "web pages"), format!("{e:#}")),
    }
    match config.outbound.transport {
        TransportKind::File => line(
            true,
            &tr("utgående", "outbound"),
            if sv {
                format!(
                    "filer i {} (inget relä att pröva)",
                    config.outbox_dir().display()
                )
            } else {
                format!(
                    "file transport into {} (no relay to try)",
                    config.outbox_dir().display()
                )
            },
        ),
        TransportKind::Smtp => match Transport::from_config(config) {
            Ok(t) => match t.probe().await {
                Ok(detail) => line(
                    true,
                    &tr("relä", "relay"),
                    format!("{}: {detail}", config.outbound.relay),
                ),
                Err(e) => line(
                    false,
                    &tr("relä", "relay"),
                    format!("{}: {}", config.outbound.relay, e.message),
                ),
            },
            Err(e) => line(false, &tr("relä", "relay"), format!("{e:#}")),
        },
    }
    let mut dkim_records = Vec::new();
    let mut only_ed25519 = false;
    match &config.dkim {
        Some(dkim) => {
            let mut algorithms = Vec::new();
            for key in dkim.keys() {
                match dkim_txt(&key.private_key_file) {
                    Ok(txt) => {
                        let algorithm = if txt.contains("k=rsa") {
                            "rsa"
                        } else {
                            "ed25519"
                        };
                        line(
                            true,
                            "dkim",
                            if sv {
                                format!(
                                    "{} med selektorn {} ({algorithm})",
                                    key.private_key_file.display(),
                                    key.selector
                                )
                            } else {
                                format!(
                                    "{} with selector {} ({algorithm})",
                                    key.private_key_file.display(),
                                    key.selector
                                )
                            },
                        );
                        algorithms.push(algorithm);
                        dkim_records.push(format!(
                            "{}._domainkey.{}. IN TXT \"{txt}\"",
                            key.selector, config.domain
                        ));
                    }
                    Err(e) => line(false, "dkim", format!("{e:#}")),
                }
            }
            only_ed25519 = !algorithms.is_empty() && algorithms.iter().all(|a| *a == "ed25519");
        }
        None => line(
            true,
            "dkim",
            tr(
                "inte inställt: breven går ut osignerade (kör `utskick dkim-keygen`)",
                "not configured: mail goes out unsigned (run `utskick dkim-keygen`)",
            ),
        ),
    }
    if let Some(warning) = crate::daemon::dmarc::stub_warning() {
        let _ = writeln!(out, "WARN dmarc: {warning}");
    }
    if only_ed25519 {
        // A warning, not a failure: the mail is signed, just not in a way
        // the biggest receivers check.
        let _ = writeln!(
            out,
            "{}",
            tr(
                "WARN dkim: bara Ed25519-nycklar signerar; Gmail, Microsoft och Yahoo kontrollerar bara RSA, så där räknas breven som osignerade: lägg till en RSA-nyckel (`utskick dkim-keygen`) som en andra [[dkim.keys]]",
                "WARN dkim: only Ed25519 keys sign; Gmail, Microsoft and Yahoo verify RSA only, so there the mail counts as unsigned: add an RSA key (`utskick dkim-keygen`) as a second [[dkim.keys]]",
            )
        );
    }
    let d = &config.domain;
    let relay_host = config
        .outbound
        .relay
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or_default();
    if sv {
        let _ = writeln!(out, "\nDNS-poster att publicera för {d}:");
        let _ = writeln!(
            out,
            "  {d}. IN MX 10 mail.{d}.        (e-postservern som lämnar listornas post till utskick)"
        );
    } else {
        let _ = writeln!(out, "\nDNS records to publish for {d}:");
        let _ = writeln!(
            out,
            "  {d}. IN MX 10 mail.{d}.        (the MTA that hands list mail to utskick)"
        );
    }
    let spf = if config.outbound.transport == TransportKind::Smtp && !relay_host.is_empty() {
        format!("v=spf1 mx a:{relay_host} ~all")
    } else {
        "v=spf1 mx ~all".to_string()
    };
    if sv {
        let _ = writeln!(out, "  {d}. IN TXT \"{spf}\"        (SPF: vem som får skicka som {d}; ta med reläets egen SPF om det har en)");
    } else {
        let _ = writeln!(out, "  {d}. IN TXT \"{spf}\"        (SPF: who may send as {d}; include your relay's own SPF if it has one)");
    }
    for r in &dkim_records {
        let _ = writeln!(out, "  {r}");
    }
    if dkim_records.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            tr(
                "(DKIM: kör `utskick dkim-keygen` och publicera posten det skriver ut)",
                "(DKIM: run `utskick dkim-keygen` and publish the record it prints)",
            )
        );
    }
    let _ = writeln!(
        out,
        "  _dmarc.{d}. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@{d}\"   {}",
        tr(
            "(börja med p=none, skärp till quarantine när rapporterna är rena)",
            "(start with p=none, tighten to quarantine once reports are clean)",
        )
    );
    (out, ok)
}

fn sample_data(list: &crate::daemon::lists::List) -> serde_json::Value {
    serde_json::json!({
        "list": {"id": list.id, "name": list.name, "description": list.description, "address": format!("{}@example.se", list.address)},
        "email": "anna@example.se", "name": "Anna Berg", "first_name": "Anna",
        "sender": list.sender,
        "subscribe_address": "x", "unsubscribe_address": "x", "request_address": "x", "owner_address": "x",
        "list_url": "https://example.se", "expires_days": 7,
        "reason_unknown_token": true, "reason_not_subscribed": false, "reason_unknown_command": false, "discussion": true,
        "token": "abc", "confirm_url": "https://example.se/confirm/abc", "confirm_address": "x",
        "post_subject": "Prov", "problem": "", "recipients": 1, "attachments": ["a.pdf (1 kB)"], "preview": "Hej",
        "login_url": "https://example.se/admin/login/abc", "login_minutes": 15,
        "author": "a@example.se", "author_name": "A", "reason": "x", "rejected": false, "setting": "digest",
    })
}
