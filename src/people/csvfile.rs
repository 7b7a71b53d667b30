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

/// Decodes the file: UTF-8 (a BOM is dropped), else Windows-1252. Takes
/// the bytes, so a big UTF-8 file is not copied.
fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.replace_range(..'\u{feff}'.len_utf8(), "");
            }
            s
        }
        Err(e) => {
            let bytes = e.into_bytes();
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned()
        }
    }
}

/// Splits the text into records of fields, one record at a time; each
/// record keeps the line it started on. Blank lines are no records.
struct Records {
    text: String,
    delimiter: char,
    /// Byte offset of the next record.
    pos: usize,
    /// Line of the next record.
    line: usize,
}

impl Records {
    fn new(text: String, delimiter: char) -> Records {
        Records {
            text,
            delimiter,
            pos: 0,
            line: 1,
        }
    }

    /// The next record, blank or not; `None` at the end.
    fn scan(&mut self) -> Option<(usize, Vec<String>)> {
        let rest = &self.text[self.pos..];
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' if quoted => {
                    if chars.peek().map(|p| p.1) == Some('"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                '"' if field.is_empty() => quoted = true,
                '\n' if quoted => {
                    self.line += 1;
                    field.push('\n');
                }
                '\r' if !quoted => {}
                '\n' => {
                    fields.push(field);
                    self.line += 1;
                    self.pos += i + 1;
                    return Some((start, fields));
                }
                c if c == self.delimiter && !quoted => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        self.pos = self.text.len();
        if !field.is_empty() || !fields.is_empty() {
            fields.push(field);
            return Some((start, fields));
        }
        None
    }

    /// How many records (not blank) are left, without reading them: the
    /// rules of `scan`, with no field kept.
    fn left(&self) -> usize {
        let mut n = 0;
        let mut quoted = false;
        // The field so far is empty; the record so far is not blank.
        let mut empty = true;
        let mut filled = false;
        fn push(c: char, empty: &mut bool, filled: &mut bool) {
            *empty = false;
            *filled |= !c.is_whitespace();
        }
        let mut chars = self.text[self.pos..].chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        push('"', &mut empty, &mut filled);
                    } else {
                        quoted = false;
                    }
                }
                '"' if empty => quoted = true,
                '\n' if quoted => push('\n', &mut empty, &mut filled),
                '\r' if !quoted => {}
                '\n' => {
                    n += usize::from(filled);
                    empty = true;
                    filled = false;
                }
                c if c == self.delimiter && !quoted => {
                    empty = true;
                    filled = true;
                }
                c => push(c, &mut empty, &mut filled),
            }
        }
        n + usize::from(filled)
    }
}

impl Iterator for Records {
    type Item = (usize, Vec<String>);

    fn next(&mut self) -> Option<(usize, Vec<String>)> {
        loop {
            let (line, fields) = self.scan()?;
            if !(fields.len() == 1 && fields[0].trim().is_empty()) {
                return Some((line, fields));
            }
        }
    }
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
    let reader = Reader::open(bytes.to_vec(), ignore)?;
    let mut file = CsvFile {
        columns: reader.columns.clone(),
        ..CsvFile::default()
    };
    for row in reader {
        match row {
            Ok(row) => file.rows.push(row),
            Err(e) => file.errors.push(e),
        }
    }
    Ok(file)
}

/// A file whose header is read, its rows read one at a time (a big file
/// is never held as rows all at once): each is a row or the error that
/// names its line, in the file's order.
pub struct Reader {
    records: Records,
    header: Vec<String>,
    email_col: usize,
    name_col: Option<usize>,
    status_col: Option<usize>,
    /// Which of the header's columns are attributes.
    attribute: Vec<bool>,
    /// The attribute columns (the header less `email`, `name`, the
    /// export's own columns and the ignored ones).
    pub columns: Vec<String>,
    /// The attribute columns as if none were ignored.
    pub all_columns: Vec<String>,
}

impl Reader {
    /// Decodes `bytes` and reads the header, leaving out the columns named
    /// in `ignore` (any case). Fails when the header has no e-mail column,
    /// or when `ignore` names the e-mail or name column.
    pub fn open(bytes: Vec<u8>, ignore: &[String]) -> Result<Reader, String> {
        let text = decode(bytes);
        let delim = delimiter(&text);
        let mut records = Records::new(text, delim);
        let Some((_, header)) = records.next() else {
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
        };
        let all: Vec<bool> = header
            .iter()
            .enumerate()
            .map(|(i, h)| attribute_col(i, h))
            .collect();
        let attribute: Vec<bool> = header
            .iter()
            .zip(&all)
            .map(|(h, a)| *a && !ignored(h))
            .collect();
        let named = |which: &[bool]| -> Vec<String> {
            header
                .iter()
                .zip(which)
                .filter(|(_, a)| **a)
                .map(|(h, _)| h.clone())
                .collect()
        };
        Ok(Reader {
            columns: named(&attribute),
            all_columns: named(&all),
            records,
            header,
            email_col,
            name_col,
            status_col,
            attribute,
        })
    }

    /// Data rows left to read, good or not, counted without reading them
    /// (a pass over the text that keeps nothing).
    pub fn rows_left(&self) -> usize {
        self.records.left()
    }

    /// One record as a row, or why it cannot be one.
    fn row(&self, line: usize, fields: Vec<String>) -> Result<Row, RowError> {
        if fields.len() > self.header.len() {
            return Err(RowError {
                line,
                problem: RowProblem::TooManyFields {
                    got: fields.len(),
                    header: self.header.len(),
                },
            });
        }
        // Each column is one field (email, name, status and the
        // attributes are distinct), so each is moved out, not copied.
        let mut fields = fields;
        let mut get = |i: usize| {
            let mut f = fields.get_mut(i).map(std::mem::take).unwrap_or_default();
            if f.trim().len() != f.len() {
                f = f.trim().to_string();
            }
            f
        };
        let email = get(self.email_col);
        if !crate::address::is_valid(&email) {
            return Err(RowError {
                line,
                problem: RowProblem::NotAnAddress(email),
            });
        }
        let mut attributes = BTreeMap::new();
        for (i, h) in self.header.iter().enumerate() {
            if !self.attribute[i] {
                continue;
            }
            let v = get(i);
            if !v.is_empty() {
                attributes.insert(h.clone(), v);
            }
        }
        Ok(Row {
            line,
            email,
            name: self.name_col.map(&mut get).unwrap_or_default(),
            status: self.status_col.map(&mut get).filter(|s| !s.is_empty()),
            attributes,
        })
    }
}

impl Iterator for Reader {
    type Item = Result<Row, RowError>;

    fn next(&mut self) -> Option<Result<Row, RowError>> {
        let (line, fields) = self.records.next()?;
        Some(self.row(line, fields))
    }
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

    /// The count taken before reading matches what is read, over quotes,
    /// line breaks and blank lines in and out of quotes, blank lines before
    /// the header, a last line without its end and one of blanks only.
    #[test]
    fn rows_left_is_what_the_reader_reads() {
        let files = [
            "email,name\nok@example.se,\"Ek, Eva\"\nnot-an-address,X\n\"multi@example.se\",\"Two\nLines\"\nx@example.se,a,b,c\nlast@example.se,Last",
            "\u{feff}E-post;Namn;organisation;region\r\nasa@example.se;\"Öberg; Åsa\";\"Byalaget \"\"Framtid\"\"\";Jämtland\r\n\r\nbo@example.se;Bo;;\r\n",
            "\n\n  \nemail\n\"\"\n\" \"\n \t \n,\n\"\n\"\na@example.se\n   ",
            "email\n\"\"\"\"\na@example.se\n\"",
            "email,name\n",
        ];
        for file in files {
            let reader = Reader::open(file.as_bytes().to_vec(), &[]).unwrap();
            let counted = reader.rows_left();
            let read = reader.count();
            assert_eq!(counted, read, "{file:?}");
            let whole = read_file(file.as_bytes(), &[]).unwrap();
            assert_eq!(whole.data_rows(), read, "{file:?}");
        }
        let big: String = std::iter::once("email\n".to_string())
            .chain((0..1000).map(|i| format!("p{i}@example.se\n\n")))
            .collect();
        assert_eq!(
            Reader::open(big.into_bytes(), &[]).unwrap().rows_left(),
            1000
        );
    }
}
