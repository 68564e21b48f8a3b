//! model2vec-rs 0.4 for wasm32-unknown-unknown: a model from the bytes of its three files, and
//! `encode` of an array of strings into one row-major Float32Array (`texts.length * dim`).
use model2vec_rs::model::StaticModel;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub struct Model(StaticModel);

#[wasm_bindgen]
impl Model {
    /// `StaticModel::from_bytes(tokenizer.json, model.safetensors, config.json, None)`:
    /// normalization as config.json says.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(tokenizer: &[u8], model: &[u8], config: &[u8]) -> Result<Model, JsError> {
        StaticModel::from_bytes(tokenizer, model, config, None)
            .map(Model)
            .map_err(|e| JsError::new(&format!("{e:#}")))
    }

    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.0.dim()
    }

    /// `StaticModel::encode_flat` (max_length 512, the crate's default), input order.
    pub fn encode(&self, texts: Vec<String>) -> Vec<f32> {
        self.0.encode_flat(&texts)
    }
}
