//! Matrix products on AMX tiles (Intel Xeon 4th generation and later): `y[m, n] += x[m, k] · Wᵀ`
//! over the same packed panels as [`packed`](super::packed), at up to ~5× the f32 FMA peak.
//!
//! The tiles multiply bf16 (8 significant bits) and sum in f32: one product alone would cost the
//! vectors their fidelity. So each operand is split in two, `v = hi + lo` (both bf16, round to
//! nearest even: ~16 significant bits together — an f16 weight exactly), and three tile products
//! are summed, `hi·hi + lo·hi + hi·lo` (the dropped `lo·lo` is ~2⁻¹⁶ of the product). Per output
//! the order is fixed — k blocks of 32 in order, the three products in that order inside each —
//! and a row's result never involves other rows, so a text's vector keeps its bits in any batch,
//! as with the FMA kernels (it differs from theirs in the last bits).
//!
//! Per call: the weights' panels are widened/split into tile layout (pairs of `k` interleaved per
//! column, 16 columns × 32 `k` per 1 KiB tile) into a scratch of the same bytes as f32 weights —
//! unless they come as [`Tiles`] already (an f32 model's prepared copy at this level); then each
//! block of rows is split into `hi`/`lo` copies in tiles (rows padded to 16, `k` to 32; ≤ 1 MiB,
//! kept in L2) and meets every panel, 32 rows × 32 columns per step, or 16 rows × two panels
//! (tiles 0–3 accumulate, 4–5 hold activations, 6–7 weights). Scratch is per thread and reused.

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::sync::OnceLock;

use super::packed::PANEL;
use super::{Floats, Panels};

/// Whether this CPU has AMX-BF16 tiles (with AVX-512F/BW/BF16 for the splits) and Linux lets this
/// process use them (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, asked once).
pub(crate) fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        let l = __cpuid_count(7, 0);
        let (bf16, tile) = (l.edx & (1 << 22) != 0, l.edx & (1 << 24) != 0);
        if !(bf16
            && tile
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512bf16"))
        {
            return false;
        }
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with these arguments only changes which state components this process
        // may use; it reads and writes no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    })
}

/// 64 bytes: one tile row, one cache line (tile loads of aligned rows are not split).
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
struct Line([u16; 32]);

// SAFETY: 64 bytes of u16 with no padding (size = alignment = 64); any bits are a valid value.
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: as above; `Copy` and `'static`.
unsafe impl bytemuck::Pod for Line {}

/// One thread's buffers, grown as needed and reused by every call on the thread.
#[derive(Default)]
struct Scratch {
    a_hi: Vec<Line>, // [block rows / 16, kp / 32, 16 rows] bf16: 16 × 32 tiles, 1 KiB each
    a_lo: Vec<Line>, // same
    b: Vec<Line>, // [panels (or 2), kp / 32, 4 tiles (hi 0-15, hi 16-31, lo 0-15, lo 16-31), 16 lines]
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Lines per k block of one panel in `Scratch::b`: 4 tiles of 16.
const BLOCK_LINES: usize = 64;

/// `y[i * ldy + j] += Σ_kk x[i * k + kk] · W[j, kk]` for `i < m`, `j < w.n`, splitting the
/// panels per call.
///
/// # Safety
/// [`available`] returned true; `x` holds `m · w.k` values, `y` `m` rows of stride `ldy ≥ w.n`,
/// the panels `packed_len(w.n, w.k, PANEL)` values (`packed::matmul` asserts all three).
pub(crate) unsafe fn matmul(x: &[f32], w: Panels<'_>, y: &mut [f32], m: usize, ldy: usize) {
    // SAFETY: forwarded.
    unsafe { run(x, Source::Split(w), (w.n, w.k), y, m, ldy) }
}

/// [`matmul`] over weights already in tile layout (a prepared copy made for this level).
///
/// # Safety
/// As [`matmul`]'s, with `w` made by [`Tiles::new`] (its sizes checked there).
pub(crate) unsafe fn matmul_tiles(x: &[f32], w: Tiles<'_>, y: &mut [f32], m: usize, ldy: usize) {
    assert!(x.len() >= m * w.k && ldy >= w.n && (m == 0 || y.len() >= (m - 1) * ldy + w.n));
    // SAFETY: forwarded; the assert bounds `x` and `y`.
    unsafe { run(x, Source::Ready(w), (w.n, w.k), y, m, ldy) }
}

/// Where a product's weight tiles come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Panels, split per call.
    Split(Panels<'a>),
    /// Tiles made once.
    Ready(Tiles<'a>),
}

/// The body of [`matmul`] and [`matmul_tiles`].
///
/// # Safety
/// As theirs.
unsafe fn run(
    x: &[f32],
    w: Source<'_>,
    (n, k): (usize, usize),
    y: &mut [f32],
    m: usize,
    ldy: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let kp = k.div_ceil(32) * 32;
    let row_lines = kp / 32;
    let panels = n.div_ceil(PANEL);
    let panel_lines = row_lines * BLOCK_LINES;
    // Rows per block: their hi + lo copies (≤ 1 MiB) stay in L2 while every panel passes.
    let block = ((1 << 20) / (kp * 4)).clamp(32, 512) / 32 * 32;
    SCRATCH.with_borrow_mut(|s| {
        grow(&mut s.a_hi, block.min(m.div_ceil(16) * 16) * row_lines);
        grow(&mut s.a_lo, block.min(m.div_ceil(16) * 16) * row_lines);
        // Panels are split into scratch: one row block meets each panel once, so a panel is
        // split just before its use into one panel's room; several blocks share the whole
        // matrix, split once.
        let whole = m > block;
        if let Source::Split(_) = w {
            grow(&mut s.b, if whole { panels } else { 2 } * panel_lines);
        }
        // SAFETY: the CPU has AVX-512F/BW/BF16 (`available`); the buffers were just sized for
        // `block` rows of `kp` and `panels` panels of `kp`; the caller bounds `x`, `y` and `w`.
        unsafe {
            // Every call: other code on this thread (oneDNN under PyTorch, in a Python process
            // that has both) may have loaded another tile configuration since the last one.
            configure();
            if let Source::Split(w) = w {
                for p in (0..panels).filter(|_| whole) {
                    let dst = &mut s.b[p * panel_lines..][..panel_lines];
                    split_panel(w.data, p * k * PANEL, k, kp, dst);
                }
            }
            for i0 in (0..m).step_by(block) {
                let rows = block.min(m - i0);
                let padded = rows.div_ceil(16) * 16;
                let (hi, lo) = (&mut s.a_hi, &mut s.a_lo);
                split_rows(&x[i0 * k..(i0 + rows) * k], rows, k, padded, kp, hi, lo);
                // Panels two at a time: a step of 16 rows then keeps four accumulators busy
                // (one row tile × four column tiles) instead of two, which left the tiles
                // waiting on each product's latency for a single sentence.
                for p in (0..panels).step_by(2) {
                    let pair = (p + 1 < panels) as usize + 1;
                    let b = match w {
                        Source::Ready(t) => t.data[p * panel_lines..].as_ptr(),
                        Source::Split(w) if !whole => {
                            for q in 0..pair {
                                let dst = &mut s.b[q * panel_lines..][..panel_lines];
                                split_panel(w.data, (p + q) * k * PANEL, k, kp, dst);
                            }
                            s.b.as_ptr()
                        }
                        Source::Split(_) => s.b[p * panel_lines..].as_ptr(),
                    } as *const u16;
                    // The pair's second panel (read only when there is one).
                    let next = b.wrapping_add(panel_lines * 32);
                    let mut r0 = 0;
                    while r0 < padded {
                        let a = (r0 * row_lines, s.a_hi.as_ptr(), s.a_lo.as_ptr());
                        // (panel, tile (row tile · 2 + column tile), sums) of this step.
                        let mut c = [[[0f32; 256]; 4]; 2];
                        let step = if r0 + 32 <= padded {
                            tiles(a, b, kp, true, &mut c[0]);
                            if pair == 2 {
                                tiles(a, next, kp, true, &mut c[1]);
                            }
                            32
                        } else {
                            if pair == 2 {
                                tiles_wide(a, (b, next), kp, &mut c);
                            } else {
                                tiles(a, b, kp, false, &mut c[0]);
                            }
                            16
                        };
                        for (q, sums) in c.iter().enumerate().take(pair) {
                            let cols = (n - (p + q) * PANEL).min(PANEL);
                            for (t, tile) in sums.iter().enumerate().take(step / 8) {
                                let (rt, c0) = (t / 2, (t % 2) * 16);
                                if c0 >= cols {
                                    continue;
                                }
                                for r in 0..16.min(rows.saturating_sub(r0 + rt * 16)) {
                                    let i = i0 + r0 + rt * 16 + r;
                                    let at = i * ldy + (p + q) * PANEL + c0;
                                    add_row(
                                        &mut y[at..][..(cols - c0).min(16)],
                                        &tile[r * 16..][..16],
                                    );
                                }
                            }
                        }
                        r0 += step;
                    }
                }
            }
        }
    });
}

/// A `[n, k]` weight in tile layout: per panel of 32 outputs, per k block of 32, the four tiles
/// [`matmul`] splits panels into (hi 0–15, hi 16–31, lo 0–15, lo 16–31). The same bytes as f32.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tiles<'a> {
    data: &'a [Line],
    pub n: usize,
    pub k: usize,
}

impl<'a> Tiles<'a> {
    /// Lines (64 bytes) the tiles of `[n, k]` take.
    pub(crate) fn lines(n: usize, k: usize) -> usize {
        n.div_ceil(PANEL) * k.div_ceil(32) * BLOCK_LINES
    }

    /// Tiles of `[n, k]` over `bytes` (64-byte aligned, [`lines`](Self::lines) · 64 long, as
    /// [`split_matrix`] writes them); `None` when they are not.
    pub(crate) fn new(bytes: &'a [u8], n: usize, k: usize) -> Option<Self> {
        let data: &[Line] = bytemuck::try_cast_slice(bytes).ok()?;
        (data.len() == Self::lines(n, k)).then_some(Tiles { data, n, k })
    }

    /// The bytes.
    pub(crate) fn as_bytes(self) -> &'a [u8] {
        bytemuck::cast_slice(self.data)
    }

    /// Outputs `j .. j + width` (`j` a multiple of 32).
    pub(crate) fn columns(self, j: usize, width: usize) -> Tiles<'a> {
        debug_assert!(j.is_multiple_of(PANEL) && j + width <= self.n);
        let per_panel = self.k.div_ceil(32) * BLOCK_LINES;
        let from = j / PANEL * per_panel;
        Tiles {
            data: &self.data[from..from + width.div_ceil(PANEL) * per_panel],
            n: width,
            ..self
        }
    }
}

/// The tiles of an `[n, k]` matrix given as f32 panels (bytes, see `packed`), appended to `out`:
/// what [`matmul`] splits per call, made once (a prepared copy's writer).
///
/// # Safety
/// [`available`] returned true.
pub(crate) unsafe fn tiles_from_panels(panels: &[u8], n: usize, k: usize, out: &mut Vec<u8>) {
    let data: Vec<f32> = bytemuck::pod_collect_to_vec(panels);
    // SAFETY: forwarded.
    let lines = unsafe { tiles_of(&data, n, k) };
    out.extend_from_slice(bytemuck::cast_slice(&lines));
}

/// The tiles of f32 panels of `[n, k]`, in a buffer of their own.
///
/// # Safety
/// [`available`] returned true.
unsafe fn tiles_of(panels: &[f32], n: usize, k: usize) -> Vec<Line> {
    let mut lines = vec![Line([0; 32]); Tiles::lines(n, k)];
    let w = Panels {
        data: Floats::F32(panels),
        n,
        k,
        nr: PANEL,
    };
    // SAFETY: forwarded.
    unsafe { split_matrix(w, &mut lines) };
    lines
}

/// Tiles in their own buffer (tests).
#[cfg(test)]
pub(crate) struct OwnedTiles(Vec<Line>, usize, usize);

#[cfg(test)]
impl OwnedTiles {
    /// The tiles of f32 panels of `[n, k]`; panics where AMX is not [`available`].
    pub(crate) fn from_panels(panels: &[f32], n: usize, k: usize) -> Self {
        assert!(available());
        // SAFETY: AMX is available (asserted).
        OwnedTiles(unsafe { tiles_of(panels, n, k) }, n, k)
    }

    pub(crate) fn view(&self) -> Tiles<'_> {
        Tiles {
            data: &self.0,
            n: self.1,
            k: self.2,
        }
    }
}

/// The tiles of `w` (panels of `[n, k]`) into `out` ([`Tiles::lines`] lines).
///
/// # Safety
/// [`available`] returned true.
unsafe fn split_matrix(w: Panels<'_>, out: &mut [Line]) {
    let (n, k) = (w.n, w.k);
    let kp = k.div_ceil(32) * 32;
    assert_eq!(out.len(), Tiles::lines(n, k));
    assert!(w.data.len() >= crate::ops::packed::packed_len(n, k, PANEL));
    let panel_lines = kp / 32 * BLOCK_LINES;
    for (p, dst) in out.chunks_exact_mut(panel_lines).enumerate() {
        // SAFETY: AVX-512F/BW/BF16 are there (caller: `available`); panel `p` holds `k · PANEL`
        // values (asserted) and `dst` one panel's lines.
        unsafe { split_panel(w.data, p * k * PANEL, k, kp, dst) };
    }
}

/// `out += sums[..out.len()]` (`out` ≤ 16 values) in one masked AVX-512 add.
#[target_feature(enable = "avx512f")]
fn add_row(out: &mut [f32], sums: &[f32]) {
    assert!(out.len() <= 16 && sums.len() == 16);
    let mask: __mmask16 = if out.len() == 16 {
        !0
    } else {
        (1 << out.len()) - 1
    };
    // SAFETY: masked loads and store touch only the first `out.len()` values of `out`.
    unsafe {
        let o = _mm512_maskz_loadu_ps(mask, out.as_ptr());
        let v = _mm512_add_ps(o, _mm512_loadu_ps(sums.as_ptr()));
        _mm512_mask_storeu_ps(out.as_mut_ptr(), mask, v);
    }
}

/// At least `lines` lines, with a quarter more: sizes creep up call by call (a 1,536-wide
/// product after a 384-wide one, longer batches), and each exact regrowth was a fresh mapping
/// (101 `madvise` calls and 300 page faults in a one-sentence run).
fn grow(v: &mut Vec<Line>, lines: usize) {
    if v.len() < lines {
        v.resize(lines + lines / 4, Line([0; 32]));
    }
}

/// Loads palette 1 with all eight tiles at 16 rows × 64 bytes.
///
/// # Safety
/// [`available`] returned true.
unsafe fn configure() {
    #[repr(C, align(64))]
    struct Config([u8; 64]);
    let mut c = Config([0; 64]);
    c.0[0] = 1; // palette
    for t in 0..8 {
        c.0[16 + 2 * t] = 64; // bytes per row (u16 little-endian)
        c.0[48 + t] = 16; // rows
    }
    // SAFETY: a 64-byte configuration of palette 1 within its limits; AMX is usable (caller).
    unsafe { asm!("ldtilecfg [{0}]", in(reg) c.0.as_ptr(), options(nostack, readonly)) };
}

/// `v = hi + lo`, both bf16 rounded to nearest even (`v − hi` is exact in f32).
#[inline(always)]
unsafe fn split(v: __m512) -> (__m256bh, __m256bh) {
    // SAFETY: AVX-512F/BF16 arithmetic (caller's target features).
    unsafe {
        let hi = _mm512_cvtneps_pbh(v);
        (
            hi,
            _mm512_cvtneps_pbh(_mm512_sub_ps(v, _mm512_cvtpbh_ps(hi))),
        )
    }
}

/// `rows` rows of `x` (`[rows, k]`) split into `hi`/`lo` tiles of 16 rows × 32 (`kp` wide); rows `rows..padded` and
/// columns `k..kp` zero.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn split_rows(
    x: &[f32],
    rows: usize,
    k: usize,
    padded: usize,
    kp: usize,
    hi: &mut [Line],
    lo: &mut [Line],
) {
    let (hi, lo) = (
        hi.as_mut_ptr() as *mut __m256bh,
        lo.as_mut_ptr() as *mut __m256bh,
    );
    // SAFETY: rows `< rows` read `k` values of `x` (masked past `k`); writes stay in
    // `padded · kp` values of each buffer (sized by the caller).
    unsafe {
        for i in 0..padded {
            for c in (0..kp).step_by(16) {
                // Tile-blocked: 16 rows × 32 columns contiguous (1 KiB), so a tile load reads
                // 16 consecutive lines; row-major rows 3 KiB apart (k = 1,536) fell into 4 of L1's
                // 64 sets and evicted each other.
                let at = ((i / 16 * (kp / 32) + c / 32) * 16 + i % 16) * 2 + (c % 32) / 16;
                let v = if i < rows && c < k {
                    let left = k - c;
                    let mask: __mmask16 = if left >= 16 { !0 } else { (1 << left) - 1 };
                    _mm512_maskz_loadu_ps(mask, x.as_ptr().add(i * k + c))
                } else {
                    _mm512_setzero_ps()
                };
                let (h, l) = split(v);
                hi.add(at).write(h);
                lo.add(at).write(l);
            }
        }
    }
}

/// Sixteen weights of a panel row (`at` its first element), widened to f32.
#[inline(always)]
unsafe fn load16(w: Floats<'_>, at: usize) -> __m512 {
    // SAFETY: `at + 16` elements exist (caller); unaligned loads.
    unsafe {
        match w {
            Floats::F32(d) => _mm512_loadu_ps(d.as_ptr().add(at)),
            Floats::F16(d) => {
                _mm512_cvtph_ps(_mm256_loadu_si256(d.as_ptr().add(at) as *const __m256i))
            }
        }
    }
}

/// One panel (`k` rows of `PANEL` weights from element `start`) into tile layout: per k block of
/// 32, tiles hi(cols 0–15), hi(16–31), lo(0–15), lo(16–31); tile row `r` holds, for each of its
/// 16 columns, the weights of `k = 2r` and `2r + 1` side by side (what TDPBF16PS multiplies).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn split_panel(w: Floats<'_>, start: usize, k: usize, kp: usize, dst: &mut [Line]) {
    let out = dst.as_mut_ptr() as *mut __m512i;
    // Words of `[row kk | row kk + 1]` (16 bf16 each) reordered into pairs: column c's `kk` at
    // word 2c, its `kk + 1` at 2c + 1.
    let pairs = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
        19, 3, 18, 2, 17, 1, 16, 0,
    );
    // SAFETY: panel rows `< k` hold PANEL elements from `start + kk · PANEL` (the caller's
    // panels); `dst` holds `kp / 32` blocks of 64 lines.
    unsafe {
        for kk in (0..kp).step_by(2) {
            let (block, r) = (kk / 32, (kk % 32) / 2);
            for half in 0..2 {
                let row = |kk: usize| {
                    if kk < k {
                        load16(w, start + kk * PANEL + half * 16)
                    } else {
                        _mm512_setzero_ps()
                    }
                };
                let (v0, v1) = (row(kk), row(kk + 1));
                // Both rows at once, as `split` does one: hi rounded, the exact rest rounded.
                let hi = _mm512_castph_si512_bits(_mm512_cvtne2ps_pbh(v1, v0));
                let wide = |h: __m256i| {
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
                };
                let h0 = wide(_mm512_castsi512_si256(hi));
                let h1 = wide(_mm512_extracti64x4_epi64::<1>(hi));
                let lo = _mm512_cvtne2ps_pbh(_mm512_sub_ps(v1, h1), _mm512_sub_ps(v0, h0));
                let line = |tile: usize| out.add(block * BLOCK_LINES + tile * 16 + r);
                _mm512_store_si512(line(half), _mm512_permutexvar_epi16(pairs, hi));
                _mm512_store_si512(
                    line(2 + half),
                    _mm512_permutexvar_epi16(pairs, _mm512_castph_si512_bits(lo)),
                );
            }
        }
    }
}

/// A vector of 32 bf16 as integer lanes (the same bits).
#[inline(always)]
fn _mm512_castph_si512_bits(v: __m512bh) -> __m512i {
    // SAFETY: both are 512-bit vectors; every bit pattern is valid in each.
    unsafe { std::mem::transmute::<__m512bh, __m512i>(v) }
}

/// Zeroes the accumulator tiles 0–3.
///
/// # Safety
/// The tiles are configured ([`configure`]) on this thread.
#[inline(always)]
unsafe fn zero_sums() {
    // SAFETY: register-only tile instructions on a configured thread (caller).
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        )
    };
}

/// Stores accumulator tile `t` (16 rows of 16 f32) at `to[t]`, rows 64 bytes apart.
///
/// # Safety
/// The tiles are configured on this thread; each `to[t]` is writable for 1 KiB.
#[inline(always)]
unsafe fn store_sums(to: [*mut u8; 4]) {
    // SAFETY: 16 rows × 64 bytes from each address (caller).
    unsafe {
        asm!(
            "tilestored [{c0} + {s}*1], tmm0",
            "tilestored [{c1} + {s}*1], tmm1",
            "tilestored [{c2} + {s}*1], tmm2",
            "tilestored [{c3} + {s}*1], tmm3",
            c0 = in(reg) to[0], c1 = in(reg) to[1], c2 = in(reg) to[2], c3 = in(reg) to[3],
            s = in(reg) 64usize,
            options(nostack),
        )
    };
}

/// 16 rows × two panels (64 columns): `c[q][t]` (panel `q`, column tile `t`) =
/// `Σ_blocks hi·hi + lo·hi + hi·lo`, each output summed in the same order as [`tiles`] sums it. Four
/// independent accumulators (tiles 0–3), the activations' hi and lo in tiles 4 and 5.
///
/// # Safety
/// As [`tiles`]' with `two` false, for each of `b.0` and `b.1`.
#[inline(always)]
unsafe fn tiles_wide(
    (first, hi, lo): (usize, *const Line, *const Line),
    b: (*const u16, *const u16),
    kp: usize,
    c: &mut [[[f32; 256]; 4]; 2],
) {
    let s = 64usize; // bytes per tile row (activations tile-blocked, weights tiles)
    // SAFETY: as `tiles`: 16 rows of hi/lo from `first`, four tiles of each block of both panels.
    unsafe {
        zero_sums();
        for blk in 0..kp / 32 {
            let ah = hi.add(first + blk * 16) as *const u8;
            let al = lo.add(first + blk * 16) as *const u8;
            let p = b.0.add(blk * BLOCK_LINES * 32) as *const u8;
            let q = b.1.add(blk * BLOCK_LINES * 32) as *const u8;
            asm!(
                "tileloadd tmm4, [{ah} + {s}*1]",
                "tileloadd tmm6, [{p} + {s}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tileloadd tmm7, [{p} + {s}*1 + 1024]",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tileloadd tmm6, [{q} + {s}*1]",
                "tdpbf16ps tmm2, tmm4, tmm6",
                "tileloadd tmm7, [{q} + {s}*1 + 1024]",
                "tdpbf16ps tmm3, tmm4, tmm7",
                "tileloadd tmm5, [{al} + {s}*1]",
                "tileloadd tmm6, [{p} + {s}*1]",
                "tdpbf16ps tmm0, tmm5, tmm6",
                "tileloadd tmm7, [{p} + {s}*1 + 1024]",
                "tdpbf16ps tmm1, tmm5, tmm7",
                "tileloadd tmm6, [{q} + {s}*1]",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tileloadd tmm7, [{q} + {s}*1 + 1024]",
                "tdpbf16ps tmm3, tmm5, tmm7",
                "tileloadd tmm6, [{p} + {s}*1 + 2048]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tileloadd tmm7, [{p} + {s}*1 + 3072]",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tileloadd tmm6, [{q} + {s}*1 + 2048]",
                "tdpbf16ps tmm2, tmm4, tmm6",
                "tileloadd tmm7, [{q} + {s}*1 + 3072]",
                "tdpbf16ps tmm3, tmm4, tmm7",
                ah = in(reg) ah, al = in(reg) al, p = in(reg) p, q = in(reg) q, s = in(reg) s,
                options(nostack, readonly),
            );
        }
        let (o, u) = (c[0].as_mut_ptr() as *mut u8, c[1].as_mut_ptr() as *mut u8);
        store_sums([o, o.add(1024), u, u.add(1024)]);
    }
}

/// 32 rows (or 16 if `!two`) × 32 columns: `c[t]` = tile `t` (rows 16·(t/2).., columns
/// 16·(t%2)..) of `Σ_blocks hi·hi + lo·hi + hi·lo`.
///
/// # Safety
/// The tiles are configured ([`configure`]) on this thread; `a = (first line, hi, lo)` with
/// `1 + two` groups of 16 rows (`kp / 32` tiles of 16 lines each) from the first; `b` one panel's
/// `kp / 32` blocks.
#[inline(always)]
unsafe fn tiles(
    (first, hi, lo): (usize, *const Line, *const Line),
    b: *const u16,
    kp: usize,
    two: bool,
    c: &mut [[f32; 256]; 4],
) {
    let sa = 64usize; // bytes per activation tile row (tile-blocked)
    let sb = 64usize; // bytes per weight tile row
    // SAFETY: every address below is inside the buffers the caller sized: rows `first / (kp/32)`
    // .. +16 (+32) of hi/lo, and tile `0..4` of each block of `b`.
    unsafe {
        let row16 = 16 * (kp / 32);
        zero_sums();
        for blk in 0..kp / 32 {
            let ah = hi.add(first + blk * 16) as *const u8;
            let al = lo.add(first + blk * 16) as *const u8;
            let bb = b.add(blk * BLOCK_LINES * 32) as *const u8;
            let (bh0, bh1, bl0, bl1) = (bb, bb.add(1024), bb.add(2048), bb.add(3072));
            if two {
                let (ah1, al1) = (ah.add(row16 * 64), al.add(row16 * 64));
                asm!(
                    "tileloadd tmm6, [{bh0} + {sb}*1]",
                    "tileloadd tmm7, [{bh1} + {sb}*1]",
                    "tileloadd tmm4, [{ah0} + {sa}*1]",
                    "tileloadd tmm5, [{ah1} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    "tileloadd tmm4, [{al0} + {sa}*1]",
                    "tileloadd tmm5, [{al1} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    "tileloadd tmm6, [{bl0} + {sb}*1]",
                    "tileloadd tmm7, [{bl1} + {sb}*1]",
                    "tileloadd tmm4, [{ah0} + {sa}*1]",
                    "tileloadd tmm5, [{ah1} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    bh0 = in(reg) bh0, bh1 = in(reg) bh1, bl0 = in(reg) bl0, bl1 = in(reg) bl1,
                    ah0 = in(reg) ah, ah1 = in(reg) ah1, al0 = in(reg) al, al1 = in(reg) al1,
                    sa = in(reg) sa, sb = in(reg) sb,
                    options(nostack, readonly),
                );
            } else {
                asm!(
                    "tileloadd tmm6, [{bh0} + {sb}*1]",
                    "tileloadd tmm7, [{bh1} + {sb}*1]",
                    "tileloadd tmm4, [{ah0} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tileloadd tmm4, [{al0} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tileloadd tmm6, [{bl0} + {sb}*1]",
                    "tileloadd tmm7, [{bl1} + {sb}*1]",
                    "tileloadd tmm4, [{ah0} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    bh0 = in(reg) bh0, bh1 = in(reg) bh1, bl0 = in(reg) bl0, bl1 = in(reg) bl1,
                    ah0 = in(reg) ah, al0 = in(reg) al,
                    sa = in(reg) sa, sb = in(reg) sb,
                    options(nostack, readonly),
                );
            }
        }
        let out = c.as_mut_ptr() as *mut u8; // tile t at out + 1024·t
        store_sums([out, out.add(1024), out.add(2048), out.add(3072)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::packed::{pack, packed_len};
    use half::f16;

    /// bf16 of `v`, round to nearest even, back in f32 (what one tile product would see).
    fn bf16(v: f32) -> f32 {
        let u = v.to_bits();
        f32::from_bits((u + 0x7fff + ((u >> 16) & 1)) & 0xffff_0000)
    }

    /// Against a double-precision sum, within the split's bound (about 2⁻¹⁶ of Σ|x·w| per output
    /// from the splits, plus f32 summation) — a bound one bf16 product per term breaks — on shapes
    /// with ragged rows, `k` off the block of 32, a ragged last panel and several row blocks; and
    /// each row keeps its bits alone or among others.
    #[test]
    fn products_stay_within_the_split_bound_and_rows_keep_their_bits() {
        if !available() {
            println!("no AMX tiles on this CPU: the kernel is not run here");
            return;
        }
        let mut worst_bf16 = 0f64;
        for (m, k, n) in [
            (1, 8, 5),
            (17, 200, 70),
            (33, 384, 96),
            (70, 1536, 40),
            (700, 64, 33),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919 % 2003) as f32 - 1001.0) / 517.0 * (1.0 + (i % 5) as f32))
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 104_729 % 1009) as f32 - 504.0) / 311.0)
                .collect();
            let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let mut pf = vec![0f32; packed_len(n, k, PANEL)];
            pack(&w, n, k, PANEL, &mut pf);
            let mut ph = vec![f16::ZERO; packed_len(n, k, PANEL)];
            pack(&wh, n, k, PANEL, &mut ph);
            for (data, wv) in [
                (Floats::F32(&pf), w.clone()),
                (
                    Floats::F16(&ph),
                    wh.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
                ),
            ] {
                let panels = Panels {
                    data,
                    n,
                    k,
                    nr: PANEL,
                };
                let ldy = n + 3;
                let mut got = vec![0.25f32; m * ldy];
                // SAFETY: AMX is available; `x`, `got` and the panels have the sizes named.
                unsafe { matmul(&x, panels, &mut got, m, ldy) };
                for i in 0..m {
                    for j in 0..n {
                        let terms = (0..k).map(|kk| (x[i * k + kk] as f64, wv[j * k + kk] as f64));
                        let want: f64 = terms.clone().map(|(a, b)| a * b).sum();
                        let scale: f64 = terms.clone().map(|(a, b)| (a * b).abs()).sum();
                        let tol = (2f64.powi(-15) + k as f64 * 2f64.powi(-24)) * scale + 1e-6;
                        let err = (got[i * ldy + j] as f64 - 0.25 - want).abs();
                        assert!(
                            err <= tol,
                            "{m}x{k}x{n} ({i}, {j}): off by {err}, bound {tol}"
                        );
                        let one: f64 = terms
                            .map(|(a, b)| bf16(a as f32) as f64 * bf16(b as f32) as f64)
                            .sum();
                        worst_bf16 = worst_bf16.max((one - want).abs() / tol);
                    }
                    assert!(got[i * ldy + n..(i + 1) * ldy].iter().all(|&v| v == 0.25));
                }
                if let Floats::F32(p) = data {
                    // Tiles made once (a prepared copy) give the bits of the split per call.
                    let tiles = OwnedTiles::from_panels(p, n, k);
                    let mut ready = vec![0.25f32; m * ldy];
                    // SAFETY: as above.
                    unsafe { matmul_tiles(&x, tiles.view(), &mut ready, m, ldy) };
                    assert_eq!(ready, got, "{m}x{k}x{n} tiles made once");
                }
                for i in [0, m / 2, m - 1] {
                    let mut alone = vec![0.25f32; ldy];
                    // SAFETY: as above, one row.
                    unsafe { matmul(&x[i * k..(i + 1) * k], panels, &mut alone, 1, ldy) };
                    assert_eq!(alone[..n], got[i * ldy..i * ldy + n], "{m}x{k}x{n} row {i}");
                }
            }
        }
        assert!(
            worst_bf16 > 1.0,
            "one bf16 product per term also met the bound: it tests nothing"
        );
    }
}
