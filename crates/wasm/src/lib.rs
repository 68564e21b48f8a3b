//! sembed in WebAssembly: the engine's models loaded from bytes (no files, no network, one
//! thread), for Node and the browser through wasm-bindgen. The npm package wraps these types in a
//! small ES module (`wasm/js/index.js`); this crate keeps the boundary thin: names and bytes in,
//! one flat `Float32Array` of `[texts, dim]` out.
//!
//! On native targets the crate builds too (its functions are plain Rust), which is how its logic
//! is tested with `cargo test`.

use std::collections::BTreeMap;

use sembed::{EmbedOptions, Embedder, LoadOptions};
use wasm_bindgen::prelude::*;

/// A loaded model.
#[wasm_bindgen]
pub struct Model {
    inner: Embedder,
}

/// A JavaScript `Error` with the engine's message.
fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Embedding options as JavaScript gives them (all optional), checked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Options {
    /// `normalize`: L2 normalization forced on or off (default: the model's modules).
    pub normalize: Option<bool>,
    /// `batchSize`: sequences per forward pass.
    pub batch_size: Option<usize>,
    /// `maxLength`: truncation length in tokens.
    pub max_length: Option<usize>,
    /// `truncateDim`: keep the first N dimensions.
    pub truncate_dim: Option<usize>,
    /// `prompt`: a literal prompt prepended to every text.
    pub prompt: Option<String>,
    /// `promptName`: a prompt of the model's config by name.
    pub prompt_name: Option<String>,
}

impl Options {
    /// Parses the options object's JSON text (`JSON.stringify(options)`); unknown keys are an
    /// error naming them, as are wrongly typed values.
    pub fn from_json(json: &str) -> Result<Options, String> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("options: {e}"))?;
        let map = match v {
            serde_json::Value::Null => return Ok(Options::default()),
            serde_json::Value::Object(m) => m,
            _ => return Err("options must be an object".into()),
        };
        let mut o = Options::default();
        let count = |k: &str, v: &serde_json::Value| -> Result<usize, String> {
            v.as_u64()
                .filter(|n| *n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| format!("options.{k} must be a positive integer, not {v}"))
        };
        let text = |k: &str, v: &serde_json::Value| -> Result<String, String> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("options.{k} must be a string, not {v}"))
        };
        for (k, v) in &map {
            if v.is_null() {
                continue;
            }
            match k.as_str() {
                "normalize" => {
                    o.normalize =
                        Some(v.as_bool().ok_or_else(|| {
                            format!("options.normalize must be a boolean, not {v}")
                        })?)
                }
                "batchSize" => o.batch_size = Some(count(k, v)?),
                "maxLength" => o.max_length = Some(count(k, v)?),
                "truncateDim" => o.truncate_dim = Some(count(k, v)?),
                "prompt" => o.prompt = Some(text(k, v)?),
                "promptName" => o.prompt_name = Some(text(k, v)?),
                other => {
                    return Err(format!(
                        "unknown option {other:?} (known: normalize, batchSize, maxLength, \
                         truncateDim, prompt, promptName)"
                    ));
                }
            }
        }
        Ok(o)
    }

    fn embed_options(&self) -> EmbedOptions {
        let d = EmbedOptions::default();
        EmbedOptions {
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            // One thread: WebAssembly here has no threads.
            threads: 1,
            normalize: self.normalize,
            max_length: self.max_length,
            truncate_dim: self.truncate_dim,
            prompt: self.prompt.clone(),
            prompt_name: self.prompt_name.clone(),
            ..d
        }
    }
}

impl Model {
    /// Loads a model from its files: `names[i]` (relative to the model folder, e.g.
    /// `1_Pooling/config.json`) holds `contents[i]`.
    pub fn from_files(names: Vec<String>, contents: Vec<Vec<u8>>) -> Result<Model, String> {
        if names.len() != contents.len() {
            return Err(format!(
                "{} file names for {} contents",
                names.len(),
                contents.len()
            ));
        }
        if names.is_empty() {
            return Err("no files: give the model folder's files by relative name".into());
        }
        let opts = LoadOptions {
            threads: Some(sembed::ThreadPool::new(1)),
            ..Default::default()
        };
        let inner = Embedder::from_files(names.into_iter().zip(contents), &opts)
            .map_err(|e| e.to_string())?;
        Ok(Model { inner })
    }

    /// The vectors of `texts`, row after row (`texts.len() × dim` floats).
    pub fn embed_flat(&self, texts: &[String], opts: &Options) -> Result<Vec<f32>, String> {
        let e = self
            .inner
            .embed(texts, &opts.embed_options())
            .map_err(|e| e.to_string())?;
        Ok(e.into_vec())
    }

    /// The model's facts as a JSON object.
    pub fn info_json(&self) -> String {
        let i = self.inner.info();
        serde_json::json!({
            "name": i.name,
            "kind": i.kind.as_str(),
            "architecture": i.architecture,
            "layers": i.layers,
            "hiddenSize": i.hidden_size,
            "dim": i.dim,
            "maxSeqLength": i.max_seq_length,
            "pooling": i.pooling,
            "normalize": i.normalize,
            "tokenizer": i.tokenizer,
            "prompts": i.prompts.iter().cloned().collect::<BTreeMap<_, _>>(),
            "defaultPrompt": i.default_prompt,
            "weightsDtype": i.weights_dtype,
            "cpu": i.cpu,
        })
        .to_string()
    }
}

#[wasm_bindgen]
impl Model {
    /// Loads a model from its files (see the package's `load`, which calls this).
    #[wasm_bindgen(js_name = fromFiles)]
    pub fn js_from_files(
        names: Vec<String>,
        contents: Vec<js_sys::Uint8Array>,
    ) -> Result<Model, JsError> {
        let contents = contents.iter().map(|a| a.to_vec()).collect();
        Model::from_files(names, contents).map_err(js_error)
    }

    /// The vectors of `texts` as one `Float32Array` of `texts.length × dim` values;
    /// `options_json` is `JSON.stringify(options)`.
    #[wasm_bindgen(js_name = embedFlat)]
    pub fn js_embed_flat(
        &self,
        texts: Vec<String>,
        options_json: &str,
    ) -> Result<Vec<f32>, JsError> {
        let opts = Options::from_json(options_json).map_err(js_error)?;
        self.embed_flat(&texts, &opts).map_err(js_error)
    }

    /// The vector's dimension.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The model's facts, as JSON text.
    #[wasm_bindgen(js_name = infoJson)]
    pub fn js_info_json(&self) -> String {
        self.info_json()
    }
}

/// Cosine similarity of two vectors of the same length.
#[wasm_bindgen]
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f32, JsError> {
    if a.len() != b.len() {
        return Err(js_error(format!(
            "vectors of {} and {} dimensions",
            a.len(),
            b.len()
        )));
    }
    Ok(sembed::cosine(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_unknown_or_mistyped_ones_are_errors() {
        let o =
            Options::from_json(r#"{"normalize": false, "batchSize": 8, "prompt": "q: "}"#).unwrap();
        assert_eq!(o.normalize, Some(false));
        assert_eq!(o.batch_size, Some(8));
        assert_eq!(o.prompt.as_deref(), Some("q: "));
        assert_eq!(Options::from_json("null").unwrap(), Options::default());
        assert_eq!(Options::from_json("{}").unwrap(), Options::default());
        let e = Options::from_json(r#"{"normalise": true}"#).unwrap_err();
        assert!(e.contains("\"normalise\""), "{e}");
        let e = Options::from_json(r#"{"batchSize": 0}"#).unwrap_err();
        assert!(e.contains("positive integer"), "{e}");
        let e = Options::from_json(r#"{"normalize": "yes"}"#).unwrap_err();
        assert!(e.contains("boolean"), "{e}");
        assert!(Options::from_json("[1]").is_err());
    }

    #[test]
    fn a_model_from_files_embeds_as_the_engine_does() {
        let dir = sembed_testkit::data("m2v-minilm-256");
        let mut names = Vec::new();
        let mut contents = Vec::new();
        for n in [
            "config.json",
            "model.safetensors",
            "modules.json",
            "tokenizer.json",
        ] {
            names.push(n.to_string());
            contents.push(std::fs::read(dir.join(n)).unwrap());
        }
        let m = Model::from_files(names, contents).unwrap();
        let texts = vec!["a cat sat".to_string(), "".to_string()];
        let got = m.embed_flat(&texts, &Options::default()).unwrap();
        let engine = Embedder::from_dir(&dir).unwrap();
        let want = engine.embed(&texts, &EmbedOptions::default()).unwrap();
        assert_eq!(got, want.as_slice());
        assert_eq!(m.dim(), 256);
        let info: serde_json::Value = serde_json::from_str(&m.info_json()).unwrap();
        assert_eq!(info["dim"], 256);
        assert_eq!(info["kind"], "static");
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(
            Model::from_files(vec![], vec![])
                .err()
                .unwrap()
                .contains("no files")
        );
        assert!(Model::from_files(vec!["a".into()], vec![]).is_err());
        let e = Model::from_files(vec!["config.json".into()], vec![b"{not json".to_vec()])
            .err()
            .unwrap();
        assert!(!e.is_empty());
    }
}
