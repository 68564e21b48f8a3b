//! Matrix products over weights packed once (at load, at build time for the built-in model, or in
//! a prepared copy; see `encoder::resident`): `y[m, n] += x[m, k] · Wᵀ` with `W` stored as column
//! panels. Every output is one chain of fused multiply-adds in input order, whatever the tile, the
//! rows beside it or the instruction set: a text's vector does not depend on its batch. (On AMX
//! tiles, `amx.rs` computes the same products in another fixed order per output.)
//!
//! `matrixmultiply` repacks both operands on every call, which was 14–16 % of a batched STS-B run
//! (perf). Here `W` is rearranged once into panels of [`PANEL`] output features, each `k` groups
//! of `PANEL` consecutive values, so the micro-kernel reads a panel as one sequential stream and
//! broadcasts the inputs straight from their row-major buffer: nothing is packed per call, no
//! horizontal sums, one kernel for a single sentence (a few rows) and for 1,024-token batches.
//! Tiles: 12 rows × 32 features with AVX-512 (24 accumulators of 32 registers), 6 × 16 with AVX2
//! (12 of 16: a panel in two halves), 4 × 8 with wasm simd128 (8 of the 16 registers engines give
//! it, a panel in four quarters; 5 and 6 rows spilled and ran slower). Half-precision panels stay
//! half and are widened in registers; wasm has no instruction for that and gets f32 panels.

// `Isa` and `cap` serve the x86-64 kernels only.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_imports))]
use super::{CpuLevel, Floats, Isa, cap};

/// Packed weights: feature `j`'s value for input `kk` sits at `((j / nr) · k + kk) · nr + j % nr`;
/// the last panel is zero-padded to `nr` features.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Panels<'a> {
    pub data: Floats<'a>,
    pub n: usize,  // output features (rows of the PyTorch weight)
    pub k: usize,  // input features
    pub nr: usize, // panel width: PANEL
}

/// The panel width: one layout for every kernel, so panels packed once (the built-in model's,
/// compiled in; a prepared copy on disk) serve any CPU. AVX-512 reads a panel row as two vectors,
/// AVX2 as two halves of two.
pub(crate) const PANEL: usize = 32;

/// Columns one kernel tile covers: a panel, or half of one for AVX2.
fn tile_cols(cpu: CpuLevel) -> usize {
    match cpu.isa() {
        Isa::Avx2 => PANEL / 2,
        Isa::Simd128 => PANEL / 4,
        _ => PANEL,
    }
}

/// Whether packing pays at this level: the portable kernel is a plain loop, slower than
/// `matrixmultiply` (which has its own kernels for other architectures), so there weights stay
/// as stored. wasm simd128 has a kernel of its own.
pub(crate) fn worth_packing(cpu: CpuLevel) -> bool {
    cpu.isa() != Isa::Portable
}

/// Whether this level's kernel reads half-precision panels (widening in registers). wasm has no
/// half conversion instruction: one value at a time made f16 weights 5× slower there (19 vs 108
/// sentences/s for all-MiniLM-L6-v2 in Node), so they are widened to f32 panels once, at load.
pub(crate) fn reads_half(cpu: CpuLevel) -> bool {
    cpu.isa() != Isa::Simd128
}

// The layout's one implementation lives with the file format, which build.rs shares.
pub(crate) use crate::weights::panels_file::{pack, packed_len};

impl<'a> Panels<'a> {
    /// Element `(j, kk)` of the original `[n, k]` matrix.
    #[cfg(test)]
    pub(crate) fn get(&self, j: usize, kk: usize) -> f32 {
        self.data
            .get(((j / self.nr) * self.k + kk) * self.nr + j % self.nr)
    }

    /// Features `j .. j + width` (`j` a multiple of `nr`).
    pub(crate) fn columns(self, j: usize, width: usize) -> Panels<'a> {
        debug_assert!(j.is_multiple_of(self.nr) && j + width <= self.n);
        let start = j / self.nr * self.nr * self.k;
        let len = packed_len(width, self.k, self.nr);
        Panels {
            data: self.data.slice(start..start + len),
            n: width,
            ..self
        }
    }
}

/// Rows of `x` per tile for a level's kernel.
fn tile_rows(cpu: CpuLevel) -> usize {
    match cpu.isa() {
        Isa::Avx512 | Isa::Amx => 12,
        Isa::Avx2 => 6,
        Isa::Simd128 => 4,
        Isa::Portable => 4,
    }
}

/// `y[i * ldy + j] += Σ_kk x[i * k + kk] · W[j, kk]` for `i < m`, `j < w.n`, with the kernel of
/// `cpu` (the level the panels were packed for).
pub(crate) fn matmul(
    x: &[f32],
    w: Panels<'_>,
    y: &mut [f32],
    (m, ldy): (usize, usize),
    cpu: CpuLevel,
) {
    let (k, n, nr) = (w.k, w.n, w.nr);
    assert_eq!(nr, PANEL, "panels of another layout");
    assert!(x.len() >= m * k && ldy >= n && (m == 0 || y.len() >= (m - 1) * ldy + n));
    assert!(w.data.len() >= packed_len(n, k, nr));
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if cpu.isa() == Isa::Amx {
        // SAFETY: a CpuLevel of Amx exists only where `amx::available()`; the asserts above are
        // its bounds.
        unsafe { super::amx::matmul(x, w, y, m, ldy) };
        return;
    }
    // Panels per block: what stays in L2 (≈ 512 KiB) while every row tile passes over it.
    let elem = match w.data {
        Floats::F32(_) => 4,
        Floats::F16(_) => 2,
    };
    let block = (512 * 1024 / (nr * k * elem)).max(1) * nr;
    let mr = tile_rows(cpu);
    for j0 in (0..n).step_by(block) {
        let width = block.min(n - j0);
        for i0 in (0..m).step_by(mr) {
            let rows = mr.min(m - i0);
            for j in (j0..j0 + width).step_by(nr) {
                let panel = w.columns(j, nr.min(n - j));
                let x = &x[i0 * k..];
                // A panel in tiles of `tc` columns (AVX2: two halves), `cols` of them real.
                let tc = tile_cols(cpu);
                for off in (0..nr).step_by(tc) {
                    if j + off >= n {
                        break;
                    }
                    let cols = tc.min(n - j - off);
                    let y = &mut y[i0 * ldy + j + off..];
                    match cpu.isa() {
                        // SAFETY (every kernel): a CpuLevel of this Isa exists only if the CPU
                        // has it; the asserts above bound every access (`rows` rows of `x` and
                        // `y`, one panel of `nr` columns read from column `off`, `cols` ≤ `tc`
                        // outputs per row).
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx512 => unsafe { avx512::tile(x, panel, y, rows, cols, ldy, off) },
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx2 => unsafe { avx2::tile(x, panel, y, rows, cols, ldy, off) },
                        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                        Isa::Simd128 => unsafe { simd128::tile(x, panel, y, rows, cols, ldy, off) },
                        _ => portable_tile(x, panel, y, rows, cols, ldy),
                    }
                }
            }
        }
    }
}

fn portable_tile(x: &[f32], w: Panels<'_>, y: &mut [f32], rows: usize, cols: usize, ldy: usize) {
    const MR: usize = 4; // tile_rows() for Portable
    const NR: usize = PANEL;
    let k = w.k;
    let mut acc = [[0f32; NR]; MR];
    let mut wv = [0f32; NR];
    for kk in 0..k {
        match w.data {
            Floats::F32(d) => wv.copy_from_slice(&d[kk * NR..(kk + 1) * NR]),
            Floats::F16(d) => {
                for (o, v) in wv.iter_mut().zip(&d[kk * NR..(kk + 1) * NR]) {
                    *o = v.to_f32();
                }
            }
        }
        for (i, a) in acc.iter_mut().enumerate().take(rows) {
            let xv = x[i * k + kk];
            a.iter_mut().zip(&wv).for_each(|(o, w)| *o += xv * w);
        }
    }
    for (i, a) in acc.iter().enumerate().take(rows) {
        let out = &mut y[i * ldy..i * ldy + cols];
        out.iter_mut().zip(a).for_each(|(o, v)| *o += v);
    }
}

/// One kernel per instruction set: `$lanes` f32 per vector, two vectors per panel row (`nr` =
/// 2 · `$lanes`), up to `$mr` rows per tile.
#[cfg(target_arch = "x86_64")]
macro_rules! packed_kernel {
    ($name:ident, $features:literal, $lanes:literal, $mr:literal, $vec:ty, $zero:expr,
     $loadu:path, $set1:path, $fmadd:path, $add:path, $storeu:path, $cvt_half:expr) => {
        mod $name {
            use std::arch::x86_64::*;

            use super::{Floats, Panels};

            /// Columns `off .. off + 2 · $lanes` of panel row `kk` as two vectors.
            ///
            /// # Safety
            /// The CPU has `$features`; the panel holds at least `(kk + 1) · PANEL` elements and
            /// `off + 2 · $lanes ≤ PANEL`.
            #[inline(always)]
            unsafe fn load(w: Floats<'_>, kk: usize, off: usize) -> ($vec, $vec) {
                let at = kk * super::PANEL + off;
                // SAFETY: `at + nr` elements are in the panel (caller), and the loads are unaligned.
                unsafe {
                    match w {
                        Floats::F32(d) => {
                            let p = d.as_ptr().add(at);
                            ($loadu(p), $loadu(p.add($lanes)))
                        }
                        Floats::F16(d) => {
                            let p = d.as_ptr().add(at);
                            ($cvt_half(p), $cvt_half(p.add($lanes)))
                        }
                    }
                }
            }

            /// `MR` rows of `x` against one panel.
            ///
            /// # Safety
            /// The CPU has `$features`; `x` holds `MR` rows of `w.k`, `y` `MR` rows of stride `ldy`
            /// with `cols` ≤ nr outputs each, and the panel `w.k · nr` elements.
            #[inline(always)]
            unsafe fn tile_of<const MR: usize>(
                x: &[f32],
                w: Panels<'_>,
                y: &mut [f32],
                cols: usize,
                ldy: usize,
                off: usize,
            ) {
                let k = w.k;
                // SAFETY: every index below stays inside the bounds the caller guarantees.
                unsafe {
                    // Each output is one chain of fused multiply-adds over kk = 0, 1, …, k − 1,
                    // added to y at the end: whatever the tile, the rows beside it or the
                    // instruction set, so a text's vector never depends on its batch.
                    let mut acc = [[$zero; 2]; MR];
                    for kk in 0..k {
                        let (w0, w1) = load(w.data, kk, off);
                        for (q, a) in acc.iter_mut().enumerate() {
                            let xv = $set1(*x.get_unchecked(q * k + kk));
                            a[0] = $fmadd(xv, w0, a[0]);
                            a[1] = $fmadd(xv, w1, a[1]);
                        }
                    }
                    for (q, a) in acc.iter().enumerate() {
                        let out = y.as_mut_ptr().add(q * ldy);
                        if cols == 2 * $lanes {
                            $storeu(out, $add($loadu(out), a[0]));
                            $storeu(out.add($lanes), $add($loadu(out.add($lanes)), a[1]));
                        } else {
                            // A ragged last panel: through a buffer, only `cols` outputs touched.
                            let mut buf = [0f32; 2 * $lanes];
                            $storeu(buf.as_mut_ptr(), a[0]);
                            $storeu(buf.as_mut_ptr().add($lanes), a[1]);
                            for (c, v) in buf.iter().take(cols).enumerate() {
                                *out.add(c) += v;
                            }
                        }
                    }
                }
            }

            /// `rows` (≤ `$mr`) rows of `x` against columns `off ..` of one panel, `cols`
            /// (≤ 2 · `$lanes`) of them.
            ///
            /// # Safety
            /// The CPU has `$features`; `x` and `y` hold `rows` rows (of `w.k`, and of stride `ldy`
            /// with `cols` outputs), the panel `w.k · PANEL` elements, `off + 2 · $lanes ≤ PANEL`.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn tile(
                x: &[f32],
                w: Panels<'_>,
                y: &mut [f32],
                rows: usize,
                cols: usize,
                ldy: usize,
                off: usize,
            ) {
                // SAFETY: forwarded from this function's own contract.
                unsafe {
                    match rows {
                        1 => tile_of::<1>(x, w, y, cols, ldy, off),
                        2 => tile_of::<2>(x, w, y, cols, ldy, off),
                        3 => tile_of::<3>(x, w, y, cols, ldy, off),
                        4 => tile_of::<4>(x, w, y, cols, ldy, off),
                        5 => tile_of::<{ super::cap(5, $mr) }>(x, w, y, cols, ldy, off),
                        6 => tile_of::<{ super::cap(6, $mr) }>(x, w, y, cols, ldy, off),
                        7 => tile_of::<{ super::cap(7, $mr) }>(x, w, y, cols, ldy, off),
                        8 => tile_of::<{ super::cap(8, $mr) }>(x, w, y, cols, ldy, off),
                        9 => tile_of::<{ super::cap(9, $mr) }>(x, w, y, cols, ldy, off),
                        10 => tile_of::<{ super::cap(10, $mr) }>(x, w, y, cols, ldy, off),
                        11 => tile_of::<{ super::cap(11, $mr) }>(x, w, y, cols, ldy, off),
                        _ => tile_of::<{ super::cap(12, $mr) }>(x, w, y, cols, ldy, off),
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
packed_kernel!(
    avx512,
    "avx512f",
    16,
    12,
    __m512,
    _mm512_setzero_ps(),
    _mm512_loadu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_storeu_ps,
    |p: *const half::f16| _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
);

#[cfg(target_arch = "x86_64")]
packed_kernel!(
    avx2,
    "avx2,fma,f16c",
    8,
    6,
    __m256,
    _mm256_setzero_ps(),
    _mm256_loadu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_storeu_ps,
    |p: *const half::f16| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
);

/// The WebAssembly kernel: the x86-64 ones' structure with 4-lane vectors, tiles of up to 4 rows ×
/// 8 columns; a fused multiply-add only with relaxed SIMD (see `madd`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use std::arch::wasm32::*;

    use super::{Floats, PANEL, Panels};

    /// `MR` rows of `x` against columns `off .. off + 8` of one panel.
    ///
    /// # Safety
    /// `x` holds `MR` rows of `w.k`, `y` `MR` rows of stride `ldy` with `cols` ≤ 8 outputs each
    /// from its start, the panel `w.k · PANEL` elements, `off + 8 ≤ PANEL`.
    #[inline(always)]
    unsafe fn tile_of<const MR: usize>(
        x: &[f32],
        w: Panels<'_>,
        y: &mut [f32],
        cols: usize,
        ldy: usize,
        off: usize,
    ) {
        // The element type is settled here, outside the loop: a branch on it inside kept the
        // f16 widening code in the loop body and made the kernel slower than `matrixmultiply`.
        // SAFETY (both loaders): panel row `kk < w.k` holds `PANEL` elements from `kk · PANEL`
        // and `off + 8 ≤ PANEL` (caller); wasm loads need no alignment.
        unsafe {
            match w.data {
                Floats::F32(d) => rows::<MR>(x, w.k, y, cols, ldy, |kk| {
                    let p = d.as_ptr().add(kk * PANEL + off);
                    (
                        v128_load(p as *const v128),
                        v128_load(p.add(4) as *const v128),
                    )
                }),
                // Panels packed as f16 elsewhere (a panels file); weights packed here are f32.
                Floats::F16(d) => rows::<MR>(x, w.k, y, cols, ldy, |kk| {
                    let h = |i: usize| d.get_unchecked(kk * PANEL + off + i).to_f32();
                    (f32x4(h(0), h(1), h(2), h(3)), f32x4(h(4), h(5), h(6), h(7)))
                }),
            }
        }
    }

    /// `a + x · w`: fused in a build with relaxed SIMD (`f32x4.relaxed_madd`, an FMA on CPUs that
    /// have one: 1.3× the sentences per second), else a multiply then an add. Either way one
    /// fixed chain per output, so batches still do not change a text's vector.
    #[inline(always)]
    fn madd(x: v128, w: v128, a: v128) -> v128 {
        #[cfg(target_feature = "relaxed-simd")]
        {
            f32x4_relaxed_madd(x, w, a)
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            f32x4_add(a, f32x4_mul(x, w))
        }
    }

    /// The loop of [`tile_of`] with `load(kk)` giving panel row `kk`'s 8 columns.
    ///
    /// # Safety
    /// As [`tile_of`]'s, with `load` valid for every `kk < k`.
    #[inline(always)]
    unsafe fn rows<const MR: usize>(
        x: &[f32],
        k: usize,
        y: &mut [f32],
        cols: usize,
        ldy: usize,
        load: impl Fn(usize) -> (v128, v128),
    ) {
        // SAFETY: every index below stays inside the bounds the caller guarantees.
        unsafe {
            // Each output: one chain over kk = 0, 1, …, k − 1, added to y at the end, so a
            // text's vector does not depend on the rows beside it.
            let mut acc = [[f32x4_splat(0.0); 2]; MR];
            for kk in 0..k {
                let (w0, w1) = load(kk);
                for (q, a) in acc.iter_mut().enumerate() {
                    let xv = f32x4_splat(*x.get_unchecked(q * k + kk));
                    a[0] = madd(xv, w0, a[0]);
                    a[1] = madd(xv, w1, a[1]);
                }
            }
            for (q, a) in acc.iter().enumerate() {
                let out = y.as_mut_ptr().add(q * ldy);
                if cols == 8 {
                    let (o0, o1) = (out as *mut v128, out.add(4) as *mut v128);
                    v128_store(o0, f32x4_add(v128_load(o0), a[0]));
                    v128_store(o1, f32x4_add(v128_load(o1), a[1]));
                } else {
                    // A ragged last panel: through a buffer, only `cols` outputs touched.
                    let mut buf = [0f32; 8];
                    v128_store(buf.as_mut_ptr() as *mut v128, a[0]);
                    v128_store(buf.as_mut_ptr().add(4) as *mut v128, a[1]);
                    for (c, v) in buf.iter().take(cols).enumerate() {
                        *out.add(c) += v;
                    }
                }
            }
        }
    }

    /// `rows` (≤ 4) rows of `x` against columns `off ..` of one panel, `cols` (≤ 8) of them.
    ///
    /// # Safety
    /// `x` and `y` hold `rows` rows (of `w.k`, and of stride `ldy` with `cols` outputs), the
    /// panel `w.k · PANEL` elements, `off + 8 ≤ PANEL`.
    pub(super) unsafe fn tile(
        x: &[f32],
        w: Panels<'_>,
        y: &mut [f32],
        rows: usize,
        cols: usize,
        ldy: usize,
        off: usize,
    ) {
        // SAFETY: forwarded from this function's own contract.
        unsafe {
            match rows {
                1 => tile_of::<1>(x, w, y, cols, ldy, off),
                2 => tile_of::<2>(x, w, y, cols, ldy, off),
                3 => tile_of::<3>(x, w, y, cols, ldy, off),
                _ => tile_of::<4>(x, w, y, cols, ldy, off),
            }
        }
    }
}

/// Best-of-20 rate of [`matmul`] on one thread at `[m, k] · [k, n]` (f32 panels), in GFLOP/s: the
/// "GEMM peak" `benches/latency.rs` reports beside `matrixmultiply`'s.
pub(crate) fn rate_gflops(m: usize, k: usize, n: usize) -> f64 {
    let cpu = CpuLevel::detect(Isa::Avx512);
    let nr = PANEL;
    let x = vec![0.5f32; m * k];
    let w = vec![0.25f32; n * k];
    let mut p = vec![0f32; packed_len(n, k, nr)];
    pack(&w, n, k, nr, &mut p);
    let panels = Panels {
        data: Floats::F32(&p),
        n,
        k,
        nr,
    };
    let mut y = vec![0f32; m * n];
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let t = std::time::Instant::now();
        matmul(&x, panels, &mut y, (m, n), cpu);
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (m * k * n) as f64 / best / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    /// What makes a text's vector independent of its batch: each output is one chain of fused
    /// multiply-adds, so a row alone, the same row among others at any tile position, and the
    /// AVX2 and AVX-512 kernels all give the same bits.
    #[test]
    fn results_do_not_depend_on_the_rows_beside_them_or_the_instruction_set() {
        let (m, k, n) = (29, 384, 1536 + 40);
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 997.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 104729 % 2003) as f32 - 1001.0) / 1999.0)
            .collect();
        let mut p = vec![0f32; packed_len(n, k, PANEL)];
        pack(&w, n, k, PANEL, &mut p);
        let panels = Panels {
            data: Floats::F32(&p),
            n,
            k,
            nr: PANEL,
        };
        let fma: Vec<CpuLevel> = CpuLevel::available()
            .into_iter()
            .filter(|c| c.isa() != Isa::Portable)
            .collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32 / 7.0).collect();
        let mut first: Option<Vec<f32>> = None;
        for &cpu in &fma {
            let mut all: Vec<f32> = bias.iter().cycle().take(m * n).copied().collect();
            matmul(&x, panels, &mut all, (m, n), cpu);
            for i in [0, 5, 12, 13, 28] {
                let mut one = bias.clone();
                matmul(&x[i * k..(i + 1) * k], panels, &mut one, (1, n), cpu);
                assert_eq!(
                    one,
                    all[i * n..(i + 1) * n],
                    "{cpu:?}: row {i} alone differs"
                );
                // Among other rows, at another tile position.
                let rows = &x[i.saturating_sub(3) * k..(i + 1).min(m) * k];
                let r = rows.len() / k;
                let mut some: Vec<f32> = bias.iter().cycle().take(r * n).copied().collect();
                matmul(rows, panels, &mut some, (r, n), cpu);
                assert_eq!(
                    some[(r - 1) * n..],
                    all[i * n..(i + 1) * n],
                    "{cpu:?}: row {i}"
                );
            }
            // AMX sums other products (bf16 splits): its own bits, checked against the
            // reference in `packed_matmul_matches_reference`.
            if cpu.isa() == Isa::Amx {
                continue;
            }
            match &first {
                None => first = Some(all),
                Some(f) => assert_eq!(f, &all, "{cpu:?} differs from {:?}", fma[0]),
            }
        }
    }

    /// Against a plain triple loop, f32 and f16 panels, on shapes with ragged row tiles, a ragged
    /// last panel, several L2 blocks, and an output stride wider than the product.
    #[test]
    fn packed_matmul_matches_reference() {
        for cpu in CpuLevel::available() {
            let nr = PANEL;
            for (m, k, n) in [
                (1, 8, 5),
                (9, 384, 384),
                (13, 40, 70),
                (30, 16, 3 * nr + 1),
                (64, 600, 300),
            ] {
                let x: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 7 % 23) as f32 - 11.0) / 8.0)
                    .collect();
                let w: Vec<f32> = (0..n * k)
                    .map(|i| ((i * 5 % 19) as f32 - 9.0) / 16.0)
                    .collect();
                let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
                let ldy = n + 3;
                let mut want = vec![0.5f32; m * ldy];
                for i in 0..m {
                    for j in 0..n {
                        want[i * ldy + j] +=
                            (0..k).map(|kk| x[i * k + kk] * w[j * k + kk]).sum::<f32>();
                    }
                }
                let mut pf = vec![0f32; packed_len(n, k, nr)];
                pack(&w, n, k, nr, &mut pf);
                let mut ph = vec![f16::ZERO; packed_len(n, k, nr)];
                pack(&wh, n, k, nr, &mut ph);
                for data in [Floats::F32(&pf), Floats::F16(&ph)] {
                    let panels = Panels { data, n, k, nr };
                    assert_eq!(panels.get(n - 1, k - 1), w[n * k - 1]);
                    let mut got = vec![0.5f32; m * ldy];
                    matmul(&x, panels, &mut got, (m, ldy), cpu);
                    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (a - b).abs() < 1e-3 * (1.0 + b.abs()),
                            "{cpu:?} {m}x{k}x{n} at {i}: {a} vs {b}"
                        );
                    }
                    // Input and output slices off every vector alignment (one f32 in).
                    let xu: Vec<f32> = std::iter::once(0.0).chain(x.iter().copied()).collect();
                    let mut gu = vec![0.5f32; m * ldy + 1];
                    matmul(&xu[1..], panels, &mut gu[1..], (m, ldy), cpu);
                    assert_eq!(gu[1..], got[..], "{cpu:?} {m}x{k}x{n} unaligned");
                    // Column slices, as the two-thread split takes them.
                    let mut split = vec![0.5f32; m * ldy];
                    for j in (0..n).step_by(2 * nr) {
                        let width = (2 * nr).min(n - j);
                        matmul(&x, panels.columns(j, width), &mut split[j..], (m, ldy), cpu);
                    }
                    assert_eq!(split, got, "{cpu:?} {m}x{k}x{n} split");
                }
            }
        }
    }
}
