//! Model2Vec distillation in Rust: a transformer → a static model, following Python model2vec 0.10's
//! `distill()` with its defaults:
//!
//! 1. vocabulary = the tokenizer's tokens in id order, minus `[unusedN]` and minus the special added
//!    tokens other than the unknown and padding tokens;
//! 2. each token is run as `[CLS] token [SEP]` through the encoder and its last hidden states are
//!    mean-pooled (all three positions);
//! 3. PCA to `dims` components: centered, covariance `XᵀX / (n − 1)`, symmetric eigendecomposition
//!    (nalgebra), components in decreasing variance, each signed so its largest-magnitude score is
//!    positive;
//! 4. SIF weighting: row `i` × `c / (c + p_i)`, Zipf `p_i ∝ 1 / (i + 2)` by new token id;
//! 5. saved as float16 in model2vec's layout (`model.safetensors` `embeddings`, `tokenizer.json` without
//!    post-processor and with the new ids, `config.json`, `modules.json`), normalize = true.

use std::path::Path;

use half::f16;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::pooling::Pooling;
use crate::{EmbedOptions, Embedder, ModelKind};

/// Settings of [`distill`]; `Default` gives model2vec's defaults.
#[derive(Debug, Clone)]
pub struct DistillOptions {
    /// PCA components to keep (model2vec `pca_dims`, default 256). Capped at the hidden size.
    pub dims: usize,
    /// SIF coefficient (default 1e-4).
    pub sif_coefficient: f64,
    /// Worker threads for the encoder (0 = all cores).
    pub threads: usize,
}

impl Default for DistillOptions {
    fn default() -> Self {
        DistillOptions {
            dims: 256,
            sif_coefficient: 1e-4,
            threads: 0,
        }
    }
}

/// Where [`distill`] is, for progress reports.
#[derive(Debug, Clone, Copy)]
pub enum DistillStage {
    /// `done` of `total` vocabulary tokens through the encoder.
    Encoding {
        /// Tokens encoded so far.
        done: usize,
        /// Tokens to encode.
        total: usize,
    },
    /// Principal component analysis.
    Pca,
}

/// A distilled static model, ready to [`save`](StaticModelFiles::save).
#[derive(Debug)]
pub struct StaticModelFiles {
    /// `[tokens, dim]` row-major, already SIF-weighted.
    pub embeddings: Vec<f32>,
    /// Width of each row.
    pub dim: usize,
    /// tokenizer.json of the static model.
    pub tokenizer: Value,
    /// config.json of the static model.
    pub config: Value,
}

fn is_unused(token: &str) -> bool {
    token
        .strip_prefix("[unused")
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Distills `model` (a transformer) into a static model. `progress` is called as work advances.
pub fn distill(
    model: &Embedder,
    opts: &DistillOptions,
    mut progress: impl FnMut(DistillStage),
) -> Result<StaticModelFiles> {
    if !(opts.sif_coefficient > 0.0 && opts.sif_coefficient < 1.0) {
        return Err(Error::InvalidOption(
            "sif coefficient must be in (0, 1)".into(),
        ));
    }
    if opts.dims == 0 {
        return Err(Error::InvalidOption("dims must be at least 1".into()));
    }
    if model.kind() != ModelKind::Transformer {
        return Err(Error::Unsupported {
            what: "distillation source",
            name: model.info().architecture.clone(),
        });
    }
    let width = model.info().hidden_size;
    if opts.dims > width {
        return Err(Error::InvalidOption(format!(
            "dims {} is more than the model's {width} dimensions",
            opts.dims
        )));
    }
    let (bytes, path) = model.tokenizer_json()?;
    let Some(bytes) = bytes else {
        return Err(Error::invalid(
            path,
            "missing: distillation needs the model's tokenizer.json",
        ));
    };
    let mut tok: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(&path, format!("not valid JSON: {e}")))?;
    let Some(vocab) = tok.pointer("/model/vocab").and_then(Value::as_object) else {
        return Err(Error::Unsupported {
            what: "tokenizer for distillation (needs a vocab map)",
            name: path.display().to_string(),
        });
    };
    let unk = tok
        .pointer("/model/unk_token")
        .and_then(Value::as_str)
        .unwrap_or("[UNK]")
        .to_string();
    let pad = tok
        .pointer("/padding/pad_token")
        .and_then(Value::as_str)
        .unwrap_or("[PAD]")
        .to_string();
    let dropped_specials: Vec<String> = tok["added_tokens"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter(|t| t["special"] == true)
        .filter_map(|t| t["content"].as_str())
        .filter(|c| *c != unk && *c != pad)
        .map(str::to_string)
        .collect();

    // 1. The new vocabulary, in original id order.
    let mut tokens: Vec<(&str, u32)> = vocab
        .iter()
        .filter_map(|(t, id)| id.as_u64().map(|id| (t.as_str(), id as u32)))
        .filter(|(t, _)| !is_unused(t) && !dropped_specials.iter().any(|d| d == t))
        .collect();
    tokens.sort_by_key(|&(_, id)| id);
    if tokens.is_empty() {
        return Err(Error::invalid(&path, "no tokens left to distill"));
    }

    // 2. `[CLS] token [SEP]` through the encoder, mean of the token states.
    let (prefix, suffix) = model.tokenizer().special_ids()?;
    let seqs: Vec<Vec<u32>> = tokens
        .iter()
        .map(|&(_, id)| {
            prefix
                .iter()
                .copied()
                .chain([id])
                .chain(suffix.iter().copied())
                .collect()
        })
        .collect();
    // Long batches keep the matrix products efficient (3 tokens a sequence).
    let enc_opts = EmbedOptions {
        batch_size: 340,
        threads: opts.threads,
        ..Default::default()
    };
    let hidden = model.info().hidden_size;
    let total = seqs.len();
    let mut x = Vec::with_capacity(total * hidden); // [n, hidden]
    let mean = Pooling::mean();
    progress(DistillStage::Encoding { done: 0, total });
    for chunk in seqs.chunks(2048) {
        let states = model.token_embeddings(&model.tokenize_ids(chunk, false, &enc_opts)?)?;
        let start = x.len();
        for i in 0..states.len() {
            mean.pool(states.get(i), hidden, &mut x);
        }
        x[start..]
            .iter_mut()
            .filter(|v| !v.is_finite())
            .for_each(|v| *v = 0.0);
        progress(DistillStage::Encoding {
            done: x.len() / hidden,
            total,
        });
    }

    // 3. PCA, 4. SIF weights.
    progress(DistillStage::Pca);
    let (mut emb, dim) = pca(&x, total, hidden, opts.dims);
    let inv: Vec<f64> = (0..total).map(|i| 1.0 / (i as f64 + 2.0)).collect();
    let sum: f64 = inv.iter().sum();
    for (row, p) in emb.chunks_exact_mut(dim).zip(&inv) {
        let w = opts.sif_coefficient / (opts.sif_coefficient + p / sum);
        row.iter_mut().for_each(|v| *v = (*v as f64 * w) as f32);
    }

    // 5. The static model's tokenizer: new ids, no post-processor, no padding/truncation.
    let new_vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (t.to_string(), json!(i)))
        .collect();
    let new_id = |t: &str| new_vocab.get(t).cloned();
    let added: Vec<Value> = tok["added_tokens"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|t| {
            let id = new_id(t["content"].as_str()?)?;
            let mut t = t.clone();
            t["id"] = id;
            Some(t)
        })
        .collect();
    tok["model"]["vocab"] = Value::Object(new_vocab);
    tok["added_tokens"] = Value::Array(added);
    tok["post_processor"] = Value::Null;
    tok["truncation"] = Value::Null;
    tok["padding"] = Value::Null;
    let config = json!({
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": model.info().name,
        "apply_pca": opts.dims,
        "sif_coefficient": opts.sif_coefficient,
        "hidden_dim": dim,
        "seq_length": 1_000_000,
        "normalize": true,
        "pooling": "mean",
        "max_length": 512,
        "embedding_dtype": "float16",
    });
    Ok(StaticModelFiles {
        embeddings: emb,
        dim,
        tokenizer: tok,
        config,
    })
}

/// Projects `x` (`[n, d]`) on its top `k` principal components (model2vec's `_pca_fit_transform`).
/// Returns the scores (`[n, k']`) and `k'` (k capped at d; no PCA when k ≥ n, as model2vec).
fn pca(x: &[f32], n: usize, d: usize, k: usize) -> (Vec<f32>, usize) {
    if k >= n {
        return (x.to_vec(), d);
    }
    let k = k.min(d);
    let mut mean = vec![0f64; d];
    for row in x.chunks_exact(d) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let xc: Vec<f64> = x
        .chunks_exact(d)
        .flat_map(|r| r.iter().zip(&mean).map(|(&v, m)| v as f64 - m))
        .collect();
    // cov = xcᵀ · xc / (n − 1), [d, d]
    let mut cov = vec![0f64; d * d];
    // SAFETY: slices cover exactly the strided ranges (n × d, d × d).
    unsafe {
        matrixmultiply::dgemm(
            d,
            n,
            d,
            1.0 / (n as f64 - 1.0),
            xc.as_ptr(),
            1,
            d as isize,
            xc.as_ptr(),
            d as isize,
            1,
            0.0,
            cov.as_mut_ptr(),
            d as isize,
            1,
        );
    }
    let eig = nalgebra::SymmetricEigen::new(nalgebra::DMatrix::from_row_slice(d, d, &cov));
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    // components [d, k], column j = eigenvector of the j-th largest eigenvalue
    let mut comp = vec![0f64; d * k];
    for (j, &e) in order.iter().take(k).enumerate() {
        for i in 0..d {
            comp[i * k + j] = eig.eigenvectors[(i, e)];
        }
    }
    let mut scores = vec![0f64; n * k];
    // SAFETY: as above ([n, d] · [d, k] → [n, k]).
    unsafe {
        matrixmultiply::dgemm(
            n,
            d,
            k,
            1.0,
            xc.as_ptr(),
            d as isize,
            1,
            comp.as_ptr(),
            k as isize,
            1,
            0.0,
            scores.as_mut_ptr(),
            k as isize,
            1,
        );
    }
    // Deterministic signs: the largest-magnitude score of each component is positive.
    for j in 0..k {
        let (mut best, mut sign) = (-1.0, 1.0);
        for i in 0..n {
            let v = scores[i * k + j];
            if v.abs() > best {
                best = v.abs();
                sign = if v < 0.0 { -1.0 } else { 1.0 };
            }
        }
        for i in 0..n {
            scores[i * k + j] *= sign;
        }
    }
    (scores.into_iter().map(|v| v as f32).collect(), k)
}

/// Errors when `dir` exists and is not empty (check before distilling, not only when saving).
pub fn check_output(dir: &Path) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .next()
            .is_some()
    {
        return Err(Error::InvalidOption(format!(
            "{} exists and is not empty",
            dir.display()
        )));
    }
    Ok(())
}

impl StaticModelFiles {
    /// Writes the model to `dir` (created; must not exist or be empty). Files are written to a
    /// temporary sibling directory first and renamed into place, so a failure leaves nothing behind.
    pub fn save(&self, dir: &Path) -> Result<()> {
        check_output(dir)?;
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let name = dir
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy().into_owned());
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let result = self.write_files(&tmp).and_then(|()| {
            if dir.exists() {
                std::fs::remove_dir(dir).map_err(|e| Error::io(dir, e))?;
            }
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    fn write_files(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for (name, bytes) in self.to_files()? {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    }

    /// The model's files as `(name, bytes)`: what [`save`](Self::save) writes, and what
    /// [`Embedder::from_files`] loads without touching the disk.
    pub fn to_files(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let invalid = |file: &str, e: String| Error::invalid(Path::new(file), e);
        let rows = self.embeddings.len() / self.dim;
        let data: Vec<u8> = self
            .embeddings
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        let view = safetensors::tensor::TensorView::new(
            safetensors::Dtype::F16,
            vec![rows, self.dim],
            &data,
        )
        .map_err(|e| invalid("model.safetensors", e.to_string()))?;
        let weights = safetensors::serialize([("embeddings", view)], None)
            .map_err(|e| invalid("model.safetensors", e.to_string()))?;
        let modules = json!([
            {"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"},
            {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]);
        let mut files = vec![("model.safetensors", weights)];
        for (file, value, pretty) in [
            ("tokenizer.json", &self.tokenizer, false),
            ("config.json", &self.config, true),
            ("modules.json", &modules, true),
        ] {
            let text = if pretty {
                serde_json::to_vec_pretty(value)
            } else {
                serde_json::to_vec(value)
            }
            .map_err(|e| invalid(file, e.to_string()))?;
            files.push((file, text));
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_pattern() {
        assert!(is_unused("[unused0]") && is_unused("[unused993]"));
        assert!(!is_unused("[unused]") && !is_unused("[unusedx]") && !is_unused("unused1"));
    }

    #[test]
    fn pca_recovers_a_dominant_direction() {
        // Points along (1, 1, 0) with small noise on the other axes: the first component is ±(1,1,0)/√2
        // and its largest score is positive.
        let n = 200;
        let x: Vec<f32> = (0..n)
            .flat_map(|i| {
                let t = i as f32 - 100.0;
                [
                    t,
                    t + 0.01 * ((i * 7 % 5) as f32),
                    0.01 * ((i * 3 % 7) as f32),
                ]
            })
            .collect();
        let (s, k) = pca(&x, n, 3, 2);
        assert_eq!(k, 2);
        let first: Vec<f32> = (0..n).map(|i| s[i * 2]).collect();
        let max = first.iter().cloned().fold(f32::MIN, f32::max);
        let min = first.iter().cloned().fold(f32::MAX, f32::min);
        assert!(max >= -min, "largest-magnitude score is positive");
        // t runs over -100..=99 (mean -0.5): the extreme score is the centered -99.5, flipped positive.
        assert!((max - 99.5 * 2f32.sqrt()).abs() < 0.05, "{max}");
    }
}
