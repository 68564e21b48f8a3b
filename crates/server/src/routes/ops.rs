//! Operations: `GET /metrics` (Prometheus text format) and `GET /openapi.json` (this API's
//! OpenAPI 3 document, generated from the handlers' own types by `utoipa`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use super::{Shared, ollama, openai, tei};

/// Requests by route and status, latency, queue depth, batch sizes, tokens embedded.
#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "Operations",
    responses((status = 200, description = "OpenAPI 3 document", body = Object)))]
pub(crate) async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sembed serve",
        description = "Sentence embeddings with sentence-transformers' vectors: OpenAI, Hugging Face text-embeddings-inference and Ollama routes over one batching queue."
    ),
    paths(
        openai::embeddings,
        openai::models,
        tei::embed_route,
        tei::similarity,
        tei::tokenize,
        tei::info,
        tei::health,
        tei::compat,
        ollama::embed_route,
        ollama::embeddings,
        ollama::tags,
        ollama::version,
        metrics,
        openapi,
    )
)]
pub(crate) struct ApiDoc;
