//! `sembed cache stats|clear`: the embedding cache of `sembed embed --cache`.

use std::io::Write;
use std::process::ExitCode;

use crate::args::CacheCommand;
use crate::printer::Printer;

pub fn run(cmd: CacheCommand, _printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        CacheCommand::Stats { at, json } => {
            let db = super::index::cache_db(at.cache_dir.as_deref())?;
            match sembed_index::stats(&db)? {
                Some(s) => super::index::print_stats(&mut out, &s, json)?,
                None if json => writeln!(
                    out,
                    "{}",
                    serde_json::json!({"path": db.to_string_lossy(), "exists": false})
                )?,
                None => writeln!(out, "no cache at {}", db.display())?,
            }
        }
        CacheCommand::Clear { at } => {
            let db = super::index::cache_db(at.cache_dir.as_deref())?;
            let n = sembed_index::clear_cache(&db)?;
            writeln!(out, "removed {n} cached vectors from {}", db.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
