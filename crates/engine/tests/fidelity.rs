//! The real all-MiniLM-L6-v2 against sentence-transformers' own vectors (tests/data/minilm-*.{npy,jsonl},
//! made with sentence-transformers 6.2 / torch 2.15; see tests/data/README.md).

use sembed::{Cpu, EmbedOptions, Embedder, LoadOptions};

/// Load options for this run: `SEMBED_CPU=avx2|portable` (set by scripts/test.sh for a second run)
/// caps the kernels, so the vectors are checked on each instruction set.
fn opts() -> LoadOptions {
    let cpu: Cpu = std::env::var("SEMBED_CPU")
        .unwrap_or_default()
        .parse()
        .expect("SEMBED_CPU");
    LoadOptions {
        cpu,
        ..Default::default()
    }
}

/// The real model, checked to run at the level asked for.
fn real() -> Embedder {
    let m = Embedder::from_dir_with(real_model(), &opts()).unwrap();
    if let Ok(level) = std::env::var("SEMBED_CPU") {
        assert_eq!(
            m.info().cpu,
            level,
            "the kernels asked for are the ones used"
        );
    }
    m
}
use sembed_testkit::*;

fn check_model(model: &Embedder, min_stsb: f32, min_dev: f32) {
    let sentences = stsb_sentences();
    let got = model.embed(&sentences, &EmbedOptions::default()).unwrap();
    let (rows, cols, want) = read_npy(&data("minilm-stsb.npy"));
    assert_eq!((rows, cols), (got.len(), got.dim()));
    let want: Vec<&[f32]> = want.chunks_exact(cols).collect();
    let got_rows: Vec<&[f32]> = got.rows().collect();
    let (c, i) = min_cosine(&got_rows, &want);
    println!("STS-B: min cosine {c} at {i} ({:?})", sentences[i]);
    assert!(
        c >= min_stsb,
        "STS-B min cosine {c} < {min_stsb} at sentence {i}: {:?}",
        sentences[i]
    );

    let rho = stsb_spearman(&got_rows);
    println!("STS-B Spearman {rho:.5}");
    assert!(
        (rho - 0.8205).abs() <= 0.0005,
        "STS-B Spearman {rho} not within 0.8205 ± 0.0005"
    );

    let dev = read_jsonl(&data("minilm-dev.jsonl"));
    let texts: Vec<&str> = dev.iter().map(|r| r.text.as_str()).collect();
    let got = model.embed(&texts, &EmbedOptions::default()).unwrap();
    for (r, g) in dev.iter().zip(got.rows()) {
        let ids = model.token_ids(&r.text, &EmbedOptions::default()).unwrap();
        assert_eq!(ids, r.input_ids, "ids of {:?}", r.text);
        let c = sembed::cosine(g, &r.embedding);
        assert!(
            c >= min_dev,
            "dev text {:?}: cosine {c} < {min_dev}",
            r.text
        );
    }
}

#[test]
fn real_f32_model_matches_sentence_transformers() {
    let model = real();
    assert_eq!(model.info().weights_dtype, "f32");
    check_model(&model, 0.99999, 0.99999);
}

#[cfg(feature = "builtin")]
#[test]
fn builtin_f16_model_matches_sentence_transformers() {
    let model = Embedder::builtin_with(&opts()).unwrap();
    assert_eq!(model.info().weights_dtype, "f16");
    check_model(&model, 0.9999, 0.9999);
}

#[test]
fn batching_and_threads_do_not_change_vectors() {
    let model = real();
    let texts: Vec<String> = stsb_sentences().into_iter().take(200).collect();
    let base = model
        .embed(
            &texts,
            &EmbedOptions {
                threads: 1,
                batch_size: 1,
                ..Default::default()
            },
        )
        .unwrap();
    for (threads, batch_size) in [(2, 32), (2, 7), (1, 200)] {
        let e = model
            .embed(
                &texts,
                &EmbedOptions {
                    threads,
                    batch_size,
                    ..Default::default()
                },
            )
            .unwrap();
        if exact(&model) {
            assert_eq!(
                e.as_slice(),
                base.as_slice(),
                "threads {threads} batch {batch_size}"
            );
        }
        let (c, i) = min_cosine(
            &e.rows().collect::<Vec<_>>(),
            &base.rows().collect::<Vec<_>>(),
        );
        assert!(
            c > 0.999999,
            "threads {threads} batch {batch_size}: cosine {c} at {i}"
        );
    }
}

/// Whether vectors must keep their bits across batches, threads and instruction sets: on x86-64
/// with AVX2 (one panel kernel); the portable fallback agrees to within rounding.
fn exact(model: &Embedder) -> bool {
    model.info().cpu != "portable"
}

/// AVX2 and AVX-512 kernels give the same bits (where the CPU has AVX-512; else both are AVX2),
/// for the f32 model packed at load and the built-in model's compiled-in f16 panels. AMX tiles
/// (where the CPU has them) give other last bits: within 1e-6 of them in cosine.
#[test]
fn instruction_sets_give_the_same_bits() {
    if !exact(&real()) {
        return;
    }
    let texts: Vec<String> = stsb_sentences().into_iter().take(300).collect();
    let at = |cpu: Cpu, builtin: bool| {
        let o = LoadOptions {
            cpu,
            ..Default::default()
        };
        let m = match builtin {
            #[cfg(feature = "builtin")]
            true => Embedder::builtin_with(&o).unwrap(),
            _ => Embedder::from_dir_with(real_model(), &o).unwrap(),
        };
        let level = m.info().cpu.to_string();
        (level, m.embed(&texts, &EmbedOptions::default()).unwrap())
    };
    for builtin in [false, cfg!(feature = "builtin")] {
        let (l2, avx2) = at(Cpu::Avx2, builtin);
        let (lb, best) = at(Cpu::Avx512, builtin);
        assert_eq!(l2, "avx2");
        assert_eq!(
            avx2.as_slice(),
            best.as_slice(),
            "avx2 vs {lb}, built-in: {builtin}"
        );
        let (la, amx) = at(Cpu::Amx, builtin);
        if la == "amx" {
            let (c, i) = min_cosine(
                &amx.rows().collect::<Vec<_>>(),
                &best.rows().collect::<Vec<_>>(),
            );
            println!("amx vs {lb}, built-in {builtin}: min cosine {c}");
            assert!(c > 0.999999, "amx vs {lb}, built-in {builtin}: {c} at {i}");
        } else {
            println!("no AMX on this CPU ({la}): its kernel is not compared here");
        }
    }
}

/// On an AMX host, an f32 model's prepared copy holds the tiles the kernel would split its panels
/// into per call: the same bits as without the copy, and a copy that only AMX runs is refused
/// (with its reason) by a model loaded below that level.
#[test]
fn an_amx_tile_copy_gives_the_bits_of_splitting_per_call() {
    let plain = Embedder::from_dir(real_model()).unwrap();
    if plain.info().cpu != "amx" {
        println!(
            "no AMX here ({}): tile copies are not made",
            plain.info().cpu
        );
        return;
    }
    let texts: Vec<String> = stsb_sentences().into_iter().take(300).collect();
    let want = plain.embed(&texts, &EmbedOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = LoadOptions {
        prepared: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    for round in ["made", "reused"] {
        let m = Embedder::from_dir_with(real_model(), &opts).unwrap();
        let got = m.embed(&texts, &EmbedOptions::default()).unwrap();
        assert_eq!(got.as_slice(), want.as_slice(), "copy {round}");
    }
    let copies: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-tiles32-v1.safetensors"))
        .collect();
    assert_eq!(copies.len(), 1, "one tile copy in {:?}", dir.path());

    // The copy as a model's own weights: runs at the AMX level, refused below it.
    let folder = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(real_model()).unwrap() {
        let p = e.unwrap().path();
        let to = folder.path().join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir(&to).unwrap();
            for f in std::fs::read_dir(&p).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
            }
        } else if p.file_name().unwrap() != "model.safetensors" {
            std::fs::copy(&p, &to).unwrap();
        }
    }
    std::fs::copy(&copies[0], folder.path().join("model.safetensors")).unwrap();
    let m = Embedder::from_dir(folder.path()).unwrap();
    let got = m.embed(&texts, &EmbedOptions::default()).unwrap();
    assert_eq!(got.as_slice(), want.as_slice(), "the copy as weights");
    let below = LoadOptions {
        cpu: Cpu::Avx512,
        ..Default::default()
    };
    let Err(err) = Embedder::from_dir_with(folder.path(), &below) else {
        panic!("AMX tiles loaded at avx512");
    };
    let err = err.to_string();
    assert!(err.contains("AMX tile layout"), "{err}");
}

#[test]
fn empty_list_and_empty_text() {
    let model = real();
    let none: [&str; 0] = [];
    let e = model.embed(&none, &EmbedOptions::default()).unwrap();
    assert_eq!(e.len(), 0);
    let e = model.embed(&[""], &EmbedOptions::default()).unwrap();
    assert_eq!(e.len(), 1);
    assert!((e.row(0).iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn max_length_option_truncates_and_is_validated() {
    let model = real();
    let opts = EmbedOptions {
        max_length: Some(5),
        ..Default::default()
    };
    let ids = model
        .token_ids("one two three four five six", &opts)
        .unwrap();
    assert_eq!(ids.len(), 5);
    assert_eq!((ids[0], ids[4]), (101, 102));
    for bad in [0, 1, 513] {
        let opts = EmbedOptions {
            max_length: Some(bad),
            ..Default::default()
        };
        assert!(
            matches!(
                model.embed(&["x"], &opts),
                Err(sembed::Error::InvalidOption(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn one_sentence_on_two_threads_equals_one_thread() {
    // One short text on two threads shares its products with a helper thread.
    let model = real();
    let dev = read_jsonl(&data("minilm-dev.jsonl"));
    let one = EmbedOptions {
        threads: 1,
        ..Default::default()
    };
    let two = EmbedOptions {
        threads: 2,
        ..Default::default()
    };
    model.embed(&["warm up"], &two).unwrap();
    let exact = exact(&model);
    for r in dev.iter().filter(|r| r.input_ids.len() <= 32) {
        let a = model.embed(&[r.text.as_str()], &one).unwrap();
        let b = model.embed(&[r.text.as_str()], &two).unwrap();
        if exact {
            assert_eq!(a.row(0), b.row(0), "{:?}", r.text);
        }
        assert!(
            sembed::cosine(a.row(0), b.row(0)) > 0.999999,
            "{:?}",
            r.text
        );
        assert!(
            sembed::cosine(b.row(0), &r.embedding) >= 0.99999,
            "{:?}",
            r.text
        );
    }
}
