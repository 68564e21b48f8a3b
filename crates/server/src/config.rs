//! [`Config`]: where the server listens and every limit it enforces. The CLI's flags map one to
//! one onto these fields; `Default` holds the measured defaults (BENCHMARKS.md, "sembed serve").

use std::time::Duration;

/// Where to listen and what to allow.
///
/// ```
/// let config = sembed_server::Config {
///     port: 0, // any free port
///     max_concurrent_requests: 64,
///     ..Default::default()
/// };
/// assert_eq!(config.host, "127.0.0.1");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (default loopback: binding elsewhere is the caller's explicit choice).
    pub host: String,
    /// Port (0: a free one, reported by [`Server::local_addr`](crate::Server::local_addr)).
    pub port: u16,
    /// Requests being served at once (queued or computing); one more is answered 429 at once.
    pub max_concurrent_requests: usize,
    /// Tokens in one batch of the engine. Requests queued together are joined up to it; a larger
    /// request is split into pieces of at most this many tokens and put back together in order.
    pub max_batch_tokens: usize,
    /// Inputs in one request (more: 413).
    pub max_client_batch_size: usize,
    /// Bytes of one request body (more: 413).
    pub payload_limit: usize,
    /// Cut inputs over the model's token limit when a request does not say (TEI's
    /// `--auto-truncate`); otherwise such an input is a 422. Ollama's route truncates by default,
    /// as Ollama does.
    pub auto_truncate: bool,
    /// Required as `Authorization: Bearer KEY` on every route but `/health`.
    pub api_key: Option<String>,
    /// Longest wait for a request's headers, also between requests on a kept-alive connection
    /// (a slow or idle client is disconnected, so it cannot hold a connection slot forever).
    pub header_read_timeout: Duration,
    /// Longest wait for a request's body.
    pub body_read_timeout: Duration,
    /// After SIGTERM/SIGINT: how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
    /// Threads of the async runtime (HTTP and JSON); the embedding runs on the engine's own
    /// thread budget. 0: one per core, at most 4.
    pub http_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 8080,
            max_concurrent_requests: 512,
            max_batch_tokens: 16_384,
            max_client_batch_size: 2048,
            payload_limit: 2_000_000,
            auto_truncate: false,
            api_key: None,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            http_threads: 0,
        }
    }
}

impl Config {
    pub(crate) fn check(&self) -> Result<(), crate::Error> {
        let bad = |what: &str| Err(crate::Error::Config(format!("{what} must be at least 1")));
        if self.max_concurrent_requests == 0 {
            return bad("max concurrent requests");
        }
        if self.max_batch_tokens == 0 {
            return bad("max batch tokens");
        }
        if self.max_client_batch_size == 0 {
            return bad("max client batch size");
        }
        if self.payload_limit == 0 {
            return bad("payload limit");
        }
        if self.api_key.as_deref() == Some("") {
            return Err(crate::Error::Config("the API key is empty".into()));
        }
        Ok(())
    }
}
