//! `Model`: one loaded engine model (transformer or static), shared by the Python classes
//! `SentenceTransformer` and `StaticModel`.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use sembed::{EmbedOptions, Embedder, LoadOptions, Residency};

use crate::error;

/// A loaded model. Immutable and shareable between Python threads: every call takes its options.
#[pyclass(frozen, module = "sembed._sembed")]
pub struct Model {
    pub(crate) inner: Arc<Embedder>,
    /// The files of a model made in memory (by `distill`), for `save`.
    files: Option<Vec<(&'static str, Vec<u8>)>>,
}

/// `$XDG_CACHE_HOME/sembed`, else `~/.cache/sembed` (the folder the CLI uses too).
fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|c| c.join("sembed"))
}

/// Load options as the CLI sets them: `SEMBED_CPU` and `SEMBED_RESIDENT` (for benchmarking),
/// weights digests and prepared weights in the user cache folder, shared with the CLI.
fn load_options(threads: Option<usize>) -> PyResult<LoadOptions> {
    let cpu = match std::env::var("SEMBED_CPU") {
        Ok(v) => v.parse().map_err(error::engine)?,
        Err(_) => sembed::Cpu::Auto,
    };
    let residency = match std::env::var("SEMBED_RESIDENT").as_deref() {
        Ok("0") => Residency::Never,
        Ok("eager") => Residency::Eager,
        _ => Residency::Auto,
    };
    let threads = match threads {
        Some(0) => return Err(PyValueError::new_err("threads must be at least 1")),
        Some(n) => Some(sembed::ThreadPool::new(n)),
        None => None,
    };
    let cache = cache_dir();
    Ok(LoadOptions {
        cpu,
        residency,
        threads,
        digest_cache: cache.as_ref().map(|d| d.join("digests")),
        prepared: cache.map(|d| d.join("prepared")),
        ..Default::default()
    })
}

/// Per-call options, as `EmbedOptions`.
#[allow(clippy::too_many_arguments)]
fn embed_options(
    batch_size: usize,
    normalize: Option<bool>,
    max_length: Option<usize>,
    truncate: bool,
    truncate_dim: Option<usize>,
    prompt: Option<String>,
    prompt_name: Option<String>,
    threads: usize,
) -> PyResult<EmbedOptions> {
    if batch_size == 0 {
        return Err(PyValueError::new_err(format!(
            "batch_size must be a positive integer, got {batch_size}."
        )));
    }
    if truncate_dim == Some(0) {
        return Err(PyValueError::new_err("truncate_dim must be at least 1"));
    }
    Ok(EmbedOptions {
        batch_size,
        threads,
        normalize,
        max_length,
        truncate,
        truncate_dim,
        prompt_name,
        prompt,
    })
}

/// Texts per engine call in `embed` (about 4 s of all-MiniLM-L6-v2 on 2 cores): how long Ctrl-C
/// may wait. Long enough that sorting by length inside a slice loses nothing measurable.
const SLICE: usize = 2048;

/// `(input_ids, attention_mask)`, both `[texts, longest]`.
type IdsAndMask<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<i64>>);

/// `rows` row-major vectors of width `dim` as a numpy array that owns the Vec (no copy).
pub(crate) fn matrix<'py>(
    py: Python<'py>,
    dim: usize,
    data: Vec<f32>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let rows = data.len().checked_div(dim).unwrap_or(0);
    let a = Array2::from_shape_vec((rows, dim), data)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

#[pymethods]
impl Model {
    /// Loads a model by name, resolved as the CLI's `--model` is: an existing folder, `builtin`,
    /// all-MiniLM-L6-v2 (the Hugging Face cache's copy, else the built-in one), or a hub id or
    /// alias (the cache shared with Python's huggingface_hub, else downloaded). Returns the model
    /// and, when the built-in copy stands in for a hub id, that id.
    #[staticmethod]
    #[pyo3(signature = (name, *, cache_folder=None, revision=None, local_files_only=false, token=None, threads=None))]
    fn load(
        py: Python<'_>,
        name: String,
        cache_folder: Option<PathBuf>,
        revision: Option<String>,
        local_files_only: bool,
        token: Option<String>,
        threads: Option<usize>,
    ) -> PyResult<(Model, Option<String>)> {
        let opts = load_options(threads)?;
        let mut hub_opts = sembed::hub::HubOptions::from_env();
        if let Some(dir) = cache_folder {
            hub_opts.cache_dir = dir;
        }
        hub_opts.offline |= local_files_only;
        if let Some(t) = token {
            hub_opts.token = Some(t).filter(|t| !t.is_empty());
        }
        let name = match revision {
            Some(r) if !std::path::Path::new(&name).exists() && !name.contains('@') => {
                format!("{name}@{r}")
            }
            _ => name,
        };
        py.detach(|| {
            let hub = sembed::hub::Hub::new(hub_opts);
            let resolved = sembed::resolve(&name, &hub, &mut ()).map_err(error::engine)?;
            let instead_of = match &resolved {
                sembed::Resolved::Builtin {
                    instead_of: Some(id),
                } => Some(id.to_string()),
                _ => None,
            };
            let model = resolved.load(&opts).map_err(error::engine)?;
            Ok((
                Model {
                    inner: Arc::new(model),
                    files: None,
                },
                instead_of,
            ))
        })
    }

    /// Loads a model from its files in memory: `{"config.json": b"...", ...}`.
    #[staticmethod]
    #[pyo3(signature = (files, *, name=None, threads=None))]
    fn from_files(
        py: Python<'_>,
        files: Vec<(String, Vec<u8>)>,
        name: Option<String>,
        threads: Option<usize>,
    ) -> PyResult<Model> {
        let mut opts = load_options(threads)?;
        opts.name = name;
        py.detach(|| {
            let model = Embedder::from_files(files, &opts).map_err(error::engine)?;
            Ok(Model {
                inner: Arc::new(model),
                files: None,
            })
        })
    }

    /// Embeds `texts` (a list of str): a float32 array `[len(texts), dim]` in input order.
    #[pyo3(signature = (texts, *, batch_size=32, normalize=None, max_length=None, truncate=true, truncate_dim=None, prompt=None, prompt_name=None, threads=0))]
    #[allow(clippy::too_many_arguments)]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        batch_size: usize,
        normalize: Option<bool>,
        max_length: Option<usize>,
        truncate: bool,
        truncate_dim: Option<usize>,
        prompt: Option<String>,
        prompt_name: Option<String>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let opts = embed_options(
            batch_size,
            normalize,
            max_length,
            truncate,
            truncate_dim,
            prompt,
            prompt_name,
            threads,
        )?;
        let model = &self.inner;
        if texts.len() <= SLICE {
            let e = py
                .detach(|| model.embed(&texts, &opts))
                .map_err(error::engine)?;
            return matrix(py, e.dim(), e.into_vec());
        }
        // Longer inputs go in slices, with Python's signal handlers run between them: Ctrl-C stops
        // the call within one slice (the engine cannot be interrupted inside one). The slices are
        // cut from the texts ordered longest first (the engine sorts each call's texts by length for
        // its batches; pre-sorting keeps the slices from mixing lengths), and each vector is put
        // back at its text's position in one buffer, which becomes the array.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut dim = model.dim();
        let mut out: Vec<f32> = Vec::new();
        for slice in order.chunks(SLICE) {
            let part: Vec<&str> = slice.iter().map(|&i| texts[i].as_str()).collect();
            let e = py
                .detach(|| model.embed(&part, &opts))
                .map_err(error::engine)?;
            dim = e.dim();
            if out.is_empty() {
                out = vec![0.0; texts.len() * dim];
            }
            for (&i, row) in slice.iter().zip(e.rows()) {
                out[i * dim..(i + 1) * dim].copy_from_slice(row);
            }
            py.check_signals()?;
        }
        matrix(py, dim, out)
    }

    /// The encoder's last hidden states of each text's tokens (specials included): one float32
    /// array `[tokens, hidden]` per text. Transformers only.
    #[pyo3(signature = (texts, *, batch_size=32, max_length=None, truncate=true, prompt=None, prompt_name=None, threads=0))]
    #[allow(clippy::too_many_arguments)]
    fn token_embeddings<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        batch_size: usize,
        max_length: Option<usize>,
        truncate: bool,
        prompt: Option<String>,
        prompt_name: Option<String>,
        threads: usize,
    ) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
        let opts = embed_options(
            batch_size,
            None,
            max_length,
            truncate,
            None,
            prompt,
            prompt_name,
            threads,
        )?;
        let model = &self.inner;
        let t = py
            .detach(|| {
                let t = model.tokenize(&texts, &opts)?;
                model.token_embeddings(&t)
            })
            .map_err(error::engine)?;
        (0..t.len())
            .map(|i| matrix(py, t.dim(), t.get(i).to_vec()))
            .collect()
    }

    /// Token ids of each text as the model consumes them (specials included, truncated to
    /// `max_length`, no prompt unless given): `(input_ids, attention_mask)`, int64 arrays padded
    /// with 0 to the longest.
    #[pyo3(signature = (texts, *, max_length=None, prompt=None))]
    fn tokenize<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        max_length: Option<usize>,
        prompt: Option<String>,
    ) -> PyResult<IdsAndMask<'py>> {
        let opts = EmbedOptions {
            max_length,
            // An explicit empty prompt turns the model's default prompt off.
            prompt: Some(prompt.unwrap_or_default()),
            ..Default::default()
        };
        let model = &self.inner;
        let (ids, mask, width) = py
            .detach(|| {
                let ids: Vec<Vec<u32>> = texts
                    .iter()
                    .map(|t| model.token_ids(t, &opts))
                    .collect::<sembed::Result<_>>()?;
                let width = ids.iter().map(Vec::len).max().unwrap_or(0);
                let mut flat = vec![0i64; ids.len() * width];
                let mut mask = vec![0i64; ids.len() * width];
                for (r, row) in ids.iter().enumerate() {
                    for (c, &id) in row.iter().enumerate() {
                        flat[r * width + c] = i64::from(id);
                        mask[r * width + c] = 1;
                    }
                }
                Ok((flat, mask, width))
            })
            .map_err(error::engine)?;
        let rows = texts.len();
        let shape = |v: Vec<i64>| {
            Array2::from_shape_vec((rows, width), v)
                .map(|a| a.into_pyarray(py))
                .map_err(|e| PyValueError::new_err(e.to_string()))
        };
        Ok((shape(ids)?, shape(mask)?))
    }

    /// Tokens of `text` (specials included, before truncation).
    fn count_tokens(&self, py: Python<'_>, text: String) -> PyResult<usize> {
        let model = &self.inner;
        py.detach(|| model.count_tokens(&text))
            .map_err(error::engine)
    }

    /// Facts about the model as a dict: name, kind (`transformer` / `static`), architecture,
    /// layers, hidden_size, dim, max_seq_length, pooling, dense, normalize, tokenizer, prompts,
    /// default_prompt_name, weights_dtype, cpu, source.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let i = self.inner.info();
        let d = PyDict::new(py);
        d.set_item("name", &i.name)?;
        d.set_item("kind", i.kind.as_str())?;
        d.set_item("architecture", &i.architecture)?;
        d.set_item("layers", i.layers)?;
        d.set_item("hidden_size", i.hidden_size)?;
        d.set_item("dim", i.dim)?;
        d.set_item("max_seq_length", i.max_seq_length)?;
        d.set_item("pooling", i.pooling.clone())?;
        d.set_item("dense", i.dense.clone())?;
        d.set_item("normalize", i.normalize)?;
        d.set_item("tokenizer", &i.tokenizer)?;
        let prompts = PyDict::new(py);
        for (k, v) in &i.prompts {
            prompts.set_item(k, v)?;
        }
        d.set_item("prompts", prompts)?;
        d.set_item("default_prompt_name", i.default_prompt.clone())?;
        d.set_item("weights_dtype", i.weights_dtype)?;
        d.set_item("cpu", i.cpu)?;
        d.set_item("source", &i.source)?;
        Ok(d)
    }

    /// The model's fingerprint (its files' identity, see `sembed info`), as a string.
    fn fingerprint(&self, py: Python<'_>) -> PyResult<String> {
        let model = &self.inner;
        py.detach(|| model.info().fingerprint())
            .map(|f| f.to_string())
            .map_err(error::engine)
    }

    /// Threads in this model's budget.
    fn threads(&self) -> usize {
        self.inner.thread_pool().threads()
    }

    /// Distills this transformer into a Model2Vec static model (model2vec 0.10's `distill`):
    /// returns the static model, loaded from memory. `progress(done, total)` is called as the
    /// vocabulary goes through the encoder.
    #[pyo3(signature = (*, pca_dims=256, sif_coefficient=1e-4, threads=0, progress=None))]
    fn distill(
        &self,
        py: Python<'_>,
        pca_dims: usize,
        sif_coefficient: f64,
        threads: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Model> {
        let opts = sembed::DistillOptions {
            dims: pca_dims,
            sif_coefficient,
            threads,
        };
        let model = &self.inner;
        let load = load_options(None)?;
        let name = format!("{} (distilled)", model.info().name);
        py.detach(|| {
            let report = |stage: sembed::DistillStage| {
                if let (Some(cb), sembed::DistillStage::Encoding { done, total }) =
                    (&progress, stage)
                {
                    // A failing callback must not stop the work; its error is printed.
                    Python::attach(|py| {
                        if let Err(e) = cb.call1(py, (done, total)) {
                            e.print(py);
                        }
                    });
                }
            };
            let files = sembed::distill(model, &opts, report)
                .and_then(|f| f.to_files())
                .map_err(error::engine)?;
            let opts = LoadOptions {
                name: Some(name),
                ..load
            };
            let m = Embedder::from_files(files.iter().map(|(k, v)| (*k, v.clone())), &opts)
                .map_err(error::engine)?;
            Ok(Model {
                inner: Arc::new(m),
                files: Some(files),
            })
        })
    }

    /// The files of a model made in memory (by `distill`), as `{name: bytes}`; `None` for a
    /// model loaded from a folder or the built-in one.
    fn files<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(files) = &self.files else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        for (k, v) in files {
            d.set_item(k, PyBytes::new(py, v))?;
        }
        Ok(Some(d))
    }

    fn __repr__(&self) -> String {
        let i = self.inner.info();
        format!("Model({:?}, dim={}, source={:?})", i.name, i.dim, i.source)
    }
}
