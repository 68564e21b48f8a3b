//! Text → token ids. Two back ends behind one type:
//! - `wordpiece`: a native BERT WordPiece tokenizer that loads in about a millisecond;
//! - the Hugging Face `tokenizers` crate, for everything else (Unigram, BPE, unusual pipelines);
//!   an optional dependency (the `tokenizers` feature, on by default): without it, such files
//!   are a clear error and only WordPiece loads (the small Model2Vec WebAssembly build).
//!
//! `Tokenizer::from_json` reads a tokenizer.json and picks the native path only when it reproduces the
//! file's pipeline exactly.

// The `tokenizers` crate's backend, or (a build without the `tokenizers` feature) a stand-in
// whose loader says what is missing.
#[cfg_attr(feature = "tokenizers", path = "hf.rs")]
#[cfg_attr(not(feature = "tokenizers"), path = "hf_absent.rs")]
mod hf;
mod json_scan;
mod normalizer;
mod prepared;
mod vocab;
mod wordpiece;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::bytes::Bytes;
use crate::error::{Error, Result};
use normalizer::BertNormalizer;
use vocab::{Arena, Vocab};
pub(crate) use wordpiece::Scratch;
use wordpiece::WordPiece;

/// Most entries of a tokenizer.json's `added_tokens`: a million took 0.5 GB and 0.9 s to load
/// natively, 1.3 GB and 6.3 s through `tokenizers`; 100,000 take 57 MB and 125 MB (the test
/// models have 5 and 6).
pub(crate) const MAX_ADDED_TOKENS: usize = 100_000;

/// Most ids a tokenizer may have (its largest id + 1): [`Tokenizer::tokens_by_id`] makes a string
/// per id (24 bytes each, 400 MB at the limit), and a single token with id 4,000,000,000 made it
/// ask for 96 GB (the server's `/tokenize` aborted). The test models have about 30,500 ids.
pub(crate) const MAX_VOCAB_SIZE: usize = 1 << 24;

/// A loaded tokenizer. Produces the ids sentence-transformers feeds its transformer, specials included.
///
/// ```no_run
/// let tok = sembed::Tokenizer::from_file(std::path::Path::new("model/tokenizer.json"))?;
/// let ids = tok.encode("Hello world", 256)?;
/// assert_eq!(ids.first(), Some(&101)); // [CLS] for BERT vocabularies
/// # Ok::<(), sembed::Error>(())
/// ```
#[derive(Debug)]
pub struct Tokenizer {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Native(Box<WordPiece>),
    Hf(Box<hf::Hf>),
}

impl Tokenizer {
    /// Loads a tokenizer.json file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&bytes, path)
    }

    /// Parses tokenizer.json content; `path` is only used in error messages.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        Self::from_bytes(Arc::new(Bytes::Owned(bytes.into())), path)
    }

    /// Like [`from_json`](Self::from_json), keeping `bytes` (a memory-mapped or compiled-in file):
    /// the native vocabulary points into it instead of copying its tokens.
    pub(crate) fn from_bytes(bytes: Arc<Bytes>, path: &Path) -> Result<Self> {
        Self::from_bytes_prepared(bytes, path, None)
    }

    /// Like [`from_bytes`](Self::from_bytes); with `prepared` = (a folder, the file's sha256),
    /// a WordPiece vocabulary is read from its prepared file in that folder, which is made
    /// when missing (see [`prepared`]): the same lookups without scanning the vocabulary.
    pub(crate) fn from_bytes_prepared(
        bytes: Arc<Bytes>,
        path: &Path,
        prepared: Option<(&Path, [u8; 32])>,
    ) -> Result<Self> {
        let invalid = |e: &dyn std::fmt::Display| {
            Error::invalid(path, format!("not a valid tokenizer.json: {e}"))
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| invalid(&e))?;
        // A prepared vocabulary names where the vocabulary object stands in this very file.
        let frozen = prepared
            .and_then(|(dir, sha)| prepared::open(dir, &sha))
            .filter(|&(_, at, len)| {
                len >= 2
                    && text
                        .get(at..at + len)
                        .is_some_and(|v| v.starts_with('{') && v.ends_with('}'))
            });
        // The vocabulary is most of the file: scan it once, by hand, and let serde_json parse the
        // rest with an empty object in its place. Anything unexpected takes the plain serde path,
        // which also produces the error messages.
        let scanned = match frozen {
            Some((f, at, len)) => Some((Vocab::from_frozen(f), (at, len))),
            None => json_scan::find_model_vocab(text).and_then(|at| {
                let (vocab, len) =
                    Vocab::from_json_object(Arena::new(bytes.clone()), at, "##").ok()?;
                Some((vocab, (at, len)))
            }),
        };
        if let Some((v, _)) = &scanned {
            check_id(v.max_id().map(u64::from), path)?;
        }
        let rest = scanned
            .as_ref()
            .map(|(_, (at, len))| [&text[..*at], "{}", &text[at + len..]].concat());
        let file: TokenizerFile<'_> =
            serde_json::from_str(rest.as_deref().unwrap_or(text)).map_err(|e| invalid(&e))?;
        check_added(&file, path)?;
        // Without the fast path, the raw vocabulary is a slice of `text`: where it starts.
        let raw_at = file
            .model
            .vocab
            .filter(|_| rest.is_none())
            .map(|raw| raw.get().as_ptr() as usize - text.as_ptr() as usize);
        let (vocab, span) = match scanned {
            Some((v, span)) => (Some(VocabSource::Scanned(Box::new(v))), Some(span)),
            None => (
                raw_at.map(|at| VocabSource::Raw(Arena::new(bytes.clone()), at)),
                None,
            ),
        };
        if let Some(wp) = native_from_json(&file, vocab, path)? {
            // Made once per tokenizer.json (a vocabulary read from its file has no bytes to
            // write); best effort (a read-only cache is no error).
            if let (Some((dir, sha)), Some(span)) = (prepared, span)
                && let Some(out) = wp.vocab.prepared_bytes(&sha, span)
            {
                let _ = prepared::write(dir, &sha, &out);
            }
            check_id(wp.vocab.max_id().map(u64::from), path)?;
            return Ok(Tokenizer {
                backend: Backend::Native(Box::new(wp)),
            });
        }
        Self::hf_from_json(&bytes, &file, path)
    }

    /// Loads through the `tokenizers` crate even when the native path would apply (for testing).
    #[doc(hidden)]
    pub fn from_json_hf(bytes: &[u8], path: &Path) -> Result<Self> {
        let file: TokenizerFile<'_> = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(path, format!("not a valid tokenizer.json: {e}")))?;
        check_added(&file, path)?;
        Self::hf_from_json(bytes, &file, path)
    }

    fn hf_from_json(bytes: &[u8], file: &TokenizerFile<'_>, path: &Path) -> Result<Self> {
        // The tokenizers crate panics at encode time on a template naming a special token its
        // table lacks (found by fuzzing): refused here, at load.
        check_templates(&raw_value(file.post_processor, path)?)
            .map_err(|e| Error::invalid(path, format!("post_processor: {e}")))?;
        // It also panics (`expect("Helper")`) when its decoder is not JSON it can read where it
        // stands, one level down in the file: nested past serde_json's depth limit of 128, or a
        // number out of range. The same read here, under one extra level, makes that an error.
        if let Some(raw) = file.decoder {
            serde_json::from_str::<Value>(&format!("[{}]", raw.get()))
                .map_err(|e| Error::invalid(path, format!("decoder: {e}")))?;
        }
        // And (`expect("Precompiled")`) on a SentencePiece `Precompiled` normalizer whose
        // character map it cannot read: read here first.
        check_precompiled(&raw_value(file.normalizer, path)?)
            .map_err(|e| Error::invalid(path, format!("normalizer: {e}")))?;
        let section = &file.model;
        let model = match section.kind.as_deref() {
            Some("WordPiece") => "WordPiece",
            Some("Unigram") => "Unigram",
            Some("BPE") => "BPE",
            Some("WordLevel") => "WordLevel",
            _ => "unknown",
        };
        let (unk_token, unk_id) = (section.unk_token.as_deref(), section.unk_id);
        // The model's ids, read from the file (a walk of the loaded vocabulary cost ~100 ms for
        // 250k tokens); a vocabulary scanned already was checked then, and spliced out of `file`.
        check_id(section.vocab.and_then(max_vocab_id), path)?;
        Ok(Tokenizer {
            backend: Backend::Hf(Box::new(hf::Hf::load(
                bytes, model, unk_token, unk_id, path,
            )?)),
        })
    }

    /// Builds a BERT WordPiece tokenizer from a vocab.txt (for models without tokenizer.json).
    pub fn from_vocab_txt(text: &str, lowercase: bool, path: &Path) -> Result<Self> {
        let mut vocab = Vocab::new("##", 32_768);
        for (i, t) in text.lines().enumerate() {
            // HF's BertTokenizer keeps the first id of a repeated line.
            vocab.insert(t, i as u32, false);
        }
        let id = |t: &str| {
            vocab
                .get(t)
                .ok_or_else(|| Error::invalid(path, format!("no `{t}` token")))
        };
        let (unk, cls, sep) = (id("[UNK]")?, id("[CLS]")?, id("[SEP]")?);
        let added = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter_map(|t| vocab.get(t).map(|i| (Box::from(*t), i)))
            .collect();
        let mut wp = WordPiece::new(vocab, unk, 100);
        wp.normalizer = Some(BertNormalizer {
            clean_text: true,
            handle_chinese_chars: true,
            strip_accents: None,
            lowercase,
        });
        wp.set_added(added);
        wp.prefix_ids = vec![cls];
        wp.suffix_ids = vec![sep];
        Ok(Tokenizer {
            backend: Backend::Native(Box::new(wp)),
        })
    }

    /// Token ids of `text` with the model's special tokens, truncated to `max_len` ids in total.
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        self.encode_into(text, max_len, true, &mut out, &mut Scratch::default())?;
        Ok(out)
    }

    /// Like [`encode`](Self::encode) into a reused buffer. `add_special` = false gives the bare text ids
    /// (what Model2Vec uses), capped at `max_len`. Returns whether the text was cut to fit.
    pub(crate) fn encode_into(
        &self,
        text: &str,
        max_len: usize,
        add_special: bool,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
    ) -> Result<bool> {
        match &self.backend {
            Backend::Native(wp) => Ok(wp.encode_into(text, max_len, add_special, out, scratch)),
            Backend::Hf(hf) => hf.encode_into(text, max_len, add_special, out),
        }
    }

    /// How many special ids surround every text (2 for `[CLS] … [SEP]`).
    pub fn num_special_tokens(&self) -> usize {
        match &self.backend {
            Backend::Native(wp) => wp.num_special(),
            Backend::Hf(hf) => hf.num_special(),
        }
    }

    /// A short description: the model type and which implementation runs it.
    pub fn kind(&self) -> String {
        match &self.backend {
            Backend::Native(_) => "WordPiece (native)".to_string(),
            Backend::Hf(hf) => format!("{} (tokenizers crate)", hf.model()),
        }
    }

    /// The special ids the post-processor puts before and after a single text (`[CLS]`, `[SEP]`).
    pub fn special_ids(&self) -> Result<(Vec<u32>, Vec<u32>)> {
        match &self.backend {
            Backend::Native(wp) => Ok((wp.prefix_ids.clone(), wp.suffix_ids.clone())),
            Backend::Hf(hf) => hf.special_ids(),
        }
    }

    /// Id of the model's unknown token, if it has one.
    pub fn unk_id(&self) -> Option<u32> {
        match &self.backend {
            Backend::Native(wp) => Some(wp.unk_id),
            Backend::Hf(hf) => hf.unk_id(),
        }
    }

    /// Number of ids the tokenizer can produce (largest id + 1, added tokens included).
    pub fn vocab_size(&self) -> usize {
        match &self.backend {
            Backend::Native(wp) => wp.vocab.max_id().map_or(0, |id| id as usize + 1),
            Backend::Hf(hf) => hf.vocab().map(|(_, id)| id as usize + 1).max().unwrap_or(0),
        }
    }

    /// Every token's string, indexed by id (added tokens included; an id no token has is empty):
    /// what a `/tokenize` endpoint shows. Built on each call (a vocabulary walk), so keep it.
    ///
    /// ```no_run
    /// let model = sembed::Embedder::from_dir("models/all-MiniLM-L6-v2")?;
    /// let tokens = model.tokenizer().tokens_by_id();
    /// assert_eq!(tokens[101], "[CLS]");
    /// # Ok::<(), sembed::Error>(())
    /// ```
    pub fn tokens_by_id(&self) -> Vec<String> {
        let mut out = vec![String::new(); self.vocab_size()];
        let mut put = |token: &str, id: u32| {
            if let Some(slot) = out.get_mut(id as usize) {
                *slot = token.to_string();
            }
        };
        match &self.backend {
            Backend::Native(wp) => wp.vocab.iter().for_each(|(t, id)| put(&t, id)),
            Backend::Hf(hf) => hf.vocab().for_each(|(t, id)| put(&t, id)),
        }
        out
    }

    /// Lengths in characters of every token string (added tokens included), as Python's
    /// `tokenizer.get_vocab()` lists them.
    pub(crate) fn token_char_lengths(&self) -> Vec<usize> {
        match &self.backend {
            Backend::Native(wp) => wp.vocab.iter().map(|(t, _)| t.chars().count()).collect(),
            Backend::Hf(hf) => hf.vocab().map(|(t, _)| t.chars().count()).collect(),
        }
    }

    /// True when the native fast path is in use.
    pub fn is_native(&self) -> bool {
        matches!(self.backend, Backend::Native(_))
    }
}

/// The parts of tokenizer.json the native path reads. Sub-objects stay raw (borrowed, unparsed) until
/// needed; the vocabulary is scanned into a [`Vocab`] separately.
#[derive(Deserialize)]
struct TokenizerFile<'a> {
    #[serde(borrow, default)]
    normalizer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pre_tokenizer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    post_processor: Option<&'a RawValue>,
    #[serde(borrow, default)]
    decoder: Option<&'a RawValue>,
    #[serde(borrow, default)]
    added_tokens: Vec<AddedToken<'a>>,
    #[serde(borrow)]
    model: ModelSection<'a>,
}

/// tokenizer.json's `model` section. A WordPiece vocabulary is kept as raw JSON (serde_json checks and
/// skips it) and scanned into a [`Vocab`] by [`Vocab::from_json_object`]; other models' vocabularies
/// are read by the `tokenizers` crate itself.
#[derive(Default)]
struct ModelSection<'a> {
    kind: Option<String>,
    unk_token: Option<String>,
    continuing_subword_prefix: Option<String>,
    max_input_chars_per_word: Option<usize>,
    /// Unigram models name their unknown token by id.
    unk_id: Option<u32>,
    vocab: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ModelSection<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = ModelSection<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a tokenizer model object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<ModelSection<'a>, A::Error> {
                let mut m = ModelSection::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match &*key.0 {
                        "type" => m.kind = map.next_value()?,
                        "unk_token" => m.unk_token = map.next_value()?,
                        "continuing_subword_prefix" => {
                            m.continuing_subword_prefix = map.next_value()?
                        }
                        "max_input_chars_per_word" => {
                            m.max_input_chars_per_word = map.next_value()?
                        }
                        "unk_id" => m.unk_id = map.next_value()?,
                        "vocab" => m.vocab = Some(map.next_value()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct AddedToken<'a> {
    id: u32,
    #[serde(borrow)]
    content: Cow<'a, str>,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    normalized: bool,
}

/// A map key borrowed from the JSON text when it has no escapes (serde's own `Cow<str>` always copies,
/// which cost a malloc/free per vocabulary entry).
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

fn raw_value(raw: Option<&RawValue>, path: &Path) -> Result<Value> {
    raw.map_or(Ok(Value::Null), |r| {
        serde_json::from_str(r.get()).map_err(|e| Error::invalid(path, e.to_string()))
    })
}

/// Returns the native tokenizer when tokenizer.json describes a pipeline it reproduces exactly:
/// WordPiece model, BertNormalizer (or none), BertPreTokenizer, `X $A Y` post-processing, and added
/// tokens that are matched on raw text (`normalized: false`) and not restricted to single words.
/// A WordPiece vocabulary as [`Tokenizer::from_bytes`] found it: already scanned (with the `##`
/// prefix), or raw JSON at an offset of the file, read only if the pipeline is a native one.
enum VocabSource {
    Scanned(Box<Vocab>),
    Raw(Arena, usize),
}

/// The native WordPiece tokenizer, when the file's pipeline is one it reproduces. `vocab` is the
/// vocabulary when the fast scan already read it (with the `##` prefix), else it is read from the
/// file's raw `model.vocab`.
fn native_from_json(
    file: &TokenizerFile<'_>,
    vocab: Option<VocabSource>,
    path: &Path,
) -> Result<Option<WordPiece>> {
    let model = &file.model;
    if model.kind.as_deref() != Some("WordPiece")
        || raw_value(file.pre_tokenizer, path)?["type"] != "BertPreTokenizer"
    {
        return Ok(None);
    }
    let normalizer = match raw_value(file.normalizer, path)? {
        Value::Null => None,
        n if n["type"] == "BertNormalizer" => Some(BertNormalizer {
            clean_text: n["clean_text"].as_bool().unwrap_or(true),
            handle_chinese_chars: n["handle_chinese_chars"].as_bool().unwrap_or(true),
            strip_accents: n["strip_accents"].as_bool(),
            lowercase: n["lowercase"].as_bool().unwrap_or(true),
        }),
        _ => return Ok(None),
    };
    let Some((prefix_tokens, suffix_tokens)) =
        single_template(&raw_value(file.post_processor, path)?)
    else {
        return Ok(None);
    };
    // lstrip/rstrip only remove whitespace next to the token, which the BERT pre-tokenizer drops
    // anyway; single_word and normalized change what matches, so they need the oracle.
    if file
        .added_tokens
        .iter()
        .any(|t| t.single_word || t.normalized)
    {
        return Ok(None);
    }
    let added: Vec<(Box<str>, u32)> = file
        .added_tokens
        .iter()
        .map(|t| (Box::from(&*t.content), t.id))
        .collect();
    let prefix = model.continuing_subword_prefix.as_deref().unwrap_or("##");
    let mut vocab = match vocab {
        Some(VocabSource::Scanned(mut v)) => {
            v.set_prefix(prefix);
            *v
        }
        Some(VocabSource::Raw(arena, at)) => {
            Vocab::from_json_object(arena, at, prefix)
                .map_err(|e| Error::invalid(path, format!("model.vocab: {e}")))?
                .0
        }
        None => return Err(Error::invalid(path, "WordPiece model has no vocab")),
    };
    for (content, id) in &added {
        vocab.insert(content, *id, false);
    }
    let lookup = |t: &str| {
        vocab
            .get(t)
            .ok_or_else(|| Error::invalid(path, format!("token `{t}` is not in the vocabulary")))
    };
    let unk_id = lookup(model.unk_token.as_deref().unwrap_or("[UNK]"))?;
    let prefix_ids = prefix_tokens
        .iter()
        .map(|t| lookup(t))
        .collect::<Result<Vec<_>>>()?;
    let suffix_ids = suffix_tokens
        .iter()
        .map(|t| lookup(t))
        .collect::<Result<Vec<_>>>()?;
    let mut wp = WordPiece::new(vocab, unk_id, model.max_input_chars_per_word.unwrap_or(100));
    wp.normalizer = normalizer;
    wp.set_added(added);
    wp.prefix_ids = prefix_ids;
    wp.suffix_ids = suffix_ids;
    Ok(Some(wp))
}

/// At most [`MAX_ADDED_TOKENS`] added tokens, with ids under [`MAX_VOCAB_SIZE`] (checked before
/// either back end indexes them).
fn check_added(file: &TokenizerFile<'_>, path: &Path) -> Result<()> {
    let n = file.added_tokens.len();
    if n > MAX_ADDED_TOKENS {
        return Err(Error::invalid(
            path,
            format!("{n} added tokens, over the limit of {MAX_ADDED_TOKENS}"),
        ));
    }
    check_id(
        file.added_tokens.iter().map(|t| u64::from(t.id)).max(),
        path,
    )
}

/// A largest token id (`None`: no ids) under [`MAX_VOCAB_SIZE`].
fn check_id(max: Option<u64>, path: &Path) -> Result<()> {
    match max {
        Some(id) if id >= MAX_VOCAB_SIZE as u64 => Err(Error::invalid(
            path,
            format!("token id {id} is over the limit of {MAX_VOCAB_SIZE} ids"),
        )),
        _ => Ok(()),
    }
}

/// The largest id of a `{"token": id, ...}` vocabulary; `None` for any other shape (Unigram's
/// `[["token", score], ...]` numbers its tokens by position) or what `tokenizers` will refuse.
fn max_vocab_id(raw: &RawValue) -> Option<u64> {
    use serde::de::{IgnoredAny, MapAccess, Visitor};
    struct MaxId;
    impl<'de> Visitor<'de> for MaxId {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a vocabulary object")
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut max = None;
            while let Some((IgnoredAny, id)) = map.next_entry::<IgnoredAny, u64>()? {
                max = max.max(Some(id));
            }
            Ok(max)
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde::Deserializer::deserialize_map(&mut de, MaxId)
        .ok()
        .flatten()
}

/// Every `Precompiled` normalizer (alone or in a `Sequence`) must have a character map the
/// `tokenizers` crate can read: its deserializer panics on one it cannot.
fn check_precompiled(v: &Value) -> std::result::Result<(), String> {
    match v {
        Value::Object(o) => {
            if o.get("type").and_then(Value::as_str) == Some("Precompiled") {
                #[cfg(feature = "tokenizers")]
                serde_json::from_value::<tokenizers::normalizers::Precompiled>(v.clone())
                    .map_err(|e| format!("Precompiled: {e}"))?;
            }
            o.values().try_for_each(check_precompiled)
        }
        Value::Array(a) => a.iter().try_for_each(check_precompiled),
        _ => Ok(()),
    }
}

/// Every special token a template (`TemplateProcessing`, alone or in a `Sequence`) places must be
/// in its `special_tokens` table: the `tokenizers` crate indexes the table without checking. Its
/// deserializer tries each processor kind in turn whatever `type` says, so neither does this.
fn check_templates(pp: &Value) -> std::result::Result<(), String> {
    pp["processors"]
        .as_array()
        .into_iter()
        .flatten()
        .try_for_each(check_templates)?;
    for which in ["single", "pair"] {
        for piece in pp[which].as_array().into_iter().flatten() {
            if let Some(id) = piece.get("SpecialToken").map(|s| &s["id"]) {
                let known = id
                    .as_str()
                    .is_some_and(|id| pp["special_tokens"].get(id).is_some());
                if !known {
                    return Err(format!(
                        "the {which} template places the special token {id}, which \
                         special_tokens does not define"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Special tokens before and after a single sequence, for the post-processors of BERT-like models:
/// none at all, `BertProcessing`/`RobertaProcessing` (`cls $A sep`), or a `TemplateProcessing` of the form
/// `[special]* $A [special]*` whose specials map to exactly one id each. `None` when unsupported.
fn single_template(pp: &Value) -> Option<(Vec<String>, Vec<String>)> {
    let name = |v: &Value| v.get(0).and_then(Value::as_str).map(str::to_string);
    if pp.is_null() {
        return Some((Vec::new(), Vec::new()));
    }
    match pp["type"].as_str()? {
        "BertProcessing" | "RobertaProcessing" => {
            Some((vec![name(&pp["cls"])?], vec![name(&pp["sep"])?]))
        }
        "TemplateProcessing" => {
            let (mut before, mut after, mut seen_a) = (Vec::new(), Vec::new(), false);
            for piece in pp["single"].as_array()? {
                if let Some(s) = piece.get("SpecialToken") {
                    let id = s["id"].as_str()?;
                    let ids = pp["special_tokens"][id]["tokens"].as_array()?;
                    if ids.len() != 1 || s["type_id"] != 0 {
                        return None;
                    }
                    let tok = ids[0].as_str()?.to_string();
                    if seen_a {
                        after.push(tok)
                    } else {
                        before.push(tok)
                    }
                } else if piece.get("Sequence")?["id"] == "A" && !seen_a {
                    seen_a = true;
                } else {
                    return None;
                }
            }
            seen_a.then_some((before, after))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vocabulary read from its prepared file tokenizes exactly as the scanned one: the file is
    /// made by the first load, read by the second, and a damaged one is remade.
    #[test]
    fn a_prepared_vocabulary_tokenizes_as_the_scanned_one() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let json = std::fs::read(root.join("assets/all-MiniLM-L6-v2/tokenizer.json")).unwrap();
        let path = Path::new("tokenizer.json");
        let bytes = Arc::new(Bytes::Owned(json.clone().into()));
        let sha: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&json).into();
        let dir = tempfile::tempdir().unwrap();
        let load = || {
            Tokenizer::from_bytes_prepared(bytes.clone(), path, Some((dir.path(), sha))).unwrap()
        };
        let prepared = |t: &Tokenizer| match &t.backend {
            Backend::Native(wp) => wp.vocab.is_prepared(),
            Backend::Hf(_) => panic!("native expected"),
        };
        let scanned = Tokenizer::from_bytes(bytes.clone(), path).unwrap();
        let first = load();
        assert!(!prepared(&first), "the first load scans");
        let second = load();
        assert!(prepared(&second), "the second load reads the file");
        let texts = [
            "A man is playing a guitar.",
            "unaffable antidisestablishmentarianism xyzzyplugh",
            "Héllo WÖRLD, naïve café — déjà vu!",
            "日本語のテキスト 中文 한국어",
            "[CLS] an added token [SEP] in the middle [MASK]",
            "tabs\tand\nnewlines\r\n and  spaces",
            "emoji 🤗🎸 and symbols ∑∫√ ###hash ##",
            "",
            &"a-very-long-word".repeat(20),
        ];
        for t in texts {
            let want = scanned.encode(t, 512).unwrap();
            assert_eq!(first.encode(t, 512).unwrap(), want, "{t:?}");
            assert_eq!(second.encode(t, 512).unwrap(), want, "{t:?}");
        }
        assert_eq!(second.vocab_size(), scanned.vocab_size());
        assert_eq!(second.tokens_by_id(), scanned.tokens_by_id());
        // Every token of the vocabulary looks itself up.
        for (id, token) in scanned.tokens_by_id().iter().enumerate() {
            let Backend::Native(wp) = &second.backend else {
                unreachable!()
            };
            assert_eq!(wp.vocab.get(token), Some(id as u32), "{token}");
        }
        // Damaged (truncated): not used, remade by the next load.
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        assert!(!prepared(&load()));
        assert_eq!(std::fs::metadata(&file).unwrap().len(), len);
        assert!(prepared(&load()));
        // Another file's bytes under this sha's name: the span check or the content differs.
        let other = Arc::new(Bytes::Owned(json[..].to_vec().into()));
        let t = Tokenizer::from_bytes_prepared(other, path, Some((dir.path(), [0u8; 32]))).unwrap();
        assert!(!prepared(&t));
    }
}
