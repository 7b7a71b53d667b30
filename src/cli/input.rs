//! Reading what the command line names: the Markdown and attachment files,
//! and a message on stdin. A file that cannot be read is named in the
//! error.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use utskick::admin::{sysexits, Failure};
use utskick::compose::newsletter;
use utskick::daemon::config::Config;

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}

pub fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

pub fn read_attachments(
    config: &Config,
    paths: &[PathBuf],
) -> Result<Vec<utskick::store::Attachment>, Failure> {
    let mut total = 0;
    let mut out = Vec::new();
    for p in paths {
        let a = newsletter::read_attachment(p, total, config.limits.max_attachment_bytes)
            .map_err(crate::cli::words::authoring)?;
        total += a.data.len();
        out.push(a);
    }
    Ok(out)
}

/// A newsletter file with its attachments, and the filters its front
/// matter names.
pub fn read_newsletter(
    config: &Config,
    file: &Path,
    attach: &[PathBuf],
) -> Result<(utskick::store::Content, Vec<(String, String)>), Failure> {
    let text = read_text(file)?;
    let (mut content, filters) = newsletter::parse_newsletter(&file_name(file), &text)
        .map_err(|e| Failure::usage(e.to_string()))?;
    content.attachments = read_attachments(config, attach)?;
    Ok((content, filters))
}

/// The message on stdin, at most one byte over `max` (enough to know it
/// is too big).
pub fn read_stdin(max: usize) -> Result<Vec<u8>, Failure> {
    let mut raw = Vec::new();
    std::io::stdin()
        .take(max as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| {
            Failure::exit(
                sysexits::TEMPFAIL,
                format!("cannot read the message from stdin: {e}"),
            )
        })?;
    Ok(raw)
}
