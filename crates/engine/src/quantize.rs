//! Output precision, as sentence-transformers 6.2's `quantize_embeddings`:
//! - `int8` / `uint8`: per dimension, `floor((x − min) / ((max − min) / 255))` clipped to 0..=255 (− 128
//!   for int8), in float32 as numpy computes it; min/max from calibration embeddings, else from the
//!   embeddings being quantized (so the result depends on the batch — pass calibration data for stable
//!   codes; a single embedding without calibration is an error, as in sentence-transformers); a
//!   dimension whose min equals its max has a step of 1;
//! - `binary`: `packbits(x > 0) − 128` as int8; `ubinary`: `packbits(x > 0)` (first dimension in the
//!   most significant bit; rows padded with zero bits to whole bytes).

use crate::embeddings::Embeddings;
use crate::error::{Error, Result};

/// Output precision (`--precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Unchanged.
    Float32,
    /// Scalar quantization to −128..=127.
    Int8,
    /// Scalar quantization to 0..=255.
    Uint8,
    /// Sign bits, packed, shifted to int8.
    Binary,
    /// Sign bits, packed.
    Ubinary,
}

impl Precision {
    /// The name sentence-transformers uses (`float32`, `int8`, ...), e.g. for a fingerprint
    /// stage.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Int8 => "int8",
            Precision::Uint8 => "uint8",
            Precision::Binary => "binary",
            Precision::Ubinary => "ubinary",
        }
    }

    /// Whether each row's codes depend on that row alone (no ranges taken from the batch).
    pub fn is_per_row(self, calibrated: bool) -> bool {
        calibrated || !matches!(self, Precision::Int8 | Precision::Uint8)
    }
}

/// Quantized embeddings: `rows × width` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantized {
    /// Float32 (unchanged).
    F32(Embeddings),
    /// int8 / binary.
    I8 {
        /// Values per row.
        width: usize,
        /// Row-major values.
        data: Vec<i8>,
    },
    /// uint8 / ubinary.
    U8 {
        /// Values per row.
        width: usize,
        /// Row-major values.
        data: Vec<u8>,
    },
}

/// Per-dimension minimum and maximum of calibration embeddings (`[2, dim]` in sentence-transformers).
#[derive(Debug, Clone)]
pub struct Ranges {
    min: Vec<f32>,
    max: Vec<f32>,
}

impl Ranges {
    /// Dimensions covered.
    pub fn dim(&self) -> usize {
        self.min.len()
    }

    /// Ranges of `e`'s columns; `None` when `e` is empty.
    pub fn of(e: &Embeddings) -> Option<Self> {
        let mut rows = e.rows();
        let first = rows.next()?;
        let (mut min, mut max) = (first.to_vec(), first.to_vec());
        for r in rows {
            for ((lo, hi), &v) in min.iter_mut().zip(max.iter_mut()).zip(r) {
                *lo = lo.min(v);
                *hi = hi.max(v);
            }
        }
        Some(Ranges { min, max })
    }
}

/// Quantizes `e` to `precision`; `calibration` supplies the int8/uint8 ranges (else `e`'s own).
///
/// ```
/// use sembed::quantize::{quantize, Precision, Quantized};
/// let e = sembed::Embeddings::new(8, vec![0.5, -1.0, 0.0, 2.0, -0.1, 0.3, 0.0, 1.0]);
/// assert_eq!(quantize(&e, Precision::Ubinary, None).unwrap(), Quantized::U8 { width: 1, data: vec![0b1001_0101] });
/// ```
pub fn quantize(
    e: &Embeddings,
    precision: Precision,
    calibration: Option<&Ranges>,
) -> Result<Quantized> {
    let dim = e.dim();
    let scalar = |offset: f32| -> Result<Vec<f32>> {
        let own;
        let ranges = match calibration {
            Some(r) => r,
            None if e.len() == 1 => {
                return Err(Error::InvalidOption(format!(
                    "cannot compute {} quantization ranges from a single embedding: give \
                     calibration embeddings (as sentence-transformers 6.2 requires)",
                    precision.name()
                )));
            }
            None => {
                own = Ranges::of(e);
                match &own {
                    Some(r) => r,
                    None => return Ok(Vec::new()),
                }
            }
        };
        if ranges.min.len() != dim {
            return Err(Error::InvalidOption(format!(
                "calibration embeddings have {} dimensions, the model {dim}",
                ranges.min.len()
            )));
        }
        // float32 throughout, in numpy's order: floor((x - start) / step), clipped, then - offset.
        let steps: Vec<f32> = ranges
            .min
            .iter()
            .zip(&ranges.max)
            .map(|(lo, hi)| (hi - lo) / 255.0)
            .map(|step| if step == 0.0 { 1.0 } else { step })
            .collect();
        Ok(e.rows()
            .flat_map(|r| {
                r.iter()
                    .zip(&ranges.min)
                    .zip(&steps)
                    .map(move |((&x, &start), &step)| {
                        ((x - start) / step).floor().clamp(0.0, 255.0) - offset
                    })
            })
            .collect())
    };
    let pack = || -> Vec<u8> {
        let width = dim.div_ceil(8);
        let mut out = vec![0u8; e.len() * width];
        for (r, row) in e.rows().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                if x > 0.0 {
                    out[r * width + j / 8] |= 0x80 >> (j % 8);
                }
            }
        }
        out
    };
    Ok(match precision {
        Precision::Float32 => Quantized::F32(e.clone()),
        // Whole numbers within range: `as` is exact.
        Precision::Int8 => Quantized::I8 {
            width: dim,
            data: scalar(128.0)?.into_iter().map(|v| v as i8).collect(),
        },
        Precision::Uint8 => Quantized::U8 {
            width: dim,
            data: scalar(0.0)?.into_iter().map(|v| v as u8).collect(),
        },
        Precision::Binary => Quantized::I8 {
            width: dim.div_ceil(8),
            data: pack()
                .into_iter()
                .map(|b| b.wrapping_sub(128) as i8)
                .collect(),
        },
        Precision::Ubinary => Quantized::U8 {
            width: dim.div_ceil(8),
            data: pack(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e() -> Embeddings {
        // 3 rows × 2 dims: column 0 spans -1..1, column 1 is constant.
        Embeddings::new(2, vec![-1.0, 0.5, 0.0, 0.5, 1.0, 0.5])
    }

    #[test]
    fn int8_and_uint8_use_column_ranges() {
        // Expected values from numpy as sentence-transformers 6.2 computes them (float32, floor,
        // clip): the top of the range is 254.99998 in float32, hence 254 / 126; the constant column
        // has a step of 1, so 0 / -128.
        assert_eq!(
            quantize(&e(), Precision::Uint8, None).unwrap(),
            Quantized::U8 {
                width: 2,
                data: vec![0, 0, 127, 0, 254, 0]
            }
        );
        assert_eq!(
            quantize(&e(), Precision::Int8, None).unwrap(),
            Quantized::I8 {
                width: 2,
                data: vec![-128, -128, -1, -128, 126, -128]
            }
        );
    }

    #[test]
    fn one_embedding_needs_calibration() {
        let one = Embeddings::new(2, vec![0.5, -0.5]);
        let err = quantize(&one, Precision::Int8, None).unwrap_err();
        assert!(err.to_string().contains("single embedding"), "{err}");
        let cal = Ranges::of(&e()).unwrap();
        assert!(quantize(&one, Precision::Uint8, Some(&cal)).is_ok());
        // Sign bits need no ranges.
        assert!(quantize(&one, Precision::Binary, None).is_ok());
    }

    #[test]
    fn calibration_ranges_apply() {
        let cal = Ranges::of(&Embeddings::new(2, vec![-2.0, 0.0, 2.0, 1.0])).unwrap();
        let q = quantize(&e(), Precision::Uint8, Some(&cal)).unwrap();
        // column 0: (x + 2) / (4/255): -1 -> 63.75 -> 63, 0 -> 127.5 -> 127, 1 -> 191.25 -> 191;
        // column 1 (0..1): 0.5 -> 127.5 -> 127.
        assert_eq!(
            q,
            Quantized::U8 {
                width: 2,
                data: vec![63, 127, 127, 127, 191, 127]
            }
        );
        // Outside the calibration range: clipped to 0 and 255.
        let narrow = Ranges::of(&Embeddings::new(2, vec![-0.5, 0.0, 0.5, 0.25])).unwrap();
        let Quantized::U8 { data, .. } = quantize(&e(), Precision::Uint8, Some(&narrow)).unwrap()
        else {
            unreachable!()
        };
        assert_eq!((data[0], data[4], data[1]), (0, 255, 255));
        let bad = Ranges::of(&Embeddings::new(3, vec![0.0; 3])).unwrap();
        assert!(quantize(&e(), Precision::Int8, Some(&bad)).is_err());
    }

    #[test]
    fn binary_packs_sign_bits_msb_first() {
        let e = Embeddings::new(9, vec![1.0, 0.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        // numpy: packbits -> [159, 128]; packbits - 128 as int8 -> [31, 0]
        assert_eq!(
            quantize(&e, Precision::Ubinary, None).unwrap(),
            Quantized::U8 {
                width: 2,
                data: vec![159, 128]
            }
        );
        assert_eq!(
            quantize(&e, Precision::Binary, None).unwrap(),
            Quantized::I8 {
                width: 2,
                data: vec![31, 0]
            }
        );
    }
}
