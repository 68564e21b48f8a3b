//! A loaded sentence-transformers model and the [`Embedder`] that runs it:
//! text → tokenizer → encoder → pooling → dense → normalize.
//!
//! Loading reads `modules.json` and picks the path: `transformer.rs` (Transformer → Pooling →
//! optional Dense → optional Normalize: `config.json`, `tokenizer.json`, memory-mapped
//! `model.safetensors`) or `static_lookup.rs` (Model2Vec). This file holds what both share: the
//! options, the model facts, the post-processing of vectors, and dispatch. One `Embedder` loads once
//! and embeds many times, from any number of threads.

mod static_lookup;
mod transformer;

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, OnceLock};

use crate::bert::{ResidentLayers, Workspace};
use crate::config::{ModuleEntry, SentenceTransformersConfig};
use crate::dense::Dense;
use crate::embeddings::Embeddings;
use crate::error::{Error, Result};
use crate::normalize::l2_normalize;
use crate::pool::Pooling;
use crate::source::Source;
use crate::tokenize::{Scratch, Tokenizer};
use crate::weights::Prefetch;
use static_lookup::StaticPipeline;
use transformer::{Encoder, Head};

/// Options for one [`Embedder::embed`] call. `Default` gives sentence-transformers' behaviour.
///
/// ```
/// let opts = sembed::EmbedOptions { threads: 1, ..Default::default() };
/// assert_eq!(opts.batch_size, 32);
/// ```
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// Sequences per forward pass (default 32, as in sentence-transformers).
    pub batch_size: usize,
    /// Worker threads; 0 means all available cores. Batches are spread over threads; one short text
    /// splits its matrix products over a small pool kept by the `Embedder`.
    pub threads: usize,
    /// `Some(true)`/`Some(false)` forces L2 normalization on/off; `None` follows the model's modules.
    pub normalize: Option<bool>,
    /// Truncation length in tokens (specials included); `None` uses the model's `max_seq_length`.
    pub max_length: Option<usize>,
    /// Cut over-long texts (the default, as sentence-transformers does); `false` makes an over-long
    /// text an [`Error::TooLong`] instead.
    pub truncate: bool,
    /// Keep only the first N dimensions (Matryoshka), as sentence-transformers' `truncate_dim`: applied
    /// after the model's own modules (its Normalize included); `normalize: Some(true)` normalizes
    /// again after the cut.
    pub truncate_dim: Option<usize>,
    /// A prompt by name from the model's `config_sentence_transformers.json` (e.g. `query`).
    pub prompt_name: Option<String>,
    /// A literal prompt prepended to every text; takes precedence over `prompt_name`. Without
    /// either, the model's `default_prompt_name` applies, as in sentence-transformers.
    pub prompt: Option<String>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            batch_size: 32,
            threads: 0,
            normalize: None,
            max_length: None,
            truncate: true,
            truncate_dim: None,
            prompt_name: None,
            prompt: None,
        }
    }
}

/// What happened during an [`Embedder::embed_with_report`] call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedReport {
    /// Texts cut to the token limit (or, for Model2Vec models, to the character pre-cut).
    pub truncated: usize,
}

/// What `sembed info` reports about a model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Display name.
    pub name: String,
    /// e.g. `BertModel`.
    pub architecture: String,
    /// Encoder layers.
    pub layers: usize,
    /// Width of token states.
    pub hidden_size: usize,
    /// Width of the output vectors.
    pub dim: usize,
    /// Truncation length in tokens, specials included (`None`: a static model without a limit).
    pub max_seq_length: Option<usize>,
    /// Pooling modes in output order.
    pub pooling: Vec<&'static str>,
    /// Dense layers as `(in, out)`.
    pub dense: Vec<(usize, usize)>,
    /// Whether the model ends with a Normalize module.
    pub normalize: bool,
    /// Tokenizer description.
    pub tokenizer: String,
    /// Named prompts (`config_sentence_transformers.json`), and the default one's name.
    pub prompts: Vec<(String, String)>,
    /// The prompt used when none is named.
    pub default_prompt: Option<String>,
    /// Storage dtype of the weights.
    pub weights_dtype: &'static str,
    /// Where the files came from.
    pub source: String,
}

/// A sentence-transformers model ready to embed text.
///
/// Load once, embed many times (`Embedder` is `Sync`: share it between threads). Weights are used in
/// place from the mapped file (or the executable); a model that has run 64 times, or is given
/// 16,384 tokens at once, copies its encoder layers into huge pages packed for a faster kernel
/// (tens of milliseconds once; vectors agree to within 1e-5), so a one-shot run never pays for that.
///
/// ```no_run
/// use sembed::{Embedder, EmbedOptions};
/// let model = Embedder::from_dir("models/all-MiniLM-L6-v2")?;
/// let e = model.embed(&["A man is playing a guitar.", "Someone plays music."], &EmbedOptions::default())?;
/// println!("{}", sembed::cosine(e.row(0), e.row(1)));
/// # Ok::<(), sembed::Error>(())
/// ```
pub struct Embedder {
    // Declared before `backend` so it is dropped (its thread joined) before the mapping. Taken
    // (joined) early when the weights are copied to huge pages.
    prefetch: Mutex<Option<Prefetch>>,
    backend: Backend,
    tokenizer: Tokenizer,
    normalize: bool,
    info: ModelInfo,
    /// Where the files came from, and the tokenizer.json path in it (re-read by distillation).
    #[cfg_attr(not(feature = "distill"), allow(dead_code))]
    src: Source,
    #[cfg_attr(not(feature = "distill"), allow(dead_code))]
    tokenizer_file: String,
    workspaces: Mutex<Vec<Workspace>>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What runs between the tokenizer and the output.
enum Backend {
    /// A transformer encoder, then sentence-transformers' pooling / dense modules.
    Transformer {
        encoder: Encoder,
        /// The encoder's layers over huge pages, made once they pay off (`resident_layers`).
        resident: OnceLock<Option<ResidentLayers>>,
        /// Encoder runs so far (what decides when the copy pays for itself).
        runs: AtomicUsize,
        pooling: Pooling,
        dense: Vec<Dense>,
        do_lower_case: bool,
        prompts: SentenceTransformersConfig,
    },
    /// A Model2Vec table lookup.
    Static(StaticPipeline),
}

/// After the model's modules: sentence-transformers' `encode()` order — the model's Normalize module
/// (unless switched off), then `truncate_dim`, then `normalize_embeddings`.
#[derive(Debug, Clone, Copy)]
struct Post {
    /// Leading tokens left out of pooling: the prompt's, when the pooling has `include_prompt: false`.
    skip_tokens: usize,
    module_normalize: bool,
    truncate_dim: Option<usize>,
    force_normalize: bool,
}

impl Post {
    /// `dim`: the model's output width.
    fn new(opts: &EmbedOptions, model_normalizes: bool, dim: usize) -> Result<Self> {
        if let Some(t) = opts.truncate_dim
            && (t == 0 || t > dim)
        {
            return Err(Error::InvalidOption(format!(
                "truncate dim {t} is outside 1..={dim}"
            )));
        }
        Ok(Post {
            skip_tokens: 0,
            module_normalize: model_normalizes && opts.normalize != Some(false),
            truncate_dim: opts.truncate_dim,
            force_normalize: opts.normalize == Some(true),
        })
    }

    fn out_dim(&self, dim: usize) -> usize {
        self.truncate_dim.unwrap_or(dim)
    }

    /// Applies to `x` (`[n, dim]`), returning `[n, out_dim]`; `normalize` is the model's own
    /// normalization (L2 for transformers, model2vec's for static models), `None` when the caller
    /// already applied it row by row.
    fn apply(&self, mut x: Vec<f32>, dim: usize, normalize: Option<fn(&mut [f32])>) -> Vec<f32> {
        if let (true, Some(normalize)) = (self.module_normalize, normalize) {
            x.chunks_exact_mut(dim).for_each(normalize);
        }
        if let Some(t) = self.truncate_dim.filter(|&t| t < dim) {
            x = x
                .chunks_exact(dim)
                .flat_map(|r| r[..t].iter().copied())
                .collect();
        }
        if self.force_normalize {
            x.chunks_exact_mut(self.out_dim(dim)).for_each(l2_normalize);
        }
        x
    }
}

/// With truncation off, an over-long text is an error that names it.
fn too_long(opts: &EmbedOptions, index: usize, text: &str, max: usize) -> Result<()> {
    if opts.truncate {
        return Ok(());
    }
    let preview: String = text.chars().take(40).collect();
    let more = if text.chars().nth(40).is_some() {
        "…"
    } else {
        ""
    };
    Err(Error::TooLong {
        index,
        max,
        preview: format!("{preview}{more}"),
    })
}

impl Embedder {
    /// Loads a sentence-transformers (or plain Hugging Face BERT) model directory.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            let kind = if dir.exists() {
                "not a directory"
            } else {
                "no such directory"
            };
            return Err(Error::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, kind),
            ));
        }
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        Self::load(Source::Dir(dir.to_path_buf()), name)
    }

    /// Loads a model by hub id or alias (`sentence-transformers/all-MiniLM-L6-v2`, `bge-small-en-v1.5`,
    /// `org/name@revision`): from the Hugging Face cache when it is there, else downloaded into it
    /// (see [`crate::hub`]).
    #[cfg(feature = "hub")]
    pub fn from_hub(
        model: &crate::hub::ModelRef,
        hub: &crate::hub::Hub,
        progress: &mut dyn crate::hub::Progress,
    ) -> Result<Self> {
        let dir = hub.resolve(model, progress)?;
        Self::load(Source::Dir(dir), model.to_string())
    }

    /// The built-in all-MiniLM-L6-v2 (float16 weights inside the binary; no files, no network).
    #[cfg(feature = "builtin")]
    pub fn builtin() -> Result<Self> {
        Self::load(Source::Builtin, crate::builtin::NAME.to_string())
    }

    fn load(src: Source, name: String) -> Result<Self> {
        let modules: Vec<ModuleEntry> = match src.json("modules.json")? {
            Some(m) => m,
            // model2vec's own layout may come without modules.json.
            None if src
                .read("config.json")?
                .is_some_and(|c| String::from_utf8_lossy(&c).contains("\"model2vec\"")) =>
            {
                return Self::load_static(src, name, ".");
            }
            // A plain HF checkpoint: sentence-transformers adds mean pooling.
            None => vec![ModuleEntry {
                path: String::new(),
                kind: "Transformer".into(),
            }],
        };
        let Some((first, rest)) = modules.split_first() else {
            return Err(Error::invalid(
                src.label("modules.json"),
                "lists no modules",
            ));
        };
        if first.short_kind() == "StaticEmbedding" {
            return Self::load_static(src, name, &first.path);
        }
        if first.short_kind() != "Transformer" {
            return Err(Error::Unsupported {
                what: "first module",
                name: first.kind.clone(),
            });
        }
        Self::load_transformer(src, name, first, rest)
    }

    /// The model's tokenizer.json (`None` when it only has a vocab.txt) and its path for messages.
    #[cfg_attr(not(feature = "distill"), allow(dead_code))]
    pub(crate) fn tokenizer_json(
        &self,
    ) -> Result<(Option<std::borrow::Cow<'static, [u8]>>, std::path::PathBuf)> {
        Ok((
            self.src.read(&self.tokenizer_file)?,
            self.src.label(&self.tokenizer_file),
        ))
    }

    /// Facts about the model (dimensions, pooling, source, ...).
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Width of the output vectors.
    pub fn dim(&self) -> usize {
        self.info.dim
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids for `text` exactly as the model consumes them: for transformers as
    /// sentence-transformers tokenizes (optional lowercasing, truncation, special tokens); for static models as model2vec does (no specials, unknown dropped).
    pub fn token_ids(&self, text: &str, opts: &EmbedOptions) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let (mut scratch, mut lower) = (Scratch::default(), String::new());
        match &self.backend {
            Backend::Transformer {
                encoder,
                do_lower_case,
                ..
            } => {
                let max_len = self.max_len(opts, encoder)?;
                self.tokenize_transformer(
                    text,
                    max_len,
                    *do_lower_case,
                    encoder,
                    &mut out,
                    &mut scratch,
                    &mut lower,
                )?;
            }
            Backend::Static(p) => {
                self.tokenize_static(text, p, opts, &mut out, &mut scratch)?;
            }
        }
        Ok(out)
    }

    /// Embeds `texts`, returning one vector per text in input order.
    pub fn embed<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        opts: &EmbedOptions,
    ) -> Result<Embeddings> {
        self.embed_with_report(texts, opts).map(|(e, _)| e)
    }

    /// Like [`embed`](Self::embed), also saying how many texts were truncated.
    pub fn embed_with_report<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        opts: &EmbedOptions,
    ) -> Result<(Embeddings, EmbedReport)> {
        if opts.batch_size == 0 {
            return Err(Error::InvalidOption("batch size must be at least 1".into()));
        }
        let (encoder, do_lower_case, prompts, pooling) = match &self.backend {
            Backend::Static(p) => return self.embed_static(texts, p, opts),
            Backend::Transformer {
                encoder,
                do_lower_case,
                prompts,
                pooling,
                ..
            } => (encoder, *do_lower_case, prompts, pooling),
        };
        let max_len = self.max_len(opts, encoder)?;
        let mut post = Post::new(opts, self.normalize, self.info.dim)?;

        // Prompts as sentence-transformers applies them: prepended to every text; with
        // include_prompt = false, pooling skips the prompt's tokens (its ids minus the trailing [SEP]).
        let prompt = match (&opts.prompt, &opts.prompt_name) {
            (Some(p), _) => Some(p.as_str()),
            (None, Some(name)) => Some(prompts.prompts.get(name).map(String::as_str).ok_or_else(
                || {
                    let known: Vec<&str> = prompts.prompts.keys().map(String::as_str).collect();
                    Error::InvalidOption(format!(
                        "no prompt named `{name}` (this model has: {})",
                        known.join(", ")
                    ))
                },
            )?),
            (None, None) => prompts
                .default_prompt_name
                .as_ref()
                .and_then(|n| prompts.prompts.get(n))
                .map(String::as_str),
        }
        .filter(|p| !p.is_empty());
        if let Some(p) = prompt
            && !pooling.include_prompt
        {
            post.skip_tokens = self.tokenizer.encode(p, max_len)?.len().saturating_sub(1);
        }

        // 1. Tokenize everything into one flat id buffer.
        let mut ids: Vec<u32> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(texts.len()); // (start, len) into ids
        let (mut buf, mut scratch, mut lower) = (Vec::new(), Scratch::default(), String::new());
        let mut truncated = 0;
        let mut prompted = String::new();
        for (i, t) in texts.iter().enumerate() {
            let text = match prompt {
                Some(p) => {
                    prompted.clear();
                    prompted.push_str(p);
                    prompted.push_str(t.as_ref());
                    prompted.as_str()
                }
                None => t.as_ref(),
            };
            if self.tokenize_transformer(
                text,
                max_len,
                do_lower_case,
                encoder,
                &mut buf,
                &mut scratch,
                &mut lower,
            )? {
                too_long(opts, i, text, max_len)?;
                truncated += 1;
            }
            spans.push((ids.len(), buf.len()));
            ids.extend_from_slice(&buf);
        }
        let e = self.run_encoder(&ids, &spans, opts, Head::Model(post))?;
        Ok((e, EmbedReport { truncated }))
    }
}
