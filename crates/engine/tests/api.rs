//! The engine API the applications share: the two-stage tokenize / embed, token counts and
//! truncation flags, joining and splitting tokenized pieces, token states, the thread budget shared
//! by models and concurrent callers, load options per model, loading from memory, static-model
//! prompts, and the model fingerprint (stable where it must be, sensitive to every change).

use std::path::{Path, PathBuf};

use sembed::{
    Cpu, EmbedOptions, Embedder, Embeddings, Fingerprint, LoadOptions, ModelKind, Residency,
};
use sembed_testkit::*;

fn fixture(name: &str) -> PathBuf {
    data(&format!("fixtures/{name}"))
}

fn m2v() -> PathBuf {
    data("m2v-minilm-256")
}

const TEXTS: [&str; 6] = [
    "A man is playing a guitar.",
    "",
    "Zwei Hunde spielen im Schnee.",
    "naïve café — 東京 🎸",
    "a much longer text that goes on and on, with words, more words, and then some more words than one would expect in a sentence of this kind",
    "x",
];

/// Copies a model folder to a temp dir (to change one file of it).
fn copy_of(dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    copy_dir(dir, &m);
    (t, m)
}

fn option_sets() -> Vec<EmbedOptions> {
    vec![
        EmbedOptions::default(),
        EmbedOptions {
            prompt: Some("query: ".into()),
            ..Default::default()
        },
        EmbedOptions {
            truncate_dim: Some(8),
            normalize: Some(true),
            batch_size: 2,
            threads: 1,
            ..Default::default()
        },
        EmbedOptions {
            max_length: Some(8),
            normalize: Some(false),
            ..Default::default()
        },
    ]
}

#[test]
fn two_stages_equal_one_call_bit_for_bit() {
    let models = [
        Embedder::from_dir(fixture("tiny-bert-cls")).unwrap(),
        Embedder::from_dir(fixture("tiny-xlmr-mean")).unwrap(),
        Embedder::from_dir(fixture("tiny-bert-max-dense")).unwrap(),
        Embedder::from_dir(m2v()).unwrap(),
    ];
    for model in &models {
        for opts in option_sets() {
            let one = model.embed(&TEXTS, &opts).unwrap();
            let t = model.tokenize(&TEXTS, &opts).unwrap();
            assert_eq!(t.len(), TEXTS.len());
            let two = model.embed_tokenized(&t).unwrap();
            assert_eq!(one, two, "{} {opts:?}", model.info().name);
            // Token counts are the ids the model consumes.
            for (i, text) in TEXTS.iter().enumerate() {
                let ids = model.token_ids(text, &opts).unwrap();
                assert_eq!(t.ids(i), &ids[..]);
                assert_eq!(t.token_count(i), ids.len());
            }
            assert_eq!(
                t.total_tokens(),
                (0..t.len()).map(|i| t.token_count(i)).sum::<usize>()
            );
        }
    }
}

#[test]
fn truncation_is_reported_per_text() {
    let model = Embedder::from_dir(fixture("tiny-bert-cls")).unwrap(); // limit 64 tokens
    let long = "word ".repeat(100);
    let texts = ["short", long.as_str(), "also short"];
    let t = model.tokenize(&texts, &EmbedOptions::default()).unwrap();
    assert_eq!(
        (t.truncated(0), t.truncated(1), t.truncated(2)),
        (false, true, false)
    );
    assert_eq!(t.truncated_count(), 1);
    assert_eq!(t.token_count(1), 64);
    let (_, report) = model
        .embed_with_report(&texts, &EmbedOptions::default())
        .unwrap();
    assert_eq!(report.truncated, 1);
}

/// A batcher joins pieces and splits them again; the vectors are those of the texts alone.
#[test]
fn tokenized_pieces_join_and_split() {
    let model = Embedder::from_dir(fixture("tiny-xlmr-mean")).unwrap();
    let opts = EmbedOptions::default();
    let whole = model.embed(&TEXTS, &opts).unwrap();
    let mut a = model.tokenize(&TEXTS[..2], &opts).unwrap();
    let b = model.tokenize(&TEXTS[2..], &opts).unwrap();
    a.append(&b).unwrap();
    let joined = model.embed_tokenized(&a).unwrap();
    assert!(max_abs_diff(&joined, &whole) < 1e-6);
    let part = model.embed_tokenized(&a.slice(3..5)).unwrap();
    for (k, i) in (3..5).enumerate() {
        let d = part
            .row(k)
            .iter()
            .zip(whole.row(i))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-6, "text {i}: {d}");
    }
    // Pieces made with other options, or by another model, are refused.
    let other_opts = model
        .tokenize(
            &TEXTS[..1],
            &EmbedOptions {
                truncate_dim: Some(4),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(a.append(&other_opts).is_err());
    let other = Embedder::from_dir(fixture("tiny-xlmr-mean")).unwrap();
    let foreign = other.tokenize(&TEXTS[..1], &opts).unwrap();
    assert!(a.append(&foreign).is_err());
    assert!(model.embed_tokenized(&foreign).is_err());
}

fn max_abs_diff(a: &Embeddings, b: &Embeddings) -> f32 {
    assert_eq!(a.as_slice().len(), b.as_slice().len());
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Token ids given directly (an OpenAI token-array input) embed like the text they came from.
#[test]
fn token_ids_embed_like_their_text() {
    for model in [
        Embedder::from_dir(fixture("tiny-bert-cls")).unwrap(),
        Embedder::from_dir(m2v()).unwrap(),
    ] {
        let opts = EmbedOptions::default();
        let (pre, post) = model.tokenizer().special_ids().unwrap();
        let bare: Vec<Vec<u32>> = TEXTS
            .iter()
            .map(|t| {
                let ids = model.token_ids(t, &opts).unwrap();
                let (p, s) = if model.kind() == ModelKind::Transformer {
                    (pre.len(), post.len())
                } else {
                    (0, 0)
                };
                ids[p..ids.len() - s].to_vec()
            })
            .collect();
        let t = model.tokenize_ids(&bare, true, &opts).unwrap();
        assert_eq!(
            model.embed_tokenized(&t).unwrap(),
            model.embed(&TEXTS, &opts).unwrap(),
            "{}",
            model.info().name
        );
    }
    let model = Embedder::from_dir(fixture("tiny-bert-cls")).unwrap();
    let opts = EmbedOptions::default();
    // Out of the vocabulary: an error, not a panic.
    let vocab = model.tokenizer().vocab_size() as u32;
    assert!(model.tokenize_ids(&[vec![vocab + 5]], true, &opts).is_err());
    // Too long: cut (and reported), or refused with truncation off.
    let long = vec![vec![500u32; 200]];
    let t = model.tokenize_ids(&long, true, &opts).unwrap();
    assert!(t.truncated(0) && t.token_count(0) == 64);
    let strict = EmbedOptions {
        truncate: false,
        ..Default::default()
    };
    assert!(matches!(
        model.tokenize_ids(&long, true, &strict),
        Err(sembed::Error::TooLong { .. })
    ));
}

/// Token states are the encoder's output: their mean is a mean-pooling model's vector.
#[test]
fn token_embeddings_are_what_pooling_reads() {
    let model = Embedder::from_dir(fixture("tiny-xlmr-mean")).unwrap();
    let opts = EmbedOptions {
        normalize: Some(false),
        ..Default::default()
    };
    let t = model.tokenize(&TEXTS, &opts).unwrap();
    let states = model.token_embeddings(&t).unwrap();
    let pooled = model.embed_tokenized(&t).unwrap();
    assert_eq!(states.len(), TEXTS.len());
    for i in 0..TEXTS.len() {
        assert_eq!(states.tokens(i), t.token_count(i));
        let h = states.dim();
        let mut mean = vec![0f64; h];
        for row in states.get(i).chunks_exact(h) {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        for (m, &p) in mean.iter().zip(pooled.row(i)) {
            let m = m / states.tokens(i) as f64;
            assert!((m - p as f64).abs() < 1e-5, "text {i}: {m} vs {p}");
        }
    }
    let m = Embedder::from_dir(m2v()).unwrap();
    let t = m.tokenize(&TEXTS, &EmbedOptions::default()).unwrap();
    assert!(m.token_embeddings(&t).is_err(), "static models have none");
}

/// Two models in one process with different instruction-set caps: each reports and uses its own,
/// and their vectors agree to the kernels' rounding.
#[test]
fn load_options_are_per_model() {
    let fast = Embedder::from_dir(fixture("tiny-bert-max-dense")).unwrap();
    let portable = Embedder::from_dir_with(
        fixture("tiny-bert-max-dense"),
        &LoadOptions {
            cpu: Cpu::Portable,
            residency: Residency::Never,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(portable.info().cpu, "portable");
    // AMX: CPUID.(7,0):EDX AMX-BF16 (bit 22) and AMX-TILE (bit 24), on Linux (which grants it).
    let amx = cfg!(target_os = "linux")
        && std::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 22 | 1 << 24) == 1 << 22 | 1 << 24
        && std::arch::is_x86_feature_detected!("avx512bf16");
    let best = if amx && std::arch::is_x86_feature_detected!("avx512bw") {
        "amx"
    } else if std::arch::is_x86_feature_detected!("avx512f") {
        "avx512"
    } else if std::arch::is_x86_feature_detected!("avx2") {
        "avx2"
    } else {
        "portable"
    };
    assert_eq!(fast.info().cpu, best);
    let opts = EmbedOptions::default();
    for _ in 0..3 {
        let (a, b) = (
            fast.embed(&TEXTS, &opts).unwrap(),
            portable.embed(&TEXTS, &opts).unwrap(),
        );
        // AMX tiles carry ~16 significant bits per operand (bf16 split in two): 1.0e-5 was
        // measured here against values up to 0.95.
        let bound = if best == "amx" { 3e-5 } else { 1e-5 };
        let d = max_abs_diff(&a, &b);
        assert!(d < bound, "{best} vs portable: {d}");
    }
    // The same against the sentence-transformers reference of the fixture, for both.
    let refs = read_jsonl(&fixture("tiny-bert-max-dense").join("reference.jsonl"));
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    for model in [&fast, &portable] {
        let got = model.embed(&texts, &opts).unwrap();
        for (r, g) in refs.iter().zip(got.rows()) {
            assert!(cosine(g, &r.embedding) >= 0.99999, "{:?}", r.text);
        }
    }
}

/// Every file of a model directory in memory gives the same model: vectors and fingerprint.
#[test]
fn models_load_from_memory() {
    for dir in [
        fixture("tiny-bert-max-dense"),
        fixture("tiny-xlmr-mean"),
        m2v(),
    ] {
        let files: Vec<(String, Vec<u8>)> = sembed_testkit::fake_hub::read_tree(&dir)
            .into_iter()
            .filter(|(rel, _)| !rel.ends_with("reference.jsonl") && !rel.ends_with(".md"))
            .collect();
        let from_disk = Embedder::from_dir(&dir).unwrap();
        let from_memory = Embedder::from_files(files, &LoadOptions::default()).unwrap();
        let opts = EmbedOptions::default();
        assert_eq!(
            from_memory.embed(&TEXTS, &opts).unwrap(),
            from_disk.embed(&TEXTS, &opts).unwrap(),
            "{}",
            dir.display()
        );
        assert_eq!(
            from_memory.info().fingerprint().unwrap(),
            from_disk.info().fingerprint().unwrap(),
            "same files, same fingerprint"
        );
        assert!(from_memory.info().source.starts_with("memory"));
    }
    let missing = Embedder::from_files([("modules.json", b"[]".to_vec())], &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(missing.contains("memory:modules.json"), "{missing}");
}

/// Static models take prompts as sentence-transformers gives them any model: prepended text. A
/// prompt name the model does not have is an error saying it has none.
#[test]
fn static_models_apply_prompts() {
    let model = Embedder::from_dir(m2v()).unwrap();
    let with = EmbedOptions {
        prompt: Some("query: ".into()),
        ..Default::default()
    };
    let got = model.embed(&["hello there"], &with).unwrap();
    let by_hand = model
        .embed(&["query: hello there"], &EmbedOptions::default())
        .unwrap();
    assert_eq!(got, by_hand);
    assert_ne!(
        got,
        model
            .embed(&["hello there"], &EmbedOptions::default())
            .unwrap()
    );
    let unknown = EmbedOptions {
        prompt_name: Some("doesnotexist".into()),
        ..Default::default()
    };
    let err = model.embed(&["x"], &unknown).unwrap_err().to_string();
    assert!(
        err.contains("no prompt named `doesnotexist`") && err.contains("this model has no prompts"),
        "{err}"
    );
    // A transformer names the prompts it has.
    let t = Embedder::from_dir(fixture("tiny-bert-cls")).unwrap();
    let err = t.embed(&["x"], &unknown).unwrap_err().to_string();
    assert!(err.contains("this model has: document, query"), "{err}");
}

/// Sets the value at `pointer` in a JSON file.
fn edit_json(path: &Path, pointer: &str, value: serde_json::Value) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    *v.pointer_mut(pointer).unwrap() = value;
    std::fs::write(path, v.to_string()).unwrap();
}

fn fp(model: &Embedder) -> Fingerprint {
    model.info().fingerprint().unwrap()
}

/// The same files give the same fingerprint wherever they are and however often they are loaded;
/// any change to any of them gives another one.
#[test]
fn fingerprints_are_stable_and_sensitive() {
    let dir = fixture("tiny-bert-max-dense");
    let base = fp(&Embedder::from_dir(&dir).unwrap());
    assert_eq!(base, fp(&Embedder::from_dir(&dir).unwrap()), "reload");
    let (_t, copy) = copy_of(&dir);
    assert_eq!(
        base,
        fp(&Embedder::from_dir(&copy).unwrap()),
        "another folder"
    );
    // With a digest cache, the same (and the cache is filled and then used).
    let cache = tempfile::tempdir().unwrap();
    let cached = LoadOptions {
        digest_cache: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    assert_eq!(base, fp(&Embedder::from_dir_with(&copy, &cached).unwrap()));
    assert!(std::fs::read_dir(cache.path()).unwrap().count() >= 1);
    assert_eq!(base, fp(&Embedder::from_dir_with(&copy, &cached).unwrap()));

    // Each change: a different fingerprint, and different from each other.
    type Change = Box<dyn Fn(&Path)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "pooling mode",
            Box::new(|m: &Path| {
                edit_json(
                    &m.join("1_Pooling/config.json"),
                    "/pooling_mode",
                    "mean".into(),
                )
            }),
        ),
        (
            "one weight",
            Box::new(|m: &Path| {
                let p = m.join("model.safetensors");
                let mut b = std::fs::read(&p).unwrap();
                let last = b.len() - 1;
                b[last] ^= 1;
                std::fs::write(&p, b).unwrap();
            }),
        ),
        (
            "dense weights",
            Box::new(|m: &Path| {
                let p = m.join("2_Dense/model.safetensors");
                let mut b = std::fs::read(&p).unwrap();
                let last = b.len() - 1;
                b[last] ^= 1;
                std::fs::write(&p, b).unwrap();
            }),
        ),
        (
            "tokenizer",
            Box::new(|m: &Path| {
                edit_json(
                    &m.join("tokenizer.json"),
                    "/normalizer/lowercase",
                    false.into(),
                )
            }),
        ),
        (
            "max_seq_length",
            Box::new(|m: &Path| {
                std::fs::write(
                    m.join("sentence_bert_config.json"),
                    r#"{"max_seq_length": 12, "do_lower_case": false}"#,
                )
                .unwrap();
            }),
        ),
        (
            "a prompts file appears",
            Box::new(|m: &Path| {
                std::fs::write(
                    m.join("config_sentence_transformers.json"),
                    r#"{"prompts": {"q": "q: "}, "default_prompt_name": "q"}"#,
                )
                .unwrap();
            }),
        ),
        (
            "normalize module",
            Box::new(|m: &Path| {
                let p = m.join("modules.json");
                let s = std::fs::read_to_string(&p).unwrap();
                let s = s.trim_end().trim_end_matches(']').to_string()
                    + r#", {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}]"#;
                std::fs::write(&p, s).unwrap();
            }),
        ),
    ];
    let mut seen = vec![base];
    for (what, change) in &changes {
        let (_t, m) = copy_of(&dir);
        change(&m);
        let model = Embedder::from_dir(&m)
            .unwrap_or_else(|e| panic!("{what}: the changed model must load: {e}"));
        let f = fp(&model);
        assert!(
            !seen.contains(&f),
            "{what}: fingerprint unchanged or repeated"
        );
        seen.push(f);
    }

    // Options: the ones that change vectors change it; batch size and threads do not.
    let model = Embedder::from_dir(fixture("tiny-bert-cls")).unwrap();
    let of = |o: EmbedOptions| model.fingerprint(&o).unwrap();
    let plain = of(EmbedOptions::default());
    assert_eq!(
        plain,
        of(EmbedOptions {
            batch_size: 3,
            threads: 1,
            ..Default::default()
        })
    );
    let variants = [
        of(EmbedOptions {
            prompt: Some("q: ".into()),
            ..Default::default()
        }),
        of(EmbedOptions {
            truncate_dim: Some(16),
            ..Default::default()
        }),
        of(EmbedOptions {
            normalize: Some(false),
            ..Default::default()
        }),
        of(EmbedOptions {
            max_length: Some(16),
            ..Default::default()
        }),
        of(EmbedOptions {
            truncate_dim: Some(16),
            normalize: Some(true),
            ..Default::default()
        }),
    ];
    for (i, v) in variants.iter().enumerate() {
        assert_ne!(*v, plain, "variant {i}");
        assert!(!variants[..i].contains(v), "variant {i} repeats");
    }
    // A literal prompt equal to a named one is the same call.
    let named = model
        .fingerprint(&EmbedOptions {
            prompt_name: Some("query".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        named,
        of(EmbedOptions {
            prompt: Some(String::new()),
            ..Default::default()
        })
    );
    // Further stages derive from it (output precision, a chunker).
    assert_ne!(plain.derive("precision", "int8"), plain);
    assert_ne!(
        plain.derive("precision", "int8"),
        plain.derive("precision", "binary")
    );
}

/// The built-in model's fingerprint is the same in every process: here, and in the CLI (a test in
/// crates/cli checks the printed value against the snapshot).
#[cfg(feature = "builtin")]
#[test]
fn builtin_fingerprint_is_a_constant() {
    let a = fp(&Embedder::builtin().unwrap());
    assert_eq!(
        a.to_string(),
        "7a1d18ed71c13404a8d57f6fbf18858827c8e172c20fca18ee4ef26ccc339f00"
    );
}

/// The same folder in the Hugging Face cache (weights' sha256 from the blob name) and as a plain
/// copy (hashed): one fingerprint.
#[test]
fn a_hub_cache_copy_and_a_plain_copy_share_a_fingerprint() {
    let dir = fixture("tiny-bert-max-dense");
    let cache = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snap = sembed_testkit::fake_hub::lay_out_cache(cache.path(), "org/model", commit, &dir);
    assert_eq!(
        fp(&Embedder::from_dir(&snap).unwrap()),
        fp(&Embedder::from_dir(&dir).unwrap())
    );
}

/// A prepared copy (the kernels' layout, on disk) is made at the first load, read by later ones,
/// replaced when the weights change, and gives the same bits as packing in memory; loads racing
/// to make it all succeed. A text's vector is the same alone or batched, at any thread count.
#[test]
fn prepared_copies_give_the_same_bits_and_follow_the_weights() {
    let (_t, dir) = copy_of(&fixture("tiny-bert-max-dense"));
    let texts = [
        "A man is playing a guitar.",
        "hi",
        "Zwei Hunde spielen im Schnee, lange.",
    ];
    let opts = EmbedOptions::default();
    let plain = Embedder::from_dir(&dir)
        .unwrap()
        .embed(&texts, &opts)
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let prepared = LoadOptions {
        prepared: Some(cache.path().join("prepared")),
        ..Default::default()
    };
    let in_folder = |ext: &str| -> Vec<_> {
        std::fs::read_dir(cache.path().join("prepared"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect()
    };
    let copies = || in_folder("safetensors");
    let racing: Vec<Embedder> = std::thread::scope(|s| {
        let loads: Vec<_> = (0..3)
            .map(|_| s.spawn(|| Embedder::from_dir_with(&dir, &prepared).unwrap()))
            .collect();
        loads.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(copies().len(), 1, "{:?}", copies());
    // The tokenizer's prepared vocabulary beside it, one for the three racing loads.
    assert_eq!(in_folder("bin").len(), 1, "{:?}", in_folder("bin"));
    let stamp = std::fs::metadata(&copies()[0]).unwrap().modified().unwrap();
    for m in &racing {
        assert_eq!(m.embed(&texts, &opts).unwrap().as_slice(), plain.as_slice());
    }
    let again = Embedder::from_dir_with(&dir, &prepared).unwrap();
    assert_eq!(
        std::fs::metadata(&copies()[0]).unwrap().modified().unwrap(),
        stamp
    );
    for threads in [1, 2] {
        for (i, t) in texts.iter().enumerate() {
            let one = EmbedOptions {
                threads,
                ..Default::default()
            };
            let alone = again.embed(&[*t], &one).unwrap();
            assert_eq!(alone.row(0), plain.row(i), "text {i}, {threads} threads");
        }
    }
    // Changed weights: another copy, other vectors.
    let p = dir.join("model.safetensors");
    let mut b = std::fs::read(&p).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&p, b).unwrap();
    let changed = Embedder::from_dir_with(&dir, &prepared).unwrap();
    assert_eq!(copies().len(), 2);
    let want = Embedder::from_dir(&dir)
        .unwrap()
        .embed(&texts, &opts)
        .unwrap();
    assert_eq!(
        changed.embed(&texts, &opts).unwrap().as_slice(),
        want.as_slice()
    );
}
