//! The Model2Vec path: loading a static model's table, tokenizing as model2vec 0.10 does, and
//! averaging table rows, texts split across threads when there are many.

use std::sync::Mutex;

use super::{Backend, EmbedOptions, EmbedReport, Embedder, ModelInfo, Post, too_long};
use crate::bert::check_ids;
use crate::embeddings::Embeddings;
use crate::error::{Error, Result};
use crate::source::{Source, join};
use crate::static_model::{self, StaticModel};
use crate::tokenize::{Scratch, Tokenizer};
use crate::weights::SafeTensors;

self_cell::self_cell!(
    /// A Model2Vec table borrowed from the mapped file it owns.
    pub(super) struct StaticTable {
        owner: SafeTensors,
        #[covariant]
        dependent: StaticModel,
    }
);

/// Model2Vec encoding settings (see `static_model`).
pub(super) struct StaticPipeline {
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

impl Embedder {
    /// Loads a Model2Vec static model whose table lives in `dir` (`.` for model2vec's own layout,
    /// `0_StaticEmbedding` for sentence-transformers'), with model2vec 0.10's settings.
    pub(super) fn load_static(src: Source, name: String, dir: &str) -> Result<Self> {
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
            prefetch: Mutex::new(None),
            backend: Backend::Static(pipeline),
            tokenizer,
            normalize,
            info,
            src,
            tokenizer_file: tok_rel,
            workspaces: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn static_max_length(
        p: &StaticPipeline,
        opts: &EmbedOptions,
    ) -> Result<Option<usize>> {
        match opts.max_length {
            Some(0) => Err(Error::InvalidOption("max length must be at least 1".into())),
            Some(n) => Ok(Some(n)),
            None => Ok(p.max_length),
        }
    }

    pub(super) fn tokenize_static(
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
    pub(super) fn embed_static<S: AsRef<str> + Sync>(
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
}
