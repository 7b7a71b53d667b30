//! An error in what the leader wrote, shown as one line with the file and
//! line: "december.md:12: unknown field `nmae`".

/// An authoring error: shown to the leader at queue time, one line:
/// "december.md:12: unknown field `nmae`".
///
/// `Display` and `Error` are written out: thiserror would take a field
/// named `source` for the underlying error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoringError {
    pub source: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for AuthoringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.source, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

impl std::error::Error for AuthoringError {}

impl AuthoringError {
    pub(crate) fn new(
        source: &str,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> AuthoringError {
        AuthoringError {
            source: source.to_string(),
            line,
            message: message.into(),
        }
    }
}
