//! `Index` and `EmbeddingCache`: the search index and embedding cache of `sembed index` /
//! `sembed embed --cache` (the `sembed-index` crate), on a model loaded from Python.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::PyArray2;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sembed::{EmbedOptions, Embedder};
use sembed_index::{IndexOptions, Mode, Scope, SearchOptions, UpdateReport, WalkOptions};

use crate::error;
use crate::model::{Model, matrix};

/// A search index (one SQLite file) of one model's vectors. Only what changed is embedded again.
#[pyclass(frozen, module = "sembed._sembed")]
pub struct Index {
    model: Arc<Embedder>,
    path: PathBuf,
    inner: Mutex<sembed_index::Index>,
}

fn report<'py>(py: Python<'py>, r: &UpdateReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("seen", r.seen)?;
    d.set_item("changed", r.changed)?;
    d.set_item("touched", r.touched)?;
    d.set_item("deleted", r.deleted)?;
    d.set_item("skipped", r.skipped.total())?;
    d.set_item("chunks", r.chunks)?;
    d.set_item("embedded", r.embedded)?;
    d.set_item("tokens", r.tokens)?;
    d.set_item("seconds", r.elapsed.as_secs_f64())?;
    Ok(d)
}

/// Runs `f` on the locked value with the GIL released. The lock is taken after the GIL is let go:
/// a thread waiting for it must not hold the GIL that the thread inside may need (for a progress
/// callback).
fn detached<T: Send, R: Send, E: Send>(
    py: Python<'_>,
    lock: &Mutex<T>,
    f: impl FnOnce(&mut T) -> Result<R, E> + Send,
    err: impl FnOnce(E) -> PyErr,
) -> PyResult<R> {
    let out = py.detach(|| match lock.lock() {
        Ok(mut guard) => Ok(f(&mut guard)),
        // A panic inside an earlier call; the SQLite transaction it was in was rolled back.
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            Ok(f(&mut guard))
        }
    });
    match out {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(err(e)),
        Err(e) => Err(e),
    }
}

#[pymethods]
impl Index {
    /// Opens (or creates) the index at `path` (an SQLite file, or a `postgres://` URL: PostgreSQL
    /// + pgvector) for `model`. `chunk_tokens` (default: what the
    /// model takes) and `overlap_tokens` set how files are cut.
    #[new]
    #[pyo3(signature = (path, model, *, chunk_tokens=None, overlap_tokens=0))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        model: PyRef<'_, Model>,
        chunk_tokens: Option<usize>,
        overlap_tokens: usize,
    ) -> PyResult<Index> {
        let embedder = model.inner.clone();
        let opts = IndexOptions {
            chunk_tokens,
            overlap_tokens,
            threads: 0,
        };
        let inner = py
            .detach(|| match path.to_str() {
                // PostgreSQL + pgvector: `postgres://…` or `postgresql://…`.
                Some(url) if sembed_index::is_postgres_url(url) => {
                    sembed_index::Index::open_at(url, &embedder, &opts)
                }
                _ => sembed_index::Index::open(&path, &embedder, &opts),
            })
            .map_err(error::index)?;
        Ok(Index {
            model: embedder,
            // A URL without its password.
            path: inner.path().to_path_buf(),
            inner: Mutex::new(inner),
        })
    }

    /// Brings the index up to date with the files under `paths` (`.gitignore` respected, as
    /// ripgrep does): unchanged files are not read, only new chunk texts are embedded, files gone
    /// are removed. Returns counts (seen, changed, deleted, chunks, embedded, ...).
    #[pyo3(signature = (paths, *, hidden=false, no_ignore=false, globs=None, max_filesize=None, follow=false, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn update<'py>(
        &self,
        py: Python<'py>,
        paths: Vec<PathBuf>,
        hidden: bool,
        no_ignore: bool,
        globs: Option<Vec<String>>,
        max_filesize: Option<u64>,
        follow: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let defaults = WalkOptions::default();
        let walk = WalkOptions {
            hidden,
            no_ignore,
            globs: globs.unwrap_or_default(),
            max_filesize: max_filesize.unwrap_or(defaults.max_filesize),
            follow,
            ..defaults
        };
        let model = &self.model;
        let r = detached(
            py,
            &self.inner,
            |index| {
                index.update(model, &paths, &walk, &mut |event| {
                    if let (Some(cb), sembed_index::Event::Indexed { files, embedded }) =
                        (&progress, event)
                    {
                        Python::attach(|py| {
                            if let Err(e) = cb.call1(py, (files, embedded)) {
                                e.print(py);
                            }
                        });
                    }
                })
            },
            error::index,
        )?;
        report(py, &r)
    }

    /// Indexes items `[(id, text), ...]` that are not files; an item whose text changed is
    /// replaced, items not given are kept.
    fn update_items<'py>(
        &self,
        py: Python<'py>,
        items: Vec<(String, String)>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let model = &self.model;
        let r = detached(
            py,
            &self.inner,
            |index| index.update_items(model, &items),
            error::index,
        )?;
        report(py, &r)
    }

    /// Removes items by id; returns how many there were.
    fn remove_items(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<usize> {
        detached(
            py,
            &self.inner,
            |index| index.remove_items(&ids),
            error::index,
        )
    }

    /// The best chunks for `query`, best first: dicts with path, start_line, end_line (1-based,
    /// inclusive), score, cosine and text. `mode` is `semantic`, `lexical` or `hybrid`; `paths`
    /// limits the search to files under them (default: every file and item in the index).
    #[pyo3(signature = (query, *, top_k=10, mode="hybrid", threshold=None, paths=None))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: String,
        top_k: usize,
        mode: &str,
        threshold: Option<f32>,
        paths: Option<Vec<PathBuf>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let mode = match mode {
            "semantic" => Mode::Semantic,
            "lexical" => Mode::Lexical,
            "hybrid" => Mode::Hybrid,
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode {other:?}: expected 'semantic', 'lexical' or 'hybrid'"
                )));
            }
        };
        let scope = match paths {
            Some(p) => Scope::paths(&p),
            None => Scope::paths(&[PathBuf::from("/")]).with_items(),
        };
        let opts = SearchOptions {
            mode,
            top: top_k,
            threshold,
        };
        let model = &self.model;
        let hits = detached(
            py,
            &self.inner,
            |index| index.search(model, &query, &scope, &opts),
            error::index,
        )?;
        hits.iter()
            .map(|h| {
                let d = PyDict::new(py);
                d.set_item("path", h.path.to_string_lossy())?;
                d.set_item("start_line", h.start_line)?;
                d.set_item("end_line", h.end_line)?;
                d.set_item("score", h.score)?;
                d.set_item("cosine", h.cosine)?;
                d.set_item("text", &h.text)?;
                Ok(d)
            })
            .collect()
    }

    /// What the database holds: its path, bytes on disk, and per collection (model and options)
    /// the documents, chunks and vector width.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = detached(py, &self.inner, |index| index.stats(), error::index)?;
        let d = PyDict::new(py);
        d.set_item("path", s.path.to_string_lossy())?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("cached_vectors", s.cached_vectors)?;
        let cols = s
            .collections
            .iter()
            .map(|c| {
                let d = PyDict::new(py);
                d.set_item("model", &c.model)?;
                d.set_item("fingerprint", &c.fingerprint)?;
                d.set_item("dim", c.dim)?;
                d.set_item("docs", c.docs)?;
                d.set_item("chunks", c.chunks)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        d.set_item("collections", cols)?;
        Ok(d)
    }

    /// The index file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }
}

/// Vectors, and (cache hits, texts embedded now).
type CachedVectors<'py> = (Bound<'py, PyArray2<f32>>, (usize, usize));

/// An embedding cache (a SQLite file) for one model and one set of options: texts embedded
/// before are looked up, the others embedded and stored.
#[pyclass(frozen, module = "sembed._sembed")]
pub struct EmbeddingCache {
    model: Arc<Embedder>,
    opts: EmbedOptions,
    inner: Mutex<sembed_index::Cache>,
}

#[pymethods]
impl EmbeddingCache {
    /// Opens (or creates) the cache at `path` for `model` with these embedding options.
    #[new]
    #[pyo3(signature = (path, model, *, normalize=None, max_length=None, truncate_dim=None, prompt=None, prompt_name=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        model: PyRef<'_, Model>,
        normalize: Option<bool>,
        max_length: Option<usize>,
        truncate_dim: Option<usize>,
        prompt: Option<String>,
        prompt_name: Option<String>,
    ) -> PyResult<EmbeddingCache> {
        let embedder = model.inner.clone();
        let opts = EmbedOptions {
            normalize,
            max_length,
            truncate_dim,
            prompt,
            prompt_name,
            ..Default::default()
        };
        let cache = py
            .detach(|| sembed_index::Cache::open(&path, &embedder, &opts))
            .map_err(error::index)?;
        Ok(EmbeddingCache {
            model: embedder,
            opts,
            inner: Mutex::new(cache),
        })
    }

    /// The vectors of `texts` (float32 `[len(texts), dim]`, as `Model.embed` gives them) and
    /// `(hits, embedded)`: how many came from the cache and how many were computed now.
    fn embed<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<CachedVectors<'py>> {
        let model = &self.model;
        let opts = &self.opts;
        let (e, r) = detached(
            py,
            &self.inner,
            |cache| cache.embed(model, &texts, opts),
            error::index,
        )?;
        Ok((matrix(py, e.dim(), e.into_vec())?, (r.hits, r.misses)))
    }

    /// Why the cache is bypassed (a static model: computing is cheaper than a lookup), if it is.
    #[getter]
    fn bypassed(&self, py: Python<'_>) -> PyResult<Option<&'static str>> {
        detached(
            py,
            &self.inner,
            |cache| Ok::<_, sembed_index::Error>(cache.bypassed()),
            error::index,
        )
    }
}
