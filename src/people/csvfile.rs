//! Reading subscriber CSV files as people make them: UTF-8 with or without a
//! byte-order mark, or Excel's Windows-1252; comma, semicolon (Excel in
//! Swedish) or tab separated; RFC 4180 quoting with `""` and line breaks
//! inside quotes. Pure: bytes in, rows and row errors out.

use std::collections::BTreeMap;

/// Columns the export writes that an import reads but does not store
/// (so `subscribers --format csv` imports back unchanged).
pub const EXPORT_ONLY: &[&str] = &["status", "bounces", "subscribed_at", "bounce_score"];

/// One data row, with its line number in the file (1 is the header).
/// Also what the CLI sends the daemon, so it is serde.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub line: usize,
    pub email: String,
    pub name: String,
    /// `status` from an export, when present.
    pub status: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

/// A row that could not be read, by line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub problem: RowProblem,
}

/// Why a row could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    #[error("{got} fields where the header has {header}")]
    TooManyFields { got: usize, header: usize },
    #[error("{0:?} is not an e-mail address")]
    NotAnAddress(String),
}

/// A file read: its attribute columns (the header less `email`, `name`,
/// the export's own columns and the ignored ones), its rows, and the rows
/// that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvFile {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub errors: Vec<RowError>,
}

impl CsvFile {
    /// Data rows in the file, read or not.
    pub fn data_rows(&self) -> usize {
        self.rows.len() + self.errors.len()
    }
}

/// Decodes the file: UTF-8 (a BOM is dropped), else Windows-1252.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

/// Splits into records of fields; each record keeps the line it started on.
fn records(text: &str, delimiter: char) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if field.is_empty() => quoted = true,
            '\n' if quoted => {
                line += 1;
                field.push('\n');
            }
            '\r' if !quoted => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                out.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
            }
            c if c == delimiter && !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        out.push((start, fields));
    }
    // Blank lines are no rows.
    out.retain(|(_, f)| !(f.len() == 1 && f[0].trim().is_empty()));
    out
}

/// The delimiter the header line uses most, outside quotes.
fn delimiter(text: &str) -> char {
    let header = text.lines().next().unwrap_or_default();
    [';', ',', '\t']
        .into_iter()
        .max_by_key(|d| header.matches(*d).count())
        .filter(|d| header.contains(*d))
        .unwrap_or(',')
}

fn column_kind(name: &str) -> &'static str {
    match name.trim().to_lowercase().as_str() {
        "email" | "e-mail" | "e-post" | "epost" | "e-postadress" | "mail" => "email",
        "name" | "namn" => "name",
        "status" => "status",
        _ => "",
    }
}

/// Reads a whole file. Rows that cannot be used come back as errors with
/// their line numbers; the rest are returned. Fails only when the header
/// has no e-mail column.
pub fn read(bytes: &[u8]) -> Result<(Vec<Row>, Vec<RowError>), String> {
    read_file(bytes, &[]).map(|f| (f.rows, f.errors))
}

/// Reads a whole file, leaving out the columns named in `ignore` (any
/// case). Fails when the header has no e-mail column, or when `ignore`
/// names the e-mail or name column.
pub fn read_file(bytes: &[u8], ignore: &[String]) -> Result<CsvFile, String> {
    let text = decode(bytes);
    let delim = delimiter(&text);
    let mut recs = records(&text, delim).into_iter();
    let Some((_, header)) = recs.next() else {
        return Err("the file is empty".into());
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let email_col = header
        .iter()
        .position(|h| column_kind(h) == "email")
        .ok_or_else(|| format!("no `email` column in the header ({})", header.join(", ")))?;
    let name_col = header.iter().position(|h| column_kind(h) == "name");
    let status_col = header.iter().position(|h| column_kind(h) == "status");
    let ignored = |h: &str| ignore.iter().any(|i| i.trim().eq_ignore_ascii_case(h));
    if let Some(h) = header
        .iter()
        .enumerate()
        .find(|(i, h)| ignored(h) && (*i == email_col || Some(*i) == name_col))
        .map(|(_, h)| h)
    {
        return Err(format!("the column {h} cannot be left out"));
    }
    let attribute_col = |i: usize, h: &str| {
        i != email_col
            && Some(i) != name_col
            && !EXPORT_ONLY.contains(&h.to_lowercase().as_str())
            && !h.is_empty()
            && !ignored(h)
    };
    let columns: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|(i, h)| attribute_col(*i, h))
        .map(|(_, h)| h.clone())
        .collect();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (line, fields) in recs {
        if fields.len() > header.len() {
            errors.push(RowError {
                line,
                problem: RowProblem::TooManyFields {
                    got: fields.len(),
                    header: header.len(),
                },
            });
            continue;
        }
        let get = |i: usize| {
            fields
                .get(i)
                .map(|f| f.trim().to_string())
                .unwrap_or_default()
        };
        let email = get(email_col);
        if !crate::address::is_valid(&email) {
            errors.push(RowError {
                line,
                problem: RowProblem::NotAnAddress(email),
            });
            continue;
        }
        let mut attributes = BTreeMap::new();
        for (i, h) in header.iter().enumerate() {
            if !attribute_col(i, h) {
                continue;
            }
            let v = get(i);
            if !v.is_empty() {
                attributes.insert(h.clone(), v);
            }
        }
        rows.push(Row {
            line,
            email,
            name: name_col.map(get).unwrap_or_default(),
            status: status_col.map(get).filter(|s| !s.is_empty()),
            attributes,
        });
    }
    Ok(CsvFile {
        columns,
        rows,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_swedish_export_with_bom_semicolons_and_quotes() {
        let file = "\u{feff}E-post;Namn;organisation;region\r\nasa@example.se;\"Öberg; Åsa\";\"Byalaget \"\"Framtid\"\"\";Jämtland\r\n\r\nbo@example.se;Bo;;\r\n";
        let (rows, errors) = read(file.as_bytes()).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].email, "asa@example.se");
        assert_eq!(rows[0].name, "Öberg; Åsa");
        assert_eq!(rows[0].attributes["organisation"], "Byalaget \"Framtid\"");
        assert_eq!(rows[0].attributes["region"], "Jämtland");
        assert_eq!(rows[1].line, 4);
        assert!(rows[1].attributes.is_empty());
    }

    #[test]
    fn commas_quoted_commas_line_breaks_and_bad_rows() {
        let file = "email,name\nok@example.se,\"Ek, Eva\"\nnot-an-address,X\n\"multi@example.se\",\"Two\nLines\"\nx@example.se,a,b,c\nlast@example.se,Last";
        let (rows, errors) = read(file.as_bytes()).unwrap();
        let emails: Vec<_> = rows.iter().map(|r| r.email.as_str()).collect();
        assert_eq!(
            emails,
            ["ok@example.se", "multi@example.se", "last@example.se"]
        );
        assert_eq!(rows[0].name, "Ek, Eva");
        assert_eq!(rows[1].name, "Two\nLines");
        assert_eq!(rows[2].line, 7);
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 6]);
    }

    #[test]
    fn windows_1252_is_read() {
        let mut file = b"email;name\nf@example.se;".to_vec();
        file.extend_from_slice(&[0xC5, b's', b'a']); // "Åsa" in Windows-1252
        let (rows, _) = read(&file).unwrap();
        assert_eq!(rows[0].name, "Åsa");
    }

    #[test]
    fn the_export_format_reads_back() {
        let file = "email,name,status,bounces,subscribed_at,region\na@example.se,A,confirmed,0,2026-01-01T00:00:00+00:00,Skåne\n";
        let (rows, _) = read(file.as_bytes()).unwrap();
        assert_eq!(rows[0].status.as_deref(), Some("confirmed"));
        assert_eq!(rows[0].attributes.keys().collect::<Vec<_>>(), ["region"]);
        assert!(read(b"name\nx").is_err(), "no email column");
    }

    #[test]
    fn the_attribute_columns_are_named_and_an_ignored_one_left_out() {
        let file =
            "email,name,status,organisation,Region\na@example.se,A,confirmed,Byalaget,Skåne\n";
        let f = read_file(file.as_bytes(), &[]).unwrap();
        assert_eq!(f.columns, ["organisation", "Region"]);
        let f = read_file(file.as_bytes(), &["region".into()]).unwrap();
        assert_eq!(f.columns, ["organisation"]);
        assert_eq!(
            f.rows[0].attributes.keys().collect::<Vec<_>>(),
            ["organisation"]
        );
        assert_eq!(f.data_rows(), 1);
        let e = read_file(file.as_bytes(), &["email".into()]).unwrap_err();
        assert_eq!(e, "the column email cannot be left out");
    }
}
