//! Limits on hostile model files (issue #16, item 5): a file claiming huge sizes, or naming
//! folders outside the model, is a one-line error at load, never a failed allocation or a panic
//! later. Every hostile file is made in a temporary copy of a fixture.

use std::path::{Path, PathBuf};

use sembed::{Embedder, Tokenizer};
use sembed_testkit::*;
use serde_json::{Value, json};

/// A copy of a fixture model in a temporary folder.
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&data(&format!("fixtures/{name}")), &dir);
    (tmp, dir)
}

fn load_error(dir: &Path) -> String {
    match Embedder::from_dir(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// A fixture's tokenizer.json, parsed.
fn tokenizer_json(fixture: &str) -> Value {
    let path = data(&format!("fixtures/{fixture}/tokenizer.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn added(id: u64, content: &str, normalized: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false,
           "rstrip": false, "normalized": normalized, "special": false})
}

fn tokenizer_error(v: &Value) -> String {
    let bytes = serde_json::to_vec(v).unwrap();
    match Tokenizer::from_json(&bytes, Path::new("tokenizer.json")) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_safetensors_header_over_the_limit_is_refused_before_parsing() {
    let (_tmp, dir) = fixture_copy("tiny-bert-cls");
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    for claim in [1u64 << 40, u64::MAX, (16 << 20) + 1] {
        bytes[..8].copy_from_slice(&claim.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let e = load_error(&dir);
        assert!(
            e.contains(&format!(
                "not a valid safetensors file (its header claims {claim} bytes, over the limit \
                 of 16777216)"
            )),
            "{e}"
        );
    }
}

#[test]
fn sizes_needing_too_much_scratch_memory_are_refused_at_load() {
    // Checked from config.json alone: the weights (which would have to match) are never read.
    for (key, value) in [
        ("intermediate_size", 1u64 << 33),
        ("hidden_size", 1 << 40),
        ("max_position_embeddings", 1 << 20),
        ("max_position_embeddings", u64::MAX),
    ] {
        let (_tmp, dir) = fixture_copy("tiny-bert-cls");
        edit_json(&dir.join("config.json"), |c| c[key] = json!(value));
        let e = load_error(&dir);
        assert!(
            e.contains("bytes of scratch memory per batch, over the limit of 4294967296"),
            "{key} {value}: {e}"
        );
    }
    // MPNet's relative position bias counts too: 15,000 tokens of its sizes need 4.2 GiB, of
    // BERT's 0.85 GiB (refused then for the missing position rows instead).
    let (_tmp, dir) = fixture_copy("tiny-mpnet-mean");
    edit_json(&dir.join("config.json"), |c| {
        c["max_position_embeddings"] = json!(15_002)
    });
    assert!(load_error(&dir).contains("scratch memory"));
    let (_tmp, dir) = fixture_copy("tiny-bert-cls");
    edit_json(&dir.join("config.json"), |c| {
        c["max_position_embeddings"] = json!(15_000)
    });
    let e = load_error(&dir);
    assert!(
        e.contains("position_embeddings") && !e.contains("scratch"),
        "{e}"
    );
}

#[test]
fn more_added_tokens_than_the_limit_are_refused() {
    let mut t = tokenizer_json("tiny-bert-cls");
    let base = t["model"]["vocab"].as_object().unwrap().len() as u64;
    let have = t["added_tokens"].as_array().unwrap().len();
    let list = t["added_tokens"].as_array_mut().unwrap();
    for i in 0..100_000 - have {
        list.push(added(base + i as u64, &format!("tok{i}"), false));
    }
    let bytes = serde_json::to_vec(&t).unwrap();
    Tokenizer::from_json(&bytes, Path::new("tokenizer.json")).expect("100000 added tokens load");
    let list = t["added_tokens"].as_array_mut().unwrap();
    list.push(added(base + 100_000, "one-more", false));
    let e = tokenizer_error(&t);
    assert!(
        e.contains("100001 added tokens, over the limit of 100000"),
        "{e}"
    );
}

#[test]
fn token_ids_past_the_limit_are_refused() {
    // An added token: `tokens_by_id` would make a string for every id up to it (96 GB).
    let mut t = tokenizer_json("tiny-bert-cls");
    t["added_tokens"]
        .as_array_mut()
        .unwrap()
        .push(added(4_000_000_000, "zzbig", false));
    let e = tokenizer_error(&t);
    assert!(
        e.contains("token id 4000000000 is over the limit of 16777216 ids"),
        "{e}"
    );
    // A vocabulary entry, on the native path.
    let mut t = tokenizer_json("tiny-bert-cls");
    t["model"]["vocab"]["zzbig"] = json!(1 << 24);
    let e = tokenizer_error(&t);
    assert!(
        e.contains("token id 16777216 is over the limit of 16777216 ids"),
        "{e}"
    );
    // One id under the limit is fine.
    t["model"]["vocab"]["zzbig"] = json!((1 << 24) - 1);
    let bytes = serde_json::to_vec(&t).unwrap();
    let tok = Tokenizer::from_json(&bytes, Path::new("tokenizer.json")).unwrap();
    assert_eq!(tok.vocab_size(), 1 << 24);
}

/// The same through the `tokenizers` crate: a normalized added token takes the file off the
/// native path.
#[cfg(feature = "tokenizers")]
#[test]
fn token_ids_past_the_limit_are_refused_through_tokenizers() {
    let mut t = tokenizer_json("tiny-bert-cls");
    t["added_tokens"][0]["normalized"] = json!(true);
    t["model"]["vocab"]["zzbig"] = json!(1u64 << 31);
    let e = tokenizer_error(&t);
    assert!(
        e.contains("token id 2147483648 is over the limit of 16777216 ids"),
        "{e}"
    );
    let bytes = serde_json::to_vec(&t).unwrap();
    let e = Tokenizer::from_json_hf(&bytes, Path::new("tokenizer.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("over the limit of 16777216 ids"), "{e}");
}

/// tokenizers 0.22 panics (`expect("Helper")`) on a decoder it cannot read at its depth in the
/// file: nested 127 deep, or holding a number out of f64's range.
#[cfg(feature = "tokenizers")]
#[test]
fn a_decoder_tokenizers_cannot_read_is_an_error_not_a_panic() {
    let with_decoder = |decoder: &str| {
        let mut t = tokenizer_json("tiny-xlmr-mean");
        t["decoder"] = json!("@@");
        serde_json::to_string(&t)
            .unwrap()
            .replace("\"@@\"", decoder)
    };
    let load = |json: String| Tokenizer::from_json(json.as_bytes(), Path::new("tokenizer.json"));
    for depth in [127, 128, 10_000] {
        let e = load(with_decoder(&("[".repeat(depth) + &"]".repeat(depth))))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("decoder: recursion limit exceeded"),
            "{depth}: {e}"
        );
    }
    let e = load(with_decoder(r#"{"type": "Metaspace", "x": 1e400}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("decoder: number out of range"), "{e}");
    // 126 deep is within what the crate reads: its own error, no panic.
    let e = load(with_decoder(&("[".repeat(126) + &"]".repeat(126))))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokenizers could not load it"), "{e}");
}

/// tokenizers 0.22 panics (`expect("Precompiled")`) on a `Precompiled` normalizer whose
/// character map it cannot read, alone or inside a `Sequence`.
#[cfg(feature = "tokenizers")]
#[test]
fn a_precompiled_map_tokenizers_cannot_read_is_an_error_not_a_panic() {
    for normalizer in [
        json!({"type": "Precompiled", "precompiled_charsmap": 5}),
        json!({"type": "Precompiled", "precompiled_charsmap": "not base64!"}),
        json!({"type": "Sequence", "normalizers": [
            {"type": "Lowercase"},
            {"type": "Precompiled", "precompiled_charsmap": "AAAA"}
        ]}),
    ] {
        let mut t = tokenizer_json("tiny-xlmr-mean");
        t["normalizer"] = normalizer.clone();
        let e = Tokenizer::from_json(
            &serde_json::to_vec(&t).unwrap(),
            Path::new("tokenizer.json"),
        )
        .err()
        .unwrap_or_else(|| panic!("{normalizer} loaded"))
        .to_string();
        assert!(e.contains("normalizer: Precompiled: "), "{normalizer}: {e}");
    }
}

/// serde_json's depth limit holds for every JSON file of a model folder (none turns it off):
/// 10,000 levels are an error, not a stack overflow.
#[test]
fn model_files_nested_ten_thousand_deep_are_errors() {
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    for file in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
        "tokenizer_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
    ] {
        let (_tmp, dir) = fixture_copy("tiny-bert-cls");
        std::fs::write(dir.join(file), &deep).unwrap();
        load_error(&dir);
    }
    // Inside a tokenizer.json section that is parsed (the normalizer): serde_json's own error.
    let (_tmp, dir) = fixture_copy("tiny-bert-cls");
    let path = dir.join("tokenizer.json");
    edit_json(&path, |t| t["normalizer"] = json!("@@"));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"@@\"", &deep);
    std::fs::write(&path, text).unwrap();
    assert!(load_error(&dir).contains("recursion limit exceeded"));
}

/// A Dense layer whose weights (a sparse file: 2 TiB on disk, nothing written) need 4 TiB as
/// float32: an error naming the tensor, not an abort from the failed allocation.
#[cfg(unix)]
#[test]
fn a_dense_layer_larger_than_memory_is_an_error_not_an_abort() {
    let (_tmp, dir) = fixture_copy("tiny-bert-max-dense");
    let (n, k) = (1u64 << 35, 32u64);
    edit_json(&dir.join("2_Dense/config.json"), |c| {
        assert_eq!(c["in_features"], k);
        c["out_features"] = json!(n);
    });
    let (wb, bb) = (n * k * 2, n * 2);
    let mut header = json!({
        "linear.weight": {"dtype": "F16", "shape": [n, k], "data_offsets": [0, wb]},
        "linear.bias": {"dtype": "F16", "shape": [n], "data_offsets": [wb, wb + bb]},
    })
    .to_string()
    .into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let path = dir.join("2_Dense/model.safetensors");
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    std::fs::write(&path, &bytes).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(bytes.len() as u64 + wb + bb).unwrap();
    let e = load_error(&dir);
    assert!(
        e.contains("tensor `linear.weight`: cannot allocate 4398046511104 bytes for it"),
        "{e}"
    );
}

/// A module folder outside the model's (`..`, absolute) is refused: its files would be read as
/// the model's.
#[test]
fn module_paths_leaving_the_model_folder_are_refused() {
    for path in ["../tiny-bert-cls", "/etc", "1_Pooling/../../x", "..\\x"] {
        let (_tmp, dir) = fixture_copy("tiny-bert-cls");
        edit_json(&dir.join("modules.json"), |m| m[1]["path"] = json!(path));
        let e = load_error(&dir);
        assert!(e.contains("leaves the model folder"), "{path}: {e}");
    }
}
