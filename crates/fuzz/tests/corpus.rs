//! Replays, on stable, what the fuzzers of `fuzz/` found worth keeping: every file of
//! `fuzz/corpus/<target>/` (the minimized corpora) and `fuzz/regressions/<target>/` (each crash
//! input found, kept after its fix), through the same harnesses. A missing or empty corpus is an
//! error, not a silent pass.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = root.join("corpus").join(target);
    let entries = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e} (committed with the target)", corpus.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .collect();
    // Crash inputs, once a fuzzer has found some (none yet is no folder).
    if let Ok(entries) = std::fs::read_dir(root.join("regressions").join(target)) {
        files.extend(entries.map(|e| e.expect("directory entry").path()));
    }
    files.sort();
    files
}

/// Runs every input of `target` through `harness` (its result, where it has one, is not checked
/// here: the seed tests below do that).
fn replay<R>(target: &str, harness: impl Fn(&[u8]) -> R) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs for {target}");
    for f in &files {
        let data = std::fs::read(f).expect("read input");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness(&data)));
        assert!(result.is_ok(), "{target}: {} panics", f.display());
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn wordpiece_corpus() {
    replay("wordpiece", sembed_fuzz::wordpiece);
}

#[test]
fn model_files_corpus() {
    replay("model_files", sembed_fuzz::model_files);
}

/// The harness is not vacuous: the fixture's own files, put back in place, load and embed.
#[test]
fn model_files_seeds_load() {
    for i in 0..sembed_fuzz::MODEL_FILE_COUNT {
        assert!(
            sembed_fuzz::model_files(&sembed_fuzz::model_files_seed(i)),
            "seed {i}"
        );
    }
}

/// And it does reject what it should: an empty safetensors file, a config that is not JSON.
#[test]
fn model_files_rejects_broken_files() {
    let at = |name| sembed_fuzz::model_file_index(name).expect("a file of the fixture");
    assert!(!sembed_fuzz::model_files(&[at("model.safetensors")]));
    let mut config = vec![at("config.json")];
    config.extend_from_slice(b"{not json");
    assert!(!sembed_fuzz::model_files(&config));
}

#[test]
fn safetensors_corpus() {
    replay("safetensors", sembed_fuzz::safetensors);
}

#[test]
fn static_files_corpus() {
    replay("static_files", sembed_fuzz::static_files);
}

#[test]
fn input_corpus() {
    replay("input", sembed_fuzz::input);
}

#[test]
fn output_corpus() {
    replay("output", sembed_fuzz::output);
}

#[test]
fn chunker_corpus() {
    replay("chunker", sembed_fuzz::chunker);
}

#[test]
fn index_file_corpus() {
    replay("index_file", sembed_fuzz::index_file);
}

#[test]
fn server_request_corpus() {
    replay("server_request", sembed_fuzz::server_request);
}

#[test]
fn hub_response_corpus() {
    replay("hub_response", sembed_fuzz::hub_response);
}

/// The new targets' seeds do what they stand for: the unmodified files load, the intact index
/// opens, updates and searches, the requests are answered 200, the scripted hub serves a download.
#[test]
fn seeds_succeed() {
    assert!(sembed_fuzz::safetensors(&sembed_fuzz::safetensors_seed()));
    for (i, s) in sembed_fuzz::static_files_seeds().iter().enumerate() {
        assert!(sembed_fuzz::static_files(s), "static seed {i}");
    }
    for (i, s) in sembed_fuzz::index_file_seeds().iter().enumerate() {
        assert!(sembed_fuzz::index_file(s), "index seed {i}");
    }
    let seeds = sembed_fuzz::server_seeds();
    for s in &seeds[..seeds.len() - 1] {
        assert_eq!(
            sembed_fuzz::server_request(s),
            200,
            "{:?}",
            String::from_utf8_lossy(s)
        );
    }
    assert_eq!(sembed_fuzz::server_request(&seeds[seeds.len() - 1]), 400);
    for (i, s) in sembed_fuzz::hub_seeds().iter().enumerate() {
        assert!(sembed_fuzz::hub_response(s), "hub seed {i}");
    }
}

/// And they can fail: a header that is not JSON, a database that is not SQLite, a hub that
/// answers nothing.
#[test]
fn broken_inputs_fail() {
    assert!(!sembed_fuzz::safetensors(b"{not json"));
    assert!(!sembed_fuzz::index_file(b"\0not a database"));
    assert!(!sembed_fuzz::hub_response(b""));
    let mut st = sembed_fuzz::static_files_seeds().remove(3);
    st.truncate(20);
    assert!(!sembed_fuzz::static_files(&st));
}
