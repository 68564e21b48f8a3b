//! Residency: the encoder layers copied into huge pages, with the matrices in the column panels
//! of `ops::packed`, dropping the mapped pages they came from.
//!
//! Weights stored as in the file are copied (packed) at load: with one kernel for every product,
//! a text's vector does not depend on its batch, the thread count or the run's size (the other
//! kernels, for weights as stored, sum in other orders). Weights already in panels (the built-in
//! model, a prepared copy) are used where they lie and copied as they are once the model is in
//! frequent use: in this VM every 4 KiB page of streamed weights costs a page walk (a 9-row
//! product over 37 MB of f32 weights: 40–45 GFLOP/s from 4 KiB pages, 87 from huge pages). The
//! copy costs 20–120 ms here (mostly the kernel zeroing fresh pages, which in this VM first have
//! to be backed by the host), so a one-shot run over panels never pays it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use half::f16;

use super::bert::{BertLayer, LayerStack};
use crate::memory::{HugeBuffer, HugeBufferMut};
use crate::ops::{CpuLevel, Floats, LayerNorm, Linear, Panels, Weight, packed};
use crate::weights::{Mat, SafeTensors, cast};

/// When the encoder's layers are copied into huge pages in the kernels' panel layout (a field of
/// [`LoadOptions`](crate::LoadOptions)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Residency {
    /// Weights stored as in the file: at load (packing them is what makes vectors independent
    /// of batches; a prepared copy avoids it). Weights already in panels: after the model's 64th
    /// run, or at once for a run of ≥ 16,384 tokens (≈ 1.5 s of work on two cores), so a one-shot
    /// command never pays for the copy, a server or a big job does.
    #[default]
    Auto,
    /// At load time (a server that wants its first requests as fast as the later ones).
    Eager,
    /// Never: the layers read the weights where they were loaded from. Weights stored as in the
    /// file then run other kernels by batch shape, and a text's vector may differ in the last bits
    /// (within 1e-5) with the texts batched with it.
    Never,
}

/// Runs before the copy pays for itself (see the module docs).
pub(crate) const AFTER_RUNS: usize = 64;
/// A run of this many tokens copies at once.
pub(crate) const MIN_TOKENS: usize = 16 * super::MAX_BATCH_TOKENS;

/// Encoder layers over their own copy of the weights, made after loading.
pub(crate) struct ResidentLayers(ResidentCell);

self_cell::self_cell!(
    struct ResidentCell {
        owner: HugeBuffer,
        #[covariant]
        dependent: LayerStack,
    }
);

impl ResidentLayers {
    /// The layers.
    pub(crate) fn layers(&self) -> &[BertLayer<'_>] {
        self.0.borrow_dependent()
    }
}

/// A model's residency state: the policy, how often it ran, and the copy once made.
pub(crate) struct ResidencyState {
    policy: Residency,
    runs: AtomicUsize,
    copy: OnceLock<Option<ResidentLayers>>,
}

impl ResidencyState {
    pub(crate) fn new(policy: Residency) -> Self {
        ResidencyState {
            policy,
            runs: AtomicUsize::new(0),
            copy: OnceLock::new(),
        }
    }

    /// The copy for a run of `tokens` tokens, making it (with `make`) when the policy says it is
    /// time; `None` while the mapped weights are to be used.
    pub(crate) fn for_run(
        &self,
        tokens: usize,
        make: impl FnOnce() -> Option<ResidentLayers>,
    ) -> Option<&ResidentLayers> {
        let due = match self.policy {
            Residency::Never => return None,
            Residency::Eager => true,
            Residency::Auto => {
                // An empty call does not count as use.
                if tokens == 0 {
                    return None;
                }
                let earlier = self.runs.fetch_add(1, Ordering::Relaxed);
                earlier >= AFTER_RUNS || tokens >= MIN_TOKENS
            }
        };
        if !due {
            return self.copy.get().and_then(Option::as_ref);
        }
        self.copy.get_or_init(make).as_ref()
    }

    /// The copy, made now (with `make`) unless the policy is `Never`.
    pub(crate) fn make_now(
        &self,
        make: impl FnOnce() -> Option<ResidentLayers>,
    ) -> Option<&ResidentLayers> {
        if self.policy == Residency::Never {
            return None;
        }
        self.copy.get_or_init(make).as_ref()
    }

    /// Whether the copy exists.
    #[cfg(test)]
    pub(crate) fn is_resident(&self) -> bool {
        matches!(self.copy.get(), Some(Some(_)))
    }
}

/// How one tensor sits in the copy.
#[derive(Debug, Clone, Copy)]
enum Placed {
    /// `[n, k]` rearranged into panels of `nr` (f32 or f16 as stored).
    Panels {
        n: usize,
        k: usize,
        nr: usize,
        half: bool,
    },
    /// A matrix in its stored layout and dtype (bf16, or any when packing does not pay).
    Stored,
    /// An f32 vector (a bias or a LayerNorm parameter).
    Vector,
    /// AMX tiles of `[n, k]` (from a prepared copy made for them), copied as they are.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    Tiles { n: usize, k: usize },
}

/// The bytes each tensor of `layers` takes in the copy, in visiting order.
fn plan(layers: &[BertLayer<'_>], cpu: CpuLevel) -> Vec<(Placed, usize)> {
    let nr = packed::PANEL;
    let mut out = Vec::new();
    for layer in layers {
        for lin in layer.linears() {
            let (n, k) = (lin.out_dim, lin.in_dim);
            out.push(match &lin.weight {
                Weight::Stored(Mat::F32(_)) if packed::worth_packing(cpu) => (
                    Placed::Panels {
                        n,
                        k,
                        nr,
                        half: false,
                    },
                    packed::packed_len(n, k, nr) * 4,
                ),
                // Half stays half where the kernel widens in registers; else widened once here.
                Weight::Stored(Mat::F16(_)) if packed::worth_packing(cpu) => {
                    let half = packed::reads_half(cpu);
                    (
                        Placed::Panels { n, k, nr, half },
                        packed::packed_len(n, k, nr) * if half { 2 } else { 4 },
                    )
                }
                Weight::Stored(m) => (Placed::Stored, m.as_bytes().len()),
                #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
                Weight::Tiles(t) => (Placed::Tiles { n, k }, t.as_bytes().len()),
                // Panels already (the built-in model, a prepared copy): copied as they are.
                Weight::Packed(p) => (
                    Placed::Panels {
                        n,
                        k,
                        nr: p.nr,
                        half: matches!(p.data, Floats::F16(_)),
                    },
                    p.data.as_bytes().len(),
                ),
            });
            if let Some(b) = &lin.bias {
                out.push((Placed::Vector, b.len() * 4));
            }
        }
        for ln in layer.norms() {
            out.push((Placed::Vector, ln.weight.len() * 4));
            out.push((Placed::Vector, ln.bias.len() * 4));
        }
    }
    out
}

const ALIGN: usize = 64;

/// Copies `layers` (loaded from `weights`) into anonymous memory (on huge pages where the system
/// has them), matrices as panels where the kernel at `cpu` reads them so; `None` when the memory
/// is not there, in which case callers keep using the weights as loaded. Each matrix's mapped
/// pages are dropped once copied, so the copy and the mapping never both hold all of it.
pub(crate) fn copy_layers(
    layers: &[BertLayer<'_>],
    weights: &SafeTensors,
    cpu: CpuLevel,
) -> Option<ResidentLayers> {
    let plan = plan(layers, cpu);
    let mut offsets = Vec::with_capacity(plan.len());
    let mut end = 0usize;
    for (_, len) in &plan {
        let start = end.next_multiple_of(ALIGN);
        offsets.push(start..start + len);
        end = start + len;
    }
    let mut buf = HugeBufferMut::new(end)?;
    let bytes = buf.bytes_mut();
    let mut slot = 0;
    let mut next = || {
        let (placed, _) = plan[slot];
        let range = offsets[slot].clone();
        slot += 1;
        (placed, range)
    };
    for layer in layers {
        for lin in layer.linears() {
            let (placed, range) = next();
            let dst = &mut bytes[range];
            let (src, borrowed) = match &lin.weight {
                Weight::Packed(p) => {
                    dst.copy_from_slice(p.data.as_bytes());
                    (p.data.as_bytes(), true)
                }
                #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
                Weight::Tiles(t) => {
                    dst.copy_from_slice(t.as_bytes());
                    (t.as_bytes(), true)
                }
                Weight::Stored(m) => {
                    match (placed, m) {
                        (Placed::Panels { n, k, nr, .. }, Mat::F32(w)) => {
                            packed::pack(w, n, k, nr, bytemuck::cast_slice_mut(dst))
                        }
                        (
                            Placed::Panels {
                                n,
                                k,
                                nr,
                                half: true,
                            },
                            Mat::F16(w),
                        ) => packed::pack::<f16>(w, n, k, nr, bytemuck::cast_slice_mut(dst)),
                        (
                            Placed::Panels {
                                n,
                                k,
                                nr,
                                half: false,
                            },
                            Mat::F16(w),
                        ) => {
                            let wide: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
                            packed::pack(&wide, n, k, nr, bytemuck::cast_slice_mut(dst))
                        }
                        _ => dst.copy_from_slice(m.as_bytes()),
                    }
                    (m.as_bytes(), m.is_borrowed())
                }
            };
            if borrowed && weights.holds_file_bytes(src) {
                // SAFETY: `src` lies in the weights' read-only file mapping (checked just above),
                // whose pages read back unchanged after being dropped.
                unsafe { crate::memory::release_file_pages(src) };
            }
            if let Some(b) = &lin.bias {
                let (_, range) = next();
                bytes[range].copy_from_slice(bytemuck::cast_slice(b));
            }
        }
        for ln in layer.norms() {
            for v in [&ln.weight, &ln.bias] {
                let (_, range) = next();
                bytes[range].copy_from_slice(bytemuck::cast_slice(v));
            }
        }
    }
    let frozen = buf.freeze()?;
    let cell = ResidentCell::try_new(frozen, |buf| -> Result<LayerStack<'_>, ()> {
        let bytes = buf.bytes();
        let mut slot = 0;
        let mut next = || {
            let (placed, _) = plan[slot];
            let range = offsets[slot].clone();
            slot += 1;
            (placed, &bytes[range])
        };
        let mut out = Vec::with_capacity(layers.len());
        for layer in layers {
            let mut linears = Vec::with_capacity(6);
            for lin in layer.linears() {
                let (placed, data) = next();
                let weight = match (placed, &lin.weight) {
                    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
                    (Placed::Tiles { n, k }, _) => {
                        Weight::Tiles(crate::ops::Tiles::new(data, n, k).ok_or(())?)
                    }
                    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
                    (_, Weight::Tiles(_)) => return Err(()),
                    (Placed::Panels { n, k, nr, half }, _) => Weight::Packed(Panels {
                        data: if half {
                            Floats::F16(bytemuck::cast_slice(data))
                        } else {
                            Floats::F32(bytemuck::cast_slice(data))
                        },
                        n,
                        k,
                        nr,
                    }),
                    (_, Weight::Stored(Mat::F32(_))) => Weight::Stored(Mat::F32(cast(data))),
                    (_, Weight::Stored(Mat::F16(_))) => Weight::Stored(Mat::F16(cast(data))),
                    (_, Weight::Stored(Mat::BF16(_))) => Weight::Stored(Mat::BF16(cast(data))),
                    // Planned as panels above.
                    (_, Weight::Packed(_)) => return Err(()),
                };
                let bias = lin.bias.as_ref().map(|_| cast(next().1));
                linears.push(Linear {
                    weight,
                    bias,
                    in_dim: lin.in_dim,
                    out_dim: lin.out_dim,
                });
            }
            let norms = layer.norms().map(|ln| LayerNorm {
                weight: cast(next().1),
                bias: cast(next().1),
                eps: ln.eps,
            });
            out.push(BertLayer::from_parts(
                linears.try_into().map_err(|_| ())?,
                norms,
            ));
        }
        Ok(out)
    })
    .ok()?;
    Some(ResidentLayers(cell))
}
