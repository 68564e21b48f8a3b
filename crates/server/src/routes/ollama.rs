//! Ollama's embedding API: `POST /api/embed` (and the older `/api/embeddings`), plus
//! `GET /api/tags` and `/api/version` so Ollama clients can list what is served. Errors as
//! Ollama writes them: `{"error": "..."}`.

use axum::extract::State;
use sembed::EmbedOptions;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::Json;
use super::tei::TextInput;
use super::{Inputs, Shared, check_dimensions, embed, error_responses, normalize_option};
use crate::error::ApiError;

fn yes() -> bool {
    true
}

/// How long Ollama keeps a model loaded: a duration (`"5m"`) or seconds.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // accepted, not used
pub(crate) enum KeepAlive {
    Duration(String),
    Seconds(f64),
}

/// The body of `POST /api/embed`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct OllamaEmbedRequest {
    /// A served model's name, alias or hub id; with one model served, any value.
    pub model: Option<String>,
    pub input: TextInput,
    /// Cut inputs over the model's limit (default true, as Ollama does).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub truncate: bool,
    /// Keep the first N dimensions, then normalize again.
    #[serde(default, deserialize_with = "super::whole")]
    #[schema(minimum = 1)]
    pub dimensions: Option<usize>,
    /// Accepted and ignored (model options of Ollama's runners).
    #[allow(dead_code)]
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
    /// Accepted and ignored (the model stays loaded).
    #[allow(dead_code)]
    pub keep_alive: Option<KeepAlive>,
}

/// The answer of `POST /api/embed` (durations in nanoseconds).
#[derive(Serialize, ToSchema)]
pub(crate) struct OllamaEmbedResponse {
    pub model: String,
    pub embeddings: Vec<Vec<f32>>,
    pub total_duration: u64,
    pub load_duration: u64,
    pub prompt_eval_count: usize,
}

/// Ollama's error body.
#[derive(Serialize, ToSchema)]
pub(crate) struct OllamaError {
    pub error: String,
}

error_responses!(Errors, OllamaError);

/// Vectors of `input`, L2-normalized, as Ollama makes them.
#[utoipa::path(post, path = "/api/embed", tag = "Ollama", request_body = OllamaEmbedRequest,
    responses((status = 200, description = "One vector per input, in order", body = OllamaEmbedResponse), Errors))]
pub(crate) async fn embed_route(
    State(state): State<Shared>,
    Json(req): Json<OllamaEmbedRequest>,
) -> Result<axum::Json<OllamaEmbedResponse>, ApiError> {
    let start = std::time::Instant::now();
    let model = state.models.pick(req.model.as_deref())?;
    check_dimensions(req.dimensions, model)?;
    let opts = EmbedOptions {
        truncate: req.truncate,
        truncate_dim: req.dimensions,
        normalize: normalize_option(model, true, req.dimensions),
        ..Default::default()
    };
    let texts = match req.input {
        TextInput::Text(t) => vec![t],
        TextInput::Texts(t) => t,
    };
    let out = embed(&state, model, Inputs::Texts(texts), opts).await?;
    Ok(axum::Json(OllamaEmbedResponse {
        model: req.model.unwrap_or_else(|| model.id.clone()),
        embeddings: out.rows.rows().map(<[f32]>::to_vec).collect(),
        total_duration: start.elapsed().as_nanos() as u64,
        load_duration: model.load_duration.as_nanos() as u64,
        prompt_eval_count: out.tokens,
    }))
}

/// The body of the older `POST /api/embeddings`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct OllamaEmbeddingsRequest {
    pub model: Option<String>,
    pub prompt: String,
    /// Accepted and ignored.
    #[allow(dead_code)]
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
    /// Accepted and ignored.
    #[allow(dead_code)]
    pub keep_alive: Option<KeepAlive>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct OllamaEmbeddingsResponse {
    pub embedding: Vec<f32>,
}

/// One vector (Ollama's older route), as the model makes it.
#[utoipa::path(post, path = "/api/embeddings", tag = "Ollama", request_body = OllamaEmbeddingsRequest,
    responses((status = 200, description = "The vector", body = OllamaEmbeddingsResponse), Errors))]
pub(crate) async fn embeddings(
    State(state): State<Shared>,
    Json(req): Json<OllamaEmbeddingsRequest>,
) -> Result<axum::Json<OllamaEmbeddingsResponse>, ApiError> {
    let model = state.models.pick(req.model.as_deref())?;
    let opts = EmbedOptions::default();
    let out = embed(&state, model, Inputs::Texts(vec![req.prompt]), opts).await?;
    Ok(axum::Json(OllamaEmbeddingsResponse {
        embedding: out.rows.row(0).to_vec(),
    }))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ModelDetails {
    pub format: String,
    pub family: String,
    pub parameter_size: String,
    pub quantization_level: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Tag {
    pub name: String,
    pub model: String,
    pub modified_at: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Tags {
    pub models: Vec<Tag>,
}

/// The served models, as Ollama lists its local ones.
#[utoipa::path(get, path = "/api/tags", tag = "Ollama",
    responses((status = 200, description = "The served models", body = Tags),
        (status = 401, description = "Missing or wrong API key", body = OllamaError)))]
pub(crate) async fn tags(State(state): State<Shared>) -> axum::Json<Tags> {
    let models = state
        .models
        .all()
        .iter()
        .map(|s| {
            let i = s.embedder.info();
            Tag {
                name: s.id.clone(),
                model: s.id.clone(),
                modified_at: "1970-01-01T00:00:00Z".into(),
                size: 0,
                digest: i.fingerprint().map(|f| f.to_string()).unwrap_or_default(),
                details: ModelDetails {
                    format: "safetensors".into(),
                    family: i.architecture.clone(),
                    parameter_size: String::new(),
                    quantization_level: i.weights_dtype.to_uppercase(),
                },
            }
        })
        .collect();
    axum::Json(Tags { models })
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Version {
    pub version: String,
}

/// sembed's version.
#[utoipa::path(get, path = "/api/version", tag = "Ollama",
    responses((status = 200, description = "The server's version", body = Version),
        (status = 401, description = "Missing or wrong API key", body = OllamaError)))]
pub(crate) async fn version() -> axum::Json<Version> {
    axum::Json(Version {
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}
