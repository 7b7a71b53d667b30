//! Pure message building: a rendered template, a list and a recipient become
//! the bytes of a system mail with the headers the spec names.
//!
//! Every header value that could hold user data (names, subjects) passes
//! through `address::header_safe` and lettre's RFC 2047 encoder, so no CR or
//! LF from outside reaches a header.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::address;
use crate::lists::List;
use crate::templates::Rendered;

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
        &address::list_address(list, "request", None, env.domain),
    )?;
    let reply_to = env
        .reply_to
        .clone()
        .unwrap_or_else(|| address::list_address(list, "request", None, env.domain));
    let message_id = format!(
        "utskick.{}.{unique:x}.{:x}@{}",
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
    Ok((message_id, message.formatted()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::List;

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
}
