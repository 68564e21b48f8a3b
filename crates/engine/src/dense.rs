//! sentence-transformers' `Dense` module (`2_Dense/`): `y = act(W·x + b)` on the pooled vector.

use std::path::Path;

use crate::error::{Error, Result};
use crate::load::config::DenseConfig;
use crate::ops::packed::{self, PANEL};
use crate::ops::{Activation, CpuLevel, Floats, Panels};
use crate::weights::SafeTensors;

/// A loaded Dense module. Its weights are small, so they are copied out of the file, as f32
/// panels: the panel kernel gives each vector the same bits however many are in the batch.
#[derive(Debug)]
pub(crate) struct Dense {
    panels: Vec<f32>,       // [⌈out / 32⌉, in, 32]
    bias: Option<Vec<f32>>, // [out]
    in_dim: usize,
    out_dim: usize,
    act: Activation,
}

impl Dense {
    /// Loads `config.json` + `model.safetensors` (tensors `linear.weight`, `linear.bias`).
    pub(crate) fn load(
        cfg: &DenseConfig,
        weights: &SafeTensors,
        config_path: &Path,
    ) -> Result<Self> {
        let act =
            Activation::from_torch(&cfg.activation_function).ok_or_else(|| Error::Unsupported {
                what: "Dense activation_function",
                name: cfg.activation_function.clone(),
            })?;
        if cfg.in_features == 0 || cfg.out_features == 0 {
            return Err(Error::invalid(
                config_path,
                "in_features and out_features must be positive",
            ));
        }
        let (n, k) = (cfg.out_features, cfg.in_features);
        let stored = weights.mat("linear.weight", n, k)?;
        let mut w: Vec<f32> = weights.buffer("linear.weight", n * k)?; // [out, in]
        for r in 0..n {
            stored.row_into(r, k, &mut w[r * k..(r + 1) * k]);
        }
        let mut panels: Vec<f32> =
            weights.buffer("linear.weight", packed::packed_len(n, k, PANEL))?;
        packed::pack(&w, n, k, PANEL, &mut panels);
        let bias = if cfg.bias {
            Some(weights.vector("linear.bias", n)?.into_owned())
        } else {
            None
        };
        Ok(Dense {
            panels,
            bias,
            in_dim: k,
            out_dim: n,
            act,
        })
    }

    pub(crate) fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub(crate) fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// `x` holds `n` vectors of `in_dim`; the result (`n × out_dim`) goes to `y`.
    pub(crate) fn forward(&self, x: &[f32], y: &mut Vec<f32>, n: usize, cpu: CpuLevel) {
        let out = self.out_dim;
        y.clear();
        match &self.bias {
            Some(b) => (0..n).for_each(|_| y.extend_from_slice(b)),
            None => y.resize(n * out, 0.0),
        }
        let w = Panels {
            data: Floats::F32(&self.panels),
            n: out,
            k: self.in_dim,
            nr: PANEL,
        };
        packed::matmul(x, w, y, (n, out), cpu);
        self.act.apply(y, cpu);
    }
}
