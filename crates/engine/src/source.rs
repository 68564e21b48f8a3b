//! Where a model's files come from: a directory on disk, or the copy compiled into the binary.
//! Everything above this layer reads files by their path relative to the model root.

use std::borrow::Cow;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::weights::{Bytes, SafeTensors};

/// A model's file tree.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Dir(PathBuf),
    #[cfg(feature = "builtin")]
    Builtin,
}

impl Source {
    /// How a file is named in messages: its real path, or `builtin:<file>`.
    pub(crate) fn label(&self, rel: &str) -> PathBuf {
        match self {
            Source::Dir(d) => d.join(rel),
            #[cfg(feature = "builtin")]
            Source::Builtin => PathBuf::from(format!("builtin:{rel}")),
        }
    }

    /// The file's bytes, or `None` when it does not exist.
    pub(crate) fn read(&self, rel: &str) -> Result<Option<Cow<'static, [u8]>>> {
        match self {
            Source::Dir(d) => {
                let p = d.join(rel);
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(Cow::Owned(b))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(p, e)),
                }
            }
            #[cfg(feature = "builtin")]
            Source::Builtin => Ok(crate::builtin::file(rel).map(Cow::Borrowed)),
        }
    }

    /// The file's bytes without copying them, `None` when it does not exist: memory-mapped from disk
    /// (small files are read), borrowed from the binary for the built-in model.
    pub(crate) fn bytes(&self, rel: &str) -> Result<Option<Bytes>> {
        match self {
            Source::Dir(d) => {
                let p = d.join(rel);
                let file = match std::fs::File::open(&p) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(Error::io(p, e)),
                };
                let len = file.metadata().map_err(|e| Error::io(&p, e))?.len();
                if len < 64 * 1024 {
                    let mut buf = Vec::with_capacity(len as usize);
                    std::io::Read::read_to_end(&mut &file, &mut buf)
                        .map_err(|e| Error::io(&p, e))?;
                    return Ok(Some(Bytes::Owned(buf.into())));
                }
                // SAFETY: read-only map; as for the weights, a file truncated by another process
                // while mapped is outside what a loader can defend against.
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&p, e))?;
                Ok(Some(Bytes::Mmap(map)))
            }
            #[cfg(feature = "builtin")]
            Source::Builtin => Ok(crate::builtin::file(rel).map(Bytes::Static)),
        }
    }

    /// Parses a JSON file, `None` when it does not exist.
    pub(crate) fn json<T: DeserializeOwned>(&self, rel: &str) -> Result<Option<T>> {
        let Some(bytes) = self.read(rel)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::invalid(self.label(rel), format!("{e}")))
    }

    /// Like [`json`](Self::json) but the file must exist.
    pub(crate) fn require_json<T: DeserializeOwned>(&self, rel: &str) -> Result<T> {
        self.json(rel)?.ok_or_else(|| self.missing(rel))
    }

    pub(crate) fn missing(&self, rel: &str) -> Error {
        Error::io(
            self.label(rel),
            std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
        )
    }

    /// Opens a safetensors file: memory-mapped from disk, or borrowed from the binary.
    pub(crate) fn safetensors(&self, rel: &str) -> Result<SafeTensors> {
        match self {
            Source::Dir(d) => SafeTensors::open(&d.join(rel)),
            #[cfg(feature = "builtin")]
            Source::Builtin => match crate::builtin::file(rel) {
                Some(bytes) => SafeTensors::from_static(bytes, self.label(rel)),
                None => Err(self.missing(rel)),
            },
        }
    }

    /// A human-readable origin for `info`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Dir(d) => d.display().to_string(),
            #[cfg(feature = "builtin")]
            Source::Builtin => "built-in (compiled into this binary)".to_string(),
        }
    }
}

/// Joins a module sub-directory and a file name the way modules.json paths are meant.
pub(crate) fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{}/{file}", dir.trim_end_matches('/'))
    }
}
