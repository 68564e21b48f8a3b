//! BERT encoder (`BertModel` without the pooler), f32 compute over weights borrowed from the checkpoint.
//! Layer and tensor names follow the Hugging Face checkpoint (`encoder.layer.N.attention.self.query`, ...);
//! each layer has `load` and `forward`. Sequences are *packed*: a batch is the concatenation of its
//! sequences' tokens, so no work is spent on padding; attention runs per sequence.

use crate::config::TransformerConfig;
use crate::error::{Error, Result};
use crate::ops::{Activation, LayerNorm, Linear, Team, gemm, softmax_rows};
use crate::weights::{Mat, SafeTensors};

/// Dimensions read from config.json.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub hidden: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub vocab: usize,
}

/// Tokens of one batch, packed: `ids[start..start + len]` for each `(start, len)` in `seqs`.
#[derive(Debug, Default)]
pub(crate) struct Packed {
    pub ids: Vec<u32>, // [T]
    pub seqs: Vec<(usize, usize)>,
}

impl Packed {
    pub(crate) fn tokens(&self) -> usize {
        self.ids.len()
    }

    /// Packs the sequences `batch` (indices into `spans`, which index `ids`), reusing the buffers.
    pub(crate) fn fill(&mut self, batch: &[usize], spans: &[(usize, usize)], ids: &[u32]) {
        self.ids.clear();
        self.seqs.clear();
        for &i in batch {
            let (start, len) = spans[i];
            self.seqs.push((self.ids.len(), len));
            self.ids.extend_from_slice(&ids[start..start + len]);
        }
    }
}

/// Scratch memory for one forward pass, reused across layers and calls (one per worker thread).
/// `T` = tokens in the batch, `H` = hidden size, `I` = intermediate size, `L` = longest sequence.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    pub hidden: Vec<f32>, // [T, H] token states; the encoder's output
    q: Vec<f32>,          // [T, H]
    k: Vec<f32>,          // [T, H]
    v: Vec<f32>,          // [T, H]
    ctx: Vec<f32>,        // [T, H] attention context, then attention output
    inter: Vec<f32>,      // [T, I]
    scores: Vec<f32>,     // [L, L] one head's attention probabilities
    wbuf: Vec<f32>,       // half-precision weight block converted to f32
}

fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

fn linear<'a>(w: &'a SafeTensors, name: &str, out_dim: usize, in_dim: usize) -> Result<Linear<'a>> {
    Ok(Linear {
        weight: w.mat(&format!("{name}.weight"), out_dim, in_dim)?,
        bias: Some(w.vector(&format!("{name}.bias"), out_dim)?),
        in_dim,
        out_dim,
    })
}

fn layer_norm<'a>(w: &'a SafeTensors, name: &str, dim: usize, eps: f32) -> Result<LayerNorm<'a>> {
    Ok(LayerNorm {
        weight: w.vector(&format!("{name}.weight"), dim)?,
        bias: w.vector(&format!("{name}.bias"), dim)?,
        eps,
    })
}

/// `embeddings.*`: word + position + token-type rows, then LayerNorm.
#[derive(Debug)]
struct BertEmbeddings<'a> {
    word_embeddings: Mat<'a>,               // [vocab, H]
    position_embeddings: Mat<'a>,           // [max_positions, H]
    token_type_embeddings: Option<Mat<'a>>, // [type_vocab, H]
    layer_norm: LayerNorm<'a>,
}

impl<'a> BertEmbeddings<'a> {
    fn load(w: &'a SafeTensors, p: &str, cfg: &TransformerConfig, d: &Dims) -> Result<Self> {
        let types = format!("{p}embeddings.token_type_embeddings.weight");
        Ok(BertEmbeddings {
            word_embeddings: w.mat(
                &format!("{p}embeddings.word_embeddings.weight"),
                d.vocab,
                d.hidden,
            )?,
            position_embeddings: w.mat(
                &format!("{p}embeddings.position_embeddings.weight"),
                d.max_positions,
                d.hidden,
            )?,
            token_type_embeddings: if cfg.type_vocab_size > 0 && w.contains(&types) {
                Some(w.mat(&types, cfg.type_vocab_size, d.hidden)?)
            } else {
                None
            },
            layer_norm: layer_norm(
                w,
                &format!("{p}embeddings.LayerNorm"),
                d.hidden,
                cfg.layer_norm_eps as f32,
            )?,
        })
    }

    /// Writes the embedded tokens of `batch` into `out` (`[T, H]`). Token type is 0 (single sentences).
    fn forward(&self, batch: &Packed, h: usize, out: &mut [f32]) {
        for &(start, len) in &batch.seqs {
            for pos in 0..len {
                let t = start + pos;
                let row = &mut out[t * h..(t + 1) * h];
                self.word_embeddings.row_into(batch.ids[t] as usize, h, row);
                self.position_embeddings.add_row(pos, h, row);
                if let Some(tt) = &self.token_type_embeddings {
                    tt.add_row(0, h, row);
                }
            }
        }
        self.layer_norm.forward(out);
    }
}

/// `encoder.layer.N`: self-attention, its output projection + LayerNorm, then the feed-forward block.
#[derive(Debug)]
struct BertLayer<'a> {
    query: Linear<'a>,
    key: Linear<'a>,
    value: Linear<'a>,
    attention_output: Linear<'a>,
    attention_layer_norm: LayerNorm<'a>,
    intermediate: Linear<'a>,
    output: Linear<'a>,
    output_layer_norm: LayerNorm<'a>,
}

impl<'a> BertLayer<'a> {
    fn load(w: &'a SafeTensors, p: &str, d: &Dims, eps: f32) -> Result<Self> {
        let (h, i) = (d.hidden, d.intermediate);
        Ok(BertLayer {
            query: linear(w, &format!("{p}.attention.self.query"), h, h)?,
            key: linear(w, &format!("{p}.attention.self.key"), h, h)?,
            value: linear(w, &format!("{p}.attention.self.value"), h, h)?,
            attention_output: linear(w, &format!("{p}.attention.output.dense"), h, h)?,
            attention_layer_norm: layer_norm(
                w,
                &format!("{p}.attention.output.LayerNorm"),
                h,
                eps,
            )?,
            intermediate: linear(w, &format!("{p}.intermediate.dense"), i, h)?,
            output: linear(w, &format!("{p}.output.dense"), h, i)?,
            output_layer_norm: layer_norm(w, &format!("{p}.output.LayerNorm"), h, eps)?,
        })
    }

    fn forward<'m>(
        &'m self,
        batch: &Packed,
        d: &Dims,
        act: Activation,
        ws: &mut Workspace,
        team: Option<&Team<'m>>,
    ) {
        let (t, h, dh) = (batch.tokens(), d.hidden, d.head_dim);
        let x = &ws.hidden[..t * h];
        let q = grow(&mut ws.q, t * h);
        self.query.forward(x, q, t, &mut ws.wbuf, team);
        let k = grow(&mut ws.k, t * h);
        self.key.forward(x, k, t, &mut ws.wbuf, team);
        let v = grow(&mut ws.v, t * h);
        self.value.forward(x, v, t, &mut ws.wbuf, team);

        // Scaled dot-product attention, one sequence and head at a time; heads are column slices.
        let ctx = grow(&mut ws.ctx, t * h);
        let scale = 1.0 / (dh as f32).sqrt();
        for &(start, len) in &batch.seqs {
            let scores = grow(&mut ws.scores, len * len); // [len, len]
            for head in 0..d.heads {
                let off = start * h + head * dh;
                // scores = q_h · k_hᵀ · scale
                gemm(
                    len,
                    dh,
                    len,
                    scale,
                    &q[off..],
                    (h, 1),
                    &k[off..],
                    (1, h),
                    0.0,
                    scores,
                    (len, 1),
                );
                softmax_rows(scores, len);
                // ctx_h = scores · v_h
                gemm(
                    len,
                    len,
                    dh,
                    1.0,
                    scores,
                    (len, 1),
                    &v[off..],
                    (h, 1),
                    0.0,
                    &mut ctx[off..],
                    (h, 1),
                );
            }
        }

        // attention output: LayerNorm(ctx · Woᵀ + b + x), kept in q (free now).
        let attn = &mut ws.q[..t * h];
        self.attention_output
            .forward(&ws.ctx[..t * h], attn, t, &mut ws.wbuf, team);
        self.attention_layer_norm
            .forward_residual(attn, &ws.hidden[..t * h]);

        // feed-forward: LayerNorm(act(attn · W1ᵀ + b1) · W2ᵀ + b2 + attn), written back to hidden.
        let inter = grow(&mut ws.inter, t * d.intermediate);
        self.intermediate
            .forward(&ws.q[..t * h], inter, t, &mut ws.wbuf, team);
        act.apply(inter);
        let out = &mut ws.hidden[..t * h];
        self.output
            .forward(&ws.inter[..t * d.intermediate], out, t, &mut ws.wbuf, team);
        self.output_layer_norm.forward_residual(out, &ws.q[..t * h]);
    }
}

/// The whole encoder: embeddings then `num_hidden_layers` layers.
#[derive(Debug)]
pub(crate) struct BertModel<'a> {
    pub dims: Dims,
    act: Activation,
    embeddings: BertEmbeddings<'a>,
    layers: Vec<BertLayer<'a>>,
}

impl<'a> BertModel<'a> {
    /// Loads from a checkpoint whose tensor names may carry a prefix (`bert.` when saved from a
    /// task model).
    pub(crate) fn load(
        w: &'a SafeTensors,
        cfg: &TransformerConfig,
        config_path: &std::path::Path,
    ) -> Result<Self> {
        if cfg
            .position_embedding_type
            .as_deref()
            .is_some_and(|p| p != "absolute")
        {
            return Err(Error::Unsupported {
                what: "position_embedding_type",
                name: cfg.position_embedding_type.clone().unwrap_or_default(),
            });
        }
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(Error::invalid(
                config_path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    cfg.hidden_size, cfg.num_attention_heads
                ),
            ));
        }
        let act = Activation::from_hf(&cfg.hidden_act).ok_or_else(|| Error::Unsupported {
            what: "hidden_act",
            name: cfg.hidden_act.clone(),
        })?;
        let dims = Dims {
            hidden: cfg.hidden_size,
            heads: cfg.num_attention_heads,
            head_dim: cfg.hidden_size / cfg.num_attention_heads,
            intermediate: cfg.intermediate_size,
            max_positions: cfg.max_position_embeddings,
            vocab: cfg.vocab_size,
        };
        let prefix = tensor_prefix(w, "embeddings.word_embeddings.weight");
        // The word-embedding table (half the file) is only read a row per token.
        w.read_sparsely(&format!("{prefix}embeddings.word_embeddings.weight"));
        let eps = cfg.layer_norm_eps as f32;
        let embeddings = BertEmbeddings::load(w, &prefix, cfg, &dims)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| BertLayer::load(w, &format!("{prefix}encoder.layer.{l}"), &dims, eps))
            .collect::<Result<Vec<_>>>()?;
        Ok(BertModel {
            dims,
            act,
            embeddings,
            layers,
        })
    }

    /// Runs the encoder; the token states end up in `ws.hidden[..T * H]`.
    /// `team`: a helper thread for the products of a short input (see `ops::team`).
    pub(crate) fn forward<'m>(
        &'m self,
        batch: &Packed,
        ws: &mut Workspace,
        team: Option<&Team<'m>>,
    ) {
        let h = self.dims.hidden;
        let hidden = grow(&mut ws.hidden, batch.tokens() * h);
        self.embeddings.forward(batch, h, hidden);
        for layer in &self.layers {
            layer.forward(batch, &self.dims, self.act, ws, team);
        }
    }

    /// The storage dtype of the big matrices (for `info`).
    pub(crate) fn weight_dtype(&self) -> &'static str {
        self.embeddings.word_embeddings.dtype_name()
    }
}

/// The prefix before `suffix` in the checkpoint's tensor names ("" or e.g. "bert.").
pub(crate) fn tensor_prefix(w: &SafeTensors, suffix: &str) -> String {
    if w.contains(suffix) {
        return String::new();
    }
    w.names()
        .filter_map(|n| n.strip_suffix(suffix))
        .min_by_key(|p| p.len())
        .map(str::to_string)
        .unwrap_or_default()
}

/// Checks every id against the vocabulary size before indexing (a tokenizer/model mismatch must be an
/// error, not a panic).
pub(crate) fn check_ids(ids: &[u32], vocab: usize) -> Result<()> {
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(id) => Err(Error::Tokenizer(format!(
            "token id {id} is outside the model's vocabulary of {vocab}; tokenizer and weights do not match"
        ))),
        None => Ok(()),
    }
}
