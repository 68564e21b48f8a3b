//! sembed: sentence embeddings with sentence-transformers-exact vectors from a native Rust engine.
//!
//! The pipeline, one module per stage:
//! text → `text` (prompts, truncation; [`tokenize`]) → `encoder` (BERT / RoBERTa / MPNet) or
//! `static_lookup` (Model2Vec) → [`pooling`] → `dense` → `post` ([`normalize`], truncate-dim) →
//! [`Embeddings`]. [`Embedder`] ties them together: load once (`load`), embed many times, from any
//! number of threads on one [`ThreadPool`] budget.
//!
//! ```no_run
//! use sembed::{Embedder, EmbedOptions};
//! let model = Embedder::from_dir("path/to/all-MiniLM-L6-v2")?;
//! let e = model.embed(&["hello world"], &EmbedOptions::default())?;
//! assert_eq!(e.dim(), 384);
//! # Ok::<(), sembed::Error>(())
//! ```
//!
//! Two stages, for batchers that count tokens before they embed:
//!
//! ```no_run
//! # let model = sembed::Embedder::from_dir("m")?;
//! let t = model.tokenize(&["hello world"], &Default::default())?;
//! println!("{} tokens", t.total_tokens());
//! let e = model.embed_tokenized(&t)?;
//! # Ok::<(), sembed::Error>(())
//! ```
//!
//! Features: `builtin` (all-MiniLM-L6-v2 compiled in), `hub` (models by Hugging Face id, the
//! [`sembed-hub`](hub) crate), `distill` (Model2Vec distillation). Without them the library loads
//! model directories (or files in memory) and nothing else.

#![warn(missing_docs)]

#[cfg(feature = "builtin")]
pub mod builtin;
mod bytes;
mod dense;
#[cfg(feature = "distill")]
pub mod distill;
mod embedder;
mod embeddings;
mod encoder;
mod error;
pub mod fingerprint;
mod info;
mod load;
mod memory;
pub mod normalize;
mod ops;
mod options;
pub mod pooling;
mod post;
pub mod quantize;
#[cfg(feature = "hub")]
mod resolve;
mod static_lookup;
mod static_model;
mod text;
mod threads;
pub mod tokenize;
mod tokenized;
mod weights;

/// Models by hub id: the [`sembed-hub`](sembed_hub) crate (feature `hub`).
#[cfg(feature = "hub")]
pub use sembed_hub as hub;

#[cfg(feature = "distill")]
pub use distill::{DistillOptions, DistillStage, distill};
pub use embedder::{EmbedReport, Embedder};
pub use embeddings::{Embeddings, TokenEmbeddings};
pub use error::{Error, Result};
pub use fingerprint::Fingerprint;
pub use info::{ModelInfo, ModelKind};
pub use load::config;
pub use normalize::{cosine, l2_normalize};
pub use options::{Cpu, EmbedOptions, LoadOptions, Residency};
#[cfg(feature = "hub")]
pub use resolve::{Resolved, resolve};
pub use threads::ThreadPool;
pub use tokenize::Tokenizer;
pub use tokenized::Tokenized;

/// Internals exposed for `benches/` only; not part of the API.
#[doc(hidden)]
pub mod __bench {
    /// One-thread rate of the packed-weights GEMM at `[m, k] · [k, n]`, GFLOP/s (best of 20).
    pub fn packed_gemm_gflops(m: usize, k: usize, n: usize) -> f64 {
        crate::ops::packed::rate_gflops(m, k, n)
    }
}
