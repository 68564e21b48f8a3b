//! `--model`: resolved by the library's rules (`sembed::resolve`), loaded with the options the
//! environment sets (`SEMBED_CPU`, `SEMBED_RESIDENT`).

use std::path::PathBuf;

use anyhow::Context;
use sembed::{Embedder, LoadOptions, Residency};

use crate::args::ModelArgs;
use crate::printer::Printer;

/// The load options of this process: `SEMBED_CPU=amx|avx512|avx2|portable` caps the instruction set,
/// `SEMBED_RESIDENT=0` keeps weights mapped (both for benchmarking); weights digests and prepared
/// copies of weights (`prepared/`, the kernels' layout, so a load packs nothing) are kept in the
/// user cache folder.
pub fn load_options() -> anyhow::Result<LoadOptions> {
    let cpu = match std::env::var("SEMBED_CPU") {
        Ok(v) => v.parse().context("SEMBED_CPU")?,
        Err(_) => sembed::Cpu::Auto,
    };
    let residency = match std::env::var("SEMBED_RESIDENT").as_deref() {
        Ok("0") => Residency::Never,
        Ok("eager") => Residency::Eager,
        _ => Residency::Auto,
    };
    Ok(LoadOptions {
        cpu,
        residency,
        digest_cache: cache_dir().map(|d| d.join("digests")),
        prepared: prepared_dir(),
        ..Default::default()
    })
}

/// Where prepared copies of model weights go: `prepared/` in [`cache_dir`].
pub fn prepared_dir() -> Option<PathBuf> {
    cache_dir().map(|d| d.join("prepared"))
}

/// `$XDG_CACHE_HOME/sembed`, else `~/.cache/sembed`.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|c| c.join("sembed"))
}

/// Loads the model named by `--model` (the built-in one when absent or `builtin`).
pub fn load(args: &ModelArgs, printer: &Printer) -> anyhow::Result<Embedder> {
    let opts = load_options()?;
    let name = match args.model.as_deref() {
        None | Some("builtin") => return builtin(&opts),
        Some(name) => name,
    };
    from_name(name, args.offline, &opts, printer)
}

#[cfg(feature = "hub")]
fn from_name(
    name: &str,
    offline: bool,
    opts: &LoadOptions,
    printer: &Printer,
) -> anyhow::Result<Embedder> {
    let hub = hub(offline);
    let mut bar = crate::progress::Bar::new(printer);
    let resolved = sembed::resolve(name, &hub, &mut bar)
        .with_context(|| format!("cannot load model {name}"))?;
    if let sembed::Resolved::Builtin {
        instead_of: Some(id),
    } = &resolved
    {
        printer.note(&format!(
            "{id} is not in the Hugging Face cache: using the built-in float16 copy \
             (its vectors are within 0.9999995 cosine of the original's)"
        ));
    }
    resolved
        .load(opts)
        .with_context(|| format!("cannot load model {name}"))
}

#[cfg(not(feature = "hub"))]
fn from_name(
    name: &str,
    _offline: bool,
    opts: &LoadOptions,
    _printer: &Printer,
) -> anyhow::Result<Embedder> {
    Embedder::from_dir_with(name, opts).context("cannot load model")
}

/// The hub as the environment configures it; `--offline` adds to HF_HUB_OFFLINE.
#[cfg(feature = "hub")]
pub fn hub(offline: bool) -> sembed::hub::Hub {
    let mut opts = sembed::hub::HubOptions::from_env();
    opts.offline |= offline;
    sembed::hub::Hub::new(opts)
}

#[cfg(feature = "builtin")]
fn builtin(opts: &LoadOptions) -> anyhow::Result<Embedder> {
    Embedder::builtin_with(opts).context("cannot load the built-in model")
}

#[cfg(not(feature = "builtin"))]
fn builtin(_: &LoadOptions) -> anyhow::Result<Embedder> {
    anyhow::bail!("this build has no built-in model (feature `builtin`): pass --model PATH")
}
