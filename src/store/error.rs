//! What can go wrong in the store, typed so that a caller can decide: a full
//! disk waits for room, a corrupt or too-new record needs a person, I/O may
//! pass. `anyhow` stays at the edges.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk under the data directory is full (ENOSPC or EDQUOT).
    #[error("the disk under the store is full")]
    DiskFull(#[source] io::Error),
    /// A record that does not decode, or a key that does not parse.
    #[error("a corrupt record in the store: {0}")]
    Corrupt(String),
    /// A record written by a newer utskick: refused, not misread.
    #[error("the store holds a record of version {found} written by a newer utskick (this one writes {supported})")]
    TooNew { found: u32, supported: u32 },
    /// Another process holds the store's lock.
    #[error("{0}: the store is in use by another process (is `utskick serve` running with another data_dir or socket?)")]
    Busy(String),
    /// A failed flush poisons sled: only a fresh open recovers.
    #[error("the store failed earlier and must be reopened: {0}")]
    Failed(String),
    #[error("store I/O: {0}")]
    Io(#[source] io::Error),
    /// The directory could not be created or the store not opened.
    #[error("{path}: cannot open the store: {source}")]
    Open {
        path: String,
        #[source]
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// Maps an I/O error, telling a full disk apart.
    pub fn io(e: io::Error) -> StoreError {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::DiskFull(e),
            _ if e.kind() == io::ErrorKind::StorageFull => StoreError::DiskFull(e),
            _ => StoreError::Io(e),
        }
    }

    /// True when the error is a full disk, wherever it came from.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::DiskFull(_))
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        match e {
            sled::Error::Io(io) => StoreError::io(io),
            sled::Error::Corruption { at, .. } => {
                StoreError::Corrupt(format!("sled reports corruption at {at:?}"))
            }
            other => StoreError::Failed(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> StoreError {
        StoreError::Corrupt(e.to_string())
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> StoreError {
        StoreError::io(e)
    }
}

/// The store's own result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
