//! Tiny random sentence-transformers models (tests/data/fixtures, made by make_tiny.py with
//! sentence-transformers 6.2) against their reference.jsonl: exact ids and min cosine ≥ 0.99999.
//! BERT (cls / max + dense / mean_sqrt_len), XLM-RoBERTa (Unigram tokenizer, RoBERTa positions) and
//! MPNet (relative position buckets).

use sembed::{EmbedOptions, Embedder};
use sembed_testkit::*;

fn check_fixture(name: &str, expect_dim: usize, expect_pooling: &[&str], expect_normalize: bool) {
    let dir = data(&format!("fixtures/{name}"));
    let model = Embedder::from_dir(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    let info = model.info();
    assert_eq!(info.dim, expect_dim, "{name}");
    assert_eq!(info.pooling, expect_pooling, "{name}");
    assert_eq!(info.normalize, expect_normalize, "{name}");
    let refs = read_jsonl(&dir.join("reference.jsonl"));
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let opts = EmbedOptions {
        batch_size: 4,
        ..Default::default()
    };
    let got = model.embed(&texts, &opts).unwrap();
    for (r, g) in refs.iter().zip(got.rows()) {
        assert_eq!(
            model.token_ids(&r.text, &opts).unwrap(),
            r.input_ids,
            "{name}: ids of {:?}",
            r.text
        );
        let c = sembed::cosine(g, &r.embedding);
        assert!(c >= 0.99999, "{name}: {:?} cosine {c}", r.text);
        if !expect_normalize {
            // Without Normalize the magnitude is part of the output too.
            let (ng, nr) = (norm(g), norm(&r.embedding));
            assert!(
                (ng - nr).abs() <= 1e-4 * nr.max(1.0),
                "{name}: {:?} norm {ng} vs {nr}",
                r.text
            );
        }
    }
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn tiny_bert_cls() {
    check_fixture("tiny-bert-cls", 32, &["cls"], true);
}

#[test]
fn tiny_bert_max_dense() {
    check_fixture("tiny-bert-max-dense", 16, &["max"], false);
}

#[test]
fn tiny_bert_meansqrt() {
    check_fixture("tiny-bert-meansqrt", 32, &["mean_sqrt_len_tokens"], false);
}

#[test]
fn tiny_xlmr_mean() {
    check_fixture("tiny-xlmr-mean", 32, &["mean"], true);
}

#[test]
fn tiny_mpnet_mean() {
    check_fixture("tiny-mpnet-mean", 32, &["mean"], true);
}

#[test]
fn roberta_position_table_limits_length() {
    // max_position_embeddings 130 with padding_idx 1 leaves 128 positions.
    let model = Embedder::from_dir(data("fixtures/tiny-xlmr-mean")).unwrap();
    assert_eq!(model.info().max_seq_length, Some(128));
    let opts = EmbedOptions {
        max_length: Some(129),
        ..Default::default()
    };
    assert!(matches!(
        model.embed(&["x"], &opts),
        Err(sembed::Error::InvalidOption(_))
    ));
}

#[test]
fn max_seq_length_falls_back_to_tokenizer_config() {
    // sentence-transformers 6.x writes no max_seq_length; tokenizer_config.json's model_max_length
    // (64 here) applies, capped by max_position_embeddings (128).
    let model = Embedder::from_dir(data("fixtures/tiny-bert-cls")).unwrap();
    assert_eq!(model.info().max_seq_length, Some(64));
}
