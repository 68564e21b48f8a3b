//! Messages to the user: always on stderr (stdout carries only data), one line each, prefixed
//! `sembed: error:` / `warning:` / `note:`. Colour only when stderr is a terminal and `NO_COLOR` is
//! unset (or `--color always`); `--quiet` silences notes, warnings and progress, never errors.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};

use crate::args::{ColorWhen, GlobalArgs};

/// How this run talks to the user.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    quiet: bool,
    color: bool,
    tty: bool,
    when: ColorWhen,
    no_color: bool,
}

impl Printer {
    pub fn new(args: &GlobalArgs) -> Self {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match args.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => tty && !no_color,
        };
        Printer {
            quiet: args.quiet,
            color,
            tty,
            when: args.color,
            no_color,
        }
    }

    /// Whether messages on stderr are coloured.
    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether data on stdout (search hits) is coloured: `--color always`, or auto with stdout a
    /// terminal and NO_COLOR unset.
    pub fn color_stdout(&self) -> bool {
        match self.when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => !self.no_color && std::io::stdout().is_terminal(),
        }
    }

    /// A warning (a file skipped, say), unless `--quiet`.
    pub fn warning(&self, msg: &str) {
        if !self.quiet {
            self.line(
                "warning",
                Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())),
                msg,
            );
        }
    }

    fn line(&self, label: &str, style: Style, msg: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.color {
            writeln!(err, "sembed: {style}{label}:{style:#} {msg}")
        } else {
            writeln!(err, "sembed: {label}: {msg}")
        };
    }

    /// An error (printed even with `--quiet`).
    pub fn error(&self, msg: &str) {
        self.line(
            "error",
            Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
            msg,
        );
    }

    /// Information about what was done.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            self.line(
                "note",
                Style::new().bold().fg_color(Some(AnsiColor::Cyan.into())),
                msg,
            );
        }
    }

    /// Plain status text (distillation stages, download lines), unless `--quiet`.
    #[cfg_attr(not(any(feature = "hub", feature = "distill")), allow(dead_code))]
    pub fn status(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// Whether progress may be drawn: stderr is a terminal and not `--quiet`.
    pub fn progress(&self) -> bool {
        self.tty && !self.quiet
    }

    /// Whether `--quiet` was given.
    #[cfg_attr(not(feature = "hub"), allow(dead_code))]
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }
}
