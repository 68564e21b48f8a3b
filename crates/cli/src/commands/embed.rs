//! `sembed embed`: texts in, vectors out.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use crate::output::{self, Format};
use anyhow::Context;
use sembed::quantize::{Precision, Ranges, quantize};

use crate::args::{EmbedArgs, OutputFormat, PrecisionArg};
use crate::{input, model};

/// Texts per library call: output is written (and progress shown) chunk by chunk, so memory stays
/// bounded; large enough that length-sorted batching and threads still pay.
const CHUNK: usize = 8192;

pub fn run(args: EmbedArgs) -> anyhow::Result<ExitCode> {
    let input = input::read_texts(args.texts, args.input.as_deref(), args.input_format)?;
    let texts = input.strs();
    let model = model::load(&args.model)?;
    let opts = args.run.options();
    let precision = match args.precision {
        PrecisionArg::Float32 => Precision::Float32,
        PrecisionArg::Int8 => Precision::Int8,
        PrecisionArg::Uint8 => Precision::Uint8,
        PrecisionArg::Binary => Precision::Binary,
        PrecisionArg::Ubinary => Precision::Ubinary,
    };
    let calibration = match &args.calibration {
        Some(p) => {
            let e = output::read_npy(p).context("cannot use the calibration embeddings")?;
            Some(Ranges::of(&e).context("the calibration file holds no embeddings")?)
        }
        None => None,
    };
    let format = match args.format {
        OutputFormat::Json => Format::Json,
        OutputFormat::Jsonl => Format::Jsonl,
        OutputFormat::Npy => Format::Npy,
        OutputFormat::F32 => Format::F32,
        OutputFormat::Csv => Format::Csv,
    };
    let run = |out: &mut dyn Write| {
        emit(
            &model,
            &texts,
            &opts,
            format,
            (precision, calibration.as_ref()),
            out,
        )
    };
    match &args.output {
        // A regular file (or a new one) is written under a temporary name and renamed at the end, so a
        // failed run leaves no partial file. Anything else — /dev/null, a FIFO, a symlink — is written
        // in place: renaming over it would replace the device or link with a plain file.
        Some(path) if is_plain_target(path) => {
            let name = path
                .file_name()
                .map_or("out".into(), |n| n.to_string_lossy().into_owned());
            let tmp = path.with_file_name(format!(".{name}.sembed-{}", std::process::id()));
            let f =
                File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let result = run(&mut BufWriter::new(f)).and_then(|()| {
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))
            });
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            run(&mut BufWriter::new(f))?;
        }
        None => run(&mut BufWriter::new(std::io::stdout().lock()))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `path` is missing or a regular file (not a symlink, device, FIFO or socket).
fn is_plain_target(path: &std::path::Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) => m.file_type().is_file(),
        Err(_) => true,
    }
}

/// Float32 output streams; quantized output needs every vector first (int8/uint8 ranges may come from
/// the inputs themselves), then is written at once.
fn emit(
    model: &sembed::Embedder,
    texts: &[&str],
    opts: &sembed::EmbedOptions,
    format: Format,
    (precision, calibration): (Precision, Option<&Ranges>),
    mut out: impl Write,
) -> anyhow::Result<()> {
    if precision == Precision::Float32 {
        return stream(model, texts, opts, format, out);
    }
    if format == Format::F32 {
        let msg = "--format f32 holds float32 only; use npy, json, jsonl or csv with --precision";
        return Err(sembed::Error::InvalidOption(msg.into()).into());
    }
    let mut all = Vec::new();
    stream(model, texts, opts, Format::F32, &mut all)?;
    let dim = opts.truncate_dim.unwrap_or(model.dim());
    let floats: Vec<f32> = all
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let q = quantize(
        &sembed::Embeddings::new(dim, floats),
        precision,
        calibration,
    )?;
    output::write_quantized(&mut out, &q, format).context("writing output")?;
    Ok(())
}

/// Embeds `texts` chunk by chunk and writes each chunk as soon as it is done.
fn stream(
    model: &sembed::Embedder,
    texts: &[&str],
    opts: &sembed::EmbedOptions,
    format: Format,
    out: impl Write,
) -> anyhow::Result<()> {
    let show_progress = texts.len() > CHUNK && std::io::stderr().is_terminal();
    let start = Instant::now();
    // Checked before anything is written (the npy header states the width).
    let dim = match opts.truncate_dim {
        Some(t) if t == 0 || t > model.dim() => {
            return Err(sembed::Error::InvalidOption(format!(
                "truncate dim {t} is outside 1..={}",
                model.dim()
            ))
            .into());
        }
        Some(t) => t,
        None => model.dim(),
    };
    let mut writer =
        output::Writer::new(out, format, texts.len(), dim).context("writing output")?;
    let mut done = 0;
    let mut truncated = 0;
    for chunk in texts.chunks(CHUNK) {
        let (e, report) = model
            .embed_with_report(chunk, opts)
            .map_err(|err| match err {
                // Chunk-relative index → position in the whole input.
                sembed::Error::TooLong {
                    index,
                    max,
                    preview,
                } => sembed::Error::TooLong {
                    index: index + done,
                    max,
                    preview,
                },
                other => other,
            })?;
        truncated += report.truncated;
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
    if truncated > 0 {
        eprintln!(
            "sembed: note: {truncated} of {} texts were longer than the model's limit and were truncated \
             (--max-length sets the limit, --no-truncate makes this an error)",
            texts.len()
        );
    }
    Ok(())
}
