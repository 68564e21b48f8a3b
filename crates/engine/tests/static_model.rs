//! Model2Vec static models: sembed loading Python model2vec 0.10's distill of all-MiniLM-L6-v2
//! (tests/data/m2v-minilm-256) must reproduce model2vec's own encodings; table dtypes and vocabulary
//! quantization (weights + mapping) are checked against the encode formula on derived models.

use std::path::Path;

use sembed::{EmbedOptions, Embedder};
use sembed_testkit::*;

fn m2v() -> Embedder {
    Embedder::from_dir(data("m2v-minilm-256")).unwrap()
}

#[test]
fn reference_model_matches_python_model2vec() {
    let model = m2v();
    let info = model.info();
    assert_eq!(
        (info.dim, info.normalize, info.max_seq_length),
        (256, true, Some(512))
    );
    assert_eq!(info.architecture, "StaticModel (Model2Vec)");
    let sentences = stsb_sentences();
    let got = model.embed(&sentences, &EmbedOptions::default()).unwrap();
    let (rows, cols, want) = read_npy(&data("m2v-minilm-256-stsb.npy"));
    assert_eq!((rows, cols), (got.len(), got.dim()));
    let want: Vec<&[f32]> = want.chunks_exact(cols).collect();
    let (c, i) = min_cosine(&got.rows().collect::<Vec<_>>(), &want);
    assert!(
        c >= 0.99999,
        "STS-B min cosine {c} at {i}: {:?}",
        sentences[i]
    );
    let rho = stsb_spearman(&got.rows().collect::<Vec<_>>());
    assert!((rho - 0.6608).abs() < 0.0005, "Spearman {rho}");

    for r in read_jsonl(&data("m2v-minilm-256-dev.jsonl")) {
        let e = model
            .embed(&[r.text.as_str()], &EmbedOptions::default())
            .unwrap();
        if r.embedding.iter().all(|&x| x == 0.0) {
            assert!(
                e.row(0).iter().all(|&x| x == 0.0),
                "{:?} should embed to zeros",
                r.text
            );
        } else {
            let c = sembed::cosine(e.row(0), &r.embedding);
            assert!(c >= 0.99999, "dev {:?}: cosine {c}", r.text);
        }
    }
}

#[test]
fn static_token_ids_have_no_specials_and_no_unk() {
    let model = m2v();
    let ids = model
        .token_ids("hello \u{20000} world", &EmbedOptions::default())
        .unwrap();
    let tok = model.tokenizer();
    let unk = tok.unk_id().unwrap();
    assert!(
        tok.encode("hello \u{20000} world", 512)
            .unwrap()
            .contains(&unk),
        "the raw tokenizer yields [UNK]"
    );
    assert!(!ids.contains(&unk));
    assert_eq!(ids.len(), 2, "{ids:?}");
    // The 512-token cut happens before unknown tokens are dropped, as in model2vec.
    let long = "word ".repeat(600);
    assert_eq!(
        model
            .token_ids(&long, &EmbedOptions::default())
            .unwrap()
            .len(),
        512
    );
    let opts = EmbedOptions {
        max_length: Some(5),
        ..Default::default()
    };
    assert_eq!(model.token_ids(&long, &opts).unwrap().len(), 5);
}

/// Rewrites the reference model with another table / extra tensors, into `dir`.
fn derived(dir: &Path, tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "tokenizer.json", "modules.json"] {
        std::fs::copy(data("m2v-minilm-256").join(f), dir.join(f)).unwrap();
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

/// The reference table as f32 rows.
fn reference_table() -> (usize, usize, Vec<f32>) {
    let bytes = std::fs::read(data("m2v-minilm-256/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("embeddings").unwrap();
    let (rows, dim) = (t.shape()[0], t.shape()[1]);
    let table = t
        .data()
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
    (rows, dim, table)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// model2vec's formula, written out: mean of table[mapping[id]] * weights[id], then x / (|x| + 1e-32).
fn formula(ids: &[u32], table: &[f32], dim: usize, mapping: &[usize], weights: &[f64]) -> Vec<f32> {
    let mut acc = vec![0f64; dim];
    for &id in ids {
        let r = mapping[id as usize];
        for (a, v) in acc.iter_mut().zip(&table[r * dim..(r + 1) * dim]) {
            *a += weights[id as usize] * *v as f64;
        }
    }
    let n = ids.len() as f64;
    let mean: Vec<f64> = acc.iter().map(|a| a / n).collect();
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt() + 1e-32;
    mean.iter().map(|x| (x / norm) as f32).collect()
}

#[test]
fn f32_and_int8_tables() {
    let (rows, dim, table) = reference_table();
    let tmp = tempfile::tempdir().unwrap();
    let texts = ["A man is playing a guitar.", "naïve café", ""];

    let f32_dir = tmp.path().join("f32");
    derived(
        &f32_dir,
        vec![(
            "embeddings".into(),
            safetensors::Dtype::F32,
            vec![rows, dim],
            f32_bytes(&table),
        )],
    );
    let a = m2v().embed(&texts, &EmbedOptions::default()).unwrap();
    let b = Embedder::from_dir(&f32_dir)
        .unwrap()
        .embed(&texts, &EmbedOptions::default())
        .unwrap();
    for (x, y) in a.rows().zip(b.rows()).take(2) {
        assert!(sembed::cosine(x, y) > 0.999999);
    }

    // int8 is used as stored (no scale), exactly as model2vec reads it.
    let q: Vec<i8> = table
        .iter()
        .map(|v| (v * 400.0).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let i8_dir = tmp.path().join("i8");
    derived(
        &i8_dir,
        vec![(
            "embeddings".into(),
            safetensors::Dtype::I8,
            vec![rows, dim],
            q.iter().map(|&v| v as u8).collect(),
        )],
    );
    let model = Embedder::from_dir(&i8_dir).unwrap();
    assert_eq!(model.info().weights_dtype, "i8");
    let qf: Vec<f32> = q.iter().map(|&v| v as f32).collect();
    let ident: Vec<usize> = (0..rows).collect();
    let ones = vec![1.0; rows];
    let got = model.embed(&texts, &EmbedOptions::default()).unwrap();
    for (t, g) in texts.iter().zip(got.rows()).take(2) {
        let ids = model.token_ids(t, &EmbedOptions::default()).unwrap();
        let want = formula(&ids, &qf, dim, &ident, &ones);
        assert!(sembed::cosine(g, &want) > 0.999999, "{t}");
    }
    assert!(got.row(2).iter().all(|&x| x == 0.0));
}

#[test]
fn vocabulary_quantization_weights_and_mapping() {
    let (rows, dim, table) = reference_table();
    // 64 clusters: token id -> row id % 64, with per-token weights in f64.
    let clusters = 64;
    let small: Vec<f32> = table[..clusters * dim].to_vec();
    let mapping: Vec<usize> = (0..rows).map(|i| (i * 7919) % clusters).collect();
    let weights: Vec<f64> = (0..rows).map(|i| 0.5 + (i % 13) as f64 / 10.0).collect();
    let tmp = tempfile::tempdir().unwrap();
    for (map_dtype, w_dtype) in [
        (safetensors::Dtype::I64, safetensors::Dtype::F64),
        (safetensors::Dtype::I32, safetensors::Dtype::F32),
    ] {
        let map_bytes: Vec<u8> = match map_dtype {
            safetensors::Dtype::I64 => mapping
                .iter()
                .flat_map(|&m| (m as i64).to_le_bytes())
                .collect(),
            _ => mapping
                .iter()
                .flat_map(|&m| (m as i32).to_le_bytes())
                .collect(),
        };
        let w_bytes: Vec<u8> = match w_dtype {
            safetensors::Dtype::F64 => weights.iter().flat_map(|w| w.to_le_bytes()).collect(),
            _ => weights
                .iter()
                .flat_map(|&w| (w as f32).to_le_bytes())
                .collect(),
        };
        let dir = tmp.path().join(format!("{map_dtype:?}"));
        derived(
            &dir,
            vec![
                (
                    "embeddings".into(),
                    safetensors::Dtype::F32,
                    vec![clusters, dim],
                    f32_bytes(&small),
                ),
                ("mapping".into(), map_dtype, vec![rows], map_bytes),
                ("weights".into(), w_dtype, vec![rows], w_bytes),
            ],
        );
        let model = Embedder::from_dir(&dir).unwrap();
        for t in ["A man is playing a guitar.", "stock markets fell sharply"] {
            let ids = model.token_ids(t, &EmbedOptions::default()).unwrap();
            let want = formula(&ids, &small, dim, &mapping, &weights);
            let got = model.embed(&[t], &EmbedOptions::default()).unwrap();
            assert!(sembed::cosine(got.row(0), &want) > 0.999999, "{t}");
        }
    }
}

#[test]
fn normalize_missing_in_config_means_false() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(data("m2v-minilm-256").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("config.json"),
        r#"{"model_type": "model2vec", "hidden_dim": 256}"#,
    )
    .unwrap();
    let model = Embedder::from_dir(&dir).unwrap();
    assert!(!model.info().normalize);
    let e = model
        .embed(&["A man is playing a guitar."], &EmbedOptions::default())
        .unwrap();
    let norm: f32 = e.row(0).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "not normalized: {norm}");
}

#[test]
fn sentence_transformers_layout_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("st");
    let sub = dir.join("0_StaticEmbedding");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(
        data("m2v-minilm-256/tokenizer.json"),
        sub.join("tokenizer.json"),
    )
    .unwrap();
    let (rows, dim, table) = reference_table();
    let raw = f32_bytes(&table);
    let views = vec![(
        "embedding.weight".to_string(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows, dim], &raw)
            .unwrap(),
    )];
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(sub.join("model.safetensors"), bytes).unwrap();
    std::fs::write(
        dir.join("modules.json"),
        r#"[{"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"}]"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("config_sentence_transformers.json"),
        r#"{"normalize": true}"#,
    )
    .unwrap();
    let model = Embedder::from_dir(&dir).unwrap();
    let a = model
        .embed(&["A man is playing a guitar."], &EmbedOptions::default())
        .unwrap();
    let b = m2v()
        .embed(&["A man is playing a guitar."], &EmbedOptions::default())
        .unwrap();
    assert!(sembed::cosine(a.row(0), b.row(0)) > 0.999999);
}

/// A sentence-transformers `StaticEmbedding` folder made from the reference table: the same rows,
/// sentence-transformers' rules (every token's row, unknown ones too; no limit) and the Normalize
/// module after it when modules.json has one.
fn st_layout(normalize: bool, extra: Option<&str>) -> (tempfile::TempDir, std::path::PathBuf) {
    let src = data("m2v-minilm-256");
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("st-static");
    let sub = m.join("0_StaticEmbedding");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(src.join("tokenizer.json"), sub.join("tokenizer.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("embeddings").unwrap();
    let view =
        safetensors::tensor::TensorView::new(t.dtype(), t.shape().to_vec(), t.data()).unwrap();
    std::fs::write(
        sub.join("model.safetensors"),
        safetensors::serialize([("embedding.weight", view)], None).unwrap(),
    )
    .unwrap();
    let mut modules = vec![
        serde_json::json!({"idx": 0, "name": "0", "path": "0_StaticEmbedding",
        "type": "sentence_transformers.models.StaticEmbedding"}),
    ];
    if normalize {
        modules.push(
            serde_json::json!({"idx": 1, "name": "1", "path": "1_Normalize",
            "type": "sentence_transformers.models.Normalize"}),
        );
    }
    if let Some(kind) = extra {
        modules.push(serde_json::json!({"idx": 2, "name": "2", "path": "2_X", "type": kind}));
    }
    std::fs::write(
        m.join("modules.json"),
        serde_json::to_string(&modules).unwrap(),
    )
    .unwrap();
    (dir, m)
}

#[test]
fn sentence_transformers_static_embedding_layout() {
    let m2v = m2v();
    let (_d, dir) = st_layout(true, None);
    let st = Embedder::from_dir(&dir).unwrap();
    assert!(st.info().architecture.starts_with("StaticEmbedding"));
    assert_eq!(st.info().max_seq_length, None);
    assert!(st.info().normalize);
    let opts = EmbedOptions::default();
    // Texts without unknown tokens: model2vec's vectors (both normalize; the formulas differ only
    // for near-zero vectors).
    let texts = ["A man is playing a guitar.", "two dogs in the snow", ""];
    let a = st.embed(&texts, &opts).unwrap();
    let b = m2v.embed(&texts, &opts).unwrap();
    for (x, y) in a.rows().zip(b.rows()) {
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() < 1e-6, "{p} vs {q}");
        }
    }
    // An unknown token: sentence-transformers keeps its row, model2vec drops it.
    let unk = m2v.tokenizer().unk_id().unwrap();
    let text = "snow ☃ man";
    let st_ids = st.token_ids(text, &opts).unwrap();
    assert!(st_ids.contains(&unk), "{st_ids:?}");
    assert!(!m2v.token_ids(text, &opts).unwrap().contains(&unk));
    assert_ne!(
        st.embed(&[text], &opts).unwrap(),
        m2v.embed(&[text], &opts).unwrap()
    );
    // No Normalize module: plain means.
    let (_d2, plain) = st_layout(false, None);
    let p = Embedder::from_dir(&plain).unwrap();
    let v = p.embed(&["A man is playing a guitar."], &opts).unwrap();
    let norm: f32 = v.row(0).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "not normalized: {norm}");
    // A module sembed cannot run after it is refused, not skipped.
    let (_d3, dense) = st_layout(true, Some("sentence_transformers.models.Dense"));
    let err = Embedder::from_dir(&dense).unwrap_err().to_string();
    assert!(err.contains("module after StaticEmbedding"), "{err}");
}
