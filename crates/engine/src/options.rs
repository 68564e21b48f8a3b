//! What a caller can choose: how a model is loaded ([`LoadOptions`]) and how texts are embedded
//! ([`EmbedOptions`]). Both are plain structs with sentence-transformers' behaviour as `Default`;
//! the library reads no environment variable (an application may, and fill these in).

use std::path::PathBuf;

use crate::ops::{CpuLevel, Isa};
use crate::threads::ThreadPool;

pub use crate::encoder::Residency;

/// The widest instruction set a model's kernels may use. AVX2 and AVX-512 give the same bits
/// (the encoder's products are one chain of fused multiply-adds per output either way); AMX
/// (Intel Xeon 4th generation and later, Linux) multiplies on bf16 tiles with each operand split
/// in two — within the fidelity bounds, other last bits; the portable level, for CPUs without
/// AVX2, agrees to within 1e-5. Any level gives a text the same bits alone or in any batch. The
/// cap exists to measure or avoid one path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cpu {
    /// The best this CPU has.
    #[default]
    Auto,
    /// At most AMX tiles (the same as `Auto` today).
    Amx,
    /// At most AVX-512F (no AMX).
    Avx512,
    /// At most AVX2 + FMA + F16C.
    Avx2,
    /// Plain loops only.
    Portable,
}

impl Cpu {
    /// The level a model loaded with this cap runs at on this CPU.
    pub(crate) fn level(self) -> CpuLevel {
        CpuLevel::detect(match self {
            Cpu::Auto | Cpu::Amx => Isa::Amx,
            Cpu::Avx512 => Isa::Avx512,
            Cpu::Avx2 => Isa::Avx2,
            Cpu::Portable => Isa::Portable,
        })
    }
}

impl std::str::FromStr for Cpu {
    type Err = crate::Error;
    /// `auto`, `amx`, `avx512`, `avx2` or `portable` (what `SEMBED_CPU` takes in the CLI).
    fn from_str(s: &str) -> crate::Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Cpu::Auto,
            "amx" => Cpu::Amx,
            "avx512" => Cpu::Avx512,
            "avx2" => Cpu::Avx2,
            "portable" => Cpu::Portable,
            other => {
                return Err(crate::Error::InvalidOption(format!(
                    "cpu level {other:?}: expected auto, amx, avx512, avx2 or portable"
                )));
            }
        })
    }
}

/// How a model is loaded. `Default` detects the CPU, copies weights to huge pages once a model is
/// used a lot, and shares the process-wide thread budget.
///
/// ```
/// use sembed::{Cpu, LoadOptions, Residency, ThreadPool};
/// let opts = LoadOptions {
///     cpu: Cpu::Avx2,
///     residency: Residency::Eager,
///     threads: Some(ThreadPool::new(4)),
///     ..Default::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The instruction-set cap.
    pub cpu: Cpu,
    /// When the encoder's layers move to a packed copy in huge pages.
    pub residency: Residency,
    /// The thread budget this model's calls draw from; `None` is [`ThreadPool::global`].
    pub threads: Option<ThreadPool>,
    /// The name `info()` reports (default: the folder's name, the hub id, or the built-in name).
    pub name: Option<String>,
    /// A folder where the sha256 of weights files outside the Hugging Face cache is remembered
    /// (keyed by device, inode, size and modification time), so a fingerprint costs a hash once.
    /// `None`: hashed once per process.
    pub digest_cache: Option<PathBuf>,
    /// A folder for prepared copies of weights files: f32/f16 encoder weights are rearranged
    /// into the kernels' layout once, written there (named by the file's sha256, checked when
    /// read, replaced atomically) and mapped by later loads, which then pack nothing. Each copy
    /// is the size of its weights file; delete the folder any time. `None`: weights as stored
    /// are packed in memory at every load (~20 ms for MiniLM's f32 layers here). Either way the
    /// vectors are the same bits. At the AMX level an f32 model's copy holds the kernel's bf16
    /// tiles instead (the same size), which it would otherwise split on every call. The folder
    /// also keeps prepared WordPiece vocabularies (hash tables read in place, named by
    /// tokenizer.json's sha256, ~1.3 MB for a 30k vocabulary), so a load scans none: the same
    /// token ids, ~15 M fewer instructions per start.
    pub prepared: Option<PathBuf>,
}

/// Options for one embedding call. `Default` gives sentence-transformers' behaviour.
///
/// ```
/// let opts = sembed::EmbedOptions { threads: 1, ..Default::default() };
/// assert_eq!(opts.batch_size, 32);
/// ```
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// Sequences per forward pass (default 32, as in sentence-transformers).
    pub batch_size: usize,
    /// Most threads this call may use from the model's thread budget; 0 means as many as the
    /// budget has free. One short text shares its matrix products with a second thread.
    pub threads: usize,
    /// `Some(true)`/`Some(false)` forces L2 normalization on/off; `None` follows the model's modules.
    pub normalize: Option<bool>,
    /// Truncation length in tokens (specials included); `None` uses the model's `max_seq_length`.
    pub max_length: Option<usize>,
    /// Cut over-long texts (the default, as sentence-transformers does); `false` makes an over-long
    /// text an [`Error::TooLong`](crate::Error::TooLong) instead.
    pub truncate: bool,
    /// Keep only the first N dimensions (Matryoshka), as sentence-transformers' `truncate_dim`: applied
    /// after the model's own modules (its Normalize included); `normalize: Some(true)` normalizes
    /// again after the cut.
    pub truncate_dim: Option<usize>,
    /// A prompt by name from the model's `config_sentence_transformers.json` (e.g. `query`).
    pub prompt_name: Option<String>,
    /// A literal prompt prepended to every text; takes precedence over `prompt_name`. Without
    /// either, the model's `default_prompt_name` applies, as in sentence-transformers. Static
    /// models take prompts too (prepended text, as sentence-transformers does for them).
    pub prompt: Option<String>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            batch_size: 32,
            threads: 0,
            normalize: None,
            max_length: None,
            truncate: true,
            truncate_dim: None,
            prompt_name: None,
            prompt: None,
        }
    }
}
