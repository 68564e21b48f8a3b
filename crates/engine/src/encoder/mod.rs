//! The transformer path after tokenizing: token ids → encoder (`bert.rs`) → pooling → dense, in
//! length-sorted batches spread over the caller's thread budget; a single short batch shares its
//! matrix products with a helper thread. The encoder's layers move to a packed huge-page copy once
//! the model is used enough (`resident.rs`).

mod bert;
mod resident;

pub(crate) use bert::Flavor;
pub use resident::Residency;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bert::{Batch, BertModel, Dims, Workspace};
use resident::{ResidencyState, ResidentLayers};

use crate::dense::Dense;
use crate::error::Result;
use crate::load::config::TransformerConfig;
use crate::memory::Prefetch;
use crate::ops::{CpuLevel, Weight, team_pays};
use crate::pooling::Pooling;
use crate::post::Post;
use crate::threads::ThreadPool;
use crate::weights::{Mat, SafeTensors};

self_cell::self_cell!(
    /// The encoder borrowing its weights from the file it owns.
    struct Encoder {
        owner: SafeTensors,
        #[covariant]
        dependent: BertModel,
    }
);

/// Upper bound on tokens in one batch, so scratch memory stays bounded (≈ 6 MB for the
/// feed-forward buffer of a MiniLM-sized model) however long the inputs are.
pub(crate) const MAX_BATCH_TOKENS: usize = 1024;

/// Most scratch memory one batch may need at the model's longest sequence, in bytes (per worker
/// thread; see `bert::Workspace`). config.json's sizes are checked against it at load, so a model
/// claiming absurd sizes is an error there instead of a failed allocation on its first text:
/// all-MiniLM-L6-v2 needs 15 MB, all-mpnet-base-v2 55 MB, XLM-R large sizes at 8,192 tokens
/// (bge-m3's) 0.57 GB.
pub(crate) const MAX_SCRATCH_BYTES: u64 = 4 << 30;

/// What a run produces per sequence.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output<'p> {
    /// The model's pooling and dense layers, then `post`; `skip` leading tokens (a prompt) left
    /// out of pooling.
    Pooled { skip: usize, post: &'p Post },
    /// The last hidden states of every token (`[len, hidden]`).
    TokenStates,
}

/// How one call is cut into batches and threads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub batch_size: usize,
    /// Most threads (0: as many as the budget has free).
    pub threads: usize,
}

/// A loaded sentence-transformers Transformer module with the Pooling and Dense modules after it.
pub(crate) struct Transformer {
    // Joined before the layers are copied to huge pages (it must not map again what the copy
    // releases), else when the model is dropped. It keeps the mapping alive itself.
    prefetch: Mutex<Option<Prefetch>>,
    encoder: Encoder,
    residency: ResidencyState,
    pooling: Pooling,
    dense: Vec<Dense>,
    cpu: CpuLevel,
    workspaces: Mutex<Vec<Workspace>>,
}

impl Transformer {
    /// Starts mapping the encoder layers' pages of `weights` in the background (while the
    /// tokenizer is parsed, say).
    pub(crate) fn prefetch(weights: &SafeTensors) -> Prefetch {
        weights.prefetch(|n| n.contains("encoder."))
    }

    /// Checks that `weights` hold the encoder `config` describes (names, shapes, dtypes), as
    /// [`new`](Self::new) would, without building it.
    pub(crate) fn check(
        weights: &SafeTensors,
        config: &TransformerConfig,
        flavor: Flavor,
        config_path: &std::path::Path,
    ) -> Result<()> {
        BertModel::load(weights, config, flavor, config_path).map(drop)
    }

    /// Checks config.json's sizes alone (before any weights are read or mapped): the scratch
    /// memory they need must be within `MAX_SCRATCH_BYTES`.
    pub(crate) fn check_config(
        config: &TransformerConfig,
        flavor: Flavor,
        config_path: &std::path::Path,
    ) -> Result<()> {
        bert::check_scratch(config, flavor, config_path)
    }

    /// The encoder over `weights` (whose pages `prefetch` maps), then `pooling` and `dense`.
    pub(crate) fn new(
        (weights, prefetch): (SafeTensors, Prefetch),
        config: &TransformerConfig,
        flavor: Flavor,
        config_path: &std::path::Path,
        (pooling, dense): (Pooling, Vec<Dense>),
        (cpu, residency): (CpuLevel, Residency),
    ) -> Result<Self> {
        if weights.has_tiles() && cpu.isa() != crate::ops::Isa::Amx {
            // Only a prepared copy made at the AMX level has them; elsewhere (another level, another
            // CPU or OS) they would not run.
            return Err(crate::Error::invalid(
                weights.path(),
                format!(
                    "weights in AMX tile layout need the amx kernels (this model: {})",
                    cpu.name()
                ),
            ));
        }
        let encoder =
            Encoder::try_new(weights, |w| BertModel::load(w, config, flavor, config_path))?;
        let t = Transformer {
            prefetch: Mutex::new(Some(prefetch)),
            encoder,
            residency: ResidencyState::new(residency),
            pooling,
            dense,
            cpu,
            workspaces: Mutex::new(Vec::new()),
        };
        // Weights as stored are packed now: the panel kernel is then the only one, so a text's
        // vector does not depend on the texts batched with it, the thread count or the run's
        // size (a cache or an index may reuse it for any later run). Panels from the file (the
        // built-in model, a prepared copy) need nothing; `Auto` moves them to huge pages later.
        let stored = t.any_linear(|w| matches!(w, Weight::Stored(Mat::F32(_) | Mat::F16(_))));
        if residency == Residency::Eager || (stored && crate::ops::packed::worth_packing(cpu)) {
            t.residency.make_now(|| t.make_copy());
        }
        Ok(t)
    }

    /// The encoder's dimensions.
    pub(crate) fn dims(&self) -> Dims {
        self.encoder.borrow_dependent().dims
    }

    /// Storage dtype of the big matrices.
    pub(crate) fn weight_dtype(&self) -> &'static str {
        self.encoder.borrow_dependent().weight_dtype()
    }

    /// The pooling module.
    pub(crate) fn pooling(&self) -> &Pooling {
        &self.pooling
    }

    /// The dense modules.
    pub(crate) fn dense(&self) -> &[Dense] {
        &self.dense
    }

    /// Width of the pooled (and densed) vector, before post-processing.
    pub(crate) fn pooled_dim(&self) -> usize {
        self.dense
            .last()
            .map_or(self.pooling.output_dim(self.dims().hidden), Dense::out_dim)
    }

    /// The layers over the packed huge-page copy, made when the residency policy says so.
    fn resident_layers(&self, tokens: usize) -> Option<&ResidentLayers> {
        self.residency.for_run(tokens, || self.copy_unless_huge())
    }

    /// Copies the layers into huge pages (packing what is stored as in the file).
    /// Whether any linear layer's weight (as loaded, before any copy) matches `f`.
    fn any_linear(&self, f: impl Fn(&Weight<'_>) -> bool) -> bool {
        self.encoder
            .borrow_dependent()
            .layers()
            .iter()
            .flat_map(|l| l.linears())
            .any(|lin| f(&lin.weight))
    }

    /// Whether the layers' panels (from the file) are mapped through huge pages.
    #[cfg(all(test, feature = "builtin"))]
    pub(crate) fn panels_huge_mapped(&self) -> bool {
        crate::memory::mostly_huge_mapped(self.panel_span())
    }

    /// The bytes of the file from the first to the last linear weight stored as panels.
    fn panel_span(&self) -> &[u8] {
        self.encoder.borrow_owner().span(|name, shape| {
            shape.len() == 3 && crate::weights::panels_file::is_encoder_linear(name)
        })
    }

    /// The copy [`Residency::Auto`] makes for speed, unless the weights are panels mapped
    /// through huge pages already (a prepared copy in 2 MiB folios, see `weights::prepared`):
    /// those stream as fast, and copying them would cost 20–120 ms and their size in memory.
    fn copy_unless_huge(&self) -> Option<ResidentLayers> {
        drop(self.prefetch.lock().ok().and_then(|mut p| p.take()));
        let from_file = !self.any_linear(|w| matches!(w, Weight::Stored(_)));
        if from_file && crate::memory::mostly_huge_mapped(self.panel_span()) {
            return None;
        }
        self.make_copy()
    }

    fn make_copy(&self) -> Option<ResidentLayers> {
        // Its page-mapping thread must not map again what the copy releases.
        drop(self.prefetch.lock().ok().and_then(|mut p| p.take()));
        resident::copy_layers(
            self.encoder.borrow_dependent().layers(),
            self.encoder.borrow_owner(),
            self.cpu,
        )
    }

    /// Runs the sequences `spans` (into `ids`) and returns each one's output, in input order,
    /// concatenated: `[n, width]` for pooled outputs, `Σ len × hidden` for token states.
    pub(crate) fn run(
        &self,
        ids: &[u32],
        spans: &[(usize, usize)],
        out: Output<'_>,
        sched: Schedule,
        pool: &ThreadPool,
    ) -> Vec<f32> {
        let n = spans.len();
        let hidden = self.dims().hidden;
        let pooled_dim = self.pooled_dim();
        let width = |len: usize| match out {
            Output::Pooled { post, .. } => post.out_dim(pooled_dim),
            Output::TokenStates => len * hidden,
        };
        // Where each sequence's output goes.
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        for &(_, len) in spans {
            offsets.push(offsets[offsets.len() - 1] + width(len));
        }
        let total = offsets[n];

        // Longest first, cut into batches of similar length (bounded in sequences and tokens).
        // With fewer texts than batch_size × threads, batches shrink so every thread gets work.
        let want = if sched.threads == 0 {
            usize::MAX
        } else {
            sched.threads
        };
        // (One text needs no core count: a batch of one either way.)
        let spread = if n <= 1 { 1 } else { want.min(pool.threads()) };
        let per_batch = sched.batch_size.min(n.div_ceil(spread).max(1));
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(spans[i].1));
        let mut batches: Vec<&[usize]> = Vec::new();
        let mut rest = &order[..];
        while !rest.is_empty() {
            let mut take = 0;
            let mut tokens = 0;
            while take < rest.len()
                && take < per_batch
                && (take == 0 || tokens + spans[rest[take]].1 <= MAX_BATCH_TOKENS)
            {
                tokens += spans[rest[take]].1;
                take += 1;
            }
            let (b, r) = rest.split_at(take);
            batches.push(b);
            rest = r;
        }

        let tokens = spans.iter().map(|s| s.1).sum();
        let resident = self.resident_layers(tokens);

        // A single short batch with threads to spare (one sentence) shares its matrix products
        // with a helper thread; otherwise threads take whole batches.
        let split = batches.len() == 1 && want > 1;
        let next = AtomicUsize::new(0);
        let done: Mutex<Vec<(usize, Vec<f32>)>> = Mutex::new(Vec::with_capacity(batches.len()));
        let work = |_worker: usize| {
            let mut ws = self.take_workspace();
            let mut batch = Batch::default();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches.len() {
                    break;
                }
                batch.fill(batches[b], spans, ids);
                let data = self.run_batch(&batch, out, &mut ws, split, resident, pool);
                done.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((b, data));
            }
            self.return_workspace(ws);
        };
        if !batches.is_empty() {
            pool.run(want.min(batches.len()), &work);
        }

        let mut result = vec![0f32; total];
        for (b, data) in done.into_inner().unwrap_or_else(|p| p.into_inner()) {
            let mut at = 0;
            for &i in batches[b] {
                let w = offsets[i + 1] - offsets[i];
                result[offsets[i]..offsets[i + 1]].copy_from_slice(&data[at..at + w]);
                at += w;
            }
        }
        result
    }

    /// Encoder → pooling → dense → post for one batch; the outputs in batch order.
    fn run_batch(
        &self,
        batch: &Batch,
        out: Output<'_>,
        ws: &mut Workspace,
        split: bool,
        resident: Option<&ResidentLayers>,
        pool: &ThreadPool,
    ) -> Vec<f32> {
        let model = self.encoder.borrow_dependent();
        let hidden = model.dims.hidden;
        let cpu = self.cpu;
        if split && team_pays(batch.tokens()) {
            pool.with_helper(|team| model.forward(resident, batch, ws, (team, cpu)));
        } else if batch.tokens() > 0 {
            model.forward(resident, batch, ws, (None, cpu));
        }
        let (skip, post) = match out {
            Output::TokenStates => return ws.hidden[..batch.tokens() * hidden].to_vec(),
            Output::Pooled { skip, post } => (skip, post),
        };
        let pool_dim = self.pooling.output_dim(hidden);
        let n = batch.seqs.len();
        let mut pooled = Vec::with_capacity(n * pool_dim); // [n, pool_dim]
        for &(start, len) in &batch.seqs {
            let skip = skip.min(len);
            if skip == len {
                // No tokens (a tokenizer without specials and an empty text), or every token is
                // prompt: sentence-transformers' fully masked pooling gives zeros.
                pooled.resize(pooled.len() + pool_dim, 0.0);
            } else {
                self.pooling.pool(
                    &ws.hidden[(start + skip) * hidden..(start + len) * hidden],
                    hidden,
                    &mut pooled,
                );
            }
        }
        let mut x = pooled;
        for d in &self.dense {
            let mut y = Vec::new();
            d.forward(&x, &mut y, n, cpu);
            x = y;
        }
        post.apply(x, self.pooled_dim(), Some(crate::normalize::l2_normalize))
    }

    fn take_workspace(&self) -> Workspace {
        self.workspaces
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default()
    }

    fn return_workspace(&self, ws: Workspace) {
        if let Ok(mut v) = self.workspaces.lock() {
            v.push(ws);
        }
    }

    /// Whether the layers have moved to the huge-page copy.
    #[cfg(test)]
    pub(crate) fn is_resident(&self) -> bool {
        self.residency.is_resident()
    }
}

/// Runs before a model in `Residency::Auto` copies its layers (for tests).
#[cfg(test)]
pub(crate) fn resident_after_runs() -> usize {
    resident::AFTER_RUNS
}

/// Tokens of one run that copy at once (for tests).
#[cfg(test)]
pub(crate) fn resident_min_tokens() -> usize {
    resident::MIN_TOKENS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Floats, Weight};
    use crate::weights::Mat;

    /// The copy holds every layer tensor exactly: matrices packed where packing pays (every
    /// element where the panels put it), else byte for byte; vectors unchanged; all 64-byte
    /// aligned. Checked for f32 (a fixture) and f16 (the built-in model) at every level.
    #[test]
    fn the_resident_copy_keeps_every_tensor_exactly() {
        #[allow(unused_mut)]
        let mut models = vec![
            crate::Embedder::from_dir(format!(
                "{}/../../tests/data/fixtures/tiny-bert-cls",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        ];
        #[cfg(feature = "builtin")]
        models.push(crate::Embedder::builtin().unwrap());
        for model in &models {
            let crate::embedder::Body::Transformer(t) = &model.body else {
                unreachable!("both are transformers")
            };
            let original = t.encoder.borrow_dependent().layers();
            for cpu in CpuLevel::available() {
                let copy = resident::copy_layers(original, t.encoder.borrow_owner(), cpu)
                    .expect("memory for the copy");
                for (a, b) in original.iter().zip(copy.layers()) {
                    for (la, lb) in a.linears().iter().zip(b.linears()) {
                        let (n, k) = (la.out_dim, la.in_dim);
                        let mut row = vec![0f32; k];
                        match (&la.weight, &lb.weight) {
                            // Panels from the file (the built-in model): copied as they are.
                            (Weight::Packed(pa), Weight::Packed(pb)) => {
                                assert_eq!(pa.data.as_bytes(), pb.data.as_bytes());
                                assert_eq!(pb.data.as_bytes().as_ptr() as usize % 64, 0);
                            }
                            (Weight::Stored(ma), Weight::Packed(p)) => {
                                assert!(crate::ops::packed::worth_packing(cpu));
                                let ptr = match p.data {
                                    Floats::F32(d) => d.as_ptr() as usize,
                                    Floats::F16(d) => d.as_ptr() as usize,
                                };
                                assert_eq!(ptr % 64, 0);
                                for j in [0, n / 2, n - 1] {
                                    ma.row_into(j, k, &mut row);
                                    for (kk, &want) in row.iter().enumerate() {
                                        assert_eq!(p.get(j, kk), want, "{cpu:?} ({j}, {kk})");
                                    }
                                }
                            }
                            (Weight::Stored(ma), Weight::Stored(mb)) => {
                                assert!(!crate::ops::packed::worth_packing(cpu));
                                assert_eq!(ma.as_bytes(), mb.as_bytes());
                                assert!(matches!(
                                    (ma, mb),
                                    (Mat::F32(_), Mat::F32(_)) | (Mat::F16(_), Mat::F16(_))
                                ));
                            }
                            (Weight::Packed(_), Weight::Stored(_)) => panic!("panels unpacked"),
                            // Tiles come from a prepared copy only: not among these models.
                            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
                            (Weight::Tiles(_), _) | (_, Weight::Tiles(_)) => {
                                panic!("tiles without a tile copy")
                            }
                        }
                        assert_eq!(la.bias, lb.bias);
                    }
                    for (na, nb) in a.norms().iter().zip(b.norms()) {
                        assert_eq!(
                            (&na.weight, &na.bias, na.eps),
                            (&nb.weight, &nb.bias, nb.eps)
                        );
                    }
                }
            }
        }
    }
}
