//! Loading: a model's files ([`source`]) → the parts an [`Embedder`] runs. `modules.json` decides
//! the path — Transformer → Pooling → optional Dense → optional Normalize (sentence-transformers),
//! or a StaticEmbedding / model2vec table — and each config file is read here, once.

pub mod config;
pub(crate) mod source;

use std::sync::Arc;

use crate::bytes::Bytes;
use crate::dense::Dense;
use crate::embedder::{Body, Embedder};
use crate::encoder::{Flavor, Transformer};
use crate::error::{Error, Result};
use crate::info::{ModelInfo, ModelKind};
use crate::options::LoadOptions;
use crate::pooling::Pooling;
use crate::static_lookup::StaticLookup;
use crate::text::{Rules, TextPolicy};
use crate::tokenize::Tokenizer;
use crate::weights::SafeTensors;
use config::{
    DenseConfig, ModuleEntry, PoolingConfig, SentenceBertConfig, SentenceTransformersConfig,
    TokenizerConfig, TransformerConfig,
};
use source::{Files, Source, join};

/// What loading produces, assembled into an [`Embedder`].
pub(crate) struct Parts {
    pub text: TextPolicy,
    pub body: Body,
    pub normalize: bool,
    pub info: ModelInfo,
    pub files: Source,
    pub tokenizer_file: String,
}

/// Loads the model in `src`, named `name`.
pub(crate) fn load(src: Source, name: String, opts: &LoadOptions) -> Result<Embedder> {
    let files = Files::new(src, opts.digest_cache.clone());
    let modules: Vec<ModuleEntry> = match files.json("modules.json")? {
        Some(m) => m,
        // model2vec's own layout may come without modules.json.
        None if files
            .read("config.json")?
            .is_some_and(|c| String::from_utf8_lossy(&c).contains("\"model2vec\"")) =>
        {
            let parts = load_static(files, name, "", &[], opts)?;
            return Ok(Embedder::assemble(parts, opts));
        }
        // A plain HF checkpoint: sentence-transformers adds mean pooling.
        None => vec![ModuleEntry {
            path: String::new(),
            kind: "Transformer".into(),
        }],
    };
    // Module folders are read below the model's own: a path leaving it (`..`, absolute) would
    // read other files of the machine as the model's.
    if let Some(m) = modules.iter().find(|m| !stays_inside(&m.path)) {
        return Err(Error::invalid(
            files.label("modules.json"),
            format!("module path {:?} leaves the model folder", m.path),
        ));
    }
    let Some((first, rest)) = modules.split_first() else {
        return Err(Error::invalid(
            files.label("modules.json"),
            "lists no modules",
        ));
    };
    let parts = match first.short_kind() {
        "StaticEmbedding" => load_static(files, name, &first.path, rest, opts)?,
        "Transformer" => load_transformer(files, name, first, rest, opts)?,
        _ => {
            return Err(Error::Unsupported {
                what: "first module",
                name: first.kind.clone(),
            });
        }
    };
    Ok(Embedder::assemble(parts, opts))
}

/// The prompts of `config_sentence_transformers.json` (none when absent), checked.
fn prompts(files: &Files) -> Result<SentenceTransformersConfig> {
    let prompts: SentenceTransformersConfig = files
        .json("config_sentence_transformers.json")?
        .unwrap_or_default();
    if let Some(name) = &prompts.default_prompt_name
        && !prompts.prompts.contains_key(name)
    {
        return Err(Error::invalid(
            files.label("config_sentence_transformers.json"),
            format!("default_prompt_name `{name}` is not among the prompts"),
        ));
    }
    Ok(prompts)
}

/// Largest weights file given a prepared copy, in bytes. Making one hashes the whole file and
/// writes its size again to disk: for a sparse file claiming terabytes that was hours of hashing
/// (0.9 GB/s here) and then a full disk. Larger files are packed in memory instead, as without
/// a prepared folder (all-mpnet-base-v2's weights are 0.44 GB).
const MAX_PREPARED_BYTES: u64 = 16 << 30;

/// The prepared copy of `weights` (panels, or AMX tiles; see `weights::prepared`) when `opts`
/// names a folder for them and the weights would be packed at load or are the built-in model's;
/// `None` to use `weights` as they are. `check`
/// (can the encoder be built over it?) runs on `weights` first, so a file that does not hold the
/// model gets its errors in its own name, never the copy's; a copy that fails it is not used.
fn prepare(
    files: &Files,
    rel: &str,
    weights: &SafeTensors,
    opts: &LoadOptions,
    check: impl Fn(&SafeTensors) -> Result<()>,
) -> Result<Option<SafeTensors>> {
    let Some(dir) = &opts.prepared else {
        return Ok(None);
    };
    // Weights as stored in a file are packed into the copy; the built-in model's compiled-in
    // panels are copied as they are, for the huge-page mapping a copy gets (`weights::prepared`).
    let packs = weights.file().is_some() && !weights.has_panels();
    let builtin = files.is_builtin() && weights.has_panels();
    if !(packs || builtin)
        || opts.residency == crate::Residency::Never
        || !crate::ops::packed::worth_packing(opts.cpu.level())
    {
        return Ok(None);
    }
    if weights.file_bytes().len() as u64 > MAX_PREPARED_BYTES {
        return Ok(None);
    }
    check(weights)?;
    // No folder to keep a copy in: pack in memory, without hashing the file for a name.
    if std::fs::create_dir_all(dir).is_err() {
        return Ok(None);
    }
    // Best effort, as the copy itself: a file that cannot be hashed is packed in memory.
    let Ok(Some(sha)) = files.digest.sha256(rel) else {
        return Ok(None);
    };
    use crate::weights::prepared::{Layout, open_or_make};
    // At the AMX level, f32 weights are kept as the tiles the kernel would split them into on
    // every call (the same bytes as f32 panels); half weights stay panels (tiles would double
    // them in memory).
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    let layout = if opts.cpu.level().isa() == crate::ops::Isa::Amx && weights.linears_all_f32() {
        Layout::Tiles
    } else {
        Layout::Panels
    };
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    let layout = Layout::Panels;
    Ok(open_or_make(weights, &sha, dir, layout).filter(|c| check(c).is_ok()))
}

/// Loads the Transformer module at `first` and the modules after it.
fn load_transformer(
    files: Files,
    name: String,
    first: &ModuleEntry,
    rest: &[ModuleEntry],
    opts: &LoadOptions,
) -> Result<Parts> {
    let tdir = first.path.as_str();
    let config_rel = join(tdir, "config.json");
    let config: TransformerConfig = files.require_json(&config_rel)?;
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
    // Before the weights are mapped (and their pages read in the background).
    Transformer::check_config(&config, flavor, &files.label(&config_rel))?;

    let st_cfg: SentenceBertConfig = files
        .json(&join(tdir, "sentence_bert_config.json"))?
        .unwrap_or_default();
    let tok_cfg: TokenizerConfig = files
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
    let weights = match files.safetensors(&weights_rel) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::invalid(
                files.label(&weights_rel),
                "missing; sembed reads safetensors weights only (convert pytorch_model.bin with `safetensors`)",
            ));
        }
        other => other?,
    };
    let config_path = files.label(&config_rel);
    let prepared = prepare(&files, &weights_rel, &weights, opts, |w| {
        Transformer::check(w, &config, flavor, &config_path)
    })?;
    let weights = prepared.unwrap_or(weights);
    // Map the encoder's pages in the background while the tokenizer is parsed.
    let prefetch = Transformer::prefetch(&weights);
    let (tokenizer, tokenizer_file) = load_tokenizer(&files, tdir, &tok_cfg, opts)?;

    let hidden = config.hidden_size;
    let mut pooling = None;
    let mut dense = Vec::new();
    let mut normalize = false;
    let mut dim = hidden;
    for m in rest {
        match m.short_kind() {
            "Pooling" => {
                let rel = join(&m.path, "config.json");
                let cfg: PoolingConfig = files.require_json(&rel)?;
                let p = Pooling::from_config(&cfg, &files.label(&rel))?;
                dim = p.output_dim(hidden);
                pooling = Some(p);
            }
            "Dense" => {
                let rel = join(&m.path, "config.json");
                let cfg: DenseConfig = files.require_json(&rel)?;
                let w = files.safetensors(&join(&m.path, "model.safetensors"))?;
                let d = Dense::load(&cfg, &w, &files.label(&rel))?;
                if d.in_dim() != dim {
                    return Err(Error::invalid(
                        files.label(&rel),
                        format!(
                            "in_features {} but the previous module outputs {dim}",
                            d.in_dim()
                        ),
                    ));
                }
                dim = d.out_dim();
                dense.push(d);
            }
            // Its folder holds nothing sembed needs (and may be missing, as in all-mpnet-base-v2).
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
    let prompts = prompts(&files)?;
    let include_prompt = pooling.include_prompt;
    let cpu = opts.cpu.level();
    let model = Transformer::new(
        (weights, prefetch),
        &config,
        flavor,
        &config_path,
        (pooling, dense),
        (cpu, opts.residency),
    )?;
    let dims = model.dims();
    // RoBERTa-style position tables hold padding_idx + 1 fewer usable rows.
    let max_seq_length = max_seq_length.min(dims.max_tokens);
    let info = ModelInfo {
        name,
        kind: ModelKind::Transformer,
        architecture: arch,
        layers: config.num_hidden_layers,
        hidden_size: hidden,
        dim: model.pooled_dim(),
        max_seq_length: Some(max_seq_length),
        pooling: model.pooling().modes.iter().map(|m| m.name()).collect(),
        dense: model
            .dense()
            .iter()
            .map(|d| (d.in_dim(), d.out_dim()))
            .collect(),
        normalize,
        tokenizer: tokenizer.kind(),
        prompts: prompts
            .prompts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        default_prompt: prompts.default_prompt_name.clone(),
        weights_dtype: model.weight_dtype(),
        cpu: cpu.name(),
        source: files.describe(),
        digest: files.digest.clone(),
    };
    debug_assert_eq!(info.dim, dim);
    Ok(Parts {
        text: TextPolicy {
            tokenizer,
            rules: Rules::Transformer {
                lowercase: st_cfg.do_lower_case,
                default_max: max_seq_length,
                limit: dims.max_tokens,
                include_prompt,
            },
            prompts,
            vocab: dims.vocab,
        },
        body: Body::Transformer(model),
        normalize,
        info,
        files: files.src,
        tokenizer_file,
    })
}

/// The tokenizer of the Transformer module in `tdir`: tokenizer.json, else a BERT vocab.txt.
fn load_tokenizer(
    files: &Files,
    tdir: &str,
    cfg: &TokenizerConfig,
    opts: &LoadOptions,
) -> Result<(Tokenizer, String)> {
    let rel = join(tdir, "tokenizer.json");
    if let Some(bytes) = files.bytes(&rel)? {
        return Ok((tokenizer_json(files, &rel, bytes, opts)?, rel));
    }
    let vocab_rel = join(tdir, "vocab.txt");
    if let Some(bytes) = files.read(&vocab_rel)? {
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::invalid(files.label(&vocab_rel), e.to_string()))?;
        let tok = Tokenizer::from_vocab_txt(
            text,
            cfg.do_lower_case.unwrap_or(true),
            &files.label(&vocab_rel),
        )?;
        return Ok((tok, rel));
    }
    Err(Error::invalid(
        files.label(&rel),
        "missing (and no vocab.txt either): the model has no tokenizer",
    ))
}

/// The tokenizer.json `rel` (its `bytes`), with its WordPiece vocabulary prepared in
/// `opts.prepared` (named by the file's sha256; made on first use) when there is that folder.
fn tokenizer_json(
    files: &Files,
    rel: &str,
    bytes: Arc<Bytes>,
    opts: &LoadOptions,
) -> Result<Tokenizer> {
    let prepared = match &opts.prepared {
        Some(dir) => files
            .digest
            .sha256_via_cache(rel, files.disk_path(rel).as_deref())?
            .map(|sha| (dir.as_path(), sha)),
        None => None,
    };
    Tokenizer::from_bytes_prepared(bytes, &files.label(rel), prepared)
}

/// Loads a static model whose table lives in `dir`: `""` (or `.`) is model2vec's own layout, run
/// with model2vec 0.10's rules (config.json's `normalize` and `max_length`, the character
/// pre-cut, unknown tokens dropped); a folder such as `0_StaticEmbedding` is sentence-transformers'
/// `StaticEmbedding`, run as it runs it (mean of every token's row, no limit) followed by the
/// modules after it (`rest`: a Normalize module).
fn load_static(
    files: Files,
    name: String,
    dir: &str,
    rest: &[ModuleEntry],
    opts: &LoadOptions,
) -> Result<Parts> {
    let dir = if dir == "." { "" } else { dir };
    let st_layout = !dir.is_empty();
    let mut normalize_module = false;
    for m in rest {
        match m.short_kind() {
            "Normalize" => normalize_module = true,
            _ => {
                return Err(Error::Unsupported {
                    what: "module after StaticEmbedding",
                    name: m.kind.clone(),
                });
            }
        }
    }
    type Norm = fn(&mut [f32]);
    let (normalize, max_length, norm): (bool, Option<usize>, Norm) = if st_layout {
        (normalize_module, None, crate::normalize::l2_normalize)
    } else {
        // model2vec 0.10: a missing `normalize` means false; a missing `max_length` means 512 and
        // an explicit null means no limit.
        let config: serde_json::Value = files.json("config.json")?.unwrap_or_default();
        let max_length = match config.get("max_length") {
            None => Some(512),
            Some(v) => v.as_u64().map(|n| n as usize),
        };
        let normalize = config["normalize"].as_bool().unwrap_or(false);
        (normalize, max_length, crate::static_model::normalize)
    };
    // sentence-transformers prepends prompts for any model; model2vec's own layout has none.
    let prompts = if st_layout {
        prompts(&files)?
    } else {
        SentenceTransformersConfig::default()
    };
    let tok_rel = join(dir, "tokenizer.json");
    let bytes = files.bytes(&tok_rel)?.ok_or_else(|| {
        Error::invalid(files.label(&tok_rel), "missing: the model has no tokenizer")
    })?;
    let tokenizer = tokenizer_json(&files, &tok_rel, bytes, opts)?;
    let weights = files.safetensors(&join(dir, "model.safetensors"))?;
    let tensor = if st_layout {
        "embedding.weight"
    } else {
        "embeddings"
    };
    let vocab = tokenizer.vocab_size();
    let cpu = opts.cpu.level();
    let lookup = StaticLookup::new(weights, (tensor, vocab), norm, cpu)?;
    let info = ModelInfo {
        name,
        kind: ModelKind::Static,
        architecture: if st_layout {
            "StaticEmbedding (sentence-transformers)"
        } else {
            "StaticModel (Model2Vec)"
        }
        .to_string(),
        layers: 0,
        hidden_size: lookup.dim(),
        dim: lookup.dim(),
        max_seq_length: max_length,
        pooling: vec!["mean"],
        dense: Vec::new(),
        normalize,
        tokenizer: tokenizer.kind(),
        prompts: prompts
            .prompts
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        default_prompt: prompts.default_prompt_name.clone(),
        weights_dtype: lookup.dtype_name(),
        cpu: cpu.name(),
        source: files.describe(),
        digest: files.digest.clone(),
    };
    // sentence-transformers keeps unknown tokens; model2vec drops them.
    let unk_id = if st_layout { None } else { tokenizer.unk_id() };
    Ok(Parts {
        text: TextPolicy {
            tokenizer,
            rules: Rules::Static {
                default_max: max_length,
                precut: !st_layout,
                median_token_length: std::sync::OnceLock::new(),
                unk_id,
            },
            prompts,
            vocab,
        },
        body: Body::Static(lookup),
        normalize,
        info,
        files: files.src,
        tokenizer_file: tok_rel,
    })
}

/// A relative path with no `..` part (and no backslash, which Windows would read as a separator).
fn stays_inside(path: &str) -> bool {
    !path.starts_with('/') && !path.contains('\\') && path.split('/').all(|c| c != "..")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Weights past `MAX_PREPARED_BYTES` get no prepared copy: it is declined before the weights
    /// are checked or hashed (here a sparse file, which would hash for 20 s and then fill a disk).
    #[test]
    fn weights_past_the_limit_get_no_prepared_copy() {
        let dir = tempfile::tempdir().unwrap();
        let len = MAX_PREPARED_BYTES + 1;
        let header =
            format!(r#"{{"t":{{"dtype":"U8","shape":[{len}],"data_offsets":[0,{len}]}}}}"#);
        let path = dir.path().join("model.safetensors");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(bytes.len() as u64 + len)
            .expect("a sparse file (the test needs a file system that has them)");
        let weights = SafeTensors::open(&path).unwrap();
        let files = Files::new(Source::Dir(dir.path().to_path_buf()), None);
        let opts = LoadOptions {
            prepared: Some(dir.path().join("prepared")),
            ..Default::default()
        };
        let checked = |_: &SafeTensors| Err(Error::InvalidOption("checked".into()));
        let copy = prepare(&files, "model.safetensors", &weights, &opts, checked);
        assert!(matches!(copy, Ok(None)), "{:?}", copy.err());
        assert!(!dir.path().join("prepared").exists());
    }
}
