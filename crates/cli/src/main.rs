//! The `sembed` command. Parsing and dispatch only: the definitions are in `args.rs`, each
//! command's execution in `commands/` (the `sembed_cli` library), and the work in the `sembed`
//! library.

use std::process::ExitCode;

use sembed_cli::{args, commands, printer};

// The `_Unwind_*` functions std calls, on musl (see crates/cli/Cargo.toml).
#[cfg(target_env = "musl")]
use unwinding as _;

/// musl's allocator unmaps large buffers on every free; jemalloc keeps them (see Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Past a file size limit (`ulimit -f`) a write then fails with EFBIG, reported as an error
    // (the index keeps its last complete state), instead of the signal killing the process.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let args = <args::Cli as clap::Parser>::parse();
    let printer = printer::Printer::new(&args.global);
    match commands::run(args, &printer) {
        Ok(code) => code,
        Err(err) => commands::report(&err, &printer),
    }
}
