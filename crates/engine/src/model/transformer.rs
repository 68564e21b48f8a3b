//! The transformer path: loading a sentence-transformers model (encoder, pooling, dense), tokenizing
//! as sentence-transformers does, and running packed batches through the encoder.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use super::{Backend, EmbedOptions, Embedder, ModelInfo, Post};
use crate::bert::{BertModel, Flavor, Packed, ResidentLayers, Workspace, check_ids};
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
use crate::tokenize::{Scratch, Tokenizer};
use crate::weights::SafeTensors;

self_cell::self_cell!(
    /// The encoder borrowing its weights from the mapped file it owns.
    pub(super) struct Encoder {
        owner: SafeTensors,
        #[covariant]
        dependent: BertModel,
    }
);

/// Upper bound on tokens packed into one batch, so scratch memory stays bounded (≈ 6 MB for the
/// feed-forward buffer of a MiniLM-sized model) however long the inputs are.
pub(super) const MAX_BATCH_TOKENS: usize = 1024;

/// When the encoder's layers are copied into huge pages with their matrices packed
/// (`resident_layers`): a one-off cost of 21–121 ms here (mostly the kernel zeroing fresh huge
/// pages, which in this VM first have to be backed by the host), repaid by faster products —
/// 0.4–1.0 ms per single-sentence run (1.59–2.10 → 1.20–1.52 ms on 2 threads), and ~15 % of a
/// batched run (no per-call packing).
/// So: after this many runs (a server, a loop over inputs) …
const RESIDENT_AFTER_RUNS: usize = 64;
/// … or at once for a run of at least this many tokens (≈ 1.5 s of work on two cores).
const RESIDENT_MIN_TOKENS: usize = 16 * MAX_BATCH_TOKENS;

/// `SEMBED_RESIDENT=0` keeps every run on the mapped weights (for measuring that path, or to keep
/// memory to the mapping alone).
fn residency_allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var_os("SEMBED_RESIDENT").is_none_or(|v| v != "0"))
}

/// What a transformer batch ends with.
#[derive(Debug, Clone, Copy)]
pub(super) enum Head {
    /// The model's pooling, dense layers and normalization, then the caller's post-processing.
    Model(Post),
    /// Plain mean of the last hidden states (distillation).
    #[cfg_attr(not(feature = "distill"), allow(dead_code))]
    TokenMean,
}

impl Embedder {
    /// Loads the Transformer module at `first` and the modules after it.
    pub(super) fn load_transformer(
        src: Source,
        name: String,
        first: &ModuleEntry,
        rest: &[ModuleEntry],
    ) -> Result<Self> {
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
            match m.short_kind() {
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
            prefetch: Mutex::new(Some(prefetch)),
            backend: Backend::Transformer {
                encoder,
                resident: OnceLock::new(),
                runs: AtomicUsize::new(0),
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

    pub(super) fn max_len(&self, opts: &EmbedOptions, encoder: &Encoder) -> Result<usize> {
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

    #[allow(clippy::too_many_arguments)]
    pub(super) fn tokenize_transformer(
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

    /// Errors unless this is a transformer model (what distillation needs).
    #[cfg_attr(not(feature = "distill"), allow(dead_code))]
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
    #[cfg_attr(not(feature = "distill"), allow(dead_code))]
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
    pub(super) fn run_encoder(
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

        let tokens = spans.iter().map(|s| s.1).sum();
        let resident = self.resident_layers(tokens);

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
            self.run_batch(packed, head, ws, split, resident)
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

    /// The encoder's layers over a packed huge-page copy of their weights, made once the encoder
    /// has run [`RESIDENT_AFTER_RUNS`] times or is given [`RESIDENT_MIN_TOKENS`] at once.
    fn resident_layers(&self, tokens: usize) -> Option<&ResidentLayers> {
        let Backend::Transformer {
            encoder,
            resident,
            runs,
            ..
        } = &self.backend
        else {
            return None;
        };
        // An empty call does not count as use.
        if tokens == 0 || !residency_allowed() {
            return None;
        }
        let earlier = runs.fetch_add(1, Ordering::Relaxed);
        if earlier < RESIDENT_AFTER_RUNS && tokens < RESIDENT_MIN_TOKENS {
            return resident.get().and_then(Option::as_ref);
        }
        resident
            .get_or_init(|| {
                // Its page-mapping thread must not map again what the copy releases.
                drop(self.prefetch.lock().ok().and_then(|mut p| p.take()));
                encoder
                    .borrow_dependent()
                    .resident_layers(encoder.borrow_owner())
            })
            .as_ref()
    }

    /// Encoder → pooling → dense → normalize for one batch; returns `[batch, dim]` in batch order.
    pub(super) fn run_batch(
        &self,
        packed: &Packed,
        head: Head,
        ws: &mut Workspace,
        split: bool,
        resident: Option<&ResidentLayers>,
    ) -> Vec<f32> {
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
            with_team(|team| model.forward(resident, packed, ws, Some(team)));
        } else if packed.tokens() > 0 {
            model.forward(resident, packed, ws, None);
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

    pub(super) fn take_workspace(&self) -> Workspace {
        self.workspaces
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default()
    }

    pub(super) fn return_workspace(&self, ws: Workspace) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn is_resident(model: &Embedder) -> bool {
        match &model.backend {
            Backend::Transformer { resident, .. } => matches!(resident.get(), Some(Some(_))),
            Backend::Static(_) => false,
        }
    }

    /// Whether this machine lets us have huge pages at all (else no copy is made, by design).
    fn thp_possible() -> bool {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|s| !s.contains("[never]"))
    }

    fn fixture(name: &str) -> Embedder {
        let dir = format!(
            "{}/../../tests/data/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        Embedder::from_dir(dir).unwrap()
    }

    const TEXTS: [&str; 2] = [
        "A man is playing a guitar.",
        "Zwei Hunde spielen im Schnee.",
    ];

    /// One model shared by threads (a server) must stay possible with the lazily made copy.
    #[test]
    fn embedder_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Embedder>();
    }

    /// Largest absolute difference between two sets of vectors.
    fn max_diff(a: &Embeddings, b: &Embeddings) -> f32 {
        assert_eq!(a.as_slice().len(), b.as_slice().len());
        a.as_slice()
            .iter()
            .zip(b.as_slice())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// The first runs use the mapped weights (a one-shot CLI run pays no copy); after
    /// RESIDENT_AFTER_RUNS the layers move to the packed huge-page copy. The vectors then come from
    /// another kernel (other summation order) and may differ in the last bits only. The f32
    /// fixtures cover the three flavours' tensor names, the built-in model f16 panels.
    #[test]
    fn frequent_use_moves_layers_to_packed_huge_pages() {
        let mut names = vec!["tiny-bert-cls", "tiny-xlmr-mean", "tiny-mpnet-mean"];
        if cfg!(feature = "builtin") {
            names.push("built-in");
        }
        let load = |name: &str| -> Embedder {
            #[cfg(feature = "builtin")]
            if name == "built-in" {
                return Embedder::builtin().unwrap();
            }
            fixture(name)
        };
        for name in names {
            for threads in [1, 2] {
                let opts = EmbedOptions {
                    threads,
                    ..Default::default()
                };
                let model = load(name);
                let first = model.embed(&TEXTS, &opts).unwrap();
                for _ in 1..RESIDENT_AFTER_RUNS {
                    model.embed(&TEXTS[..1], &opts).unwrap();
                    // Empty calls are not use.
                    model.embed(&[] as &[&str], &opts).unwrap();
                }
                assert!(!is_resident(&model), "{name}");
                let later = model.embed(&TEXTS, &opts).unwrap();
                assert_eq!(is_resident(&model), thp_possible(), "{name}");
                let d = max_diff(&first, &later);
                assert!(d < 1e-5, "{name}, {threads} threads: max difference {d}");
            }
        }
    }

    /// `SEMBED_RESIDENT=0` keeps a model on its mapped weights however often it runs. The setting
    /// is read once per process, so the check runs in a child process of this test binary.
    #[test]
    fn resident_switch_off_is_honoured() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "model::transformer::tests::never_resident_when_switched_off",
                "--ignored",
                "--nocapture",
            ])
            .env("SEMBED_RESIDENT", "0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test: {stdout}"
        );
    }

    /// Run by `resident_switch_off_is_honoured` with `SEMBED_RESIDENT=0`.
    #[test]
    #[ignore = "run by resident_switch_off_is_honoured in a child process with SEMBED_RESIDENT=0"]
    fn never_resident_when_switched_off() {
        assert_eq!(std::env::var("SEMBED_RESIDENT").as_deref(), Ok("0"));
        let model = fixture("tiny-bert-cls");
        let opts = EmbedOptions::default();
        for _ in 0..=RESIDENT_AFTER_RUNS {
            model.embed(&TEXTS, &opts).unwrap();
        }
        assert!(!is_resident(&model));
    }

    /// A run of RESIDENT_MIN_TOKENS tokens copies at once (a smaller one does not), and its vectors
    /// match the mapped weights' run of each text alone.
    #[test]
    fn a_big_run_copies_at_once() {
        let opts = EmbedOptions::default();
        let texts: Vec<String> = (0..3000)
            .map(|i| format!("sentence number {i} of many"))
            .collect();
        let small = fixture("tiny-bert-cls");
        small.embed(&texts[..100], &opts).unwrap();
        assert!(!is_resident(&small));
        let model = fixture("tiny-bert-cls");
        let all = model.embed(&texts, &opts).unwrap();
        let tokens: usize = texts
            .iter()
            .map(|t| model.token_ids(t, &opts).unwrap().len())
            .sum();
        assert!(
            tokens >= RESIDENT_MIN_TOKENS,
            "{tokens} tokens: test too small"
        );
        assert_eq!(is_resident(&model), thp_possible());
        let reference = fixture("tiny-bert-cls");
        for i in [0, 1234, 2999] {
            let want = reference.embed(&[texts[i].as_str()], &opts).unwrap();
            let d = want
                .row(0)
                .iter()
                .zip(all.row(i))
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(d < 1e-5, "text {i}: max difference {d}");
        }
        assert!(!is_resident(&reference));
    }
}
