//! `sembed completions SHELL` and `sembed man`: generated from the clap definitions, so they
//! always match the commands this binary has.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::CommandFactory;

use crate::args::Cli;

/// A completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "sembed", &mut out);
    std::io::stdout()
        .lock()
        .write_all(&out)
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// The pages: `sembed` itself, then `sembed-COMMAND` for each command.
fn pages() -> Vec<(String, clap::Command)> {
    let top = Cli::command();
    let mut pages = vec![("sembed".to_string(), top.clone())];
    for sub in top.get_subcommands() {
        let name = format!("sembed-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    pages
}

fn render(cmd: clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering the man page")?;
    Ok(out)
}

/// A man page on stdout (`command`: a subcommand's), or every page into `dir`.
pub fn man(command: Option<&str>, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, cmd) in pages() {
            let path = dir.join(format!("{name}.1"));
            std::fs::write(&path, render(cmd)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let want = command.map_or("sembed".to_string(), |c| format!("sembed-{c}"));
    let Some((_, cmd)) = pages().into_iter().find(|(n, _)| *n == want) else {
        bail!(
            "no command `{}` (see `sembed --help`)",
            command.unwrap_or_default()
        );
    };
    std::io::stdout()
        .lock()
        .write_all(&render(cmd)?)
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
