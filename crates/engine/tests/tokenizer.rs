//! The native WordPiece tokenizer against the Hugging Face `tokenizers` crate (the oracle) and the
//! reference ids: STS-B, the dev set, and a generated corpus of random Unicode.

use std::path::Path;

use sembed::Tokenizer;
use sembed_testkit::*;

/// The oracle: `tokenizers` itself, truncating as sentence-transformers asks it to.
fn oracle(path: &Path, max_len: usize) -> tokenizers::Tokenizer {
    let mut tok = tokenizers::Tokenizer::from_file(path).unwrap();
    tok.with_padding(None);
    tok.with_truncation(Some(tokenizers::TruncationParams {
        max_length: max_len,
        ..Default::default()
    }))
    .unwrap();
    tok
}

fn assert_same(
    native: &Tokenizer,
    oracle: &tokenizers::Tokenizer,
    texts: &[String],
    max_len: usize,
) {
    assert!(native.is_native(), "expected the native fast path");
    for t in texts {
        let want = oracle.encode(t.as_str(), true).unwrap();
        let got = native.encode(t, max_len).unwrap();
        assert_eq!(got, want.get_ids(), "ids differ for {t:?}");
    }
}

/// Deterministic xorshift generator (no dependency, reproducible failures).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random text mixing ASCII words, punctuation, whitespace and control characters, accented Latin,
/// combining marks, CJK, emoji, and arbitrary code points from all planes.
fn random_text(rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "the",
        "Running",
        "unaffable",
        "naïve",
        "[CLS]",
        "[SEP]",
        "##ing",
        "don't",
        "e-mail",
    ];
    let mut s = String::new();
    for _ in 0..rng.below(40) {
        match rng.below(10) {
            0 => s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]),
            1 => s.push(
                [' ', '\t', '\n', '\u{a0}', '\u{3000}', '\r', '\u{1c}'][rng.below(7) as usize],
            ),
            2 => s.push(char::from_u32(0x21 + rng.below(0x5e) as u32).unwrap()),
            3 => s.push(char::from_u32(0xc0 + rng.below(0x180) as u32).unwrap_or('x')),
            4 => s.push(char::from_u32(0x300 + rng.below(0x70) as u32).unwrap()),
            5 => s.push(char::from_u32(0x4e00 + rng.below(0x5200) as u32).unwrap()),
            6 => s.push(char::from_u32(0x1f300 + rng.below(0x300) as u32).unwrap_or('?')),
            7 => s.push(char::from_u32(rng.below(0x20) as u32).unwrap()),
            _ => {
                if let Some(c) = char::from_u32(rng.below(0x110000) as u32) {
                    s.push(c);
                }
            }
        }
    }
    s
}

#[test]
fn stsb_and_dev_ids_match_tokenizers_crate() {
    let path = real_model().join("tokenizer.json");
    let native = Tokenizer::from_file(&path).unwrap();
    let mut texts = stsb_sentences();
    texts.extend(
        read_jsonl(&data("minilm-dev.jsonl"))
            .into_iter()
            .map(|r| r.text),
    );
    assert_eq!(
        texts.len(),
        2758 + read_jsonl(&data("minilm-dev.jsonl")).len()
    );
    assert_same(&native, &oracle(&path, 256), &texts, 256);
}

#[test]
fn dev_ids_match_reference_file() {
    let native = Tokenizer::from_file(&real_model().join("tokenizer.json")).unwrap();
    for r in read_jsonl(&data("minilm-dev.jsonl")) {
        assert_eq!(
            native.encode(&r.text, 256).unwrap(),
            r.input_ids,
            "{:?}",
            r.text
        );
    }
}

#[test]
fn random_unicode_matches_tokenizers_crate() {
    let path = real_model().join("tokenizer.json");
    let native = Tokenizer::from_file(&path).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let texts: Vec<String> = (0..20_000).map(|_| random_text(&mut rng)).collect();
    assert_same(&native, &oracle(&path, 512), &texts, 512);
    // Short truncation limits exercise the cut in the middle of words and around added tokens.
    assert_same(&native, &oracle(&path, 7), &texts[..2000], 7);
}

#[test]
fn fixture_tokenizers_match_reference_ids() {
    for name in [
        "tiny-bert-cls",
        "tiny-bert-max-dense",
        "tiny-bert-meansqrt",
        "tiny-mpnet-mean",
    ] {
        let dir = data(&format!("fixtures/{name}"));
        let native = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
        assert!(native.is_native(), "{name} should use the native path");
        let max_len: usize = match name {
            "tiny-bert-cls" => 64,
            "tiny-bert-max-dense" => 48,
            _ => 128,
        };
        for r in read_jsonl(&dir.join("reference.jsonl")) {
            assert_eq!(
                native.encode(&r.text, max_len).unwrap(),
                r.input_ids,
                "{name}: {:?}",
                r.text
            );
        }
    }
}

#[test]
#[cfg(feature = "tokenizers")]
fn non_wordpiece_goes_through_tokenizers_crate() {
    let dir = data("fixtures/tiny-xlmr-mean");
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    assert!(!tok.is_native());
    assert_eq!(tok.kind(), "Unigram (tokenizers crate)");
    for r in read_jsonl(&dir.join("reference.jsonl")) {
        assert_eq!(
            tok.encode(&r.text, 128).unwrap(),
            r.input_ids,
            "{:?}",
            r.text
        );
    }
}

/// Without the `tokenizers` feature only WordPiece loads; anything else is a one-line error
/// naming what is missing (the small WebAssembly build).
#[test]
#[cfg(not(feature = "tokenizers"))]
fn without_the_tokenizers_feature_unigram_is_a_clear_error() {
    let path = data("fixtures/tiny-xlmr-mean/tokenizer.json");
    let e = Tokenizer::from_file(&path).unwrap_err().to_string();
    assert!(
        e.contains("a Unigram tokenizer needs the `tokenizers` crate, which this build leaves out"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    assert!(Tokenizer::from_file(&real_model().join("tokenizer.json")).is_ok());
}

#[test]
#[cfg(feature = "tokenizers")]
fn forced_hf_backend_agrees_with_native() {
    let path = real_model().join("tokenizer.json");
    let bytes = std::fs::read(&path).unwrap();
    let hf = Tokenizer::from_json_hf(&bytes, &path).unwrap();
    let native = Tokenizer::from_json(&bytes, &path).unwrap();
    for t in stsb_sentences().iter().take(500) {
        assert_eq!(
            hf.encode(t, 256).unwrap(),
            native.encode(t, 256).unwrap(),
            "{t:?}"
        );
    }
}

/// The hand-scanned fast path and the serde_json path read the same vocabulary: a file whose
/// `model` key is spelled with an escape (`"mod\u0065l"`, the same key to any JSON reader) is not
/// recognised by the fast scanner and takes the serde path; the ids must not change.
#[test]
fn vocabulary_fast_scan_and_serde_path_agree() {
    let path = real_model().join("tokenizer.json");
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(json.contains("\"model\":"), "the test needs the plain key");
    let escaped = json.replacen("\"model\":", "\"mod\\u0065l\":", 1);
    let fast = Tokenizer::from_json(json.as_bytes(), &path).unwrap();
    let slow = Tokenizer::from_json(escaped.as_bytes(), &path).unwrap();
    let mut rng = Rng(7);
    let texts: Vec<String> = stsb_sentences()
        .into_iter()
        .chain((0..2000).map(|_| random_text(&mut rng)))
        .collect();
    for t in &texts {
        assert_eq!(
            fast.encode(t, 256).unwrap(),
            slow.encode(t, 256).unwrap(),
            "{t:?}"
        );
    }
}

/// The specials around a single text, for any template: `<s> $A </s>`, `$A </s>`, `<s> <s> $A`.
#[test]
#[cfg(feature = "tokenizers")]
fn special_ids_follow_the_post_processor() {
    let path = data("fixtures/tiny-xlmr-mean/tokenizer.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let tok = |json: &serde_json::Value| {
        sembed::Tokenizer::from_json(json.to_string().as_bytes(), &path)
            .unwrap()
            .special_ids()
            .unwrap()
    };
    assert_eq!(tok(&json), (vec![0], vec![2]));
    let s = |id: &str| serde_json::json!({"SpecialToken": {"id": id, "type_id": 0}});
    let a = serde_json::json!({"Sequence": {"id": "A", "type_id": 0}});
    json["post_processor"]["single"] = serde_json::json!([a.clone(), s("</s>")]);
    assert_eq!(tok(&json), (vec![], vec![2]));
    json["post_processor"]["single"] = serde_json::json!([s("<s>"), s("<s>"), a]);
    assert_eq!(tok(&json), (vec![0, 0], vec![]));
}

/// A template placing a special token its table does not define is refused at load: the
/// `tokenizers` crate would panic on every text (found by fuzzing, fuzz/regressions/model_files).
#[test]
#[cfg(feature = "tokenizers")]
fn a_template_with_an_undefined_special_token_is_refused() {
    for fixture in ["tiny-bert-cls", "tiny-xlmr-mean"] {
        let path = data(&format!("fixtures/{fixture}/tokenizer.json"));
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let table = json["post_processor"]["special_tokens"]
            .as_object_mut()
            .unwrap();
        let last = table.keys().next_back().unwrap().clone();
        let entry = table.remove(&last).unwrap();
        table.insert(format!("{last}-renamed"), entry);
        let err = sembed::Tokenizer::from_json(json.to_string().as_bytes(), &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("special_tokens does not define"),
            "{fixture}: {err}"
        );
        assert!(err.contains(&last), "{fixture}: {err}");
    }
}
