//! The real sentence-transformers/all-mpnet-base-v2 (reassembled from PyPI by
//! scripts/fetch-mpnet.sh) against Python sentence-transformers' own vectors for 71 varied texts
//! (tests/data/mpnet, made by its make_reference.py): every token id equal, min cosine ≥ 0.99999.

use sembed::{EmbedOptions, Embedder};
use sembed_testkit::*;

#[test]
fn real_all_mpnet_base_v2_matches_sentence_transformers() {
    let model = Embedder::from_dir(mpnet_model()).unwrap();
    let info = model.info();
    assert_eq!(
        (info.architecture.as_str(), info.dim, info.max_seq_length),
        ("MPNetForMaskedLM", 768, Some(384))
    );
    assert!(info.normalize);
    let refs = read_jsonl(&data("mpnet/reference.jsonl"));
    assert!(refs.len() >= 50);
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let opts = EmbedOptions::default();
    let t = model.tokenize(&texts, &opts).unwrap();
    let mut truncated = 0;
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(t.ids(i), &r.input_ids[..], "ids of {:?}", r.text);
        truncated += usize::from(t.truncated(i));
    }
    assert!(truncated >= 3, "{truncated} texts past the 384-token limit");
    let got = model.embed(&texts, &opts).unwrap();
    let (mut worst, mut at) = (f32::INFINITY, 0);
    for (i, (r, g)) in refs.iter().zip(got.rows()).enumerate() {
        let c = cosine(g, &r.embedding);
        if c < worst {
            (worst, at) = (c, i);
        }
    }
    println!(
        "all-mpnet-base-v2: min cosine {worst} at {at} ({:?})",
        refs[at].text
    );
    assert!(
        worst >= 0.99999,
        "min cosine {worst} at text {at}: {:?}",
        refs[at].text
    );
}
