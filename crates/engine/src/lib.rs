//! sembed: sentence embeddings with sentence-transformers-exact vectors from a native Rust engine.
//!
//! The pipeline, one module per stage:
//! text → [`tokenize`] → encoder (`bert`) or static lookup (`static_model`) → [`pool`] → `dense` →
//! [`normalize`] → [`Embeddings`].
//! [`Embedder`] ties them together: load once, embed many times.
//!
//! ```no_run
//! use sembed::{Embedder, EmbedOptions};
//! let model = Embedder::from_dir("path/to/all-MiniLM-L6-v2")?;
//! let e = model.embed(&["hello world"], &EmbedOptions::default())?;
//! assert_eq!(e.dim(), 384);
//! # Ok::<(), sembed::Error>(())
//! ```

#![warn(missing_docs)]

mod bert;
#[cfg(feature = "builtin")]
pub mod builtin;
pub mod config;
mod dense;
#[cfg(feature = "distill")]
pub mod distill;
mod embeddings;
mod error;
/// Models by hub id: the [`sembed-hub`](sembed_hub) crate (feature `hub`).
#[cfg(feature = "hub")]
pub use sembed_hub as hub;
mod model;
pub mod normalize;
mod ops;
pub mod pool;
pub mod quantize;
mod source;
mod static_model;
pub mod tokenize;
mod weights;

#[cfg(feature = "distill")]
pub use distill::{DistillOptions, DistillStage, distill};
pub use embeddings::Embeddings;
pub use error::{Error, Result};
pub use model::{EmbedOptions, EmbedReport, Embedder, ModelInfo};
pub use normalize::{cosine, l2_normalize};
pub use tokenize::Tokenizer;

/// Internals exposed for `benches/` only; not part of the API.
#[doc(hidden)]
pub mod __bench {
    /// One-thread rate of the packed-weights GEMM at `[m, k] · [k, n]`, GFLOP/s (best of 20).
    pub fn packed_gemm_gflops(m: usize, k: usize, n: usize) -> f64 {
        crate::ops::packed::rate_gflops(m, k, n)
    }
}
