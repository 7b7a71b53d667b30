//! The discussion list `partnerskap` (`lists/partnerskap.toml`, posting
//! by members): its addresses, its members, a post as a mail client
//! writes it.

use super::{Daemon, DOMAIN};

/// `partnerskap{suffix}@DOMAIN`, e.g. `-request`.
pub fn list_addr(suffix: &str) -> String {
    format!("partnerskap{suffix}@{DOMAIN}")
}

/// Adds `people` as confirmed members and takes their welcome mails.
pub fn members(d: &mut Daemon, people: &[&str]) {
    for email in people {
        d.cli_ok(&["add", "partnerskap", email, "--consent", "test"]);
    }
    d.wait_mails(people.len());
}

/// A post as a mail client writes it.
pub fn post(from: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}Date: Tue, 1 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        to = list_addr("")
    )
}

/// A post as above, signed by the author's domain (a DKIM-Signature
/// header first; nothing here verifies it).
pub fn signed_post(from: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; b=AAAA\r\n{}",
        post(from, subject, id, extra, body)
    )
}
