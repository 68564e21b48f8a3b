//! L2 normalization and cosine similarity (sentence-transformers' `Normalize` module and
//! `util.cos_sim`).

/// Σ x² with 8 independent partial sums, so the loop vectorizes (a single running f32 sum is a
/// 4-cycle dependency chain per element).
pub(crate) fn sum_squares(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|x| x * x).sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x * x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit length, like `torch.nn.functional.normalize` (norm clamped at 1e-12).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = sum_squares(v).sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

/// Cosine similarity of two vectors (0 when either is all zeros).
///
/// ```
/// assert!((sembed::cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.70710677).abs() < 1e-6);
/// ```
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    (dot / (na.sqrt() * nb.sqrt()).max(1e-12)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_squares_matches_sequential() {
        let v: Vec<f32> = (0..37).map(|i| i as f32 * 0.1 - 1.0).collect();
        let seq: f32 = v.iter().map(|x| x * x).sum();
        assert!((sum_squares(&v) - seq).abs() < 1e-4);
    }

    #[test]
    fn normalizes_and_keeps_zero() {
        let mut v = [3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0, 0.0];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
        assert_eq!(cosine(&z, &v), 0.0);
    }
}
