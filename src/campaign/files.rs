//! A discussion post's attachments on the web (`attachments = "link"`):
//! the copies carry a link instead of the file, and the file is read from
//! the post's own stored bytes when the link is followed. The link is a
//! capability: a token we issued for that campaign and part (its MAC under
//! the daemon's secret), so no one reaches another post's files by
//! changing a number. A post that was cancelled or forgotten has no bytes
//! left, and its links answer "not found".

use mail_parser::{MessageParser, MimeHeaders};

use crate::daemon::context::Context;
use crate::daemon::lists::List;
use crate::store::CampaignStatus;
use crate::token::{Purpose, Token};

/// Where attachment `part` (named `name`) of campaign `campaign`'s post is
/// served: `{base_url}/files/LIST/TOKEN/NAME`.
pub fn file_url(ctx: &Context, list: &List, campaign: u64, part: usize, name: &str) -> String {
    let token = ctx
        .secret
        .mint(Purpose::File, &list.id, "", campaign, part as u32);
    let name: String = url_safe(name);
    format!("{}/files/{}/{token}/{name}", ctx.config.base_url(), list.id)
}

/// A file name as a path segment: letters, digits, `.`, `-` and `_` kept,
/// the rest `_` (the name is only for the reader's eye; the token decides).
fn url_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "file".into()
    } else {
        s
    }
}

/// An attachment to serve.
pub struct File {
    /// Its name, as the author gave it (header-safe).
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The attachment `token` (text from a link) names on list `list`, if the
/// token is ours for it and the post still holds it.
pub fn file(ctx: &Context, list: &List, token: &str) -> anyhow::Result<Option<File>> {
    let Some(t) = Token::decode(token) else {
        return Ok(None);
    };
    if !ctx.secret.verify(&t, Purpose::File, &list.id, "") {
        return Ok(None);
    }
    let Some(c) = ctx.store.campaign(t.id)? else {
        return Ok(None);
    };
    if c.list != list.id || c.post.is_none() || c.status == CampaignStatus::Cancelled {
        return Ok(None);
    }
    let Some(raw) = ctx.store.blob(c.id, 0)? else {
        return Ok(None);
    };
    let Some(msg) = MessageParser::default().parse(&raw[..]) else {
        return Ok(None);
    };
    let part = t.issued;
    if !msg.attachments.contains(&part) {
        return Ok(None);
    }
    let Some(p) = msg.parts.get(part as usize) else {
        return Ok(None);
    };
    Ok(Some(File {
        name: crate::address::header_safe(p.attachment_name().unwrap_or("file")),
        bytes: p.contents().to_vec(),
    }))
}
