//! Two threads on one short input. A single sentence is a few rows, so each matrix product is only
//! tens of microseconds: waking a sleeping pool thread (futex) per product costs as much as the
//! work, which is why a rayon split gained ~10%. Here a helper (a worker of the caller's thread
//! budget, `crate::threads`) serves one whole forward pass and spins between products. Each product's output columns (weight rows) are cut into chunks that the two threads claim
//! from opposite ends — this thread writes its chunks in place, the helper computes its own from a
//! copy of the input into its buffer, added after — so neither waits long for the other whatever
//! their speeds. (A fixed half each left this thread waiting 21.7 µs per product on average, the
//! chunks 10.4 µs; f32 single-sentence latency 3.64 → 2.89 ms in one slow period of the host.)
//! A helper that has not taken up a product by the time this thread has claimed every chunk is
//! not waited for: the product is withdrawn from it. Waiting for it made a cold one-sentence run
//! take 100–140 ms instead of 4 when another process held the second core (the helper, queued
//! there, was not running, and this thread spun).
//! Plain `Mutex` + atomics: no unsafe, no allocation per job once the buffers have grown.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::packed::{self, Panels};
use super::skinny::{Rows, matmul_nt};
use super::{CpuLevel, SKINNY_MAX_ROWS};

/// Whether a batch of `tokens` tokens is short enough for its products to be split between two
/// threads (longer batches keep both threads busy with batches of their own).
pub(crate) fn team_pays(tokens: usize) -> bool {
    tokens > 0 && tokens <= SKINNY_MAX_ROWS
}

/// A product's weights as the team can split them: rows as stored (`[n, k]`), or packed panels.
#[derive(Clone, Copy)]
pub(crate) enum Weights<'w> {
    Rows(Rows<'w>),
    Packed(Panels<'w>),
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    Tiles(super::Tiles<'w>),
}

impl<'w> Weights<'w> {
    /// Output columns per claimed piece: small enough that the two threads finish within a few
    /// microseconds of each other; a multiple of the kernel's column block (3 or 4 rows as stored,
    /// whole panels when packed).
    fn chunk(&self) -> usize {
        match self {
            Weights::Rows(_) => 48,
            Weights::Packed(p) => 2 * p.nr,
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Weights::Tiles(_) => 2 * super::packed::PANEL,
        }
    }

    /// `y[m, n] += x[m, k] · Wᵀ` on this thread alone.
    pub(crate) fn matmul(
        self,
        x: &[f32],
        y: &mut [f32],
        (m, k, n): (usize, usize, usize),
        cpu: CpuLevel,
    ) {
        self.matmul_columns(x, y, (m, k), (0, n), n, cpu);
    }

    /// `y[m, j..j + width] += x · W[j..j + width]ᵀ`, `y` starting at column `j` with stride `ldy`.
    fn matmul_columns(
        self,
        x: &[f32],
        y: &mut [f32],
        (m, k): (usize, usize),
        (j, width): (usize, usize),
        ldy: usize,
        cpu: CpuLevel,
    ) {
        match self {
            Weights::Rows(w) => {
                let cols = w.split_rows(j, k).1.split_rows(width, k).0;
                matmul_nt(x, cols, y, m, k, width, ldy, cpu);
            }
            Weights::Packed(p) => packed::matmul(x, p.columns(j, width), y, (m, ldy), cpu),
            // SAFETY: tiles exist only for models loaded at the AMX level (`amx::available`);
            // `matmul_tiles` asserts the sizes.
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Weights::Tiles(t) => unsafe {
                super::amx::matmul_tiles(x, t.columns(j, width), y, m, ldy)
            },
        }
    }
}

/// Work for the helper: `y = x · wᵀ` (`[m, k] · [n, k]ᵀ`).
struct Job<'w> {
    x: Vec<f32>, // [m, k] copy of the input rows
    w: Option<Weights<'w>>,
    dims: (usize, usize, usize), // (m, k, n)
    cpu: CpuLevel,
    y: Vec<f32>, // [m, n] the helper's result (only its chunks' columns are written)
}

/// The unclaimed chunk range `[lo, hi)` as one word, so both ends move with one CAS.
fn range_word(lo: usize, hi: usize) -> u64 {
    (lo as u64) | ((hi as u64) << 32)
}

/// The range a [`range_word`] holds.
fn word_range(v: u64) -> (usize, usize) {
    ((v & 0xffff_ffff) as usize, (v >> 32) as usize)
}

/// A helper thread's mailbox, shared for the duration of one forward pass.
pub(crate) struct Team<'w> {
    posted: AtomicUsize,
    /// The last ticket decided: the helper took it up, or this thread withdrew it. Whoever moves
    /// it from `ticket − 1` to `ticket` first decides; the other leaves the product alone.
    decided: AtomicUsize,
    /// Chunks not yet claimed, `range_word(lo, hi)`: this thread takes from the left, the helper
    /// from the right.
    unclaimed: AtomicU64,
    finished: AtomicUsize,
    quit: AtomicBool,
    /// The helper panicked (a bug): the caller must not wait for it.
    failed: AtomicBool,
    /// Tests: the helper panics on its next job.
    #[cfg(test)]
    fail_next: AtomicBool,
    job: Mutex<Job<'w>>,
}

impl<'w> Team<'w> {
    pub(crate) fn new() -> Self {
        Team {
            posted: AtomicUsize::new(0),
            decided: AtomicUsize::new(0),
            unclaimed: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            quit: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            #[cfg(test)]
            fail_next: AtomicBool::new(false),
            job: Mutex::new(Job {
                x: Vec::new(),
                w: None,
                dims: (0, 0, 0),
                cpu: CpuLevel::portable(),
                y: Vec::new(),
            }),
        }
    }

    /// The helper's loop: run each posted job, spin in between, return after [`stop`](Self::stop).
    pub(crate) fn serve(&self) {
        // Should the helper panic, say so, or the caller would wait for its share forever.
        struct Failed<'a>(&'a AtomicBool);
        impl Drop for Failed<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.store(true, Ordering::Release);
                }
            }
        }
        let _failed = Failed(&self.failed);
        let mut seen = 0;
        let mut idle = 0u32;
        loop {
            let posted = self.posted.load(Ordering::Acquire);
            if posted != seen {
                seen = posted;
                // The caller may have done the whole product already and withdrawn it.
                if !self.decide(posted) {
                    idle = 0;
                    continue;
                }
                #[cfg(test)]
                assert!(
                    !self.fail_next.swap(false, Ordering::AcqRel),
                    "injected helper failure"
                );
                let mut job = self.job.lock().unwrap_or_else(|p| p.into_inner());
                let Job {
                    x,
                    w,
                    dims: (m, k, n),
                    cpu,
                    y,
                } = &mut *job;
                y.resize(*m * *n, 0.0);
                if let Some(w) = *w {
                    let chunk = w.chunk();
                    while let Some(c) = self.claim(Side::Right) {
                        let (j, width) = (c * chunk, chunk.min(*n - c * chunk));
                        for row in y.chunks_exact_mut(*n) {
                            row[j..j + width].fill(0.0);
                        }
                        w.matmul_columns(x, &mut y[j..], (*m, *k), (j, width), *n, *cpu);
                    }
                }
                drop(job);
                self.finished.store(seen, Ordering::Release);
                idle = 0;
            } else if self.quit.load(Ordering::Acquire) {
                return;
            } else {
                idle = backoff(idle);
            }
        }
    }

    /// Makes the helper panic on its next job (tests of what happens then).
    #[cfg(test)]
    pub(crate) fn fail_next_job(&self) {
        self.fail_next.store(true, Ordering::Release);
    }

    /// Ends [`serve`](Self::serve).
    pub(crate) fn stop(&self) {
        self.quit.store(true, Ordering::Release);
    }

    /// Settles who owns ticket `ticket`'s decision: true for the first of the two threads to ask.
    fn decide(&self, ticket: usize) -> bool {
        self.decided
            .compare_exchange(ticket - 1, ticket, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Takes one chunk from the given end of the unclaimed range, if any is left.
    fn claim(&self, side: Side) -> Option<usize> {
        let mut cur = self.unclaimed.load(Ordering::Acquire);
        loop {
            let (lo, hi) = word_range(cur);
            if lo >= hi {
                return None;
            }
            let (next, got) = match side {
                Side::Left => (range_word(lo + 1, hi), lo),
                Side::Right => (range_word(lo, hi - 1), hi - 1),
            };
            match self.unclaimed.compare_exchange_weak(
                cur,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(got),
                Err(seen) => cur = seen,
            }
        }
    }

    /// `y[m, n] += x[m, k] · wᵀ`, the columns shared with the helper in chunks claimed from both
    /// ends, so neither thread waits long for the other however their speeds differ.
    pub(crate) fn matmul(
        &self,
        x: &[f32],
        w: Weights<'w>,
        y: &mut [f32],
        (m, k, n): (usize, usize, usize),
        cpu: CpuLevel,
    ) {
        let chunk = w.chunk();
        let chunks = n.div_ceil(chunk);
        {
            let mut job = self.job.lock().unwrap_or_else(|p| p.into_inner());
            job.x.clear();
            job.x.extend_from_slice(&x[..m * k]);
            job.w = Some(w);
            job.dims = (m, k, n);
            job.cpu = cpu;
        }
        self.unclaimed
            .store(range_word(0, chunks), Ordering::Release);
        let ticket = self.posted.fetch_add(1, Ordering::AcqRel) + 1;
        while let Some(c) = self.claim(Side::Left) {
            let (j, width) = (c * chunk, chunk.min(n - c * chunk));
            w.matmul_columns(x, &mut y[j..], (m, k), (j, width), n, cpu);
        }
        // Every chunk is claimed. A helper that has not taken the product up yet (busy elsewhere,
        // or not scheduled) is not waited for: withdrawn, it computed nothing.
        if self.decide(ticket) {
            return;
        }
        let mut idle = 0;
        while self.finished.load(Ordering::Acquire) != ticket {
            assert!(
                !self.failed.load(Ordering::Acquire),
                "the helper thread of a matrix product panicked"
            );
            idle = backoff(idle);
        }
        // Everything from where the two ends met was computed by the helper.
        let split = (word_range(self.unclaimed.load(Ordering::Acquire)).0 * chunk).min(n);
        let job = self.job.lock().unwrap_or_else(|p| p.into_inner());
        for (row, part) in y.chunks_exact_mut(n).zip(job.y.chunks_exact(n)).take(m) {
            row[split..]
                .iter_mut()
                .zip(&part[split..])
                .for_each(|(o, p)| *o += p);
        }
    }
}

#[derive(Clone, Copy)]
enum Side {
    Left,
    Right,
}

/// Spins briefly (256 rounds), then yields the core: when more threads than cores are runnable (the
/// page-prefetch thread of a cold start, another process), longer spinning stole time from the thread
/// being waited for — with 4,096 rounds a cold one-sentence run took 9.6 ± 2.4 ms, with 256 7.2 ms.
fn backoff(idle: u32) -> u32 {
    if idle < 256 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
    idle.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::super::Floats;
    use super::*;

    /// `f` with a team whose helper is a plain scoped thread (the engine lends one from its thread
    /// budget instead).
    fn with_helper<'w, R>(f: impl FnOnce(&Team<'w>) -> R) -> R {
        let team = Team::new();
        std::thread::scope(|s| {
            s.spawn(|| team.serve());
            let r = f(&team);
            team.stop();
            r
        })
    }

    /// A helper that never takes a product up (not scheduled: another process holds its core) is
    /// not waited for: the products complete on this thread alone, bit for bit the same. Waiting
    /// for its acknowledgement hung here (and cost a cold start 100 ms when it came late).
    #[test]
    fn an_absent_helper_is_not_waited_for() {
        let (m, k, n) = (3, 16, 5 * 48 + 7);
        let w: Vec<f32> = (0..n * k).map(|i| (i % 11) as f32 * 0.25 - 1.0).collect();
        let x: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let cpu = CpuLevel::best();
        let mut want = vec![0.5f32; m * n];
        matmul_nt(&x, Floats::F32(&w), &mut want, m, k, n, n, cpu);
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread of its own, so that a wait that never ends fails the test instead of hanging it.
        std::thread::spawn(move || {
            let team = Team::new(); // nobody serves it
            let got: Vec<Vec<f32>> = (0..3)
                .map(|_| {
                    let mut y = vec![0.5f32; m * n];
                    team.matmul(&x, Weights::Rows(Floats::F32(&w)), &mut y, (m, k, n), cpu);
                    y
                })
                .collect();
            let _ = tx.send(got);
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the products waited for a helper that never came");
        for y in got {
            assert_eq!(y, want);
        }
    }

    /// Bit for bit what one thread computes, for products of one chunk, many chunks and a ragged
    /// last chunk, with weights as stored and packed, run back to back on one team (the helper's
    /// buffer is reused across shapes).
    #[test]
    fn split_matmul_equals_one_thread() {
        let cpu = CpuLevel::best();
        let nr = packed::PANEL;
        let shapes = [
            (5, 24, 37),
            (9, 40, 384),
            (1, 16, 1536 + 7),
            (32, 8, 3 * 48 + 2 * nr),
        ];
        // The weights outlive the team, as a model's do.
        let weights: Vec<Vec<f32>> = shapes
            .iter()
            .map(|&(_, k, n)| (0..n * k).map(|i| (i % 5) as f32 * 0.5 - 0.7).collect())
            .collect();
        let packed: Vec<Vec<f32>> = shapes
            .iter()
            .zip(&weights)
            .map(|(&(_, k, n), w)| {
                let mut p = vec![0f32; packed::packed_len(n, k, nr)];
                packed::pack(w, n, k, nr, &mut p);
                p
            })
            .collect();
        // AMX tiles of the same weights, where this CPU has them.
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        let owned_tiles: Vec<Option<super::super::amx::OwnedTiles>> = shapes
            .iter()
            .zip(&packed)
            .map(|(&(_, k, n), p)| {
                (cpu.isa() == super::super::Isa::Amx)
                    .then(|| super::super::amx::OwnedTiles::from_panels(p, n, k))
            })
            .collect();
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        let tiles: Vec<Option<Weights>> = owned_tiles
            .iter()
            .map(|t| t.as_ref().map(|t| Weights::Tiles(t.view())))
            .collect();
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        let tiles: Vec<Option<Weights>> = shapes.iter().map(|_| None).collect();
        with_helper(|team| {
            for (((&(m, k, n), w), p), t) in shapes.iter().zip(&weights).zip(&packed).zip(&tiles) {
                let x: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
                let panels = Panels {
                    data: Floats::F32(p),
                    n,
                    k,
                    nr,
                };
                let mut all = vec![
                    (Weights::Rows(Floats::F32(w)), "rows"),
                    (Weights::Packed(panels), "packed"),
                ];
                all.extend(t.map(|t| (t, "tiles")));
                for (weights, name) in all {
                    let mut want = vec![1.0f32; m * n];
                    weights.matmul(&x, &mut want, (m, k, n), cpu);
                    for _ in 0..3 {
                        let mut y = vec![1.0f32; m * n];
                        team.matmul(&x, weights, &mut y, (m, k, n), cpu);
                        assert_eq!(y, want, "{name} {m}x{k}x{n}");
                    }
                }
            }
        });
    }
}
