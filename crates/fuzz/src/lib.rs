//! Fuzz harnesses (issue #16): one function per target, each taking the fuzzer's bytes. They are
//! called by the libFuzzer targets in `fuzz/` (nightly, `cargo fuzz`) and by `tests/corpus.rs`,
//! which replays the committed corpora and every crash input found on stable, in CI. A harness
//! returns on any input; a panic (or an abort) is a finding. See FUZZING.md.

/// Bytes of files under `tests/data`, compiled in so the harnesses need no paths at run time.
#[macro_export]
#[doc(hidden)]
macro_rules! data {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/",
            $path
        ))
        .as_slice()
    };
}

mod cli_io;
mod hub;
mod index;
mod model;
mod server;
mod tokenize;

pub use cli_io::{input, output};
pub use hub::{hub_response, hub_seeds};
pub use index::{chunker, index_file, index_file_seeds};
pub use model::{
    MODEL_FILE_COUNT, model_file_index, model_files, model_files_seed, safetensors,
    safetensors_seed, static_files, static_files_seeds,
};
pub use server::{server_request, server_seeds};
pub use tokenize::wordpiece;

/// Load options of every harness: one thread (a fuzzer runs one input at a time).
pub(crate) fn one_thread() -> sembed::LoadOptions {
    sembed::LoadOptions {
        threads: Some(sembed::ThreadPool::new(1)),
        ..Default::default()
    }
}

/// The tiny BERT fixture (`tests/data/fixtures/tiny-bert-cls`) loaded from memory on one thread.
pub(crate) fn load_tiny() -> sembed::Embedder {
    sembed::Embedder::from_files(model::fixture_files(), &one_thread()).expect("the fixture loads")
}

/// [`load_tiny`] once per process: the model of the targets that need one to run (index,
/// chunker).
pub(crate) fn tiny_model() -> &'static sembed::Embedder {
    static MODEL: std::sync::OnceLock<sembed::Embedder> = std::sync::OnceLock::new();
    MODEL.get_or_init(load_tiny)
}
