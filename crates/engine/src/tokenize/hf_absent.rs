//! A build without the `tokenizers` feature: no tokenizer.json but the WordPiece ones the native
//! path runs. The type has no values, so every other method is unreachable by construction.

use std::path::Path;

use crate::error::{Error, Result};

/// Never constructed: [`Hf::load`] always fails.
#[derive(Debug)]
pub(crate) enum Hf {}

impl Hf {
    /// The error a build without the `tokenizers` crate gives for a tokenizer it cannot run.
    pub(crate) fn load(
        _bytes: &[u8],
        model: &'static str,
        _unk_token: Option<&str>,
        _unk_id: Option<u32>,
        path: &Path,
    ) -> Result<Hf> {
        Err(Error::invalid(
            path,
            format!(
                "a {model} tokenizer needs the `tokenizers` crate, which this build leaves out \
                 (the `tokenizers` feature; the small WebAssembly build runs BERT WordPiece \
                 tokenizers only)"
            ),
        ))
    }

    pub(crate) fn encode_into(&self, _: &str, _: usize, _: bool, _: &mut Vec<u32>) -> Result<bool> {
        match *self {}
    }

    pub(crate) fn num_special(&self) -> usize {
        match *self {}
    }

    pub(crate) fn model(&self) -> &'static str {
        match *self {}
    }

    pub(crate) fn unk_id(&self) -> Option<u32> {
        match *self {}
    }

    pub(crate) fn vocab(&self) -> std::iter::Empty<(String, u32)> {
        match *self {}
    }

    pub(crate) fn special_ids(&self) -> Result<(Vec<u32>, Vec<u32>)> {
        match *self {}
    }
}
