//! `sembed serve`: loads each model once and runs the `sembed-server` crate until SIGTERM/SIGINT.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use sembed_server::{Config, ModelSpec, Server};

use crate::args::{ModelArgs, ServeArgs};
use crate::model;
use crate::printer::Printer;

/// The hub id the built-in model is a copy of.
const BUILTIN_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

pub fn run(args: ServeArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let names: Vec<Option<String>> = if args.model.is_empty() {
        vec![None]
    } else {
        args.model.iter().cloned().map(Some).collect()
    };
    let mut specs = Vec::with_capacity(names.len());
    for name in names {
        let start = Instant::now();
        let embedder = model::load(
            &ModelArgs {
                model: name.clone(),
                offline: args.offline,
            },
            printer,
        )?;
        let mut spec = ModelSpec::new(primary_name(name.as_deref()), embedder);
        spec.load_duration = start.elapsed();
        for alias in other_names(name.as_deref()) {
            spec = spec.alias(alias);
        }
        specs.push(spec);
    }
    let secs = Duration::from_secs_f64;
    let config = Config {
        host: args.host,
        port: args.port,
        max_concurrent_requests: args.max_concurrent_requests,
        max_batch_tokens: args.max_batch_tokens,
        max_client_batch_size: args.max_client_batch_size,
        payload_limit: usize::try_from(args.payload_limit).unwrap_or(usize::MAX),
        auto_truncate: args.auto_truncate,
        api_key: args.api_key,
        header_read_timeout: secs(args.header_read_timeout),
        body_read_timeout: secs(args.body_read_timeout),
        shutdown_grace: secs(args.shutdown_grace),
        http_threads: args.http_threads,
    };
    // Access-log lines and the server's warnings; --quiet keeps only warnings.
    let level = if printer.is_quiet() {
        tracing_subscriber::filter::LevelFilter::WARN
    } else {
        tracing_subscriber::filter::LevelFilter::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(printer.color())
        .try_init();
    let server = Server::bind(config, specs)?;
    server
        .run_until_signal(|addr| {
            // The one line a supervisor or a test waits for; printed even with --quiet.
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "listening on http://{addr}");
            let _ = err.flush();
        })
        .context("the server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// The name responses report: the name given, or all-MiniLM-L6-v2 for the built-in model.
fn primary_name(name: Option<&str>) -> String {
    match name {
        None | Some("builtin") => "all-MiniLM-L6-v2".to_string(),
        Some(n) => n.to_string(),
    }
}

/// Other names requests may use: the hub id an alias stands for, the alias of a hub id, and
/// `builtin` / the hub id for the built-in model.
fn other_names(name: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    match name {
        None | Some("builtin") => {
            out.extend(["builtin".to_string(), BUILTIN_ID.to_string()]);
        }
        Some(n) => out.extend(hub_names(n)),
    }
    out
}

#[cfg(feature = "hub")]
fn hub_names(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(id) = sembed::hub::name::alias(name) {
        out.push(id.to_string());
    }
    for (alias, id, _) in sembed::hub::ALIASES {
        if *id == name {
            out.push(alias.to_string());
        }
    }
    if name == BUILTIN_ID || name == "all-MiniLM-L6-v2" {
        out.extend(["all-MiniLM-L6-v2".to_string(), BUILTIN_ID.to_string()]);
    }
    out
}

#[cfg(not(feature = "hub"))]
fn hub_names(_: &str) -> Vec<String> {
    Vec::new()
}
