//! `GET /metrics`: Prometheus text format, through `prometheus-client` (the Prometheus project's
//! Rust client). Requests by route and status, latency, the queue, batch sizes, tokens embedded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteStatus {
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Route {
    pub route: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every series the server keeps.
pub(crate) struct Metrics {
    registry: Registry,
    pub requests: Family<RouteStatus, Counter>,
    pub latency: Family<Route, Histogram, fn() -> Histogram>,
    pub in_flight: Gauge,
    pub queue_depth: Gauge,
    pub batch_texts: Histogram,
    pub batch_tokens: Histogram,
    pub embedded_texts: Counter,
    pub embedded_tokens: Counter,
    pub cancelled: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("sembed"),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            queue_depth: Gauge::default(),
            batch_texts: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            batch_tokens: Histogram::new(exponential_buckets(8.0, 2.0, 14)),
            embedded_texts: Counter::default(),
            embedded_tokens: Counter::default(),
            cancelled: Counter::default(),
        };
        let r = &mut m.registry;
        r.register(
            "requests",
            "HTTP requests answered, by route and status",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a request's arrival to its response, by route",
            m.latency.clone(),
        );
        r.register(
            "requests_in_flight",
            "Requests being served (queued or computing)",
            m.in_flight.clone(),
        );
        r.register(
            "queue_depth",
            "Pieces of requests waiting for a batch",
            m.queue_depth.clone(),
        );
        r.register(
            "batch_texts",
            "Texts in each engine batch",
            m.batch_texts.clone(),
        );
        r.register(
            "batch_tokens",
            "Tokens in each engine batch",
            m.batch_tokens.clone(),
        );
        r.register("embedded_texts", "Texts embedded", m.embedded_texts.clone());
        r.register(
            "embedded_tokens",
            "Tokens embedded (special tokens included)",
            m.embedded_tokens.clone(),
        );
        r.register(
            "cancelled_pieces",
            "Queued work dropped because its client went away",
            m.cancelled.clone(),
        );
        m
    }

    /// The exposition text.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
