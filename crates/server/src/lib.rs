//! `sembed serve`: an embedding service that OpenAI, Hugging Face text-embeddings-inference (TEI)
//! and Ollama clients use unchanged.
//!
//! ```text
//! HTTP ─ observe (metrics, access log) ─ shape_errors ─ auth ─ admit (429 past the limit)
//!      ─ routes/{openai,tei,ollama}.rs ─ body.rs (JSON, limits) ─ tokenize
//!      ─ batcher.rs (one queue per model; batches by token budget; splits big requests)
//!      ─ the engine, on its shared thread budget ─ rows back to each request, in order
//! ```
//!
//! - `http.rs` accepts connections (header-read timeout, graceful shutdown), `config.rs` holds
//!   every limit, `models.rs` the served models and their names, `metrics.rs` `/metrics`,
//!   `error.rs` the error type and each API family's error shape.
//!
//! ```no_run
//! use sembed_server::{Config, ModelSpec, Server};
//! let model = ModelSpec::new("all-MiniLM-L6-v2", sembed::Embedder::builtin()?);
//! let server = Server::bind(Config { port: 0, ..Default::default() }, vec![model])?;
//! eprintln!("listening on http://{}", server.local_addr());
//! server.run_until_signal(|_| {})?; // SIGTERM / SIGINT: finish what is in flight, then return
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod batcher;
mod config;
mod error;
mod http;
mod metrics;
mod models;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use sha2::{Digest, Sha256};

pub use config::Config;
pub use error::Error;
pub use models::ModelSpec;

/// A bound, not yet running server.
pub struct Server {
    listener: std::net::TcpListener,
    state: routes::Shared,
}

impl Server {
    /// Checks the configuration, starts each model's batching thread and binds the address.
    /// Nothing is answered until [`run`](Self::run).
    pub fn bind(config: Config, models: Vec<ModelSpec>) -> Result<Server, Error> {
        config.check()?;
        let addr = format!("{}:{}", config.host, config.port);
        let bind_err = |source| Error::Bind {
            addr: addr.clone(),
            source,
        };
        // An IPv6 literal may come with or without brackets.
        let host = config.host.trim_start_matches('[').trim_end_matches(']');
        let listener = std::net::TcpListener::bind((host, config.port)).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let metrics = Arc::new(metrics::Metrics::new());
        let models = models::Models::start(models, config.max_batch_tokens, &metrics)?;
        let key_digest = config
            .api_key
            .as_ref()
            .map(|k| Sha256::digest(k.as_bytes()).into());
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let openapi = routes::ops::document(&models, &config);
        let state = Arc::new(routes::AppState {
            openapi,
            config,
            models,
            metrics,
            in_flight: AtomicUsize::new(0),
            key_digest,
            started_unix,
        });
        Ok(Server { listener, state })
    }

    /// The address it listens on (the port chosen, when the configuration said 0).
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener has an address.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight finish
    /// (up to [`Config::shutdown_grace`]) and returns. `ready` is called with the address once
    /// connections are being accepted. Blocks the calling thread (the server has its own async
    /// runtime; the embedding runs on the engine's thread budget).
    pub fn run<F>(self, shutdown: F, ready: impl FnOnce(SocketAddr)) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let threads = match self.state.config.http_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            n => n,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("sembed-http")
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                what: "cannot start the async runtime",
                source,
            })?;
        let addr = self.local_addr();
        let state = self.state;
        let result = rt.block_on(http::serve(
            self.listener,
            Arc::clone(&state),
            shutdown,
            move || ready(addr),
        ));
        state.models.close();
        // Connections still open after the grace period are cut here.
        rt.shutdown_timeout(std::time::Duration::from_millis(100));
        result
    }

    /// [`run`](Self::run) until SIGTERM or SIGINT (Ctrl-C).
    pub fn run_until_signal(self, ready: impl FnOnce(SocketAddr)) -> Result<(), Error> {
        self.run(http::signal(), ready)
    }
}
