//! `--model` resolution: a directory, the built-in model, or a hub id / alias (via the cache).

use std::path::Path;

use anyhow::Context;
use sembed::Embedder;

use crate::args::ModelArgs;

/// Loads the model named by `--model` (the built-in one when absent or `builtin`).
pub fn load(args: &ModelArgs) -> anyhow::Result<Embedder> {
    let name = match args.model.as_deref() {
        None | Some("builtin") => return builtin(),
        Some(name) => name,
    };
    let path = Path::new(name);
    // An existing path always wins (as in sentence-transformers); so does anything that can only be a path.
    if path.exists() || looks_like_path(name) || !cfg!(feature = "hub") {
        return Embedder::from_dir(path).context("cannot load model");
    }
    from_hub(name, args.offline)
}

fn looks_like_path(name: &str) -> bool {
    name.starts_with(['.', '/', '~']) || name.contains('\\') || name.matches('/').count() > 1
}

#[cfg(feature = "hub")]
fn from_hub(name: &str, offline: bool) -> anyhow::Result<Embedder> {
    let model: sembed::hub::ModelRef = name.parse()?;
    let hub = hub(offline);
    let mut bar = crate::progress::Bar::new();
    Embedder::from_hub(&model, &hub, &mut bar).with_context(|| format!("cannot load model {model}"))
}

#[cfg(not(feature = "hub"))]
fn from_hub(_: &str, _: bool) -> anyhow::Result<Embedder> {
    unreachable!("without the hub feature every name is a path")
}

/// The hub as the environment configures it; `--offline` adds to HF_HUB_OFFLINE.
#[cfg(feature = "hub")]
pub fn hub(offline: bool) -> sembed::hub::Hub {
    let mut opts = sembed::hub::HubOptions::from_env();
    opts.offline |= offline;
    sembed::hub::Hub::new(opts)
}

#[cfg(feature = "builtin")]
fn builtin() -> anyhow::Result<Embedder> {
    Embedder::builtin().context("cannot load the built-in model")
}

#[cfg(not(feature = "builtin"))]
fn builtin() -> anyhow::Result<Embedder> {
    anyhow::bail!("this build has no built-in model (feature `builtin`): pass --model PATH")
}
