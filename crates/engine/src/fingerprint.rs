//! A stable identifier of what determines a model's vectors, for caches and indexes that must
//! never mix vectors of different models or options.
//!
//! A model's fingerprint is the sha256 of a versioned description listing every file the loader
//! looked at (by its path relative to the model root; absent files count too) with the sha256 of
//! its content, plus [`VECTORS_VERSION`]. So it is the same for the same files wherever they are
//! (another folder, another machine, the Hugging Face cache or a copy of it), and changes with any
//! byte of any config, tokenizer or weights file. The weights' sha256 costs nothing for models in
//! the Hugging Face cache (the blob is named by it) and for the built-in model (recorded at build
//! time); for other folders it is computed on first use (about 50 ms for a 90 MB file here) and, if
//! [`LoadOptions::digest_cache`](crate::LoadOptions::digest_cache) names a folder, remembered there
//! keyed by the file's device, inode, size and modification time.
//!
//! Not part of it, on purpose: the CPU's instruction set, the thread count, the batch and the
//! weights' layout (as stored, packed, prepared), which leave the bits of a vector unchanged on
//! x86-64 with AVX2 or AVX-512 (the portable fallback agrees to within 1e-5) — a fingerprint must
//! match across machines. [`Embedder::fingerprint`](crate::Embedder::fingerprint) adds the options that do
//! change vectors (prompt, truncation length, normalization, truncate-dim); callers add their own
//! stages with [`Fingerprint::derive`] (output precision, a chunker version, ...).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::bytes::Bytes;
use crate::error::{Error, Result};

/// Bumped whenever a change to sembed alters the bits of the vectors it computes from the same
/// files (a fix to pooling, another summation order), so caches and indexes filled by older
/// versions are not reused: a cached vector is the bits an uncached run gives. 2: the single panel
/// kernel (vectors no longer depend on their batch).
pub const VECTORS_VERSION: u32 = 2;

/// A 256-bit fingerprint, shown as 64 hex digits.
///
/// ```
/// let a = sembed::Fingerprint::of("some text");
/// assert_eq!(a, sembed::Fingerprint::of("some text"));
/// assert_ne!(a.derive("precision", "int8"), a);
/// assert_eq!(a.to_string().len(), 64);
/// assert_eq!(a.to_string().parse::<sembed::Fingerprint>().unwrap(), a);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of arbitrary text (sha256).
    pub fn of(text: &str) -> Fingerprint {
        Fingerprint(Sha256::digest(text.as_bytes()).into())
    }

    /// A fingerprint for this one plus a further stage: `label` = `value` (e.g. `"precision"`,
    /// `"int8"`). Different labels or values give different fingerprints.
    pub fn derive(&self, label: &str, value: &str) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(b"sembed-derive\0");
        h.update(self.0);
        for part in [label, value] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        Fingerprint(h.finalize().into())
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidOption(format!("{s:?} is not a fingerprint (64 hex digits)"));
        if s.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(Fingerprint(out))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    s.parse::<Fingerprint>().ok().map(|f| f.0)
}

/// What the loader saw of one file.
pub(crate) enum Content {
    /// Not there (it would have changed the model had it been).
    Absent,
    /// sha256 already known: hashed at load (small files), the built-in model's recorded digest,
    /// or the name of a Hugging Face cache blob.
    Known([u8; 32]),
    /// Bytes kept by the model anyway (tokenizer.json, a model loaded from memory): hashed on
    /// first use.
    Bytes(Arc<Bytes>),
    /// A weights file on disk, open (the same file the model maps, whatever happens to the path
    /// later): hashed on first use.
    File { path: PathBuf, file: std::fs::File },
}

/// The files a model was loaded from, and its fingerprint once computed.
pub(crate) struct ModelDigest {
    files: Mutex<Vec<(String, Content)>>,
    digest_cache: Option<PathBuf>,
    value: OnceLock<Fingerprint>,
}

impl std::fmt::Debug for ModelDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModelDigest({:?})", self.value.get())
    }
}

impl ModelDigest {
    pub(crate) fn new(digest_cache: Option<PathBuf>) -> Self {
        ModelDigest {
            files: Mutex::new(Vec::new()),
            digest_cache,
            value: OnceLock::new(),
        }
    }

    /// Records that the loader read (or looked for) `rel`.
    pub(crate) fn record(&self, rel: &str, content: Content) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = files.iter_mut().find(|(r, _)| r == rel) {
            slot.1 = content;
        } else {
            files.push((rel.to_string(), content));
        }
    }

    /// The sha256 of the file `rel` (hashing it now, through the digest cache, if not known
    /// yet); `None` if it was absent or not recorded.
    pub(crate) fn sha256(&self, rel: &str) -> Result<Option<[u8; 32]>> {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let Some((_, content)) = files.iter_mut().find(|(r, _)| r == rel) else {
            return Ok(None);
        };
        let d = match content {
            Content::Absent => return Ok(None),
            Content::Known(d) => *d,
            Content::Bytes(b) => Sha256::digest(&***b).into(),
            Content::File { path, file } => file_digest(path, file, self.digest_cache.as_deref())?,
        };
        *content = Content::Known(d);
        Ok(Some(d))
    }

    /// Like [`sha256`](Self::sha256) for a file the loader keeps the bytes of (`rel`, on disk at
    /// `path`, `None` when it is not from disk): through the digest cache when there is one, so
    /// a later load of the same file does not hash it again (hashing tokenizer.json costs more
    /// than scanning it on a CPU without SHA instructions).
    pub(crate) fn sha256_via_cache(
        &self,
        rel: &str,
        path: Option<&Path>,
    ) -> Result<Option<[u8; 32]>> {
        let cached = {
            let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            match files.iter().find(|(r, _)| r == rel) {
                None | Some((_, Content::Absent)) => return Ok(None),
                Some((_, Content::Known(d))) => return Ok(Some(*d)),
                Some(_) => self.digest_cache.is_some(),
            }
        };
        let (true, Some(path)) = (cached, path) else {
            return self.sha256(rel);
        };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let d = file_digest(path, &file, self.digest_cache.as_deref())?;
        self.record(rel, Content::Known(d));
        Ok(Some(d))
    }

    /// The model's fingerprint (computed once; an I/O error is returned, not remembered).
    pub(crate) fn fingerprint(&self) -> Result<Fingerprint> {
        if let Some(f) = self.value.get() {
            return Ok(*f);
        }
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut h = Sha256::new();
        h.update(format!("sembed-model-fingerprint\0vectors {VECTORS_VERSION}\0").as_bytes());
        for (rel, content) in files.iter_mut() {
            let digest = match content {
                Content::Absent => None,
                Content::Known(d) => Some(*d),
                Content::Bytes(b) => {
                    let d: [u8; 32] = Sha256::digest(&***b).into();
                    *content = Content::Known(d);
                    Some(d)
                }
                Content::File { path, file } => {
                    let d = file_digest(path, file, self.digest_cache.as_deref())?;
                    *content = Content::Known(d);
                    Some(d)
                }
            };
            h.update((rel.len() as u64).to_le_bytes());
            h.update(rel.as_bytes());
            match digest {
                Some(d) => {
                    h.update(b"\x01");
                    h.update(d);
                }
                None => h.update(b"\x00"),
            }
        }
        let f = Fingerprint(h.finalize().into());
        let _ = self.value.set(f);
        Ok(f)
    }
}

/// sha256 of small bytes (configs), at load.
pub(crate) fn digest(bytes: &[u8]) -> Content {
    Content::Known(Sha256::digest(bytes).into())
}

/// What is known of a weights file on disk: its sha256 for free when it is a Hugging Face cache
/// blob (named by its sha256: the hub's ETag of an LFS file), else the open file to hash later.
pub(crate) fn weights_file(path: &Path, file: &std::fs::File) -> Content {
    if let Ok(target) = std::fs::read_link(path)
        && let Some(name) = target.file_name().and_then(|n| n.to_str())
        && target
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "blobs")
        && let Some(d) = unhex32(name)
    {
        return Content::Known(d);
    }
    match file.try_clone() {
        Ok(file) => Content::File {
            path: path.to_path_buf(),
            file,
        },
        // Out of file descriptors: hash by path when asked.
        Err(_) => match std::fs::File::open(path) {
            Ok(file) => Content::File {
                path: path.to_path_buf(),
                file,
            },
            Err(_) => Content::Absent,
        },
    }
}

/// sha256 of an open file, through the digest cache when there is one.
fn file_digest(path: &Path, file: &std::fs::File, cache: Option<&Path>) -> Result<[u8; 32]> {
    let key = cache.and_then(|dir| stat_key(file).map(|k| dir.join(k)));
    if let Some(entry) = &key
        && let Ok(text) = std::fs::read_to_string(entry)
        && let Some(d) = unhex32(text.trim())
    {
        return Ok(d);
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = read_at(file, &mut buf, at).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    let d: [u8; 32] = h.finalize().into();
    if let Some(entry) = key {
        // Best effort: a cache that cannot be written only costs the hash next time.
        if let Some(dir) = entry.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut tmp = entry.clone().into_os_string();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        if std::fs::write(&tmp, hex(&d)).is_ok() && std::fs::rename(&tmp, &entry).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(d)
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

#[cfg(not(unix))]
fn read_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    use std::io::{Read, Seek};
    let mut f = file;
    f.seek(std::io::SeekFrom::Start(at))?;
    f.read(buf)
}

/// A cache key naming the file's identity and version: device, inode, size, modification and
/// change times (the change time moves with every write and with `cp -p`, and cannot be set back).
/// `None` where the platform has no inodes: no cache there.
fn stat_key(file: &std::fs::File) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata().ok()?;
        Some(format!(
            "{:x}-{:x}-{:x}-{}.{:09}-{}.{:09}",
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_digest_is_its_sha256_and_the_cache_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.bin");
        std::fs::write(&p, b"weights").unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let want: [u8; 32] = Sha256::digest(b"weights").into();
        let cache = dir.path().join("digests");
        assert_eq!(file_digest(&p, &f, Some(&cache)).unwrap(), want);
        let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
        assert_eq!(entries.len(), 1);
        // A cache entry is trusted as long as the file's identity is unchanged: plant a fake one
        // and see it returned (so the cache is really consulted) ...
        let entry = entries[0].as_ref().unwrap().path();
        std::fs::write(&entry, hex(&[7u8; 32])).unwrap();
        assert_eq!(file_digest(&p, &f, Some(&cache)).unwrap(), [7u8; 32]);
        // ... but not without a cache ...
        assert_eq!(file_digest(&p, &f, None).unwrap(), want);
        // ... nor once the file was written, even to the same size and modification time.
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        std::fs::write(&p, b"WEIGHTS").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let changed: [u8; 32] = Sha256::digest(b"WEIGHTS").into();
        assert_eq!(file_digest(&p, &f, Some(&cache)).unwrap(), changed);
    }

    #[test]
    fn a_cache_blob_is_known_by_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let sha = hex(&Sha256::digest(b"w"));
        std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
        std::fs::create_dir_all(dir.path().join("snap")).unwrap();
        std::fs::write(dir.path().join("blobs").join(&sha), b"w").unwrap();
        let link = dir.path().join("snap/model.safetensors");
        std::os::unix::fs::symlink(format!("../blobs/{sha}"), &link).unwrap();
        let f = std::fs::File::open(&link).unwrap();
        assert!(matches!(weights_file(&link, &f), Content::Known(d) if hex(&d) == sha));
        let plain = dir.path().join("blobs").join(&sha);
        assert!(matches!(weights_file(&plain, &f), Content::File { .. }));
    }

    #[test]
    fn order_of_recording_does_not_matter_and_absence_counts() {
        let a = ModelDigest::new(None);
        a.record("x.json", digest(b"1"));
        a.record("y.json", Content::Absent);
        let b = ModelDigest::new(None);
        b.record("y.json", Content::Absent);
        b.record("x.json", digest(b"1"));
        assert_eq!(a.fingerprint().unwrap(), b.fingerprint().unwrap());
        let c = ModelDigest::new(None);
        c.record("x.json", digest(b"1"));
        assert_ne!(a.fingerprint().unwrap(), c.fingerprint().unwrap());
    }
}
