//! Texts → the token ids a model consumes, with every policy sentence-transformers or model2vec
//! applies on the way: prompts, lowercasing, special tokens, the token limit (and model2vec's
//! character pre-cut and unknown-token removal). The tokenizer itself only splits text; the
//! encoders only see ids.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::load::config::SentenceTransformersConfig;
use crate::options::EmbedOptions;
use crate::static_model;
use crate::tokenize::{Scratch, Tokenizer};

/// How a model turns text into ids.
#[derive(Debug)]
pub(crate) enum Rules {
    /// sentence-transformers' Transformer module.
    Transformer {
        /// `do_lower_case` of sentence_bert_config.json.
        lowercase: bool,
        /// `max_seq_length`.
        default_max: usize,
        /// Longest sequence the position table covers.
        limit: usize,
        /// Whether prompt tokens take part in pooling.
        include_prompt: bool,
    },
    /// A static model: model2vec 0.10's `StaticModel.encode()` (its own layout), or
    /// sentence-transformers' `StaticEmbedding` (no pre-cut, no limit, unknown tokens kept).
    Static {
        /// `max_length` of config.json (`None`: no limit).
        default_max: Option<usize>,
        /// model2vec's character pre-cut (`max_length` × median token length) applies.
        precut: bool,
        /// model2vec's `median_token_length`, computed on first need (only texts longer than
        /// `max_length` characters can be cut, since every token has at least one character).
        median_token_length: OnceLock<usize>,
        unk_id: Option<u32>,
    },
}

/// The tokenizer and the rules around it.
#[derive(Debug)]
pub(crate) struct TextPolicy {
    pub tokenizer: Tokenizer,
    pub rules: Rules,
    /// Named prompts and the default one.
    pub prompts: SentenceTransformersConfig,
    /// Ids must be below this (rows of the model's table).
    pub vocab: usize,
}

/// What one call's options mean for tokenizing.
#[derive(Debug, Clone)]
pub(crate) struct CallText {
    /// The prompt prepended to every text (never empty).
    pub prompt: Option<String>,
    /// Token limit (`usize::MAX`: none).
    pub max_len: usize,
    /// Leading tokens left out of pooling: the prompt's, with `include_prompt: false`.
    pub skip_tokens: usize,
    pub truncate: bool,
}

/// Reused buffers for [`TextPolicy::encode`].
#[derive(Default)]
pub(crate) struct TextScratch {
    tok: Scratch,
    lower: String,
    prompted: String,
}

impl TextPolicy {
    /// Whether this is a transformer's policy (special tokens are added).
    fn adds_specials(&self) -> bool {
        matches!(self.rules, Rules::Transformer { .. })
    }

    /// The prompt named (or given) by `opts`, or the model's default one.
    fn prompt<'a>(&'a self, opts: &'a EmbedOptions) -> Result<Option<&'a str>> {
        let p = &self.prompts;
        let prompt = match (&opts.prompt, &opts.prompt_name) {
            (Some(text), _) => Some(text.as_str()),
            (None, Some(name)) => {
                Some(p.prompts.get(name).map(String::as_str).ok_or_else(|| {
                    let known = if p.prompts.is_empty() {
                        "this model has no prompts".to_string()
                    } else {
                        let names: Vec<&str> = p.prompts.keys().map(String::as_str).collect();
                        format!("this model has: {}", names.join(", "))
                    };
                    Error::InvalidOption(format!("no prompt named `{name}` ({known})"))
                })?)
            }
            (None, None) => p
                .default_prompt_name
                .as_ref()
                .and_then(|n| p.prompts.get(n))
                .map(String::as_str),
        };
        Ok(prompt.filter(|p| !p.is_empty()))
    }

    /// Resolves the options of one call.
    pub(crate) fn resolve(&self, opts: &EmbedOptions) -> Result<CallText> {
        let prompt = self.prompt(opts)?.map(str::to_string);
        let (max_len, skip_tokens) = match &self.rules {
            Rules::Transformer {
                default_max,
                limit,
                include_prompt,
                ..
            } => {
                let least = self.tokenizer.num_special_tokens().max(1);
                let max_len = match opts.max_length {
                    None => *default_max,
                    Some(n) if n < least || n > *limit => {
                        return Err(Error::InvalidOption(format!(
                            "max length {n} is outside {least}..={limit} (it counts the special tokens)"
                        )));
                    }
                    Some(n) => n,
                };
                // With include_prompt = false, pooling skips the prompt's tokens: its ids minus
                // the trailing [SEP], tokenized as a text is (lowercased if the model says so).
                let skip = match &prompt {
                    Some(p) if !include_prompt => {
                        let mut ids = Vec::new();
                        let no_prompt = CallText {
                            prompt: None,
                            max_len,
                            skip_tokens: 0,
                            truncate: true,
                        };
                        self.encode(p, &no_prompt, 0, &mut ids, &mut TextScratch::default())?;
                        ids.len().saturating_sub(1)
                    }
                    _ => 0,
                };
                (max_len, skip)
            }
            Rules::Static { default_max, .. } => match opts.max_length {
                Some(0) => {
                    return Err(Error::InvalidOption("max length must be at least 1".into()));
                }
                Some(n) => (n, 0),
                None => (default_max.unwrap_or(usize::MAX), 0),
            },
        };
        Ok(CallText {
            prompt,
            max_len,
            skip_tokens,
            truncate: opts.truncate,
        })
    }

    /// The ids of `text` (the `index`-th input, for messages) into `out`; returns whether it was cut.
    /// With truncation off, an over-long text is an error that names it.
    pub(crate) fn encode(
        &self,
        text: &str,
        call: &CallText,
        index: usize,
        out: &mut Vec<u32>,
        scratch: &mut TextScratch,
    ) -> Result<bool> {
        let TextScratch {
            tok,
            lower,
            prompted,
        } = scratch;
        let original = text;
        let text = match &call.prompt {
            Some(p) => {
                prompted.clear();
                prompted.push_str(p);
                prompted.push_str(text);
                prompted.as_str()
            }
            None => text,
        };
        let cut = match &self.rules {
            Rules::Transformer { lowercase, .. } => {
                // sentence-transformers 6.x passes the text as is (no strip): the XLM-R fixture's
                // "   spaced   out   " keeps its leading and trailing "▁" tokens in the reference.
                let t = if *lowercase {
                    lower.clear();
                    lower.push_str(&text.to_lowercase());
                    lower.as_str()
                } else {
                    text
                };
                self.tokenizer
                    .encode_into(t, call.max_len, true, out, tok)?
            }
            Rules::Static {
                median_token_length,
                unk_id,
                precut,
                ..
            } => {
                // model2vec cuts the text to max_length × median token length characters first.
                let short = if *precut && call.max_len != usize::MAX && text.len() > call.max_len {
                    let median = *median_token_length.get_or_init(|| {
                        static_model::median_len(self.tokenizer.token_char_lengths())
                    });
                    static_model::char_prefix(text, call.max_len.saturating_mul(median))
                } else {
                    text
                };
                let cut = self
                    .tokenizer
                    .encode_into(short, call.max_len, false, out, tok)?;
                if let Some(unk) = unk_id {
                    out.retain(|id| id != unk);
                }
                cut || short.len() < text.len()
            }
        };
        check_ids(out, self.vocab)?;
        if cut && !call.truncate {
            // Named by the caller's text, not the prompt before it.
            return Err(too_long(index, original, call.max_len));
        }
        Ok(cut)
    }

    /// The length of `text` that the model's limit is compared with, without special tokens or
    /// prompt: its tokens for a transformer; for a Model2Vec model the larger of its tokens
    /// (unknown ones included) and its characters over the median token length (model2vec's
    /// pre-cut). What a chunker fills the limit with: a text of at most the limit is never cut.
    pub(crate) fn count(&self, text: &str, scratch: &mut TextScratch) -> Result<usize> {
        let TextScratch { tok, lower, .. } = scratch;
        let mut ids = Vec::new();
        match &self.rules {
            Rules::Transformer { lowercase, .. } => {
                let t = if *lowercase {
                    lower.clear();
                    lower.push_str(&text.to_lowercase());
                    lower.as_str()
                } else {
                    text
                };
                self.tokenizer
                    .encode_into(t, usize::MAX, false, &mut ids, tok)?;
            }
            // What model2vec's limit is compared with: its tokens, unknown ones included (they
            // are dropped after the cut), and — when it pre-cuts — its characters over the median
            // token length. A text of at most `max_length` of these is never cut.
            Rules::Static {
                median_token_length,
                precut,
                ..
            } => {
                self.tokenizer
                    .encode_into(text, usize::MAX, false, &mut ids, tok)?;
                if *precut {
                    let median = *median_token_length.get_or_init(|| {
                        static_model::median_len(self.tokenizer.token_char_lengths())
                    });
                    let chars = text.chars().count();
                    return Ok(ids.len().max(chars.div_ceil(median.max(1))));
                }
            }
        }
        Ok(ids.len())
    }

    /// Tokens a call adds to every text: the special tokens and the prompt's own.
    pub(crate) fn overhead(&self, call: &CallText) -> Result<usize> {
        let mut ids = Vec::new();
        let all = CallText {
            max_len: usize::MAX,
            truncate: true,
            ..call.clone()
        };
        self.encode("", &all, 0, &mut ids, &mut TextScratch::default())?;
        Ok(ids.len())
    }

    /// Checks caller-given ids (an OpenAI token-array input, distillation's sequences) against the
    /// model and applies the call's limit; `add_special` wraps them in the model's special tokens.
    pub(crate) fn encode_ids(
        &self,
        ids: &[u32],
        add_special: bool,
        call: &CallText,
        index: usize,
        out: &mut Vec<u32>,
    ) -> Result<bool> {
        out.clear();
        let (prefix, suffix) = if add_special && self.adds_specials() {
            self.tokenizer.special_ids()?
        } else {
            (Vec::new(), Vec::new())
        };
        let room = call.max_len.saturating_sub(prefix.len() + suffix.len());
        let cut = ids.len() > room;
        if cut && !call.truncate {
            return Err(Error::TooLong {
                index,
                max: call.max_len,
                preview: format!("{} token ids", ids.len()),
            });
        }
        out.extend_from_slice(&prefix);
        out.extend_from_slice(&ids[..ids.len().min(room)]);
        out.extend_from_slice(&suffix);
        check_ids(out, self.vocab)?;
        Ok(cut)
    }
}

/// The error for a text over the limit, naming it.
fn too_long(index: usize, text: &str, max: usize) -> Error {
    let preview: String = text.chars().take(40).collect();
    let more = if text.chars().nth(40).is_some() {
        "…"
    } else {
        ""
    };
    Error::TooLong {
        index,
        max,
        preview: format!("{preview}{more}"),
    }
}

/// Checks every id against the vocabulary size before indexing (a tokenizer/model mismatch must be an
/// error, not a panic).
pub(crate) fn check_ids(ids: &[u32], vocab: usize) -> Result<()> {
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(id) => Err(Error::Tokenizer(format!(
            "token id {id} is outside the model's vocabulary of {vocab}; tokenizer and weights do not match"
        ))),
        None => Ok(()),
    }
}
