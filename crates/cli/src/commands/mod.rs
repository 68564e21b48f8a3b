//! One file per command; each reaches the library only through its public API.

mod cache;
mod completions;
#[cfg(feature = "distill")]
mod distill;
mod embed;
mod index;
mod info;
#[cfg(feature = "hub")]
mod models;
mod search;
mod serve;
mod similarity;

use std::process::ExitCode;

use crate::args::{Cli, Command};
use crate::printer::Printer;

/// Exit code for failures (bad model, bad input, I/O); clap uses 2 for usage errors.
const EXIT_FAILURE: u8 = 1;
/// Exit code for options that parse but make no sense (e.g. --max-length 0).
const EXIT_USAGE: u8 = 2;

/// Runs the parsed command.
pub fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Embed(a) => embed::run(a, printer),
        Command::Similarity(a) => similarity::run(a, printer),
        Command::Info(a) => info::run(a, printer),
        Command::Search(a) => Ok(search::run(a, printer)),
        Command::Index(a) => index::run(a, printer),
        Command::Cache(c) => cache::run(c, printer),
        Command::Serve(a) => serve::run(a, printer),
        #[cfg(feature = "distill")]
        Command::Distill(a) => distill::run(a, printer),
        #[cfg(feature = "hub")]
        Command::Models(c) => models::run(c, printer),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man { command, dir } => completions::man(command.as_deref(), dir.as_deref()),
    }
}

/// Prints `err` as one line on stderr and picks the exit code. A closed stdout is not an error.
pub fn report(err: &anyhow::Error, printer: &Printer) -> ExitCode {
    ExitCode::from(report_code(err, printer))
}

/// [`report`]'s exit code: 0 for a closed stdout (nothing printed), else 1 or 2.
pub fn report_code(err: &anyhow::Error, printer: &Printer) -> u8 {
    let broken_pipe = err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return 0;
    }
    // One line: the context chain, without repeating a message a wrapper already includes.
    let mut parts: Vec<String> = Vec::new();
    for e in err.chain() {
        let m = e.to_string();
        if !parts.last().is_some_and(|p| p.ends_with(&m)) {
            parts.push(m);
        }
    }
    printer.error(&parts.join(": ").replace('\n', " "));
    let usage = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<sembed::Error>(),
            Some(sembed::Error::InvalidOption(_))
        ) || matches!(
            e.downcast_ref::<sembed_index::Error>(),
            Some(sembed_index::Error::Invalid(_))
        ) || matches!(
            e.downcast_ref::<sembed_server::Error>(),
            Some(sembed_server::Error::Config(_))
        ) || is_bad_name(e)
    });
    if usage { EXIT_USAGE } else { EXIT_FAILURE }
}

/// A model name that cannot be a hub id is a usage error, like a bad option.
#[cfg(feature = "hub")]
fn is_bad_name(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        e.downcast_ref::<sembed::hub::Error>(),
        Some(sembed::hub::Error::InvalidName { .. })
    ) || matches!(
        e.downcast_ref::<sembed::Error>(),
        Some(sembed::Error::Hub(sembed::hub::Error::InvalidName { .. }))
    )
}

#[cfg(not(feature = "hub"))]
fn is_bad_name(_: &(dyn std::error::Error + 'static)) -> bool {
    false
}
