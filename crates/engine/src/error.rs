//! The library's one error type. Every variant names the file, tensor, text or line at fault, so the
//! CLI can print it as a single line.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or embedding text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read (missing, permissions, ...).
    #[error("cannot read {path}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file exists but its content is not what the model format requires.
    #[error("invalid {path}: {reason}")]
    InvalidFile {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor is missing from the weights or has the wrong shape or dtype.
    #[error("{path}: tensor `{tensor}`: {reason}")]
    Tensor {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor name as stored in the file.
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The model uses something sembed does not implement (an architecture, activation, module, ...).
    #[error("unsupported {what}: {name}")]
    Unsupported {
        /// The kind of thing (e.g. "architecture").
        what: &'static str,
        /// Its name as written in the model's files.
        name: String,
    },
    /// The tokenizer failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A text is longer than the model's limit and truncation is off.
    #[error("input {index} ({preview:?}) is longer than {max} tokens and truncation is off")]
    TooLong {
        /// 0-based position of the text in the input.
        index: usize,
        /// The limit in tokens (specials included).
        max: usize,
        /// The text's first characters.
        preview: String,
    },
    /// Resolving or downloading a model by name failed (feature `hub`).
    #[cfg(feature = "hub")]
    #[error(transparent)]
    Hub(#[from] sembed_hub::Error),
    /// A caller-supplied option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
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
