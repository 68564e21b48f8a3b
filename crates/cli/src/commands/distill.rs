//! `sembed distill`: a transformer → a Model2Vec static model (see `sembed::distill`).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use sembed::{DistillOptions, DistillStage};

use crate::args::DistillArgs;
use crate::model;
use crate::printer::Printer;

pub fn run(args: DistillArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    // Fail before minutes of work, not after.
    sembed::distill::check_output(&args.output).context("cannot write the output")?;
    let model = model::load(&args.model, printer)?;
    let start = Instant::now();
    let tty = printer.progress();
    let opts = DistillOptions {
        dims: args.dims,
        sif_coefficient: args.sif_coefficient,
        threads: args.threads.unwrap_or(0),
    };
    let files = sembed::distill(&model, &opts, |stage| match stage {
        DistillStage::Encoding { done, total } if tty => {
            eprint!(
                "\rdistill: encoding vocabulary {done}/{total} ({:.1} s)",
                start.elapsed().as_secs_f32()
            );
        }
        DistillStage::Encoding { done: 0, total } => {
            printer.status(&format!("distill: encoding {total} vocabulary tokens"))
        }
        DistillStage::Encoding { .. } => {}
        DistillStage::Pca => {
            if tty {
                eprintln!();
            }
            printer.status(&format!(
                "distill: PCA to {} dimensions, SIF weights ({:.1} s)",
                args.dims,
                start.elapsed().as_secs_f32()
            ));
        }
    })
    .context("distillation failed")?;
    files
        .save(&args.output)
        .with_context(|| format!("cannot save {}", args.output.display()))?;
    printer.status(&format!(
        "distill: wrote {} ({} tokens × {} dims, float16) in {:.1} s",
        args.output.display(),
        files.embeddings.len() / files.dim,
        files.dim,
        start.elapsed().as_secs_f32()
    ));
    Ok(ExitCode::SUCCESS)
}
