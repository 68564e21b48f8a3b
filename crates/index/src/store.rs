//! The index on disk: one SQLite database (WAL, so readers never wait for a writer, and every
//! update a transaction — a killed run leaves the previous state or the next, never a mix).
//!
//! Schema (version 1):
//! - `collections`: one per embedding fingerprint (model files + encode options): a different
//!   model or option is a different collection, never mixed vectors. Each counts its chunks
//!   (kept in step by every write, so the scan file's dead records are known without a count).
//! - `vectors`: one per distinct text per collection, keyed by the text's sha256: identical chunks
//!   (and `embed --cache` texts) are embedded once. f32, exactly as computed.
//! - `docs`: the files (or caller items) of a collection with the stamp that tells an unchanged file
//!   without reading it, its content's sha256 (a touched file is not re-cut), and the chunker
//!   settings it was cut with.
//! - `meta`: the schema version and this database's random instance id (the scan files record it,
//!   so a scan file never outlives the database it was made from).
//! - `chunks`: each document's chunks in order (lines, bytes, text, vector); `chunks_fts` is an FTS5
//!   index over their text, kept in step by triggers, for the lexical and hybrid modes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, Result};
use crate::walk::Stamp;

/// Bumped with every change to the schema (an older index is then rebuilt).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    live_chunks INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY,
    collection INTEGER NOT NULL,
    hash BLOB NOT NULL,
    vector BLOB NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    UNIQUE (collection, hash)
);
CREATE TABLE IF NOT EXISTS docs (
    id INTEGER PRIMARY KEY,
    collection INTEGER NOT NULL,
    path BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    dev INTEGER NOT NULL,
    hash BLOB NOT NULL,
    chunker TEXT NOT NULL,
    UNIQUE (collection, path)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc INTEGER NOT NULL,
    ord INTEGER NOT NULL,
    vector INTEGER NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    start_byte INTEGER NOT NULL,
    end_byte INTEGER NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (doc, ord)
);
CREATE INDEX IF NOT EXISTS chunks_vector ON chunks (vector);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5 (
    text, content = 'chunks', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
";

/// The database.
pub(crate) struct Store {
    pub conn: Connection,
    pub path: PathBuf,
    /// Random, chosen when the database was created.
    pub instance: u64,
}

/// A document as the index has it.
#[derive(Debug, Clone)]
pub(crate) struct DocRow {
    pub id: i64,
    pub stamp: Stamp,
    pub hash: [u8; 32],
    pub chunker: String,
}

/// A chunk to write: where it is, its text, its vector's text hash.
pub(crate) struct NewChunk<'a> {
    pub start_line: usize,
    pub end_line: usize,
    pub start_byte: usize,
    pub end_byte: usize,
    pub text: &'a str,
    pub hash: [u8; 32],
}

/// A cached vector and whether its text was truncated.
pub(crate) type Cached = (Vec<f32>, bool);

/// A path as the bytes SQLite stores (exact for any file name).
pub(crate) fn path_key(p: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        p.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        p.to_string_lossy().into_owned().into_bytes()
    }
}

/// The path a key names.
pub(crate) fn key_path(k: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(k))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(k).into_owned())
    }
}

/// The key range of everything under `root` (itself included): `[root, root + 0xff)` in byte
/// order, refined by [`is_under`].
pub(crate) fn is_under(key: &[u8], root: &[u8]) -> bool {
    key == root
        || (key.starts_with(root) && (root.ends_with(b"/") || key.get(root.len()) == Some(&b'/')))
}

/// A 64-bit id no other index has: the clock and the process id, hashed.
fn random_id() -> u64 {
    use sha2::Digest;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let h = sha2::Sha256::digest(format!("{now}:{}:{:p}", std::process::id(), &now));
    u64::from_le_bytes(h[..8].try_into().unwrap_or([0; 8])) >> 1
}

/// The 32 bytes of a stored hash (anything else reads as zeros, which match nothing).
pub(crate) fn hash32(b: &[u8]) -> [u8; 32] {
    b.try_into().unwrap_or([0; 32])
}

pub(crate) fn f32_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn blob_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Store {
    /// Opens (creating if needed) the index at `path`. A file that is not a sembed index, or a
    /// damaged one, is an error that says how to start over.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| db(path, e))?;
        let mut s = Store {
            conn,
            path: path.to_path_buf(),
            instance: 0,
        };
        s.conn
            .busy_timeout(std::time::Duration::from_secs(60))
            .map_err(|e| s.err(e))?;
        // WAL: readers never wait; NORMAL: a transaction is durable once the WAL has it (a killed
        // process loses nothing committed).
        // Switching to WAL takes an exclusive lock, and SQLite answers SQLITE_BUSY at once, without
        // the busy handler, when another process is opening the same new index: retry a while
        // (seen as "database is locked" with two indexers on a loaded machine).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match s.conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(s.err(e)),
            }
        }
        s.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| s.err(e))?;
        // The first 64 MiB read through a memory map rather than a copy per page (a query touches
        // many); not more, or every page a long-running process ever touched would stay in its RSS
        // (fault-around maps its neighbours too): measured in BENCHMARKS.md.
        s.conn
            .pragma_update(None, "mmap_size", 64i64 << 20)
            .map_err(|e| s.err(e))?;
        // `rarray()`: a list of ids as one query parameter.
        rusqlite::vtab::array::load_module(&s.conn).map_err(|e| s.err(e))?;
        s.check_integrity_cheaply()?;
        let version: Option<String> = s
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .or_else(|e| match e {
                rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("no such table") => {
                    Ok(None)
                }
                e => Err(e),
            })
            .map_err(|e| s.err(e))?;
        match version.as_deref() {
            None => {
                // Two processes creating the same index at once: the schema is idempotent, and
                // the first instance id written wins.
                let tx = s.write()?;
                tx.execute_batch(SCHEMA).map_err(|e| db(path, e))?;
                tx.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| db(path, e))?;
                tx.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?1)",
                    [random_id().to_string()],
                )
                .map_err(|e| db(path, e))?;
                tx.commit().map_err(|e| db(path, e))?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!(
                        "an index of schema version {v}; this sembed reads version {SCHEMA_VERSION}"
                    ),
                });
            }
        }
        let instance: String = s
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| {
                r.get(0)
            })
            .map_err(|e| s.err(e))?;
        s.instance = instance.parse().map_err(|_| Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!("its instance id {instance:?} is not a number"),
        })?;
        Ok(s)
    }

    /// A garbage or truncated file fails here, before anything is written to it.
    fn check_integrity_cheaply(&self) -> Result<()> {
        let r: rusqlite::Result<i64> =
            self.conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0));
        r.map(|_| ()).map_err(|e| self.err(e))
    }

    /// An SQLite error as ours: corruption says how to rebuild.
    pub fn err(&self, e: rusqlite::Error) -> Error {
        db(&self.path, e)
    }

    /// The collection of `fingerprint`, created if new.
    pub fn collection(&self, fingerprint: &str, model: &str, dim: usize) -> Result<i64> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO collections (fingerprint, model, dim) VALUES (?1, ?2, ?3)",
                params![fingerprint, model, dim as i64],
            )
            .map_err(|e| self.err(e))?;
        let (id, stored): (i64, i64) = self
            .conn
            .query_row(
                "SELECT id, dim FROM collections WHERE fingerprint = ?1",
                [fingerprint],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        if stored != dim as i64 {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "collection {fingerprint} holds {stored}-dimensional vectors, the model gives {dim}"
                ),
            });
        }
        Ok(id)
    }

    /// The collection's generation: bumped by every update that changed its chunks.
    pub fn generation(&self, collection: i64) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT generation FROM collections WHERE id = ?1",
                [collection],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The documents of `collection` under any of `roots` (absolute keys), by key.
    pub fn docs_under(
        &self,
        collection: i64,
        roots: &[Vec<u8>],
    ) -> Result<HashMap<Vec<u8>, DocRow>> {
        let mut out = HashMap::new();
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, path, size, mtime_ns, inode, dev, hash, chunker FROM docs
                 WHERE collection = ?1 AND path >= ?2 AND path < ?3",
            )
            .map_err(|e| self.err(e))?;
        for root in roots {
            let mut hi = root.clone();
            hi.push(0xff);
            let rows = st
                .query_map(params![collection, root, hi], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(1)?,
                        DocRow {
                            id: r.get(0)?,
                            stamp: Stamp {
                                size: r.get::<_, i64>(2)? as u64,
                                mtime_ns: r.get(3)?,
                                inode: r.get::<_, i64>(4)? as u64,
                                dev: r.get::<_, i64>(5)? as u64,
                            },
                            hash: hash32(&r.get::<_, Vec<u8>>(6)?),
                            chunker: r.get(7)?,
                        },
                    ))
                })
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (k, d) = row.map_err(|e| self.err(e))?;
                if is_under(&k, root) {
                    out.insert(k, d);
                }
            }
        }
        Ok(out)
    }

    /// Which of `hashes` have no vector in `collection` yet.
    pub fn missing(&self, collection: i64, hashes: &[[u8; 32]]) -> Result<HashSet<[u8; 32]>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM vectors WHERE collection = ?1 AND hash = ?2")
            .map_err(|e| self.err(e))?;
        let mut out = HashSet::new();
        for h in hashes {
            if !st
                .exists(params![collection, &h[..]])
                .map_err(|e| self.err(e))?
            {
                out.insert(*h);
            }
        }
        Ok(out)
    }

    /// The vectors of `hashes` that `collection` has, with whether each text was truncated when it
    /// was embedded (for the embedding cache).
    pub fn lookup(&self, collection: i64, hashes: &[[u8; 32]]) -> Result<Vec<Option<Cached>>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT vector, truncated FROM vectors WHERE collection = ?1 AND hash = ?2",
            )
            .map_err(|e| self.err(e))?;
        hashes
            .iter()
            .map(|h| {
                st.query_row(params![collection, &h[..]], |r| {
                    Ok((blob_f32(&r.get::<_, Vec<u8>>(0)?), r.get::<_, bool>(1)?))
                })
                .optional()
                .map_err(|e| self.err(e))
            })
            .collect()
    }

    /// Begins a write transaction (taking the write lock now: two writers queue, neither fails).
    pub fn write(&mut self) -> Result<rusqlite::Transaction<'_>> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db(&path, e))
    }
}

/// Inserts vectors that are not there yet: `(text hash, vector, truncated)`.
pub(crate) fn put_vectors(
    tx: &rusqlite::Transaction<'_>,
    collection: i64,
    vectors: &[([u8; 32], &[f32], bool)],
) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO vectors (collection, hash, vector, truncated)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (h, v, truncated) in vectors {
        st.execute(params![collection, &h[..], f32_blob(v), truncated])?;
    }
    Ok(())
}

/// A document to write: its key, stamp, content hash and chunks.
pub(crate) struct NewDoc<'a> {
    pub key: &'a [u8],
    pub stamp: Stamp,
    pub hash: [u8; 32],
    pub chunks: Vec<NewChunk<'a>>,
}

/// Replaces a document's chunks (or creates the document). `Ok(false)`: a chunk's vector is not in
/// the database (a concurrent `cache clear` removed it since it was looked up): roll back and
/// retry.
pub(crate) fn put_doc(
    tx: &rusqlite::Transaction<'_>,
    collection: i64,
    chunker: &str,
    d: &NewDoc<'_>,
) -> rusqlite::Result<bool> {
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM docs WHERE collection = ?1 AND path = ?2",
            params![collection, d.key],
            |r| r.get(0),
        )
        .optional()?;
    let s = d.stamp;
    let mut removed = 0;
    let doc = match existing {
        Some(id) => {
            removed = tx.execute("DELETE FROM chunks WHERE doc = ?1", [id])?;
            tx.execute(
                "UPDATE docs SET size = ?2, mtime_ns = ?3, inode = ?4, dev = ?5, hash = ?6,
                 chunker = ?7 WHERE id = ?1",
                params![
                    id,
                    s.size as i64,
                    s.mtime_ns,
                    s.inode as i64,
                    s.dev as i64,
                    &d.hash[..],
                    chunker
                ],
            )?;
            id
        }
        None => {
            tx.execute(
                "INSERT INTO docs (collection, path, size, mtime_ns, inode, dev, hash, chunker)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    collection,
                    d.key,
                    s.size as i64,
                    s.mtime_ns,
                    s.inode as i64,
                    s.dev as i64,
                    &d.hash[..],
                    chunker
                ],
            )?;
            tx.last_insert_rowid()
        }
    };
    let mut find =
        tx.prepare_cached("SELECT id FROM vectors WHERE collection = ?1 AND hash = ?2")?;
    let mut ins = tx.prepare_cached(
        "INSERT INTO chunks (doc, ord, vector, start_line, end_line, start_byte, end_byte, text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (ord, c) in d.chunks.iter().enumerate() {
        let Some(vector) = find
            .query_row(params![collection, &c.hash[..]], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            return Ok(false);
        };
        ins.execute(params![
            doc,
            ord as i64,
            vector,
            c.start_line as i64,
            c.end_line as i64,
            c.start_byte as i64,
            c.end_byte as i64,
            c.text
        ])?;
    }
    tx.execute(
        "UPDATE collections SET live_chunks = live_chunks + ?2 WHERE id = ?1",
        params![collection, d.chunks.len() as i64 - removed as i64],
    )?;
    Ok(true)
}

/// A document whose content is unchanged gets its new stamp (its chunks stay as they are).
pub(crate) fn restamp_doc(
    tx: &rusqlite::Transaction<'_>,
    doc: i64,
    s: Stamp,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE docs SET size = ?2, mtime_ns = ?3, inode = ?4, dev = ?5 WHERE id = ?1",
        params![doc, s.size as i64, s.mtime_ns, s.inode as i64, s.dev as i64],
    )?;
    Ok(())
}

/// Vectors no chunk uses (the embedding cache's, and those of chunks since changed): how many
/// and their bytes.
pub(crate) fn unreferenced(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(length(vector)), 0) FROM vectors v
         WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vector = v.id)",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
}

/// Deletes the vectors no chunk uses; returns how many.
pub(crate) fn delete_unreferenced(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<u64> {
    tx.execute(
        "DELETE FROM vectors WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vector = vectors.id)",
        [],
    )
    .map(|n| n as u64)
}

/// Removes a document and its chunks.
pub(crate) fn delete_doc(tx: &rusqlite::Transaction<'_>, doc: i64) -> rusqlite::Result<()> {
    let removed = tx.execute("DELETE FROM chunks WHERE doc = ?1", [doc])?;
    tx.execute(
        "UPDATE collections SET live_chunks = live_chunks - ?2
         WHERE id = (SELECT collection FROM docs WHERE id = ?1)",
        params![doc, removed as i64],
    )?;
    tx.execute("DELETE FROM docs WHERE id = ?1", [doc])?;
    Ok(())
}

/// Marks a change of `collection`'s chunks (what the scan file checks).
pub(crate) fn bump(tx: &rusqlite::Transaction<'_>, collection: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE collections SET generation = generation + 1 WHERE id = ?1",
        [collection],
    )?;
    Ok(())
}

/// An SQLite error as ours: a damaged or foreign file says how to start over.
pub(crate) fn db(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::*;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, NotADatabase | DatabaseCorrupt) =>
        {
            Error::Corrupt {
                path: path.to_path_buf(),
                reason: format!("not a usable index ({e})"),
            }
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == DiskFull => Error::Database {
            path: path.to_path_buf(),
            reason: "the disk is full; the index keeps its last complete state".into(),
        },
        // A write refused by the system (EFBIG past a file size limit is reported so).
        rusqlite::Error::SqliteFailure(f, _) if f.code == SystemIoFailure => Error::Database {
            path: path.to_path_buf(),
            reason: format!(
                "{e} (is the disk full, or a file size limit reached?); the index keeps its last \
                 complete state"
            ),
        },
        _ => Error::Database {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    }
}
