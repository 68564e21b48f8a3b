//! Hugging Face text-embeddings-inference's API: `POST /embed`, `/similarity`, `/tokenize`, `/`
//! (the compatibility route `huggingface_hub.InferenceClient` posts to), `GET /info`, `/health`.
//! Errors as TEI writes them: `{"error": "...", "error_type": "validation"}`.

use axum::extract::State;
use sembed::EmbedOptions;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::Json;
use super::{
    Inputs, Shared, check_count, check_dimensions, check_direction, embed, error_responses,
    normalize_option,
};
use crate::error::{ApiError, Kind};
use crate::models::Served;

/// One text or several.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum TextInput {
    Text(String),
    Texts(Vec<String>),
}

impl TextInput {
    fn into_vec(self) -> Vec<String> {
        match self {
            TextInput::Text(t) => vec![t],
            TextInput::Texts(t) => t,
        }
    }
}

fn yes() -> bool {
    true
}

/// The body of `POST /embed`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct EmbedRequest {
    pub inputs: TextInput,
    /// Cut inputs over the model's limit (default: the server's `--auto-truncate`).
    pub truncate: Option<bool>,
    /// `Right` (the default; `Left` is not supported).
    #[schema(example = "Right")]
    pub truncation_direction: Option<String>,
    /// One of the model's prompts (`config_sentence_transformers.json`).
    pub prompt_name: Option<String>,
    /// L2-normalize the vectors (default true).
    #[schema(default = true)]
    pub normalize: Option<bool>,
    /// Keep the first N dimensions (Matryoshka; normalized after the cut when `normalize`).
    #[serde(default, deserialize_with = "super::whole")]
    #[schema(minimum = 1)]
    pub dimensions: Option<usize>,
    /// The same options, as `huggingface_hub` may send them (a top-level one wins).
    pub parameters: Option<EmbedParameters>,
    /// A served model's name, alias or hub id; with one model served, any value.
    pub model: Option<String>,
}

/// Options of `/embed` inside `parameters`.
#[derive(Deserialize, ToSchema, Default)]
pub(crate) struct EmbedParameters {
    pub truncate: Option<bool>,
    pub truncation_direction: Option<String>,
    pub prompt_name: Option<String>,
    pub normalize: Option<bool>,
    #[serde(default, deserialize_with = "super::whole")]
    #[schema(minimum = 1)]
    pub dimensions: Option<usize>,
}

/// `top`, else `nested`: a top-level option wins over the same one in `parameters`. The value
/// in `parameters` must still be a valid one (it is checked by the caller where needed).
fn either<T>(top: Option<T>, nested: Option<T>) -> Option<T> {
    top.or(nested)
}

error_responses!(Errors, TeiError);

/// TEI's error body.
#[derive(Serialize, ToSchema)]
pub(crate) struct TeiError {
    pub error: String,
    #[schema(example = "validation")]
    pub error_type: String,
}

fn options(
    state: &Shared,
    model: &Served,
    truncate: Option<bool>,
    direction: Option<&str>,
    prompt_name: Option<String>,
) -> Result<EmbedOptions, ApiError> {
    check_direction(direction)?;
    if let Some(p) = &prompt_name {
        check_prompt(model, p)?;
    }
    Ok(EmbedOptions {
        truncate: truncate.unwrap_or(state.config.auto_truncate),
        prompt_name,
        ..Default::default()
    })
}

fn check_prompt(model: &Served, name: &str) -> Result<(), ApiError> {
    let prompts = &model.embedder.info().prompts;
    if prompts.iter().any(|(n, _)| n == name) {
        return Ok(());
    }
    let known: Vec<&str> = prompts.iter().map(|(n, _)| n.as_str()).collect();
    Err(ApiError::new(
        Kind::Validation,
        if known.is_empty() {
            format!("prompt_name {name:?}: the model has no prompts")
        } else {
            format!(
                "prompt_name {name:?} is not one of the model's prompts: {}",
                known.join(", ")
            )
        },
    )
    .param("prompt_name"))
}

/// Vectors of `inputs`, as `[[f32]]`.
#[utoipa::path(post, path = "/embed", tag = "TEI", request_body = EmbedRequest,
    responses((status = 200, description = "One vector per input, in order", body = Vec<Vec<f32>>), Errors))]
pub(crate) async fn embed_route(
    State(state): State<Shared>,
    Json(req): Json<EmbedRequest>,
) -> Result<axum::Json<Vec<Vec<f32>>>, ApiError> {
    embed_request(&state, req).await.map(axum::Json)
}

async fn embed_request(state: &Shared, req: EmbedRequest) -> Result<Vec<Vec<f32>>, ApiError> {
    let model = state.models.pick(req.model.as_deref())?;
    let p = req.parameters.unwrap_or_default();
    check_direction(p.truncation_direction.as_deref())?;
    check_dimensions(p.dimensions, model)?;
    let dimensions = either(req.dimensions, p.dimensions);
    let normalize = either(req.normalize, p.normalize).unwrap_or(true);
    let direction = either(req.truncation_direction, p.truncation_direction);
    check_dimensions(dimensions, model)?;
    let mut opts = options(
        state,
        model,
        either(req.truncate, p.truncate),
        direction.as_deref(),
        either(req.prompt_name, p.prompt_name),
    )?;
    opts.normalize = normalize_option(model, normalize, dimensions);
    opts.truncate_dim = dimensions;
    let out = embed(state, model, Inputs::Texts(req.inputs.into_vec()), opts).await?;
    Ok(out.rows.rows().map(<[f32]>::to_vec).collect())
}

/// The sentences to compare.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SimilarityInput {
    pub source_sentence: String,
    pub sentences: Vec<String>,
}

/// Options of `/similarity`, also accepted inside `parameters` (as `InferenceClient` sends them).
#[derive(Deserialize, ToSchema, Default)]
pub(crate) struct SimilarityParameters {
    pub truncate: Option<bool>,
    pub truncation_direction: Option<String>,
    pub prompt_name: Option<String>,
}

/// The body of `POST /similarity`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SimilarityRequest {
    pub inputs: SimilarityInput,
    pub truncate: Option<bool>,
    pub truncation_direction: Option<String>,
    pub prompt_name: Option<String>,
    pub parameters: Option<SimilarityParameters>,
    /// A served model's name, alias or hub id; with one model served, any value.
    pub model: Option<String>,
}

/// Cosine similarity of `source_sentence` with each of `sentences`.
#[utoipa::path(post, path = "/similarity", tag = "TEI", request_body = SimilarityRequest,
    responses((status = 200, description = "One score per sentence, in order", body = Vec<f32>), Errors))]
pub(crate) async fn similarity(
    State(state): State<Shared>,
    Json(req): Json<SimilarityRequest>,
) -> Result<axum::Json<Vec<f32>>, ApiError> {
    similarity_request(&state, req).await.map(axum::Json)
}

async fn similarity_request(state: &Shared, req: SimilarityRequest) -> Result<Vec<f32>, ApiError> {
    let model = state.models.pick(req.model.as_deref())?;
    let p = req.parameters.unwrap_or_default();
    check_direction(p.truncation_direction.as_deref())?;
    let direction = either(req.truncation_direction, p.truncation_direction);
    let mut opts = options(
        state,
        model,
        either(req.truncate, p.truncate),
        direction.as_deref(),
        either(req.prompt_name, p.prompt_name),
    )?;
    opts.normalize = normalize_option(model, true, None);
    if req.inputs.sentences.is_empty() {
        return Err(ApiError::new(Kind::Empty, "no sentences to compare with").param("inputs"));
    }
    let mut texts = Vec::with_capacity(req.inputs.sentences.len() + 1);
    texts.push(req.inputs.source_sentence);
    texts.extend(req.inputs.sentences);
    let out = embed(state, model, Inputs::Texts(texts), opts).await?;
    let source = out.rows.row(0);
    Ok(out
        .rows
        .rows()
        .skip(1)
        .map(|r| sembed::cosine(source, r))
        .collect())
}

/// The body of `POST /tokenize`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct TokenizeRequest {
    pub inputs: TextInput,
    /// Include the model's special tokens (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub add_special_tokens: bool,
    pub prompt_name: Option<String>,
    /// A served model's name, alias or hub id; with one model served, any value.
    pub model: Option<String>,
}

/// A token as the model sees it. Character offsets are not tracked: `start` and `stop` are null.
#[derive(Serialize, ToSchema)]
pub(crate) struct Token {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

/// The tokens of each input exactly as the model consumes them (prompt, cut to the model's limit).
#[utoipa::path(post, path = "/tokenize", tag = "TEI", request_body = TokenizeRequest,
    responses((status = 200, description = "Tokens of each input", body = Vec<Vec<Token>>), Errors))]
pub(crate) async fn tokenize(
    State(state): State<Shared>,
    Json(req): Json<TokenizeRequest>,
) -> Result<axum::Json<Vec<Vec<Token>>>, ApiError> {
    let model = state.models.pick(req.model.as_deref())?;
    if let Some(p) = &req.prompt_name {
        check_prompt(model, p)?;
    }
    let texts = req.inputs.into_vec();
    check_count(&state, texts.len(), "inputs")?;
    let opts = EmbedOptions {
        prompt_name: req.prompt_name,
        ..Default::default()
    };
    let e = &model.embedder;
    let (prefix, suffix) = match e.kind() {
        sembed::ModelKind::Transformer => e.tokenizer().special_ids().map_err(ApiError::engine)?,
        _ => (Vec::new(), Vec::new()),
    };
    let names = model.tokens();
    let mut out = Vec::with_capacity(texts.len());
    for text in &texts {
        let ids = e.token_ids(text, &opts).map_err(ApiError::engine)?;
        let (a, b) = (prefix.len().min(ids.len()), suffix.len());
        let body = a..ids.len().saturating_sub(b).max(a);
        let tokens = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| req.add_special_tokens || body.contains(i))
            .map(|(i, &id)| Token {
                id,
                text: names.get(id as usize).cloned().unwrap_or_default(),
                special: !body.contains(&i),
                start: None,
                stop: None,
            })
            .collect();
        out.push(tokens);
    }
    Ok(axum::Json(out))
}

/// TEI's model type: `{"embedding": {"pooling": "mean"}}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ModelType {
    pub embedding: Pooling,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Pooling {
    #[schema(example = "mean")]
    pub pooling: String,
}

/// One served model (sembed's addition to TEI's `/info`).
#[derive(Serialize, ToSchema)]
pub(crate) struct ServedModel {
    pub id: String,
    pub dimension: usize,
    pub max_input_length: Option<usize>,
    /// sembed's fingerprint of the model's files.
    pub fingerprint: Option<String>,
}

/// `GET /info`: TEI's fields for the default model, and every served model.
#[derive(Serialize, ToSchema)]
pub(crate) struct Info {
    pub model_id: String,
    pub model_sha: Option<String>,
    #[schema(example = "float32")]
    pub model_dtype: String,
    pub model_type: ModelType,
    pub max_concurrent_requests: usize,
    /// Tokens, special tokens included (0: no limit).
    pub max_input_length: usize,
    pub max_batch_tokens: usize,
    pub max_batch_requests: Option<usize>,
    pub max_client_batch_size: usize,
    pub auto_truncate: bool,
    pub tokenization_workers: usize,
    pub version: String,
    pub sha: Option<String>,
    pub docker_label: Option<String>,
    pub dimension: usize,
    pub payload_limit: usize,
    pub models: Vec<ServedModel>,
}

/// What is served, and the limits.
#[utoipa::path(get, path = "/info", tag = "TEI",
    responses((status = 200, description = "The default model and the limits", body = Info),
        (status = 401, description = "Missing or wrong API key", body = TeiError)))]
pub(crate) async fn info(State(state): State<Shared>) -> axum::Json<Info> {
    let all = state.models.all();
    let first = &all[0];
    let i = first.embedder.info();
    let c = &state.config;
    axum::Json(Info {
        model_id: first.id.clone(),
        model_sha: None,
        model_dtype: match i.weights_dtype {
            "f16" => "float16",
            "bf16" => "bfloat16",
            "f32" => "float32",
            other => other,
        }
        .to_string(),
        model_type: ModelType {
            embedding: Pooling {
                pooling: i.pooling.join("+"),
            },
        },
        max_concurrent_requests: c.max_concurrent_requests,
        max_input_length: i.max_seq_length.unwrap_or(0),
        max_batch_tokens: c.max_batch_tokens,
        max_batch_requests: None,
        max_client_batch_size: c.max_client_batch_size,
        auto_truncate: c.auto_truncate,
        tokenization_workers: 1,
        version: env!("CARGO_PKG_VERSION").to_string(),
        sha: None,
        docker_label: None,
        dimension: i.dim,
        payload_limit: c.payload_limit,
        models: all
            .iter()
            .map(|s| {
                let i = s.embedder.info();
                ServedModel {
                    id: s.id.clone(),
                    dimension: i.dim,
                    max_input_length: i.max_seq_length,
                    fingerprint: i.fingerprint().ok().map(|f| f.to_string()),
                }
            })
            .collect(),
    })
}

/// 200 once the server answers (never behind the API key).
#[utoipa::path(get, path = "/health", tag = "TEI",
    responses((status = 200, description = "Ready")))]
pub(crate) async fn health() {}

/// `POST /`'s body: an `/embed` body or a `/similarity` body (options may sit in `parameters`).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum CompatRequest {
    Similarity(SimilarityRequest),
    Embed(EmbedRequest),
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum CompatResponse {
    Embeddings(Vec<Vec<f32>>),
    Scores(Vec<f32>),
}

/// TEI's compatibility route: what `huggingface_hub.InferenceClient(base_url=…)` posts for
/// `feature_extraction` (an `/embed` body) and `sentence_similarity` (a `/similarity` body),
/// told apart by `inputs`: an object with `source_sentence` is a similarity request.
#[utoipa::path(post, path = "/", tag = "TEI", request_body = CompatRequest,
    responses((status = 200, description = "Vectors, or similarity scores", body = CompatResponse), Errors))]
pub(crate) async fn compat(
    State(state): State<Shared>,
    Json(body): Json<serde_json::Value>,
) -> Result<axum::Json<CompatResponse>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::new(
            Kind::Validation,
            "the body must be a JSON object with `inputs`",
        ));
    };
    let similarity = obj
        .get("inputs")
        .is_some_and(|i| i.get("source_sentence").is_some());
    let invalid =
        |e: serde_json::Error| ApiError::new(Kind::Validation, format!("invalid body: {e}"));
    if similarity {
        let req: SimilarityRequest = serde_json::from_value(body).map_err(invalid)?;
        Ok(axum::Json(CompatResponse::Scores(
            similarity_request(&state, req).await?,
        )))
    } else {
        let req: EmbedRequest = serde_json::from_value(body).map_err(invalid)?;
        Ok(axum::Json(CompatResponse::Embeddings(
            embed_request(&state, req).await?,
        )))
    }
}
