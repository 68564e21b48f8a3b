//! The `tokenizers` crate as a backend: every tokenizer.json the native WordPiece path does not
//! reproduce exactly (Unigram, BPE, unusual pipelines).

use std::path::Path;

use crate::error::{Error, Result};

/// A tokenizer.json loaded by the `tokenizers` crate, set up as sentence-transformers uses it.
#[derive(Debug)]
pub(crate) struct Hf {
    tok: tokenizers::Tokenizer,
    num_special: usize,
    model: &'static str,
    unk_id: Option<u32>,
}

impl Hf {
    /// Loads `bytes`; `model` is the file's model type, `unk_token`/`unk_id` its unknown token.
    pub(crate) fn load(
        bytes: &[u8],
        model: &'static str,
        unk_token: Option<&str>,
        unk_id: Option<u32>,
        path: &Path,
    ) -> Result<Hf> {
        let mut tok = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::invalid(path, format!("tokenizers could not load it: {e}")))?;
        // sentence-transformers truncates to max_seq_length and pads per batch; the file's own
        // truncation/padding settings (e.g. pad everything to 128) must not apply.
        tok.with_truncation(None)
            .map_err(|e| Error::invalid(path, e.to_string()))?;
        tok.with_padding(None);
        let num_special = tok.get_post_processor().map_or(0, |p| {
            use tokenizers::PostProcessor;
            p.added_tokens(false)
        });
        let unk_id = match unk_token {
            Some(t) => tok.token_to_id(t),
            None => unk_id,
        };
        Ok(Hf {
            tok,
            num_special,
            model,
            unk_id,
        })
    }

    /// See `Tokenizer::encode_into`.
    pub(crate) fn encode_into(
        &self,
        text: &str,
        max_len: usize,
        add_special: bool,
        out: &mut Vec<u32>,
    ) -> Result<bool> {
        let mut enc = self
            .tok
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let budget = if add_special {
            max_len.saturating_sub(self.num_special)
        } else {
            max_len
        };
        let truncated = enc.len() > budget;
        enc.truncate(budget, 0, tokenizers::TruncationDirection::Right);
        if add_special {
            enc = self
                .tok
                .post_process(enc, None, true)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
        }
        out.clear();
        out.extend_from_slice(enc.get_ids());
        Ok(truncated)
    }

    pub(crate) fn num_special(&self) -> usize {
        self.num_special
    }

    pub(crate) fn model(&self) -> &'static str {
        self.model
    }

    pub(crate) fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    /// Every token and its id, added tokens included.
    pub(crate) fn vocab(&self) -> impl Iterator<Item = (String, u32)> {
        self.tok.get_vocab(true).into_iter()
    }

    /// The special ids the post-processor puts before and after a single text.
    pub(crate) fn special_ids(&self) -> Result<(Vec<u32>, Vec<u32>)> {
        let encode = |text: &str| {
            let mut ids = Vec::new();
            self.encode_into(text, usize::MAX, true, &mut ids)?;
            Ok::<_, Error>(ids)
        };
        // A short text's ids, found inside its encoding with specials: what is before and after
        // them is the post-processor's (`X $A Y`, `$A Y`, `X X $A`, ...).
        for probe in ["a", "x", "hello", "1", "."] {
            let bare = self
                .tok
                .encode(probe, false)
                .map_err(|e| Error::Tokenizer(e.to_string()))?
                .get_ids()
                .to_vec();
            if bare.is_empty() {
                continue;
            }
            let full = encode(probe)?;
            if let Some(at) = full.windows(bare.len()).position(|w| w == bare) {
                return Ok((full[..at].to_vec(), full[at + bare.len()..].to_vec()));
            }
        }
        // No probe text survives tokenizing: all of an empty text's ids are specials.
        Ok((Vec::new(), encode("")?))
    }
}
