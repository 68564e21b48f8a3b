//! Where a model's files come from: a directory on disk, the copy compiled into the library, or
//! files handed over in memory. Everything above this layer reads files by their path relative to
//! the model root, and every read is recorded for the model's fingerprint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::bytes::Bytes;
use crate::error::{Error, Result};
use crate::fingerprint::{self, Content, ModelDigest};
use crate::weights::SafeTensors;

/// A model's file tree.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Dir(PathBuf),
    #[cfg(feature = "builtin")]
    Builtin,
    /// Relative path → bytes.
    Memory(Arc<BTreeMap<String, Arc<[u8]>>>),
}

/// A source being read, with the record of what was read.
pub(crate) struct Files {
    pub src: Source,
    pub digest: Arc<ModelDigest>,
}

/// Below this size a file is read into memory rather than mapped.
const MAP_MIN: u64 = 64 * 1024;

impl Files {
    pub(crate) fn new(src: Source, digest_cache: Option<PathBuf>) -> Self {
        Files {
            src,
            digest: Arc::new(ModelDigest::new(digest_cache)),
        }
    }

    /// How a file is named in messages: its real path, `builtin:<file>` or `memory:<file>`.
    pub(crate) fn label(&self, rel: &str) -> PathBuf {
        match &self.src {
            Source::Dir(d) => d.join(rel),
            #[cfg(feature = "builtin")]
            Source::Builtin => PathBuf::from(format!("builtin:{rel}")),
            Source::Memory(_) => PathBuf::from(format!("memory:{rel}")),
        }
    }

    /// Whether these are the built-in model's files.
    pub(crate) fn is_builtin(&self) -> bool {
        #[cfg(feature = "builtin")]
        if matches!(self.src, Source::Builtin) {
            return true;
        }
        false
    }

    /// The file's path on disk, for a model folder.
    pub(crate) fn disk_path(&self, rel: &str) -> Option<PathBuf> {
        match &self.src {
            Source::Dir(d) => Some(d.join(rel)),
            _ => None,
        }
    }

    fn not_found(&self, rel: &str) -> Option<Bytes> {
        self.digest.record(rel, Content::Absent);
        None
    }

    /// The file's bytes without copying them, `None` when it does not exist: memory-mapped from
    /// disk (small files are read), borrowed from the library for the built-in model, shared for
    /// files in memory. Recorded whole: its content is hashed when a fingerprint is asked for.
    pub(crate) fn bytes(&self, rel: &str) -> Result<Option<Arc<Bytes>>> {
        let bytes = match self.raw(rel)? {
            Some(b) => Arc::new(b),
            None => return Ok(None),
        };
        let content = match &self.src {
            #[cfg(feature = "builtin")]
            Source::Builtin => match crate::builtin::sha256(rel) {
                Some(d) => Content::Known(d),
                None => Content::Bytes(bytes.clone()),
            },
            _ => Content::Bytes(bytes.clone()),
        };
        self.digest.record(rel, content);
        Ok(Some(bytes))
    }

    /// A small file's bytes (configs), hashed now; `None` when it does not exist.
    pub(crate) fn read(&self, rel: &str) -> Result<Option<Bytes>> {
        let Some(bytes) = self.raw(rel)? else {
            return Ok(None);
        };
        let content = match &self.src {
            #[cfg(feature = "builtin")]
            Source::Builtin => match crate::builtin::sha256(rel) {
                Some(d) => Content::Known(d),
                None => fingerprint::digest(&bytes),
            },
            _ => fingerprint::digest(&bytes),
        };
        self.digest.record(rel, content);
        Ok(Some(bytes))
    }

    fn raw(&self, rel: &str) -> Result<Option<Bytes>> {
        match &self.src {
            Source::Dir(d) => {
                let p = d.join(rel);
                let file = match std::fs::File::open(&p) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(self.not_found(rel));
                    }
                    Err(e) => return Err(Error::io(p, e)),
                };
                let meta = file.metadata().map_err(|e| Error::io(&p, e))?;
                if meta.is_dir() {
                    return Err(Error::invalid(p, "is a directory, expected a file"));
                }
                if meta.len() < MAP_MIN {
                    let mut buf = Vec::with_capacity(meta.len() as usize);
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
            Source::Builtin => Ok(match crate::builtin::file(rel) {
                Some(b) => Some(Bytes::Static(b)),
                None => self.not_found(rel),
            }),
            Source::Memory(files) => Ok(match files.get(rel) {
                Some(b) => Some(Bytes::Shared(b.clone())),
                None => self.not_found(rel),
            }),
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

    /// Opens a safetensors file: memory-mapped from disk, borrowed from the library, or shared.
    pub(crate) fn safetensors(&self, rel: &str) -> Result<SafeTensors> {
        match &self.src {
            Source::Dir(d) => {
                let path = d.join(rel);
                let st = match SafeTensors::open(&path) {
                    Err(e @ Error::Io { .. }) => {
                        if let Error::Io { source, .. } = &e
                            && source.kind() == std::io::ErrorKind::NotFound
                        {
                            self.digest.record(rel, Content::Absent);
                        }
                        return Err(e);
                    }
                    other => other?,
                };
                if let Some(file) = st.file() {
                    self.digest
                        .record(rel, fingerprint::weights_file(&path, file));
                }
                Ok(st)
            }
            _ => match self.bytes(rel)? {
                Some(bytes) => SafeTensors::from_shared(bytes, self.label(rel)),
                None => Err(self.missing(rel)),
            },
        }
    }

    /// A human-readable origin for `info`.
    pub(crate) fn describe(&self) -> String {
        match &self.src {
            Source::Dir(d) => d.display().to_string(),
            #[cfg(feature = "builtin")]
            Source::Builtin => "built-in (compiled into this binary)".to_string(),
            Source::Memory(files) => format!("memory ({} files)", files.len()),
        }
    }
}

/// Joins a module sub-directory and a file name the way modules.json paths are meant.
pub(crate) fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() || dir == "." {
        file.to_string()
    } else {
        format!("{}/{file}", dir.trim_end_matches('/'))
    }
}
