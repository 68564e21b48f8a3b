//! The index in PostgreSQL + pgvector (`--index postgres://…`): the same documents, chunks and
//! fingerprint rules as the SQLite index, in tables many services can query.
//!
//! Schema (version 1), every table named after `?table=NAME` (default `sembed`), one collection
//! (one model and its options) per table set:
//! - `NAME_collection`: one row — schema version, the model's fingerprint, name, dimension,
//!   whether it normalizes, the chunker version, and a generation bumped by every change. Opening
//!   it with another model or chunker is an error naming both, never mixed vectors.
//! - `NAME_docs`: the files (or items) with the stamp that tells an unchanged file without reading
//!   it, the content's sha256 and the chunker settings it was cut with (as in SQLite).
//! - `NAME_chunks`: each document's chunks in order — the text's sha256 (what tells a chunk already
//!   embedded), lines, bytes, text, `embedding vector(DIM)` (f32, exactly as computed) and a
//!   generated `tsvector` — with an HNSW index (`vector_cosine_ops`) and a GIN index over the
//!   `tsvector` for the lexical and hybrid modes.
//!
//! An update is one transaction (and holds a transaction-level advisory lock on the table set, so
//! two updaters queue): a killed run leaves the previous state. Queries are `ORDER BY embedding <=>
//! $1 LIMIT n` with `hnsw.ef_search` raised to the candidates wanted (or an exact scan with
//! `?scan=exact`); the candidates are rescored with sembed's own cosine, so exact results equal the
//! SQLite index's.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::ToSql;
use postgres::{Client, Config};

use crate::error::{Error, Result};
use crate::store::DocRow;
use crate::walk::Stamp;

/// The HNSW index over the chunks' vectors (`{t}`: the table prefix).
const HNSW_INDEX: &str = "CREATE INDEX IF NOT EXISTS {t}_chunks_embedding ON {t}_chunks USING hnsw (embedding vector_cosine_ops)";

/// Bumped with every change to the PostgreSQL schema.
pub const PG_SCHEMA_VERSION: i32 = 1;

/// Where a PostgreSQL index is: the libpq URL (without sembed's own parameters) and those.
#[derive(Clone)]
pub struct PgUrl {
    /// The connection settings (password included: never shown).
    config: Config,
    /// What to show of it: the URL with any password replaced by `***`.
    shown: String,
    /// The table-name prefix.
    table: String,
    /// An exact scan instead of the HNSW index.
    exact: bool,
    /// TLS wanted (`sslmode=require`, `verify-ca`, `verify-full`), and its root certificates.
    tls: Option<Option<PathBuf>>,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Whether `s` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `s` with the password of its user part, if any, replaced by `***`.
fn redact(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(auth_end);
    let tail = redact_query(tail);
    match auth.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => format!("{scheme}://{user}@{host}{tail}"),
        },
        None => format!("{scheme}://{auth}{tail}"),
    }
}

/// A query string with any `password=` value replaced by `***`.
fn redact_query(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == "password" => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl PgUrl {
    /// Parses a libpq URL with sembed's own query parameters: `table=NAME` (letters, digits and
    /// `_`, default `sembed`), `scan=hnsw|exact` (default `hnsw`) and `sslrootcert=FILE` (PEM roots
    /// for TLS; default: the Mozilla roots). The password comes from the URL, else `PGPASSWORD`,
    /// else `~/.pgpass` (or `PGPASSFILE`).
    ///
    /// ```
    /// let u = sembed_index::PgUrl::parse("postgresql://me:secret@db.example/search?table=notes").unwrap();
    /// assert_eq!(u.to_string(), "postgresql://me:***@db.example/search?table=notes");
    /// assert_eq!(u.table(), "notes");
    /// ```
    pub fn parse(url: &str) -> Result<PgUrl> {
        let shown = redact(url);
        let bad = |reason: String| Error::Invalid(format!("{shown}: {reason}"));
        if !is_postgres_url(url) {
            return Err(bad("not a postgres:// or postgresql:// URL".into()));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut table = "sembed".to_string();
        let mut exact = false;
        let mut rootcert = None;
        let mut sslmode = None;
        let mut rest = Vec::new();
        for p in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            match k {
                "table" => table = percent_decode(v),
                "scan" => {
                    exact = match v {
                        "exact" => true,
                        "hnsw" => false,
                        _ => return Err(bad(format!("scan={v}: use scan=hnsw or scan=exact"))),
                    }
                }
                "sslrootcert" => rootcert = Some(PathBuf::from(percent_decode(v))),
                "sslmode" => {
                    sslmode = Some(v.to_string());
                    // The postgres crate knows disable, prefer and require; verification is ours.
                    let m = if v.starts_with("verify") {
                        "require"
                    } else {
                        v
                    };
                    rest.push(format!("sslmode={m}"));
                }
                _ => rest.push(p.to_string()),
            }
        }
        let valid = !table.is_empty()
            && table.len() <= 40
            && table.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && table
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(bad(format!(
                "table={table}: a table name is 1-40 lowercase letters, digits and _, not starting \
                 with a digit"
            )));
        }
        let libpq = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config: Config = libpq.parse().map_err(|e| bad(format!("{e}")))?;
        if config.get_password().is_none() {
            if let Some(p) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
                config.password(p.as_encoded_bytes());
            } else if let Some(p) = pgpass(&config) {
                config.password(p);
            }
        }
        let tls = match sslmode.as_deref() {
            Some("require" | "verify-ca" | "verify-full") => Some(rootcert),
            _ => None,
        };
        Ok(PgUrl {
            config,
            shown,
            table,
            exact,
            tls,
        })
    }

    /// The table-name prefix.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn connect(&self) -> Result<Client> {
        let r = match &self.tls {
            None => self.config.connect(postgres::NoTls),
            Some(roots) => {
                let tls = tls_connector(roots.as_deref()).map_err(|r| self.err_msg(r))?;
                self.config.connect(tls)
            }
        };
        r.map_err(|e| self.err(e))
    }

    /// A PostgreSQL error as ours, on one line, naming the URL without its password.
    fn err(&self, e: postgres::Error) -> Error {
        self.err_msg(pg_message(&e))
    }

    fn err_msg(&self, reason: String) -> Error {
        Error::Remote {
            location: self.shown.clone(),
            reason,
        }
    }
}

/// The server's own message when there is one (`password authentication failed for user "x"`),
/// else the client's with its cause, on one line.
fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        };
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let m = c.to_string();
        if !s.contains(&m) {
            s = format!("{s}: {m}");
        }
        src = c.source();
    }
    s.replace('\n', " ")
}

fn tls_connector(
    roots: Option<&Path>,
) -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut added = 0;
            for cert in rustls_pemfile_certs(&pem) {
                store
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("{}: no PEM certificate in it", path.display()));
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(|c| c.ok())
        .collect()
}

/// The password `~/.pgpass` (or `$PGPASSFILE`) gives for this host, port, database and user
/// (`host:port:db:user:password`, `*` matching anything, `\:` and `\\` escaped; a Unix socket
/// matches `localhost`).
fn pgpass(config: &Config) -> Option<String> {
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default().to_string();
    let db = config.get_dbname().unwrap_or(&user).to_string();
    let want = [host, port, db, user];
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        if fields[..4]
            .iter()
            .zip(&want)
            .all(|(f, w)| f == "*" || f == w)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap_or(&mut String::new()).push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => {
                if let Some(l) = out.last_mut() {
                    l.push(c)
                }
            }
        }
    }
    out
}

/// A chunk with its document's key and its vector: `(chunk id, document key, vector)`.
pub(crate) type Candidate = (i64, Vec<u8>, Vec<f32>);

/// A connection to one collection's tables.
pub(crate) struct PgStore {
    client: Client,
    pub url: PgUrl,
    dim: usize,
    /// Inside an update's transaction.
    in_tx: bool,
    /// The HNSW index was dropped at the start of this transaction (the table was empty: building
    /// it once at the end is ~2.5x faster than inserting every row into it, measured in
    /// BENCHMARKS.md) and is made again before the commit.
    rebuild_hnsw: bool,
    t: String,
}

/// A chunk as written: its row in `NAME_chunks` (the SQLite store's chunk, with its vector).
pub(crate) struct PgChunk<'a> {
    pub chunk: crate::store::NewChunk<'a>,
    pub vector: &'a [f32],
}

/// A document as written: its row in `NAME_docs` and its chunks.
pub(crate) struct PgDoc<'a> {
    pub key: &'a [u8],
    pub stamp: Stamp,
    pub hash: [u8; 32],
    pub chunker: &'a str,
    pub chunks: Vec<PgChunk<'a>>,
}

/// A lexical match.
pub(crate) struct LexRow {
    pub key: Vec<u8>,
    pub start_line: usize,
    pub end_line: usize,
    pub bytes: std::ops::Range<usize>,
    pub text: String,
    pub rank: f32,
    pub id: i64,
}

/// What the collection row records.
pub(crate) struct Meta<'a> {
    pub fingerprint: &'a str,
    pub model: &'a str,
    pub dim: usize,
    pub normalized: bool,
}

impl PgStore {
    /// Connects and creates the schema if it is not there, or checks that it holds this
    /// collection.
    pub fn open(url: &PgUrl, meta: &Meta<'_>) -> Result<PgStore> {
        let client = url.connect()?;
        let t = url.table.clone();
        let mut s = PgStore {
            client,
            url: url.clone(),
            dim: meta.dim,
            in_tx: false,
            rebuild_hnsw: false,
            t,
        };
        s.create(meta)?;
        Ok(s)
    }

    fn create(&mut self, meta: &Meta<'_>) -> Result<()> {
        let t = self.t.clone();
        let dim = meta.dim;
        let chunker = crate::chunk::CHUNKER_VERSION as i32;
        let mut tx = self.client.transaction().map_err(|e| self.url.err(e))?;
        // Two processes creating the same tables at once: the second waits for the first.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("sembed:{t}")],
        )
        .map_err(|e| self.url.err(e))?;
        let exists: bool = tx
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{t}_collection")],
            )
            .map_err(|e| self.url.err(e))?
            .get(0);
        if !exists {
            let has_vector: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')",
                    &[],
                )
                .map_err(|e| self.url.err(e))?
                .get(0);
            if !has_vector {
                tx.batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
                    .map_err(|e| {
                        self.url.err_msg(format!(
                        "the pgvector extension is not enabled in this database and could not be \
                         ({}); run CREATE EXTENSION vector as its owner",
                        pg_message(&e)
                    ))
                    })?;
            }
            let schema = format!(
                "CREATE TABLE {t}_collection (
                    one boolean PRIMARY KEY DEFAULT true CHECK (one),
                    schema_version integer NOT NULL,
                    fingerprint text NOT NULL,
                    model text NOT NULL,
                    dim integer NOT NULL,
                    normalized boolean NOT NULL,
                    chunker_version integer NOT NULL,
                    generation bigint NOT NULL DEFAULT 0
                );
                CREATE TABLE {t}_docs (
                    id bigserial PRIMARY KEY,
                    path bytea NOT NULL UNIQUE,
                    size bigint NOT NULL,
                    mtime_ns bigint NOT NULL,
                    inode bigint NOT NULL,
                    dev bigint NOT NULL,
                    hash bytea NOT NULL,
                    chunker text NOT NULL
                );
                CREATE TABLE {t}_chunks (
                    id bigserial PRIMARY KEY,
                    doc bigint NOT NULL REFERENCES {t}_docs (id) ON DELETE CASCADE,
                    ord integer NOT NULL,
                    hash bytea NOT NULL,
                    start_line integer NOT NULL,
                    end_line integer NOT NULL,
                    start_byte bigint NOT NULL,
                    end_byte bigint NOT NULL,
                    text text NOT NULL,
                    embedding vector({dim}) NOT NULL,
                    tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
                    UNIQUE (doc, ord)
                );
                CREATE INDEX {t}_chunks_hash ON {t}_chunks (hash);
                CREATE INDEX {t}_chunks_tsv ON {t}_chunks USING gin (tsv);
                {}",
                HNSW_INDEX.replace("{t}", &t)
            );
            tx.batch_execute(&schema).map_err(|e| self.url.err(e))?;
            tx.execute(
                &format!(
                    "INSERT INTO {t}_collection (schema_version, fingerprint, model, dim, normalized,
                     chunker_version) VALUES ($1, $2, $3, $4, $5, $6)"
                ),
                &[
                    &PG_SCHEMA_VERSION,
                    &meta.fingerprint,
                    &meta.model,
                    &(dim as i32),
                    &meta.normalized,
                    &chunker,
                ],
            )
            .map_err(|e| self.url.err(e))?;
        }
        let row = tx
            .query_opt(
                &format!(
                    "SELECT schema_version, fingerprint, model, dim, normalized, chunker_version
                     FROM {t}_collection"
                ),
                &[],
            )
            .map_err(|e| self.url.err(e))?;
        tx.commit().map_err(|e| self.url.err(e))?;
        let Some(row) = row else {
            return Err(self.url.err_msg(format!(
                "{t}_collection is empty: not a sembed index (drop the {t}_* tables, or choose \
                 another ?table=)"
            )));
        };
        let (version, fp, model, stored_dim, normalized, stored_chunker): (
            i32,
            String,
            String,
            i32,
            bool,
            i32,
        ) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        );
        let mismatch = if version != PG_SCHEMA_VERSION {
            Some(format!(
                "schema version {version}; this sembed reads version {PG_SCHEMA_VERSION}"
            ))
        } else if fp != meta.fingerprint
            || stored_dim as usize != dim
            || normalized != meta.normalized
        {
            Some(format!(
                "vectors of {model} ({stored_dim} dimensions, fingerprint {fp}), not of {} ({dim} \
                 dimensions, fingerprint {})",
                meta.model, meta.fingerprint
            ))
        } else if stored_chunker != chunker {
            Some(format!(
                "chunks cut by chunker version {stored_chunker}; this sembed cuts with version {chunker}"
            ))
        } else {
            None
        };
        match mismatch {
            Some(m) => Err(self.url.err_msg(format!(
                "table {t} holds {m}; use another ?table=NAME, or drop it (`sembed index --clear`)"
            ))),
            None => Ok(()),
        }
    }

    /// Starts an update's transaction: later writes join it until [`end`](Self::end).
    pub fn begin(&mut self) -> Result<()> {
        if self.in_tx {
            return Ok(());
        }
        let lock = format!("sembed:{}", self.t);
        self.client
            // An update looks rows up by key only; the planner, without statistics for the rows
            // this transaction wrote, scans whole tables instead (50,000 items: 14 ms a batch for
            // the document upserts, 4 ms with the indexes).
            .batch_execute("BEGIN; SET LOCAL enable_seqscan = off")
            .and_then(|_| {
                self.client
                    .execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock])
                    .map(|_| ())
            })
            .map_err(|e| self.url.err(e))?;
        self.in_tx = true;
        // A first load: the HNSW index is built once at the end. (Dropping it locks the table
        // until the commit; with no rows, no reader misses anything.)
        let t = &self.t;
        let empty: bool = self
            .client
            .query_one(
                &format!("SELECT NOT EXISTS (SELECT 1 FROM {t}_chunks)"),
                &[],
            )
            .map_err(|e| self.url.err(e))?
            .get(0);
        if empty {
            self.client
                .batch_execute(&format!("DROP INDEX IF EXISTS {t}_chunks_embedding"))
                .map_err(|e| self.url.err(e))?;
            self.rebuild_hnsw = true;
        }
        Ok(())
    }

    /// Commits (`ok`) or rolls back the update's transaction.
    pub fn end(&mut self, ok: bool) -> Result<()> {
        if !self.in_tx {
            return Ok(());
        }
        self.in_tx = false;
        let rebuild = std::mem::take(&mut self.rebuild_hnsw);
        let sql = match (ok, rebuild) {
            (true, true) => format!("{}; COMMIT", self.hnsw_build()?),
            (true, false) => "COMMIT".into(),
            (false, _) => "ROLLBACK".into(),
        };
        self.client.batch_execute(&sql).map_err(|e| self.url.err(e))
    }

    /// The statements that build the HNSW index over the rows there are. pgvector builds it in
    /// `maintenance_work_mem` and, once the graph outgrows that, on disk, slower (50,000 chunks
    /// of 256 dimensions: 17.3 s with the default 64 MB, 10.3 s in memory); so for this
    /// transaction only it is raised to what the graph needs (about the vector and its neighbour
    /// lists a row, with room), never lowered, at most 1 GB.
    fn hnsw_build(&mut self) -> Result<String> {
        let t = &self.t;
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {t}_chunks),
                            (SELECT setting::bigint * 1024 FROM pg_settings
                             WHERE name = 'maintenance_work_mem')"
                ),
                &[],
            )
            .map_err(|e| self.url.err(e))?;
        let (rows, have): (i64, i64) = (row.get(0), row.get(1));
        let need = hnsw_build_bytes(rows as u64, self.dim as u64);
        let mut sql = String::new();
        if need > have as u64 {
            sql = format!("SET LOCAL maintenance_work_mem = '{}kB'; ", need / 1024);
        }
        sql.push_str(&HNSW_INDEX.replace("{t}", t));
        Ok(sql)
    }

    pub fn fingerprint(&mut self) -> Result<String> {
        let q = format!("SELECT fingerprint FROM {}_collection", self.t);
        let r = self
            .client
            .query_one(&q, &[])
            .map_err(|e| self.url.err(e))?;
        Ok(r.get(0))
    }

    /// The documents under any of `roots` (keys), by key.
    pub fn docs_under(&mut self, roots: &[Vec<u8>]) -> Result<HashMap<Vec<u8>, DocRow>> {
        let q = format!(
            "SELECT {DOC_COLUMNS} FROM {}_docs WHERE path >= $1 AND path < $2",
            self.t
        );
        let st = self.client.prepare(&q).map_err(|e| self.url.err(e))?;
        let mut out = HashMap::new();
        for root in roots {
            let mut hi = root.clone();
            hi.push(0xff);
            let rows = self
                .client
                .query(&st, &[root, &hi])
                .map_err(|e| self.url.err(e))?;
            out.extend(
                rows.iter()
                    .map(doc_row)
                    .filter(|(key, _)| crate::store::is_under(key, root)),
            );
        }
        Ok(out)
    }

    /// The documents with exactly these keys, by key: one statement per 10,000 keys, not a
    /// round trip per key (50,000 items were 5 s of an update that way).
    pub fn docs_with_keys(&mut self, keys: &[Vec<u8>]) -> Result<HashMap<Vec<u8>, DocRow>> {
        let q = format!(
            "SELECT {DOC_COLUMNS} FROM {}_docs WHERE path = ANY($1)",
            self.t
        );
        let mut out = HashMap::with_capacity(keys.len());
        for part in keys.chunks(10_000) {
            let rows = self
                .client
                .query(&q, &[&part])
                .map_err(|e| self.url.err(e))?;
            out.extend(rows.iter().map(doc_row));
        }
        Ok(out)
    }

    /// Which of `hashes` no chunk has yet.
    pub fn missing(&mut self, hashes: &[[u8; 32]]) -> Result<HashSet<[u8; 32]>> {
        let want: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        let q = format!(
            "SELECT DISTINCT hash FROM {}_chunks WHERE hash = ANY($1)",
            self.t
        );
        let rows = self
            .client
            .query(&q, &[&want])
            .map_err(|e| self.url.err(e))?;
        let have: HashSet<[u8; 32]> = rows
            .iter()
            .map(|r| crate::store::hash32(r.get::<_, &[u8]>(0)))
            .collect();
        Ok(hashes
            .iter()
            .filter(|h| !have.contains(*h))
            .copied()
            .collect())
    }

    /// The vector of each of `hashes` some chunk has.
    pub fn vectors(&mut self, hashes: &[[u8; 32]]) -> Result<HashMap<[u8; 32], Vec<f32>>> {
        let want: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
        let q = format!(
            "SELECT DISTINCT ON (hash) hash, embedding FROM {}_chunks WHERE hash = ANY($1)",
            self.t
        );
        let rows = self
            .client
            .query(&q, &[&want])
            .map_err(|e| self.url.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let v: pgvector::Vector = r.get(1);
                (crate::store::hash32(r.get::<_, &[u8]>(0)), v.to_vec())
            })
            .collect())
    }

    /// Writes documents (replacing their chunks), new stamps and deletions; in the update's
    /// transaction, else in one of its own.
    pub fn write(
        &mut self,
        docs: &[PgDoc<'_>],
        restamps: &[(i64, Stamp)],
        gone: &[i64],
    ) -> Result<()> {
        let own = !self.in_tx;
        if own {
            self.begin()?;
        }
        let r = self.write_in_tx(docs, restamps, gone);
        if own {
            self.end(r.is_ok())?;
        }
        r
    }

    fn write_in_tx(
        &mut self,
        docs: &[PgDoc<'_>],
        restamps: &[(i64, Stamp)],
        gone: &[i64],
    ) -> Result<()> {
        let t = &self.t;
        let c = &mut self.client;
        let url = &self.url;
        let changed = !gone.is_empty() || !docs.is_empty();
        // Documents upserted 256 to a statement (few round trips), their old chunks deleted.
        let mut ids: HashMap<&[u8], i64> = HashMap::with_capacity(docs.len());
        for part in docs.chunks(256) {
            let stamps: Vec<(i64, i64, i64, &[u8])> = part
                .iter()
                .map(|d| {
                    let s = &d.stamp;
                    (s.size as i64, s.inode as i64, s.dev as i64, &d.hash[..])
                })
                .collect();
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(part.len() * 7);
            for (d, st) in part.iter().zip(&stamps) {
                params.extend_from_slice(&[&d.key, &st.0, &d.stamp.mtime_ns, &st.1, &st.2, &st.3]);
                params.push(&d.chunker);
            }
            let rows = c
                .query(
                    &format!(
                        "INSERT INTO {t}_docs (path, size, mtime_ns, inode, dev, hash, chunker)
                         VALUES {}
                         ON CONFLICT (path) DO UPDATE SET size = excluded.size,
                           mtime_ns = excluded.mtime_ns, inode = excluded.inode, dev = excluded.dev,
                           hash = excluded.hash, chunker = excluded.chunker
                         RETURNING id, path",
                        placeholders(part.len(), 7)
                    ),
                    &params,
                )
                .map_err(|e| url.err(e))?;
            let got: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            for r in &rows {
                let path: &[u8] = r.get(1);
                if let Some(d) = part.iter().find(|d| d.key == path) {
                    ids.insert(d.key, r.get(0));
                }
            }
            c.execute(
                &format!("DELETE FROM {t}_chunks WHERE doc = ANY($1)"),
                &[&got],
            )
            .map_err(|e| url.err(e))?;
        }
        let mut rows: Vec<(i64, i32, &PgChunk<'_>)> = Vec::new();
        for d in docs {
            let id = *ids.get(d.key).ok_or_else(|| {
                url.err_msg("a document's row was not returned by its upsert".into())
            })?;
            rows.extend(
                d.chunks
                    .iter()
                    .enumerate()
                    .map(|(i, ch)| (id, i as i32, ch)),
            );
        }
        insert_chunks(c, url, t, self.dim, &rows)?;
        if !restamps.is_empty() {
            let st = c
                .prepare(&format!(
                    "UPDATE {t}_docs SET size = $2, mtime_ns = $3, inode = $4, dev = $5 WHERE id = $1"
                ))
                .map_err(|e| url.err(e))?;
            for (id, s) in restamps {
                c.execute(
                    &st,
                    &[
                        id,
                        &(s.size as i64),
                        &s.mtime_ns,
                        &(s.inode as i64),
                        &(s.dev as i64),
                    ],
                )
                .map_err(|e| url.err(e))?;
            }
        }
        if !gone.is_empty() {
            c.execute(
                &format!("DELETE FROM {t}_docs WHERE id = ANY($1)"),
                &[&gone],
            )
            .map_err(|e| url.err(e))?;
        }
        if changed {
            c.execute(
                &format!("UPDATE {t}_collection SET generation = generation + 1"),
                &[],
            )
            .map_err(|e| url.err(e))?;
        }
        Ok(())
    }

    /// The best `n` chunks by cosine distance: `(id, document key, vector)`, in the index's order
    /// (HNSW: approximate).
    pub fn nearest(&mut self, q: &[f32], n: usize) -> Result<Vec<Candidate>> {
        let t = &self.t;
        let exact = self.url.exact;
        let url = &self.url;
        let mut tx = self.client.transaction().map_err(|e| url.err(e))?;
        if exact {
            // No index: every row's distance, sorted (what the SQLite index's rescoring gives).
            tx.batch_execute("SET LOCAL enable_indexscan = off")
                .map_err(|e| url.err(e))?;
        } else {
            // ef_search below the rows wanted caps what the HNSW scan returns.
            let ef = n.clamp(40, 1000);
            tx.batch_execute(&format!(
                "SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order"
            ))
            .map_err(|e| url.err(e))?;
        }
        let qv = pgvector::Vector::from(q.to_vec());
        let rows = tx
            .query(
                &format!(
                    "SELECT c.id, d.path, c.embedding FROM {t}_chunks c JOIN {t}_docs d ON d.id = c.doc
                     ORDER BY c.embedding <=> $1 LIMIT $2"
                ),
                &[&qv, &(n as i64)],
            )
            .map_err(|e| url.err(e))?;
        tx.commit().map_err(|e| url.err(e))?;
        let dim = self.dim;
        rows.iter()
            .map(|r| {
                let v: pgvector::Vector = r.get(2);
                let v = v.to_vec();
                if v.len() != dim {
                    return Err(url.err_msg(format!(
                        "a vector of {} dimensions, expected {dim}",
                        v.len()
                    )));
                }
                Ok((r.get(0), r.get(1), v))
            })
            .collect()
    }

    /// `(id, document key, vector)` of each of `ids`.
    pub fn vectors_of(&mut self, ids: &[i64]) -> Result<Vec<Candidate>> {
        let t = &self.t;
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT c.id, d.path, c.embedding FROM {t}_chunks c JOIN {t}_docs d ON d.id = c.doc
                     WHERE c.id = ANY($1)"
                ),
                &[&ids],
            )
            .map_err(|e| self.url.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let v: pgvector::Vector = r.get(2);
                (r.get(0), r.get(1), v.to_vec())
            })
            .collect())
    }

    /// What the tables hold (on this connection).
    pub fn stats(&mut self) -> Result<crate::Stats> {
        Ok(
            stats_as_index(&mut self.client, &self.url)?.unwrap_or_else(|| crate::Stats {
                path: PathBuf::from(self.url.to_string()),
                ..Default::default()
            }),
        )
    }

    /// The chunks of `ids` as hits without path or score, by id.
    pub fn details(&mut self, ids: &[i64]) -> Result<HashMap<i64, crate::Hit>> {
        let q = format!(
            "SELECT id, start_line, end_line, start_byte, end_byte, text FROM {}_chunks
             WHERE id = ANY($1)",
            self.t
        );
        let rows = self
            .client
            .query(&q, &[&ids])
            .map_err(|e| self.url.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let hit = crate::Hit {
                    id,
                    start_line: r.get::<_, i32>(1) as usize,
                    end_line: r.get::<_, i32>(2) as usize,
                    bytes: r.get::<_, i64>(3) as usize..r.get::<_, i64>(4) as usize,
                    text: r.get(5),
                    path: PathBuf::new(),
                    score: 0.0,
                    cosine: None,
                };
                (id, hit)
            })
            .collect())
    }

    /// Chunks matching any of `words`, by `ts_rank_cd` (higher is better), at most `limit`.
    pub fn lexical(&mut self, words: &[String], limit: usize) -> Result<Vec<LexRow>> {
        let t = &self.t;
        // Each word a lexeme of its own (quoted: no operator in a query is ever syntax), any of
        // them matching.
        let query = words
            .iter()
            .map(|w| format!("'{}'", w.to_lowercase().replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(" | ");
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT d.path, c.start_line, c.end_line, c.start_byte, c.end_byte, c.text,
                            ts_rank_cd(c.tsv, q) AS rank, c.id
                     FROM {t}_chunks c JOIN {t}_docs d ON d.id = c.doc,
                          to_tsquery('simple', $1) q
                     WHERE c.tsv @@ q ORDER BY rank DESC, c.id LIMIT $2"
                ),
                &[&query, &(limit as i64)],
            )
            .map_err(|e| self.url.err(e))?;
        Ok(rows
            .iter()
            .map(|r| LexRow {
                key: r.get(0),
                start_line: r.get::<_, i32>(1) as usize,
                end_line: r.get::<_, i32>(2) as usize,
                bytes: r.get::<_, i64>(3) as usize..r.get::<_, i64>(4) as usize,
                text: r.get(5),
                rank: r.get(6),
                id: r.get(7),
            })
            .collect())
    }
}

/// The memory an HNSW build of `rows` vectors of `dim` dimensions wants to stay in memory: per
/// row the vector and pgvector's element with its neighbour lists (m = 16: 32 candidates on the
/// bottom layer), rounded up by half for the upper layers and allocator slack; capped at 1 GB.
fn hnsw_build_bytes(rows: u64, dim: u64) -> u64 {
    const CAP: u64 = 1 << 30;
    let per_row = dim * 4 + 1024;
    (rows * per_row * 3 / 2 + (16 << 20)).min(CAP)
}

/// What [`doc_row`] reads, in its order.
const DOC_COLUMNS: &str = "id, path, size, mtime_ns, inode, dev, hash, chunker";

/// A `NAME_docs` row ([`DOC_COLUMNS`]) by its key.
fn doc_row(r: &postgres::Row) -> (Vec<u8>, DocRow) {
    let hash: &[u8] = r.get(6);
    let row = DocRow {
        id: r.get(0),
        stamp: Stamp {
            size: r.get::<_, i64>(2) as u64,
            mtime_ns: r.get(3),
            inode: r.get::<_, i64>(4) as u64,
            dev: r.get::<_, i64>(5) as u64,
        },
        hash: crate::store::hash32(hash),
        chunker: r.get(7),
    };
    (r.get(1), row)
}

/// `($1, …, $cols), ($cols+1, …), …`: the parameters of a `rows`-row `VALUES` list.
fn placeholders(rows: usize, cols: usize) -> String {
    let row = |r: usize| {
        let p: Vec<String> = (1..=cols).map(|k| format!("${}", r * cols + k)).collect();
        format!("({})", p.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// Chunks written with one binary `COPY` per call (50,000 chunks: 2.98 s, against 4.05 s as
/// multi-row `INSERT`s of 256 rows; BENCHMARKS.md). The rows are new (`write_in_tx` deleted their
/// documents' old chunks first), so no conflict can happen.
fn insert_chunks(
    c: &mut Client,
    url: &PgUrl,
    t: &str,
    dim: usize,
    rows: &[(i64, i32, &PgChunk<'_>)],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    for (_, _, ch) in rows {
        if ch.vector.len() != dim {
            return Err(url.err_msg(format!(
                "a vector of {} dimensions for a table of {dim}",
                ch.vector.len()
            )));
        }
    }
    const COLUMNS: &str =
        "doc, ord, hash, start_line, end_line, start_byte, end_byte, text, embedding";
    // The columns' types as the server has them (`vector` has no fixed OID).
    let types: Vec<postgres::types::Type> = c
        .prepare(&format!("SELECT {COLUMNS} FROM {t}_chunks LIMIT 0"))
        .map_err(|e| url.err(e))?
        .columns()
        .iter()
        .map(|col| col.type_().clone())
        .collect();
    let sink = c
        .copy_in(&format!(
            "COPY {t}_chunks ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .map_err(|e| url.err(e))?;
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for (doc, ord, PgChunk { chunk: ch, vector }) in rows {
        let v = pgvector::Vector::from(vector.to_vec());
        w.write(&[
            doc,
            ord,
            &ch.hash.as_slice(),
            &(ch.start_line as i32),
            &(ch.end_line as i32),
            &(ch.start_byte as i64),
            &(ch.end_byte as i64),
            &ch.text,
            &v,
        ])
        .map_err(|e| url.err(e))?;
    }
    w.finish().map_err(|e| url.err(e))?;
    Ok(())
}

/// The collection's counts, and the bytes of its tables and indexes; `None` if the tables are not
/// there.
fn stats_of(c: &mut Client, url: &PgUrl) -> Result<Option<(crate::CollectionStats, u64)>> {
    let t = &url.table;
    let exists: bool = c
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{t}_collection")],
        )
        .map_err(|e| url.err(e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let r = c
        .query_one(
            &format!(
                "SELECT model, fingerprint, dim,
                    (SELECT count(*) FROM {t}_docs), (SELECT count(*) FROM {t}_chunks),
                    (SELECT count(DISTINCT hash) FROM {t}_chunks),
                    (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                     WHERE c.relname IN ('{t}_collection', '{t}_docs', '{t}_chunks'))
                 FROM {t}_collection"
            ),
            &[],
        )
        .map_err(|e| url.err(e))?;
    Ok(Some((
        crate::CollectionStats {
            model: r.get(0),
            fingerprint: r.get(1),
            dim: r.get::<_, i32>(2) as usize,
            docs: r.get::<_, i64>(3) as u64,
            chunks: r.get::<_, i64>(4) as u64,
            vectors: r.get::<_, i64>(5) as u64,
        },
        r.get::<_, i64>(6) as u64,
    )))
}

/// What a PostgreSQL index holds (`None`: no sembed tables of that name), for `sembed index
/// --stats` without a model.
pub fn pg_stats(url: &PgUrl) -> Result<Option<crate::Stats>> {
    stats_as_index(&mut url.connect()?, url)
}

fn stats_as_index(c: &mut Client, url: &PgUrl) -> Result<Option<crate::Stats>> {
    Ok(stats_of(c, url)?.map(|(cs, bytes)| crate::Stats {
        path: PathBuf::from(url.to_string()),
        collections: vec![cs],
        cached_vectors: 0,
        cached_bytes: 0,
        bytes,
    }))
}

/// Drops a PostgreSQL index's tables; returns whether there were any.
pub fn pg_drop(url: &PgUrl) -> Result<bool> {
    let mut c = url.connect()?;
    let t = &url.table;
    let existed = stats_of(&mut c, url)?.is_some();
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS {t}_chunks; DROP TABLE IF EXISTS {t}_docs;
         DROP TABLE IF EXISTS {t}_collection;"
    ))
    .map_err(|e| url.err(e))?;
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hnsw_build_memory_grows_with_the_rows_up_to_a_cap() {
        // 50,000 rows of 256 dimensions: the 64 MB default is too small, 1 GB more than needed.
        let b = hnsw_build_bytes(50_000, 256);
        assert!(b > 64 << 20 && b < 512 << 20, "{b}");
        assert!(hnsw_build_bytes(100_000, 256) > b);
        assert_eq!(hnsw_build_bytes(10_000_000, 1024), 1 << 30);
    }

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            redact("postgres://u:hunter2@h:5432/db?table=x"),
            "postgres://u:***@h:5432/db?table=x"
        );
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
        assert_eq!(
            redact("postgresql:///db?host=/s&password=hunter2"),
            "postgresql:///db?host=/s&password=***"
        );
        let u =
            PgUrl::parse("postgresql://u:hunter2@/db?host=/tmp/s&table=notes&scan=exact").unwrap();
        assert_eq!(u.table(), "notes");
        assert!(u.exact);
        assert!(!format!("{u} {u:?}").contains("hunter2"));
    }

    #[test]
    fn bad_urls_are_one_line_errors_without_the_password() {
        for bad in [
            "postgres://u:hunter2@h/db?table=Robert'); DROP TABLE x;--",
            "postgres://u:hunter2@h/db?scan=fast",
            "postgres://u:hunter2@h/db?table=",
            "postgres://u:hunter2@h/db?nonsense=1",
            "mysql://u:hunter2@h/db",
        ] {
            let e = PgUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        assert_eq!(
            split_pgpass(r"h\:1:5432:*:me:pa\:ss:word"),
            vec!["h:1", "5432", "*", "me", "pa:ss:word"]
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pgpass");
        std::fs::write(
            &f,
            "# comment\nother:*:*:*:no\nlocalhost:5432:db:me:from-file\n",
        )
        .unwrap();
        // SAFETY: no other thread of this test binary reads PGPASSFILE or PGPASSWORD.
        unsafe {
            std::env::set_var("PGPASSFILE", &f);
            std::env::remove_var("PGPASSWORD");
        }
        let u = PgUrl::parse("postgresql://me@/db?host=/tmp/sock").unwrap();
        assert_eq!(u.config.get_password(), Some(&b"from-file"[..]));
        let u = PgUrl::parse("postgresql://me:given@/db?host=/tmp/sock").unwrap();
        assert_eq!(u.config.get_password(), Some(&b"given"[..]));
        unsafe { std::env::remove_var("PGPASSFILE") };
    }
}
