//! Numeric kernels of the encoders: matrix products (`matrixmultiply`'s sgemm for batches over
//! weights as stored, [`skinny`] for a few rows, [`packed`] over weights packed once, [`team`] for
//! two threads on one input), LayerNorm, activations and softmax. Everything works on caller-owned
//! buffers; nothing allocates per call except the weight-conversion scratch, which is reused. The
//! instruction set is a parameter ([`CpuLevel`]), chosen per model.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod amx;
mod cpu;
pub(crate) mod packed;
mod skinny;
mod team;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use amx::{Tiles, tiles_from_panels};
pub(crate) use cpu::{CpuLevel, Isa};
pub(crate) use packed::Panels;
pub(crate) use team::{Team, Weights, team_pays};

use std::borrow::Cow;

use half::f16;

use crate::weights::Mat;

/// Weights in f32 or f16, as slices: what the hand-written kernels read (rows as stored, or
/// panels).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Floats<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

impl<'a> Floats<'a> {
    /// Elements.
    pub(crate) fn len(self) -> usize {
        match self {
            Floats::F32(d) => d.len(),
            Floats::F16(d) => d.len(),
        }
    }

    /// Elements `range`.
    pub(crate) fn slice(self, range: std::ops::Range<usize>) -> Floats<'a> {
        match self {
            Floats::F32(d) => Floats::F32(&d[range]),
            Floats::F16(d) => Floats::F16(&d[range]),
        }
    }

    /// The elements' bytes.
    pub(crate) fn as_bytes(self) -> &'a [u8] {
        match self {
            Floats::F32(d) => bytemuck::cast_slice(d),
            Floats::F16(d) => bytemuck::cast_slice(d),
        }
    }

    /// Element `i` as f32.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn get(self, i: usize) -> f32 {
        match self {
            Floats::F32(d) => d[i],
            Floats::F16(d) => d[i].to_f32(),
        }
    }
}

/// `rows` capped at a kernel's tile height: in the kernels' `match rows { … }` over const-generic
/// tile heights, arms above the height are never taken but must compile.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn cap(rows: usize, mr: usize) -> usize {
    if rows < mr { rows } else { mr }
}

/// Up to this many rows, [`skinny`] kernels beat a packing GEMM (they read each weight once).
const SKINNY_MAX_ROWS: usize = 32;

/// `c[m, n] = beta * c + a[m, k] · b[k, n]`, with explicit (row, column) strides for each operand.
/// Strides let us multiply by transposed weights and by per-head column slices without copies.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
    (rsc, csc): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        k == 0 || last(m, k, rsa, csa) < a.len(),
        "gemm: a too short"
    );
    assert!(
        k == 0 || last(k, n, rsb, csb) < b.len(),
        "gemm: b too short"
    );
    assert!(last(m, n, rsc, csc) < c.len(), "gemm: c too short");
    // SAFETY: the asserts above bound every index sgemm touches; `c` is exclusively borrowed.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            csc as isize,
        );
    }
}

/// The weight matrix of a [`Linear`]: as stored in the file, or rearranged into the column panels
/// of [`packed`] (the copy a model in frequent use makes).
#[derive(Debug, Clone)]
pub(crate) enum Weight<'a> {
    Stored(Mat<'a>),
    Packed(Panels<'a>),
    /// AMX tiles from a prepared copy made for them (models loaded at the AMX level only).
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    Tiles(Tiles<'a>),
}

/// A `torch.nn.Linear`: `y = x · Wᵀ + b`, `W` stored `[out, in]` as in PyTorch checkpoints.
#[derive(Debug)]
pub(crate) struct Linear<'a> {
    pub weight: Weight<'a>,           // [out, in]
    pub bias: Option<Cow<'a, [f32]>>, // [out]
    pub in_dim: usize,
    pub out_dim: usize,
}

/// Rows of a half-precision weight converted per block (scratch ≤ 512 × in_dim floats: 3 MiB at most
/// for MiniLM, whose feed-forward output has in_dim 1,536). Each block is one GEMM call, and each call repacks the activations, so
/// small blocks repeat that work: STS-B with the f16 built-in took 4.98 s at 64 rows, 4.40 s at 256,
/// 4.14 s at 512, 4.31–4.35 s at 1,024–2,048 (hyperfine, 5 runs each).
const CONVERT_ROWS: usize = 512;

impl Linear<'_> {
    /// `y[t, out] = x[t, in] · Wᵀ + b`. `wbuf` is scratch for converting f16/bf16 weights; `team`, if
    /// given, shares products of few rows with a helper thread.
    pub(crate) fn forward<'s>(
        &'s self,
        x: &[f32],
        y: &mut [f32],
        t: usize,
        wbuf: &mut Vec<f32>,
        team: Option<&Team<'s>>,
        cpu: CpuLevel,
    ) {
        let (k, n) = (self.in_dim, self.out_dim);
        let y = &mut y[..t * n];
        let beta = match &self.bias {
            Some(b) => {
                y.chunks_exact_mut(n).for_each(|row| row.copy_from_slice(b));
                1.0
            }
            None => 0.0,
        };
        // Kernels that read the weights where they lie: packed panels at any size, weights as
        // stored for few rows (a packing GEMM would copy all of them for little work).
        let direct = |w: Weights<'s>, y: &mut [f32]| {
            if beta == 0.0 {
                y.fill(0.0);
            }
            match team {
                // Only worth splitting for short inputs and wide products.
                Some(team) if t <= SKINNY_MAX_ROWS && n >= 64 => {
                    team.matmul(x, w, y, (t, k, n), cpu)
                }
                _ => w.matmul(x, y, (t, k, n), cpu),
            }
        };
        match &self.weight {
            Weight::Packed(p) => direct(Weights::Packed(*p), y),
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Weight::Tiles(tl) => direct(Weights::Tiles(*tl), y),
            Weight::Stored(Mat::F32(w)) if t <= SKINNY_MAX_ROWS => {
                direct(Weights::Rows(Floats::F32(w)), y)
            }
            Weight::Stored(Mat::F16(w)) if t <= SKINNY_MAX_ROWS => {
                direct(Weights::Rows(Floats::F16(w)), y)
            }
            Weight::Stored(Mat::F32(w)) => {
                gemm(t, k, n, 1.0, x, (k, 1), w, (1, k), beta, y, (n, 1))
            }
            // Half weights: convert a block of output rows to f32, multiply, move on. At most one
            // block of one matrix exists in f32, so a half model stays half-sized in memory.
            Weight::Stored(half) => {
                for j0 in (0..n).step_by(CONVERT_ROWS) {
                    let rows = CONVERT_ROWS.min(n - j0);
                    wbuf.resize(rows * k, 0.0);
                    for r in 0..rows {
                        half.row_into(j0 + r, k, &mut wbuf[r * k..(r + 1) * k]);
                    }
                    gemm(
                        t,
                        k,
                        rows,
                        1.0,
                        x,
                        (k, 1),
                        wbuf,
                        (1, k),
                        beta,
                        &mut y[j0..],
                        (n, 1),
                    );
                }
            }
        }
    }
}

/// LayerNorm over the last dimension, in place: `x = (x - mean) / sqrt(var + eps) * gamma + beta`.
#[derive(Debug)]
pub(crate) struct LayerNorm<'a> {
    pub weight: Cow<'a, [f32]>, // [hidden]
    pub bias: Cow<'a, [f32]>,   // [hidden]
    pub eps: f32,
}

impl LayerNorm<'_> {
    /// Normalizes each row of `x` (`[rows, hidden]`) in place.
    pub(crate) fn forward(&self, x: &mut [f32]) {
        let h = self.weight.len();
        for row in x.chunks_exact_mut(h) {
            let mean = lane_sum(row, |v| v) / h as f32;
            let var = lane_sum(row, |v| (v - mean) * (v - mean)) / h as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(self.weight.iter()).zip(self.bias.iter()) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }

    /// `x = LayerNorm(x + residual)`: the residual add fused into the same pass.
    pub(crate) fn forward_residual(&self, x: &mut [f32], residual: &[f32]) {
        x.iter_mut().zip(residual).for_each(|(a, r)| *a += r);
        self.forward(x);
    }
}

/// `Σ f(x)` in 16 independent partial sums, so the compiler can keep them in vector registers: a
/// plain `.sum()` of floats is one serial chain of dependent adds (LayerNorm was 3.9 % of a
/// batched run with it).
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Feed-forward activations named in HF configs (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// Exact GELU, `0.5·x·(1 + erf(x/√2))` (HF "gelu").
    Gelu,
    /// The tanh approximation (HF "gelu_new", "gelu_pytorch_tanh", "gelu_fast").
    GeluTanh,
    Relu,
    Silu,
    Tanh,
    Identity,
}

impl Activation {
    /// Parses an HF `hidden_act` value.
    pub(crate) fn from_hf(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            _ => return None,
        })
    }

    /// Parses a sentence-transformers Dense `activation_function` (a torch class path).
    pub(crate) fn from_torch(path: &str) -> Option<Self> {
        Some(match path.rsplit('.').next()? {
            "Identity" => Activation::Identity,
            "Tanh" => Activation::Tanh,
            "ReLU" => Activation::Relu,
            "GELU" => Activation::Gelu,
            "SiLU" => Activation::Silu,
            _ => return None,
        })
    }

    /// Applies the activation in place.
    pub(crate) fn apply(self, x: &mut [f32], cpu: CpuLevel) {
        match self {
            Activation::Gelu => gelu(x, cpu),
            Activation::GeluTanh => x.iter_mut().for_each(|v| {
                let u = 0.797_884_6 * (*v + 0.044715 * *v * *v * *v);
                *v = 0.5 * *v * (1.0 + u.tanh());
            }),
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Silu => x.iter_mut().for_each(|v| *v /= 1.0 + (-*v).exp()),
            Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
            Activation::Identity => {}
        }
    }
}

/// `out += w · row` with `row` in f16 (Model2Vec's table rows): widened 8 at a time in registers
/// (F16C) instead of through a temporary f32 copy.
pub(crate) fn axpy_f16(out: &mut [f32], row: &[half::f16], w: f32, cpu: CpuLevel) {
    #[inline(always)]
    fn portable(out: &mut [f32], row: &[half::f16], w: f32) {
        out.iter_mut()
            .zip(row)
            .for_each(|(o, v)| *o += w * v.to_f32());
    }
    #[cfg(target_arch = "x86_64")]
    {
        /// # Safety
        /// The CPU must have AVX2, FMA and F16C.
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn avx2(out: &mut [f32], row: &[half::f16], w: f32) {
            use std::arch::x86_64::*;
            let n = out.len().min(row.len());
            let n8 = n - n % 8;
            // SAFETY: every access is below n8 ≤ both lengths; loads/stores are unaligned.
            unsafe {
                let wv = _mm256_set1_ps(w);
                let mut i = 0;
                while i < n8 {
                    let h = _mm_loadu_si128(row.as_ptr().add(i) as *const __m128i);
                    let o = _mm256_loadu_ps(out.as_ptr().add(i));
                    _mm256_storeu_ps(
                        out.as_mut_ptr().add(i),
                        _mm256_fmadd_ps(_mm256_cvtph_ps(h), wv, o),
                    );
                    i += 8;
                }
            }
            portable(&mut out[n8..n], &row[n8..n], w);
        }
        if cpu.has_avx2() {
            // SAFETY: every level above Portable has AVX2, FMA and F16C (checked at load).
            return unsafe { avx2(out, row, w) };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if cpu.isa() == Isa::Simd128 {
        return simd128_axpy_f16(out, row, w);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    portable(out, row, w)
}

/// [`axpy_f16`] in wasm simd128, 8 values at a time: the same bits as the portable loop (a
/// multiply then an add; the widening is exact), without `half`'s one-value-at-a-time software
/// conversion, which made Model2Vec in Node 2.5× slower than model2vec-rs's wasm build.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn simd128_axpy_f16(out: &mut [f32], row: &[half::f16], w: f32) {
    use std::arch::wasm32::*;
    /// Four halves (zero-extended to 32 bits) as f32, as `half::f16::to_f32` gives them: finite
    /// values by moving the exponent and mantissa into place and scaling by 2^112 (exact,
    /// subnormals included: wasm has no flush-to-zero); infinities and NaNs get the all-ones
    /// exponent; then the sign.
    #[inline(always)]
    fn widen(h: v128) -> v128 {
        let magnitude = v128_and(h, u32x4_splat(0x7fff));
        let shifted = u32x4_shl(magnitude, 13);
        let finite = f32x4_mul(shifted, f32x4_splat(f32::from_bits(0x7780_0000))); // 2^112
        // NaNs come out quiet, as `half` makes them.
        let quiet = v128_and(
            u32x4_gt(magnitude, u32x4_splat(0x7c00)),
            u32x4_splat(0x0040_0000),
        );
        let special = v128_or(v128_or(shifted, u32x4_splat(0x7f80_0000)), quiet);
        let is_special = u32x4_ge(magnitude, u32x4_splat(0x7c00));
        let sign = u32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
        v128_or(v128_bitselect(special, finite, is_special), sign)
    }
    let n = out.len().min(row.len());
    let n8 = n - n % 8;
    let wv = f32x4_splat(w);
    for (o, h) in out[..n8].chunks_exact_mut(8).zip(row[..n8].chunks_exact(8)) {
        // SAFETY: `h` holds 8 halves (16 bytes) and `o` 8 f32 (two v128); wasm loads and stores
        // need no alignment.
        unsafe {
            let halves = v128_load(h.as_ptr() as *const v128);
            let (o0, o1) = (
                o.as_mut_ptr() as *mut v128,
                o.as_mut_ptr().add(4) as *mut v128,
            );
            let lo = widen(u32x4_extend_low_u16x8(halves));
            let hi = widen(u32x4_extend_high_u16x8(halves));
            v128_store(o0, f32x4_add(v128_load(o0), f32x4_mul(wv, lo)));
            v128_store(o1, f32x4_add(v128_load(o1), f32x4_mul(wv, hi)));
        }
    }
    out[n8..n]
        .iter_mut()
        .zip(&row[n8..n])
        .for_each(|(o, v)| *o += w * v.to_f32());
}

/// Hints the CPU to start loading `data` into cache (no effect on results; a no-op off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(data);
        let p = data.as_ptr() as *const i8;
        for off in (0..bytes).step_by(64) {
            // SAFETY: prefetching never faults and only reads addresses inside `data`.
            unsafe { std::arch::x86_64::_mm_prefetch(p.add(off), std::arch::x86_64::_MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Exact GELU over a slice. The loop is compiled twice: with AVX2+FMA (picked at run time, so the
/// erf polynomial becomes vector FMAs) and for the baseline CPU.
fn gelu(x: &mut [f32], cpu: CpuLevel) {
    #[inline(always)]
    fn body(x: &mut [f32]) {
        x.iter_mut()
            .for_each(|v| *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2)));
    }
    #[cfg(target_arch = "x86_64")]
    {
        /// # Safety
        /// The CPU must have AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn body_avx2(x: &mut [f32]) {
            body(x)
        }
        if cpu.has_avx2() {
            // SAFETY: AVX2 and FMA were detected (every level above Portable has them).
            return unsafe { body_avx2(x) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = cpu;
    body(x)
}

/// erf for f32, branch-free so loops over it vectorize: the rational approximation used by Eigen and
/// XLA (`x·P(x²)/Q(x²)` on x clamped to [-4, 4], where erf is ±1 in f32). Max abs error ≈ 2e-7,
/// checked against libm in the tests below.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = madd(x2, -2.726_142_3e-10, 2.770_681_4e-8);
    p = madd(x2, p, -2.101_024e-6);
    p = madd(x2, p, -5.692_506_4e-5);
    p = madd(x2, p, -7.349_906_3e-4);
    p = madd(x2, p, -2.954_6e-3);
    p = madd(x2, p, -1.609_603_3e-2);
    p *= x;
    let mut q = madd(x2, -1.456_607_2e-5, -2.133_740_6e-4);
    q = madd(x2, q, -1.682_827e-3);
    q = madd(x2, q, -7.373_329e-3);
    q = madd(x2, q, -1.426_474e-2);
    p / q
}

/// `a · b + c`: fused where the target has the instruction (x86-64 callers enable FMA); wasm has
/// none, and `f32::mul_add` there is a software routine (12 % of a MiniLM batch in Node).
#[inline(always)]
fn madd(a: f32, b: f32, c: f32) -> f32 {
    if cfg!(target_arch = "wasm32") {
        a * b + c
    } else {
        a.mul_add(b, c)
    }
}

/// Softmax of each row of `x` (`[rows, cols]`), in place.
pub(crate) fn softmax_rows(x: &mut [f32], cols: usize) {
    for row in x.chunks_exact_mut(cols) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0f64;
        for i in -80_000..=80_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((erf(x) as f64 - libm::erf(x as f64)).abs());
        }
        assert!(worst < 5e-7, "max |erf - libm::erf| = {worst}");
    }

    #[test]
    fn gemm_with_transposed_b() {
        // a = [[1,2],[3,4]], w = [[1,0],[0,1],[1,1]] (out=3, in=2): y = a·wᵀ
        let a = [1.0, 2.0, 3.0, 4.0];
        let w = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut y = [0.0; 6];
        gemm(2, 2, 3, 1.0, &a, (2, 1), &w, (1, 2), 0.0, &mut y, (3, 1));
        assert_eq!(y, [1.0, 2.0, 3.0, 3.0, 4.0, 7.0]);
    }

    #[test]
    fn half_weights_match_f32() {
        let (n, k) = (130, 7);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
            .collect();
        let wh: Vec<half::f16> = w.iter().map(|&v| half::f16::from_f32(v)).collect();
        let x: Vec<f32> = (0..3 * k).map(|i| i as f32 * 0.25 - 1.0).collect();
        let bias: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let lin = |weight| Linear {
            weight: Weight::Stored(weight),
            bias: Some(Cow::Borrowed(&bias[..])),
            in_dim: k,
            out_dim: n,
        };
        let (mut y1, mut y2, mut buf) = (vec![0.0; 3 * n], vec![0.0; 3 * n], Vec::new());
        let cpu = CpuLevel::best();
        lin(Mat::F32(Cow::Borrowed(&w))).forward(&x, &mut y1, 3, &mut buf, None, cpu);
        lin(Mat::F16(Cow::Borrowed(&wh))).forward(&x, &mut y2, 3, &mut buf, None, cpu);
        // These weights are exact in f16, so the results must agree to rounding.
        for (a, b) in y1.iter().zip(&y2) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn axpy_f16_matches_scalar() {
        let row: Vec<half::f16> = (0..37)
            .map(|i| half::f16::from_f32(i as f32 * 0.37 - 5.0))
            .collect();
        let got: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let want: Vec<f32> = got
            .iter()
            .zip(&row)
            .map(|(o, v)| o + 0.5 * v.to_f32())
            .collect();
        for cpu in CpuLevel::available() {
            let mut got = got.clone();
            axpy_f16(&mut got, &row, 0.5, cpu);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{cpu:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut x = [1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0];
        softmax_rows(&mut x, 3);
        assert!((x[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((x[3] - 1.0 / 3.0).abs() < 1e-6);
    }
}
