//! A loaded sentence-transformers model and the [`Embedder`] that runs it:
//! text → tokenizer → encoder → pooling → dense → normalize.
//!
//! Loading reads `modules.json` (Transformer → Pooling → optional Dense → optional Normalize), the
//! transformer's `config.json`, `tokenizer.json` and memory-maps `model.safetensors`. One `Embedder`
//! loads once and embeds many times, from any number of threads.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::bert::{BertModel, Flavor, Packed, Workspace, check_ids};
use crate::config::{
    DenseConfig, ModuleEntry, PoolingConfig, SentenceBertConfig, SentenceTransformersConfig,
    TokenizerConfig, TransformerConfig,
};
use crate::dense::Dense;
use crate::embeddings::Embeddings;
use crate::error::{Error, Result};
use crate::normalize::l2_normalize;
use crate::ops::{SKINNY_MAX_ROWS, with_team};
use crate::pool::Pooling;
use crate::source::{Source, join};
use crate::static_model::{self, StaticModel};
use crate::tokenize::{Scratch, Tokenizer};
use crate::weights::{Prefetch, SafeTensors};

self_cell::self_cell!(
    /// The encoder borrowing its weights from the mapped file it owns.
    struct Encoder {
        owner: SafeTensors,
        #[covariant]
        dependent: BertModel,
    }
);

self_cell::self_cell!(
    /// A Model2Vec table borrowed from the mapped file it owns.
    struct StaticTable {
        owner: SafeTensors,
        #[covariant]
        dependent: StaticModel,
    }
);

/// Upper bound on tokens packed into one batch, so scratch memory stays bounded (≈ 6 MB for the
/// feed-forward buffer of a MiniLM-sized model) however long the inputs are.
const MAX_BATCH_TOKENS: usize = 1024;

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
/// ```no_run
/// use sembed::{Embedder, EmbedOptions};
/// let model = Embedder::from_dir("models/all-MiniLM-L6-v2")?;
/// let e = model.embed(&["A man is playing a guitar.", "Someone plays music."], &EmbedOptions::default())?;
/// println!("{}", sembed::cosine(e.row(0), e.row(1)));
/// # Ok::<(), sembed::Error>(())
/// ```
pub struct Embedder {
    // Declared before `backend` so it is dropped (its thread joined) before the mapping.
    _prefetch: Option<Prefetch>,
    backend: Backend,
    tokenizer: Tokenizer,
    normalize: bool,
    info: ModelInfo,
    /// Where the files came from, and the tokenizer.json path in it (re-read by distillation).
    src: Source,
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
        pooling: Pooling,
        dense: Vec<Dense>,
        do_lower_case: bool,
        prompts: SentenceTransformersConfig,
    },
    /// A Model2Vec table lookup.
    Static(StaticPipeline),
}

/// What a transformer batch ends with.
#[derive(Debug, Clone, Copy)]
enum Head {
    /// The model's pooling, dense layers and normalization, then the caller's post-processing.
    Model(Post),
    /// Plain mean of the last hidden states (distillation).
    TokenMean,
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

/// Model2Vec encoding settings (see `static_model`).
struct StaticPipeline {
    table: StaticTable,
    /// Token cap (and, × `median_token_length`, the character pre-cut); `None` = no limit.
    max_length: Option<usize>,
    /// model2vec's `median_token_length`, computed on first need (only texts longer than
    /// `max_length` characters can be cut, since every token has at least one character).
    median_token_length: std::sync::OnceLock<usize>,
    unk_id: Option<u32>,
    /// Ids the tokenizer can produce (every one has a table row, checked at load).
    vocab_size: usize,
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

/// What a modules.json entry is, from the last part of its Python class path (classic and 6.x names).
fn module_kind(entry: &ModuleEntry) -> &str {
    entry.kind.rsplit('.').next().unwrap_or(&entry.kind)
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
        if module_kind(first) == "StaticEmbedding" {
            return Self::load_static(src, name, &first.path);
        }
        if module_kind(first) != "Transformer" {
            return Err(Error::Unsupported {
                what: "first module",
                name: first.kind.clone(),
            });
        }
        let tdir = first.path.as_str();
        let config_rel = join(tdir, "config.json");
        let config: TransformerConfig = src.require_json(&config_rel)?;
        let arch = config
            .architectures
            .first()
            .cloned()
            .unwrap_or_else(|| config.model_type.clone());
        let Some(flavor) = Flavor::from_config(&config) else {
            return Err(Error::Unsupported {
                what: "architecture",
                name: arch,
            });
        };

        let st_cfg: SentenceBertConfig = src
            .json(&join(tdir, "sentence_bert_config.json"))?
            .unwrap_or_default();
        let tok_cfg: TokenizerConfig = src
            .json(&join(tdir, "tokenizer_config.json"))?
            .unwrap_or_default();
        // sentence-transformers: max_seq_length from sentence_bert_config.json, else
        // min(max_position_embeddings, tokenizer model_max_length).
        let fallback = match tok_cfg.model_max_length {
            Some(m) if m >= 1.0 && m < config.max_position_embeddings as f64 => m as usize,
            _ => config.max_position_embeddings,
        };
        let max_seq_length = st_cfg
            .max_seq_length
            .unwrap_or(fallback)
            .min(config.max_position_embeddings);

        let weights_rel = join(tdir, "model.safetensors");
        let weights = match src.safetensors(&weights_rel) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::invalid(
                    src.label(&weights_rel),
                    "missing; sembed reads safetensors weights only (convert pytorch_model.bin with `safetensors`)",
                ));
            }
            other => other?,
        };
        // Map the encoder's pages in the background while the tokenizer is parsed.
        let prefetch = weights.prefetch(|name| name.contains("encoder."));
        let tokenizer = load_tokenizer(&src, tdir)?;
        let config_path = src.label(&config_rel);
        let encoder = Encoder::try_new(weights, |w| {
            BertModel::load(w, &config, flavor, &config_path)
        })?;
        let hidden = config.hidden_size;

        let mut pooling = None;
        let mut dense = Vec::new();
        let mut normalize = false;
        let mut dim = hidden;
        for m in rest {
            match module_kind(m) {
                "Pooling" => {
                    let rel = join(&m.path, "config.json");
                    let cfg: PoolingConfig = src.require_json(&rel)?;
                    let p = Pooling::from_config(&cfg, &src.label(&rel))?;
                    dim = p.output_dim(hidden);
                    pooling = Some(p);
                }
                "Dense" => {
                    let rel = join(&m.path, "config.json");
                    let cfg: DenseConfig = src.require_json(&rel)?;
                    let w = src.safetensors(&join(&m.path, "model.safetensors"))?;
                    let d = Dense::load(&cfg, &w, &src.label(&rel))?;
                    if d.in_dim() != dim {
                        return Err(Error::invalid(
                            src.label(&rel),
                            format!(
                                "in_features {} but the previous module outputs {dim}",
                                d.in_dim()
                            ),
                        ));
                    }
                    dim = d.out_dim();
                    dense.push(d);
                }
                "Normalize" => normalize = true,
                _ => {
                    return Err(Error::Unsupported {
                        what: "module",
                        name: m.kind.clone(),
                    });
                }
            }
        }
        let pooling = pooling.unwrap_or_else(Pooling::mean);
        let prompts: SentenceTransformersConfig = src
            .json("config_sentence_transformers.json")?
            .unwrap_or_default();
        if let Some(name) = &prompts.default_prompt_name
            && !prompts.prompts.contains_key(name)
        {
            return Err(Error::invalid(
                src.label("config_sentence_transformers.json"),
                format!("default_prompt_name `{name}` is not among the prompts"),
            ));
        }
        if dense.is_empty() {
            dim = pooling.output_dim(hidden);
        }

        let info = ModelInfo {
            name,
            architecture: arch,
            layers: config.num_hidden_layers,
            hidden_size: hidden,
            dim,
            // RoBERTa-style position tables hold padding_idx + 1 fewer usable rows.
            max_seq_length: Some(max_seq_length.min(encoder.borrow_dependent().dims.max_tokens)),
            pooling: pooling.modes.iter().map(|m| m.name()).collect(),
            dense: dense.iter().map(|d| (d.in_dim(), d.out_dim())).collect(),
            normalize,
            tokenizer: tokenizer.kind(),
            prompts: prompts
                .prompts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            default_prompt: prompts.default_prompt_name.clone(),
            weights_dtype: encoder.borrow_dependent().weight_dtype(),
            source: src.describe(),
        };
        Ok(Embedder {
            _prefetch: Some(prefetch),
            backend: Backend::Transformer {
                encoder,
                pooling,
                dense,
                do_lower_case: st_cfg.do_lower_case,
                prompts,
            },
            tokenizer,
            normalize,
            info,
            src,
            tokenizer_file: join(tdir, "tokenizer.json"),
            workspaces: Mutex::new(Vec::new()),
        })
    }

    /// Loads a Model2Vec static model whose table lives in `dir` (`.` for model2vec's own layout,
    /// `0_StaticEmbedding` for sentence-transformers'), with model2vec 0.10's settings.
    fn load_static(src: Source, name: String, dir: &str) -> Result<Self> {
        let dir = if dir == "." { "" } else { dir };
        let st_layout = !dir.is_empty();
        let config_rel = if st_layout {
            "config_sentence_transformers.json"
        } else {
            "config.json"
        };
        let config: serde_json::Value = src.json(config_rel)?.unwrap_or_default();
        // model2vec 0.10: a missing `normalize` means false; a missing `max_length` means 512 and an
        // explicit null means no limit.
        let normalize = config["normalize"].as_bool().unwrap_or(false);
        let max_length = match config.get("max_length") {
            None => Some(512),
            Some(v) => v.as_u64().map(|n| n as usize),
        };
        let tok_rel = join(dir, "tokenizer.json");
        let bytes = src.bytes(&tok_rel)?.ok_or_else(|| {
            Error::invalid(src.label(&tok_rel), "missing: the model has no tokenizer")
        })?;
        let tokenizer = Tokenizer::from_bytes(bytes, &src.label(&tok_rel))?;
        let weights = src.safetensors(&join(dir, "model.safetensors"))?;
        let tensor = if st_layout {
            "embedding.weight"
        } else {
            "embeddings"
        };
        let vocab = tokenizer.vocab_size();
        let table = StaticTable::try_new(weights, |w| StaticModel::load(w, tensor, vocab))?;
        let model = table.borrow_dependent();
        let info = ModelInfo {
            name,
            architecture: "StaticModel (Model2Vec)".to_string(),
            layers: 0,
            hidden_size: model.dim,
            dim: model.dim,
            max_seq_length: max_length,
            pooling: vec!["mean"],
            dense: Vec::new(),
            normalize,
            tokenizer: tokenizer.kind(),
            prompts: Vec::new(),
            default_prompt: None,
            weights_dtype: model.dtype_name(),
            source: src.describe(),
        };
        let pipeline = StaticPipeline {
            median_token_length: std::sync::OnceLock::new(),
            unk_id: tokenizer.unk_id(),
            vocab_size: vocab,
            max_length,
            table,
        };
        Ok(Embedder {
            _prefetch: None,
            backend: Backend::Static(pipeline),
            tokenizer,
            normalize,
            info,
            src,
            tokenizer_file: tok_rel,
            workspaces: Mutex::new(Vec::new()),
        })
    }

    /// The model's tokenizer.json (`None` when it only has a vocab.txt) and its path for messages.
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

    fn max_len(&self, opts: &EmbedOptions, encoder: &Encoder) -> Result<usize> {
        let limit = encoder.borrow_dependent().dims.max_tokens;
        match opts.max_length {
            None => Ok(self.info.max_seq_length.unwrap_or(limit)),
            Some(n) if n < self.tokenizer.num_special_tokens().max(1) || n > limit => {
                Err(Error::InvalidOption(format!(
                    "max length {n} is outside 1..={limit} (and must leave room for special tokens)"
                )))
            }
            Some(n) => Ok(n),
        }
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

    #[allow(clippy::too_many_arguments)]
    fn tokenize_transformer(
        &self,
        text: &str,
        max_len: usize,
        do_lower_case: bool,
        encoder: &Encoder,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
        lower: &mut String,
    ) -> Result<bool> {
        // sentence-transformers 6.x passes the text as is (no strip): the XLM-R fixture's
        // "   spaced   out   " keeps its leading and trailing "▁" tokens in the reference.
        let text = if do_lower_case {
            lower.clear();
            lower.push_str(&text.to_lowercase());
            lower.as_str()
        } else {
            text
        };
        let truncated = self
            .tokenizer
            .encode_into(text, max_len, true, out, scratch)?;
        check_ids(out, encoder.borrow_dependent().dims.vocab)?;
        Ok(truncated)
    }

    fn static_max_length(p: &StaticPipeline, opts: &EmbedOptions) -> Result<Option<usize>> {
        match opts.max_length {
            Some(0) => Err(Error::InvalidOption("max length must be at least 1".into())),
            Some(n) => Ok(Some(n)),
            None => Ok(p.max_length),
        }
    }

    fn tokenize_static(
        &self,
        text: &str,
        p: &StaticPipeline,
        opts: &EmbedOptions,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
    ) -> Result<bool> {
        let max_length = Self::static_max_length(p, opts)?;
        let full = text;
        let text = match max_length {
            Some(m) if text.len() > m => {
                let median = *p
                    .median_token_length
                    .get_or_init(|| static_model::median_len(self.tokenizer.token_char_lengths()));
                static_model::char_prefix(text, m.saturating_mul(median))
            }
            _ => text,
        };
        let cut = self.tokenizer.encode_into(
            text,
            max_length.unwrap_or(usize::MAX),
            false,
            out,
            scratch,
        )?;
        if let Some(unk) = p.unk_id {
            out.retain(|&id| id != unk);
        }
        Ok(cut || text.len() < full.len())
    }

    /// Model2Vec: tokenize and average table rows, texts split across threads when there are many.
    fn embed_static<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        p: &StaticPipeline,
        opts: &EmbedOptions,
    ) -> Result<(Embeddings, EmbedReport)> {
        let dim = self.info.dim;
        let post = Post::new(opts, self.normalize, dim)?;
        let max = Self::static_max_length(p, opts)?.unwrap_or(usize::MAX);
        let model = p.table.borrow_dependent();
        let vocab = p.vocab_size;
        let mut out = vec![0f32; texts.len() * dim];
        // Returns how many of `texts` were cut; `first` is the index of texts[0] (for errors).
        let work = |texts: &[S], out: &mut [f32], first: usize| -> Result<usize> {
            let (mut ids, mut next) = (Vec::new(), Vec::new());
            let (mut scratch, mut row) = (Scratch::default(), Vec::new());
            let mut cut = 0;
            let mut tokenize = |i: usize, ids: &mut Vec<u32>| -> Result<()> {
                let t = texts[i].as_ref();
                if self.tokenize_static(t, p, opts, ids, &mut scratch)? {
                    too_long(opts, first + i, t, max)?;
                    cut += 1;
                }
                check_ids(ids, vocab)?;
                // The rows are scattered over a table far larger than the caches: start loading them
                // now, and add them up after the next text is tokenized.
                model.prefetch_rows(ids);
                Ok(())
            };
            if !texts.is_empty() {
                tokenize(0, &mut ids)?;
            }
            for (i, o) in out.chunks_exact_mut(dim).enumerate().take(texts.len()) {
                if i + 1 < texts.len() {
                    tokenize(i + 1, &mut next)?;
                }
                model.embed_ids(&ids, o, &mut row);
                if post.module_normalize {
                    static_model::normalize(o);
                }
                std::mem::swap(&mut ids, &mut next);
            }
            Ok(cut)
        };
        // Below a few thousand texts a thread costs more than it saves (and so does asking how many
        // cores there are: std reads the cgroup quota files).
        let threads = match (texts.len() / 2048, opts.threads) {
            (0 | 1, _) => 1,
            (most, 0) => most.min(std::thread::available_parallelism().map_or(1, |n| n.get())),
            (most, t) => most.min(t),
        };
        let truncated = if threads == 1 {
            work(texts, &mut out, 0)?
        } else {
            let per = texts.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = texts
                    .chunks(per)
                    .zip(out.chunks_mut(per * dim))
                    .enumerate()
                    .map(|(c, (t, o))| s.spawn(move || work(t, o, c * per)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .sum::<Result<usize>>()
            })?
        };
        // The model's normalization ran in the workers, right after each row was summed.
        let out = post.apply(out, dim, None);
        Ok((
            Embeddings::new(post.out_dim(dim), out),
            EmbedReport { truncated },
        ))
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

    /// Errors unless this is a transformer model (what distillation needs).
    pub(crate) fn require_transformer(&self) -> Result<()> {
        match self.backend {
            Backend::Transformer { .. } => Ok(()),
            Backend::Static(_) => Err(Error::Unsupported {
                what: "distillation source",
                name: self.info.architecture.clone(),
            }),
        }
    }

    /// Mean of the encoder's last hidden states over each sequence of ids, ignoring the model's own
    /// pooling, dense and normalize modules (what Model2Vec distillation feeds on).
    pub(crate) fn mean_token_states(
        &self,
        seqs: &[Vec<u32>],
        opts: &EmbedOptions,
    ) -> Result<Embeddings> {
        let Backend::Transformer { encoder, .. } = &self.backend else {
            return Err(Error::Unsupported {
                what: "distillation source",
                name: self.info.architecture.clone(),
            });
        };
        let dims = encoder.borrow_dependent().dims;
        let mut ids = Vec::new();
        let mut spans = Vec::with_capacity(seqs.len());
        for s in seqs {
            check_ids(s, dims.vocab)?;
            if s.is_empty() || s.len() > dims.max_tokens {
                return Err(Error::InvalidOption(format!(
                    "sequence of {} tokens",
                    s.len()
                )));
            }
            spans.push((ids.len(), s.len()));
            ids.extend_from_slice(s);
        }
        self.run_encoder(&ids, &spans, opts, Head::TokenMean)
    }

    /// Batches, threads and runs the encoder over tokenized sequences (`spans` index into `ids`).
    fn run_encoder(
        &self,
        ids: &[u32],
        spans: &[(usize, usize)],
        opts: &EmbedOptions,
        head: Head,
    ) -> Result<Embeddings> {
        let n_texts = spans.len();
        let dim = match head {
            Head::Model(post) => post.out_dim(self.info.dim),
            Head::TokenMean => self.info.hidden_size,
        };

        // 2. Longest first, cut into batches of similar length (bounded in sequences and tokens). With
        //    fewer texts than batch_size × threads, batches shrink so every thread gets work.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let want_threads = if opts.threads == 0 {
            cores
        } else {
            opts.threads
        };
        let per_batch = opts.batch_size.min(n_texts.div_ceil(want_threads).max(1));
        let mut order: Vec<usize> = (0..n_texts).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(spans[i].1));
        let mut batches: Vec<&[usize]> = Vec::new();
        let mut rest = &order[..];
        while !rest.is_empty() {
            let mut n = 0;
            let mut tokens = 0;
            while n < rest.len()
                && n < per_batch
                && (n == 0 || tokens + spans[rest[n]].1 <= MAX_BATCH_TOKENS)
            {
                tokens += spans[rest[n]].1;
                n += 1;
            }
            let (b, r) = rest.split_at(n);
            batches.push(b);
            rest = r;
        }

        // 3. Run batches on worker threads (inline when one thread suffices). A single short batch
        //    with threads to spare (one sentence) shares its matrix products with a helper thread.
        let threads = want_threads.min(batches.len()).max(1);
        let split = batches.len() == 1 && want_threads > 1;
        let mut out = vec![0f32; n_texts * dim];
        let scatter = |out: &mut [f32], b: usize, data: &[f32]| {
            for (j, &i) in batches[b].iter().enumerate() {
                out[i * dim..(i + 1) * dim].copy_from_slice(&data[j * dim..(j + 1) * dim]);
            }
        };
        let run = |b: usize, ws: &mut Workspace, packed: &mut Packed| {
            packed.fill(batches[b], spans, ids);
            self.run_batch(packed, head, ws, split)
        };
        if threads == 1 {
            let (mut ws, mut packed) = (self.take_workspace(), Packed::default());
            for b in 0..batches.len() {
                let data = run(b, &mut ws, &mut packed);
                scatter(&mut out, b, &data);
            }
            self.return_workspace(ws);
        } else {
            let next = AtomicUsize::new(0);
            let results: Vec<Vec<(usize, Vec<f32>)>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            let (mut ws, mut packed) = (self.take_workspace(), Packed::default());
                            let mut done = Vec::new();
                            loop {
                                let b = next.fetch_add(1, Ordering::Relaxed);
                                if b >= batches.len() {
                                    break;
                                }
                                done.push((b, run(b, &mut ws, &mut packed)));
                            }
                            self.return_workspace(ws);
                            done
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            for (b, data) in results.into_iter().flatten() {
                scatter(&mut out, b, &data);
            }
        }
        Ok(Embeddings::new(dim, out))
    }

    /// Encoder → pooling → dense → normalize for one batch; returns `[batch, dim]` in batch order.
    fn run_batch(&self, packed: &Packed, head: Head, ws: &mut Workspace, split: bool) -> Vec<f32> {
        let Backend::Transformer {
            encoder,
            pooling,
            dense,
            ..
        } = &self.backend
        else {
            unreachable!("run_batch is only called for transformer models");
        };
        let model = encoder.borrow_dependent();
        let hidden = model.dims.hidden;
        let token_mean = Pooling::mean();
        let pooling = if matches!(head, Head::TokenMean) {
            &token_mean
        } else {
            pooling
        };
        let dense: &[Dense] = if matches!(head, Head::TokenMean) {
            &[]
        } else {
            dense
        };
        let pool_dim = pooling.output_dim(hidden);
        let n = packed.seqs.len();
        let mut pooled = Vec::with_capacity(n * pool_dim); // [n, pool_dim]
        if split && packed.tokens() > 0 && packed.tokens() <= SKINNY_MAX_ROWS {
            with_team(|team| model.forward(packed, ws, Some(team)));
        } else if packed.tokens() > 0 {
            model.forward(packed, ws, None);
        }
        for &(start, len) in &packed.seqs {
            if len == 0 {
                // Only possible for tokenizers without special tokens and an empty text.
                pooled.resize(pooled.len() + pool_dim, 0.0);
            } else {
                let skip = match head {
                    Head::Model(post) => post.skip_tokens.min(len),
                    Head::TokenMean => 0,
                };
                if skip == len {
                    // Every token is prompt: sentence-transformers' fully masked pooling gives zeros.
                    pooled.resize(pooled.len() + pool_dim, 0.0);
                } else {
                    pooling.pool(
                        &ws.hidden[(start + skip) * hidden..(start + len) * hidden],
                        hidden,
                        &mut pooled,
                    );
                }
            }
        }
        let mut x = pooled;
        let mut wbuf = Vec::new();
        for d in dense {
            let mut y = Vec::new();
            d.forward(&x, &mut y, n, &mut wbuf);
            x = y;
        }
        if let Head::Model(post) = head {
            x = post.apply(x, self.info.dim, Some(l2_normalize));
        }
        x
    }

    fn take_workspace(&self) -> Workspace {
        self.workspaces
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default()
    }

    fn return_workspace(&self, ws: Workspace) {
        if let Ok(mut v) = self.workspaces.lock() {
            v.push(ws);
        }
    }
}

fn load_tokenizer(src: &Source, tdir: &str) -> Result<Tokenizer> {
    let rel = join(tdir, "tokenizer.json");
    if let Some(bytes) = src.bytes(&rel)? {
        return Tokenizer::from_bytes(bytes, &src.label(&rel));
    }
    let vocab_rel = join(tdir, "vocab.txt");
    if let Some(bytes) = src.read(&vocab_rel)? {
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::invalid(src.label(&vocab_rel), e.to_string()))?;
        let cfg: TokenizerConfig = src
            .json(&join(tdir, "tokenizer_config.json"))?
            .unwrap_or_default();
        return Tokenizer::from_vocab_txt(
            text,
            cfg.do_lower_case.unwrap_or(true),
            &src.label(&vocab_rel),
        );
    }
    Err(Error::invalid(
        src.label(&rel),
        "missing (and no vocab.txt either): the model has no tokenizer",
    ))
}
