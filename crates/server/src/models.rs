//! The models a server holds, and which one a request's `model` field names.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sembed::Embedder;

use crate::batcher::Batcher;
use crate::error::{ApiError, Kind};
use crate::metrics::Metrics;

/// A loaded model and the names requests may call it by.
///
/// ```no_run
/// let spec = sembed_server::ModelSpec::new(
///     "sentence-transformers/all-MiniLM-L6-v2",
///     sembed::Embedder::builtin()?,
/// )
/// .alias("all-MiniLM-L6-v2");
/// # Ok::<(), sembed::Error>(())
/// ```
pub struct ModelSpec {
    /// The name responses report (`model` in OpenAI's and Ollama's shapes, TEI's `model_id`).
    pub id: String,
    /// Other names a request may use (an alias, the name as given on the command line).
    pub aliases: Vec<String>,
    /// The model.
    pub embedder: Embedder,
    /// How long loading took (Ollama's `load_duration`).
    pub load_duration: Duration,
}

impl ModelSpec {
    /// A model called `id`.
    pub fn new(id: impl Into<String>, embedder: Embedder) -> ModelSpec {
        ModelSpec {
            id: id.into(),
            aliases: Vec::new(),
            embedder,
            load_duration: Duration::ZERO,
        }
    }

    /// One more name for it.
    pub fn alias(mut self, name: impl Into<String>) -> ModelSpec {
        self.aliases.push(name.into());
        self
    }
}

/// A model being served.
pub(crate) struct Served {
    pub id: String,
    names: Vec<String>,
    pub embedder: Arc<Embedder>,
    pub batcher: Batcher,
    pub load_duration: Duration,
    /// Ids the tokenizer can produce (token-id inputs are checked against it).
    pub vocab_size: usize,
    /// Token strings by id, made on the first `/tokenize`.
    tokens: OnceLock<Vec<String>>,
}

impl Served {
    pub(crate) fn tokens(&self) -> &[String] {
        self.tokens
            .get_or_init(|| self.embedder.tokenizer().tokens_by_id())
    }
}

/// Every model, the first being the default.
pub(crate) struct Models(Vec<Served>);

impl Models {
    pub(crate) fn start(
        specs: Vec<ModelSpec>,
        max_batch_tokens: usize,
        metrics: &Arc<Metrics>,
    ) -> Result<Models, crate::Error> {
        if specs.is_empty() {
            return Err(crate::Error::Config("no model to serve".into()));
        }
        let mut out: Vec<Served> = Vec::new();
        for spec in specs {
            let mut names = vec![spec.id.clone()];
            names.extend(spec.aliases);
            names.push(spec.embedder.info().name.clone());
            names.sort();
            names.dedup();
            for n in &names {
                if let Some(other) = out.iter().find(|s| s.names.contains(n)) {
                    return Err(crate::Error::Config(format!(
                        "two models answer to the name {n:?} ({} and {})",
                        other.id, spec.id
                    )));
                }
            }
            let embedder = Arc::new(spec.embedder);
            let vocab_size = embedder.tokenizer().vocab_size();
            let batcher = Batcher::start(Arc::clone(&embedder), max_batch_tokens, metrics.clone())
                .map_err(|source| crate::Error::Io {
                    what: "cannot start a batching thread",
                    source,
                })?;
            out.push(Served {
                id: spec.id,
                names,
                embedder,
                batcher,
                load_duration: spec.load_duration,
                vocab_size,
                tokens: OnceLock::new(),
            });
        }
        Ok(Models(out))
    }

    /// The model a request names. With one model, any name (or none) is that model, as TEI does
    /// (clients always send one); with several, a missing name is the first.
    pub(crate) fn pick(&self, name: Option<&str>) -> Result<&Served, ApiError> {
        let name = match name.map(str::trim) {
            _ if self.0.len() == 1 => return Ok(&self.0[0]),
            None | Some("") => return Ok(&self.0[0]),
            Some(n) => n,
        };
        self.0
            .iter()
            .find(|s| s.names.iter().any(|m| m == name))
            .ok_or_else(|| {
                let known: Vec<&str> = self.0.iter().map(|s| s.id.as_str()).collect();
                ApiError::new(
                    Kind::NotFound,
                    format!(
                        "model {name:?} is not served here (models: {})",
                        known.join(", ")
                    ),
                )
                .param("model")
            })
    }

    pub(crate) fn all(&self) -> &[Served] {
        &self.0
    }

    pub(crate) fn close(&self) {
        for s in &self.0 {
            s.batcher.close();
        }
    }
}
