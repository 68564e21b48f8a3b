//! The `sembed` command. Parsing and dispatch only; the work lives in the library and `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => cli::report(&err),
    }
}
