//! `sembed cache stats|clear`: the embedding cache of `sembed embed --cache`, and beside it the
//! prepared copies of model weights (the kernels' layout, so a load packs nothing) and prepared
//! tokenizer vocabularies (so a load scans none).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::args::CacheCommand;
use crate::commands::index::human_bytes;
use crate::printer::Printer;

pub fn run(cmd: CacheCommand, _printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let prepared = crate::model::prepared_dir();
    match cmd {
        CacheCommand::Stats { at, json } => {
            let db = super::index::cache_db(at.cache_dir.as_deref())?;
            let (files, bytes) = prepared.as_deref().map(prepared_files).unwrap_or_default();
            let (vocabs, vocab_bytes) =
                prepared.as_deref().map(prepared_vocabs).unwrap_or_default();
            let stats = sembed_index::stats(&db)?;
            if json {
                let mut v = match &stats {
                    Some(s) => super::index::stats_json(s),
                    None => serde_json::json!({"path": db.to_string_lossy(), "exists": false}),
                };
                v["prepared"] = serde_json::json!({
                    "path": prepared.as_deref().map(Path::to_string_lossy),
                    "files": files.len(),
                    "bytes": bytes,
                    "vocabularies": {"files": vocabs.len(), "bytes": vocab_bytes},
                });
                writeln!(out, "{v}")?;
            } else {
                match &stats {
                    Some(s) => super::index::print_stats(&mut out, s, false)?,
                    None => writeln!(out, "no cache at {}", db.display())?,
                }
                if let Some(dir) = &prepared {
                    writeln!(
                        out,
                        "prepared weights: {} ({}), vocabularies: {} ({}) in {}",
                        plural(files.len(), "file"),
                        human_bytes(bytes),
                        plural(vocabs.len(), "file"),
                        human_bytes(vocab_bytes),
                        dir.display()
                    )?;
                }
            }
        }
        CacheCommand::Clear { at, prepared: also } => {
            let db = super::index::cache_db(at.cache_dir.as_deref())?;
            let n = sembed_index::clear_cache(&db)?;
            writeln!(out, "removed {n} cached vectors from {}", db.display())?;
            if also && let Some(dir) = &prepared {
                let (files, bytes) = prepared_files(dir);
                let (vocabs, vocab_bytes) = prepared_vocabs(dir);
                // Copies a killed load left half-written (a load writing one now falls back to
                // packing in memory).
                for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let name = entry.file_name();
                    if name.to_string_lossy().starts_with('.')
                        && name.to_string_lossy().contains(".tmp-")
                    {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
                for f in files.iter().chain(&vocabs) {
                    // A copy in use by another process stays readable to it (unlinked, not gone).
                    std::fs::remove_file(f)
                        .map_err(|e| anyhow::anyhow!("removing {}: {e}", f.display()))?;
                }
                writeln!(
                    out,
                    "removed {} of prepared weights ({}) and {} of vocabularies ({}) from {}",
                    plural(files.len(), "file"),
                    human_bytes(bytes),
                    plural(vocabs.len(), "file"),
                    human_bytes(vocab_bytes),
                    dir.display()
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The prepared copies in `dir` (finished ones: `.safetensors`) and their total size.
fn prepared_files(dir: &Path) -> (Vec<PathBuf>, u64) {
    files_where(dir, |p| p.extension().is_some_and(|e| e == "safetensors"))
}

/// The prepared vocabularies in `dir` (`<sha256>-vocab-v<N>.bin`) and their total size.
fn prepared_vocabs(dir: &Path) -> (Vec<PathBuf>, u64) {
    files_where(dir, |p| {
        p.extension().is_some_and(|e| e == "bin")
            && p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("-vocab-v"))
    })
}

/// The files of `dir` that `keep` accepts, and their total size.
fn files_where(dir: &Path, keep: impl Fn(&Path) -> bool) -> (Vec<PathBuf>, u64) {
    let mut files = Vec::new();
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if keep(&path)
            && let Ok(m) = entry.metadata()
            && m.is_file()
        {
            bytes += m.len();
            files.push(path);
        }
    }
    files.sort();
    (files, bytes)
}

fn plural(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}
