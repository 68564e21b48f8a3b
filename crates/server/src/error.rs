//! Errors: [`Error`] for starting the server, [`ApiError`] for one request. An `ApiError` says what
//! went wrong; the route family it happened on decides the JSON it is written as (OpenAI's
//! `{"error": {...}}`, TEI's `{"error", "error_type"}`, Ollama's `{"error"}`), in one place:
//! [`render`], called by the `shape_errors` middleware with the request's path.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why the server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be bound (in use, not permitted, not an address of this host).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Another I/O failure of the server (the runtime, the listener).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A configuration that cannot work (no model, a zero limit, two models under one name).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// What kind of failure a request met: decides the status code and each family's error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// 400: the body is not JSON, or not the route's shape at the JSON level.
    Malformed,
    /// 400: no input, or an empty text.
    Empty,
    /// 401: a missing or wrong API key.
    Unauthorized,
    /// 404: no such model (or route).
    NotFound,
    /// 408: the body arrived too slowly (`--body-read-timeout`).
    Timeout,
    /// 413: the body or the number of inputs is over the limit.
    TooLarge,
    /// 415: the body is not declared as JSON.
    MediaType,
    /// 422: the request is JSON of the right shape but its values cannot be served (an input
    /// over the token limit without truncation, a token id out of range, a bad option).
    Validation,
    /// 429: the server is at `--max-concurrent-requests`.
    Overloaded,
    /// 500: the engine failed (never expected).
    Backend,
    /// 503: the server is shutting down.
    Unavailable,
}

impl Kind {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Kind::Malformed | Kind::Empty => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Timeout => StatusCode::REQUEST_TIMEOUT,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::MediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Kind::Backend => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// TEI's `error_type` names (`validation`, `overloaded`, `empty`, ...).
    fn tei(self) -> &'static str {
        match self {
            Kind::Malformed
            | Kind::Validation
            | Kind::TooLarge
            | Kind::MediaType
            | Kind::Timeout => "validation",
            Kind::Empty => "empty",
            Kind::Unauthorized => "unauthorized",
            Kind::NotFound => "not_found",
            Kind::Overloaded => "overloaded",
            Kind::Backend => "backend",
            Kind::Unavailable => "unhealthy",
        }
    }

    /// OpenAI's `type` and `code`.
    fn openai(self) -> (&'static str, Option<&'static str>) {
        match self {
            Kind::Unauthorized => ("invalid_request_error", Some("invalid_api_key")),
            Kind::NotFound => ("invalid_request_error", Some("model_not_found")),
            Kind::Overloaded => ("rate_limit_error", Some("rate_limit_exceeded")),
            Kind::Backend | Kind::Unavailable => ("server_error", None),
            Kind::TooLarge => ("invalid_request_error", Some("request_too_large")),
            Kind::Validation => ("invalid_request_error", Some("invalid_value")),
            Kind::Malformed | Kind::Empty | Kind::MediaType | Kind::Timeout => {
                ("invalid_request_error", None)
            }
        }
    }
}

/// A request's failure. Handlers return it; its response carries it as an extension with an
/// empty body until `shape_errors` writes the body in the route family's shape.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub kind: Kind,
    pub message: String,
    /// The request field at fault (OpenAI's `param`).
    pub param: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            param: None,
        }
    }

    pub(crate) fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// An engine error met while serving a request: the caller's fault (422) unless it is an
    /// I/O or model failure (500).
    pub(crate) fn engine(e: sembed::Error) -> Self {
        let kind = match e {
            sembed::Error::TooLong { .. }
            | sembed::Error::InvalidOption(_)
            | sembed::Error::Tokenizer(_)
            | sembed::Error::Unsupported { .. } => Kind::Validation,
            _ => Kind::Backend,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = self.kind.status().into_response();
        r.extensions_mut().insert(self);
        r
    }
}

/// Which API's error shape a path uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    OpenAi,
    Tei,
    Ollama,
}

impl Family {
    pub(crate) fn of(path: &str) -> Family {
        if path.starts_with("/v1/") {
            Family::OpenAi
        } else if path.starts_with("/api/") {
            Family::Ollama
        } else {
            Family::Tei
        }
    }
}

/// The error as `family` writes it.
pub(crate) fn render(e: &ApiError, family: Family) -> Response {
    let body = match family {
        Family::OpenAi => {
            let (kind, code) = e.kind.openai();
            serde_json::json!({"error": {
                "message": e.message, "type": kind, "param": e.param, "code": code,
            }})
        }
        Family::Tei => serde_json::json!({"error": e.message, "error_type": e.kind.tei()}),
        Family::Ollama => serde_json::json!({"error": e.message}),
    };
    let mut r = (e.kind.status(), axum::Json(body)).into_response();
    if e.kind == Kind::Unauthorized {
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    r
}
