//! `sembed embed`: texts in, vectors out.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use sembed::output::{self, Format};

use super::{EmbedArgs, OutputFormat, input, model};

/// Texts per library call when progress is shown; large enough that length-sorting still pays.
const PROGRESS_CHUNK: usize = 2048;

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let texts = input::read_texts(args.texts, args.input.as_deref(), args.input_format)?;
    let model = model::load(&args.model)?;
    let opts = args.run.options();

    let show_progress = texts.len() > PROGRESS_CHUNK && std::io::stderr().is_terminal();
    let embeddings = if show_progress {
        let start = Instant::now();
        let mut data = Vec::with_capacity(texts.len() * model.dim());
        for (i, chunk) in texts.chunks(PROGRESS_CHUNK).enumerate() {
            data.extend_from_slice(model.embed(chunk, &opts)?.as_slice());
            let done = (i * PROGRESS_CHUNK + chunk.len()).min(texts.len());
            eprint!(
                "\rembedded {done}/{} texts ({:.1} s)",
                texts.len(),
                start.elapsed().as_secs_f32()
            );
        }
        eprintln!();
        sembed::Embeddings::new(model.dim(), data)
    } else {
        model.embed(&texts, &opts)?
    };

    let format = match args.format {
        OutputFormat::Json => Format::Json,
        OutputFormat::Jsonl => Format::Jsonl,
        OutputFormat::Npy => Format::Npy,
        OutputFormat::F32 => Format::F32,
        OutputFormat::Csv => Format::Csv,
    };
    match &args.output {
        Some(path) => {
            let f =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = BufWriter::new(f);
            output::write(&mut w, &embeddings, format)
                .and_then(|()| w.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let mut w = BufWriter::new(std::io::stdout().lock());
            output::write(&mut w, &embeddings, format)
                .and_then(|()| w.flush())
                .context("writing to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
