//! `sembed embed`: texts in, vectors out.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use sembed::output::{self, Format};

use super::{EmbedArgs, OutputFormat, input, model};

/// Texts per library call: output is written (and progress shown) chunk by chunk, so memory stays
/// bounded; large enough that length-sorted batching and threads still pay.
const CHUNK: usize = 8192;

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let texts = input::read_texts(args.texts, args.input.as_deref(), args.input_format)?;
    let model = model::load(&args.model)?;
    let opts = args.run.options();
    let format = match args.format {
        OutputFormat::Json => Format::Json,
        OutputFormat::Jsonl => Format::Jsonl,
        OutputFormat::Npy => Format::Npy,
        OutputFormat::F32 => Format::F32,
        OutputFormat::Csv => Format::Csv,
    };
    match &args.output {
        Some(path) => {
            // Written under a temporary name and renamed at the end: a failed run leaves no partial file.
            let name = path
                .file_name()
                .map_or("out".into(), |n| n.to_string_lossy().into_owned());
            let tmp = path.with_file_name(format!(".{name}.sembed-{}", std::process::id()));
            let f =
                File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let result = stream(&model, &texts, &opts, format, BufWriter::new(f)).and_then(|()| {
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))
            });
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        None => stream(
            &model,
            &texts,
            &opts,
            format,
            BufWriter::new(std::io::stdout().lock()),
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Embeds `texts` chunk by chunk and writes each chunk as soon as it is done.
fn stream(
    model: &sembed::Embedder,
    texts: &[String],
    opts: &sembed::EmbedOptions,
    format: Format,
    out: impl Write,
) -> anyhow::Result<()> {
    let show_progress = texts.len() > CHUNK && std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut writer =
        output::Writer::new(out, format, texts.len(), model.dim()).context("writing output")?;
    let mut done = 0;
    for chunk in texts.chunks(CHUNK) {
        let e = model.embed(chunk, opts)?;
        writer.write(&e).context("writing output")?;
        done += chunk.len();
        if show_progress {
            eprint!(
                "\rembedded {done}/{} texts ({:.1} s)",
                texts.len(),
                start.elapsed().as_secs_f32()
            );
        }
    }
    if show_progress {
        eprintln!();
    }
    writer.finish().context("writing output")?;
    Ok(())
}
