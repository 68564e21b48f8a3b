//! [`Json`]: a request body read as JSON, with the server's own limits and errors — 415 unless it
//! is declared JSON, 413 past `--payload-limit` (checked against `Content-Length` before reading,
//! and while reading), 408 when it arrives too slowly, 400 when it is not JSON, 422 when it is
//! JSON of the wrong shape.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::Shared;
use crate::error::{ApiError, Kind};

/// A JSON request body of type `T`.
pub(crate) struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Shared> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Shared) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if json != Some(true) {
            return Err(ApiError::new(
                Kind::MediaType,
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let limit = state.config.payload_limit;
        let too_large = || {
            ApiError::new(
                Kind::TooLarge,
                format!("the request body is over the limit of {limit} bytes (--payload-limit)"),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                let inner = e.into_inner();
                let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
                while let Some(c) = cause {
                    if c.is::<http_body_util::LengthLimitError>() {
                        return too_large();
                    }
                    if c.is::<tower_http::timeout::TimeoutError>() {
                        return ApiError::new(Kind::Timeout, "the request body arrived too slowly");
                    }
                    cause = c.source();
                }
                ApiError::new(
                    Kind::Malformed,
                    format!("cannot read the request body: {inner}"),
                )
            })?;
        serde_json::from_slice(&bytes).map(Json).map_err(|e| {
            use serde_json::error::Category;
            let kind = match e.classify() {
                Category::Data => Kind::Validation,
                Category::Io | Category::Syntax | Category::Eof => Kind::Malformed,
            };
            ApiError::new(kind, format!("invalid JSON body: {e}"))
        })
    }
}
