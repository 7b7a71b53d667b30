//! Tokens: short HMAC-SHA256 proofs bound to a purpose, a list, an address and
//! a time of issue, written in lower-case base32.
//!
//! A token carries only a record id and its issue time; the list and address
//! it is bound to come from the store record the id names, so a token can
//! never vouch for anything the store does not hold. The secret is made on
//! first start and never logged.

use std::io::Write;
use std::path::Path;

use data_encoding::{Encoding, Specification};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::daemon::files::{create_private, Existing};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of HMAC kept in a token: 80 bits, far beyond what online guessing
/// can reach, and short enough that `list-confirm+TOKEN` stays within the
/// 64-octet local part of RFC 5321.
const MAC_LEN: usize = 10;
/// id (8) + issued (4) + mac.
const TOKEN_BYTES: usize = 8 + 4 + MAC_LEN;
/// Length of the encoded token.
pub const TOKEN_CHARS: usize = (TOKEN_BYTES * 8).div_ceil(5);

/// What a token may be used for; part of the MAC, so one purpose's token is
/// useless for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ConfirmSubscribe,
    ConfirmUnsubscribe,
    Approve,
    /// An owner's approval of the post they mailed to the list.
    Post,
    /// A member's confirmation of a delivery setting (issue 16).
    Setting,
    /// Newsletter tokens (reply, unsubscribe link, VERP): the id is the
    /// subscriber's, and the 32-bit field that holds the issue time in
    /// confirmation tokens holds the campaign number. They do not expire:
    /// an unsubscribe link must work for as long as the mail is read.
    Subscriber,
    /// A bounce probe (Mailman's VERP probe): the id is the subscriber's,
    /// the issue time the probe's, which the subscriber record keeps while
    /// the probe is outstanding. Used only as `L-bounces+TOKEN@D`.
    Probe,
    /// An attachment of a discussion post served on the web
    /// (`attachments = "link"`): the id is the campaign's, the 32-bit
    /// field the attachment's part number in the post.
    File,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::ConfirmSubscribe => b"confirm-subscribe",
            Purpose::ConfirmUnsubscribe => b"confirm-unsubscribe",
            Purpose::Approve => b"approve",
            Purpose::Post => b"post",
            Purpose::Setting => b"member-setting",
            Purpose::Subscriber => b"subscriber",
            Purpose::Probe => b"probe",
            Purpose::File => b"file",
        }
    }
}

/// Lower-case base32 without padding, built once: a campaign mints a
/// token per copy.
fn encoding() -> &'static Encoding {
    static ENCODING: std::sync::OnceLock<Encoding> = std::sync::OnceLock::new();
    ENCODING.get_or_init(|| {
        let mut spec = Specification::new();
        spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
        spec.encoding().expect("a valid base32 alphabet")
    })
}

/// The daemon's token key.
#[derive(Clone)]
pub struct Secret {
    bytes: [u8; 32],
    /// HMAC-SHA256 keyed with `bytes` and nothing hashed yet: a MAC
    /// clones it instead of hashing the key's two padded blocks again
    /// (two of a token's six SHA-256 blocks; one token per copy sent).
    keyed: HmacSha256,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    pub fn from_bytes(bytes: [u8; 32]) -> Secret {
        let keyed = HmacSha256::new_from_slice(&bytes).expect("HMAC takes any key length");
        Secret { bytes, keyed }
    }

    /// Reads `path`, or makes a new random secret there with mode 0600.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Secret> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
                    anyhow::anyhow!("{}: must hold exactly 32 bytes", path.display())
                })?;
                return Ok(Secret::from_bytes(bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("{}: cannot read: {e}", path.display()),
        }
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut bytes);
        let mut file = create_private(path, Existing::Refuse)
            .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", path.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        Ok(Secret::from_bytes(bytes))
    }

    fn mac(
        &self,
        purpose: Purpose,
        list: &str,
        address: &str,
        id: u64,
        issued: u32,
    ) -> [u8; MAC_LEN] {
        let mut mac = self.keyed.clone();
        for part in [purpose.tag(), list.as_bytes(), address.as_bytes()] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac.update(&id.to_be_bytes());
        mac.update(&issued.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A keyed hash of `value` for `purpose` (for example a forgotten
    /// address on the suppression list): stable, and not reversible by
    /// anyone without the secret.
    pub fn fingerprint(&self, purpose: &str, value: &str) -> Vec<u8> {
        let mut mac = self.keyed.clone();
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The salted hash that stands for a forgotten address on the
    /// suppression list.
    pub fn suppression_hash(&self, email: &str) -> Vec<u8> {
        self.fingerprint("suppress", &email.trim().to_lowercase())
    }

    /// The raw key, for a backup only.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// A token for record `id`, bound to `purpose`, `list` and `address`
    /// (normalised), issued at `issued` (Unix seconds).
    pub fn mint(
        &self,
        purpose: Purpose,
        list: &str,
        address: &str,
        id: u64,
        issued: u32,
    ) -> String {
        let mut bytes = [0u8; TOKEN_BYTES];
        bytes[..8].copy_from_slice(&id.to_be_bytes());
        bytes[8..12].copy_from_slice(&issued.to_be_bytes());
        bytes[12..].copy_from_slice(&self.mac(purpose, list, address, id, issued));
        encoding().encode(&bytes)
    }

    /// True if `token` is exactly what `mint` gave for these arguments.
    /// Constant time in the MAC comparison.
    pub fn verify(&self, token: &Token, purpose: Purpose, list: &str, address: &str) -> bool {
        let want = self.mac(purpose, list, address, token.id, token.issued);
        bool::from(want.ct_eq(&token.mac))
    }
}

/// A decoded but not yet verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: u64,
    pub issued: u32,
    mac: [u8; MAC_LEN],
}

impl Token {
    /// Decodes the text form; None for anything that is not a token's shape.
    /// Upper case is accepted: some mail servers fold local parts.
    pub fn decode(text: &str) -> Option<Token> {
        let text = text.trim().to_ascii_lowercase();
        if text.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = encoding().decode(text.as_bytes()).ok()?;
        if bytes.len() != TOKEN_BYTES {
            return None;
        }
        let id = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let issued = u32::from_be_bytes(bytes[8..12].try_into().ok()?);
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&bytes[12..]);
        Some(Token { id, issued, mac })
    }

    /// Finds a token as a whole word in free text such as a Subject.
    pub fn find_in(text: &str) -> Option<Token> {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .find_map(Token::decode)
    }

    /// Has it outlived `max_age_secs` at `now` (Unix seconds)? A token from
    /// the future is treated as expired too.
    pub fn expired(&self, now: u64, max_age_secs: u64) -> bool {
        let issued = u64::from(self.issued);
        issued > now + 300 || now - issued.min(now) > max_age_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_bytes([7; 32])
    }

    #[test]
    fn a_token_round_trips_and_binds_every_field() {
        let s = secret();
        let t = s.mint(
            Purpose::ConfirmSubscribe,
            "lf",
            "asa@exempel.se",
            42,
            1_700_000_000,
        );
        assert_eq!(t.len(), TOKEN_CHARS);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)),
            "{t}"
        );
        let tok = Token::decode(&t).unwrap();
        assert_eq!((tok.id, tok.issued), (42, 1_700_000_000));
        assert!(s.verify(&tok, Purpose::ConfirmSubscribe, "lf", "asa@exempel.se"));
        assert!(!s.verify(&tok, Purpose::ConfirmUnsubscribe, "lf", "asa@exempel.se"));
        assert!(!s.verify(&tok, Purpose::ConfirmSubscribe, "other", "asa@exempel.se"));
        assert!(!s.verify(&tok, Purpose::ConfirmSubscribe, "lf", "bo@exempel.se"));
        assert!(!Secret::from_bytes([8; 32]).verify(
            &tok,
            Purpose::ConfirmSubscribe,
            "lf",
            "asa@exempel.se"
        ));
        // Upper-cased by a mail server: still the same token.
        assert_eq!(Token::decode(&t.to_uppercase()).unwrap(), tok);
    }

    #[test]
    fn a_changed_character_breaks_it() {
        let s = secret();
        let t = s.mint(Purpose::Approve, "lf", "a@b.se", 1, 100);
        for i in 0..t.len() {
            let mut forged: Vec<u8> = t.clone().into_bytes();
            forged[i] = if forged[i] == b'a' { b'b' } else { b'a' };
            let forged = String::from_utf8(forged).unwrap();
            if let Some(tok) = Token::decode(&forged) {
                assert!(
                    !s.verify(&tok, Purpose::Approve, "lf", "a@b.se"),
                    "position {i}"
                );
            }
        }
    }

    #[test]
    fn a_list_confirm_address_fits_in_a_local_part() {
        assert!("lokal-finansiering-confirm+".len() + TOKEN_CHARS <= 64);
    }

    #[test]
    fn expiry() {
        let t = Token {
            id: 1,
            issued: 1000,
            mac: [0; MAC_LEN],
        };
        assert!(!t.expired(1000 + 7 * 86400, 7 * 86400));
        assert!(t.expired(1001 + 7 * 86400, 7 * 86400));
        assert!(t.expired(0, 7 * 86400));
    }

    #[test]
    fn found_in_a_subject() {
        let s = secret();
        let t = s.mint(Purpose::ConfirmSubscribe, "lf", "a@b.se", 9, 5);
        let subject = format!("SV: Bekräfta: Lokal finansiering (confirm {t})");
        assert_eq!(Token::find_in(&subject).unwrap().id, 9);
        assert!(Token::find_in("Re: hello there").is_none());
    }

    /// `Secret::mint` for the test below, as Python's `hmac` and `base64`
    /// compute it (lower-case base32 of id, issued and the MAC's first ten
    /// bytes), apart from this crate.
    const GOLDEN_TOKEN: &str = "aaaaaaaaaaaaoaaaaaveokahm4l6swc52kbq";

    /// The MAC of a token, from the key kept hashed in `Secret`, is the
    /// HMAC-SHA256 of the raw key over the same input: tokens in mail
    /// sent before the key was kept so still hold.
    #[test]
    fn a_mac_from_the_kept_key_is_the_hmac_of_the_raw_key() {
        let secret = Secret::from_bytes(*b"0123456789abcdef0123456789abcdef");
        let (list, address, id, issued) = ("lokal-finansiering", "anna@example.se", 7u64, 42u32);
        for purpose in [Purpose::Subscriber, Purpose::ConfirmSubscribe] {
            let mut fresh = HmacSha256::new_from_slice(secret.bytes()).unwrap();
            for part in [purpose.tag(), list.as_bytes(), address.as_bytes()] {
                fresh.update(&(part.len() as u32).to_be_bytes());
                fresh.update(part);
            }
            fresh.update(&id.to_be_bytes());
            fresh.update(&issued.to_be_bytes());
            let want = fresh.finalize().into_bytes();
            assert_eq!(
                secret.mac(purpose, list, address, id, issued)[..],
                want[..MAC_LEN]
            );
            // Twice: the kept key is cloned, never hashed into.
            assert_eq!(
                secret.mac(purpose, list, address, id, issued)[..],
                want[..MAC_LEN]
            );
        }
        let mut fresh = HmacSha256::new_from_slice(secret.bytes()).unwrap();
        fresh.update(b"suppress\0anna@example.se");
        assert_eq!(
            secret.suppression_hash(" Anna@Example.se "),
            fresh.finalize().into_bytes().to_vec()
        );
        // A token minted today, as minted before: a fixed value.
        assert_eq!(
            secret.mint(Purpose::Subscriber, list, address, id, issued),
            GOLDEN_TOKEN
        );
    }

    #[test]
    fn the_secret_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let a = Secret::load_or_create(&path).unwrap();
        let b = Secret::load_or_create(&path).unwrap();
        assert_eq!(a.bytes, b.bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(format!("{a:?}"), "Secret(…)");
    }
}
