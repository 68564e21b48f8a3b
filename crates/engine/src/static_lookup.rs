//! The Model2Vec path after tokenizing: ids → mean of table rows → model2vec's normalization,
//! texts split across the thread budget when there are many. The one-call path tokenizes in the
//! workers too, text by text, so a text's table rows load while the next one is tokenized.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Result;
use crate::ops::CpuLevel;
use crate::static_model::StaticModel;
use crate::text::{CallText, TextPolicy, TextScratch};
use crate::threads::ThreadPool;
use crate::weights::SafeTensors;

self_cell::self_cell!(
    /// A Model2Vec table borrowed from the file it owns.
    struct StaticTable {
        owner: SafeTensors,
        #[covariant]
        dependent: StaticModel,
    }
);

/// Below this many texts per thread a thread costs more than it saves (and so does asking how
/// many cores there are: std reads the cgroup quota files).
const TEXTS_PER_THREAD: usize = 2048;

/// A loaded Model2Vec table, how its vectors are normalized, and the kernels it runs with.
pub(crate) struct StaticLookup {
    table: StaticTable,
    /// model2vec's `x / (‖x‖ + 1e-32)`, or sentence-transformers' Normalize module.
    norm: fn(&mut [f32]),
    cpu: CpuLevel,
}

impl StaticLookup {
    /// The table `tensor` of `weights`, checked against a tokenizer of `vocab` ids; `norm` is the
    /// model's normalization (applied when asked for).
    pub(crate) fn new(
        weights: SafeTensors,
        (tensor, vocab): (&str, usize),
        norm: fn(&mut [f32]),
        cpu: CpuLevel,
    ) -> Result<Self> {
        Ok(StaticLookup {
            table: StaticTable::try_new(weights, |w| StaticModel::load(w, tensor, vocab))?,
            norm,
            cpu,
        })
    }

    /// Width of the vectors.
    pub(crate) fn dim(&self) -> usize {
        self.table.borrow_dependent().dim
    }

    /// Storage dtype of the table.
    pub(crate) fn dtype_name(&self) -> &'static str {
        self.table.borrow_dependent().dtype_name()
    }

    /// How many threads `n` texts are worth (at most `threads`, 0 = the budget).
    fn threads_for(n: usize, threads: usize, pool: &ThreadPool) -> usize {
        match (n / TEXTS_PER_THREAD, threads) {
            (0 | 1, _) => 1,
            (most, 0) => most.min(pool.threads()),
            (most, t) => most.min(t),
        }
    }

    /// Items per chunk when `n` items are cut into one chunk per planned thread.
    fn chunk_len(n: usize, threads: usize) -> usize {
        n.div_ceil(threads.max(1)).max(1)
    }

    /// Runs `work(chunk index, range of items)` over `n` items cut into chunks of
    /// [`chunk_len`](Self::chunk_len); chunks are claimed, so fewer threads than planned still
    /// cover them all.
    fn over_chunks(
        n: usize,
        threads: usize,
        pool: &ThreadPool,
        work: &(dyn Fn(usize, std::ops::Range<usize>) + Sync),
    ) {
        let per = Self::chunk_len(n, threads);
        let chunks = n.div_ceil(per);
        let next = AtomicUsize::new(0);
        pool.run(threads, &|_| {
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    break;
                }
                work(c, c * per..((c + 1) * per).min(n));
            }
        });
    }

    /// The vectors (`[n, dim]`) of sequences `spans` into `ids`, normalized (the model's way) when
    /// `normalize`.
    pub(crate) fn embed_ids(
        &self,
        ids: &[u32],
        spans: &[(usize, usize)],
        normalize: bool,
        threads: usize,
        pool: &ThreadPool,
    ) -> Vec<f32> {
        let (model, dim, cpu) = (self.table.borrow_dependent(), self.dim(), self.cpu);
        let n = spans.len();
        let mut out = vec![0f32; n * dim];
        if n == 0 {
            return out;
        }
        let threads = Self::threads_for(n, threads, pool);
        let per = Self::chunk_len(n, threads);
        let slots: Vec<Mutex<&mut [f32]>> = out.chunks_mut(per * dim).map(Mutex::new).collect();
        Self::over_chunks(n, threads, pool, &|c, range| {
            let mut o = slots[c].lock().unwrap_or_else(|p| p.into_inner());
            let mut row = Vec::new();
            let seq = |i: usize| &ids[spans[i].0..spans[i].0 + spans[i].1];
            for (k, i) in range.clone().enumerate() {
                // The rows are scattered over a table far larger than the caches: start loading
                // the next text's now, and add them up after this one.
                if i + 1 < range.end {
                    model.prefetch_rows(seq(i + 1));
                }
                let v = &mut o[k * dim..(k + 1) * dim];
                model.embed_ids(seq(i), v, &mut row, cpu);
                if normalize {
                    (self.norm)(v);
                }
            }
        });
        drop(slots);
        out
    }

    /// Tokenizes and embeds `texts[range]` into `out` (`[range.len(), dim]`), each text's rows
    /// loading while the next is tokenized; returns how many were cut.
    fn embed_range<S: AsRef<str>>(
        &self,
        texts: &[S],
        range: std::ops::Range<usize>,
        (policy, call): (&TextPolicy, &CallText),
        normalize: bool,
        out: &mut [f32],
    ) -> Result<usize> {
        let (model, dim, cpu) = (self.table.borrow_dependent(), self.dim(), self.cpu);
        let (mut ids, mut next) = (Vec::new(), Vec::new());
        let (mut scratch, mut row) = (TextScratch::default(), Vec::new());
        let mut cut = 0;
        let mut tokenize = |i: usize, ids: &mut Vec<u32>| -> Result<()> {
            if policy.encode(texts[i].as_ref(), call, i, ids, &mut scratch)? {
                cut += 1;
            }
            // Start loading the rows now, add them up after the next text is tokenized.
            model.prefetch_rows(ids);
            Ok(())
        };
        tokenize(range.start, &mut ids)?;
        for (k, i) in range.clone().enumerate() {
            if i + 1 < range.end {
                tokenize(i + 1, &mut next)?;
            }
            let v = &mut out[k * dim..(k + 1) * dim];
            model.embed_ids(&ids, v, &mut row, cpu);
            if normalize {
                (self.norm)(v);
            }
            std::mem::swap(&mut ids, &mut next);
        }
        Ok(cut)
    }

    /// Tokenizes and embeds `texts` in one pass per worker; returns the vectors (`[n, dim]`) and
    /// how many texts were cut.
    pub(crate) fn embed_texts<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        (policy, call): (&TextPolicy, &CallText),
        normalize: bool,
        threads: usize,
        pool: &ThreadPool,
    ) -> Result<(Vec<f32>, usize)> {
        let (dim, n) = (self.dim(), texts.len());
        let mut out = vec![0f32; n * dim];
        if n == 0 {
            return Ok((out, 0));
        }
        let threads = Self::threads_for(n, threads, pool);
        let per = Self::chunk_len(n, threads);
        let slots: Vec<Mutex<&mut [f32]>> = out.chunks_mut(per * dim).map(Mutex::new).collect();
        let results: Vec<Mutex<Result<usize>>> =
            (0..slots.len()).map(|_| Mutex::new(Ok(0))).collect();
        Self::over_chunks(n, threads, pool, &|c, range| {
            let mut o = slots[c].lock().unwrap_or_else(|p| p.into_inner());
            let r = self.embed_range(texts, range, (policy, call), normalize, &mut o);
            *results[c].lock().unwrap_or_else(|p| p.into_inner()) = r;
        });
        drop(slots);
        let mut truncated = 0;
        for r in results {
            truncated += r.into_inner().unwrap_or_else(|p| p.into_inner())?;
        }
        Ok((out, truncated))
    }
}
