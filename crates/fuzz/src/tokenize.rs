//! The native WordPiece path against the `tokenizers` crate.

use std::sync::OnceLock;

use sembed::Tokenizer;

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
