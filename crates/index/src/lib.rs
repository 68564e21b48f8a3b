//! Semantic search over files for sembed, on the engine's API.
//!
//! The stages, one module each: [`walk`] finds files as ripgrep does (`.gitignore`, hidden files,
//! globs, binary and size rules) → [`chunk`] cuts each into pieces that fit the model in tokens →
//! [`Index`] embeds the pieces it has not seen (keyed by the model's fingerprint, the chunker
//! version and each piece's sha256) into one SQLite database → a search ranks them by cosine
//! similarity (an int8 first pass over a memory-mapped scan file, rescored exactly), BM25
//! (SQLite FTS5), or both fused ([`rank`]). The same database is the embedding cache of
//! `sembed embed --cache` ([`Cache`]).
//!
//! Or the same index in PostgreSQL + pgvector ([`Index::open_at`] with a `postgres://` URL, see
//! [`PgUrl`]; feature `postgres`, on by default): the same chunks and fingerprint rules, one
//! collection per table set, an HNSW index for dense search and full-text search for the lexical
//! and hybrid modes.
//!
//! ```no_run
//! use sembed_index::{Index, IndexOptions, Mode, Scope, SearchOptions, WalkOptions};
//! let model = sembed::Embedder::from_dir("models/all-MiniLM-L6-v2")?;
//! let mut index = Index::open("/tmp/notes.sqlite".as_ref(), &model, &IndexOptions::default())?;
//! let roots = vec!["notes".into()];
//! let report = index.update(&model, &roots, &WalkOptions::default(), &mut |_| {})?;
//! println!("{} chunks embedded", report.embedded);
//! let opts = SearchOptions { mode: Mode::Semantic, ..Default::default() };
//! let hits = index.search(&model, "the quarterly budget", &Scope::paths(&roots), &opts)?;
//! # Ok::<(), sembed_index::Error>(())
//! ```

#![warn(missing_docs)]

mod cache;
pub mod chunk;
mod error;
mod index;
#[cfg(feature = "postgres")]
mod pg;
pub mod rank;
mod scan;
mod store;
pub mod walk;

pub use cache::{Cache, CacheReport, clear_cache, delete_index, stats};
pub use chunk::{CHUNKER_VERSION, ChunkOptions};
pub use error::{Error, Result};
pub use index::{
    CollectionStats, Event, Hit, Index, IndexOptions, Mode, Scope, SearchOptions, Stats,
    UpdateReport,
};
#[cfg(feature = "postgres")]
pub use pg::{PG_SCHEMA_VERSION, PgUrl, is_postgres_url, pg_drop, pg_stats};
pub use store::SCHEMA_VERSION;
pub use walk::{Skipped, WalkOptions};
