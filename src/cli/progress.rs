//! Download progress on stderr: a one-line bar redrawn in place when stderr is a terminal; when it
//! is not (logs, CI), one line per model and nothing per byte.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use sembed::hub::{ModelRef, Progress};

pub struct Bar {
    tty: bool,
    file: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    start_bytes: u64,
    last_draw: Option<Instant>,
}

impl Bar {
    pub fn new() -> Self {
        Bar {
            tty: std::io::stderr().is_terminal(),
            file: String::new(),
            total: None,
            done: 0,
            started: Instant::now(),
            start_bytes: 0,
            last_draw: None,
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
        let rate = (self.done - self.start_bytes) as f64 / secs / 1e6;
        let line = match self.total {
            Some(t) if t > 0 => {
                let frac = (self.done as f64 / t as f64).min(1.0);
                let filled = (frac * 24.0) as usize;
                format!(
                    "{:<28} [{}{}] {:>6.1}/{:.1} MB {:>6.1} MB/s",
                    self.file,
                    "#".repeat(filled),
                    " ".repeat(24 - filled),
                    self.done as f64 / 1e6,
                    t as f64 / 1e6,
                    rate
                )
            }
            _ => format!(
                "{:<28} {:>6.1} MB {:>6.1} MB/s",
                self.file,
                self.done as f64 / 1e6,
                rate
            ),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }
}

impl Progress for Bar {
    fn model(&mut self, model: &ModelRef, commit: &str, files: usize) {
        eprintln!(
            "sembed: downloading {model} ({} file{}, commit {})",
            files,
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
        self.last_draw = None;
        self.draw(true);
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        self.draw(false);
    }

    fn finish(&mut self) {
        if self.tty && self.last_draw.is_some() {
            self.draw(true);
            eprintln!();
        }
        self.last_draw = None;
    }
}
