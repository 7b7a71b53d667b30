//! A discussion post's bytes (issue 16): the author's own message, one copy
//! per member, with the list's header fields (RFC 2369, 2919), the subject
//! tag (never twice), the thread fields kept as they came, a footer in the
//! list's language that names the member's own way out, and our DKIM
//! signature in place of the author's (the tag and the footer break it).
//!
//! The footer never breaks the MIME structure: a post that is one
//! text/plain part gets it appended to its text; any other post is wrapped
//! in a multipart/mixed with the footer as a second text part, as Mailman
//! does. Whether `From:` is rewritten (DMARC) is decided by the caller,
//! which may ask the DNS; this file does no I/O.

use mail_parser::{MessageParser, MimeHeaders};

use crate::address;
use crate::compose::dkim::{field_name, fields};
use crate::compose::post_fields;
use crate::compose::system::{list_id, DkimKeys};
use crate::daemon::lists::{self, Attachments, AuthorIn, Language, List, ReplyTo};

/// Fields of the author's header that never reach the members: the
/// author's signatures and seals (the tag and footer break them; ours
/// replace them), the trace of the delivery to us, another list's fields,
/// ours (written anew), and those the copy rebuilds.
const DROPPED: &[&str] = &[
    "dkim-signature",
    "domainkey-signature",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "authentication-results",
    "return-path",
    "delivered-to",
    "x-original-to",
    "received-spf",
    "list-id",
    "list-post",
    "list-archive",
    "list-help",
    "list-subscribe",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-owner",
    "precedence",
    "x-loop",
    "sender",
    "errors-to",
    "bcc",
    "auto-submitted",
    "disposition-notification-to",
    "return-receipt-to",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "x-utskick-note",
    "x-utskick-subscriber",
    "x-utskick-campaign",
];

/// The fields our signature covers, when present.
const SIGNED: &[&str] = &[
    "From",
    "Reply-To",
    "Cc",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Post",
    "List-Help",
    "List-Subscribe",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Archive",
];

/// Reply prefixes that mark a reply in the clients our members use.
const REPLY_PREFIXES: &[&str] = &["re", "sv", "aw", "antw", "ang", "vs", "odp", "ynt"];

/// `subject` with `tag` in front once: a tag already anywhere in it (a
/// reply to a post: "Re: [Partnerskap] Möte", "SV: Re: [Partnerskap] …")
/// is taken out first, and the reply prefixes become one "Re: " after
/// the tag, so a thread's subject stays the same in every client.
pub fn tag_subject(subject: &str, tag: &str) -> String {
    let subject = address::header_safe(subject);
    if tag.is_empty() {
        return subject.trim().to_string();
    }
    let mut rest = subject.clone();
    let tag_lower = tag.to_lowercase();
    while let Some(at) = rest.to_lowercase().find(&tag_lower) {
        // to_lowercase keeps byte offsets for the letters of our tags;
        // should it not, stop rather than cut a character.
        let end = at + tag.len();
        if !rest.is_char_boundary(at) || !rest.is_char_boundary(end) || end > rest.len() {
            break;
        }
        rest.replace_range(at..end, " ");
    }
    let mut reply = false;
    let mut s = rest.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let found = REPLY_PREFIXES.iter().find_map(|p| {
            let after = lower.strip_prefix(p)?;
            // "Re:", "Re :", "Re[2]:"
            let after = after.trim_start_matches(|c: char| {
                c == ' ' || c.is_ascii_digit() || c == '[' || c == ']'
            });
            after.strip_prefix(':').map(|a| s.len() - a.len())
        });
        match found {
            Some(cut) => {
                reply = true;
                s = s[cut..].trim_start();
            }
            None => break,
        }
    }
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match (reply, s.is_empty()) {
        (true, _) => format!("{tag} Re: {s}").trim_end().to_string(),
        (false, true) => tag.to_string(),
        (false, false) => format!("{tag} {s}"),
    }
}

/// A post, read once per send round; [`Post::copy`] writes each member's.
pub struct Post {
    /// Fields of the author's header that travel on, CRLF after each.
    kept: Vec<u8>,
    /// The original `From:` field, for when it is not rewritten.
    from_field: Vec<u8>,
    /// The author's own `Reply-To:` field, if any.
    reply_to_field: Option<Vec<u8>>,
    /// The decoded subject, untagged.
    subject: String,
    pub author_email: String,
    pub author_name: String,
    body: Body,
}

enum Body {
    /// One text/plain part: its text, decoded, and its format=flowed
    /// parameters to keep.
    Text { text: String, flowed: String },
    /// Anything else: the author's content fields and body as they came,
    /// to become the first part of a multipart/mixed.
    Wrapped { content: Vec<u8>, body: Vec<u8> },
}

/// The parts of one member's copy that differ from the next member's.
pub struct CopyOf<'a> {
    pub unsubscribe_url: &'a str,
    pub unsubscribe_mailto: &'a str,
}

/// What the list's configuration and the caller decided for every copy.
pub struct Setting<'a> {
    pub list: &'a List,
    pub domain: &'a str,
    pub base_url: &'a str,
    /// `From:` becomes the list's own address (DMARC).
    pub rewrite_from: bool,
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

impl Post {
    /// Reads the author's message; None when it does not parse or has no
    /// From address. Its HTML parts pass through the one sanitiser
    /// (`compose::sanitize`), and its attachments are kept or replaced by
    /// a line that names them, as `attachments` says.
    ///
    /// With `attachments = "link"`, `link(part, name)` gives the address
    /// where an attachment of the post (its part number in the post) can be
    /// fetched; None, or an attachment inside a forwarded message, gets the
    /// line that asks the reader to ask the author.
    pub fn parse(
        raw: &[u8],
        attachments: Attachments,
        sv: bool,
        link: FileLink<'_>,
    ) -> Option<Post> {
        let raw = crlf(raw);
        let msg = MessageParser::default().parse(&raw[..])?;
        let from = msg.from()?.first()?;
        let author_email = address::normalize(from.address()?);
        let author_name = address::header_safe(from.name().unwrap_or_default());
        let subject = msg.subject().unwrap_or_default().to_string();
        let (head, body_at) = fields(&raw);
        let mut kept = Vec::new();
        let mut from_field = Vec::new();
        let mut reply_to_field = None;
        let mut content = Vec::new();
        for f in &head {
            let name = field_name(f);
            // A field with a line over 998 octets is refolded, or dropped
            // when it cannot be (RFC 5322 2.1.1).
            let Some(f) = post_fields::fit(f) else {
                continue;
            };
            let f = &f[..];
            if name == "from" {
                from_field = [f, b"\r\n"].concat();
            } else if name == "reply-to" {
                reply_to_field = Some([f, b"\r\n"].concat());
            } else if name.starts_with("content-") {
                content.extend_from_slice(f);
                content.extend_from_slice(b"\r\n");
            } else if !DROPPED.contains(&name.as_str()) && !name.starts_with("x-utskick") {
                kept.extend_from_slice(f);
                kept.extend_from_slice(b"\r\n");
            }
        }
        // A From with several addresses (RFC 5322 3.6.2 wants a Sender,
        // providers refuse it) goes on with the first, the author's, only.
        if msg.from().is_some_and(|f| f.iter().nth(1).is_some()) || from_field.is_empty() {
            from_field = format!("From: {}\r\n", mailbox(&author_name, &author_email)).into_bytes();
        }
        let root = msg.root_part();
        let is_text_plain = root.content_type().is_none_or(|ct| {
            ct.ctype().eq_ignore_ascii_case("text")
                && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
        });
        let single = !matches!(
            root.body,
            mail_parser::PartType::Multipart(_) | mail_parser::PartType::Message(_)
        );
        let body = if single && is_text_plain && !root.is_content_type("text", "html") {
            let flowed = root
                .content_type()
                .map(|ct| {
                    let mut p = String::new();
                    if ct
                        .attribute("format")
                        .is_some_and(|f| f.eq_ignore_ascii_case("flowed"))
                    {
                        p.push_str("; format=flowed");
                        if ct
                            .attribute("delsp")
                            .is_some_and(|d| d.eq_ignore_ascii_case("yes"))
                        {
                            p.push_str("; delsp=yes");
                        }
                    }
                    p
                })
                .unwrap_or_default();
            Body::Text {
                text: msg.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
                flowed,
            }
        } else {
            // The Content-* fields of the header (headers with no
            // Content-Type mean text/plain, and a wrapped one must say it).
            if content.is_empty() {
                content.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
            }
            // HTML at any depth (a forwarded message's too), a part that
            // names its type twice, or attachments to replace: rebuilt.
            let touch = msg.parts.iter().enumerate().any(|(i, p)| {
                matches!(
                    p.body,
                    mail_parser::PartType::Html(_) | mail_parser::PartType::Message(_)
                ) || post_fields::repeated_type(
                    raw.get(p.offset_header as usize..p.offset_body as usize)
                        .unwrap_or_default(),
                )
                .is_some()
                    || (attachments != Attachments::Keep && msg.attachments.contains(&(i as u32)))
            });
            if touch {
                let mut body = Vec::new();
                let rebuilt = Rebuild {
                    msg: &msg,
                    raw: &raw,
                    attachments,
                    sv,
                    depth: 0,
                    link,
                };
                match rebuilt.part(0, &mut body) {
                    Some(fields) => Body::Wrapped {
                        content: fields,
                        body,
                    },
                    None => return None,
                }
            } else {
                Body::Wrapped {
                    content,
                    body: raw[body_at.min(raw.len())..].to_vec(),
                }
            }
        };
        Some(Post {
            kept,
            from_field,
            reply_to_field,
            subject,
            author_email,
            author_name,
            body,
        })
    }

    /// The subject each copy carries.
    pub fn subject(&self, list: &List) -> String {
        tag_subject(&self.subject, &list.discussion.subject_tag)
    }

    /// The post as a digest holds it (a `message/rfc822` part): the
    /// author's header and the body as every member's copy has it, without
    /// our fields and footer.
    fn embedded(&self) -> Vec<u8> {
        let mut out = self.from_field.clone();
        out.extend_from_slice(
            format!("Subject: {}\r\n", address::encode_header(&self.subject)).as_bytes(),
        );
        if let Some(f) = &self.reply_to_field {
            out.extend_from_slice(f);
        }
        out.extend_from_slice(&self.kept);
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        match &self.body {
            Body::Text { text, flowed } => {
                let body = lettre::message::Body::new(text.replace("\r\n", "\n"));
                out.extend_from_slice(
                    format!(
                        "Content-Type: text/plain; charset=utf-8{flowed}\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                        body.encoding()
                    )
                    .as_bytes(),
                );
                out.extend(crlf(&body.into_vec()));
            }
            Body::Wrapped { content, body } => {
                out.extend_from_slice(content);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(body);
            }
        }
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// The author as a mailbox, `"Name" <a@b>`, for Reply-To or Cc.
    fn author_mailbox(&self) -> String {
        mailbox(&self.author_name, &self.author_email)
    }

    /// One member's copy, signed when `dkim` is set.
    pub fn copy(
        &self,
        set: &Setting<'_>,
        copy: &CopyOf<'_>,
        dkim: Option<&DkimKeys>,
        now: i64,
    ) -> Vec<u8> {
        let list = set.list;
        let d = &list.discussion;
        let post_address = lists::list_address(list, "", None, set.domain);
        let mut head: Vec<u8> = Vec::new();
        let mut put = |name: &str, value: &str| {
            head.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        };
        // From, and where the author goes when it is the list's.
        if set.rewrite_from {
            let who = if self.author_name.is_empty() {
                self.author_email
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            } else {
                self.author_name.clone()
            };
            let via = if d.subject_tag.is_empty() {
                list.name.clone()
            } else {
                d.subject_tag
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            };
            let label = match list.language {
                Language::Sv | Language::En => format!("{who} via {via}"),
            };
            put("From", &mailbox(&label, &post_address));
        }
        let mut reply_to: Vec<String> = Vec::new();
        if d.reply_to == ReplyTo::List {
            reply_to.push(format!("<{post_address}>"));
        }
        let author_by_reply_to = set.rewrite_from
            && (d.rewrite_author_in == AuthorIn::ReplyTo || d.reply_to == ReplyTo::Author);
        if author_by_reply_to {
            reply_to.push(self.author_mailbox());
        }
        if !reply_to.is_empty() {
            put("Reply-To", &reply_to.join(", "));
        }
        put("Subject", &address::encode_header(&self.subject(list)));
        put("List-Id", &list_id(list, set.domain));
        put("List-Post", &format!("<mailto:{post_address}>"));
        put(
            "List-Help",
            &format!(
                "<mailto:{}?subject=help>",
                lists::list_address(list, "request", None, set.domain)
            ),
        );
        put(
            "List-Subscribe",
            &format!(
                "<mailto:{}>",
                lists::list_address(list, "subscribe", None, set.domain)
            ),
        );
        put(
            "List-Unsubscribe",
            &format!(
                "<{}>, <mailto:{}>",
                copy.unsubscribe_url, copy.unsubscribe_mailto
            ),
        );
        put("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        if list.public {
            put(
                "List-Archive",
                &format!("<{}/archive/{}>", set.base_url, list.id),
            );
        }
        put("Precedence", "list");
        put("X-Loop", &format!("{}-loop@{}", list.address, set.domain));
        if !set.rewrite_from {
            head.extend_from_slice(&self.from_field);
            if d.reply_to == ReplyTo::Author {
                if let Some(f) = &self.reply_to_field {
                    head.extend_from_slice(f);
                }
            }
        }
        let mut kept = self.kept.clone();
        if set.rewrite_from && d.rewrite_author_in == AuthorIn::Cc && d.reply_to == ReplyTo::List {
            kept = add_cc(&kept, &self.author_mailbox());
        }
        head.extend_from_slice(&kept);
        head.extend_from_slice(b"MIME-Version: 1.0\r\n");
        let footer = footer(list, set.domain, copy);
        let mut message = head;
        match &self.body {
            Body::Text { text, flowed } => {
                let mut text = text.trim_end().to_string();
                text.push_str("\n\n");
                text.push_str(&footer);
                let body = lettre::message::Body::new(text.replace("\r\n", "\n"));
                message.extend_from_slice(
                    format!(
                        "Content-Type: text/plain; charset=utf-8{flowed}\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                        body.encoding()
                    )
                    .as_bytes(),
                );
                message.extend(crlf(&body.into_vec()));
            }
            Body::Wrapped { content, body } => {
                let boundary = boundary(body);
                let footer_part = lettre::message::Body::new(footer);
                message.extend_from_slice(
                    format!(
                        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"
                    )
                    .as_bytes(),
                );
                message.extend_from_slice(content);
                message.extend_from_slice(b"\r\n");
                message.extend_from_slice(body);
                if !body.ends_with(b"\r\n") {
                    message.extend_from_slice(b"\r\n");
                }
                message.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                        footer_part.encoding()
                    )
                    .as_bytes(),
                );
                message.extend(crlf(&footer_part.into_vec()));
                message.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            }
        }
        match dkim {
            Some(keys) => keys.sign_raw(&message, SIGNED, now.max(0) as u64),
            None => message,
        }
    }
}

/// A post's MIME tree written anew: HTML sanitised, attachments replaced
/// when the list says so, every other part as it came.
struct Rebuild<'a> {
    msg: &'a mail_parser::Message<'a>,
    raw: &'a [u8],
    attachments: Attachments,
    sv: bool,
    /// How many forwarded messages this one is inside.
    depth: usize,
    /// Where an attachment of the post itself is served (`link`).
    link: FileLink<'a>,
}

/// Where attachment `part` (named `name`) of a post is served, if it is:
/// see [`Post::parse`].
pub type FileLink<'a> = &'a dyn Fn(usize, &str) -> Option<String>;

/// No attachment is served.
pub fn no_links(_part: usize, _name: &str) -> Option<String> {
    None
}

/// The deepest forwarded message (message/rfc822 in message/rfc822 …)
/// rebuilt; a post nested deeper does not parse.
const MAX_NESTED: usize = 8;

impl Rebuild<'_> {
    /// Writes part `id`'s body into `out` and returns its Content-* fields
    /// (CRLF after each).
    fn part(&self, id: usize, out: &mut Vec<u8>) -> Option<Vec<u8>> {
        let p = self.msg.parts.get(id)?;
        let head = self
            .raw
            .get(p.offset_header as usize..p.offset_body as usize)
            .unwrap_or_default();
        let own_fields = || post_fields::content_fields(head);
        let is_attachment = id != 0 && self.msg.attachments.contains(&(id as u32));
        // Two Content-Types, one of them HTML: readers differ in which
        // they go by, so the part is HTML, sanitised, under one type.
        let html_twice = post_fields::repeated_type(head) == Some(true);
        match &p.body {
            _ if is_attachment && self.attachments != Attachments::Keep => {
                let name = p
                    .attachment_name()
                    .map(address::header_safe)
                    .unwrap_or_else(|| "?".into());
                let size = p.contents().len().div_ceil(1024);
                let url = match self.attachments {
                    Attachments::Link => (self.link)(id, &name),
                    _ => None,
                };
                let note = match (self.sv, self.attachments, url) {
                    (true, Attachments::Link, Some(url)) => format!("[Bilagan {name} ({size} kB) finns att hämta här: {url} ]\n"),
                    (false, Attachments::Link, Some(url)) => format!("[The attachment {name} ({size} kB) can be fetched here: {url} ]\n"),
                    (true, Attachments::Link, None) => format!("[Bilagan {name} ({size} kB) skickas inte till listan; be avsändaren om den.]\n"),
                    (true, _, _) => format!("[Bilagan {name} ({size} kB) togs bort.]\n"),
                    (false, Attachments::Link, None) => format!("[The attachment {name} ({size} kB) is not sent to the list; ask the sender for it.]\n"),
                    (false, _, _) => format!("[The attachment {name} ({size} kB) was removed.]\n"),
                };
                let body = lettre::message::Body::new(note);
                let fields = format!(
                    "Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: {}\r\n",
                    body.encoding()
                );
                out.extend(crlf(&body.into_vec()));
                Some(fields.into_bytes())
            }
            _ if html_twice && !matches!(p.body, mail_parser::PartType::Multipart(_)) => {
                let clean = crate::compose::sanitize::html(&String::from_utf8_lossy(p.contents()));
                let body = lettre::message::Body::new(clean);
                let fields = format!(
                    "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n",
                    body.encoding()
                );
                out.extend(crlf(&body.into_vec()));
                Some(fields.into_bytes())
            }
            mail_parser::PartType::Message(inner) => self.forwarded(p, inner, out),
            mail_parser::PartType::Html(html) => {
                let clean = crate::compose::sanitize::html(html);
                let body = lettre::message::Body::new(clean);
                let fields = format!(
                    "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n",
                    body.encoding()
                );
                out.extend(crlf(&body.into_vec()));
                Some(fields.into_bytes())
            }
            mail_parser::PartType::Multipart(children) => {
                let fields = own_fields();
                let boundary = p.content_type()?.attribute("boundary")?.to_string();
                for child in children {
                    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                    let mut body = Vec::new();
                    let child_fields = self.part(*child as usize, &mut body)?;
                    out.extend_from_slice(&child_fields);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&body);
                    if !out.ends_with(b"\r\n") {
                        out.extend_from_slice(b"\r\n");
                    }
                }
                out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
                Some(fields)
            }
            _ => {
                out.extend_from_slice(
                    self.raw
                        .get(p.offset_body as usize..p.offset_end as usize)
                        .unwrap_or_default(),
                );
                let fields = own_fields();
                Some(if fields.is_empty() {
                    b"Content-Type: text/plain; charset=us-ascii\r\n".to_vec()
                } else {
                    fields
                })
            }
        }
    }
}

impl Rebuild<'_> {
    /// A forwarded message (message/rfc822): its own header as it came
    /// (the fields fitted to the line limit), its body rebuilt like the
    /// post's, so its HTML passes the sanitiser too.
    fn forwarded(
        &self,
        p: &mail_parser::MessagePart<'_>,
        inner: &mail_parser::Message<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Vec<u8>> {
        if self.depth >= MAX_NESTED {
            return None;
        }
        // Sent as it is (7bit/8bit): the bytes on the wire; encoded (not
        // allowed by RFC 2046, but seen): the parser's decoded bytes.
        let encoded = p.encoding != mail_parser::Encoding::None;
        let bytes = crlf(if encoded {
            inner.raw_message()
        } else {
            self.raw
                .get(p.offset_body as usize..p.offset_end as usize)
                .unwrap_or_default()
        });
        let nested = MessageParser::default().parse(&bytes[..])?;
        let rebuilt = Rebuild {
            msg: &nested,
            raw: &bytes,
            attachments: self.attachments,
            sv: self.sv,
            depth: self.depth + 1,
            // A forwarded message's parts are not the post's: not served.
            link: &no_links,
        };
        let mut body = Vec::new();
        let content = rebuilt.part(0, &mut body)?;
        let (head, _) = fields(&bytes);
        for f in head {
            if !field_name(f).starts_with("content-") {
                if let Some(f) = post_fields::fit(f) {
                    out.extend_from_slice(&f);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        out.extend_from_slice(&content);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        let disposition = post_fields::content_fields(
            self.raw
                .get(p.offset_header as usize..p.offset_body as usize)
                .unwrap_or_default(),
        );
        let inline = String::from_utf8_lossy(&disposition)
            .to_ascii_lowercase()
            .contains("content-disposition: inline");
        Some(
            format!(
                "Content-Type: message/rfc822\r\n{}",
                if inline {
                    "Content-Disposition: inline\r\n"
                } else {
                    "Content-Disposition: attachment\r\n"
                }
            )
            .into_bytes(),
        )
    }
}

/// A digest's subject: the tag, the word, the day and how many posts.
pub fn digest_subject(list: &List, day: &str, posts: usize) -> String {
    let (word, unit) = match list.language {
        Language::Sv => ("Sammandrag", "inlägg"),
        Language::En => ("Digest", if posts == 1 { "post" } else { "posts" }),
    };
    tag_subject(
        &format!("{word} {day} ({posts} {unit})"),
        &list.discussion.subject_tag,
    )
}

/// A day's posts as one MIME digest (RFC 2046 §5.1.5, in the manner of
/// RFC 1153): a multipart/mixed whose first part lists the posts and whose
/// second is a multipart/digest of them, each a message/rfc822 part. It is
/// sent like a post, so every copy gets the list's fields and footer.
pub fn digest(list: &List, domain: &str, day: &str, posts: &[Post], now: i64) -> Vec<u8> {
    let post_address = lists::list_address(list, "", None, domain);
    let embedded: Vec<Vec<u8>> = posts.iter().map(Post::embedded).collect();
    let all = embedded.concat();
    let outer = boundary(&all);
    let inner = boundary(&all);
    let mut toc = match list.language {
        Language::Sv => format!("{}: sammandrag av inläggen {day}\n\n", list.name),
        Language::En => format!("{}: digest of the posts of {day}\n\n", list.name),
    };
    for (i, p) in posts.iter().enumerate() {
        let who = if p.author_name.is_empty() {
            p.author_email.clone()
        } else {
            format!("{} <{}>", p.author_name, p.author_email)
        };
        toc.push_str(&format!(
            "{}. {}\n   {who}\n",
            i + 1,
            address::header_safe(&p.subject)
        ));
    }
    let toc = lettre::message::Body::new(toc);
    let date = chrono::DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .to_rfc2822();
    let mut out = Vec::new();
    out.extend_from_slice(
        format!(
            "From: {}\r\nTo: <{post_address}>\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <utskick.{}.digest.{day}@{domain}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{outer}\"\r\n\r\n--{outer}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n\r\n",
            mailbox(&list.name, &post_address),
            address::encode_header(&digest_subject(list, day, posts.len())),
            list.id,
            toc.encoding(),
        )
        .as_bytes(),
    );
    out.extend(crlf(&toc.into_vec()));
    out.extend_from_slice(
        format!("\r\n--{outer}\r\nContent-Type: multipart/digest; boundary=\"{inner}\"\r\n\r\n")
            .as_bytes(),
    );
    for e in &embedded {
        out.extend_from_slice(
            format!("--{inner}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(e);
    }
    out.extend_from_slice(format!("--{inner}--\r\n\r\n--{outer}--\r\n").as_bytes());
    out
}

/// `"Name" <a@b>` with the name RFC 2047-encoded when it is not ASCII.
fn mailbox(name: &str, email: &str) -> String {
    let name = address::header_safe(name);
    if name.is_empty() {
        format!("<{email}>")
    } else if name.is_ascii() {
        format!("\"{}\" <{email}>", name.replace(['"', '\\'], "'"))
    } else {
        format!("{} <{email}>", address::encode_header(&name))
    }
}

/// `kept` with `who` added to its Cc field (or a Cc field added).
fn add_cc(kept: &[u8], who: &str) -> Vec<u8> {
    let whole = [kept, b"\r\n"].concat();
    let (fields, _) = fields(&whole);
    let mut out = Vec::new();
    let mut done = false;
    for f in fields {
        out.extend_from_slice(f);
        if !done && field_name(f) == "cc" {
            out.extend_from_slice(format!(",\r\n {who}").as_bytes());
            done = true;
        }
        out.extend_from_slice(b"\r\n");
    }
    if !done {
        out.extend_from_slice(format!("Cc: {who}\r\n").as_bytes());
    }
    out
}

/// A MIME boundary that does not occur in `body`.
fn boundary(body: &[u8]) -> String {
    loop {
        let b = format!("=_utskick_{:016x}", rand::random::<u64>());
        if !body.windows(b.len()).any(|w| w == b.as_bytes()) {
            return b;
        }
    }
}

/// The footer of every copy, in the list's language: where to write, how
/// to leave (the member's own link) and where the settings are.
fn footer(list: &List, domain: &str, copy: &CopyOf<'_>) -> String {
    let post = lists::list_address(list, "", None, domain);
    let request = lists::list_address(list, "request", None, domain);
    let rule = "_______________________________________________";
    match list.language {
        Language::Sv => format!(
            "{rule}\n{name}\nSkriv till alla medlemmar: {post}\nLämna listan: {url}\nInställningar (inga egna kopior, sammandrag):\nskriv ”hjälp” till {request}\n",
            name = list.name,
            url = copy.unsubscribe_url,
        ),
        Language::En => format!(
            "{rule}\n{name}\nWrite to every member: {post}\nLeave the list: {url}\nSettings (no copies of your own, a digest):\nsend \"help\" to {request}\n",
            name = list.name,
            url = copy.unsubscribe_url,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_message_keeps_its_header_and_loses_its_script() {
        let raw = "From: a@example.org\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nSe nedan.\r\n--o\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\nFrom: x@example.com\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p onclick=\"x()\">Hej</p><script>alert(1)</script>\r\n--o--\r\n";
        let copy = copy_of(raw, &list(""), false);
        assert!(!copy.to_lowercase().contains("<script"), "{copy}");
        assert!(!copy.contains("onclick"), "{copy}");
        let msg = MessageParser::default().parse(copy.as_bytes()).unwrap();
        let inner = msg
            .parts
            .iter()
            .find_map(|p| match &p.body {
                mail_parser::PartType::Message(m) => Some(m),
                _ => None,
            })
            .expect("the forwarded message is still a message/rfc822 part");
        assert_eq!(inner.subject(), Some("inner"));
        assert!(inner.body_html(0).unwrap().contains("Hej"), "{copy}");
    }

    #[test]
    fn attachments_are_kept_or_named() {
        let raw = "From: a@example.org\r\nSubject: Fil\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSe bilagan.\r\n--b\r\nContent-Type: application/pdf; name=\"plan.pdf\"\r\nContent-Disposition: attachment; filename=\"plan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";
        let keep = copy_of(raw, &list(""), false);
        let msg = MessageParser::default().parse(keep.as_bytes()).unwrap();
        assert_eq!(
            msg.attachments().next().unwrap().attachment_name(),
            Some("plan.pdf")
        );
        let strip = copy_of(raw, &list("attachments = \"strip\"\n"), false);
        let msg = MessageParser::default().parse(strip.as_bytes()).unwrap();
        assert!(
            msg.attachments()
                .all(|a| a.attachment_name() != Some("plan.pdf")),
            "{strip}"
        );
        assert!(
            strip.contains("[Bilagan plan.pdf (1 kB) togs bort.]"),
            "{strip}"
        );
        assert_eq!(
            msg.body_text(0).as_deref().map(str::trim),
            Some("Se bilagan.")
        );
    }

    #[test]
    fn a_digest_holds_each_post_as_a_message() {
        let l = list("");
        let a = "From: Anna <a@example.org>\r\nSubject: Möte\r\nMessage-ID: <a1@x>\r\n\r\nHej!\r\n";
        let b = "From: b@example.org\r\nSubject: Re: [P] Möte\r\nMessage-ID: <b1@x>\r\nContent-Type: text/html\r\n\r\n<p onclick=\"x\">Ja</p>\r\n";
        let posts: Vec<Post> = [a, b]
            .iter()
            .map(|r| Post::parse(r.as_bytes(), Attachments::Keep, true, &no_links).unwrap())
            .collect();
        let raw = digest(&l, "d.se", "2026-12-01", &posts, 1_800_000_000);
        let msg = MessageParser::default().parse(&raw[..]).unwrap();
        assert_eq!(msg.subject(), Some("[P] Sammandrag 2026-12-01 (2 inlägg)"));
        let toc = msg.body_text(0).unwrap();
        assert!(
            toc.contains("1. Möte") && toc.contains("2. Re: [P] Möte"),
            "{toc}"
        );
        let nested: Vec<_> = msg
            .parts
            .iter()
            .filter_map(|p| match &p.body {
                mail_parser::PartType::Message(m) => Some(m.message_id().unwrap().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(nested, ["a1@x", "b1@x"]);
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains("multipart/digest") && !text.contains("onclick"),
            "{text}"
        );
        // Sent as a post: one tag, the footer.
        let copy = copy_of(&text, &l, false);
        let copy = MessageParser::default().parse(copy.as_bytes()).unwrap();
        assert_eq!(copy.subject(), Some("[P] Sammandrag 2026-12-01 (2 inlägg)"));
    }

    #[test]
    fn the_tag_is_never_doubled() {
        let t = "[Partnerskap]";
        for (given, want) in [
            ("Möte 12 januari", "[Partnerskap] Möte 12 januari"),
            ("[Partnerskap] Möte", "[Partnerskap] Möte"),
            ("Re: [Partnerskap] Möte", "[Partnerskap] Re: Möte"),
            ("SV: Re: [partnerskap] Möte", "[Partnerskap] Re: Möte"),
            ("AW: [Partnerskap] Re: Möte", "[Partnerskap] Re: Möte"),
            ("Re[2]: Möte", "[Partnerskap] Re: Möte"),
            ("Fwd: Möte", "[Partnerskap] Fwd: Möte"),
            ("", "[Partnerskap]"),
            ("Sverige", "[Partnerskap] Sverige"),
            ("Reply needed", "[Partnerskap] Reply needed"),
        ] {
            assert_eq!(tag_subject(given, t), want, "{given}");
        }
        assert_eq!(tag_subject("Re: Möte", ""), "Re: Möte");
    }

    fn list(extra: &str) -> List {
        List::parse(
            "p",
            &format!("name = \"Partnerskapet\"\naddress = \"p\"\nposting = \"members\"\nsubject_tag = \"[P]\"\n{extra}"),
        )
        .unwrap()
    }

    fn copy_of(raw: &str, list: &List, rewrite: bool) -> String {
        let post =
            Post::parse(raw.as_bytes(), list.discussion.attachments, true, &no_links).unwrap();
        let set = Setting {
            list,
            domain: "d.se",
            base_url: "https://d.se",
            rewrite_from: rewrite,
        };
        let c = CopyOf {
            unsubscribe_url: "https://d.se/unsubscribe/TOK",
            unsubscribe_mailto: "p-unsubscribe+TOK@d.se",
        };
        String::from_utf8(post.copy(&set, &c, None, 0)).unwrap()
    }

    #[test]
    fn a_single_text_part_gets_the_footer_appended_and_threads_hold() {
        let raw = "From: =?utf-8?q?=C3=85sa_=C3=96berg?= <asa@example.org>\r\nTo: p@d.se\r\nSubject: Re: [P] Möte\r\nMessage-ID: <m2@example.org>\r\nIn-Reply-To: <m1@example.org>\r\nReferences: <m1@example.org>\r\nDKIM-Signature: v=1; b=abc\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHej, jag kommer p=E5 m=F6tet.\r\n";
        let out = copy_of(raw, &list(""), false);
        let msg = MessageParser::default().parse(out.as_bytes()).unwrap();
        assert_eq!(msg.subject(), Some("[P] Re: Möte"));
        assert_eq!(msg.message_id(), Some("m2@example.org"));
        assert_eq!(msg.in_reply_to().as_text(), Some("m1@example.org"));
        let text = msg.body_text(0).unwrap();
        assert!(text.starts_with("Hej, jag kommer på mötet."), "{text}");
        assert!(text.contains("https://d.se/unsubscribe/TOK"), "{text}");
        assert!(!out.contains("DKIM-Signature"), "{out}");
        assert!(out.contains("\r\nFrom: =?utf-8?q?=C3=85sa_=C3=96berg?= <asa@example.org>\r\n"));
        assert!(out.contains("Reply-To: <p@d.se>\r\n"), "{out}");
        assert!(out.contains("Precedence: list\r\n"));
        assert!(out.contains("List-Post: <mailto:p@d.se>\r\n"));
        assert!(!out.to_ascii_lowercase().contains("auto-submitted"));
    }

    #[test]
    fn a_multipart_post_is_wrapped_and_from_rewritten() {
        let raw = "From: Åsa Öberg <asa@example.org>\r\nTo: p@d.se\r\nSubject: Bild\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHej\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>Hej</p>\r\n--b1--\r\n";
        let out = copy_of(raw, &list("reply_to = \"list\"\n"), true);
        let msg = MessageParser::default().parse(out.as_bytes()).unwrap();
        assert!(
            msg.root_part().is_content_type("multipart", "mixed"),
            "{out}"
        );
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("p@d.se"));
        assert_eq!(from.name(), Some("Åsa Öberg via P"));
        let reply_to: Vec<_> = msg
            .reply_to()
            .unwrap()
            .iter()
            .filter_map(|a| a.address())
            .collect();
        assert_eq!(reply_to, vec!["p@d.se", "asa@example.org"]);
        assert_eq!(msg.body_text(0).as_deref(), Some("Hej"));
        assert!(msg.body_html(0).unwrap().contains("<p>Hej</p>"));
        assert!(out.contains("https://d.se/unsubscribe/TOK"));
        // The HTML part went through the sanitiser.
        let hostile = raw.replace(
            "<p>Hej</p>",
            "<p onclick=\"x()\">Hej</p><script>alert(1)</script>",
        );
        let out = copy_of(&hostile, &list(""), false);
        let msg = MessageParser::default().parse(out.as_bytes()).unwrap();
        let html = msg.body_html(0).unwrap();
        assert!(
            html.contains("Hej") && !html.contains("script") && !html.contains("onclick"),
            "{html}"
        );
        let cc = copy_of(raw, &list("rewrite_author_in = \"cc\"\n"), true);
        let msg = MessageParser::default().parse(cc.as_bytes()).unwrap();
        assert_eq!(
            msg.cc().unwrap().first().unwrap().address(),
            Some("asa@example.org")
        );
    }
}
