//! Pooling: token states of one sequence → one vector, as sentence-transformers' `Pooling` module does.
//! Sequences arrive unpadded, so "mask-aware" is automatic: only real tokens are ever seen.

use crate::error::{Error, Result};
use crate::load::config::PoolingConfig;

/// One pooling strategy. Several may be active; their outputs are concatenated in
/// sentence-transformers' order (cls, max, mean, mean_sqrt_len, weightedmean, lasttoken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// The first token (`[CLS]`).
    Cls,
    /// Element-wise maximum over tokens.
    Max,
    /// Mean over tokens.
    Mean,
    /// Sum over tokens divided by √(number of tokens).
    MeanSqrtLen,
    /// Mean weighted by position (1, 2, …, n).
    WeightedMean,
    /// The last token.
    LastToken,
}

impl PoolingMode {
    /// The name sentence-transformers uses.
    pub fn name(self) -> &'static str {
        match self {
            PoolingMode::Cls => "cls",
            PoolingMode::Max => "max",
            PoolingMode::Mean => "mean",
            PoolingMode::MeanSqrtLen => "mean_sqrt_len_tokens",
            PoolingMode::WeightedMean => "weightedmean",
            PoolingMode::LastToken => "lasttoken",
        }
    }
}

/// The configured pooling (possibly several modes concatenated).
#[derive(Debug, Clone)]
pub struct Pooling {
    /// Active modes in output order.
    pub modes: Vec<PoolingMode>,
    /// Whether prompt tokens take part (sentence-transformers' `include_prompt`, default true).
    pub include_prompt: bool,
}

impl Pooling {
    /// From `1_Pooling/config.json`; `path` names the file in errors.
    pub(crate) fn from_config(cfg: &PoolingConfig, path: &std::path::Path) -> Result<Self> {
        let mut modes = Vec::new();
        if let Some(m) = &cfg.pooling_mode {
            modes.push(match m.as_str() {
                "cls" => PoolingMode::Cls,
                "max" => PoolingMode::Max,
                "mean" => PoolingMode::Mean,
                "mean_sqrt_len_tokens" => PoolingMode::MeanSqrtLen,
                "weightedmean" => PoolingMode::WeightedMean,
                "lasttoken" => PoolingMode::LastToken,
                other => {
                    return Err(Error::Unsupported {
                        what: "pooling_mode",
                        name: other.to_string(),
                    });
                }
            });
        } else {
            let flags = [
                (cfg.pooling_mode_cls_token, PoolingMode::Cls),
                (cfg.pooling_mode_max_tokens, PoolingMode::Max),
                (cfg.pooling_mode_mean_tokens, PoolingMode::Mean),
                (
                    cfg.pooling_mode_mean_sqrt_len_tokens,
                    PoolingMode::MeanSqrtLen,
                ),
                (
                    cfg.pooling_mode_weightedmean_tokens,
                    PoolingMode::WeightedMean,
                ),
                (cfg.pooling_mode_lasttoken, PoolingMode::LastToken),
            ];
            modes.extend(flags.iter().filter(|f| f.0).map(|f| f.1));
        }
        if modes.is_empty() {
            return Err(Error::invalid(path, "no pooling mode is enabled"));
        }
        Ok(Pooling {
            modes,
            include_prompt: cfg.include_prompt.unwrap_or(true),
        })
    }

    /// Mean pooling only (Model2Vec and the default when a model has no Pooling module).
    pub fn mean() -> Self {
        Pooling {
            modes: vec![PoolingMode::Mean],
            include_prompt: true,
        }
    }

    /// Output width for token states of width `hidden`.
    pub fn output_dim(&self, hidden: usize) -> usize {
        self.modes.len() * hidden
    }

    /// Pools `states` (`[len, hidden]`) and appends the result to `out`. No states (a text of no
    /// tokens, from a tokenizer that adds no special tokens) pool to zeros in every mode — what
    /// sentence-transformers' mean pooling gives such a text (its sum divided by the clamped count).
    ///
    /// ```
    /// let mut out = Vec::new();
    /// sembed::pooling::Pooling::mean().pool(&[1.0, 2.0, 3.0, 4.0], 2, &mut out);
    /// assert_eq!(out, [2.0, 3.0]);
    /// ```
    pub fn pool(&self, states: &[f32], hidden: usize, out: &mut Vec<f32>) {
        if states.is_empty() {
            out.resize(out.len() + hidden * self.modes.len(), 0.0);
            return;
        }
        let len = states.len() / hidden;
        let rows = || states.chunks_exact(hidden);
        for mode in &self.modes {
            let at = out.len();
            match mode {
                PoolingMode::Cls => out.extend_from_slice(&states[..hidden]),
                PoolingMode::LastToken => out.extend_from_slice(&states[(len - 1) * hidden..]),
                PoolingMode::Max => {
                    out.extend_from_slice(&states[..hidden]);
                    for row in rows().skip(1) {
                        out[at..]
                            .iter_mut()
                            .zip(row)
                            .for_each(|(o, &x)| *o = o.max(x));
                    }
                }
                PoolingMode::Mean | PoolingMode::MeanSqrtLen | PoolingMode::WeightedMean => {
                    out.resize(at + hidden, 0.0);
                    let mut total = 0f32;
                    for (i, row) in rows().enumerate() {
                        let w = if *mode == PoolingMode::WeightedMean {
                            (i + 1) as f32
                        } else {
                            1.0
                        };
                        total += w;
                        out[at..]
                            .iter_mut()
                            .zip(row)
                            .for_each(|(o, &x)| *o += w * x);
                    }
                    // sentence-transformers clamps the divisor at 1e-9.
                    let div = match mode {
                        PoolingMode::MeanSqrtLen => total.max(1e-9).sqrt(),
                        _ => total.max(1e-9),
                    };
                    out[at..].iter_mut().for_each(|o| *o /= div);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No tokens pool to zeros in every mode (found by fuzzing: CLS pooling indexed row 0).
    #[test]
    fn no_tokens_pool_to_zeros() {
        let modes = [
            PoolingMode::Cls,
            PoolingMode::Max,
            PoolingMode::Mean,
            PoolingMode::MeanSqrtLen,
            PoolingMode::WeightedMean,
            PoolingMode::LastToken,
        ];
        let p = Pooling {
            modes: modes.to_vec(),
            include_prompt: true,
        };
        let mut out = vec![7.0];
        p.pool(&[], 3, &mut out);
        assert_eq!(out.len(), 1 + 3 * modes.len());
        assert_eq!(out[0], 7.0);
        assert!(out[1..].iter().all(|&v| v == 0.0));
    }

    fn pool(modes: &[PoolingMode], states: &[f32], h: usize) -> Vec<f32> {
        let mut out = Vec::new();
        Pooling {
            modes: modes.to_vec(),
            include_prompt: true,
        }
        .pool(states, h, &mut out);
        out
    }

    const STATES: [f32; 6] = [1.0, -2.0, 3.0, 0.0, 5.0, 4.0]; // 3 tokens × 2

    #[test]
    fn each_mode() {
        assert_eq!(pool(&[PoolingMode::Cls], &STATES, 2), [1.0, -2.0]);
        assert_eq!(pool(&[PoolingMode::LastToken], &STATES, 2), [5.0, 4.0]);
        assert_eq!(pool(&[PoolingMode::Max], &STATES, 2), [5.0, 4.0]);
        assert_eq!(pool(&[PoolingMode::Mean], &STATES, 2), [3.0, 2.0 / 3.0]);
        let s = 3f32.sqrt();
        assert_eq!(
            pool(&[PoolingMode::MeanSqrtLen], &STATES, 2),
            [9.0 / s, 2.0 / s]
        );
        // weights 1, 2, 3: (1 + 6 + 15) / 6, (-2 + 0 + 12) / 6
        assert_eq!(
            pool(&[PoolingMode::WeightedMean], &STATES, 2),
            [22.0 / 6.0, 10.0 / 6.0]
        );
    }

    #[test]
    fn modes_concatenate_in_order() {
        assert_eq!(
            pool(&[PoolingMode::Cls, PoolingMode::Max], &STATES, 2),
            [1.0, -2.0, 5.0, 4.0]
        );
    }

    #[test]
    fn classic_flags_parse() {
        let cfg = PoolingConfig {
            pooling_mode_mean_tokens: true,
            ..Default::default()
        };
        let p = Pooling::from_config(&cfg, std::path::Path::new("x")).unwrap();
        assert_eq!(p.modes, [PoolingMode::Mean]);
        let none = Pooling::from_config(&PoolingConfig::default(), std::path::Path::new("x"));
        assert!(none.is_err());
    }
}
