//! [`Embedder`]: a loaded model and the one place its stages meet — text → ids (`text.rs`) →
//! encoder (`encoder/`) or static lookup (`static_lookup.rs`) → post-processing (`post.rs`) →
//! [`Embeddings`]. Loading lives in `load/`, threads in `threads.rs`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::embeddings::{Embeddings, TokenEmbeddings};
use crate::encoder::{Output, Schedule, Transformer};
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::info::{ModelInfo, ModelKind};
use crate::load::{self, source::Source};
use crate::options::{EmbedOptions, LoadOptions};
use crate::post::Post;
use crate::static_lookup::StaticLookup;
use crate::text::{CallText, TextPolicy, TextScratch};
use crate::threads::ThreadPool;
use crate::tokenize::Tokenizer;
use crate::tokenized::{Settings, Tokenized};

/// What runs between the tokenizer and the post-processing.
pub(crate) enum Body {
    Transformer(Transformer),
    Static(StaticLookup),
}

/// What happened during an [`Embedder::embed_with_report`] call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedReport {
    /// Texts cut to the token limit (or, for Model2Vec models, to the character pre-cut).
    pub truncated: usize,
}

/// A sentence-transformers (or Model2Vec) model ready to embed text.
///
/// Load once, embed many times (`Embedder` is `Send + Sync`: share it between threads; calls draw
/// threads from one [`ThreadPool`], so concurrent callers queue instead of oversubscribing the
/// cores). The encoder's matrix products all run one kernel over weights in its panel layout —
/// compiled in for the built-in model, read from a prepared copy
/// ([`LoadOptions::prepared`](crate::LoadOptions::prepared)) or packed at load — so a text's
/// vector has the same bits alone or in any batch, at any thread count, and on AVX2 or AVX-512.
/// Panels used where they lie move to huge pages once the model has run 64 times or is given
/// 16,384 tokens at once ([`Residency`](crate::Residency)).
///
/// ```no_run
/// use sembed::{Embedder, EmbedOptions};
/// let model = Embedder::from_dir("models/all-MiniLM-L6-v2")?;
/// let e = model.embed(&["A man is playing a guitar.", "Someone plays music."], &EmbedOptions::default())?;
/// println!("{}", sembed::cosine(e.row(0), e.row(1)));
/// # Ok::<(), sembed::Error>(())
/// ```
pub struct Embedder {
    /// Serial number, so a [`Tokenized`] cannot be embedded by another model.
    id: u64,
    pub(crate) text: TextPolicy,
    pub(crate) body: Body,
    /// Whether the model ends by normalizing (its Normalize module, model2vec's `normalize`).
    pub(crate) normalize: bool,
    pub(crate) info: ModelInfo,
    pub(crate) files: Source,
    /// The tokenizer.json path in `files` (re-read by distillation).
    pub(crate) tokenizer_file: String,
    pool: ThreadPool,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    pub(crate) fn assemble(parts: load::Parts, opts: &LoadOptions) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Embedder {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            text: parts.text,
            body: parts.body,
            normalize: parts.normalize,
            info: parts.info,
            files: parts.files,
            tokenizer_file: parts.tokenizer_file,
            pool: opts.threads.clone().unwrap_or_else(ThreadPool::global),
        }
    }

    /// Loads a sentence-transformers (or plain Hugging Face BERT, or Model2Vec) model directory.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_dir_with(dir, &LoadOptions::default())
    }

    /// [`from_dir`](Self::from_dir) with load options.
    pub fn from_dir_with(dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Self> {
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
        let name = opts.name.clone().unwrap_or_else(|| {
            dir.canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| dir.display().to_string())
        });
        load::load(Source::Dir(dir.to_path_buf()), name, opts)
    }

    /// Loads a model from its files in memory (for bindings without a file system): relative
    /// paths as in a model directory (`config.json`, `1_Pooling/config.json`, …) → bytes.
    ///
    /// ```no_run
    /// # fn read(_: &str) -> Vec<u8> { vec![] }
    /// let files = [
    ///     ("modules.json", read("modules.json")),
    ///     ("config.json", read("config.json")),
    ///     ("tokenizer.json", read("tokenizer.json")),
    ///     ("model.safetensors", read("model.safetensors")),
    ///     ("1_Pooling/config.json", read("1_Pooling/config.json")),
    /// ];
    /// let model = sembed::Embedder::from_files(files, &Default::default())?;
    /// # Ok::<(), sembed::Error>(())
    /// ```
    pub fn from_files<K: Into<String>, V: Into<Vec<u8>>>(
        files: impl IntoIterator<Item = (K, V)>,
        opts: &LoadOptions,
    ) -> Result<Self> {
        let files: std::collections::BTreeMap<String, std::sync::Arc<[u8]>> = files
            .into_iter()
            .map(|(k, v)| {
                let k: String = k.into();
                let k = k.trim_start_matches("./").to_string();
                (k, v.into().into())
            })
            .collect();
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| "model in memory".to_string());
        load::load(Source::Memory(std::sync::Arc::new(files)), name, opts)
    }

    /// Loads a model by hub id or alias (`sentence-transformers/all-MiniLM-L6-v2`, `bge-small-en-v1.5`,
    /// `org/name@revision`): from the Hugging Face cache when it is there, else downloaded into it
    /// (see [`crate::hub`]). Named after the id unless `opts.name` says otherwise.
    #[cfg(feature = "hub")]
    pub fn from_hub(
        model: &crate::hub::ModelRef,
        hub: &crate::hub::Hub,
        progress: &mut dyn crate::hub::Progress,
    ) -> Result<Self> {
        Self::from_hub_with(model, hub, progress, &LoadOptions::default())
    }

    /// [`from_hub`](Self::from_hub) with load options.
    #[cfg(feature = "hub")]
    pub fn from_hub_with(
        model: &crate::hub::ModelRef,
        hub: &crate::hub::Hub,
        progress: &mut dyn crate::hub::Progress,
        opts: &LoadOptions,
    ) -> Result<Self> {
        let dir = hub.resolve(model, progress)?;
        let name = opts.name.clone().unwrap_or_else(|| model.to_string());
        load::load(Source::Dir(dir), name, opts)
    }

    /// The built-in all-MiniLM-L6-v2 (float16 weights inside the library; no files, no network).
    #[cfg(feature = "builtin")]
    pub fn builtin() -> Result<Self> {
        Self::builtin_with(&LoadOptions::default())
    }

    /// [`builtin`](Self::builtin) with load options.
    #[cfg(feature = "builtin")]
    pub fn builtin_with(opts: &LoadOptions) -> Result<Self> {
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| crate::builtin::NAME.to_string());
        load::load(Source::Builtin, name, opts)
    }

    /// Facts about the model (dimensions, pooling, source, fingerprint, ...).
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Width of the output vectors.
    pub fn dim(&self) -> usize {
        self.info.dim
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.text.tokenizer
    }

    /// The thread budget this model's calls draw from.
    pub fn thread_pool(&self) -> &ThreadPool {
        &self.pool
    }

    /// The tokenizer.json this model was loaded with (`None` when it only has a vocab.txt), and
    /// its path for messages.
    pub fn tokenizer_json(&self) -> Result<(Option<Vec<u8>>, std::path::PathBuf)> {
        let files = load::source::Files::new(self.files.clone(), None);
        let bytes = files.read(&self.tokenizer_file)?.map(|b| b.to_vec());
        Ok((bytes, files.label(&self.tokenizer_file)))
    }

    /// A fingerprint of what determines this call's vectors: the model's files
    /// ([`ModelInfo::fingerprint`]) and every option that changes vectors — the prompt, the token
    /// limit, normalization and `truncate_dim` (not batch size or threads, which do not). Same
    /// model and options → same fingerprint in any process on any machine.
    ///
    /// ```no_run
    /// use sembed::{EmbedOptions, Embedder};
    /// let model = Embedder::from_dir("models/all-MiniLM-L6-v2")?;
    /// let plain = model.fingerprint(&EmbedOptions::default())?;
    /// let cut = model.fingerprint(&EmbedOptions { truncate_dim: Some(128), ..Default::default() })?;
    /// assert_ne!(plain, cut);
    /// # Ok::<(), sembed::Error>(())
    /// ```
    pub fn fingerprint(&self, opts: &EmbedOptions) -> Result<Fingerprint> {
        let call = self.text.resolve(opts)?;
        let post = self.post(opts)?;
        let options = serde_json::json!({
            "prompt": call.prompt,
            "skip_tokens": call.skip_tokens,
            "max_length": (call.max_len != usize::MAX).then_some(call.max_len),
            "model_normalize": post.module_normalize,
            "truncate_dim": post.truncate_dim.filter(|&t| t < self.info.dim),
            "normalize_after": post.force_normalize,
        });
        Ok(self
            .info
            .fingerprint()?
            .derive("encode", &options.to_string()))
    }

    fn post(&self, opts: &EmbedOptions) -> Result<Post> {
        if opts.batch_size == 0 {
            return Err(Error::InvalidOption("batch size must be at least 1".into()));
        }
        Post::new(opts, self.normalize, self.info.dim)
    }

    fn settings(&self, opts: &EmbedOptions, call: &CallText) -> Result<Settings> {
        Ok(Settings {
            model: self.id,
            post: self.post(opts)?,
            skip_tokens: call.skip_tokens,
            batch_size: opts.batch_size,
            threads: opts.threads,
        })
    }

    /// Token ids for `text` exactly as the model consumes them: for transformers as
    /// sentence-transformers tokenizes (prompt, optional lowercasing, truncation, special tokens);
    /// for static models as model2vec does (no specials, unknown dropped).
    pub fn token_ids(&self, text: &str, opts: &EmbedOptions) -> Result<Vec<u32>> {
        let call = self.text.resolve(opts)?;
        let mut out = Vec::new();
        self.text
            .encode(text, &call, 0, &mut out, &mut TextScratch::default())?;
        Ok(out)
    }

    /// How long `text` is as the model's limit counts it, without special tokens or prompt: its
    /// tokens (for a Model2Vec model, the larger of its tokens, unknown ones included, and its
    /// characters over the median token length, which model2vec's pre-cut counts). A text of at
    /// most [`token_budget`](Self::token_budget) is never truncated: what a chunker fills.
    ///
    /// ```no_run
    /// let model = sembed::Embedder::from_dir("models/all-MiniLM-L6-v2")?;
    /// assert_eq!(model.count_tokens("hello world")?, 2);
    /// # Ok::<(), sembed::Error>(())
    /// ```
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        self.text.count(text, &mut TextScratch::default())
    }

    /// How many tokens of text fit in one sequence with these options: the model's limit (or
    /// `opts.max_length`) minus the special tokens and the prompt's tokens; `None` when the
    /// model has no limit (a static model without `max_length`).
    pub fn token_budget(&self, opts: &EmbedOptions) -> Result<Option<usize>> {
        let call = self.text.resolve(opts)?;
        if call.max_len == usize::MAX {
            return Ok(None);
        }
        Ok(Some(
            call.max_len.saturating_sub(self.text.overhead(&call)?),
        ))
    }

    /// The first stage: `texts` as token ids, with per-text token counts and which texts were
    /// truncated (see [`Tokenized`]). [`embed_tokenized`](Self::embed_tokenized) finishes the job;
    /// the two together give exactly what [`embed`](Self::embed) gives.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S], opts: &EmbedOptions) -> Result<Tokenized> {
        let call = self.text.resolve(opts)?;
        let mut t = Tokenized::new(self.settings(opts, &call)?);
        let (mut buf, mut scratch) = (Vec::new(), TextScratch::default());
        for (i, text) in texts.iter().enumerate() {
            let cut = self
                .text
                .encode(text.as_ref(), &call, i, &mut buf, &mut scratch)?;
            t.push(&buf, cut);
        }
        Ok(t)
    }

    /// Like [`tokenize`](Self::tokenize) for texts that are already token ids of this model's
    /// tokenizer (an OpenAI request's token arrays): checked against the vocabulary, cut to the
    /// limit (or refused with truncation off); `add_special` wraps each in the model's special
    /// tokens as tokenizing a text would.
    pub fn tokenize_ids<I: AsRef<[u32]>>(
        &self,
        seqs: &[I],
        add_special: bool,
        opts: &EmbedOptions,
    ) -> Result<Tokenized> {
        let call = self.text.resolve(opts)?;
        let mut t = Tokenized::new(self.settings(opts, &call)?);
        let mut buf = Vec::new();
        for (i, ids) in seqs.iter().enumerate() {
            let cut = self
                .text
                .encode_ids(ids.as_ref(), add_special, &call, i, &mut buf)?;
            t.push(&buf, cut);
        }
        Ok(t)
    }

    /// The second stage: vectors of texts tokenized by [`tokenize`](Self::tokenize) (or
    /// [`tokenize_ids`](Self::tokenize_ids)) of this same model, in their order.
    pub fn embed_tokenized(&self, t: &Tokenized) -> Result<Embeddings> {
        self.check(t)?;
        let s = t.settings;
        let dim = s.post.out_dim(self.info.dim);
        let data = match &self.body {
            Body::Transformer(m) => m.run(
                &t.ids,
                &t.spans,
                Output::Pooled {
                    skip: s.skip_tokens,
                    post: &s.post,
                },
                Schedule {
                    batch_size: s.batch_size,
                    threads: s.threads,
                },
                &self.pool,
            ),
            Body::Static(m) => {
                let raw = m.embed_ids(
                    &t.ids,
                    &t.spans,
                    s.post.module_normalize,
                    s.threads,
                    &self.pool,
                );
                // The model's normalization ran in the workers, row by row.
                s.post.apply(raw, self.info.dim, None)
            }
        };
        Ok(Embeddings::new(dim, data))
    }

    fn check(&self, t: &Tokenized) -> Result<()> {
        if t.settings.model != self.id {
            return Err(Error::InvalidOption(
                "these texts were tokenized by another model".into(),
            ));
        }
        Ok(())
    }

    /// The last hidden states of every token (sentence-transformers' `token_embeddings`): the
    /// encoder's output before pooling, special tokens included. Transformers only.
    pub fn token_embeddings(&self, t: &Tokenized) -> Result<TokenEmbeddings> {
        self.check(t)?;
        let Body::Transformer(m) = &self.body else {
            return Err(Error::Unsupported {
                what: "token embeddings",
                name: format!("{} (a static model has no token states)", self.info.name),
            });
        };
        let data = m.run(
            &t.ids,
            &t.spans,
            Output::TokenStates,
            Schedule {
                batch_size: t.settings.batch_size,
                threads: t.settings.threads,
            },
            &self.pool,
        );
        Ok(TokenEmbeddings::new(
            m.dims().hidden,
            data,
            t.spans.iter().map(|s| s.1),
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
        match &self.body {
            Body::Transformer(_) => {
                let t = self.tokenize(texts, opts)?;
                let truncated = t.truncated_count();
                Ok((self.embed_tokenized(&t)?, EmbedReport { truncated }))
            }
            // Static models are mostly tokenizing: it runs in the workers, text by text.
            Body::Static(m) => {
                let call = self.text.resolve(opts)?;
                let post = self.post(opts)?;
                let (raw, truncated) = m.embed_texts(
                    texts,
                    (&self.text, &call),
                    post.module_normalize,
                    opts.threads,
                    &self.pool,
                )?;
                let out = post.apply(raw, self.info.dim, None);
                Ok((
                    Embeddings::new(post.out_dim(self.info.dim), out),
                    EmbedReport { truncated },
                ))
            }
        }
    }

    /// Transformer or static.
    pub fn kind(&self) -> ModelKind {
        self.info.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Residency;

    fn is_resident(model: &Embedder) -> bool {
        match &model.body {
            Body::Transformer(t) => t.is_resident(),
            Body::Static(_) => false,
        }
    }

    fn fixture_with(name: &str, opts: &LoadOptions) -> Embedder {
        let dir = format!(
            "{}/../../tests/data/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        Embedder::from_dir_with(dir, opts).unwrap()
    }

    fn fixture(name: &str) -> Embedder {
        fixture_with(name, &LoadOptions::default())
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

    /// `name`'s fixture with its linear weights rewritten as panels (what the built-in model
    /// compiles in and a prepared copy holds), in a temporary folder.
    fn panels_fixture(name: &str) -> (tempfile::TempDir, Embedder) {
        let src = format!(
            "{}/../../tests/data/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let tmp = tempfile::tempdir().unwrap();
        fn copy(from: &std::path::Path, to: &std::path::Path) {
            for entry in std::fs::read_dir(from).unwrap() {
                let path = entry.unwrap().path();
                let dest = to.join(path.file_name().unwrap());
                if path.is_dir() {
                    std::fs::create_dir(&dest).unwrap();
                    copy(&path, &dest);
                } else if path.file_name().unwrap() == "model.safetensors" {
                    let bytes = std::fs::read(&path).unwrap();
                    let mut out = Vec::new();
                    use crate::weights::panels_file::{is_encoder_linear, write_panels};
                    write_panels(&bytes, &is_encoder_linear, &[], &mut out).unwrap();
                    std::fs::write(dest, out).unwrap();
                } else {
                    std::fs::copy(&path, dest).unwrap();
                }
            }
        }
        copy(src.as_ref(), tmp.path());
        let model = Embedder::from_dir(tmp.path()).unwrap();
        (tmp, model)
    }

    /// Weights as stored are packed at load, so a model never switches kernels and its vectors
    /// keep their bits; weights already in panels (a panels file, the built-in model) are used
    /// where they lie, moved to huge pages after AFTER_RUNS runs, again with the same bits. The
    /// f32 fixtures cover the three flavours' tensor names, the built-in model f16 panels.
    #[test]
    fn frequent_use_moves_layers_to_packed_huge_pages_with_the_same_bits() {
        let packs = crate::ops::packed::worth_packing(crate::ops::CpuLevel::best());
        let mut names = vec!["tiny-bert-cls", "tiny-mpnet-mean"];
        // XLM-R's Unigram tokenizer loads through the `tokenizers` crate only.
        if cfg!(feature = "tokenizers") {
            names.push("tiny-xlmr-mean");
        }
        if cfg!(feature = "builtin") {
            names.push("built-in");
        }
        for name in names {
            for panels in [false, true] {
                if name == "built-in" && !panels {
                    continue;
                }
                let (_tmp, model) = match (name, panels) {
                    #[cfg(feature = "builtin")]
                    ("built-in", _) => (tempfile::tempdir().unwrap(), Embedder::builtin().unwrap()),
                    (_, true) => panels_fixture(name),
                    (_, false) => (tempfile::tempdir().unwrap(), fixture(name)),
                };
                assert_eq!(
                    is_resident(&model),
                    packs && !panels,
                    "{name}: packed at load"
                );
                for threads in [1, 2] {
                    let opts = EmbedOptions {
                        threads,
                        ..Default::default()
                    };
                    let first = model.embed(&TEXTS, &opts).unwrap();
                    for _ in 1..crate::encoder::resident_after_runs() {
                        model.embed(&TEXTS[..1], &opts).unwrap();
                        // Empty calls are not use.
                        model.embed(&[] as &[&str], &opts).unwrap();
                    }
                    let later = model.embed(&TEXTS, &opts).unwrap();
                    assert!(is_resident(&model), "{name}");
                    assert_eq!(
                        first.as_slice(),
                        later.as_slice(),
                        "{name}, {threads} threads"
                    );
                }
            }
        }
    }

    /// The built-in model with a prepared copy: the copy is the compiled-in bytes (same vectors),
    /// and frequent use copies the layers to huge pages only when the copy is not mapped through
    /// huge pages already (it is where the page cache keeps it in 2 MiB folios, as ext4 does).
    #[cfg(feature = "builtin")]
    #[test]
    fn a_prepared_builtin_copy_gives_the_same_vectors_and_is_copied_only_if_not_huge() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LoadOptions {
            prepared: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let plain = Embedder::builtin().unwrap();
        let want = plain.embed(&TEXTS, &EmbedOptions::default()).unwrap();
        let _first = Embedder::builtin_with(&opts).unwrap();
        let copies: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".safetensors"))
            .collect();
        assert_eq!(copies.len(), 1, "{copies:?}");
        let model = Embedder::builtin_with(&opts).unwrap();
        let Body::Transformer(t) = &model.body else {
            unreachable!()
        };
        assert!(!t.is_resident());
        for _ in 0..crate::encoder::resident_after_runs() + 1 {
            let got = model.embed(&TEXTS, &EmbedOptions::default()).unwrap();
            assert_eq!(got.as_slice(), want.as_slice());
        }
        assert_eq!(t.is_resident(), !t.panels_huge_mapped());
    }

    /// `Residency::Never` keeps a model on its weights as loaded however often it runs (what
    /// `SEMBED_RESIDENT=0` sets in the CLI); `Auto` packs weights as stored at load; `Eager`
    /// copies at load even weights already in panels.
    #[test]
    fn residency_policy_is_per_model() {
        let packs = crate::ops::packed::worth_packing(crate::ops::CpuLevel::best());
        let never = fixture_with(
            "tiny-bert-cls",
            &LoadOptions {
                residency: Residency::Never,
                ..Default::default()
            },
        );
        let auto = fixture("tiny-bert-cls");
        assert_eq!(is_resident(&auto), packs);
        let opts = EmbedOptions::default();
        for _ in 0..=crate::encoder::resident_after_runs() {
            never.embed(&TEXTS, &opts).unwrap();
        }
        assert!(!is_resident(&never));
        let (_tmp, panels) = panels_fixture("tiny-bert-cls");
        assert!(!is_resident(&panels));
        let eager = |dir: &std::path::Path| {
            Embedder::from_dir_with(
                dir,
                &LoadOptions {
                    residency: Residency::Eager,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        assert!(is_resident(&eager(_tmp.path())));
        assert_eq!(
            never.embed(&TEXTS, &opts).unwrap().as_slice().len(),
            auto.embed(&TEXTS, &opts).unwrap().as_slice().len()
        );
    }

    /// Over panels, a run of MIN_TOKENS tokens copies to huge pages at once (a smaller one does
    /// not), and its vectors equal each text's run alone bit for bit, however the texts were
    /// batched: what lets a cache or an index hand back a vector computed in another run.
    #[test]
    fn a_big_run_copies_at_once_and_batches_do_not_change_bits() {
        let opts = EmbedOptions::default();
        let texts: Vec<String> = (0..3000)
            .map(|i| format!("sentence number {i} of many{}", " more".repeat(i % 7)))
            .collect();
        let (_a, small) = panels_fixture("tiny-bert-cls");
        small.embed(&texts[..100], &opts).unwrap();
        assert!(!is_resident(&small));
        let (_b, model) = panels_fixture("tiny-bert-cls");
        let all = model.embed(&texts, &opts).unwrap();
        let t = model.tokenize(&texts, &opts).unwrap();
        assert!(
            t.total_tokens() >= crate::encoder::resident_min_tokens(),
            "{} tokens: test too small",
            t.total_tokens()
        );
        assert!(is_resident(&model));
        // Packed at load (where packing pays): the same bits as panels from the file.
        let stored = fixture("tiny-bert-cls");
        let models = match crate::ops::packed::worth_packing(crate::ops::CpuLevel::best()) {
            true => vec![&small, &stored],
            false => vec![&small],
        };
        for i in [0, 1, 5, 1234, 2999] {
            for threads in [1, 2] {
                let one = EmbedOptions {
                    threads,
                    batch_size: 1 + i % 5,
                    ..Default::default()
                };
                let some = &texts[i.saturating_sub(2)..=i];
                let last = some.len() - 1;
                for &m in &models {
                    let alone = m.embed(&[texts[i].as_str()], &one).unwrap();
                    assert_eq!(
                        alone.row(0),
                        all.row(i),
                        "text {i} alone, {threads} threads"
                    );
                    let among = m.embed(some, &one).unwrap();
                    assert_eq!(among.row(last), all.row(i), "text {i} among others");
                }
            }
        }
        assert!(!is_resident(&small));
    }
}
