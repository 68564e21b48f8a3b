//! The index's error type. Every variant names the file or index at fault and says what to do.

use std::path::PathBuf;

/// What can go wrong while indexing, searching or caching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The index file is not a sembed index, or is damaged.
    #[error("{path}: {reason}; rebuild it (`sembed index --clear`, or `sembed search --rebuild`)")]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The index could not be written (a full disk, a read-only file system, a lock held too long).
    #[error("{path}: {reason}")]
    Database {
        /// The index file.
        path: PathBuf,
        /// SQLite's message.
        reason: String,
    },
    /// A database server refused or failed (PostgreSQL): the URL is shown without its password.
    #[error("{location}: {reason}")]
    Remote {
        /// The database's URL, password replaced by `***`.
        location: String,
        /// The server's or client's message, on one line.
        reason: String,
    },
    /// The engine failed (loading, tokenizing, embedding).
    #[error(transparent)]
    Engine(#[from] sembed::Error),
    /// A caller-supplied value is out of range (a glob, a chunk size, ...).
    #[error("invalid option: {0}")]
    Invalid(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
