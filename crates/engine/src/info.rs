//! What a loaded model is ([`ModelInfo`]): the facts `sembed info` shows, and its fingerprint.

use std::sync::Arc;

use crate::error::Result;
use crate::fingerprint::{Fingerprint, ModelDigest};

/// Which path runs between the tokenizer and the vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelKind {
    /// A transformer encoder, then sentence-transformers' pooling / dense / normalize modules.
    Transformer,
    /// A Model2Vec static table: the mean of token rows.
    Static,
}

impl ModelKind {
    /// The kind's name in the bindings' model facts: `transformer` or `static`.
    ///
    /// ```
    /// assert_eq!(sembed::ModelKind::Static.as_str(), "static");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Transformer => "transformer",
            ModelKind::Static => "static",
        }
    }
}

/// Facts about a loaded model.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModelInfo {
    /// Display name.
    pub name: String,
    /// Transformer or static.
    pub kind: ModelKind,
    /// e.g. `BertModel`.
    pub architecture: String,
    /// Encoder layers.
    pub layers: usize,
    /// Width of token states.
    pub hidden_size: usize,
    /// Width of the output vectors.
    pub dim: usize,
    /// Truncation length in tokens, specials included (`None`: a static model without a limit).
    pub max_seq_length: Option<usize>,
    /// Pooling modes in output order.
    pub pooling: Vec<&'static str>,
    /// Dense layers as `(in, out)`.
    pub dense: Vec<(usize, usize)>,
    /// Whether the model ends with a Normalize module.
    pub normalize: bool,
    /// Tokenizer description.
    pub tokenizer: String,
    /// Named prompts (`config_sentence_transformers.json`).
    pub prompts: Vec<(String, String)>,
    /// The prompt used when none is named.
    pub default_prompt: Option<String>,
    /// Storage dtype of the weights.
    pub weights_dtype: &'static str,
    /// The instruction set its kernels use (`amx`, `avx512`, `avx2`, `portable`; `simd128` in wasm).
    pub cpu: &'static str,
    /// Where the files came from.
    pub source: String,
    pub(crate) digest: Arc<ModelDigest>,
}

impl ModelInfo {
    /// A stable identifier of the model's files (weights, configs, tokenizer): equal for the same
    /// files in any folder on any machine, different after any change to any of them. See
    /// [`crate::fingerprint`]; [`Embedder::fingerprint`](crate::Embedder::fingerprint) adds the
    /// options of a call. The first call may hash the weights (tens of milliseconds).
    pub fn fingerprint(&self) -> Result<Fingerprint> {
        self.digest.fingerprint()
    }
}
