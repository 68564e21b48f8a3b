//! The HTTP side: the router, what every route shares (the JSON body reader, the embedding path
//! through the batcher) and the middleware (metrics and access log, error shapes, auth,
//! admission). One file per API family: `openai.rs`, `tei.rs`, `ollama.rs`; `ops.rs` has
//! `/metrics` and `/openapi.json`.

pub(crate) mod body;
pub(crate) mod ollama;
pub(crate) mod openai;
pub(crate) mod ops;
pub(crate) mod tei;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sembed::{EmbedOptions, Embeddings};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::{ApiError, Family, Kind, render};
use crate::metrics::{Metrics, Route, RouteStatus};
use crate::models::{Models, Served};

/// What every handler reads.
pub(crate) struct AppState {
    pub config: Config,
    pub models: Models,
    pub metrics: Arc<Metrics>,
    /// Requests admitted and not yet answered.
    pub in_flight: AtomicUsize,
    /// sha256 of the API key, compared in constant time.
    pub key_digest: Option<[u8; 32]>,
    /// When the server started, Unix seconds (OpenAI's `created`).
    pub started_unix: u64,
    /// `/openapi.json`, made at start ([`ops::document`]).
    pub openapi: String,
}

pub(crate) type Shared = Arc<AppState>;

/// Every route, as written in the router (also the `route` label of the metrics: a path that is
/// not one of these is counted as `other`, so a scanner cannot grow the series without bound).
pub(crate) const ROUTES: &[&str] = &[
    "/v1/embeddings",
    "/v1/models",
    "/embed",
    "/similarity",
    "/tokenize",
    "/info",
    "/health",
    "/",
    "/api/embed",
    "/api/embeddings",
    "/api/tags",
    "/api/version",
    "/metrics",
    "/openapi.json",
];

pub(crate) fn router(state: Shared) -> Router {
    let timeout = state.config.body_read_timeout;
    Router::new()
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .route("/embed", post(tei::embed_route))
        .route("/similarity", post(tei::similarity))
        .route("/tokenize", post(tei::tokenize))
        .route("/info", get(tei::info))
        .route("/health", get(tei::health))
        .route("/", post(tei::compat))
        .route("/api/embed", post(ollama::embed_route))
        .route("/api/embeddings", post(ollama::embeddings))
        .route("/api/tags", get(ollama::tags))
        .route("/api/version", get(ollama::version))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::new(Kind::Backend, "internal error (a handler panicked)").into_response()
            },
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(timeout))
        .layer(middleware::from_fn(shape_errors))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(Kind::NotFound, format!("no route {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    let e = ApiError::new(
        Kind::Malformed,
        format!("{method} is not allowed on {}", uri.path()),
    );
    let mut r = e.into_response();
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Counts every request by route and status, times it, and writes one access-log line.
async fn observe(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = if ROUTES.contains(&path.as_str()) {
        path.clone()
    } else {
        "other".to_string()
    };
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    let m = &state.metrics;
    m.requests
        .get_or_create(&RouteStatus {
            route: route.clone(),
            status,
        })
        .inc();
    m.latency
        .get_or_create(&Route { route })
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "sembed::access",
        "{method} {path} {status} {:.2}ms",
        elapsed.as_secs_f64() * 1e3
    );
    response
}

/// Writes an [`ApiError`]'s body in the shape of the API family its path belongs to.
async fn shape_errors(req: Request, next: Next) -> Response {
    let family = Family::of(req.uri().path());
    let mut response = next.run(req).await;
    match response.extensions_mut().remove::<ApiError>() {
        Some(e) => {
            let status = response.status();
            let mut shaped = render(&e, family);
            *shaped.status_mut() = status;
            shaped
        }
        None => response,
    }
}

/// `Authorization: Bearer KEY` on every route but `/health`, when the server has a key.
async fn authorize(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let Some(want) = &state.key_digest else {
        return next.run(req).await;
    };
    if req.uri().path() == "/health" {
        return next.run(req).await;
    }
    let given = bearer(req.headers()).unwrap_or_default();
    let got: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    if bool::from(got.ct_eq(want)) {
        next.run(req).await
    } else {
        let why = if given.is_empty() {
            "missing API key: send Authorization: Bearer KEY"
        } else {
            "wrong API key"
        };
        ApiError::new(Kind::Unauthorized, why).into_response()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// Admission: a POST beyond `max_concurrent_requests` is answered 429 at once, before its body
/// is read, so an overload costs neither queue space nor memory.
async fn admit(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let max = state.config.max_concurrent_requests;
    let admitted = state
        .in_flight
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok();
    if !admitted {
        return ApiError::new(
            Kind::Overloaded,
            format!("the server is at its limit of {max} concurrent requests: retry later"),
        )
        .into_response();
    }
    // Released when the response is made or the client goes away (the future is dropped).
    struct Slot<'a>(&'a AppState);
    impl Drop for Slot<'_> {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.0.metrics.in_flight.dec();
        }
    }
    state.metrics.in_flight.inc();
    let _slot = Slot(&state);
    next.run(req).await
}

/// A request's number of inputs: at least one (400), at most `--max-client-batch-size` (413).
pub(crate) fn check_count(state: &AppState, n: usize, param: &'static str) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::new(Kind::Empty, "the input is empty").param(param));
    }
    let max = state.config.max_client_batch_size;
    if n > max {
        return Err(ApiError::new(
            Kind::TooLarge,
            format!("{n} inputs in one request: the limit is {max} (--max-client-batch-size)"),
        )
        .param(param));
    }
    Ok(())
}

/// Texts or token ids, as a request gave them.
pub(crate) enum Inputs {
    Texts(Vec<String>),
    Ids(Vec<Vec<u32>>),
}

impl Inputs {
    fn len(&self) -> usize {
        match self {
            Inputs::Texts(t) => t.len(),
            Inputs::Ids(t) => t.len(),
        }
    }

    /// Roughly how much tokenizing there is to do.
    fn bytes(&self) -> usize {
        match self {
            Inputs::Texts(t) => t.iter().map(String::len).sum(),
            Inputs::Ids(t) => t.iter().map(Vec::len).sum(),
        }
    }
}

/// Vectors of a request, in input order, and the tokens they took (specials included).
pub(crate) struct Embedded {
    pub rows: Embeddings,
    pub tokens: usize,
}

/// Past this many bytes of text, tokenizing moves off the async threads.
const INLINE_TOKENIZE_BYTES: usize = 16 * 1024;

/// The path every embedding route takes: validate, tokenize, split by the token budget, queue,
/// wait for the pieces, put them back together in order.
pub(crate) async fn embed(
    state: &AppState,
    model: &Served,
    inputs: Inputs,
    opts: EmbedOptions,
) -> Result<Embedded, ApiError> {
    let n = inputs.len();
    check_count(state, n, "input")?;
    // An empty text is embedded as sentence-transformers embeds it (`[CLS] [SEP]`); so is an
    // empty token array.
    if let Inputs::Ids(seqs) = &inputs {
        let vocab = model.vocab_size;
        for (i, ids) in seqs.iter().enumerate() {
            if let Some(id) = ids.iter().find(|&&id| id as usize >= vocab) {
                return Err(ApiError::new(
                    Kind::Validation,
                    format!(
                        "input {i}: token id {id} is outside the model's vocabulary of {vocab} ids"
                    ),
                )
                .param("input"));
            }
        }
    }
    let big = inputs.bytes() > INLINE_TOKENIZE_BYTES;
    let embedder = Arc::clone(&model.embedder);
    let tokenize = move || match inputs {
        Inputs::Texts(t) => embedder.tokenize(&t, &opts),
        Inputs::Ids(ids) => embedder.tokenize_ids(&ids, true, &opts),
    };
    let t = if big {
        tokio::task::spawn_blocking(tokenize)
            .await
            .map_err(|_| ApiError::new(Kind::Backend, "tokenizing failed"))?
    } else {
        tokenize()
    }
    .map_err(ApiError::engine)?;
    let tokens = t.total_tokens();

    // Pieces of at most the token budget (a single text may be longer: the model's own limit
    // bounds it), queued together so they run in order.
    let budget = state.config.max_batch_tokens;
    let mut receivers = Vec::new();
    if tokens <= budget {
        receivers.push(model.batcher.submit(t));
    } else {
        let (mut start, mut acc) = (0, 0);
        for i in 0..t.len() {
            let c = t.token_count(i);
            if i > start && acc + c > budget {
                receivers.push(model.batcher.submit(t.slice(start..i)));
                (start, acc) = (i, 0);
            }
            acc += c;
        }
        receivers.push(model.batcher.submit(t.slice(start..t.len())));
    }
    let mut data = Vec::new();
    let mut dim = model.embedder.dim();
    for rx in receivers {
        match rx.await {
            Ok(Ok(e)) => {
                dim = e.dim();
                if data.is_empty() {
                    data.reserve(n * dim);
                }
                data.extend_from_slice(e.as_slice());
            }
            Ok(Err(why)) => return Err(ApiError::new(Kind::Backend, why)),
            Err(_) => {
                return Err(ApiError::new(
                    Kind::Unavailable,
                    "the server is shutting down",
                ));
            }
        }
    }
    Ok(Embedded {
        rows: Embeddings::new(dim, data),
        tokens,
    })
}

/// `truncation_direction` (TEI): only `Right` (the default, as sentence-transformers cuts).
pub(crate) fn check_direction(d: Option<&str>) -> Result<(), ApiError> {
    match d {
        None => Ok(()),
        Some(d) if d.eq_ignore_ascii_case("right") => Ok(()),
        Some(d) => Err(ApiError::new(
            Kind::Validation,
            format!(
                "truncation_direction {d:?} is not supported: texts are cut on the right, as sentence-transformers cuts them"
            ),
        )
        .param("truncation_direction")),
    }
}

/// The engine's `normalize` option for a request that wants unit vectors (`want`) or not:
/// `None` when the model's own modules already do that (so the vectors are exactly `embed`'s);
/// with `dimensions`, the cut vector is normalized again when `want`.
pub(crate) fn normalize_option(
    model: &Served,
    want: bool,
    dimensions: Option<usize>,
) -> Option<bool> {
    if dimensions.is_none() && want == model.embedder.info().normalize {
        None
    } else {
        Some(want)
    }
}

/// A whole number that may be written `235` or `235.0` (both are JSON Schema integers).
pub(crate) fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    use serde::Deserialize as _;
    use serde::de::Error as _;
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(x) if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) => Ok(Some(x as usize)),
        Some(x) => Err(D::Error::custom(format!("{x} is not a whole number"))),
    }
}

/// `dimensions` (Matryoshka): between 1 and the model's dimension.
pub(crate) fn check_dimensions(d: Option<usize>, model: &Served) -> Result<(), ApiError> {
    let dim = model.embedder.dim();
    match d {
        Some(d) if d == 0 || d > dim => Err(ApiError::new(
            Kind::Validation,
            format!("dimensions must be between 1 and {dim} (the model's dimension), not {d}"),
        )
        .param("dimensions")),
        _ => Ok(()),
    }
}

/// The error statuses every POST route may answer, documented in the OpenAPI document with the
/// family's error body (an enum used only by `utoipa`).
macro_rules! error_responses {
    ($name:ident, $body:ty) => {
        #[derive(utoipa::IntoResponses)]
        #[allow(dead_code)]
        pub(crate) enum $name {
            #[response(status = 400, description = "Not JSON, or an empty input")]
            BadRequest($body),
            #[response(status = 401, description = "Missing or wrong API key")]
            Unauthorized($body),
            #[response(status = 404, description = "No such model")]
            NotFound($body),
            #[response(status = 408, description = "The body arrived too slowly")]
            Timeout($body),
            #[response(status = 413, description = "Body or input count over the limit")]
            TooLarge($body),
            #[response(status = 415, description = "The body is not declared as JSON")]
            MediaType($body),
            #[response(
                status = 422,
                description = "Invalid values: an input over the token limit without truncation, a token id out of range, a bad option"
            )]
            Validation($body),
            #[response(status = 429, description = "At --max-concurrent-requests: retry later")]
            Overloaded($body),
            #[response(status = 500, description = "The engine failed")]
            Backend($body),
            #[response(status = 503, description = "Shutting down")]
            Unavailable($body),
        }
    };
}
pub(crate) use error_responses;
