//! Texts as token ids, between [`Embedder::tokenize`](crate::Embedder::tokenize) and
//! [`Embedder::embed_tokenized`](crate::Embedder::embed_tokenized): what a server's batcher counts
//! (a token budget; OpenAI's `usage`), splits and joins.

use crate::error::{Error, Result};
use crate::post::Post;

/// What a [`Tokenized`] will be embedded with: fixed when it is made, checked when pieces join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The [`Embedder`](crate::Embedder) that made it (its load-time serial number).
    pub model: u64,
    pub post: Post,
    /// Leading tokens of each sequence left out of pooling (a prompt, `include_prompt: false`).
    pub skip_tokens: usize,
    pub batch_size: usize,
    pub threads: usize,
}

/// Token ids of a list of texts, in input order, with what embedding them needs.
///
/// ```no_run
/// use sembed::{EmbedOptions, Embedder};
/// let model = Embedder::from_dir("models/all-MiniLM-L6-v2")?;
/// let t = model.tokenize(&["A man is playing a guitar.", "Hi"], &EmbedOptions::default())?;
/// assert_eq!(t.len(), 2);
/// println!("{} tokens, {} truncated", t.total_tokens(), t.truncated_count());
/// let e = model.embed_tokenized(&t)?; // the same vectors as model.embed(...)
/// # Ok::<(), sembed::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Tokenized {
    pub(crate) ids: Vec<u32>,
    /// `(start, len)` into `ids`, one per text.
    pub(crate) spans: Vec<(usize, usize)>,
    pub(crate) truncated: Vec<bool>,
    pub(crate) settings: Settings,
}

impl Tokenized {
    pub(crate) fn new(settings: Settings) -> Self {
        Tokenized {
            ids: Vec::new(),
            spans: Vec::new(),
            truncated: Vec::new(),
            settings,
        }
    }

    /// Appends one sequence.
    pub(crate) fn push(&mut self, ids: &[u32], truncated: bool) {
        self.spans.push((self.ids.len(), ids.len()));
        self.ids.extend_from_slice(ids);
        self.truncated.push(truncated);
    }

    /// Number of texts.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no texts.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The ids of text `i`, special tokens included.
    pub fn ids(&self, i: usize) -> &[u32] {
        let (start, len) = self.spans[i];
        &self.ids[start..start + len]
    }

    /// Tokens of text `i`, special tokens included.
    pub fn token_count(&self, i: usize) -> usize {
        self.spans[i].1
    }

    /// Tokens of all texts.
    pub fn total_tokens(&self) -> usize {
        self.ids.len()
    }

    /// Whether text `i` was cut to the model's limit.
    pub fn truncated(&self, i: usize) -> bool {
        self.truncated[i]
    }

    /// How many texts were cut.
    pub fn truncated_count(&self) -> usize {
        self.truncated.iter().filter(|&&t| t).count()
    }

    /// Appends `other`'s texts (a batcher joining requests). Both must come from the same model
    /// with options that give the same vectors (prompt, normalization, truncate-dim), else the
    /// vectors would not be what each caller asked for; batch size and threads are this one's.
    pub fn append(&mut self, other: &Tokenized) -> Result<()> {
        let same = |s: &Settings| (s.model, s.post, s.skip_tokens);
        if same(&self.settings) != same(&other.settings) {
            return Err(Error::InvalidOption(
                "cannot join texts tokenized by another model or with other options".into(),
            ));
        }
        let base = self.ids.len();
        self.ids.extend_from_slice(&other.ids);
        self.spans
            .extend(other.spans.iter().map(|&(s, l)| (s + base, l)));
        self.truncated.extend_from_slice(&other.truncated);
        Ok(())
    }

    /// Texts `range` as a `Tokenized` of their own (a batcher splitting a large request).
    ///
    /// # Panics
    /// If `range` goes past [`len`](Self::len), as slicing does.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Tokenized {
        let mut out = Tokenized::new(self.settings);
        for i in range {
            out.push(self.ids(i), self.truncated[i]);
        }
        out
    }
}
