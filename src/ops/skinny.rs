//! Matrix products for few rows (one or a handful of short sentences): `y[m, n] += x[m, k] · Wᵀ` with
//! `W` stored `[n, k]` (PyTorch layout) in f32 or f16.
//!
//! A packing GEMM copies all of `W` on every call, which for m ≈ 10 costs more than the arithmetic
//! (35% of a single-sentence run went to `matrixmultiply`'s packing). Here each output is a dot product of
//! contiguous rows, computed in 3 × 4 register tiles (3 rows of `x` against 4 rows of `W`, 8 lanes of k
//! at a time), so `W` is read exactly once, straight from the memory map; f16 rows are widened in
//! registers (F16C). AVX2+FMA is selected at run time; other CPUs use the portable loop.

use half::f16;

/// Weight rows in their stored type.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

/// `y[i, j] += Σ_k x[i, k] · w[j, k]` for `i < m`, `j < n`.
pub(crate) fn matmul_nt(x: &[f32], w: Rows<'_>, y: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(x.len() >= m * k && y.len() >= m * n);
    match w {
        Rows::F32(w) => assert!(w.len() >= n * k),
        Rows::F16(w) => assert!(w.len() >= n * k),
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the features were just detected; bounds were asserted above.
            unsafe { avx2::matmul_nt(x, w, y, m, k, n) };
            return;
        }
    }
    portable(x, w, y, m, k, n);
}

fn portable(x: &[f32], w: Rows<'_>, y: &mut [f32], m: usize, k: usize, n: usize) {
    let mut row = vec![0f32; k];
    for j in 0..n {
        let wr: &[f32] = match w {
            Rows::F32(w) => &w[j * k..(j + 1) * k],
            Rows::F16(w) => {
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(
                    &w[j * k..(j + 1) * k],
                    &mut row,
                );
                &row
            }
        };
        for i in 0..m {
            let xr = &x[i * k..(i + 1) * k];
            y[i * n + j] += xr.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Rows;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            _mm_cvtss_f32(s)
        }
    }

    /// Loads 8 weights at element offset `off` as f32.
    #[inline(always)]
    unsafe fn load_w(w: Rows<'_>, off: usize) -> __m256 {
        unsafe {
            match w {
                Rows::F32(w) => _mm256_loadu_ps(w.as_ptr().add(off)),
                Rows::F16(w) => {
                    _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(off) as *const __m128i))
                }
            }
        }
    }

    #[inline(always)]
    fn w_at(w: Rows<'_>, off: usize) -> f32 {
        match w {
            Rows::F32(w) => w[off],
            Rows::F16(w) => w[off].to_f32(),
        }
    }

    /// One `MR × NR` tile of outputs starting at row `i`, column `j`.
    #[inline(always)]
    unsafe fn tile<const MR: usize, const NR: usize>(
        x: &[f32],
        w: Rows<'_>,
        y: &mut [f32],
        (i, j): (usize, usize),
        k: usize,
        n: usize,
    ) {
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NR]; MR];
            let k8 = k - k % 8;
            let mut kk = 0;
            while kk < k8 {
                let mut wv = [_mm256_setzero_ps(); NR];
                for (r, v) in wv.iter_mut().enumerate() {
                    *v = load_w(w, (j + r) * k + kk);
                }
                for (q, a) in acc.iter_mut().enumerate() {
                    let xv = _mm256_loadu_ps(x.as_ptr().add((i + q) * k + kk));
                    for (r, v) in wv.iter().enumerate() {
                        a[r] = _mm256_fmadd_ps(xv, *v, a[r]);
                    }
                }
                kk += 8;
            }
            for (q, a) in acc.iter().enumerate() {
                for (r, v) in a.iter().enumerate() {
                    let mut s = hsum(*v);
                    for t in k8..k {
                        s += x[(i + q) * k + t] * w_at(w, (j + r) * k + t);
                    }
                    y[(i + q) * n + j + r] += s;
                }
            }
        }
    }

    /// Runs the tiles of a column block of width `NR` over all rows.
    #[inline(always)]
    unsafe fn column_block<const NR: usize>(
        x: &[f32],
        w: Rows<'_>,
        y: &mut [f32],
        j: usize,
        m: usize,
        k: usize,
        n: usize,
    ) {
        unsafe {
            let mut i = 0;
            while i + 3 <= m {
                tile::<3, NR>(x, w, y, (i, j), k, n);
                i += 3;
            }
            match m - i {
                2 => tile::<2, NR>(x, w, y, (i, j), k, n),
                1 => tile::<1, NR>(x, w, y, (i, j), k, n),
                _ => {}
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn matmul_nt(
        x: &[f32],
        w: Rows<'_>,
        y: &mut [f32],
        m: usize,
        k: usize,
        n: usize,
    ) {
        unsafe {
            let mut j = 0;
            while j + 4 <= n {
                column_block::<4>(x, w, y, j, m, k, n);
                j += 4;
            }
            while j < n {
                column_block::<1>(x, w, y, j, m, k, n);
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_matches_portable_for_all_edge_shapes() {
        for (m, k, n) in [
            (1, 8, 4),
            (2, 13, 5),
            (3, 16, 7),
            (4, 384, 9),
            (7, 33, 12),
            (9, 64, 3),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 23) as f32 - 11.0) / 8.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 5 % 19) as f32 - 9.0) / 16.0)
                .collect();
            let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let mut want = vec![0.5f32; m * n];
            portable(&x, Rows::F32(&w), &mut want, m, k, n);
            for rows in [Rows::F32(&w), Rows::F16(&wh)] {
                let mut got = vec![0.5f32; m * n];
                matmul_nt(&x, rows, &mut got, m, k, n);
                for (a, b) in got.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                        "{m}x{k}x{n}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
