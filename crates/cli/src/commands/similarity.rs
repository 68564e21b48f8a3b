//! `sembed similarity`: cosine of the first text with each other text, or the full matrix.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::args::SimilarityArgs;
use crate::model;
use crate::printer::Printer;

pub fn run(args: SimilarityArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let model = model::load(&args.model, printer)?;
    let e = model.embed(&args.texts, &args.run.options())?;
    let mut out = String::new();
    if args.matrix {
        for a in e.rows() {
            let row: Vec<String> = e.rows().map(|b| sembed::cosine(a, b).to_string()).collect();
            out.push_str(&row.join("\t"));
            out.push('\n');
        }
    } else {
        for b in e.rows().skip(1) {
            out.push_str(&format!("{}\n", sembed::cosine(e.row(0), b)));
        }
    }
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
