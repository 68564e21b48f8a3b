//! The Hugging Face cache, in the exact layout Python's `huggingface_hub` uses, so that either side
//! finds what the other downloaded:
//!
//! ```text
//! <cache>/models--org--name/
//!     blobs/<etag>                      file contents (etag = sha256 for LFS files, git sha1 otherwise)
//!     refs/<revision>                   the commit a branch or tag pointed to when last resolved
//!     snapshots/<commit>/<file>         relative symlinks into blobs/
//! <cache>/.locks/models--org--name/<etag>.lock
//! ```

use std::path::{Path, PathBuf};

use super::name::{ModelRef, is_commit_hash, repo_folder};
use crate::error::{Error, Result};

/// The cache root and its conventions.
#[derive(Debug, Clone)]
pub struct HfCache {
    root: PathBuf,
}

/// A model found in the cache (see [`HfCache::list`]).
#[derive(Debug, Clone)]
pub struct CachedModel {
    /// `org/name`.
    pub repo_id: String,
    /// Its folder, `models--org--name`.
    pub path: PathBuf,
    /// Bytes of its blobs (what deleting it frees).
    pub size: u64,
    /// `(revision, commit)` for each ref, sorted.
    pub refs: Vec<(String, String)>,
    /// Commits with a snapshot folder.
    pub snapshots: Vec<String>,
}

impl HfCache {
    /// A cache rooted at `root` (the folder holding `models--*`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HfCache { root: root.into() }
    }

    /// The cache Python uses: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
    /// else `~/.cache/huggingface/hub`.
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .unwrap_or_else(|| hf_home().join("hub"));
        HfCache::new(root)
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `models--org--name`.
    pub fn repo_dir(&self, repo_id: &str) -> PathBuf {
        self.root.join(repo_folder(repo_id))
    }

    pub(crate) fn blob_path(&self, repo_id: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo_id).join("blobs").join(etag)
    }

    pub(crate) fn lock_path(&self, repo_id: &str, etag: &str) -> PathBuf {
        self.root
            .join(".locks")
            .join(repo_folder(repo_id))
            .join(format!("{etag}.lock"))
    }

    pub(crate) fn snapshot_dir(&self, repo_id: &str, commit: &str) -> PathBuf {
        self.repo_dir(repo_id).join("snapshots").join(commit)
    }

    /// The commit a model's revision resolves to from the cache alone: the revision itself when it is
    /// a commit hash, else what `refs/<revision>` records.
    pub fn cached_commit(&self, model: &ModelRef) -> Option<String> {
        if model.is_commit() {
            return Some(model.revision.to_ascii_lowercase());
        }
        let p = self
            .repo_dir(&model.repo_id)
            .join("refs")
            .join(&model.revision);
        let commit = std::fs::read_to_string(p).ok()?;
        let commit = commit.trim();
        is_commit_hash(commit).then(|| commit.to_string())
    }

    /// Records that `revision` pointed to `commit` (what Python writes after a download).
    pub(crate) fn write_ref(&self, model: &ModelRef, commit: &str) -> Result<()> {
        if model.is_commit() {
            return Ok(());
        }
        let p = self
            .repo_dir(&model.repo_id)
            .join("refs")
            .join(&model.revision);
        if std::fs::read_to_string(&p).is_ok_and(|c| c.trim() == commit) {
            return Ok(());
        }
        write_atomically(&p, commit.as_bytes())
    }

    /// Links `snapshots/<commit>/<file>` to `blobs/<etag>` with a relative symlink, as Python does.
    pub(crate) fn link(
        &self,
        repo_id: &str,
        commit: &str,
        file: &str,
        etag: &str,
    ) -> Result<PathBuf> {
        let pointer = self.snapshot_dir(repo_id, commit).join(file);
        let parent = pointer.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        // snapshots/<commit>/a/b → ../../../blobs/<etag>: one `..` per folder below the repo folder.
        let depth = 2 + file.matches('/').count();
        let target: PathBuf = std::iter::repeat_n("..", depth)
            .collect::<PathBuf>()
            .join("blobs")
            .join(etag);
        match std::fs::symlink_metadata(&pointer) {
            Ok(_) => std::fs::remove_file(&pointer).map_err(|e| Error::io(&pointer, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&pointer, e)),
        }
        std::os::unix::fs::symlink(&target, &pointer).map_err(|e| Error::io(&pointer, e))?;
        Ok(pointer)
    }

    /// Every model in the cache, sorted by id.
    pub fn list(&self) -> Result<Vec<CachedModel>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("models--") else {
                continue;
            };
            let path = entry.path();
            out.push(CachedModel {
                repo_id: rest.replacen("--", "/", 1),
                size: dir_size(&path.join("blobs")),
                refs: read_refs(&path.join("refs")),
                snapshots: list_names(&path.join("snapshots")),
                path,
            });
        }
        out.sort_by(|a, b| a.repo_id.cmp(&b.repo_id));
        Ok(out)
    }

    /// Deletes a model's folder (all revisions) and its lock files; returns the bytes freed, or `None`
    /// when the model is not cached.
    pub fn remove(&self, repo_id: &str) -> Result<Option<u64>> {
        let dir = self.repo_dir(repo_id);
        if !dir.is_dir() {
            return Ok(None);
        }
        let size = dir_size(&dir.join("blobs"));
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let locks = self.root.join(".locks").join(repo_folder(repo_id));
        let _ = std::fs::remove_dir_all(locks);
        Ok(Some(size))
    }
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` (Python's rule).
pub(crate) fn hf_home() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HF_HOME").unwrap_or_else(|| {
        var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("huggingface")
    })
}

/// Writes through a temporary file and a rename, so readers never see half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| if m.is_dir() { 0 } else { m.len() })
        .sum()
}

fn list_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `refs/` may nest (`refs/pr/1`): walk it.
fn read_refs(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let (Ok(rel), Ok(c)) = (p.strip_prefix(base), std::fs::read_to_string(&p)) {
                out.push((rel.to_string_lossy().into_owned(), c.trim().to_string()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
