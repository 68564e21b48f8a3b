//! After the model's modules: sentence-transformers' `encode()` order — the model's Normalize
//! module (unless switched off), then `truncate_dim`, then `normalize_embeddings`.

use crate::error::{Error, Result};
use crate::normalize::l2_normalize;
use crate::options::EmbedOptions;

/// The post-processing one call asked for, resolved against the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Post {
    /// The model's own normalization runs (its Normalize module, or model2vec's `normalize`).
    pub module_normalize: bool,
    pub truncate_dim: Option<usize>,
    /// L2-normalize again after the cut (`normalize: Some(true)`).
    pub force_normalize: bool,
}

impl Post {
    /// `dim`: the model's output width; `model_normalizes`: whether the model ends by normalizing.
    pub(crate) fn new(opts: &EmbedOptions, model_normalizes: bool, dim: usize) -> Result<Self> {
        if let Some(t) = opts.truncate_dim
            && (t == 0 || t > dim)
        {
            return Err(Error::InvalidOption(format!(
                "truncate dim {t} is outside 1..={dim}"
            )));
        }
        Ok(Post {
            module_normalize: model_normalizes && opts.normalize != Some(false),
            truncate_dim: opts.truncate_dim,
            force_normalize: opts.normalize == Some(true),
        })
    }

    /// Width of the vectors after it.
    pub(crate) fn out_dim(&self, dim: usize) -> usize {
        self.truncate_dim.unwrap_or(dim)
    }

    /// Applies to `x` (`[n, dim]`), returning `[n, out_dim]`; `normalize` is the model's own
    /// normalization (L2 for transformers, model2vec's for static models), `None` when the caller
    /// already applied it row by row.
    pub(crate) fn apply(
        &self,
        mut x: Vec<f32>,
        dim: usize,
        normalize: Option<fn(&mut [f32])>,
    ) -> Vec<f32> {
        if let (true, Some(normalize)) = (self.module_normalize, normalize) {
            x.chunks_exact_mut(dim).for_each(normalize);
        }
        if let Some(t) = self.truncate_dim.filter(|&t| t < dim) {
            x = x
                .chunks_exact(dim)
                .flat_map(|r| r[..t].iter().copied())
                .collect();
        }
        if self.force_normalize {
            x.chunks_exact_mut(self.out_dim(dim)).for_each(l2_normalize);
        }
        x
    }
}
