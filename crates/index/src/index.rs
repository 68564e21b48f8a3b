//! [`Index`]: a persistent, incremental index of files (or of caller items) for one embedding
//! model, and the queries over it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sembed::{EmbedOptions, Embedder, Fingerprint};
use sha2::{Digest, Sha256};

use crate::chunk::{Chunk, ChunkOptions, chunk};
use crate::error::{Error, Result};
use crate::scan::ScanFile;
use crate::store::{self, NewChunk, NewDoc, Store, is_under, key_path, path_key};
use crate::walk::{self, Found, Read, Skipped, Stamp, WalkOptions};

/// How documents are cut and embedded.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// Most tokens per chunk (default and maximum: what the model takes after its special tokens
    /// and document prompt).
    pub chunk_tokens: Option<usize>,
    /// Tokens of whole lines repeated from one chunk into the next.
    pub overlap_tokens: usize,
    /// Threads for embedding (0: the model's budget).
    pub threads: usize,
}

/// How a search ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Cosine similarity of the query's vector and each chunk's.
    Semantic,
    /// BM25 over the chunks' words (SQLite FTS5).
    Lexical,
    /// Both, fused by reciprocal rank (`1 / (60 + rank)` summed over the two lists).
    #[default]
    Hybrid,
}

/// What a search returns and how many.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// How hits are ranked.
    pub mode: Mode,
    /// Hits wanted.
    pub top: usize,
    /// Hits below this are dropped: compared with the cosine similarity (semantic, hybrid) or the
    /// BM25 score (lexical).
    pub threshold: Option<f32>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            mode: Mode::Hybrid,
            top: 10,
            threshold: None,
        }
    }
}

/// Where a search looks: roots (as shown, and as the index keys them) and caller items.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    roots: Vec<(PathBuf, Vec<u8>)>,
    items: bool,
    /// Only these files (what an update's walk saw), if set.
    files: Option<std::sync::Arc<HashSet<Vec<u8>>>>,
    /// The standard input of this search, if any.
    stdin: Option<Vec<u8>>,
}

impl Scope {
    /// Files under `roots`, each shown as given joined with the file's path below it. A root that
    /// no longer exists is kept by its absolute path (searching an index whose tree is gone).
    pub fn paths(roots: &[PathBuf]) -> Scope {
        Scope::shown(roots.iter().map(|r| (r.clone(), r.clone())))
    }

    /// Files under each root path, shown as its prefix joined with the relative path (an empty
    /// prefix: relative paths only, as ripgrep shows a search of the current folder).
    pub fn shown(roots: impl IntoIterator<Item = (PathBuf, PathBuf)>) -> Scope {
        let roots = roots
            .into_iter()
            .map(|(shown, r)| {
                let c = std::fs::canonicalize(&r)
                    .or_else(|_| std::path::absolute(&r))
                    .unwrap_or(r);
                (shown, path_key(&c))
            })
            .collect();
        Scope {
            roots,
            items: false,
            files: None,
            stdin: None,
        }
    }

    /// Only the files an update found (its walk's view: globs, ignore files, size limit), not
    /// others the index has under the same roots from earlier updates with other options.
    pub fn within(mut self, report: &UpdateReport) -> Scope {
        self.files = Some(report.files.clone());
        self
    }

    /// Also the items added with [`Index::update_items`].
    pub fn with_items(mut self) -> Scope {
        self.items = true;
        self
    }

    /// The shown path of `key`, if it is in scope.
    fn display(&self, key: &[u8]) -> Option<PathBuf> {
        if key.starts_with(ITEM) {
            return self
                .items
                .then(|| PathBuf::from(String::from_utf8_lossy(&key[ITEM.len()..]).into_owned()));
        }
        if key.starts_with(STDIN) {
            return (self.stdin.as_deref() == Some(key)).then(|| PathBuf::from("<stdin>"));
        }
        if self.files.as_ref().is_some_and(|f| !f.contains(key)) {
            return None;
        }
        for (shown, root) in &self.roots {
            if is_under(key, root) {
                let rel = &key[root.len()..];
                let rel = rel.strip_prefix(b"/").unwrap_or(rel);
                return Some(if rel.is_empty() {
                    if shown.as_os_str().is_empty() {
                        key_path(key)
                            .file_name()
                            .map_or_else(PathBuf::new, PathBuf::from)
                    } else {
                        shown.clone()
                    }
                } else {
                    shown.join(key_path(rel))
                });
            }
        }
        None
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        self.roots.iter().map(|(_, k)| k.clone()).collect()
    }
}

/// The chunker of a binary file's document (it has no chunks).
const BINARY: &str = "binary";

/// Items (not files) are keyed with this prefix, which no absolute path has.
const ITEM: &[u8] = b"\0item:";
/// Standard input searched once: `\0stdin:<pid>:<n>`, removed after the search (and, if that
/// process died first, by the next open).
const STDIN: &[u8] = b"\0stdin:";

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The file as the search was given it (root joined with the relative path), or the item id.
    pub path: PathBuf,
    /// 1-based, inclusive.
    pub start_line: usize,
    /// 1-based, inclusive.
    pub end_line: usize,
    /// Byte range of the chunk in the file.
    pub bytes: std::ops::Range<usize>,
    /// The mode's score: cosine (semantic), BM25 (lexical, higher is better) or the fused
    /// reciprocal rank (hybrid).
    pub score: f32,
    /// Cosine similarity of the query and the chunk (semantic and hybrid modes).
    pub cosine: Option<f32>,
    /// The chunk's text (stored in the index: shown even when the file is gone).
    pub text: String,
    /// The chunk's row id.
    pub(crate) id: i64,
}

/// What an update did.
#[derive(Debug, Clone, Default)]
pub struct UpdateReport {
    /// Files (or items) looked at.
    pub seen: usize,
    /// Of those, new or with new content, and (re)chunked.
    pub changed: usize,
    /// Of those, with a new stamp but the same content (not re-chunked).
    pub touched: usize,
    /// In the index before, gone now.
    pub deleted: usize,
    /// Skipped, by reason.
    pub skipped: Skipped,
    /// Chunks of the changed files.
    pub chunks: usize,
    /// Of those, embedded now (the others' text had a vector already).
    pub embedded: usize,
    /// Tokens embedded.
    pub tokens: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// The files the walk found (for [`Scope::within`]).
    files: std::sync::Arc<HashSet<Vec<u8>>>,
}

/// Progress of an update, as it goes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The walk is done: this many files, this many to read again.
    Walked {
        /// Files found.
        files: usize,
        /// Of those, new or with a new stamp.
        changed: usize,
    },
    /// Files read so far (of `changed`), and chunks embedded so far.
    Indexed {
        /// Files done.
        files: usize,
        /// Chunks embedded.
        embedded: usize,
    },
    /// A file skipped for an unexpected reason.
    Warning(String),
}

/// Files per transaction at most: a killed update keeps what it committed.
const BATCH_FILES: usize = 256;
/// Chunks embedded per transaction at most (about a minute of the built-in model on one core at
/// most; large enough for length-sorted batches to pay).
const BATCH_CHUNKS: usize = 1024;

/// An index of one model's vectors (one collection of the database).
///
/// ```no_run
/// use sembed_index::{Index, IndexOptions, Scope, SearchOptions, WalkOptions};
/// let model = sembed::Embedder::from_dir("models/all-MiniLM-L6-v2")?;
/// let mut index = Index::open("index.sqlite".as_ref(), &model, &IndexOptions::default())?;
/// let roots = ["notes".into()];
/// index.update(&model, &roots, &WalkOptions::default(), &mut |_| {})?;
/// for hit in index.search(&model, "where did I park", &Scope::paths(&roots), &SearchOptions::default())? {
///     println!("{}:{}-{} {:.3}", hit.path.display(), hit.start_line, hit.end_line, hit.score);
/// }
/// # Ok::<(), sembed_index::Error>(())
/// ```
pub struct Index {
    backend: Backend,
    /// The database file, or the PostgreSQL URL without its password.
    location: PathBuf,
    collection: i64,
    dim: usize,
    chunk: ChunkOptions,
    doc_opts: EmbedOptions,
    query_opts: EmbedOptions,
}

/// Where the vectors are.
enum Backend {
    /// One SQLite file (any number of collections) and the collection's scan file beside it.
    Sqlite { store: Store, scan: ScanFile },
    /// PostgreSQL + pgvector tables of one collection (a cell: its client needs `&mut` to query).
    #[cfg(feature = "postgres")]
    Postgres(Box<std::cell::RefCell<crate::pg::PgStore>>),
}

/// The model's prompt of one of these names, if it has a non-empty one.
fn prompt(model: &Embedder, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        model
            .info()
            .prompts
            .iter()
            .find(|(k, v)| k == n && !v.is_empty())
            .map(|(k, _)| k.clone())
    })
}

pub(crate) fn sha(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Index {
    /// Opens (or creates) the index at `path` for `model`: its collection is the model's
    /// fingerprint with the document options, so another model or option never mixes vectors.
    pub fn open(path: &Path, model: &Embedder, opts: &IndexOptions) -> Result<Index> {
        let store = Store::open(path)?;
        let (doc_opts, query_opts, chunk) = settings(model, opts)?;
        let fp = model.fingerprint(&doc_opts)?;
        let collection = store.collection(&fp.to_string(), &model.info().name, model.dim())?;
        let scan = ScanFile::new(path, collection, model.dim(), store.instance);
        let mut index = Index {
            location: store.path.clone(),
            backend: Backend::Sqlite { store, scan },
            collection,
            dim: model.dim(),
            chunk,
            doc_opts,
            query_opts,
        };
        index.remove_stale_stdin()?;
        Ok(index)
    }

    /// Opens (or creates) the index `location` names: a `postgres://` or `postgresql://` URL (see
    /// [`PgUrl`](crate::PgUrl)) or else an SQLite file.
    pub fn open_at(location: &str, model: &Embedder, opts: &IndexOptions) -> Result<Index> {
        #[cfg(feature = "postgres")]
        if crate::pg::is_postgres_url(location) {
            return Index::open_postgres(&crate::pg::PgUrl::parse(location)?, model, opts);
        }
        Index::open(Path::new(location), model, opts)
    }

    /// Opens (or creates) an index in PostgreSQL + pgvector: the tables `url` names hold one
    /// collection, and opening them with another model or chunker is an error naming both.
    #[cfg(feature = "postgres")]
    pub fn open_postgres(
        url: &crate::pg::PgUrl,
        model: &Embedder,
        opts: &IndexOptions,
    ) -> Result<Index> {
        let (doc_opts, query_opts, chunk) = settings(model, opts)?;
        let fp = model.fingerprint(&doc_opts)?.to_string();
        let meta = crate::pg::Meta {
            fingerprint: &fp,
            model: &model.info().name,
            dim: model.dim(),
            normalized: model.info().normalize,
        };
        let store = crate::pg::PgStore::open(url, &meta)?;
        let mut index = Index {
            location: PathBuf::from(url.to_string()),
            backend: Backend::Postgres(Box::new(std::cell::RefCell::new(store))),
            collection: 0,
            dim: model.dim(),
            chunk,
            doc_opts,
            query_opts,
        };
        index.remove_stale_stdin()?;
        Ok(index)
    }
}

/// The document and query options and the chunking of `model` under `opts`.
fn settings(
    model: &Embedder,
    opts: &IndexOptions,
) -> Result<(EmbedOptions, EmbedOptions, ChunkOptions)> {
    {
        let doc_opts = EmbedOptions {
            prompt_name: prompt(model, &["document", "passage"]),
            truncate: false,
            threads: opts.threads,
            ..Default::default()
        };
        let query_opts = EmbedOptions {
            prompt_name: prompt(model, &["query"]),
            threads: opts.threads,
            ..Default::default()
        };
        let budget = model.token_budget(&doc_opts)?.unwrap_or(512);
        let max_tokens = match opts.chunk_tokens {
            None => budget,
            Some(0) => return Err(Error::Invalid("chunks must hold at least 1 token".into())),
            Some(n) if n > budget => {
                return Err(Error::Invalid(format!(
                    "chunks of {n} tokens do not fit {}: at most {budget}",
                    model.info().name
                )));
            }
            Some(n) => n,
        };
        if opts.overlap_tokens >= max_tokens {
            return Err(Error::Invalid(format!(
                "an overlap of {} tokens leaves no room in chunks of {max_tokens}",
                opts.overlap_tokens
            )));
        }
        let chunk = ChunkOptions {
            max_tokens,
            overlap_tokens: opts.overlap_tokens,
        };
        Ok((doc_opts, query_opts, chunk))
    }
}

impl Index {
    /// The chunking settings in force.
    pub fn chunk_options(&self) -> ChunkOptions {
        self.chunk
    }

    /// The database file, or the PostgreSQL URL (password replaced by `***`).
    pub fn path(&self) -> &Path {
        &self.location
    }

    /// The collection's fingerprint (model and document options).
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        let fp: String = match &self.backend {
            Backend::Sqlite { store, .. } => store
                .conn
                .query_row(
                    "SELECT fingerprint FROM collections WHERE id = ?1",
                    [self.collection],
                    |r| r.get(0),
                )
                .map_err(|e| store.err(e))?,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.borrow_mut().fingerprint()?,
        };
        fp.parse().map_err(Error::Engine)
    }

    /// An update's transaction begins (PostgreSQL: the whole update is one; SQLite commits each
    /// batch).
    fn begin(&mut self) -> Result<()> {
        match &mut self.backend {
            Backend::Sqlite { .. } => Ok(()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.get_mut().begin(),
        }
    }

    /// The update's transaction ends: committed if `r` is a success, else rolled back.
    fn end<T>(&mut self, r: Result<T>) -> Result<T> {
        match &mut self.backend {
            Backend::Sqlite { .. } => r,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                let ended = pg.get_mut().end(r.is_ok());
                let v = r?;
                ended.map(|_| v)
            }
        }
    }

    fn docs_under(&self, roots: &[Vec<u8>]) -> Result<HashMap<Vec<u8>, store::DocRow>> {
        match &self.backend {
            Backend::Sqlite { store, .. } => store.docs_under(self.collection, roots),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.borrow_mut().docs_under(roots),
        }
    }

    /// Brings the index up to date with the files under `roots`: unchanged files (same size,
    /// modification time and inode) are not read, changed ones re-chunked with only new chunk texts
    /// embedded, deleted ones removed. Committed in batches: a killed update keeps every batch it
    /// finished, and the next one carries on from there.
    pub fn update(
        &mut self,
        model: &Embedder,
        roots: &[PathBuf],
        walk_opts: &WalkOptions,
        events: &mut dyn FnMut(Event),
    ) -> Result<UpdateReport> {
        self.begin()?;
        let r = self.update_in_tx(model, roots, walk_opts, events);
        self.end(r)
    }

    fn update_in_tx(
        &mut self,
        model: &Embedder,
        roots: &[PathBuf],
        walk_opts: &WalkOptions,
        events: &mut dyn FnMut(Event),
    ) -> Result<UpdateReport> {
        let start = Instant::now();
        let mut report = UpdateReport::default();
        let scope = Scope::paths(roots);
        let known = self.docs_under(&scope.keys())?;
        let chunker = self.chunk.key();
        let mut found = Vec::new();
        // The index's own files are never part of what it indexes.
        let mut walk_opts = walk_opts.clone();
        match &self.backend {
            Backend::Sqlite { scan, .. } => walk_opts.exclude.push(scan.canonical_db()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => {}
        }
        let walk_opts = &walk_opts;
        walk::walk(
            roots,
            walk_opts,
            &mut report.skipped,
            &mut |f| found.push(f),
            &mut |w| events(Event::Warning(w)),
        )?;
        report.seen = found.len();
        let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(found.len());
        let mut todo: Vec<(Vec<u8>, Found)> = Vec::new();
        for f in found {
            let key = path_key(&f.abs);
            if !seen.insert(key.clone()) {
                continue; // the same file through two roots
            }
            match known.get(&key) {
                Some(d) if d.stamp == f.stamp && d.chunker == chunker => {}
                // Known as binary, unchanged: not read again.
                Some(d) if d.stamp == f.stamp && d.chunker == BINARY => report.skipped.binary += 1,
                _ => todo.push((key, f)),
            }
        }
        events(Event::Walked {
            files: report.seen,
            changed: todo.len(),
        });
        let mut batch = Batch::default();
        let mut gone: Vec<i64> = Vec::new();
        let mut done = 0;
        for (key, f) in todo {
            done += 1;
            let mut warn = |w: String| events(Event::Warning(w));
            let (text, stamp) = match walk::read(&f, walk_opts, &mut report.skipped, &mut warn) {
                Read::Text(text, stamp) => (text, stamp),
                // Remembered as binary (no chunks), so an unchanged one is not read again.
                Read::Binary(stamp) => {
                    batch.docs.push(Doc {
                        key,
                        stamp: trusted(stamp),
                        hash: [0; 32],
                        chunker: BINARY.into(),
                        text: String::new(),
                        chunks: Vec::new(),
                        hashes: Vec::new(),
                    });
                    continue;
                }
                // Grown past the limit: out of the index.
                Read::TooLarge => {
                    seen.remove(&key);
                    continue;
                }
                // Unreadable now, or changing: what the index has stays.
                Read::Failed => continue,
            };
            let stamp = trusted(stamp);
            let hash = sha(&text);
            match known.get(&key) {
                Some(d) if d.hash == hash && d.chunker == chunker => {
                    report.touched += 1;
                    batch.restamps.push((d.id, stamp));
                }
                _ => {
                    let doc = self.cut(model, key, text, stamp, hash)?;
                    batch.chunks += doc.chunks.len();
                    batch.docs.push(doc);
                }
            }
            if batch.docs.len() + batch.restamps.len() >= BATCH_FILES
                || batch.chunks >= BATCH_CHUNKS
            {
                self.commit(model, std::mem::take(&mut batch), &[], &mut report)?;
                events(Event::Indexed {
                    files: done,
                    embedded: report.embedded,
                });
            }
        }
        // Files in the index under these roots that the walk did not find are gone (decided only
        // once the walk is complete, so a killed run never deletes what it did not see) — unless
        // they are still there, out of this walk's view only (another glob, an ignore file):
        // those stay for other searches, and `Scope::within` keeps them out of this one's.
        gone.extend(
            known
                .iter()
                .filter(|(k, _)| !seen.contains(*k) && !still_there(k))
                .map(|(_, d)| d.id),
        );
        report.deleted = gone.len();
        self.commit(model, batch, &gone, &mut report)?;
        events(Event::Indexed {
            files: done,
            embedded: report.embedded,
        });
        self.refresh_scan()?;
        report.files = std::sync::Arc::new(seen);
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// Indexes caller items `(id, text)`, replacing an item whose text changed; items not given
    /// are kept (remove them with [`remove_items`](Self::remove_items)). Search them with
    /// [`Scope::with_items`]; a hit's path is the item's id.
    pub fn update_items<I: AsRef<str>, T: AsRef<str>>(
        &mut self,
        model: &Embedder,
        items: &[(I, T)],
    ) -> Result<UpdateReport> {
        self.begin()?;
        let r = self.update_items_in_tx(model, items);
        self.end(r)
    }

    fn update_items_in_tx<I: AsRef<str>, T: AsRef<str>>(
        &mut self,
        model: &Embedder,
        items: &[(I, T)],
    ) -> Result<UpdateReport> {
        let start = Instant::now();
        let mut report = UpdateReport {
            seen: items.len(),
            ..Default::default()
        };
        let keys: Vec<Vec<u8>> = items
            .iter()
            .map(|(id, _)| [ITEM, id.as_ref().as_bytes()].concat())
            .collect();
        let known = self.docs(&keys)?;
        let mut batch = Batch::default();
        for ((_, text), key) in items.iter().zip(keys) {
            let text = text.as_ref();
            let hash = sha(text);
            if known
                .get(&key)
                .is_some_and(|d| d.hash == hash && d.chunker == self.chunk.key())
            {
                continue;
            }
            let stamp = Stamp {
                size: text.len() as u64,
                mtime_ns: 0,
                inode: 0,
                dev: 0,
            };
            let doc = self.cut(model, key, text.to_string(), stamp, hash)?;
            batch.chunks += doc.chunks.len();
            batch.docs.push(doc);
            if batch.docs.len() >= BATCH_FILES || batch.chunks >= BATCH_CHUNKS {
                self.commit(model, std::mem::take(&mut batch), &[], &mut report)?;
            }
        }
        self.commit(model, batch, &[], &mut report)?;
        self.refresh_scan()?;
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// The scan file brought up to the database now, so the next search does not wait for it.
    fn refresh_scan(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite { store, scan } => {
                let generation = store.generation(self.collection)?;
                scan.refresh(store, self.collection, generation)
            }
            // The HNSW index is kept by PostgreSQL.
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Removes items by id; returns how many there were.
    pub fn remove_items<I: AsRef<str>>(&mut self, ids: &[I]) -> Result<usize> {
        let keys: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| [ITEM, id.as_ref().as_bytes()].concat())
            .collect();
        let gone: Vec<i64> = self.docs(&keys)?.values().map(|d| d.id).collect();
        self.write(&[], &[], &gone, &HashMap::new())?;
        Ok(gone.len())
    }

    /// The documents with exactly these keys.
    fn docs(&self, keys: &[Vec<u8>]) -> Result<HashMap<Vec<u8>, store::DocRow>> {
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(pg) = &self.backend {
            return pg.borrow_mut().docs_with_keys(keys);
        }
        let mut out = self.docs_under(keys)?;
        let wanted: HashSet<&Vec<u8>> = keys.iter().collect();
        out.retain(|k, _| wanted.contains(k));
        Ok(out)
    }

    /// Searches `text` (standard input) as one more document beside `scope`'s: indexed for this
    /// search only, removed after it (its vectors stay, so the same text again costs no
    /// embedding).
    pub fn search_with_text(
        &mut self,
        model: &Embedder,
        query: &str,
        text: &str,
        scope: &Scope,
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        // Unique to this call: the process, and a counter within it.
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = [STDIN, format!("{}:{n}", std::process::id()).as_bytes()].concat();
        let mut report = UpdateReport::default();
        let stamp = Stamp {
            size: text.len() as u64,
            mtime_ns: 0,
            inode: 0,
            dev: 0,
        };
        let doc = self.cut(model, key.clone(), text.to_string(), stamp, sha(text))?;
        self.commit(model, Batch::of(doc), &[], &mut report)?;
        let scope = Scope {
            stdin: Some(key.clone()),
            ..scope.clone()
        };
        let hits = self.search(model, query, &scope, opts);
        let gone: Vec<i64> = self.docs(&[key])?.values().map(|d| d.id).collect();
        self.write(&[], &[], &gone, &HashMap::new())?;
        hits
    }

    /// Standard-input documents of processes that are gone.
    fn remove_stale_stdin(&mut self) -> Result<()> {
        let stale = self.docs_under(&[STDIN.to_vec()])?;
        let gone: Vec<i64> = stale
            .iter()
            .filter(|(k, _)| {
                let pid = String::from_utf8_lossy(&k[STDIN.len()..])
                    .split(':')
                    .next()
                    .and_then(|p| p.parse::<i32>().ok());
                pid.is_none_or(|p| !alive(p))
            })
            .map(|(_, d)| d.id)
            .collect();
        self.write(&[], &[], &gone, &HashMap::new()).map(|_| ())
    }

    /// A document's chunks and their texts' hashes.
    fn cut(
        &self,
        model: &Embedder,
        key: Vec<u8>,
        text: String,
        stamp: Stamp,
        hash: [u8; 32],
    ) -> Result<Doc> {
        let count = |s: &str| model.count_tokens(s);
        let chunks = chunk(&text, &self.chunk, &count)?;
        let hashes = chunks.iter().map(|c| sha(&text[c.bytes.clone()])).collect();
        Ok(Doc {
            key,
            stamp,
            hash,
            chunker: self.chunk.key(),
            text,
            chunks,
            hashes,
        })
    }

    /// Embeds what `batch` needs that the index does not have, then writes it (and removes `gone`)
    /// in one transaction.
    fn commit(
        &mut self,
        model: &Embedder,
        batch: Batch,
        gone: &[i64],
        report: &mut UpdateReport,
    ) -> Result<()> {
        let all: Vec<[u8; 32]> = batch
            .docs
            .iter()
            .flat_map(|d| d.hashes.iter().copied())
            .collect();
        report.chunks += all.len();
        report.changed += batch.docs.iter().filter(|d| d.chunker != BINARY).count();
        let mut computed: HashMap<[u8; 32], Vec<f32>> = HashMap::new();
        // A vector found now may be gone by the write (a concurrent `cache clear`): then again.
        for _ in 0..4 {
            let missing = self.missing(&all)?;
            // Each missing text once, in first-seen order.
            let mut want: Vec<([u8; 32], &str)> = Vec::new();
            let mut queued = HashSet::new();
            for d in &batch.docs {
                for (c, h) in d.chunks.iter().zip(&d.hashes) {
                    if missing.contains(h) && !computed.contains_key(h) && queued.insert(*h) {
                        want.push((*h, &d.text[c.bytes.clone()]));
                    }
                }
            }
            if !want.is_empty() {
                let texts: Vec<&str> = want.iter().map(|(_, t)| *t).collect();
                let t = model.tokenize(&texts, &self.doc_opts)?;
                report.tokens += t.total_tokens();
                let e = model.embed_tokenized(&t)?;
                report.embedded += want.len();
                for ((h, _), v) in want.iter().zip(e.rows()) {
                    computed.insert(*h, v.to_vec());
                }
            }
            let new: HashMap<[u8; 32], &[f32]> = computed
                .iter()
                .filter(|(h, _)| missing.contains(*h))
                .map(|(h, v)| (*h, &v[..]))
                .collect();
            if self.write(&batch.docs, &batch.restamps, gone, &new)? {
                return Ok(());
            }
        }
        Err(Error::Database {
            path: self.location.clone(),
            reason: "vectors kept disappearing while being written (is `sembed cache clear` \
                     running in a loop?)"
                .into(),
        })
    }

    /// One transaction: new vectors, documents, new stamps, deletions. `Ok(false)`: a vector
    /// the documents need is not there (nothing was written).
    fn write(
        &mut self,
        docs: &[Doc],
        restamps: &[(i64, Stamp)],
        gone: &[i64],
        new: &HashMap<[u8; 32], &[f32]>,
    ) -> Result<bool> {
        if docs.is_empty() && gone.is_empty() && restamps.is_empty() {
            return Ok(true);
        }
        let collection = self.collection;
        let store = match &mut self.backend {
            Backend::Sqlite { store, .. } => store,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                return write_pg(pg.get_mut(), docs, restamps, gone, new).map(|_| true);
            }
        };
        let path = store.path.clone();
        let tx = store.write()?;
        let r = (|| -> rusqlite::Result<bool> {
            let refs: Vec<([u8; 32], &[f32], bool)> =
                new.iter().map(|(h, v)| (*h, *v, false)).collect();
            store::put_vectors(&tx, collection, &refs)?;
            for d in docs {
                let nd = NewDoc {
                    key: &d.key,
                    stamp: d.stamp,
                    hash: d.hash,
                    chunks: d.new_chunks().collect(),
                };
                if !store::put_doc(&tx, collection, &d.chunker, &nd)? {
                    return Ok(false);
                }
            }
            for (id, stamp) in restamps {
                store::restamp_doc(&tx, *id, *stamp)?;
            }
            for id in gone {
                store::delete_doc(&tx, *id)?;
            }
            if !docs.is_empty() || !gone.is_empty() {
                store::bump(&tx, collection)?;
            }
            Ok(true)
        })();
        match r {
            Ok(true) => tx.commit().map_err(|e| store::db(&path, e)).map(|_| true),
            // Dropping the transaction rolls it back.
            Ok(false) => Ok(false),
            Err(e) => Err(store::db(&path, e)),
        }
    }

    /// The best chunks for `query` in `scope`, best first.
    pub fn search(
        &self,
        model: &Embedder,
        query: &str,
        scope: &Scope,
        opts: &SearchOptions,
    ) -> Result<Vec<Hit>> {
        let k = opts.top;
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut hits = match opts.mode {
            Mode::Semantic => self.semantic(model, query, scope, k)?,
            Mode::Lexical => self.lexical(query, scope, k)?,
            Mode::Hybrid => {
                let n = (k * 4).max(40);
                let q = self.query_vector(model, query)?;
                let sem = self.semantic_with(&q, scope, n, model.thread_pool())?;
                let lex = self.lexical(query, scope, n)?;
                let mut fused = crate::rank::fuse(&[sem, lex], k);
                // Lexical-only hits get their cosine too (what --threshold compares).
                let need: Vec<i64> = fused
                    .iter()
                    .filter(|h| h.cosine.is_none())
                    .map(|h| h.id)
                    .collect();
                if !need.is_empty() {
                    let mut cos = HashMap::new();
                    self.vectors_of(&need, &mut |id, _, v| {
                        cos.insert(id, sembed::cosine(&q, v));
                    })?;
                    for h in &mut fused {
                        h.cosine = h.cosine.or_else(|| cos.get(&h.id).copied());
                    }
                }
                fused
            }
        };
        if let Some(t) = opts.threshold {
            hits.retain(|h| h.cosine.unwrap_or(h.score) >= t);
        }
        hits.truncate(k);
        Ok(hits)
    }

    fn query_vector(&self, model: &Embedder, query: &str) -> Result<Vec<f32>> {
        let e = model.embed(&[query], &self.query_opts)?;
        Ok(e.row(0).to_vec())
    }

    fn semantic(&self, model: &Embedder, query: &str, scope: &Scope, k: usize) -> Result<Vec<Hit>> {
        let q = self.query_vector(model, query)?;
        self.semantic_with(&q, scope, k, model.thread_pool())
    }

    /// Which of `hashes` have no vector yet.
    fn missing(&self, hashes: &[[u8; 32]]) -> Result<HashSet<[u8; 32]>> {
        match &self.backend {
            Backend::Sqlite { store, .. } => store.missing(self.collection, hashes),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.borrow_mut().missing(hashes),
        }
    }

    /// Dense: the best candidates of the index rescored exactly with sembed's cosine, those out of
    /// scope dropped; more candidates while fewer than `k` are in scope.
    fn semantic_with(
        &self,
        q: &[f32],
        scope: &Scope,
        k: usize,
        pool: &sembed::ThreadPool,
    ) -> Result<Vec<Hit>> {
        let scan = match &self.backend {
            Backend::Sqlite { scan, .. } => scan,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => return semantic_pg(&mut pg.borrow_mut(), q, scope, k),
        };
        self.refresh_scan()?;
        let mut n = rescore_depth(k);
        loop {
            let (cands, total) = scan.top(q, n, pool)?;
            let ids: Vec<i64> = cands.iter().map(|c| c.id).collect();
            // (cosine, shown path, chunk id)
            let mut scored: Vec<(f32, PathBuf, i64)> = Vec::with_capacity(ids.len());
            self.vectors_of(&ids, &mut |id, key, v| {
                if let Some(path) = scope.display(key) {
                    scored.push((sembed::cosine(q, v), path, id));
                }
            })?;
            if scored.len() >= k || n as u64 >= total {
                scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
                scored.truncate(k);
                let ids: Vec<i64> = scored.iter().map(|s| s.2).collect();
                let mut details = self.details(&ids)?;
                let mut hits = Vec::with_capacity(scored.len());
                for (score, path, id) in scored {
                    // (Missing only if another process deleted it since.)
                    if let Some(mut h) = details.remove(&id) {
                        h.path = path;
                        h.score = score;
                        h.cosine = Some(score);
                        hits.push(h);
                    }
                }
                return Ok(hits);
            }
            n = n.saturating_mul(8);
        }
    }

    /// Calls `f(chunk id, document key, vector)` for each of `ids` that is a chunk of this
    /// collection (in no particular order): one query for all of them.
    fn vectors_of(&self, ids: &[i64], f: &mut VectorSink<'_>) -> Result<()> {
        let store = match &self.backend {
            Backend::Sqlite { store, .. } => store,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                for (id, key, v) in pg.borrow_mut().vectors_of(ids)? {
                    f(id, &key, &v);
                }
                return Ok(());
            }
        };
        let err = |e| store.err(e);
        let mut st = store
            .conn
            .prepare_cached(
                "SELECT c.id, d.path, v.vector FROM chunks c JOIN docs d ON d.id = c.doc
                 JOIN vectors v ON v.id = c.vector
                 WHERE c.id IN rarray(?1) AND d.collection = ?2",
            )
            .map_err(err)?;
        let mut rows = st
            .query(rusqlite::params![id_list(ids), self.collection])
            .map_err(err)?;
        let mut v = Vec::with_capacity(self.dim);
        while let Some(r) = rows.next().map_err(err)? {
            let id: i64 = r.get(0).map_err(err)?;
            let key = r.get_ref(1).and_then(|x| Ok(x.as_blob()?)).map_err(err)?;
            let blob = r.get_ref(2).and_then(|x| Ok(x.as_blob()?)).map_err(err)?;
            v.clear();
            v.extend(
                blob.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            if v.len() != self.dim {
                return Err(Error::Corrupt {
                    path: store.path.clone(),
                    reason: format!("a vector of {} dimensions, expected {}", v.len(), self.dim),
                });
            }
            f(id, key, &v);
        }
        Ok(())
    }

    /// The chunks of `ids` as hits without path or score, by id.
    fn details(&self, ids: &[i64]) -> Result<HashMap<i64, Hit>> {
        let store = match &self.backend {
            Backend::Sqlite { store, .. } => store,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => return pg.borrow_mut().details(ids),
        };
        let err = |e| store.err(e);
        let mut st = store
            .conn
            .prepare_cached(
                "SELECT id, start_line, end_line, start_byte, end_byte, text
                 FROM chunks WHERE id IN rarray(?1)",
            )
            .map_err(err)?;
        let rows = st
            .query_map(rusqlite::params![id_list(ids)], |r| {
                Ok(Hit {
                    id: r.get(0)?,
                    start_line: r.get::<_, i64>(1)? as usize,
                    end_line: r.get::<_, i64>(2)? as usize,
                    bytes: r.get::<_, i64>(3)? as usize..r.get::<_, i64>(4)? as usize,
                    text: r.get(5)?,
                    path: PathBuf::new(),
                    score: 0.0,
                    cosine: None,
                })
            })
            .map_err(err)?;
        let mut out = HashMap::with_capacity(ids.len());
        for h in rows {
            let h = h.map_err(err)?;
            out.insert(h.id, h);
        }
        Ok(out)
    }

    /// BM25 over the chunks' words: any word of the query matching, chunks with more (and rarer)
    /// ones first.
    fn lexical(&self, query: &str, scope: &Scope, k: usize) -> Result<Vec<Hit>> {
        let store = match &self.backend {
            Backend::Sqlite { store, .. } => store,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => return lexical_pg(&mut pg.borrow_mut(), query, scope, k),
        };
        let Some(q) = crate::rank::fts_query(query) else {
            return Ok(Vec::new());
        };
        let mut st = store
            .conn
            .prepare_cached(
                "SELECT d.path, c.start_line, c.end_line, c.start_byte, c.end_byte, c.text,
                        bm25(chunks_fts) AS rank, c.id
                 FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid
                 JOIN docs d ON d.id = c.doc
                 WHERE chunks_fts MATCH ?1 AND d.collection = ?2
                 ORDER BY rank, c.id LIMIT ?3",
            )
            .map_err(|e| store.err(e))?;
        let mut limit = (k * 4).max(100) as i64;
        loop {
            let rows = st
                .query_map(rusqlite::params![q, self.collection, limit], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, f64>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                })
                .map_err(|e| store.err(e))?;
            let mut hits = Vec::new();
            let mut rows_seen = 0;
            for row in rows {
                let (key, sl, el, sb, eb, text, rank, id) = row.map_err(|e| store.err(e))?;
                rows_seen += 1;
                if let Some(path) = scope.display(&key) {
                    hits.push(Hit {
                        path,
                        start_line: sl as usize,
                        end_line: el as usize,
                        bytes: sb as usize..eb as usize,
                        // FTS5's bm25() is lower-is-better: negated, higher is better.
                        score: -rank as f32,
                        cosine: None,
                        text,
                        id,
                    });
                }
            }
            if hits.len() >= k || rows_seen < limit {
                hits.truncate(k);
                return Ok(hits);
            }
            limit = limit.saturating_mul(8);
        }
    }

    /// Counts for `sembed index --stats`.
    pub fn stats(&self) -> Result<Stats> {
        match &self.backend {
            Backend::Sqlite { store, .. } => stats(store),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.borrow_mut().stats(),
        }
    }
}

impl Hit {
    /// A hit made by the caller (results of another source merged with an index's, a test): it
    /// belongs to no index ([`chunk_id`](Self::chunk_id) is -1).
    pub fn new(
        path: impl Into<PathBuf>,
        lines: (usize, usize),
        bytes: std::ops::Range<usize>,
        score: f32,
        text: impl Into<String>,
    ) -> Hit {
        Hit {
            path: path.into(),
            start_line: lines.0,
            end_line: lines.1,
            bytes,
            score,
            cosine: None,
            text: text.into(),
            id: -1,
        }
    }

    /// The chunk's row id in this index (it changes when its file is re-chunked).
    pub fn chunk_id(&self) -> i64 {
        self.id
    }
}

/// Documents to write in one transaction.
#[derive(Default)]
struct Batch {
    docs: Vec<Doc>,
    /// Documents whose content is unchanged: only their stamp.
    restamps: Vec<(i64, Stamp)>,
    /// Chunks in `docs`.
    chunks: usize,
}

impl Batch {
    fn of(doc: Doc) -> Batch {
        Batch {
            chunks: doc.chunks.len(),
            docs: vec![doc],
            restamps: Vec::new(),
        }
    }
}

/// Candidates of the int8 pass rescored exactly for `k` hits: the codes' error (about 0.002 in
/// cosine) reorders only near-ties, so a margin past `k` keeps recall at 1 in practice (measured
/// in BENCHMARKS.md on a million chunks).
fn rescore_depth(k: usize) -> usize {
    (k * 4).max(k + 64)
}

/// What [`Index::vectors_of`] calls with each chunk: its id, document key and vector.
type VectorSink<'a> = dyn FnMut(i64, &[u8], &[f32]) + 'a;

/// Chunk ids as the `rarray()` table function takes them.
fn id_list(ids: &[i64]) -> std::rc::Rc<Vec<rusqlite::types::Value>> {
    std::rc::Rc::new(ids.iter().map(|&i| i.into()).collect())
}

/// A document being indexed.
struct Doc {
    key: Vec<u8>,
    stamp: Stamp,
    hash: [u8; 32],
    /// The chunker's key, or [`BINARY`].
    chunker: String,
    text: String,
    chunks: Vec<Chunk>,
    hashes: Vec<[u8; 32]>,
}

impl Doc {
    /// Its chunks as the stores write them: place, text and text hash.
    fn new_chunks(&self) -> impl Iterator<Item = NewChunk<'_>> {
        self.chunks.iter().zip(&self.hashes).map(|(c, h)| NewChunk {
            start_line: c.start_line,
            end_line: c.end_line,
            start_byte: c.bytes.start,
            end_byte: c.bytes.end,
            text: &self.text[c.bytes.clone()],
            hash: *h,
        })
    }
}

/// Whether the file an index key names is still there (a walk that did not find it had other
/// options: a glob, an ignore file, a size limit).
fn still_there(key: &[u8]) -> bool {
    std::fs::metadata(key_path(key)).is_ok_and(|m| m.is_file())
}

/// Whether process `pid` exists.
fn alive(pid: i32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// A stamp whose modification time is too recent to trust: the file may change again within the
/// same clock tick, which the next stamp would not show (git's "racy" case). Such a file is read
/// again next time (and, its content unchanged, only restamped).
fn trusted(stamp: Stamp) -> Stamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    if now - stamp.mtime_ns < 2_000_000_000 {
        Stamp {
            mtime_ns: i64::MIN,
            ..stamp
        }
    } else {
        stamp
    }
}

/// What the database holds.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// The database file.
    pub path: PathBuf,
    /// One entry per model (and options) that has been used with it.
    pub collections: Vec<CollectionStats>,
    /// Vectors no chunk uses: the embedding cache's (and those of chunks since changed).
    pub cached_vectors: u64,
    /// Their bytes.
    pub cached_bytes: u64,
    /// Bytes on disk (database, WAL, scan files).
    pub bytes: u64,
}

/// One collection's counts.
#[derive(Debug, Clone)]
pub struct CollectionStats {
    /// The model's name.
    pub model: String,
    /// Model and options.
    pub fingerprint: String,
    /// Vector width.
    pub dim: usize,
    /// Files and items.
    pub docs: u64,
    /// Their chunks.
    pub chunks: u64,
    /// Distinct vectors (chunks with the same text share one; cached texts have one each).
    pub vectors: u64,
}

pub(crate) fn stats(store: &Store) -> Result<Stats> {
    let mut st = store
        .conn
        .prepare(
            "SELECT c.model, c.fingerprint, c.dim,
                (SELECT count(*) FROM docs d WHERE d.collection = c.id),
                c.live_chunks,
                (SELECT count(*) FROM vectors v WHERE v.collection = c.id)
             FROM collections c ORDER BY c.id",
        )
        .map_err(|e| store.err(e))?;
    let collections = st
        .query_map([], |r| {
            Ok(CollectionStats {
                model: r.get(0)?,
                fingerprint: r.get(1)?,
                dim: r.get::<_, i64>(2)? as usize,
                docs: r.get::<_, i64>(3)? as u64,
                chunks: r.get::<_, i64>(4)? as u64,
                vectors: r.get::<_, i64>(5)? as u64,
            })
        })
        .map_err(|e| store.err(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| store.err(e))?;
    let (cached_vectors, cached_bytes) =
        store::unreferenced(&store.conn).map_err(|e| store.err(e))?;
    Ok(Stats {
        path: store.path.clone(),
        collections,
        cached_vectors,
        cached_bytes,
        bytes: files_of(&store.path)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum(),
    })
}

/// The database file and everything beside it that belongs to it (WAL, shared memory, scan files
/// and their locks).
pub(crate) fn files_of(db: &Path) -> Vec<PathBuf> {
    let mut out = vec![db.to_path_buf()];
    let (Some(dir), Some(name)) = (db.parent(), db.file_name()) else {
        return out;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = path_key(Path::new(name));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = path_key(Path::new(&e.file_name()));
            let rest = n.strip_prefix(&name[..]);
            if rest.is_some_and(|r| {
                r.starts_with(b"-wal") || r.starts_with(b"-shm") || r.starts_with(b".scan-")
            }) {
                out.push(e.path());
            }
        }
    }
    out
}

/// PostgreSQL's dense search: `ORDER BY embedding <=> q` candidates (HNSW, or exact with
/// `?scan=exact`), rescored with sembed's cosine and ordered as the SQLite index orders.
#[cfg(feature = "postgres")]
fn semantic_pg(
    pg: &mut crate::pg::PgStore,
    q: &[f32],
    scope: &Scope,
    k: usize,
) -> Result<Vec<Hit>> {
    let mut n = rescore_depth(k);
    loop {
        let cands = pg.nearest(q, n)?;
        let got = cands.len();
        let mut scored: Vec<(f32, PathBuf, i64)> = cands
            .iter()
            .filter_map(|(id, key, v)| scope.display(key).map(|p| (sembed::cosine(q, v), p, *id)))
            .collect();
        if scored.len() >= k || got < n {
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            scored.truncate(k);
            let ids: Vec<i64> = scored.iter().map(|s| s.2).collect();
            let mut details = pg.details(&ids)?;
            return Ok(scored
                .into_iter()
                .filter_map(|(score, path, id)| {
                    details.remove(&id).map(|h| Hit {
                        path,
                        score,
                        cosine: Some(score),
                        ..h
                    })
                })
                .collect());
        }
        n = n.saturating_mul(8);
    }
}

/// PostgreSQL's lexical search: chunks with any of the query's words, by `ts_rank_cd` over the
/// `simple` configuration (higher is better); more rows while fewer than `k` are in scope.
#[cfg(feature = "postgres")]
fn lexical_pg(
    pg: &mut crate::pg::PgStore,
    query: &str,
    scope: &Scope,
    k: usize,
) -> Result<Vec<Hit>> {
    let words: Vec<String> = crate::rank::words(query).map(str::to_string).collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let mut limit = (k * 4).max(100);
    loop {
        let rows = pg.lexical(&words, limit)?;
        let seen = rows.len();
        let mut hits: Vec<Hit> = rows
            .into_iter()
            .filter_map(|r| {
                scope.display(&r.key).map(|path| Hit {
                    path,
                    start_line: r.start_line,
                    end_line: r.end_line,
                    bytes: r.bytes,
                    score: r.rank,
                    cosine: None,
                    text: r.text,
                    id: r.id,
                })
            })
            .collect();
        if hits.len() >= k || seen < limit {
            hits.truncate(k);
            return Ok(hits);
        }
        limit = limit.saturating_mul(8);
    }
}

/// Writes documents, new stamps and deletions into PostgreSQL. Each chunk carries its vector
/// there: those embedded now (`new`), the others read from chunks of the same text.
#[cfg(feature = "postgres")]
fn write_pg(
    pg: &mut crate::pg::PgStore,
    docs: &[Doc],
    restamps: &[(i64, Stamp)],
    gone: &[i64],
    new: &HashMap<[u8; 32], &[f32]>,
) -> Result<()> {
    let old: Vec<[u8; 32]> = docs
        .iter()
        .flat_map(|d| d.hashes.iter())
        .filter(|h| !new.contains_key(*h))
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let have = if old.is_empty() {
        HashMap::new()
    } else {
        pg.vectors(&old)?
    };
    let mut rows = Vec::with_capacity(docs.len());
    for d in docs {
        let mut chunks = Vec::with_capacity(d.chunks.len());
        for chunk in d.new_chunks() {
            let h = &chunk.hash;
            let vector = match new.get(h) {
                Some(v) => *v,
                None => have
                    .get(h)
                    .map(Vec::as_slice)
                    .ok_or_else(|| Error::Remote {
                        location: pg.url.to_string(),
                        reason: "a chunk's vector disappeared during the update".into(),
                    })?,
            };
            chunks.push(crate::pg::PgChunk { chunk, vector });
        }
        rows.push(crate::pg::PgDoc {
            key: &d.key,
            stamp: d.stamp,
            hash: d.hash,
            chunker: &d.chunker,
            chunks,
        });
    }
    pg.write(&rows, restamps, gone)
}
