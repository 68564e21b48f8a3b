//! Which files a search looks at, found as ripgrep finds them (the `ignore` crate: `.gitignore`,
//! `.ignore`, hidden files skipped, `-g` globs), and read with every reason to skip one counted:
//! binary, too large, not a regular file, unreadable, changed while being read, a symlink loop.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How the walk goes.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Look in hidden files and directories too.
    pub hidden: bool,
    /// Do not honour `.gitignore`, `.ignore` and the like.
    pub no_ignore: bool,
    /// Globs (`-g`): a file must match one (a leading `!` excludes instead), as in ripgrep.
    pub globs: Vec<String>,
    /// Files larger than this are skipped (and counted).
    pub max_filesize: u64,
    /// Follow symbolic links (a loop is then skipped with a warning).
    pub follow: bool,
    /// Absolute paths never looked at, nor anything whose path starts with one (an index adds its
    /// own database file, so `-wal`, `-shm` and scan files beside it are left alone too).
    pub exclude: Vec<PathBuf>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            hidden: false,
            no_ignore: false,
            globs: Vec::new(),
            max_filesize: 4 << 20,
            follow: false,
            exclude: Vec::new(),
        }
    }
}

/// A file's identity and version, for the "unchanged since last time" fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Inode number (0 where there is none).
    pub inode: u64,
    /// Device (0 where there is none).
    pub dev: u64,
}

impl Stamp {
    pub(crate) fn of(m: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Stamp {
                size: m.len(),
                mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                inode: m.ino(),
                dev: m.dev(),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime_ns = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i64);
            Stamp {
                size: m.len(),
                mtime_ns,
                inode: 0,
                dev: 0,
            }
        }
    }
}

/// A file the walk found.
#[derive(Debug, Clone)]
pub struct Found {
    /// As shown: the root as given on the command line joined with the relative path.
    pub display: PathBuf,
    /// Absolute, for the index (the root canonicalized, joined with the relative path).
    pub abs: PathBuf,
    /// As the walk saw it.
    pub stamp: Stamp,
}

/// What was skipped, and why (each also reported as a warning, but binary and large files, which
/// are expected).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Holding a NUL byte.
    pub binary: usize,
    /// Over the size limit.
    pub too_large: usize,
    /// FIFOs, sockets, devices.
    pub not_regular: usize,
    /// Could not be opened or read (permissions, I/O errors, vanished).
    pub unreadable: usize,
    /// Changed while being read.
    pub changed: usize,
    /// Symbolic link loops (with `follow`).
    pub loops: usize,
}

impl Skipped {
    /// All of them.
    pub fn total(&self) -> usize {
        self.binary
            + self.too_large
            + self.not_regular
            + self.unreadable
            + self.changed
            + self.loops
    }
}

/// Where one root is: as given, and canonical.
struct Root {
    given: PathBuf,
    canonical: PathBuf,
}

/// Walks `roots` (files or directories), calling `found` for every regular file that passes the
/// rules and `warn` for each problem (a file that cannot be looked at is skipped, never fatal).
/// Files too large are counted in `skipped` here; binary or changing files are found when read.
pub fn walk(
    roots: &[PathBuf],
    opts: &WalkOptions,
    skipped: &mut Skipped,
    found: &mut dyn FnMut(Found),
    warn: &mut dyn FnMut(String),
) -> Result<()> {
    let excluded: Vec<Vec<u8>> = opts
        .exclude
        .iter()
        .map(|p| crate::store::path_key(p))
        .collect();
    for given in roots {
        let canonical = std::fs::canonicalize(given).map_err(|e| Error::io(given, e))?;
        let root = Root {
            given: given.clone(),
            canonical,
        };
        let mut b = ignore::WalkBuilder::new(given);
        b.hidden(!opts.hidden)
            .ignore(!opts.no_ignore)
            .git_ignore(!opts.no_ignore)
            .git_global(!opts.no_ignore)
            .git_exclude(!opts.no_ignore)
            .parents(!opts.no_ignore)
            .require_git(false)
            .follow_links(opts.follow);
        if !opts.globs.is_empty() {
            let mut o = ignore::overrides::OverrideBuilder::new(given);
            for g in &opts.globs {
                o.add(g)
                    .map_err(|e| Error::Invalid(format!("glob {g:?}: {e}")))?;
            }
            b.overrides(
                o.build()
                    .map_err(|e| Error::Invalid(format!("globs: {e}")))?,
            );
        }
        // Walked by as many threads as there are cores (stat calls dominate a warm search), the
        // outcomes then put in path order so that warnings and results come out the same each time.
        let outcomes: std::sync::Mutex<Vec<(PathBuf, Outcome)>> = Default::default();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        b.threads(threads).build_parallel().run(|| {
            Box::new(|entry| {
                if let Some(o) = classify(entry, opts, &root, &excluded) {
                    outcomes.lock().unwrap_or_else(|p| p.into_inner()).push(o);
                }
                ignore::WalkState::Continue
            })
        });
        let mut outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
        outcomes.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, o) in outcomes {
            match o {
                Outcome::Found(f) => found(f),
                Outcome::TooLarge => skipped.too_large += 1,
                Outcome::Loop(m) => {
                    skipped.loops += 1;
                    warn(m);
                }
                Outcome::Unreadable(m) => {
                    skipped.unreadable += 1;
                    warn(m);
                }
                Outcome::NotRegular(m) => {
                    skipped.not_regular += 1;
                    warn(m);
                }
            }
        }
    }
    Ok(())
}

/// What the walk made of one entry.
enum Outcome {
    Found(Found),
    TooLarge,
    Loop(String),
    Unreadable(String),
    NotRegular(String),
}

/// One entry of the walk: a file found, a reason to skip it, or nothing (a folder, a link).
fn classify(
    entry: std::result::Result<ignore::DirEntry, ignore::Error>,
    opts: &WalkOptions,
    root: &Root,
    excluded: &[Vec<u8>],
) -> Option<(PathBuf, Outcome)> {
    let entry = match entry {
        Ok(e) => e,
        Err(e) => {
            let at = error_path(&e).unwrap_or_default();
            return Some(if is_loop(&e) {
                (at, Outcome::Loop(format!("{}: skipped", loop_message(&e))))
            } else {
                (at, Outcome::Unreadable(format!("skipped: {e}")))
            });
        }
    };
    let ft = entry.file_type()?;
    // Not followed: a symbolic link is not a file of the tree (as ripgrep does).
    if ft.is_dir() || ft.is_symlink() {
        return None;
    }
    let path = entry.path().to_path_buf();
    let meta = match entry.metadata() {
        Ok(m) => m,
        Err(e) => {
            let m = format!("{}: skipped: {e}", path.display());
            return Some((path, Outcome::Unreadable(m)));
        }
    };
    if !meta.is_file() {
        let m = format!(
            "{}: skipped: not a regular file (a FIFO, socket or device)",
            path.display()
        );
        return Some((path, Outcome::NotRegular(m)));
    }
    let abs = root.absolute(&path);
    if !excluded.is_empty() {
        let k = crate::store::path_key(&abs);
        if excluded.iter().any(|e| k.starts_with(e)) {
            return None;
        }
    }
    if meta.len() > opts.max_filesize {
        return Some((path, Outcome::TooLarge));
    }
    let found = Found {
        display: path.clone(),
        abs,
        stamp: Stamp::of(&meta),
    };
    Some((path, Outcome::Found(found)))
}

/// The path an error of the walk is about, if it says.
fn error_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

impl Root {
    /// `path` (under the root as given) made absolute through the canonical root.
    fn absolute(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.given) {
            Ok(rel) if rel.as_os_str().is_empty() => self.canonical.clone(),
            Ok(rel) => self.canonical.join(rel),
            Err(_) => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        }
    }
}

fn is_loop(e: &ignore::Error) -> bool {
    match e {
        ignore::Error::Loop { .. } => true,
        ignore::Error::WithPath { err, .. } | ignore::Error::WithDepth { err, .. } => is_loop(err),
        ignore::Error::WithLineNumber { err, .. } => is_loop(err),
        ignore::Error::Partial(errs) => errs.iter().any(is_loop),
        _ => false,
    }
}

fn loop_message(e: &ignore::Error) -> String {
    match e {
        ignore::Error::Loop { ancestor, child } => format!(
            "{}: symbolic link loop (back to {})",
            child.display(),
            ancestor.display()
        ),
        ignore::Error::WithPath { err, .. } | ignore::Error::WithDepth { err, .. } => {
            loop_message(err)
        }
        other => other.to_string(),
    }
}

/// What reading a found file gave.
#[derive(Debug)]
pub enum Read {
    /// Its text (invalid UTF-8 replaced) and its stamp at that moment.
    Text(String, Stamp),
    /// A NUL byte: not text (counted, not warned about); its stamp.
    Binary(Stamp),
    /// Grown past the size limit since the walk (counted).
    TooLarge,
    /// Unreadable, or changed while being read (counted, warned about): keep what the index has.
    Failed,
}

/// Reads a found file. A file whose size or modification time changed while it was read is not
/// used (its old state in the index stays; the next update reads it again).
pub fn read(
    f: &Found,
    opts: &WalkOptions,
    skipped: &mut Skipped,
    warn: &mut dyn FnMut(String),
) -> Read {
    let mut file = match std::fs::File::open(&f.abs) {
        Ok(file) => file,
        Err(e) => {
            skipped.unreadable += 1;
            warn(format!("{}: skipped: {e}", f.display.display()));
            return Read::Failed;
        }
    };
    let before = file.metadata().ok().map(|m| Stamp::of(&m));
    if before.is_some_and(|s| s.size > opts.max_filesize) {
        skipped.too_large += 1;
        return Read::TooLarge;
    }
    let mut bytes = Vec::with_capacity(before.map_or(0, |s| s.size as usize));
    // One more byte than allowed tells a file that grew past the limit.
    let limit = opts.max_filesize.saturating_add(1);
    if let Err(e) =
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, limit), &mut bytes)
    {
        skipped.unreadable += 1;
        warn(format!("{}: skipped: {e}", f.display.display()));
        return Read::Failed;
    }
    let after = file.metadata().ok().map(|m| Stamp::of(&m));
    let stamp = match (before, after) {
        (Some(b), Some(a)) if b == a && bytes.len() as u64 == b.size => b,
        _ => {
            skipped.changed += 1;
            warn(format!(
                "{}: skipped: it changed while being read",
                f.display.display()
            ));
            return Read::Failed;
        }
    };
    if bytes.contains(&0) {
        skipped.binary += 1;
        return Read::Binary(stamp);
    }
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Read::Text(text, stamp)
}
