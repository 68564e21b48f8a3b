//! The result of embedding: `n` vectors of `dim` floats, row-major, in input order.

/// Embeddings of a list of texts.
///
/// ```
/// let e = sembed::Embeddings::new(2, vec![1.0, 0.0, 0.0, 1.0]);
/// assert_eq!(e.len(), 2);
/// assert_eq!(e.row(1), &[0.0, 1.0]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    dim: usize,
    data: Vec<f32>, // [n, dim]
}

impl Embeddings {
    /// Wraps row-major data; `data.len()` must be a multiple of `dim`.
    pub fn new(dim: usize, data: Vec<f32>) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "data length must be a multiple of dim"
        );
        Embeddings { dim, data }
    }

    /// Width of each vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Vector `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// All vectors in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.dim)
    }

    /// The flat row-major data.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Takes the flat row-major data.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// The last hidden states of every token of a list of texts (sentence-transformers'
/// `output_value="token_embeddings"`): text `i` is a `[tokens_i, dim]` block, special tokens
/// included.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEmbeddings {
    dim: usize,
    data: Vec<f32>,      // [Σ tokens_i, dim]
    offsets: Vec<usize>, // [n + 1] row offsets
}

impl TokenEmbeddings {
    pub(crate) fn new(dim: usize, data: Vec<f32>, lens: impl IntoIterator<Item = usize>) -> Self {
        let mut offsets = vec![0];
        for len in lens {
            offsets.push(offsets[offsets.len() - 1] + len);
        }
        debug_assert_eq!(offsets[offsets.len() - 1] * dim, data.len());
        TokenEmbeddings { dim, data, offsets }
    }

    /// Width of each token state.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of texts.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there are no texts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Text `i`'s token states, `[tokens_i, dim]` row-major.
    pub fn get(&self, i: usize) -> &[f32] {
        &self.data[self.offsets[i] * self.dim..self.offsets[i + 1] * self.dim]
    }

    /// Tokens of text `i`.
    pub fn tokens(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }
}
