"""sembed: sentence-transformers' vectors and API from a native Rust engine — no torch.

Change one import line::

    from sembed import SentenceTransformer   # was: from sentence_transformers import ...

    model = SentenceTransformer("all-MiniLM-L6-v2")   # built in: no download, no files
    embeddings = model.encode(["A man is playing a guitar.", "A woman is reading."])
    scores = model.similarity(embeddings, embeddings)

Also: :class:`StaticModel` and :func:`distill` (Model2Vec, as Python ``model2vec``),
:mod:`sembed.util` (``cos_sim``, ``semantic_search``, ``quantize_embeddings``, ... on numpy arrays),
:class:`Index` (semantic file search that re-embeds only what changed) and
:class:`EmbeddingCache`.
"""

from sembed._sembed import __version__
from sembed import util
from sembed.index import EmbeddingCache, Index
from sembed.sentence_transformer import SentenceTransformer
from sembed.static_model import StaticModel, distill

__all__ = [
    "EmbeddingCache",
    "Index",
    "SentenceTransformer",
    "StaticModel",
    "__version__",
    "distill",
    "util",
]
