//! `sembed embed`: texts in, vectors out, as the input arrives.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sembed::quantize::{Precision, Quantized, Ranges, quantize};

use crate::args::{EmbedArgs, OutputFormat, PrecisionArg};
use crate::input::{self, Chunk, Input};
use crate::output::{self, Extra, Format, Sink, Writer};
use crate::printer::Printer;
use crate::progress;

/// Most texts per library call: output is written (and progress shown) chunk by chunk, so memory
/// stays bounded; large enough that length-sorted batching and threads still pay. A slow pipe gets
/// smaller calls: whatever has arrived is embedded at once.
const CHUNK: usize = 8192;

pub fn run(args: EmbedArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let precision = match args.precision {
        PrecisionArg::Float32 => Precision::Float32,
        PrecisionArg::Int8 => Precision::Int8,
        PrecisionArg::Uint8 => Precision::Uint8,
        PrecisionArg::Binary => Precision::Binary,
        PrecisionArg::Ubinary => Precision::Ubinary,
    };
    let format = match args.format {
        OutputFormat::Json => Format::Json,
        OutputFormat::Jsonl => Format::Jsonl,
        OutputFormat::Npy => Format::Npy,
        OutputFormat::F32 => Format::F32,
        OutputFormat::Csv => Format::Csv,
    };
    if precision != Precision::Float32 && format == Format::F32 {
        let msg = "--format f32 holds float32 only; use npy, json, jsonl or csv with --precision";
        return Err(sembed::Error::InvalidOption(msg.into()).into());
    }
    // Reading starts now, while the model loads.
    let input = input::open(args.texts, args.input.as_deref(), args.input_format)?;
    let model = crate::model::load(&args.model, printer)?;
    let opts = args.run.options();
    // Every option checked against the model before anything is read or written.
    model.tokenize(&[] as &[&str], &opts)?;
    let dim = opts.truncate_dim.unwrap_or(model.dim());
    let calibration = match &args.calibration {
        Some(p) => {
            let e = output::read_npy(p).context("cannot use the calibration embeddings")?;
            let r = Ranges::of(&e).context("the calibration file holds no embeddings")?;
            if r.dim() != dim {
                return Err(sembed::Error::InvalidOption(format!(
                    "{}: calibration embeddings of {} dimensions for vectors of {dim}",
                    p.display(),
                    r.dim()
                ))
                .into());
            }
            Some(r)
        }
        None => None,
    };
    let (width, descr) = match precision {
        Precision::Float32 => (dim, "<f4"),
        Precision::Int8 => (dim, "|i1"),
        Precision::Uint8 => (dim, "|u1"),
        Precision::Binary => (dim.div_ceil(8), "|i1"),
        Precision::Ubinary => (dim.div_ceil(8), "|u1"),
    };
    let cache = if args.cache || args.cache_dir.is_some() {
        let db = super::index::cache_db(args.cache_dir.as_deref())?;
        let c = sembed_index::Cache::open(&db, &model, &opts)?;
        if let Some(why) = c.bypassed() {
            printer.note(&format!("--cache is bypassed: {why}"));
        }
        Some(std::cell::RefCell::new(c))
    } else {
        None
    };
    let job = Job {
        model: &model,
        opts: &opts,
        cache: cache.as_ref(),
        dim,
        precision,
        calibration: calibration.as_ref(),
        printer,
    };
    let open = |sink| Writer::new(sink, format, (width, descr), args.with_text, args.header);
    match args.output.as_deref() {
        None => job.run(&input, open(stdout())?)?,
        Some(p) if p.as_os_str() == "-" => job.run(&input, open(stdout())?)?,
        // A regular file (or a new one) is written under a temporary name and renamed at the end,
        // so a failed run leaves no partial file. Anything else — /dev/null, a FIFO, a symlink — is
        // written in place: renaming over it would replace the device or link with a plain file.
        Some(path) if is_plain_target(path) => {
            let name = path
                .file_name()
                .map_or("out".into(), |n| n.to_string_lossy().into_owned());
            let tmp = path.with_file_name(format!(".{name}.sembed-{}", std::process::id()));
            let f =
                File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            // A file replaced keeps its permissions.
            if let Ok(m) = std::fs::metadata(path) {
                let _ = std::fs::set_permissions(&tmp, m.permissions());
            }
            let result = open(Sink::File(BufWriter::new(f)))
                .map_err(anyhow::Error::from)
                .and_then(|w| job.run(&input, w))
                .and_then(|()| {
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
            job.run(&input, open(Sink::Stream(Box::new(BufWriter::new(f))))?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Standard output: a file it is redirected to can be rewound (so `-f npy > e.npy` streams too),
/// unless opened for appending; anything else is a stream.
fn stdout() -> Sink {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() {
            let file = File::from(fd);
            if file.metadata().is_ok_and(|m| m.is_file()) && !output::appends(&file) {
                return Sink::File(BufWriter::with_capacity(1 << 16, file));
            }
        }
    }
    Sink::Stream(Box::new(BufWriter::with_capacity(
        1 << 16,
        std::io::stdout(),
    )))
}

/// Whether `path` is missing or a regular file (not a symlink, device, FIFO or socket).
fn is_plain_target(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) => m.file_type().is_file(),
        Err(_) => true,
    }
}

/// One embedding run over an input.
struct Job<'a> {
    model: &'a sembed::Embedder,
    opts: &'a sembed::EmbedOptions,
    /// `--cache`: texts looked up first.
    cache: Option<&'a std::cell::RefCell<sembed_index::Cache>>,
    /// Width of the float vectors.
    dim: usize,
    precision: Precision,
    calibration: Option<&'a Ranges>,
    printer: &'a Printer,
}

impl Job<'_> {
    /// Embeds chunk by chunk and writes each as soon as it is done. Quantization with ranges taken
    /// from the inputs themselves needs every vector first, so that case writes at the end.
    fn run(&self, input: &Input, mut writer: Writer) -> anyhow::Result<()> {
        let streaming = self.precision.is_per_row(self.calibration.is_some());
        let mut held: Vec<(Chunk, sembed::Embeddings)> = Vec::new();
        let mut progress = progress::Embedding::new(self.printer, input.size);
        let (mut done, mut bytes, mut truncated) = (0usize, 0u64, 0usize);
        let (mut hits, mut write_error) = (0usize, None);
        while let Some(first) = input.next() {
            let mut chunk = first?;
            // Whatever else has arrived joins this call, up to CHUNK texts. An input error after
            // it waits until the texts before it are written.
            let mut failed = None;
            while chunk.len() < CHUNK {
                match input.ready() {
                    Some(Ok(next)) => chunk.extend(next),
                    Some(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    None => break,
                }
            }
            let texts = chunk.strs();
            let result = match self.cache {
                Some(c) => c
                    .borrow_mut()
                    .embed(self.model, &texts, self.opts)
                    .map_err(|e| match e {
                        sembed_index::Error::Engine(e) => Ok(e),
                        other => Err(anyhow::Error::from(other)),
                    })
                    .map(|(e, r)| {
                        hits += r.hits;
                        if write_error.is_none() {
                            write_error = r.write_error;
                        }
                        (
                            e,
                            sembed::EmbedReport {
                                truncated: r.truncated,
                            },
                        )
                    }),
                None => self.model.embed_with_report(&texts, self.opts).map_err(Ok),
            };
            let (e, report) = result.map_err(|err| -> anyhow::Error {
                let err = match err {
                    Ok(e) => e,
                    Err(other) => return other,
                };
                match err {
                    // Chunk-relative index → position in the whole input, and its line.
                    sembed::Error::TooLong {
                        index,
                        max,
                        preview,
                    } => anyhow::Error::new(sembed::Error::TooLong {
                        index: index + done,
                        max,
                        preview,
                    })
                    .context(input.locate(chunk.line(index))),
                    other => other.into(),
                }
            })?;
            truncated += report.truncated;
            done += texts.len();
            bytes += chunk.bytes;
            if streaming {
                let q = match self.precision {
                    Precision::Float32 => Quantized::F32(e),
                    p => quantize(&e, p, self.calibration)?,
                };
                writer
                    .write(&q, &extras(&chunk, &texts))
                    .context("writing output")?;
                writer.flush().context("writing output")?;
            } else {
                drop(texts);
                held.push((chunk, e));
            }
            progress.update(done as u64, bytes, done > CHUNK);
            if let Some(e) = failed {
                return Err(e);
            }
        }
        if !streaming {
            let all: Vec<f32> = held
                .iter()
                .flat_map(|(_, e)| e.as_slice().iter().copied())
                .collect();
            let q = quantize(
                &sembed::Embeddings::new(self.dim, all),
                self.precision,
                self.calibration,
            )?;
            let mut ex = Vec::new();
            for (chunk, _) in &held {
                ex.extend(extras(chunk, &chunk.strs()));
            }
            writer.write(&q, &ex).context("writing output")?;
        }
        progress.finish();
        writer.finish().context("writing output")?;
        if let Some(c) = self.cache
            && c.borrow().bypassed().is_none()
        {
            self.printer.note(&format!(
                "cache: {hits} of {done} texts found, {} embedded",
                done - hits
            ));
            if let Some(e) = write_error {
                self.printer
                    .warning(&format!("the new vectors could not be cached: {e}"));
            }
        }
        if truncated > 0 {
            self.printer.note(&format!(
                "{truncated} of {done} texts were longer than the model's limit and were truncated \
                 (--max-length sets the limit, --no-truncate makes this an error)"
            ));
        }
        Ok(())
    }
}

/// Each text's id and text, for the formats that write them.
fn extras<'a>(chunk: &'a Chunk, texts: &[&'a str]) -> Vec<Extra<'a>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Extra {
            id: chunk.id(i),
            text: t,
        })
        .collect()
}
