//! The `sembed` command. Parsing and dispatch only: the definitions are in `args.rs`, each
//! command's execution in `commands/`, and the work in the `sembed` library.

mod args;
mod commands;
mod input;
mod model;
mod output;
mod printer;
mod progress;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <args::Cli as clap::Parser>::parse();
    let printer = printer::Printer::new(&args.global);
    match commands::run(args, &printer) {
        Ok(code) => code,
        Err(err) => commands::report(&err, &printer),
    }
}
