//! The `sembed` command. Parsing and dispatch only; the work lives in the library and `cli/`.

mod args;
mod commands;
mod input;
mod model;
mod output;
#[cfg(feature = "hub")]
mod progress;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <args::Cli as clap::Parser>::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(err) => commands::report(&err),
    }
}
