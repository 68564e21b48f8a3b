//! Matrix products for few rows (one or a handful of short sentences): `y[m, n] += x[m, k] · Wᵀ` with
//! `W` stored `[n, k]` (PyTorch layout) in f32 or f16.
//!
//! A packing GEMM copies all of `W` on every call, which for m ≈ 10 costs more than the arithmetic
//! (35% of a single-sentence run went to `matrixmultiply`'s packing). Here each output is a dot product of
//! contiguous rows, computed in register tiles (up to 8 rows of `x` against 3 rows of `W` with
//! AVX-512's 32 registers, 3 × 4 with AVX2's 16), so `W` is read exactly once, straight from where it
//! lies; f16 rows are widened in registers. The kernel is instantiated for AVX-512F (16 lanes) and
//! AVX2+FMA+F16C (8 lanes), chosen at run time ([`cpu_level`](super::cpu_level)); other CPUs use the
//! portable loop. The taller AVX-512 tiles took warm f32 single-sentence latency from 2.02–2.31 to
//! 1.92–1.95 ms (three interleaved runs each, weights in huge pages).

// `Isa` and `cap` serve the x86-64 kernels only.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_imports))]
use super::{CpuLevel, Floats, Isa, cap};

/// Weight rows `[n, k]` in their stored type.
pub(crate) type Rows<'a> = Floats<'a>;

impl<'a> Floats<'a> {
    /// The first `rows` rows (of width `k`) and the rest.
    pub(crate) fn split_rows(self, rows: usize, k: usize) -> (Rows<'a>, Rows<'a>) {
        (self.slice(0..rows * k), self.slice(rows * k..self.len()))
    }
}

/// `y[i * ldy + j] += Σ_k x[i, k] · w[j, k]` for `i < m`, `j < n` (`ldy` ≥ `n` is y's row stride),
/// with the kernel of `cpu`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_nt(
    x: &[f32],
    w: Rows<'_>,
    y: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    ldy: usize,
    cpu: CpuLevel,
) {
    assert!(x.len() >= m * k && ldy >= n && (m == 0 || y.len() >= (m - 1) * ldy + n));
    assert!(w.len() >= n * k);
    match cpu.isa() {
        // SAFETY (both): a CpuLevel of this Isa exists only if the CPU has it (CpuLevel::detect);
        // the bounds the kernels rely on were asserted above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Amx => unsafe { avx512::matmul_nt(x, w, y, m, k, n, ldy) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::matmul_nt(x, w, y, m, k, n, ldy) },
        _ => portable(x, w, y, m, k, n, ldy),
    }
}

fn portable(x: &[f32], w: Rows<'_>, y: &mut [f32], m: usize, k: usize, n: usize, ldy: usize) {
    let mut row = vec![0f32; k];
    for j in 0..n {
        let wr: &[f32] = match w {
            Floats::F32(w) => &w[j * k..(j + 1) * k],
            Floats::F16(w) => {
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(
                    &w[j * k..(j + 1) * k],
                    &mut row,
                );
                &row
            }
        };
        for i in 0..m {
            let xr = &x[i * k..(i + 1) * k];
            y[i * ldy + j] += xr.iter().zip(wr).map(|(a, b)| a * b).sum::<f32>();
        }
    }
}

/// One implementation of the tiled kernel per instruction set: `$width` f32 lanes per vector, tiles
/// of up to `$mr` rows of `x` against `$nr` rows of `W` (as many accumulators as the register file
/// holds beside the `$nr` weight vectors and one input vector).
#[cfg(target_arch = "x86_64")]
macro_rules! simd_kernel {
    ($name:ident, $features:literal, $width:literal, $mr:literal, $nr:literal, $vec:ty, $zero:expr,
     $loadu:path, $fmadd:path, $cvt_half:expr, $hsum:expr) => {
        mod $name {
            use std::arch::x86_64::*;

            use super::{Floats, Rows};

            /// Loads `$width` weights at element offset `off` as f32.
            ///
            /// # Safety
            /// The CPU has `$features`; `off + $width` ≤ the number of weights.
            #[inline(always)]
            unsafe fn load_w(w: Rows<'_>, off: usize) -> $vec {
                // SAFETY: in bounds by the caller's contract; the loads are unaligned.
                unsafe {
                    match w {
                        Floats::F32(w) => $loadu(w.as_ptr().add(off)),
                        Floats::F16(w) => $cvt_half(w.as_ptr().add(off)),
                    }
                }
            }

            #[inline(always)]
            fn w_at(w: Rows<'_>, off: usize) -> f32 {
                w.get(off)
            }

            /// One `MR × NR` tile of outputs starting at row `i`, column `j`. With `prefetch`, the
            /// weights [`super::PREFETCH_AHEAD`] elements past this block are hinted in as the block
            /// is read, at the same pace.
            ///
            /// # Safety
            /// The CPU has `$features`; rows `i..i + MR` of `x` (width `k`) and of `y` (stride
            /// `ldy`, columns `j..j + NR`) and weight rows `j..j + NR` exist.
            #[inline(always)]
            unsafe fn tile<const MR: usize, const NR: usize>(
                x: &[f32],
                w: Rows<'_>,
                y: &mut [f32],
                (i, j): (usize, usize),
                (k, ldy): (usize, usize),
                prefetch: bool,
            ) {
                // SAFETY: vector loads stay below `kv` ≤ k in rows the caller guarantees; the
                // scalar tail and the stores are bounds-checked slice accesses; prefetches never
                // fault.
                unsafe {
                    let mut acc = [[$zero; NR]; MR];
                    let kv = k - k % $width;
                    let mut kk = 0;
                    while kk < kv {
                        if prefetch {
                            for r in 0..NR {
                                super::prefetch(
                                    w,
                                    j * k + super::PREFETCH_AHEAD + kk * NR + r * $width,
                                );
                            }
                        }
                        let mut wv = [$zero; NR];
                        for (r, v) in wv.iter_mut().enumerate() {
                            *v = load_w(w, (j + r) * k + kk);
                        }
                        for (q, a) in acc.iter_mut().enumerate() {
                            let xv = $loadu(x.as_ptr().add((i + q) * k + kk));
                            for (r, v) in wv.iter().enumerate() {
                                a[r] = $fmadd(xv, *v, a[r]);
                            }
                        }
                        kk += $width;
                    }
                    for (q, a) in acc.iter().enumerate() {
                        for (r, v) in a.iter().enumerate() {
                            let mut s = $hsum(*v);
                            for t in kv..k {
                                s += x[(i + q) * k + t] * w_at(w, (j + r) * k + t);
                            }
                            y[(i + q) * ldy + j + r] += s;
                        }
                    }
                }
            }

            /// All rows against the `NR` weight rows at `j`, in as few tiles as the registers allow,
            /// of balanced heights (10 rows of AVX-512 run as 5 + 5, not 8 + 2): each tile re-reads the
            /// block from L1, and a short tile wastes the load bandwidth it shares with the FMAs.
            ///
            /// # Safety
            /// The CPU has `$features`; `x` has `m` rows of `k`, `y` `m` rows of stride `ldy`, and
            /// weight rows `j..j + NR` exist.
            #[inline(always)]
            unsafe fn column_block<const NR: usize>(
                x: &[f32],
                w: Rows<'_>,
                y: &mut [f32],
                j: usize,
                (m, k, ldy): (usize, usize, usize),
            ) {
                // SAFETY: every tile covers rows inside 0..m and the weight rows at j.
                unsafe {
                    let tiles = m.div_ceil($mr);
                    let mut i = 0;
                    for t in 0..tiles {
                        // 1 ≤ rows ≤ $mr: the rows left never exceed $mr per tile left.
                        let rows = (m - i) / (tiles - t);
                        debug_assert!((1..=$mr).contains(&rows));
                        let dims = (k, ldy);
                        // The first tile reads the block from memory; it also prefetches.
                        let pf = t == 0;
                        match rows {
                            1 => tile::<1, NR>(x, w, y, (i, j), dims, pf),
                            2 => tile::<2, NR>(x, w, y, (i, j), dims, pf),
                            3 => tile::<{ super::cap(3, $mr) }, NR>(x, w, y, (i, j), dims, pf),
                            4 => tile::<{ super::cap(4, $mr) }, NR>(x, w, y, (i, j), dims, pf),
                            5 => tile::<{ super::cap(5, $mr) }, NR>(x, w, y, (i, j), dims, pf),
                            6 => tile::<{ super::cap(6, $mr) }, NR>(x, w, y, (i, j), dims, pf),
                            7 => tile::<{ super::cap(7, $mr) }, NR>(x, w, y, (i, j), dims, pf),
                            _ => tile::<{ super::cap(8, $mr) }, NR>(x, w, y, (i, j), dims, pf),
                        }
                        i += rows;
                    }
                }
            }

            /// `y[i * ldy + j] += Σ_k x[i, k] · w[j, k]` for `i < m`, `j < n`.
            ///
            /// # Safety
            /// The CPU has `$features`; `x` holds `m · k` elements, `w` `n · k`, and `y`
            /// `(m − 1) · ldy + n` with `ldy ≥ n` (what [`super::matmul_nt`] asserts).
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn matmul_nt(
                x: &[f32],
                w: Rows<'_>,
                y: &mut [f32],
                m: usize,
                k: usize,
                n: usize,
                ldy: usize,
            ) {
                // SAFETY: the column blocks cover weight rows 0..n, each within the contract.
                unsafe {
                    let mut j = 0;
                    while j + $nr <= n {
                        column_block::<$nr>(x, w, y, j, (m, k, ldy));
                        j += $nr;
                    }
                    while j < n {
                        column_block::<1>(x, w, y, j, (m, k, ldy));
                        j += 1;
                    }
                }
            }
        }
    };
}

/// How far ahead (in weight elements) the first tile of a column block prefetches: 4 KiB of f32.
/// Weight rows are only k floats long, and the tiles read several at once, which the hardware
/// prefetcher follows poorly: streaming 37 MB of weights at 9 rows ran at 52 GFLOP/s without this and
/// 58–61 with it (2 KiB: 56–59, 16 KiB: 51).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PREFETCH_AHEAD: usize = 1024;

/// Hints the cache line holding weight element `off` into L1. The address may lie past the end
/// (a prefetch never faults), hence `wrapping_add`.
///
/// # Safety
/// None beyond running on x86-64 (SSE is baseline there); marked unsafe only to be callable from
/// the kernels' unsafe blocks without a second one.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn prefetch(w: Rows<'_>, off: usize) {
    use std::arch::x86_64::*;
    let p = match w {
        Floats::F32(w) => w.as_ptr().wrapping_add(off) as *const i8,
        Floats::F16(w) => w.as_ptr().wrapping_add(off) as *const i8,
    };
    // SAFETY: prefetching has no architectural effect; SSE is baseline on x86_64.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
}

/// Sum of the 8 lanes.
///
/// # Safety
/// The CPU has AVX.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn hsum256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    // SAFETY: register-only shuffles and adds; AVX is present (caller).
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

#[cfg(target_arch = "x86_64")]
simd_kernel!(
    avx2,
    "avx2,fma,f16c",
    8,
    3,
    4,
    __m256,
    _mm256_setzero_ps(),
    _mm256_loadu_ps,
    _mm256_fmadd_ps,
    |p: *const half::f16| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
    |v| super::hsum256(v)
);

#[cfg(target_arch = "x86_64")]
simd_kernel!(
    avx512,
    "avx512f",
    16,
    8,
    3,
    __m512,
    _mm512_setzero_ps(),
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    |p: *const half::f16| _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i)),
    |v| _mm512_reduce_add_ps(v)
);

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    type KernelFn = fn(&[f32], Rows<'_>, &mut [f32], usize, usize, usize, usize);

    fn close(got: &[f32], want: &[f32], what: &str) {
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{what}: {a} vs {b}");
        }
    }

    /// Every kernel this CPU can run (whatever `cpu_level` picked) against the portable loop, on
    /// shapes with ragged row, column and k edges.
    #[test]
    fn kernels_match_portable_for_all_edge_shapes() {
        let best = CpuLevel::best();
        let mut kernels: Vec<(&str, KernelFn)> = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
            {
                // SAFETY: AVX2, FMA and F16C were just detected; the shapes below fit the buffers.
                kernels.push(("avx2", |x, w, y, m, k, n, l| unsafe {
                    avx2::matmul_nt(x, w, y, m, k, n, l)
                }));
            }
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F was just detected; the shapes below fit the buffers.
                kernels.push(("avx512", |x, w, y, m, k, n, l| unsafe {
                    avx512::matmul_nt(x, w, y, m, k, n, l)
                }));
            }
        }
        // Every tile height the balanced split produces (m up to SKINNY_MAX_ROWS), column counts
        // with and without a remainder after the 3- and 4-wide blocks, k with a scalar tail.
        let shapes = [
            (1, 8, 4),
            (2, 13, 5),
            (3, 16, 7),
            (4, 384, 9),
            (7, 33, 12),
            (9, 64, 3),
            (5, 40, 6),
            (10, 48, 11),
            (13, 17, 10),
            (17, 32, 8),
            (24, 16, 13),
            (32, 20, 5),
        ];
        for (m, k, n) in shapes {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 23) as f32 - 11.0) / 8.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 5 % 19) as f32 - 9.0) / 16.0)
                .collect();
            let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let mut want = vec![0.5f32; m * n];
            portable(&x, Floats::F32(&w), &mut want, m, k, n, n);
            for (name, kernel) in &kernels {
                for rows in [Floats::F32(&w), Floats::F16(&wh)] {
                    let mut got = vec![0.5f32; m * n];
                    kernel(&x, rows, &mut got, m, k, n, n);
                    close(&got, &want, &format!("{name} {m}x{k}x{n}"));
                }
            }
            // Slices that start off every vector alignment (one f32 in), as sub-slices do.
            let xu: Vec<f32> = std::iter::once(0.0).chain(x.iter().copied()).collect();
            let wu: Vec<f32> = std::iter::once(0.0).chain(w.iter().copied()).collect();
            for (name, kernel) in &kernels {
                let mut got = vec![0.5f32; m * n + 1];
                kernel(&xu[1..], Floats::F32(&wu[1..]), &mut got[1..], m, k, n, n);
                close(&got[1..], &want, &format!("{name} unaligned {m}x{k}x{n}"));
            }
            // The dispatch, at every level this CPU has.
            for cpu in CpuLevel::available() {
                for rows in [Floats::F32(&w), Floats::F16(&wh)] {
                    let mut got = vec![0.5f32; m * n];
                    matmul_nt(&x, rows, &mut got, m, k, n, n, cpu);
                    close(&got, &want, &format!("{cpu:?} {m}x{k}x{n}"));
                }
            }
            // A column split, as the two-thread path does it: left half in place, right half strided.
            let h = n / 2;
            let mut got = vec![0.5f32; m * n];
            let (wa, wb) = Floats::F32(&w).split_rows(h, k);
            matmul_nt(&x, wa, &mut got, m, k, h, n, best);
            matmul_nt(&x, wb, &mut got[h..], m, k, n - h, n, best);
            close(&got, &want, &format!("split {m}x{k}x{n}"));
        }
    }
}
