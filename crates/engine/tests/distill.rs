//! `sembed distill` of the real all-MiniLM-L6-v2 against Python model2vec 0.10's distill of the same
//! model (tests/data/m2v-minilm-256*): quality (STS-B Spearman no lower than Python's 0.66081, to
//! the four decimals it is quoted with) and closeness (Spearman of the STS-B pair cosines between
//! the two models ≥ 0.99).
#![cfg(feature = "distill")]

use sembed::{DistillOptions, EmbedOptions, Embedder};
use sembed_testkit::*;

fn pair_cosines(rows: &[&[f32]]) -> Vec<f64> {
    let n = rows.len() / 2;
    (0..n)
        .map(|i| sembed::cosine(rows[i], rows[n + i]) as f64)
        .collect()
}

#[test]
fn distill_matches_python_model2vec() {
    let teacher = Embedder::from_dir(real_model()).unwrap();
    let mut stages = 0;
    let files = sembed::distill(&teacher, &DistillOptions::default(), |_| stages += 1).unwrap();
    assert!(stages >= 3, "progress was reported");
    assert_eq!(files.dim, 256);
    assert_eq!(
        files.embeddings.len(),
        29525 * 256,
        "vocabulary without [unusedN], [CLS], [SEP], [MASK]"
    );
    assert!(files.tokenizer["post_processor"].is_null());

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m2v");
    files.save(&out).unwrap();
    let student = Embedder::from_dir(&out).unwrap();
    assert!(student.info().normalize);
    let sentences = stsb_sentences();
    let got = student.embed(&sentences, &EmbedOptions::default()).unwrap();
    let got_rows: Vec<&[f32]> = got.rows().collect();
    let rho = stsb_spearman(&got_rows);
    let (_, cols, reference) = read_npy(&data("m2v-minilm-256-stsb.npy"));
    let ref_rows: Vec<&[f32]> = reference.chunks_exact(cols).collect();
    let python = stsb_spearman(&ref_rows);
    println!("sembed distill STS-B Spearman {rho:.7}, Python model2vec's {python:.7}");
    // Python's 0.6608120 is quoted as 0.6608; the teacher's last bits (AVX-512 or AMX kernels)
    // move the student's Spearman by ~1e-5 (0.66080x and 0.6607998 on one host).
    assert!(
        rho >= python - 5e-5,
        "STS-B Spearman {rho} below Python model2vec's {python} by more than 5e-5"
    );

    let closeness = spearman(&pair_cosines(&got_rows), &pair_cosines(&ref_rows));
    println!("Spearman of pair cosines vs Python's distill: {closeness:.6}");
    assert!(
        closeness >= 0.99,
        "pair-cosine Spearman vs Python's distill {closeness} < 0.99"
    );

    // Saving refuses to overwrite a non-empty directory.
    assert!(matches!(
        files.save(&out),
        Err(sembed::Error::InvalidOption(_))
    ));
}
