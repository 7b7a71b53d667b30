//! The daemon's files that hold secrets: the token secret, DKIM keys and
//! backups are created private (mode 0600) in one place; a backup written,
//! and a data_dir restored from one. Also whether a daemon answers on a
//! data_dir's socket.

use std::fs::File;
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::daemon::config::Config;
use crate::store::Store;

/// What [`create_private`] does with a file already at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Fail (`AlreadyExists`): a key or a secret is never overwritten.
    Refuse,
    /// Empty it and write anew (it keeps the mode it had).
    Replace,
}

/// Creates `path` for writing, readable by its owner only (mode 0600).
pub fn create_private(path: &Path, existing: Existing) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    match existing {
        Existing::Refuse => options.create_new(true),
        Existing::Replace => options.create(true).truncate(true),
    };
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates `path` private (refusing an existing file) and writes `bytes`
/// to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = create_private(path, Existing::Refuse)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Does a daemon answer on `config`'s admin socket?
pub fn daemon_answers(config: &Config) -> bool {
    std::os::unix::net::UnixStream::connect(config.socket_path()).is_ok()
}

/// A consistent snapshot of `store`, with the token `secret`, made `now`,
/// into `path` (private; replaced if it exists). Returns the records
/// written.
pub fn backup(
    store: &Store,
    secret: &[u8],
    now: DateTime<Utc>,
    path: &Path,
) -> anyhow::Result<u64> {
    let file = create_private(path, Existing::Replace)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let n = store.backup(&mut out, secret, now)?;
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .sync_all()?;
    Ok(n)
}

/// Why a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "a daemon is running on this data_dir: stop it, and restore into a new, empty data_dir"
    )]
    DaemonRunning,
    /// The data_dir already has a secret.
    #[error("{} exists: restore only into a new, empty data_dir", .0.display())]
    NotEmpty(PathBuf),
    /// Reading the backup, or creating the data_dir or the secret.
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The backup could not be loaded.
    #[error("{}: {error:#}", .path.display())]
    Backup { path: PathBuf, error: anyhow::Error },
    #[error("{0:#}")]
    Store(anyhow::Error),
}

/// Loads the backup `file` into `config`'s data_dir, which must be new and
/// empty, with no daemon running on it; the secret is written private.
/// Returns the records restored.
pub fn restore(config: &Config, file: &Path) -> Result<u64, RestoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| RestoreError::Io { path, error }
    };
    if daemon_answers(config) {
        return Err(RestoreError::DaemonRunning);
    }
    let input = File::open(file).map_err(io(file))?;
    std::fs::create_dir_all(&config.data_dir).map_err(io(&config.data_dir))?;
    let secret_path = config.secret_path();
    if secret_path.exists() {
        return Err(RestoreError::NotEmpty(secret_path));
    }
    let store = Store::open(&config.store_dir()).map_err(|e| RestoreError::Store(e.into()))?;
    let (secret, n) =
        store
            .restore(BufReader::new(input))
            .map_err(|error| RestoreError::Backup {
                path: file.to_path_buf(),
                error,
            })?;
    write_private(&secret_path, &secret).map_err(io(&secret_path))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[cfg(unix)]
    fn private_files_are_0600_and_refused_or_replaced_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_private(&path, b"one").unwrap();
        assert_eq!(mode(&path), 0o600);
        let again = create_private(&path, Existing::Refuse).unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        create_private(&path, Existing::Replace)
            .unwrap()
            .write_all(b"2")
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"2");
        assert_eq!(mode(&path), 0o600);
    }
}
