//! Progress on stderr, only when it is a terminal (and not `--quiet`): downloads (one line redrawn
//! in place; large files keep their finished line, small ones are overwritten by the next; in logs,
//! one line per model and nothing per byte) and embedding a large input (an indicatif bar).

#[cfg(feature = "hub")]
use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::Printer;

/// Files at least this big keep their line once finished.
#[cfg(feature = "hub")]
const KEEP_LINE: u64 = 1 << 20;

#[cfg(feature = "hub")]
pub struct Bar {
    tty: bool,
    quiet: bool,
    file: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    start_bytes: u64,
    last_draw: Option<Instant>,
    /// A line is on screen without its newline.
    open_line: bool,
}

#[cfg(feature = "hub")]
impl Bar {
    pub fn new(printer: &Printer) -> Self {
        Bar {
            tty: printer.progress(),
            quiet: printer.is_quiet(),
            file: String::new(),
            total: None,
            done: 0,
            started: Instant::now(),
            start_bytes: 0,
            last_draw: None,
            open_line: false,
        }
    }

    fn draw(&mut self, force: bool) {
        if !self.tty {
            return;
        }
        let now = Instant::now();
        if !force
            && self
                .last_draw
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(now);
        let secs = (now - self.started).as_secs_f64().max(1e-3);
        let rate = human(((self.done - self.start_bytes) as f64 / secs) as u64);
        let line = match self.total {
            Some(t) if t > 0 => {
                let filled = ((self.done as f64 / t as f64).min(1.0) * 20.0) as usize;
                format!(
                    "{} [{}{}] {} / {} {rate}/s",
                    self.file,
                    "#".repeat(filled),
                    "-".repeat(20 - filled),
                    human(self.done),
                    human(t),
                )
            }
            _ => format!("{} {} {rate}/s", self.file, human(self.done)),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.open_line = true;
    }

    fn close_line(&mut self) {
        if self.open_line {
            eprintln!();
            self.open_line = false;
        }
    }
}

#[cfg(feature = "hub")]
impl sembed::hub::Progress for Bar {
    fn model(&mut self, model: &sembed::hub::ModelRef, commit: &str, files: usize) {
        self.close_line();
        if self.quiet {
            return;
        }
        eprintln!(
            "sembed: downloading {model} ({files} file{}, commit {})",
            if files == 1 { "" } else { "s" },
            &commit[..commit.len().min(10)]
        );
    }

    fn start(&mut self, file: &str, total: Option<u64>, done: u64) {
        self.file = file.to_string();
        self.total = total;
        self.done = done;
        self.start_bytes = done;
        self.started = Instant::now();
        self.draw(true);
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        self.draw(false);
    }

    fn finish(&mut self) {
        self.draw(true);
        if self.done >= KEEP_LINE {
            self.close_line();
        }
    }

    fn model_done(&mut self) {
        if self.open_line && self.tty {
            // The last small file's line goes; the big ones stay as the record.
            eprint!("\r\x1b[2K");
            self.open_line = false;
        }
    }
}

/// `12.3 MB`-style sizes (decimal units, as download tools print them).
#[cfg(feature = "hub")]
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

/// Embedding progress: texts done (and input bytes read, when the input's size is known), drawn
/// only once the run proves long (a second, or more texts than one chunk).
pub struct Embedding {
    allowed: bool,
    size: Option<u64>,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Embedding {
    pub fn new(printer: &Printer, size: Option<u64>) -> Self {
        Embedding {
            allowed: printer.progress(),
            size,
            started: Instant::now(),
            bar: None,
        }
    }

    /// `texts` done so far, `bytes` of input read so far.
    pub fn update(&mut self, texts: u64, bytes: u64, large: bool) {
        if !self.allowed {
            return;
        }
        if self.bar.is_none() && (large || self.started.elapsed() > Duration::from_secs(1)) {
            let bar = match self.size {
                Some(total) => ProgressBar::with_draw_target(
                    Some(total),
                    ProgressDrawTarget::stderr(),
                )
                .with_style(
                    ProgressStyle::with_template(
                        "{spinner} [{bar:30}] {bytes}/{total_bytes} {msg} ({elapsed}, {eta} left)",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_style(
                        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    ),
            };
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            if self.size.is_some() {
                bar.set_position(bytes);
            }
            let rate = texts as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{texts} texts embedded, {rate:.0}/s"));
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The progress of an index update on stderr (a terminal, not `--quiet`): files read of those
/// changed, chunks embedded. Warnings print above it.
pub struct Indexing<'p> {
    printer: &'p Printer,
    started: Instant,
    bar: Option<ProgressBar>,
    changed: u64,
}

impl<'p> Indexing<'p> {
    pub fn new(printer: &'p Printer) -> Self {
        Indexing {
            printer,
            started: Instant::now(),
            bar: None,
            changed: 0,
        }
    }

    pub fn event(&mut self, e: sembed_index::Event) {
        match e {
            sembed_index::Event::Walked { changed, .. } => self.changed = changed as u64,
            sembed_index::Event::Indexed { files, embedded } => {
                if !self.printer.progress() {
                    return;
                }
                // Shown once a run is long enough to wonder about.
                if self.bar.is_none() && self.started.elapsed() > Duration::from_millis(500) {
                    let bar = ProgressBar::with_draw_target(
                        Some(self.changed),
                        ProgressDrawTarget::stderr(),
                    )
                    .with_style(
                        ProgressStyle::with_template(
                            "indexing [{bar:30}] {pos}/{len} files, {msg} ({elapsed}, {eta} left)",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    self.bar = Some(bar);
                }
                if let Some(bar) = &self.bar {
                    bar.set_position(files as u64);
                    bar.set_message(format!("{embedded} chunks embedded"));
                }
            }
            sembed_index::Event::Warning(w) => match &self.bar {
                Some(bar) => bar.suspend(|| self.printer.warning(&w)),
                None => self.printer.warning(&w),
            },
            _ => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
