//! `sembed search`: update the index for the paths (unless `--no-update`), then rank its chunks
//! for the query and print the best as ripgrep prints matches.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sembed_index::{Index, Mode, Scope, SearchOptions};

use crate::args::{ModeArg, SearchArgs};
use crate::hits::{self, Style};
use crate::printer::Printer;

/// Exit codes as grep's and ripgrep's: a hit, none, an error.
const FOUND: u8 = 0;
const NOT_FOUND: u8 = 1;
const ERROR: u8 = 2;

pub fn run(args: SearchArgs, printer: &Printer) -> ExitCode {
    match search(args, printer) {
        Ok(true) => ExitCode::from(FOUND),
        Ok(false) => ExitCode::from(NOT_FOUND),
        Err(e) => {
            if super::report_code(&e, printer) == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(ERROR)
            }
        }
    }
}

/// Whether anything was printed.
fn search(args: SearchArgs, printer: &Printer) -> anyhow::Result<bool> {
    let stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
    let given: Vec<PathBuf> = args
        .paths
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .cloned()
        .collect();
    // No path: this folder, shown as ripgrep shows it (relative paths, no `./`).
    let shown: Vec<(PathBuf, PathBuf)> = if given.is_empty() && !stdin {
        vec![(PathBuf::new(), PathBuf::from("."))]
    } else {
        given.iter().map(|p| (p.clone(), p.clone())).collect()
    };
    let roots: Vec<PathBuf> = shown.iter().map(|(_, r)| r.clone()).collect();
    // Standard input is read while the model loads.
    let text = stdin.then(|| {
        let limit = args.walk.max_filesize;
        std::thread::spawn(move || read_stdin(limit))
    });

    let model = crate::model::load(&args.model, printer)?;
    let db = super::index::Location::of(args.indexing.index.as_deref())?;
    if args.rebuild {
        db.delete()?;
    }
    let mut index = db.open(&model, &args.indexing.options())?;
    let mut scope = Scope::shown(shown);
    if !args.no_update && !roots.is_empty() {
        let report = super::index::update(&mut index, &model, &roots, &args.walk, printer, true)?;
        // Only what this walk sees: files indexed earlier with other options stay out.
        scope = scope.within(&report);
    }
    let opts = SearchOptions {
        mode: match args.mode {
            ModeArg::Semantic => Mode::Semantic,
            ModeArg::Lexical => Mode::Lexical,
            ModeArg::Hybrid => Mode::Hybrid,
        },
        // -l: enough chunks for --top distinct files, near enough.
        top: if args.files_with_matches {
            args.top.saturating_mul(5)
        } else {
            args.top
        },
        threshold: args.threshold,
    };
    let mut hits = match text {
        Some(t) => {
            let text = t
                .join()
                .map_err(|_| anyhow::anyhow!("reading standard input failed"))??;
            index.search_with_text(&model, &args.query, &text, &scope, &opts)?
        }
        None => index.search(&model, &args.query, &scope, &opts)?,
    };
    if index_is_empty(&hits, &index)? {
        printer.note(&format!(
            "nothing is indexed under {} (no text files found)",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let style = Style::new(printer.color_stdout());
    if args.files_with_matches {
        let mut seen = std::collections::HashSet::new();
        hits.retain(|h| seen.insert(h.path.clone()));
        hits.truncate(args.top);
        for h in &hits {
            if args.json {
                let line = serde_json::json!({ "path": h.path.to_string_lossy() });
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "{}", style.path(&h.path.to_string_lossy()))?;
            }
        }
    } else if args.json {
        for h in &hits {
            serde_json::to_writer(&mut out, &hits::json(h))?;
            writeln!(out)?;
        }
    } else {
        let words: Vec<String> = sembed_index::rank::words(&args.query)
            .map(str::to_lowercase)
            .collect();
        for (i, h) in hits.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            hits::human(&mut out, h, &words, args.context, &style)?;
        }
    }
    out.flush().context("writing results")?;
    Ok(!hits.is_empty())
}

/// No hits, and the reason is that there is nothing to search.
fn index_is_empty(hits: &[sembed_index::Hit], index: &Index) -> anyhow::Result<bool> {
    if !hits.is_empty() {
        return Ok(false);
    }
    let stats = index.stats()?;
    let fp = index.fingerprint()?.to_string();
    Ok(stats
        .collections
        .iter()
        .find(|c| c.fingerprint == fp)
        .is_none_or(|c| c.chunks == 0))
}

/// All of standard input, as text (invalid UTF-8 replaced), refused past `limit` bytes.
fn read_stdin(limit: u64) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .context("reading standard input")?;
    if bytes.len() as u64 > limit {
        anyhow::bail!("standard input is larger than --max-filesize ({limit} bytes)");
    }
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}
