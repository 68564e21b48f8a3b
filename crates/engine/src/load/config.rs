//! Serde mirrors of the JSON files in a Hugging Face / sentence-transformers model directory.
//! Only the fields sembed reads are declared; unknown fields are ignored, as Python does.

use serde::Deserialize;

/// `config.json` of a transformer (the subset the encoders need).
#[derive(Debug, Clone, Deserialize)]
pub struct TransformerConfig {
    /// e.g. `["BertModel"]`.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// e.g. `"bert"`.
    #[serde(default)]
    pub model_type: String,
    /// Width of every token state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Rows of the position-embedding table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (0 when absent).
    #[serde(default)]
    pub type_vocab_size: usize,
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Padding id (RoBERTa-style models count positions from it).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// MPNet's relative position buckets (default 32).
    #[serde(default)]
    pub relative_attention_num_buckets: Option<usize>,
    /// Only `"absolute"` is implemented for BERT.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".to_string()
}
fn default_eps() -> f64 {
    1e-12
}

/// One entry of `modules.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ModuleEntry {
    /// Sub-directory holding the module's files ("" for the root).
    #[serde(default)]
    pub path: String,
    /// Python class path, classic (`sentence_transformers.models.Pooling`) or 6.x style.
    #[serde(rename = "type")]
    pub kind: String,
}

impl ModuleEntry {
    /// The class name without its Python module path (`Pooling`, `Transformer`, ...).
    pub(crate) fn short_kind(&self) -> &str {
        self.kind.rsplit('.').next().unwrap_or(&self.kind)
    }
}

/// `sentence_bert_config.json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SentenceBertConfig {
    /// Truncation length; absent in files written by sentence-transformers 6.x.
    #[serde(default)]
    pub max_seq_length: Option<usize>,
    /// Lowercase the text before tokenizing.
    #[serde(default)]
    pub do_lower_case: bool,
}

/// `tokenizer_config.json` (only the length limit and casing).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenizerConfig {
    /// Can be a huge float (1e30) meaning "no limit".
    #[serde(default)]
    pub model_max_length: Option<f64>,
    /// Used when only vocab.txt is present.
    #[serde(default)]
    pub do_lower_case: Option<bool>,
}

/// `config_sentence_transformers.json` (prompts only).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SentenceTransformersConfig {
    /// Named prompts, e.g. `{"query": "query: "}`.
    #[serde(default)]
    pub prompts: std::collections::BTreeMap<String, String>,
    /// The prompt used when the caller names none.
    #[serde(default)]
    pub default_prompt_name: Option<String>,
}

/// `1_Pooling/config.json`, in either the classic (booleans) or the 6.x (`pooling_mode`) form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PoolingConfig {
    /// 6.x: one of `cls`, `mean`, `max`, `mean_sqrt_len_tokens`, `weightedmean`, `lasttoken`.
    #[serde(default)]
    pub pooling_mode: Option<String>,
    #[serde(default)]
    #[allow(missing_docs)]
    pub pooling_mode_cls_token: bool,
    #[serde(default)]
    #[allow(missing_docs)]
    pub pooling_mode_max_tokens: bool,
    #[serde(default)]
    #[allow(missing_docs)]
    pub pooling_mode_mean_tokens: bool,
    #[serde(default)]
    #[allow(missing_docs)]
    pub pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    #[allow(missing_docs)]
    pub pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    #[allow(missing_docs)]
    pub pooling_mode_lasttoken: bool,
    /// Whether prompt tokens take part in pooling (default true).
    #[serde(default)]
    pub include_prompt: Option<bool>,
}

/// `2_Dense/config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct DenseConfig {
    /// Input width.
    pub in_features: usize,
    /// Output width.
    pub out_features: usize,
    /// Whether `linear.bias` exists.
    #[serde(default = "default_true")]
    pub bias: bool,
    /// Python class path of the activation, e.g. `torch.nn.modules.activation.Tanh`.
    #[serde(default = "default_identity")]
    pub activation_function: String,
}

fn default_true() -> bool {
    true
}
fn default_identity() -> String {
    "torch.nn.modules.linear.Identity".to_string()
}
