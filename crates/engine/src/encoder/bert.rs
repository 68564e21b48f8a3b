//! The BERT-family encoder (`BertModel`, `RobertaModel`/`XLMRobertaModel`, `MPNetModel`, without the
//! pooler), f32 compute over weights borrowed from the checkpoint. Layer and tensor names follow the
//! Hugging Face checkpoints (`encoder.layer.N.attention.self.query`, MPNet's `attention.attn.q`, ...);
//! each layer has `load` and `forward`. The flavours differ only in position ids (RoBERTa and MPNet
//! count from `padding_idx + 1`), token types (absent in MPNet), tensor names, and MPNet's relative
//! position bias added to every attention score. A [`Batch`] is the concatenation of its sequences'
//! tokens (no padding, so no work is spent on it); attention runs per sequence.

use std::borrow::Cow;
use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use super::resident::ResidentLayers;
use crate::error::{Error, Result};
use crate::load::config::TransformerConfig;
use crate::ops::packed::PANEL;
use crate::ops::{
    Activation, CpuLevel, LayerNorm, Linear, Panels, Team, Weight, gemm, softmax_rows,
};
use crate::weights::{Mat, RowTable, SafeTensors};

/// Which member of the BERT family a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Bert,
    /// RoBERTa and XLM-RoBERTa: positions from `padding_idx + 1`.
    Roberta,
    /// MPNet: RoBERTa positions, no token types, relative position buckets.
    MpNet,
}

impl Flavor {
    /// From config.json's `architectures` (or `model_type`); `None` for anything else.
    pub(crate) fn from_config(cfg: &TransformerConfig) -> Option<Self> {
        let name = cfg.architectures.first().map(String::as_str).unwrap_or("");
        let kind = cfg.model_type.as_str();
        if name.starts_with("Bert") || (name.is_empty() && kind == "bert") {
            Some(Flavor::Bert)
        } else if name.starts_with("XLMRoberta")
            || name.starts_with("Roberta")
            || name.starts_with("Camembert")
            || (name.is_empty() && matches!(kind, "roberta" | "xlm-roberta" | "camembert"))
        {
            Some(Flavor::Roberta)
        } else if name.starts_with("MPNet") || (name.is_empty() && kind == "mpnet") {
            Some(Flavor::MpNet)
        } else {
            None
        }
    }

    /// Tensor names inside `encoder.layer.N`: q, k, v, attention output, its LayerNorm.
    fn attention_names(self) -> [&'static str; 5] {
        match self {
            Flavor::MpNet => [
                "attention.attn.q",
                "attention.attn.k",
                "attention.attn.v",
                "attention.attn.o",
                "attention.LayerNorm",
            ],
            _ => [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
            ],
        }
    }
}

/// Dimensions read from config.json.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub hidden: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    /// Longest sequence the position table covers (RoBERTa/MPNet lose `padding_idx + 1` rows).
    pub max_tokens: usize,
    pub vocab: usize,
}

/// The tokens of one batch, concatenated without padding: `ids[start..start + len]` for each
/// `(start, len)` in `seqs`.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub ids: Vec<u32>, // [T]
    pub seqs: Vec<(usize, usize)>,
}

impl Batch {
    pub(crate) fn tokens(&self) -> usize {
        self.ids.len()
    }

    /// Concatenates the sequences `batch` (indices into `spans`, which index `ids`), reusing the
    /// buffers.
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
    pos_bias: Vec<f32>,   // Σ over sequences of [heads, len, len] (MPNet relative position bias)
    wbuf: Vec<f32>,       // half-precision weight block converted to f32
}

fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// A linear layer: its weight as AMX tiles or panels where the file stores it so (a prepared
/// copy, the built-in model), else as stored.
fn linear<'a>(w: &'a SafeTensors, name: &str, out_dim: usize, in_dim: usize) -> Result<Linear<'a>> {
    let weight_name = format!("{name}.weight");
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(tiles) = w.tiles(&weight_name, out_dim, in_dim)? {
        return Ok(Linear {
            weight: Weight::Tiles(tiles),
            bias: Some(w.vector(&format!("{name}.bias"), out_dim)?),
            in_dim,
            out_dim,
        });
    }
    let weight = match w.panels(&weight_name, out_dim, in_dim)? {
        Some(data) => Weight::Packed(Panels {
            data,
            n: out_dim,
            k: in_dim,
            nr: PANEL,
        }),
        None => Weight::Stored(w.mat(&weight_name, out_dim, in_dim)?),
    };
    Ok(Linear {
        weight,
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
    /// RoBERTa/MPNet: `Some(padding_idx)`; positions count from `padding_idx + 1`, pads sit at it.
    padding_idx: Option<u32>,
    word_embeddings: RowTable<'a>,          // [vocab, H]
    position_embeddings: Mat<'a>,           // [max_positions, H]
    token_type_embeddings: Option<Mat<'a>>, // [type_vocab, H]
    layer_norm: LayerNorm<'a>,
}

impl<'a> BertEmbeddings<'a> {
    fn load(
        w: &'a SafeTensors,
        p: &str,
        cfg: &TransformerConfig,
        d: &Dims,
        flavor: Flavor,
    ) -> Result<Self> {
        let types = format!("{p}embeddings.token_type_embeddings.weight");
        Ok(BertEmbeddings {
            padding_idx: match flavor {
                Flavor::Bert => None,
                _ => Some(cfg.pad_token_id.unwrap_or(1)),
            },
            word_embeddings: w.row_table(
                &format!("{p}embeddings.word_embeddings.weight"),
                d.vocab,
                d.hidden,
            )?,
            position_embeddings: w.mat(
                &format!("{p}embeddings.position_embeddings.weight"),
                d.max_positions,
                d.hidden,
            )?,
            token_type_embeddings: if flavor != Flavor::MpNet
                && cfg.type_vocab_size > 0
                && w.contains(&types)
            {
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
    fn forward(&self, batch: &Batch, h: usize, out: &mut [f32]) {
        // Word rows first, each distinct id read once ([CLS], [SEP] and common words repeat: a row
        // read can be a system call, see `RowTable`), then positions and token types added.
        let mut first: FxHashMap<u32, usize> = FxHashMap::default();
        for (t, &id) in batch.ids.iter().enumerate() {
            match first.entry(id) {
                Entry::Occupied(e) => out.copy_within(e.get() * h..(e.get() + 1) * h, t * h),
                Entry::Vacant(e) => {
                    e.insert(t);
                    let row = &mut out[t * h..(t + 1) * h];
                    self.word_embeddings.row_into(id as usize, h, row);
                }
            }
        }
        for &(start, len) in &batch.seqs {
            let mut seen = 0; // non-padding tokens so far (HF create_position_ids_from_input_ids)
            for i in 0..len {
                let t = start + i;
                let id = batch.ids[t];
                let pos = match self.padding_idx {
                    None => i,
                    Some(pad) if id == pad => pad as usize,
                    Some(pad) => {
                        seen += 1;
                        pad as usize + seen
                    }
                };
                let row = &mut out[t * h..(t + 1) * h];
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
pub(crate) struct BertLayer<'a> {
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
    /// The products, in a fixed order (q, k, v, attention output, intermediate, output).
    pub(crate) fn linears(&self) -> [&Linear<'a>; 6] {
        [
            &self.query,
            &self.key,
            &self.value,
            &self.attention_output,
            &self.intermediate,
            &self.output,
        ]
    }

    /// The LayerNorms, in a fixed order (attention, output).
    pub(crate) fn norms(&self) -> [&LayerNorm<'a>; 2] {
        [&self.attention_layer_norm, &self.output_layer_norm]
    }

    /// A layer from the parts [`linears`](Self::linears) and [`norms`](Self::norms) list, in
    /// their order.
    pub(crate) fn from_parts(linears: [Linear<'a>; 6], norms: [LayerNorm<'a>; 2]) -> Self {
        let [query, key, value, attention_output, intermediate, output] = linears;
        let [attention_layer_norm, output_layer_norm] = norms;
        BertLayer {
            query,
            key,
            value,
            attention_output,
            attention_layer_norm,
            intermediate,
            output,
            output_layer_norm,
        }
    }

    fn load(w: &'a SafeTensors, p: &str, d: &Dims, eps: f32, flavor: Flavor) -> Result<Self> {
        let (h, i) = (d.hidden, d.intermediate);
        let [q, k, v, o, ln] = flavor.attention_names();
        Ok(BertLayer {
            query: linear(w, &format!("{p}.{q}"), h, h)?,
            key: linear(w, &format!("{p}.{k}"), h, h)?,
            value: linear(w, &format!("{p}.{v}"), h, h)?,
            attention_output: linear(w, &format!("{p}.{o}"), h, h)?,
            attention_layer_norm: layer_norm(w, &format!("{p}.{ln}"), h, eps)?,
            intermediate: linear(w, &format!("{p}.intermediate.dense"), i, h)?,
            output: linear(w, &format!("{p}.output.dense"), h, i)?,
            output_layer_norm: layer_norm(w, &format!("{p}.output.LayerNorm"), h, eps)?,
        })
    }

    fn forward<'m>(
        &'m self,
        batch: &Batch,
        d: &Dims,
        act: Activation,
        ws: &mut Workspace,
        (team, cpu): (Option<&Team<'m>>, CpuLevel),
    ) {
        let (t, h, dh) = (batch.tokens(), d.hidden, d.head_dim);
        let x = &ws.hidden[..t * h];
        let q = grow(&mut ws.q, t * h);
        self.query.forward(x, q, t, &mut ws.wbuf, team, cpu);
        let k = grow(&mut ws.k, t * h);
        self.key.forward(x, k, t, &mut ws.wbuf, team, cpu);
        let v = grow(&mut ws.v, t * h);
        self.value.forward(x, v, t, &mut ws.wbuf, team, cpu);

        // Scaled dot-product attention, one sequence and head at a time; heads are column slices.
        let ctx = grow(&mut ws.ctx, t * h);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut bias_at = 0; // offset of this sequence's [heads, len, len] block in ws.pos_bias
        for &(start, len) in &batch.seqs {
            // A text of no tokens (a tokenizer without special tokens, an empty text) has no
            // attention to compute; its pooled vector is zeros (found by fuzzing).
            if len == 0 {
                continue;
            }
            let scores = grow(&mut ws.scores, len * len); // [len, len]
            let bias = (!ws.pos_bias.is_empty())
                .then(|| &ws.pos_bias[bias_at..bias_at + d.heads * len * len]);
            bias_at += d.heads * len * len;
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
                if let Some(b) = bias {
                    let b = &b[head * len * len..(head + 1) * len * len];
                    scores.iter_mut().zip(b).for_each(|(s, b)| *s += b);
                }
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
            .forward(&ws.ctx[..t * h], attn, t, &mut ws.wbuf, team, cpu);
        self.attention_layer_norm
            .forward_residual(attn, &ws.hidden[..t * h]);

        // feed-forward: LayerNorm(act(attn · W1ᵀ + b1) · W2ᵀ + b2 + attn), written back to hidden.
        let inter = grow(&mut ws.inter, t * d.intermediate);
        self.intermediate
            .forward(&ws.q[..t * h], inter, t, &mut ws.wbuf, team, cpu);
        act.apply(inter, cpu);
        let out = &mut ws.hidden[..t * h];
        self.output.forward(
            &ws.inter[..t * d.intermediate],
            out,
            t,
            &mut ws.wbuf,
            team,
            cpu,
        );
        self.output_layer_norm.forward_residual(out, &ws.q[..t * h]);
    }
}

/// The whole encoder: embeddings then `num_hidden_layers` layers.
#[derive(Debug)]
pub(crate) struct BertModel<'a> {
    pub dims: Dims,
    act: Activation,
    embeddings: BertEmbeddings<'a>,
    layers: LayerStack<'a>,
    /// MPNet: `encoder.relative_attention_bias.weight`, `[buckets, heads]`.
    relative_bias: Option<(Cow<'a, [f32]>, usize)>,
}

/// The encoder layers, in order.
pub(crate) type LayerStack<'a> = Vec<BertLayer<'a>>;

/// MPNet's `relative_position_bucket` (bidirectional, max_distance 128), in f32 like PyTorch, so
/// bucket edges fall exactly where the reference puts them.
fn relative_bucket(relative_position: i64, num_buckets: usize) -> usize {
    let half = (num_buckets / 2) as i64;
    let n = -relative_position;
    let mut ret = if n < 0 { half } else { 0 };
    let n = n.abs();
    let max_exact = half / 2;
    if n < max_exact {
        ret += n;
    } else {
        let scaled = (n as f32 / max_exact as f32).ln() / (128f64 / max_exact as f64).ln() as f32
            * (half - max_exact) as f32;
        ret += (max_exact + scaled as i64).min(half - 1);
    }
    ret as usize
}

impl<'a> BertModel<'a> {
    /// Loads from a checkpoint whose tensor names may carry a prefix (`bert.` when saved from a
    /// task model).
    pub(crate) fn load(
        w: &'a SafeTensors,
        cfg: &TransformerConfig,
        flavor: Flavor,
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
            max_tokens: max_tokens(cfg, flavor),
            vocab: cfg.vocab_size,
        };
        check_scratch(cfg, flavor, config_path)?;
        let prefix = tensor_prefix(w, "embeddings.word_embeddings.weight");
        // The word-embedding table (half the file) is only read a row per token.
        if let Some(table) = w.tensor_bytes(&format!("{prefix}embeddings.word_embeddings.weight")) {
            crate::memory::read_sparsely(table);
        }
        let eps = cfg.layer_norm_eps as f32;
        let embeddings = BertEmbeddings::load(w, &prefix, cfg, &dims, flavor)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|l| BertLayer::load(w, &format!("{prefix}encoder.layer.{l}"), &dims, eps, flavor))
            .collect::<Result<_>>()?;
        let relative_bias = match flavor {
            Flavor::MpNet => {
                let buckets = cfg.relative_attention_num_buckets.unwrap_or(32);
                let name = format!("{prefix}encoder.relative_attention_bias.weight");
                let table = match w.mat(&name, buckets, dims.heads)? {
                    Mat::F32(t) => t,
                    other => {
                        let mut v = vec![0f32; buckets * dims.heads];
                        for (r, row) in v.chunks_exact_mut(dims.heads).enumerate() {
                            other.row_into(r, dims.heads, row);
                        }
                        Cow::Owned(v)
                    }
                };
                Some((table, buckets))
            }
            _ => None,
        };
        Ok(BertModel {
            dims,
            act,
            embeddings,
            layers,
            relative_bias,
        })
    }

    /// The layers over the weights as loaded (what a resident copy is made from).
    pub(crate) fn layers(&self) -> &[BertLayer<'a>] {
        &self.layers
    }

    /// Runs the encoder; the token states end up in `ws.hidden[..T * H]`.
    /// `resident`: the layers over a huge-page copy of their weights, if made.
    /// `team`: a helper thread for the products of a short input (see `ops::team`).
    pub(crate) fn forward<'m>(
        &'m self,
        resident: Option<&'m ResidentLayers>,
        batch: &Batch,
        ws: &mut Workspace,
        (team, cpu): (Option<&Team<'m>>, CpuLevel),
    ) {
        let h = self.dims.hidden;
        ws.pos_bias.clear();
        if let Some((table, buckets)) = &self.relative_bias {
            // [heads, len, len] per sequence, shared by every layer.
            let heads = self.dims.heads;
            for &(_, len) in &batch.seqs {
                for head in 0..heads {
                    for i in 0..len {
                        for j in 0..len {
                            let b = relative_bucket(j as i64 - i as i64, *buckets);
                            ws.pos_bias.push(table[b * heads + head]);
                        }
                    }
                }
            }
        }
        let hidden = grow(&mut ws.hidden, batch.tokens() * h);
        self.embeddings.forward(batch, h, hidden);
        let layers = resident.map_or(&self.layers[..], |r| r.layers());
        for layer in layers {
            layer.forward(batch, &self.dims, self.act, ws, (team, cpu));
        }
    }

    /// The storage dtype of the big matrices (for `info`).
    pub(crate) fn weight_dtype(&self) -> &'static str {
        self.embeddings.word_embeddings.dtype_name()
    }
}

/// Longest sequence the position table covers (RoBERTa/MPNet lose `padding_idx + 1` rows).
fn max_tokens(cfg: &TransformerConfig, flavor: Flavor) -> usize {
    match flavor {
        Flavor::Bert => cfg.max_position_embeddings,
        _ => cfg
            .max_position_embeddings
            .saturating_sub(cfg.pad_token_id.unwrap_or(1) as usize + 1),
    }
}

/// Refuses sizes whose [`Workspace`] for one batch (up to `MAX_BATCH_TOKENS` tokens, or one
/// sequence of up to the model's limit) would pass `MAX_SCRATCH_BYTES`.
pub(crate) fn check_scratch(
    cfg: &TransformerConfig,
    flavor: Flavor,
    config_path: &std::path::Path,
) -> Result<()> {
    let bytes = || {
        let l = max_tokens(cfg, flavor) as u64;
        let t = l.max(super::MAX_BATCH_TOKENS as u64);
        // hidden, q, k, v, ctx: [T, H]; inter: [T, I]; scores: [L, L].
        let per_token = (cfg.hidden_size as u64)
            .checked_mul(5)?
            .checked_add(cfg.intermediate_size as u64)?;
        let mut floats = t.checked_mul(per_token)?.checked_add(l.checked_mul(l)?)?;
        if flavor == Flavor::MpNet {
            // pos_bias: Σ heads × len² ≤ heads × L × T.
            let heads = cfg.num_attention_heads as u64;
            floats = floats.checked_add(heads.checked_mul(l)?.checked_mul(t)?)?;
        }
        floats.checked_mul(4)
    };
    match bytes() {
        Some(n) if n <= super::MAX_SCRATCH_BYTES => Ok(()),
        n => Err(Error::invalid(
            config_path,
            format!(
                "hidden_size {}, intermediate_size {} and max_position_embeddings {} need {} bytes \
                 of scratch memory per batch, over the limit of {}",
                cfg.hidden_size,
                cfg.intermediate_size,
                cfg.max_position_embeddings,
                n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                super::MAX_SCRATCH_BYTES
            ),
        )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpnet_buckets() {
        // Expected values from a float32 (numpy) transcription of transformers' MPNet
        // relative_position_bucket(relative_position, num_buckets=32, max_distance=128).
        let cases = [
            (0, 0),
            (1, 17),
            (-1, 1),
            (7, 23),
            (-7, 7),
            (8, 24),
            (-8, 8),
            (15, 25),
            (-15, 9),
            (16, 26),
            (-16, 10),
            (31, 27),
            (32, 28),
            (-32, 12),
            (63, 29),
            (64, 30),
            (-64, 14),
            (100, 31),
            (127, 31),
            (-128, 15),
            (129, 31),
        ];
        for (rel, want) in cases {
            assert_eq!(relative_bucket(rel, 32), want, "relative position {rel}");
        }
    }
}
