//! `multipart/form-data` as browsers send it (RFC 7578): the new-campaign
//! form, when it carries attachments. Small and strict: a body that does
//! not parse is refused whole, never half-read.

/// One part: a field, or a file when it has a file name.
pub(super) struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// The boundary of a `multipart/form-data` Content-Type, if it is one.
pub(super) fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A parameter of a Content-Disposition value (`name="x"`).
fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of `body`; None if it is not well formed.
pub(super) fn parse(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delimiter = format!("--{boundary}").into_bytes();
    let next = format!("\r\n--{boundary}").into_bytes();
    let mut at = find(body, &delimiter, 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body.get(at..at + 2)? == b"--" {
            return Some(parts);
        }
        if body.get(at..at + 2)? != b"\r\n" {
            return None;
        }
        let head_end = find(body, b"\r\n\r\n", at + 2)?;
        let head = std::str::from_utf8(&body[at + 2..head_end]).ok()?;
        let disposition = head
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
        let end = find(body, &next, head_end + 4)?;
        parts.push(Part {
            name: param(disposition, "name")?,
            filename: param(disposition, "filename"),
            data: body[head_end + 4..end].to_vec(),
        });
        at = end + next.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browsers_form_with_a_file_is_read_and_a_broken_one_refused() {
        let ct = "multipart/form-data; boundary=----x1";
        let b = boundary(ct).unwrap();
        assert_eq!(b, "----x1");
        let body = b"------x1\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n------x1\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"program.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--x\r\n------x1--\r\n";
        let parts = parse(body, &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data.as_slice()),
            ("csrf", b"abc".as_slice())
        );
        assert_eq!(parts[1].filename.as_deref(), Some("program.pdf"));
        assert_eq!(parts[1].data, b"%PDF\r\n--x");
        assert!(parse(&body[..body.len() - 8], &b).is_none());
        assert!(boundary("application/x-www-form-urlencoded").is_none());
    }
}
