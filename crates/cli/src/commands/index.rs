//! `sembed index`: build or update the search index and say what was done; `--stats`, `--clear`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sembed_index::{Index, UpdateReport};

use crate::args::{IndexArgs, WalkArgs};
use crate::printer::Printer;
use crate::progress;

/// The index file: `--index`, else `index.sqlite` in the user cache folder.
pub fn index_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => cache_db(None),
    }
}

/// Where `--index` says the index is: an SQLite file, or PostgreSQL + pgvector.
pub enum Location {
    File(PathBuf),
    Postgres(Box<sembed_index::PgUrl>),
}

impl Location {
    /// `--index` (a `postgres://` or `postgresql://` URL, or a file), else the default file.
    pub fn of(given: Option<&Path>) -> anyhow::Result<Location> {
        let path = index_path(given)?;
        match path.to_str() {
            Some(s) if sembed_index::is_postgres_url(s) => {
                Ok(Location::Postgres(Box::new(sembed_index::PgUrl::parse(s)?)))
            }
            _ => Ok(Location::File(path)),
        }
    }

    /// The file, or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Postgres(u) => u.to_string(),
        }
    }

    pub fn open(
        &self,
        model: &sembed::Embedder,
        opts: &sembed_index::IndexOptions,
    ) -> anyhow::Result<Index> {
        Ok(match self {
            Location::File(p) => Index::open(p, model, opts)?,
            Location::Postgres(u) => Index::open_postgres(u, model, opts)?,
        })
    }

    /// Deletes the index (file and all beside it, or the tables); the bytes freed, if known, and
    /// whether there was one.
    pub fn delete(&self) -> anyhow::Result<(u64, bool)> {
        Ok(match self {
            Location::File(p) => {
                let freed = sembed_index::delete_index(p)?;
                (freed, freed > 0)
            }
            Location::Postgres(u) => (0, sembed_index::pg_drop(u)?),
        })
    }

    pub fn stats(&self) -> anyhow::Result<Option<sembed_index::Stats>> {
        Ok(match self {
            Location::File(p) => sembed_index::stats(p)?,
            Location::Postgres(u) => sembed_index::pg_stats(u)?,
        })
    }
}

/// `index.sqlite` in `dir`, else in the user cache folder.
pub fn cache_db(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => crate::model::cache_dir().context(
            "no cache folder (set XDG_CACHE_HOME or HOME, or choose a file with --index)",
        )?,
    };
    Ok(dir.join("index.sqlite"))
}

pub fn run(args: IndexArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let db = Location::of(args.indexing.index.as_deref())?;
    let mut out = std::io::stdout().lock();
    if args.clear {
        let (freed, existed) = db.delete()?;
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"deleted": db.shown(), "bytes": freed})
            )?;
        } else if existed && freed > 0 {
            writeln!(out, "deleted {} ({})", db.shown(), human_bytes(freed))?;
        } else if existed {
            writeln!(out, "deleted {}", db.shown())?;
        } else {
            writeln!(out, "no index at {}", db.shown())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.stats {
        let Some(s) = db.stats()? else {
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"path": db.shown(), "exists": false})
                )?;
            } else {
                writeln!(out, "no index at {}", db.shown())?;
            }
            return Ok(ExitCode::SUCCESS);
        };
        print_stats(&mut out, &s, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let roots = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let model = crate::model::load(&args.model, printer)?;
    let mut index = db.open(&model, &args.indexing.options())?;
    let report = update(&mut index, &model, &roots, &args.walk, printer, false)?;
    if args.json {
        writeln!(out, "{}", report_json(&report, &index))?;
    } else {
        print_report(&mut out, &report, &roots, &index)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Updates `index` with progress on stderr; with `note`, one line on stderr says what changed
/// (search's way of telling it indexed first).
pub fn update(
    index: &mut Index,
    model: &sembed::Embedder,
    roots: &[PathBuf],
    walk: &WalkArgs,
    printer: &Printer,
    note: bool,
) -> anyhow::Result<UpdateReport> {
    let mut bar = progress::Indexing::new(printer);
    let result = index.update(model, roots, &walk.options(), &mut |e| bar.event(e));
    bar.finish();
    let r = result?;
    if note && (r.changed > 0 || r.deleted > 0) {
        printer.note(&format!(
            "indexed first: {} file{} changed, {} deleted, {} chunk{} embedded ({:.1} s)",
            r.changed,
            plural(r.changed),
            r.deleted,
            r.embedded,
            plural(r.embedded),
            r.elapsed.as_secs_f64()
        ));
    }
    Ok(r)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn print_report(
    out: &mut impl Write,
    r: &UpdateReport,
    roots: &[PathBuf],
    index: &Index,
) -> anyhow::Result<()> {
    let roots = roots
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let s = &r.skipped;
    writeln!(
        out,
        "{} files under {roots} in {:.2} s: {} changed, {} touched (same content), {} deleted",
        r.seen,
        r.elapsed.as_secs_f64(),
        r.changed,
        r.touched,
        r.deleted
    )?;
    let reasons: Vec<String> = [
        (s.binary, "binary"),
        (s.too_large, "over --max-filesize"),
        (s.not_regular, "not regular files"),
        (s.unreadable, "unreadable"),
        (s.changed, "changing while read"),
        (s.loops, "symlink loops"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if !reasons.is_empty() {
        writeln!(out, "skipped {}: {}", s.total(), reasons.join(", "))?;
    }
    writeln!(
        out,
        "chunks of changed files: {}, {} embedded ({} tokens), {} reused",
        r.chunks,
        r.embedded,
        r.tokens,
        r.chunks.saturating_sub(r.embedded)
    )?;
    let stats = index.stats()?;
    writeln!(
        out,
        "index: {} ({})",
        index.path().display(),
        human_bytes(stats.bytes)
    )?;
    Ok(())
}

fn report_json(r: &UpdateReport, index: &Index) -> serde_json::Value {
    let s = &r.skipped;
    serde_json::json!({
        "index": index.path().to_string_lossy(),
        "files": r.seen,
        "changed": r.changed,
        "touched": r.touched,
        "deleted": r.deleted,
        "skipped": {
            "binary": s.binary,
            "too_large": s.too_large,
            "not_regular": s.not_regular,
            "unreadable": s.unreadable,
            "changed": s.changed,
            "loops": s.loops,
        },
        "chunks": r.chunks,
        "embedded": r.embedded,
        "reused": r.chunks.saturating_sub(r.embedded),
        "tokens": r.tokens,
        "seconds": r.elapsed.as_secs_f64(),
    })
}

/// What the database holds, per model.
pub fn print_stats(
    out: &mut impl Write,
    s: &sembed_index::Stats,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", stats_json(s))?;
        return Ok(());
    }
    print_stats_text(out, s)
}

/// The JSON object `index --stats --json` and `cache stats --json` print.
pub fn stats_json(s: &sembed_index::Stats) -> serde_json::Value {
    let collections: Vec<_> = s
        .collections
        .iter()
        .map(|c| {
            serde_json::json!({
                "model": c.model, "fingerprint": c.fingerprint, "dim": c.dim,
                "documents": c.docs, "chunks": c.chunks, "vectors": c.vectors,
            })
        })
        .collect();
    serde_json::json!({
        "path": s.path.to_string_lossy(),
        "bytes": s.bytes,
        "collections": collections,
        "cached_vectors": s.cached_vectors,
        "cached_bytes": s.cached_bytes,
    })
}

/// Text output of [`print_stats`].
fn print_stats_text(out: &mut impl Write, s: &sembed_index::Stats) -> anyhow::Result<()> {
    writeln!(out, "{} ({})", s.path.display(), human_bytes(s.bytes))?;
    for c in &s.collections {
        writeln!(
            out,
            "  {} ({}-dim, {}): {} documents, {} chunks, {} vectors",
            c.model,
            c.dim,
            &c.fingerprint[..12],
            c.docs,
            c.chunks,
            c.vectors
        )?;
    }
    // (PostgreSQL keeps no embedding cache: only the SQLite file has one.)
    if !s.path.to_str().is_some_and(sembed_index::is_postgres_url) {
        writeln!(
            out,
            "  cache: {} vectors no index uses ({})",
            s.cached_vectors,
            human_bytes(s.cached_bytes)
        )?;
    }
    Ok(())
}

pub fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
