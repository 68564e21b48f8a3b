//! The embedding cache: vectors by (model fingerprint with the call's options, sha256 of the
//! text), in the index's database — so a text embedded for `sembed embed --cache` and the same
//! chunk indexed for a search share one vector.

use std::collections::HashMap;
use std::path::Path;

use sembed::{EmbedOptions, Embedder, Embeddings, ModelKind};

use crate::error::{Error, Result};
use crate::index::{Stats, files_of, sha, stats as db_stats};
use crate::store::{self, Store};

/// What one cached call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheReport {
    /// Texts whose vector was in the cache.
    pub hits: usize,
    /// Texts embedded now.
    pub misses: usize,
    /// Texts cut to the model's limit (the cache remembers this of each text).
    pub truncated: usize,
    /// The new vectors could not be stored (the vectors returned are right all the same).
    pub write_error: Option<String>,
}

/// An open embedding cache for one model and one set of options.
///
/// ```no_run
/// let model = sembed::Embedder::from_dir("models/all-MiniLM-L6-v2")?;
/// let opts = sembed::EmbedOptions::default();
/// let mut cache = sembed_index::Cache::open("/tmp/cache.sqlite".as_ref(), &model, &opts)?;
/// let (e, report) = cache.embed(&model, &["hello", "world"], &opts)?;
/// let (again, second) = cache.embed(&model, &["hello", "world"], &opts)?;
/// assert_eq!(e, again);
/// assert_eq!(second.hits, 2);
/// # Ok::<(), sembed_index::Error>(())
/// ```
pub struct Cache {
    /// `None`: bypassed (see [`Cache::bypassed`]).
    store: Option<(Store, i64)>,
    dim: usize,
}

impl Cache {
    /// Opens (or creates) the cache in the database at `path`, for `model` with `opts`. A static
    /// (Model2Vec) model is never cached: a lookup costs more than computing its vector (see
    /// BENCHMARKS.md), so the cache is [bypassed](Self::bypassed) and `path` not even opened.
    pub fn open(path: &Path, model: &Embedder, opts: &EmbedOptions) -> Result<Cache> {
        let dim = opts.truncate_dim.unwrap_or(model.dim()).min(model.dim());
        if model.kind() == ModelKind::Static {
            return Ok(Cache { store: None, dim });
        }
        let store = Store::open(path)?;
        let fp = model.fingerprint(opts)?;
        let collection = store.collection(&fp.to_string(), &model.info().name, dim)?;
        Ok(Cache {
            store: Some((store, collection)),
            dim,
        })
    }

    /// Why the cache is not used, if it is not.
    pub fn bypassed(&self) -> Option<&'static str> {
        self.store
            .is_none()
            .then_some("a static model computes a vector faster than the cache can look one up")
    }

    /// The vectors of `texts` (as [`Embedder::embed`] gives them): those of texts cached before
    /// looked up, the others embedded together and stored.
    pub fn embed<S: AsRef<str> + Sync>(
        &mut self,
        model: &Embedder,
        texts: &[S],
        opts: &EmbedOptions,
    ) -> Result<(Embeddings, CacheReport)> {
        let Some((store, collection)) = &mut self.store else {
            let (e, r) = model.embed_with_report(texts, opts)?;
            return Ok((
                e,
                CacheReport {
                    misses: texts.len(),
                    truncated: r.truncated,
                    ..Default::default()
                },
            ));
        };
        let collection = *collection;
        let hashes: Vec<[u8; 32]> = texts.iter().map(|t| sha(t.as_ref())).collect();
        let found = store.lookup(collection, &hashes)?;
        // Each text not found embedded once, however often it occurs.
        let mut first: HashMap<[u8; 32], usize> = HashMap::new();
        let mut misses: Vec<&str> = Vec::new();
        for (i, f) in found.iter().enumerate() {
            if f.is_none() {
                first.entry(hashes[i]).or_insert_with(|| {
                    misses.push(texts[i].as_ref());
                    misses.len() - 1
                });
            }
        }
        let (computed, cut) = if misses.is_empty() {
            (Embeddings::new(self.dim, Vec::new()), Vec::new())
        } else {
            let t = model.tokenize(&misses, opts)?;
            let cut: Vec<bool> = (0..t.len()).map(|i| t.truncated(i)).collect();
            (model.embed_tokenized(&t)?, cut)
        };
        if computed.dim() != self.dim {
            return Err(Error::Corrupt {
                path: store.path.clone(),
                reason: format!(
                    "cached vectors have {} dimensions, the model gives {}",
                    self.dim,
                    computed.dim()
                ),
            });
        }
        let mut report = CacheReport::default();
        let mut data = Vec::with_capacity(texts.len() * self.dim);
        for (i, f) in found.iter().enumerate() {
            match f {
                Some((v, truncated)) if v.len() == self.dim => {
                    report.hits += 1;
                    report.truncated += usize::from(*truncated);
                    data.extend_from_slice(v);
                }
                Some(_) => {
                    return Err(Error::Corrupt {
                        path: store.path.clone(),
                        reason: format!("a cached vector is not {}-dimensional", self.dim),
                    });
                }
                None => {
                    let j = first[&hashes[i]];
                    report.misses += 1;
                    report.truncated += usize::from(cut[j]);
                    data.extend_from_slice(computed.row(j));
                }
            }
        }
        if !misses.is_empty() {
            let mut new: Vec<([u8; 32], &[f32], bool)> = Vec::with_capacity(misses.len());
            for (h, &j) in &first {
                new.push((*h, computed.row(j), cut[j]));
            }
            new.sort_by_key(|n| first[&n.0]);
            let path = store.path.clone();
            let written = store.write().and_then(|tx| {
                store::put_vectors(&tx, collection, &new)
                    .and_then(|()| tx.commit())
                    .map_err(|e| store::db(&path, e))
            });
            if let Err(e) = written {
                report.write_error = Some(e.to_string());
            }
        }
        Ok((Embeddings::new(self.dim, data), report))
    }
}

/// What the database at `path` holds (index and cache); `None` if there is none.
pub fn stats(path: &Path) -> Result<Option<Stats>> {
    if !path.exists() {
        return Ok(None);
    }
    let store = Store::open(path)?;
    db_stats(&store).map(Some)
}

/// Removes the cached vectors no index chunk uses; returns how many. The index stays as it is.
pub fn clear_cache(path: &Path) -> Result<u64> {
    if !path.exists() {
        return Ok(0);
    }
    let mut store = Store::open(path)?;
    let p = store.path.clone();
    let tx = store.write()?;
    let n = store::delete_unreferenced(&tx).map_err(|e| store::db(&p, e))?;
    tx.commit().map_err(|e| store::db(&p, e))?;
    // Give the space back to the file system.
    store
        .conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")
        .map_err(|e| store.err(e))?;
    Ok(n)
}

/// Deletes the database at `path` and everything beside it that belongs to it (index, cache,
/// scan files) — whatever state it is in, so this is also how a damaged index is started over.
/// Returns the bytes freed.
pub fn delete_index(path: &Path) -> Result<u64> {
    let mut freed = 0;
    for f in files_of(path) {
        match std::fs::symlink_metadata(&f) {
            Ok(m) if m.is_file() => {
                std::fs::remove_file(&f).map_err(|e| Error::io(&f, e))?;
                freed += m.len();
            }
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{} is not a regular file; not deleting it",
                    f.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&f, e)),
        }
    }
    Ok(freed)
}
