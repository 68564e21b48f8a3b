//! `sembed models list|pull|rm|aliases`: the Hugging Face cache from the command line.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use sembed::hub::{ALIASES, ModelRef};

use crate::args::ModelsCommand;
use crate::model::hub;
use crate::printer::Printer;
use crate::progress::{Bar, human};

pub fn run(cmd: ModelsCommand, printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ModelsCommand::List { json } => {
            let hub = hub(true);
            let models = hub.cache().list()?;
            if json {
                let v: Vec<_> = models
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "id": m.repo_id,
                            "path": m.path,
                            "size": m.size,
                            "refs": m.refs.iter().map(|(r, c)| (r.clone(), serde_json::Value::from(c.as_str()))).collect::<serde_json::Map<_, _>>(),
                            "snapshots": m.snapshots,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else if models.is_empty() {
                printer.status(&format!("no models in {}", hub.cache().root().display()));
            } else {
                for m in &models {
                    let refs: Vec<String> = m
                        .refs
                        .iter()
                        .map(|(r, c)| format!("{r}={}", &c[..c.len().min(10)]))
                        .collect();
                    writeln!(
                        out,
                        "{:<56} {:>9}  {}",
                        m.repo_id,
                        human(m.size),
                        refs.join(" ")
                    )?;
                }
                printer.status(&format!("cache: {}", hub.cache().root().display()));
            }
        }
        ModelsCommand::Pull {
            model,
            refresh,
            offline,
        } => {
            let model: ModelRef = model.parse()?;
            let hub = hub(offline);
            let mut bar = Bar::new(printer);
            let dir = if refresh {
                hub.download(&model, &mut bar)
            } else {
                hub.resolve(&model, &mut bar)
            }
            .with_context(|| format!("cannot pull {model}"))?;
            writeln!(out, "{}", dir.display())?;
        }
        ModelsCommand::Rm { model } => {
            let model: ModelRef = model.parse()?;
            let hub = hub(true);
            match hub.cache().remove(&model.repo_id)? {
                Some(bytes) => {
                    printer.status(&format!("removed {} ({})", model.repo_id, human(bytes)))
                }
                None => anyhow::bail!(
                    "{} is not in {}",
                    model.repo_id,
                    hub.cache().root().display()
                ),
            }
        }
        ModelsCommand::Aliases => {
            for (alias, id, what) in ALIASES {
                writeln!(out, "{alias:<40} {id:<58} {what}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
