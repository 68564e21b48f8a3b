//! OpenAI's embeddings API: `POST /v1/embeddings`, `GET /v1/models`. Shapes as in OpenAI's API
//! reference; errors in its `{"error": {"message", "type", "param", "code"}}` envelope.

use axum::extract::State;
use base64::Engine as _;
use sembed::EmbedOptions;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::Json;
use super::{Inputs, Shared, check_dimensions, embed, error_responses};
use crate::error::ApiError;

/// `input`: a text, texts, one text's token ids, or several texts' token ids (ids of the model's
/// own tokenizer, without special tokens: they are added as for a text).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum Input {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// One text as token ids.
    Tokens(Vec<TokenId>),
    /// Several texts as token ids.
    TokenArrays(Vec<Vec<TokenId>>),
}

/// A token id, written `5302` or `5302.0` (both JSON Schema integers).
#[derive(ToSchema)]
#[schema(value_type = u32)]
pub(crate) struct TokenId(u32);

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let x = f64::deserialize(d)?;
        if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) {
            Ok(TokenId(x as u32))
        } else {
            Err(D::Error::custom(format!("{x} is not a token id")))
        }
    }
}

fn ids(v: Vec<TokenId>) -> Vec<u32> {
    v.into_iter().map(|t| t.0).collect()
}

#[derive(Deserialize, ToSchema, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EncodingFormat {
    /// Arrays of numbers.
    #[default]
    Float,
    /// Each vector as base64 of its little-endian float32 bytes.
    Base64,
}

/// The body of `POST /v1/embeddings`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct EmbeddingsRequest {
    pub input: Input,
    /// A served model's name, alias or hub id; with one model served, any value.
    #[schema(example = "all-MiniLM-L6-v2")]
    pub model: Option<String>,
    #[serde(default)]
    pub encoding_format: EncodingFormat,
    /// Keep the first N dimensions (Matryoshka), then normalize again.
    #[serde(default, deserialize_with = "super::whole")]
    #[schema(minimum = 1)]
    pub dimensions: Option<usize>,
    /// Accepted and ignored.
    #[allow(dead_code)]
    pub user: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Embedding {
    /// Always `embedding`.
    #[schema(example = "embedding")]
    pub object: &'static str,
    pub index: usize,
    pub embedding: Vector,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Usage {
    /// Tokens the inputs took, special tokens included.
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

/// The answer of `POST /v1/embeddings`.
#[derive(Serialize, ToSchema)]
pub(crate) struct EmbeddingsResponse {
    /// Always `list`.
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: Usage,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct OpenAiErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    #[schema(example = "invalid_request_error")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

/// OpenAI's error envelope.
#[derive(Serialize, ToSchema)]
pub(crate) struct OpenAiError {
    pub error: OpenAiErrorDetail,
}

error_responses!(Errors, OpenAiError);

/// Embeddings, as OpenAI's API makes them.
#[utoipa::path(post, path = "/v1/embeddings", tag = "OpenAI", request_body = EmbeddingsRequest,
    responses((status = 200, description = "The vectors, in input order", body = EmbeddingsResponse), Errors))]
pub(crate) async fn embeddings(
    State(state): State<Shared>,
    Json(req): Json<EmbeddingsRequest>,
) -> Result<axum::Json<EmbeddingsResponse>, ApiError> {
    let model = state.models.pick(req.model.as_deref())?;
    check_dimensions(req.dimensions, model)?;
    let inputs = match req.input {
        Input::Text(t) => Inputs::Texts(vec![t]),
        Input::Texts(t) => Inputs::Texts(t),
        Input::Tokens(t) => Inputs::Ids(vec![ids(t)]),
        Input::TokenArrays(t) => Inputs::Ids(t.into_iter().map(ids).collect()),
    };
    let opts = EmbedOptions {
        truncate: state.config.auto_truncate,
        truncate_dim: req.dimensions,
        // OpenAI's shortened vectors are unit length again.
        normalize: req.dimensions.map(|_| true),
        ..Default::default()
    };
    let out = embed(&state, model, inputs, opts).await?;
    let data = out
        .rows
        .rows()
        .enumerate()
        .map(|(index, row)| Embedding {
            object: "embedding",
            index,
            embedding: match req.encoding_format {
                EncodingFormat::Float => Vector::Float(row.to_vec()),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = row.iter().flat_map(|x| x.to_le_bytes()).collect();
                    Vector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            },
        })
        .collect();
    Ok(axum::Json(EmbeddingsResponse {
        object: "list",
        data,
        model: model.id.clone(),
        usage: Usage {
            prompt_tokens: out.tokens,
            total_tokens: out.tokens,
        },
    }))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ModelCard {
    pub id: String,
    /// Always `model`.
    #[schema(example = "model")]
    pub object: &'static str,
    /// When the server started (Unix seconds).
    pub created: u64,
    #[schema(example = "sembed")]
    pub owned_by: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ModelList {
    /// Always `list`.
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

/// The models this server serves.
#[utoipa::path(get, path = "/v1/models", tag = "OpenAI",
    responses((status = 200, description = "The served models", body = ModelList),
        (status = 401, description = "Missing or wrong API key", body = OpenAiError)))]
pub(crate) async fn models(State(state): State<Shared>) -> axum::Json<ModelList> {
    let created = state.started_unix;
    axum::Json(ModelList {
        object: "list",
        data: state
            .models
            .all()
            .iter()
            .map(|s| ModelCard {
                id: s.id.clone(),
                object: "model",
                created,
                owned_by: "sembed",
            })
            .collect(),
    })
}
