//! An attachment's MIME part, built once per campaign: the headers that
//! name the file for every client, and a body in base64 unless it is text.
//! lettre's `Attachment` names a file that is not ASCII in RFC 2231 form
//! only (`filename*0*=…`), which older Outlook and some Android clients do
//! not read (they show "ATT00001"), and picks 7bit or quoted-printable for
//! bytes that look like text, so the headers are written here. Pure.

use lettre::message::header::{ContentTransferEncoding, Header, HeaderName, HeaderValue};
use lettre::message::Body;

/// An attachment, encoded once per campaign rather than once per recipient.
pub(crate) struct EncodedAttachment {
    pub(crate) content_type: AttachmentType,
    pub(crate) disposition: AttachmentDisposition,
    pub(crate) body: Body,
}

/// A stored content type without its parameters (but a text type's
/// charset), or application/octet-stream if it does not parse.
pub(crate) fn content_type(value: &str) -> String {
    match value.parse::<mime_guess::mime::Mime>() {
        Ok(m) if m.type_() == mime_guess::mime::TEXT => match m.get_param("charset") {
            Some(charset) => format!("{}; charset={charset}", m.essence_str()),
            None => m.essence_str().to_string(),
        },
        Ok(m) => m.essence_str().to_string(),
        Err(_) => "application/octet-stream".to_string(),
    }
}

/// An attachment's part: headers that name it for every client, and its
/// body in base64 unless it is text (a PDF that happens to be ASCII is
/// still a PDF, and some clients mangle a quoted-printable one).
pub(crate) fn encode_attachment(
    filename: &str,
    stored_type: &str,
    data: &[u8],
) -> EncodedAttachment {
    let ctype = content_type(stored_type);
    let body = if ctype.starts_with("text/") {
        Body::new(data.to_vec())
    } else {
        Body::new_with_encoding(data.to_vec(), ContentTransferEncoding::Base64)
            .expect("base64 can carry any bytes")
    };
    let content_type = AttachmentType(header_value(
        AttachmentType::name(),
        &ctype,
        &file_name_parameters("name", filename),
    ));
    let disposition = AttachmentDisposition(header_value(
        AttachmentDisposition::name(),
        "attachment",
        &file_name_parameters("filename", filename),
    ));
    EncodedAttachment {
        content_type,
        disposition,
        body,
    }
}

/// An attachment's Content-Type, written by us: lettre's carries no `name`.
#[derive(Debug, Clone)]
pub(crate) struct AttachmentType(HeaderValue);

/// An attachment's Content-Disposition, written by us: lettre's has only
/// the RFC 2231 form for a name that is not ASCII, which older Outlook and
/// some Android clients do not read (they show "ATT00001").
#[derive(Debug, Clone)]
pub(crate) struct AttachmentDisposition(HeaderValue);

type HeaderParseError = Box<dyn std::error::Error + Send + Sync>;

impl Header for AttachmentType {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Type")
    }
    fn parse(_: &str) -> Result<Self, HeaderParseError> {
        Err("built, never parsed".into())
    }
    fn display(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl Header for AttachmentDisposition {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Disposition")
    }
    fn parse(_: &str) -> Result<Self, HeaderParseError> {
        Err("built, never parsed".into())
    }
    fn display(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// `value;` then each parameter on a folded line of its own. Every piece
/// is printable ASCII without CR or LF (see `file_name_parameters`), which
/// is what lettre asks of a pre-encoded value.
fn header_value(name: HeaderName, value: &str, parameters: &[String]) -> HeaderValue {
    let mut encoded = value.to_string();
    for p in parameters {
        encoded.push_str(";\r\n ");
        encoded.push_str(p);
    }
    let raw = encoded.replace("\r\n", "");
    HeaderValue::dangerous_new_pre_encoded(name, raw, encoded)
}

/// The longest plain file name we write; longer ones are cut, keeping the
/// extension (lines of a header stay far below the 998 octets allowed).
const MAX_PLAIN_NAME: usize = 150;

/// A line of a parameter in RFC 2231 form stays under 78 characters.
const RFC2231_LINE: usize = 70;

/// The parameters that name a file: for a plain ASCII name `key="name"`;
/// otherwise the RFC 2231 form (`key*=utf-8''…`, continued over several
/// lines when long) and beside it `key="…"` in plain ASCII for the clients
/// that read only that. The RFC 2231 form comes first: parsers that keep
/// the first parameter of a name (mail-parser among them) then get the
/// real name, and those that do not know `key*` skip it.
pub(crate) fn file_name_parameters(key: &str, name: &str) -> Vec<String> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii() && !c.is_ascii_control() && !matches!(c, '"' | '\\'))
        && name.len() <= MAX_PLAIN_NAME;
    if plain {
        return vec![format!("{key}=\"{name}\"")];
    }
    let encoded = percent_encode(name);
    let mut parameters = Vec::new();
    if key.len() + "*=utf-8''".len() + encoded.len() <= RFC2231_LINE {
        parameters.push(format!("{key}*=utf-8''{encoded}"));
    } else {
        // Cut between %XX triplets, never inside one.
        let mut rest = encoded.as_str();
        let mut n = 0;
        while !rest.is_empty() {
            let head = if n == 0 {
                format!("{key}*0*=utf-8''")
            } else {
                format!("{key}*{n}*=")
            };
            let room = RFC2231_LINE.saturating_sub(head.len()).max(3);
            let mut cut = room.min(rest.len());
            while cut < rest.len() && rest[..cut].rfind('%').is_some_and(|p| p + 3 > cut) {
                cut -= 1;
            }
            parameters.push(format!("{head}{}", &rest[..cut]));
            rest = &rest[cut..];
            n += 1;
        }
    }
    parameters.push(format!("{key}=\"{}\"", ascii_fallback(name)));
    parameters
}

/// RFC 2231 `attr-char`s stay, every other byte of the UTF-8 is `%XX`.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A file name in plain ASCII for the clients that read nothing else:
/// letters with accents lose them (å → a, ö → o, é → e, ß → ss), any other
/// character that is not printable ASCII becomes `_`; a long name is cut,
/// its extension kept.
pub(crate) fn ascii_fallback(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ' '..='~' if !matches!(c, '"' | '\\') => out.push(c),
            _ => out.push_str(transliterate(c).unwrap_or("_")),
        }
    }
    if out.len() > MAX_PLAIN_NAME {
        let extension = out
            .rfind('.')
            .map(|i| out[i..].to_string())
            .filter(|e| e.len() <= 10)
            .unwrap_or_default();
        out.truncate(MAX_PLAIN_NAME - extension.len());
        out.push_str(&extension);
    }
    out
}

/// The letter without its accent, for the Latin letters of the languages
/// around us.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'å' | 'ä' | 'à' | 'á' | 'â' | 'ã' | 'ā' | 'ą' => "a",
        'Å' | 'Ä' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ā' | 'Ą' => "A",
        'ö' | 'ø' | 'ò' | 'ó' | 'ô' | 'õ' | 'ō' => "o",
        'Ö' | 'Ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ō' => "O",
        'é' | 'è' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'É' | 'È' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
        'í' | 'ì' | 'î' | 'ï' | 'ī' => "i",
        'Í' | 'Ì' | 'Î' | 'Ï' | 'Ī' => "I",
        'ú' | 'ù' | 'û' | 'ü' | 'ū' | 'ů' => "u",
        'Ú' | 'Ù' | 'Û' | 'Ü' | 'Ū' | 'Ů' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ç' | 'č' | 'ć' => "c",
        'Ç' | 'Č' | 'Ć' => "C",
        'ñ' | 'ń' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'š' | 'ś' => "s",
        'Š' | 'Ś' => "S",
        'ž' | 'ź' | 'ż' => "z",
        'Ž' | 'Ź' | 'Ż' => "Z",
        'ł' => "l",
        'Ł' => "L",
        'đ' | 'ð' => "d",
        'Đ' | 'Ð' => "D",
        'ř' => "r",
        'Ř' => "R",
        'æ' => "ae",
        'Æ' => "AE",
        'œ' => "oe",
        'Œ' => "OE",
        'ß' => "ss",
        'þ' => "th",
        'Þ' => "Th",
        '\u{a0}' | '\u{2009}' | '\u{202f}' => " ",
        '–' | '—' => "-",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_written_once_and_quoted() {
        assert_eq!(
            file_name_parameters("filename", "handbok 2026.pdf"),
            ["filename=\"handbok 2026.pdf\""]
        );
    }

    /// Issue 18: only `filename*0*=` (RFC 2231) was written, and older
    /// Outlook and some Android clients showed "ATT00001".
    #[test]
    fn a_name_that_is_not_ascii_gets_rfc_2231_and_a_plain_fallback() {
        assert_eq!(
            file_name_parameters("filename", "Åsa Öberg.pdf"),
            [
                "filename*=utf-8''%C3%85sa%20%C3%96berg.pdf",
                "filename=\"Asa Oberg.pdf\""
            ]
        );
        assert_eq!(
            file_name_parameters("name", "Handbok för lokal finansiering.pdf"),
            [
                "name*=utf-8''Handbok%20f%C3%B6r%20lokal%20finansiering.pdf",
                "name=\"Handbok for lokal finansiering.pdf\""
            ]
        );
        // Long: continued, never cut inside a %XX, every line short.
        let long =
            "Årsredovisning för föreningen Bygdens ekonomiska förening 2026 – slutversion.pdf";
        let p = file_name_parameters("filename", long);
        assert!(p.len() > 2, "{p:?}");
        assert!(p[0].starts_with("filename*0*=utf-8''%C3%85rsredovisning"));
        assert!(p[1].starts_with("filename*1*="));
        for line in &p[..p.len() - 1] {
            assert!(line.len() < 78, "{line}");
        }
        let joined: String = p[..p.len() - 1]
            .iter()
            .map(|l| l.split_once('=').unwrap().1.trim_start_matches("utf-8''"))
            .collect();
        assert_eq!(joined, percent_encode(long));
        assert_eq!(
            p.last().unwrap(),
            "filename=\"Arsredovisning for foreningen Bygdens ekonomiska forening 2026 - slutversion.pdf\""
        );
    }

    #[test]
    fn the_ascii_fallback_drops_accents_and_replaces_the_rest() {
        assert_eq!(
            ascii_fallback("Ängsö är ökänd é.pdf"),
            "Angso ar okand e.pdf"
        );
        assert_eq!(ascii_fallback("Straße Æbleø.docx"), "Strasse AEbleo.docx");
        assert_eq!(ascii_fallback("東京 \"x\".pdf"), "__ _x_.pdf");
        let long = format!("{}.pdf", "å".repeat(300));
        let cut = ascii_fallback(&long);
        assert_eq!(cut.len(), MAX_PLAIN_NAME);
        assert!(cut.ends_with("a.pdf"));
    }

    #[test]
    fn attachments_other_than_text_go_as_base64() {
        // Bytes that look like ASCII text: lettre chose 7bit for this PDF.
        let pdf = encode_attachment("a.pdf", "application/pdf", b"%PDF-1.4\nhej\n");
        assert_eq!(pdf.body.encoding(), ContentTransferEncoding::Base64);
        let png = encode_attachment("a.png", "image/png", b"PNG");
        assert_eq!(png.body.encoding(), ContentTransferEncoding::Base64);
        let csv = encode_attachment("a.csv", "text/csv; charset=utf-8", b"a;b\n1;2\n");
        assert_ne!(csv.body.encoding(), ContentTransferEncoding::Base64);
        assert_eq!(
            content_type("text/csv; charset=utf-8; x=y"),
            "text/csv; charset=utf-8"
        );
        assert_eq!(content_type("application/pdf; name=x"), "application/pdf");
        assert_eq!(content_type("nonsense"), "application/octet-stream");
    }
}
