//! sentence-transformers' `Dense` module (`2_Dense/`): `y = act(W·x + b)` on the pooled vector.

use std::path::Path;

use crate::error::{Error, Result};
use crate::load::config::DenseConfig;
use crate::ops::{Activation, CpuLevel, Linear, Weight};
use crate::weights::{Mat, SafeTensors};

/// A loaded Dense module. Its weights are small, so they are copied out of the file.
#[derive(Debug)]
pub(crate) struct Dense {
    linear: Linear<'static>,
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
        let weight = Weight::Stored(
            match weights.mat("linear.weight", cfg.out_features, cfg.in_features)? {
                Mat::F32(w) => Mat::F32(w.into_owned().into()),
                Mat::F16(w) => Mat::F16(w.into_owned().into()),
                Mat::BF16(w) => Mat::BF16(w.into_owned().into()),
            },
        );
        let bias = if cfg.bias {
            Some(
                weights
                    .vector("linear.bias", cfg.out_features)?
                    .into_owned()
                    .into(),
            )
        } else {
            None
        };
        Ok(Dense {
            linear: Linear {
                weight,
                bias,
                in_dim: cfg.in_features,
                out_dim: cfg.out_features,
            },
            act,
        })
    }

    pub(crate) fn in_dim(&self) -> usize {
        self.linear.in_dim
    }

    pub(crate) fn out_dim(&self) -> usize {
        self.linear.out_dim
    }

    /// `x` holds `n` vectors of `in_dim`; the result (`n × out_dim`) goes to `y`.
    pub(crate) fn forward(
        &self,
        x: &[f32],
        y: &mut Vec<f32>,
        n: usize,
        wbuf: &mut Vec<f32>,
        cpu: CpuLevel,
    ) {
        y.clear();
        y.resize(n * self.linear.out_dim, 0.0);
        self.linear.forward(x, y, n, wbuf, None, cpu);
        self.act.apply(y, cpu);
    }
}
