//! The hub client's error type. Every variant names the model, file or URL at fault, so an
//! application can print it as one line.

use std::path::PathBuf;

/// What can go wrong while resolving or downloading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file of the cache could not be read or written.
    #[error("cannot read {path}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file exists but its content is not what it should be (e.g. a modules.json that is not JSON).
    #[error("invalid {path}: {reason}")]
    InvalidFile {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A model name that is not `org/name[@revision]` or a known alias.
    #[error("model name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The repository holds something sembed does not load (pickled weights only, sharded weights, ...).
    #[error("unsupported repository: {0}")]
    Unsupported(String),
    /// The model is not (fully) in the Hugging Face cache and downloads are off.
    #[error(
        "{model} is not in the Hugging Face cache ({detail}) and downloads are off (HF_HUB_OFFLINE or --offline): \
         run `sembed models pull {model}` where the hub is reachable"
    )]
    Offline {
        /// The model as named.
        model: String,
        /// What is missing, and where it was looked for.
        detail: String,
    },
    /// The hub answered with an error status (401, 403, 404, ...).
    #[error("{what}: the hub answered HTTP {status}: {hint}")]
    Hub {
        /// The model (and file) asked for.
        what: String,
        /// The HTTP status.
        status: u16,
        /// What to do about it.
        hint: String,
    },
    /// The hub could not be reached, or a download kept failing.
    #[error("cannot download {url}: {reason}")]
    Network {
        /// The URL at fault.
        url: String,
        /// What happened.
        reason: String,
    },
    /// A downloaded file's sha256 differs from the one the hub announced.
    #[error(
        "{file}: downloaded bytes do not match the hub's checksum (sha256 {expected}, got {actual}); \
         the partial download was deleted, try again"
    )]
    Checksum {
        /// The file in the repo.
        file: String,
        /// sha256 the hub announced (its ETag).
        expected: String,
        /// sha256 of what arrived.
        actual: String,
    },
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

    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::InvalidFile {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
