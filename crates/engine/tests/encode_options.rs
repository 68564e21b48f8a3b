//! encode() options against values computed the way sentence-transformers computes them, derived from
//! its f32 reference vectors (tests/data/minilm-stsb.npy): Matryoshka truncate_dim (before/after
//! normalization), quantize_embeddings precisions, and truncation reporting.

use sembed::quantize::{Precision, Quantized, Ranges, quantize};
use sembed::{EmbedOptions, Embedder, Embeddings};
use sembed_testkit::*;

fn reference(n: usize) -> (Vec<String>, Embeddings) {
    let sentences: Vec<String> = stsb_sentences().into_iter().take(n).collect();
    let (_, cols, data) = read_npy(&data("minilm-stsb.npy"));
    (sentences, Embeddings::new(cols, data[..n * cols].to_vec()))
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn truncate_dim_cuts_after_the_normalize_module() {
    let model = Embedder::from_dir(real_model()).unwrap();
    let (texts, want) = reference(200);
    // sentence-transformers: modules (Normalize included) -> [:, :128]; not re-normalized.
    let opts = EmbedOptions {
        truncate_dim: Some(128),
        ..Default::default()
    };
    let got = model.embed(&texts, &opts).unwrap();
    assert_eq!(got.dim(), 128);
    for (g, w) in got.rows().zip(want.rows()) {
        let w = &w[..128];
        assert!(sembed::cosine(g, w) >= 0.99999);
        assert!(
            (norm(g) - norm(w)).abs() < 1e-4,
            "kept the full vector's scale"
        );
        assert!(norm(w) < 0.999, "a cut unit vector is shorter than 1");
    }
    // normalize_embeddings=True normalizes after the cut.
    let opts = EmbedOptions {
        truncate_dim: Some(128),
        normalize: Some(true),
        ..Default::default()
    };
    for g in model.embed(&texts, &opts).unwrap().rows() {
        assert!((norm(g) - 1.0).abs() < 1e-5);
    }
    for bad in [0, 385] {
        let opts = EmbedOptions {
            truncate_dim: Some(bad),
            ..Default::default()
        };
        assert!(matches!(
            model.embed(&texts, &opts),
            Err(sembed::Error::InvalidOption(_))
        ));
    }
}

#[test]
fn precisions_match_sentence_transformers_formulas_on_the_reference() {
    let model = Embedder::from_dir(real_model()).unwrap();
    let (texts, want) = reference(300);
    let got = model.embed(&texts, &EmbedOptions::default()).unwrap();
    let dim = want.dim();

    // ubinary: packbits(x > 0), first dimension in the top bit. A bit may differ only where the
    // reference value is within float noise of zero.
    let Quantized::U8 { width, data } = quantize(&got, Precision::Ubinary, None).unwrap() else {
        panic!()
    };
    assert_eq!(width, dim / 8);
    for (r, row) in want.rows().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            let bit = data[r * width + j / 8] & (0x80 >> (j % 8)) != 0;
            assert!(bit == (x > 0.0) || x.abs() < 1e-5, "row {r} dim {j}: {x}");
        }
    }
    let Quantized::I8 { data: signed, .. } = quantize(&got, Precision::Binary, None).unwrap()
    else {
        panic!()
    };
    assert!(
        signed
            .iter()
            .zip(&data)
            .all(|(&s, &u)| s as i32 == u as i32 - 128)
    );

    // int8 / uint8 with the reference itself as calibration, as sentence-transformers 6.2:
    // floor((x - min) / ((max - min) / 255)) clipped to 0..=255 [- 128].
    let ranges = Ranges::of(&want).unwrap();
    let mins: Vec<f32> = (0..dim)
        .map(|j| want.rows().map(|r| r[j]).fold(f32::INFINITY, f32::min))
        .collect();
    let maxs: Vec<f32> = (0..dim)
        .map(|j| want.rows().map(|r| r[j]).fold(f32::NEG_INFINITY, f32::max))
        .collect();
    let Quantized::I8 { data: q8, .. } = quantize(&got, Precision::Int8, Some(&ranges)).unwrap()
    else {
        panic!()
    };
    let Quantized::U8 { data: qu, .. } = quantize(&got, Precision::Uint8, Some(&ranges)).unwrap()
    else {
        panic!()
    };
    for (r, row) in want.rows().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            let code = ((x - mins[j]) / ((maxs[j] - mins[j]) / 255.0))
                .floor()
                .clamp(0.0, 255.0);
            // Our vectors differ from the reference by float noise: a code may move by one step.
            assert!(
                (q8[r * dim + j] as f32 - (code - 128.0)).abs() <= 1.0,
                "int8 row {r} dim {j}"
            );
            assert!(
                (qu[r * dim + j] as f32 - code).abs() <= 1.0,
                "uint8 row {r} dim {j}"
            );
        }
    }
}

#[test]
fn truncation_is_counted_or_refused() {
    let model = Embedder::from_dir(real_model()).unwrap();
    let long = "word ".repeat(300);
    let texts = ["short", long.as_str(), "also short"];
    let (_, report) = model
        .embed_with_report(&texts, &EmbedOptions::default())
        .unwrap();
    assert_eq!(report.truncated, 1);
    let opts = EmbedOptions {
        truncate: false,
        ..Default::default()
    };
    match model.embed(&texts, &opts) {
        Err(sembed::Error::TooLong {
            index,
            max,
            preview,
        }) => {
            assert_eq!((index, max), (1, 256));
            assert!(preview.starts_with("word word"));
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    // Exactly at the limit is not truncation: 254 words + [CLS] + [SEP] = 256.
    let fits = "word ".repeat(254);
    assert_eq!(
        model
            .embed_with_report(&[fits.as_str()], &opts)
            .unwrap()
            .1
            .truncated,
        0
    );
}

/// A copy of a tiny fixture with prompts, optionally with `include_prompt: false`.
fn prompted_fixture(name: &str, include_prompt: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    copy_dir(&data(&format!("fixtures/{name}")), &m);
    std::fs::write(
        m.join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "query"}"#,
    )
    .unwrap();
    let pool = m.join("1_Pooling/config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pool).unwrap()).unwrap();
    cfg["include_prompt"] = serde_json::Value::Bool(include_prompt);
    std::fs::write(&pool, cfg.to_string()).unwrap();
    (dir, m)
}

#[test]
fn prompts_are_prepended_as_sentence_transformers_does() {
    let (_d, m) = prompted_fixture("tiny-bert-meansqrt", true);
    let model = Embedder::from_dir(&m).unwrap();
    assert_eq!(model.info().default_prompt.as_deref(), Some("query"));
    let no_prompt = EmbedOptions {
        prompt: Some(String::new()),
        ..Default::default()
    };
    let by_hand = |p: &str| {
        model
            .embed(&[format!("{p}a man plays")], &no_prompt)
            .unwrap()
    };
    // The default prompt applies without options; a name picks another; a literal overrides both.
    let default = model
        .embed(&["a man plays"], &EmbedOptions::default())
        .unwrap();
    assert_eq!(default, by_hand("query: "));
    let named = EmbedOptions {
        prompt_name: Some("passage".into()),
        ..Default::default()
    };
    assert_eq!(
        model.embed(&["a man plays"], &named).unwrap(),
        by_hand("passage: ")
    );
    let literal = EmbedOptions {
        prompt: Some("x: ".into()),
        prompt_name: Some("passage".into()),
        ..Default::default()
    };
    assert_eq!(
        model.embed(&["a man plays"], &literal).unwrap(),
        by_hand("x: ")
    );
    let unknown = EmbedOptions {
        prompt_name: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        model.embed(&["x"], &unknown),
        Err(sembed::Error::InvalidOption(_))
    ));
}

#[test]
fn include_prompt_false_leaves_prompt_tokens_out_of_pooling() {
    let (_d1, with) = prompted_fixture("tiny-bert-meansqrt", true);
    let (_d2, without) = prompted_fixture("tiny-bert-meansqrt", false);
    let (a, b) = (
        Embedder::from_dir(&with).unwrap(),
        Embedder::from_dir(&without).unwrap(),
    );
    let opts = EmbedOptions::default();
    // Same encoder and text: only the pooled token range differs.
    let ea = a.embed(&["a man plays"], &opts).unwrap();
    let eb = b.embed(&["a man plays"], &opts).unwrap();
    assert_ne!(ea, eb);
    // Without a prompt there is nothing to leave out.
    let none = EmbedOptions {
        prompt: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(
        a.embed(&["a man plays"], &none).unwrap(),
        b.embed(&["a man plays"], &none).unwrap()
    );
}
