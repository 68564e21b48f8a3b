//! `--model` resolution: a directory, or the built-in model.

use anyhow::Context;
use sembed::Embedder;

use super::ModelArgs;

/// Loads the model named by `--model` (the built-in one when absent or `builtin`).
pub fn load(args: &ModelArgs) -> anyhow::Result<Embedder> {
    match args.model.as_deref() {
        Some(p) if p.as_os_str() != "builtin" => Embedder::from_dir(p).context("cannot load model"),
        _ => builtin(),
    }
}

#[cfg(feature = "builtin")]
fn builtin() -> anyhow::Result<Embedder> {
    Embedder::builtin().context("cannot load the built-in model")
}

#[cfg(not(feature = "builtin"))]
fn builtin() -> anyhow::Result<Embedder> {
    anyhow::bail!("this build has no built-in model (feature `builtin`): pass --model PATH")
}
