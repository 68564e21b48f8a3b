//! Model2Vec static models: token ids → rows of an embedding table → (weighted) mean → optional
//! normalization, exactly as Python model2vec 0.10 `StaticModel.encode()` does it:
//!
//! 1. cut the text to `max_length × median_token_length` characters (the median is over the
//!    vocabulary's token strings in id order, `int(np.median(...))`);
//! 2. tokenize without special tokens, truncated to `max_length` tokens;
//! 3. drop the unknown token's id;
//! 4. mean of `table[mapping[id]] × weights[id]` (mapping and weights only when the file has them;
//!    an int8 table is used as stored, without a scale); an empty id list gives zeros;
//! 5. if `normalize`: `x / (‖x‖ + 1e-32)`.
//!
//! Both layouts load: model2vec's (`model.safetensors` tensor `embeddings`, `config.json`) and
//! sentence-transformers' (`0_StaticEmbedding/model.safetensors` tensor `embedding.weight`,
//! `config_sentence_transformers.json`).

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::weights::{Mat, SafeTensors};

/// The embedding table in its stored type.
#[derive(Debug)]
pub(crate) enum Table<'a> {
    Float(Mat<'a>),
    I8(Cow<'a, [i8]>),
}

/// A loaded static model (borrowing its table from the mapped file).
#[derive(Debug)]
pub(crate) struct StaticModel<'a> {
    table: Table<'a>, // [rows, dim]
    pub dim: usize,
    weights: Option<Vec<f64>>,   // [vocab] per-token weight
    mapping: Option<Vec<usize>>, // [vocab] token id → table row
}

impl<'a> StaticModel<'a> {
    /// Loads the table named `name` (plus optional `weights` and `mapping`) from `w`; `vocab` is the
    /// tokenizer's vocabulary size, against which every index is checked now rather than at lookup.
    pub(crate) fn load(w: &'a SafeTensors, name: &str, vocab: usize) -> Result<Self> {
        let err = |reason: String| Error::Tensor {
            path: w.label().to_path_buf(),
            tensor: name.to_string(),
            reason,
        };
        let (dtype, shape) = w.shape(name).ok_or_else(|| err("missing".into()))?;
        let [rows, dim] = *shape else {
            return Err(err(format!("shape {shape:?}, expected [rows, dim]")));
        };
        if rows == 0 || dim == 0 {
            return Err(err(format!("shape {shape:?} is empty")));
        }
        let table = if dtype == safetensors::Dtype::I8 {
            Table::I8(w.i8_mat(name, rows, dim)?)
        } else {
            Table::Float(w.mat(name, rows, dim)?)
        };
        let mapping = match w.shape("mapping") {
            Some((_, s)) => {
                let len = s.first().copied().unwrap_or(0);
                let m = w.indices("mapping", len)?;
                if let Some(bad) = m.iter().find(|&&r| r >= rows) {
                    return Err(err(format!("mapping points at row {bad} of {rows}")));
                }
                Some(m)
            }
            None => None,
        };
        let weights = match w.shape("weights") {
            Some((_, s)) => Some(w.vector_f64("weights", s.first().copied().unwrap_or(0))?),
            None => None,
        };
        // Without a mapping, token ids index the table directly.
        let addressable = mapping.as_ref().map_or(rows, Vec::len);
        if addressable < vocab {
            return Err(err(format!(
                "{addressable} rows for a vocabulary of {vocab} tokens"
            )));
        }
        if let Some(wt) = &weights
            && wt.len() < vocab
        {
            return Err(err(format!(
                "{} weights for a vocabulary of {vocab} tokens",
                wt.len()
            )));
        }
        Ok(StaticModel {
            table,
            dim,
            weights,
            mapping,
        })
    }

    pub(crate) fn dtype_name(&self) -> &'static str {
        match &self.table {
            Table::Float(m) => m.dtype_name(),
            Table::I8(_) => "i8",
        }
    }

    /// Starts loading the table rows of `ids` into cache (see `embed_ids`; no effect on results).
    pub(crate) fn prefetch_rows(&self, ids: &[u32]) {
        let dim = self.dim;
        for &id in ids {
            let r = self
                .mapping
                .as_ref()
                .map_or(Some(id as usize), |m| m.get(id as usize).copied());
            let Some(r) = r else { continue };
            match &self.table {
                Table::Float(Mat::F16(t)) => {
                    if let Some(row) = t.get(r * dim..(r + 1) * dim) {
                        crate::ops::prefetch(row);
                    }
                }
                Table::Float(Mat::F32(t)) => {
                    if let Some(row) = t.get(r * dim..(r + 1) * dim) {
                        crate::ops::prefetch(row);
                    }
                }
                _ => {}
            }
        }
    }

    /// Mean of the (mapped, weighted) rows of `ids` into `out` (`dim` wide); zeros when `ids` is
    /// empty. `row` is scratch for one converted table row.
    pub(crate) fn embed_ids(
        &self,
        ids: &[u32],
        out: &mut [f32],
        row: &mut Vec<f32>,
        cpu: crate::ops::CpuLevel,
    ) {
        out.fill(0.0);
        if ids.is_empty() {
            return;
        }
        let dim = self.dim;
        row.resize(dim, 0.0);
        let row_of = |id: u32| {
            self.mapping
                .as_ref()
                .map_or(id as usize, |m| m[id as usize])
        };
        for &id in ids {
            let id = id as usize;
            let r = row_of(id as u32);
            let w = self.weights.as_ref().map_or(1.0, |w| w[id] as f32);
            let src: &[f32] = match &self.table {
                Table::Float(Mat::F16(t)) => {
                    crate::ops::axpy_f16(out, &t[r * dim..(r + 1) * dim], w, cpu);
                    continue;
                }
                Table::Float(Mat::F32(t)) => &t[r * dim..(r + 1) * dim],
                Table::Float(m) => {
                    m.row_into(r, dim, row);
                    row
                }
                Table::I8(t) => {
                    row.iter_mut()
                        .zip(&t[r * dim..(r + 1) * dim])
                        .for_each(|(o, &v)| *o = v as f32);
                    row
                }
            };
            out.iter_mut().zip(src).for_each(|(o, &v)| *o += w * v);
        }
        let inv = 1.0 / ids.len() as f32;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

/// model2vec's normalization: `x / (‖x‖ + 1e-32)` (zeros stay zeros).
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = crate::normalize::sum_squares(v).sqrt() as f64 + 1e-32;
    let inv = (1.0 / norm) as f32;
    v.iter_mut().for_each(|x| *x *= inv);
}

/// `int(np.median(lengths))` for non-negative integers.
pub(crate) fn median_len(mut lengths: Vec<usize>) -> usize {
    if lengths.is_empty() {
        return 0;
    }
    lengths.sort_unstable();
    let n = lengths.len();
    if n % 2 == 1 {
        lengths[n / 2]
    } else {
        (lengths[n / 2 - 1] + lengths[n / 2]) / 2
    }
}

/// The first `chars` characters of `s` (Python `s[:chars]`).
pub(crate) fn char_prefix(s: &str, chars: usize) -> &str {
    match s.char_indices().nth(chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_like_numpy_int() {
        assert_eq!(median_len(vec![3, 1, 2]), 2);
        assert_eq!(median_len(vec![1, 2, 3, 6]), 2); // int(2.5)
        assert_eq!(median_len(vec![4, 5]), 4);
    }

    #[test]
    fn char_prefix_counts_code_points() {
        assert_eq!(char_prefix("héllo", 2), "hé");
        assert_eq!(char_prefix("ab", 5), "ab");
    }

    #[test]
    fn normalize_keeps_zeros() {
        let mut z = [0.0f32; 3];
        normalize(&mut z);
        assert_eq!(z, [0.0; 3]);
        let mut v = [3.0f32, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-7);
    }
}
