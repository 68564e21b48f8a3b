//! Operations: `GET /metrics` (Prometheus text format) and `GET /openapi.json` (this API's
//! OpenAPI 3 document, generated from the handlers' own types by `utoipa`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use serde_json::{Value, json};

use super::{Shared, ollama, openai, tei};
use crate::config::Config;
use crate::models::Models;

/// Requests by route and status, latency, queue depth, batch sizes, tokens embedded.
#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or wrong API key", body = tei::TeiError)))]
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
    responses((status = 200, description = "OpenAPI 3 document", body = Object),
        (status = 401, description = "Missing or wrong API key", body = tei::TeiError)))]
pub(crate) async fn openapi(State(state): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
}

/// The document as this server answers: the handlers' types (from `utoipa`), with the limits
/// that depend on the served models and the configuration written in, so a request the
/// document allows is one the server accepts — the largest token id, the largest `dimensions`,
/// the prompt names, how many inputs.
pub(crate) fn document(models: &Models, config: &Config) -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let all = models.all();
    // With several models, what every one of them accepts.
    let max_id = all
        .iter()
        .map(|s| s.vocab_size)
        .min()
        .unwrap_or(0)
        .saturating_sub(1);
    let max_dim = all.iter().map(|s| s.embedder.dim()).min().unwrap_or(1);
    let mut prompts: Vec<String> = all[0]
        .embedder
        .info()
        .prompts
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    prompts.retain(|p| {
        all.iter()
            .all(|s| s.embedder.info().prompts.iter().any(|(n, _)| n == p))
    });
    let batch = config.max_client_batch_size;
    let text = json!({"type": "string"});
    let texts = json!({"type": "array", "items": text, "minItems": 1, "maxItems": batch});
    let ids =
        json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": max_id}});
    let schemas = &mut doc["components"]["schemas"];
    schemas["TextInput"] = json!({
        "description": "One text, or several (an empty text is embedded as sentence-transformers embeds it)",
        "oneOf": [text, texts],
    });
    schemas["Input"] = json!({
        "description": "A text, texts, one text's token ids, or several texts' token ids (ids of the model's own tokenizer, without special tokens)",
        "oneOf": [
            text,
            texts,
            {"type": "array", "items": ids["items"], "minItems": 1},
            {"type": "array", "items": ids, "minItems": 1, "maxItems": batch},
        ],
    });
    let prompt_enum: Vec<Value> = prompts
        .into_iter()
        .map(Value::String)
        .chain([Value::Null])
        .collect();
    if let Some(map) = schemas.as_object_mut() {
        for schema in map.values_mut() {
            let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
                continue;
            };
            for (name, prop) in props.iter_mut() {
                match name.as_str() {
                    "dimensions" => prop["maximum"] = json!(max_dim),
                    "prompt_name" => prop["enum"] = Value::Array(prompt_enum.clone()),
                    "truncation_direction" => prop["enum"] = json!(["Right", "right", null]),
                    "sentences" => {
                        prop["minItems"] = json!(1);
                        prop["maxItems"] = json!(batch.saturating_sub(1).max(1));
                    }
                    _ => {}
                }
            }
        }
    }
    doc.to_string()
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
