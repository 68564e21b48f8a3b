//! Fuzz harnesses (issue #16): one function per target, each taking the fuzzer's bytes. They are
//! called by the libFuzzer targets in `fuzz/` (nightly, `cargo fuzz`) and by `tests/corpus.rs`,
//! which replays the committed corpora and every crash input found on stable, in CI. A harness
//! returns on any input; a panic (or an abort) is a finding. See FUZZING.md.

use std::sync::OnceLock;

use sembed::{EmbedOptions, Embedder, LoadOptions, ThreadPool, Tokenizer};

/// Bytes of files under `tests/data`, compiled in so the harnesses need no paths at run time.
macro_rules! data {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/",
            $path
        ))
        .as_slice()
    };
}

/// The tokenizers of the WordPiece target: a real BERT vocabulary (all-MiniLM-L6-v2's, 29,525
/// entries, as the Model2Vec test model keeps it: no special tokens around a text) and a tiny one
/// with `[CLS] … [SEP]` (the BERT fixture's).
const WORDPIECE: [(&str, &[u8]); 2] = [
    ("m2v-minilm-256", data!("m2v-minilm-256/tokenizer.json")),
    (
        "tiny-bert-cls",
        data!("fixtures/tiny-bert-cls/tokenizer.json"),
    ),
];

/// Longest id sequence asked for: enough to cut long texts, as a model's max length does.
const MAX_LEN: usize = 128;

struct Pair {
    name: &'static str,
    native: Tokenizer,
    oracle: tokenizers::Tokenizer,
}

fn wordpiece_pairs() -> &'static [Pair] {
    static PAIRS: OnceLock<Vec<Pair>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        WORDPIECE
            .iter()
            .map(|&(name, json)| {
                let native = Tokenizer::from_json(json, std::path::Path::new(name))
                    .expect("the test tokenizer loads");
                assert!(
                    native.is_native(),
                    "{name}: expected the native WordPiece path"
                );
                let mut oracle =
                    tokenizers::Tokenizer::from_bytes(json).expect("the oracle loads it too");
                oracle.with_padding(None);
                oracle
                    .with_truncation(Some(tokenizers::TruncationParams {
                        max_length: MAX_LEN,
                        ..Default::default()
                    }))
                    .expect("truncation settings");
                Pair {
                    name,
                    native,
                    oracle,
                }
            })
            .collect()
    })
}

/// The native WordPiece path (BERT normalizer, pre-tokenizer, vocabulary lookups, truncation)
/// against the `tokenizers` crate: the same ids for any text. Bytes that are not UTF-8 are
/// replaced as `String::from_utf8_lossy` does (the CLI reads text that way).
pub fn wordpiece(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for p in wordpiece_pairs() {
        let got = p.native.encode(&text, MAX_LEN).expect("native encode");
        let want = p.oracle.encode(text.as_ref(), true).expect("oracle encode");
        assert_eq!(got, want.get_ids(), "{}: ids differ for {text:?}", p.name);
    }
}

/// The files of the tiny BERT fixture (CLS pooling, Normalize): a whole
/// sentence-transformers folder, small enough to fuzz.
const MODEL_FILES: [(&str, &[u8]); 9] = [
    ("modules.json", data!("fixtures/tiny-bert-cls/modules.json")),
    ("config.json", data!("fixtures/tiny-bert-cls/config.json")),
    (
        "sentence_bert_config.json",
        data!("fixtures/tiny-bert-cls/sentence_bert_config.json"),
    ),
    (
        "config_sentence_transformers.json",
        data!("fixtures/tiny-bert-cls/config_sentence_transformers.json"),
    ),
    (
        "1_Pooling/config.json",
        data!("fixtures/tiny-bert-cls/1_Pooling/config.json"),
    ),
    (
        "2_Normalize/config.json",
        data!("fixtures/tiny-bert-cls/2_Normalize/config.json"),
    ),
    (
        "tokenizer.json",
        data!("fixtures/tiny-bert-cls/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        data!("fixtures/tiny-bert-cls/tokenizer_config.json"),
    ),
    (
        "model.safetensors",
        data!("fixtures/tiny-bert-cls/model.safetensors"),
    ),
];

/// A seed for [`model_files`]: file `index` of the fixture replaced by its own bytes (a valid
/// input the fuzzer mutates from).
pub fn model_files_seed(index: usize) -> Vec<u8> {
    let (_, bytes) = MODEL_FILES[index % MODEL_FILES.len()];
    let mut seed = vec![index as u8];
    seed.extend_from_slice(bytes);
    seed
}

/// How many files [`model_files`] can replace.
pub const MODEL_FILE_COUNT: usize = MODEL_FILES.len();

/// The `data[0]` that makes [`model_files`] replace the file `name`, if the fixture has it.
pub fn model_file_index(name: &str) -> Option<u8> {
    MODEL_FILES
        .iter()
        .position(|&(n, _)| n == name)
        .map(|i| i as u8)
}

/// Model loading from untrusted files: the fixture's folder with one file (`data[0]` picks which:
/// configs, tokenizer.json, the safetensors header and tensors) replaced by `data[1..]`, loaded
/// from memory; a model that loads must embed texts into one vector each, of its dimension.
/// Errors are fine; a panic, an abort or a wrong shape is a finding. Returns whether the model
/// loaded and embedded (the tests check that the unmodified seeds do).
pub fn model_files(data: &[u8]) -> bool {
    let Some((&pick, content)) = data.split_first() else {
        return false;
    };
    let replaced = pick as usize % MODEL_FILES.len();
    let files = MODEL_FILES
        .iter()
        .enumerate()
        .map(|(i, &(name, bytes))| (name, if i == replaced { content } else { bytes }.to_vec()));
    let opts = LoadOptions {
        threads: Some(ThreadPool::new(1)),
        ..Default::default()
    };
    let Ok(model) = Embedder::from_files(files, &opts) else {
        return false;
    };
    let texts = ["A man is playing a guitar.", "", "déjà vu 東京 🙂"];
    let Ok(e) = model.embed(&texts, &EmbedOptions::default()) else {
        return false;
    };
    assert_eq!(e.len(), texts.len(), "one vector per text");
    assert_eq!(e.dim(), model.dim(), "vectors of the model's dimension");
    assert_eq!(e.as_slice().len(), texts.len() * model.dim());
    true
}
