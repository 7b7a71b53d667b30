//! DKIM signing of a message we did not build: a discussion post keeps the
//! author's MIME as it came, so lettre (which signs only what it built, and
//! keeps one header field per name) cannot sign it. RFC 6376 with
//! relaxed/relaxed canonicalisation, RSA-SHA256 and Ed25519-SHA256
//! (RFC 8463), the same keys and the same `c=` as `system::DkimKeys`.

use data_encoding::BASE64;
use sha2::{Digest, Sha256};

/// One key that signs raw messages.
pub struct RawSigner {
    pub selector: String,
    pub domain: String,
    pub key: RawKey,
}

pub enum RawKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl RawKey {
    /// An RSA key in PKCS#1 PEM, or the base64 of an Ed25519 seed: the
    /// two forms `system::load_dkim` reads.
    pub fn parse(text: &str) -> Option<RawKey> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let text = text.trim();
        if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            return rsa::RsaPrivateKey::from_pkcs1_pem(text)
                .ok()
                .map(|k| RawKey::Rsa(Box::new(k)));
        }
        let seed: [u8; 32] = BASE64.decode(text.as_bytes()).ok()?.try_into().ok()?;
        Some(RawKey::Ed25519(Box::new(
            ed25519_dalek::SigningKey::from_bytes(&seed),
        )))
    }

    fn algorithm(&self) -> &'static str {
        match self {
            RawKey::Rsa(_) => "rsa-sha256",
            RawKey::Ed25519(_) => "ed25519-sha256",
        }
    }

    fn sign(&self, digest: &[u8]) -> Option<Vec<u8>> {
        match self {
            RawKey::Rsa(k) => k.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), digest).ok(),
            RawKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                Some(k.sign(digest).to_bytes().to_vec())
            }
        }
    }
}

/// The header fields of `raw` (each with its continuation lines, without
/// the final CRLF) and where the body starts.
pub fn fields(raw: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut at = 0;
    let mut start: Option<usize> = None;
    while at < raw.len() {
        let end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| at + p + 1);
        let line = &raw[at..end];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            if let Some(s) = start.take() {
                fields.push(trim_eol(&raw[s..at]));
            }
            return (fields, end);
        }
        if !matches!(content.first(), Some(b' ' | b'\t')) {
            if let Some(s) = start.take() {
                fields.push(trim_eol(&raw[s..at]));
            }
            start = Some(at);
        }
        at = end;
    }
    if let Some(s) = start {
        fields.push(trim_eol(&raw[s..]));
    }
    (fields, raw.len())
}

fn trim_eol(field: &[u8]) -> &[u8] {
    let f = field.strip_suffix(b"\n").unwrap_or(field);
    f.strip_suffix(b"\r").unwrap_or(f)
}

/// The lower-case name of a header field.
pub fn field_name(field: &[u8]) -> String {
    let name = field.split(|&b| b == b':').next().unwrap_or_default();
    String::from_utf8_lossy(name).trim().to_ascii_lowercase()
}

/// RFC 6376 §3.4.2: the name in lower case, the value unfolded, runs of
/// whitespace one space, none at the ends.
fn relaxed_header(field: &[u8]) -> Vec<u8> {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let mut out = field_name(field).into_bytes();
    out.push(b':');
    let mut space = false;
    let mut started = false;
    for &b in field.get(colon + 1..).unwrap_or_default() {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space && started {
                    out.push(b' ');
                }
                space = false;
                started = true;
                out.push(b);
            }
        }
    }
    out
}

/// RFC 6376 §3.4.4.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut out = Vec::with_capacity(line.len());
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    out.push(b' ');
                }
                space = false;
                out.push(b);
            }
        }
        lines.push(out);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut out = Vec::with_capacity(body.len());
    for l in lines {
        out.extend_from_slice(&l);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `raw` (CRLF line ends) with one `DKIM-Signature` per signer on top,
/// covering the fields of `signed` that are present (the last instance of
/// each, as a verifier picks them) and the body. `now` is the `t=` tag.
pub fn sign(raw: &[u8], signers: &[RawSigner], signed: &[&str], now: u64) -> Vec<u8> {
    let (fields, body_at) = fields(raw);
    let body_hash = BASE64.encode(&Sha256::digest(relaxed_body(&raw[body_at..])));
    let mut names: Vec<&str> = Vec::new();
    let mut data = Vec::new();
    for name in signed {
        let lower = name.to_ascii_lowercase();
        if let Some(f) = fields.iter().rev().find(|f| field_name(f) == lower) {
            names.push(name);
            data.extend(relaxed_header(f));
            data.extend_from_slice(b"\r\n");
        }
    }
    let mut out = Vec::new();
    for s in signers {
        let unsigned = format!(
            "DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={}; s={};\r\n\tt={now}; h={};\r\n\tbh={body_hash};\r\n\tb=",
            s.key.algorithm(),
            s.domain,
            s.selector,
            names.join(":"),
        );
        let mut signed_data = data.clone();
        signed_data.extend(relaxed_header(unsigned.as_bytes()));
        let digest = Sha256::digest(&signed_data);
        let Some(signature) = s.key.sign(&digest) else {
            tracing::error!(selector = %s.selector, "DKIM signing failed; the post goes unsigned by this key");
            continue;
        };
        out.extend_from_slice(unsigned.as_bytes());
        out.extend_from_slice(BASE64.encode(&signature).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(raw);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_follow_rfc_6376() {
        assert_eq!(
            relaxed_header(b"SubJect :  Hej \r\n\t  alla  "),
            b"subject:Hej alla".to_vec()
        );
        assert_eq!(relaxed_header(b"Subject: Re: x"), b"subject:Re: x".to_vec());
        assert_eq!(relaxed_body(b"a  b \r\n\r\n\r\n"), b"a b\r\n".to_vec());
        assert_eq!(relaxed_body(b""), b"".to_vec());
        let (f, at) = fields(b"A: 1\r\nB: 2\r\n 3\r\n\r\nbody");
        assert_eq!(f, vec![&b"A: 1"[..], &b"B: 2\r\n 3"[..]]);
        assert_eq!(at, 18);
    }
}
