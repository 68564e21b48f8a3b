"""``sentence_transformers.util`` on numpy arrays: similarity functions, ``semantic_search``,
``normalize_embeddings`` and ``quantize_embeddings``, with the same names, arguments and results
(numpy arrays where sentence-transformers returns torch tensors). A torch tensor given as input is
read through ``.numpy()``.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from typing import Callable

__all__ = [
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "normalize_embeddings",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pytorch_cos_sim",
    "quantize_embeddings",
    "semantic_search",
]


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor
        return a.detach().cpu().numpy()
    if isinstance(a, list) and a and not isinstance(a[0], (int, float, np.number)):
        return np.stack([_to_numpy(x) for x in a])
    return np.asarray(a)


def _float(a) -> np.ndarray:
    a = _to_numpy(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)


def _batch(a) -> np.ndarray:
    """A 2-D float array: one vector becomes one row (as sentence-transformers' ``_convert_to_batch_tensor``)."""
    a = _float(a)
    return a[None, :] if a.ndim == 1 else a


def normalize_embeddings(embeddings) -> np.ndarray:
    """Each vector scaled to length 1 (as ``torch.nn.functional.normalize``: ``x / max(‖x‖, 1e-12)``)."""
    e = _float(embeddings)
    norms = np.linalg.norm(e, axis=-1, keepdims=True)
    return e / np.maximum(norms, 1e-12)


def cos_sim(a, b) -> np.ndarray:
    """Cosine similarity of every vector of ``a`` with every vector of ``b``: ``res[i][j] = cos(a[i], b[j])``."""
    return normalize_embeddings(_batch(a)) @ normalize_embeddings(_batch(b)).T


def pytorch_cos_sim(a, b) -> np.ndarray:
    """The same as :func:`cos_sim` (an older name)."""
    return cos_sim(a, b)


def pairwise_cos_sim(a, b) -> np.ndarray:
    """``res[i] = cos(a[i], b[i])``."""
    return pairwise_dot_score(normalize_embeddings(a), normalize_embeddings(b))


def dot_score(a, b) -> np.ndarray:
    """Dot product of every vector of ``a`` with every vector of ``b``."""
    return _batch(a) @ _batch(b).T


def pairwise_dot_score(a, b) -> np.ndarray:
    """``res[i] = a[i] · b[i]``."""
    return (_float(a) * _float(b)).sum(axis=-1)


def _cdist(a: np.ndarray, b: np.ndarray, p: float) -> np.ndarray:
    diff = a[:, None, :] - b[None, :, :]
    if p == 1:
        return np.abs(diff).sum(axis=-1)
    return np.sqrt((diff * diff).sum(axis=-1))


def manhattan_sim(a, b) -> np.ndarray:
    """Negative L1 distance of every pair: ``res[i][j] = -‖a[i] - b[j]‖₁``."""
    return -_cdist(_batch(a), _batch(b), 1)


def pairwise_manhattan_sim(a, b) -> np.ndarray:
    """``res[i] = -‖a[i] - b[i]‖₁``."""
    return -np.abs(_float(a) - _float(b)).sum(axis=-1)


def euclidean_sim(a, b) -> np.ndarray:
    """Negative L2 distance of every pair: ``res[i][j] = -‖a[i] - b[j]‖₂``."""
    return -_cdist(_batch(a), _batch(b), 2)


def pairwise_euclidean_sim(a, b) -> np.ndarray:
    """``res[i] = -‖a[i] - b[i]‖₂``."""
    return -np.linalg.norm(_float(a) - _float(b), axis=-1)


SIMILARITY = {
    "cosine": (cos_sim, pairwise_cos_sim),
    "dot": (dot_score, pairwise_dot_score),
    "euclidean": (euclidean_sim, pairwise_euclidean_sim),
    "manhattan": (manhattan_sim, pairwise_manhattan_sim),
}


def semantic_search(
    query_embeddings,
    corpus_embeddings,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Callable[[np.ndarray, np.ndarray], np.ndarray] = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """The ``top_k`` best corpus entries for each query, as sentence-transformers' ``semantic_search``:
    one list per query of ``{"corpus_id": int, "score": float}``, best first.

    Args:
        query_embeddings: ``[queries, dim]`` (or one ``[dim]`` vector).
        corpus_embeddings: ``[corpus, dim]``.
        query_chunk_size: queries scored at once.
        corpus_chunk_size: corpus rows scored at once.
        top_k: hits per query.
        score_function: ``f(queries, corpus) -> [queries, corpus]`` scores (default :func:`cos_sim`).
    """
    queries = _batch(query_embeddings)
    corpus = _batch(corpus_embeddings)
    results: list[list[tuple[float, int]]] = [[] for _ in range(len(queries))]
    normalize_chunks = score_function is cos_sim
    for c0 in range(0, len(corpus), corpus_chunk_size):
        chunk = corpus[c0 : c0 + corpus_chunk_size]
        if normalize_chunks:
            chunk = normalize_embeddings(chunk)
        for q0 in range(0, len(queries), query_chunk_size):
            q = queries[q0 : q0 + query_chunk_size]
            scores = dot_score(normalize_embeddings(q), chunk) if normalize_chunks else score_function(q, chunk)
            k = min(top_k, scores.shape[1])
            if k <= 0:
                continue
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            for row, (ids, heap) in enumerate(zip(top, results[q0 : q0 + len(q)])):
                for j in ids:
                    item = (float(scores[row, j]), int(j) + c0)
                    if len(heap) < top_k:
                        heapq.heappush(heap, item)
                    else:
                        heapq.heappushpop(heap, item)
    return [
        [{"corpus_id": cid, "score": score} for score, cid in sorted(heap, key=lambda t: t[0], reverse=True)]
        for heap in results
    ]


def quantize_embeddings(
    embeddings,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Quantizes float embeddings as sentence-transformers 6.2 does:

    - ``int8`` / ``uint8``: per dimension, ``floor((x - min) / ((max - min) / 255))`` clipped to
      0..255 (minus 128 for int8); ``ranges`` (``[2, dim]``: min row, max row) or
      ``calibration_embeddings`` give min and max, else the embeddings themselves (then at least
      two are needed);
    - ``binary``: ``packbits(x > 0) - 128`` as int8; ``ubinary``: ``packbits(x > 0)`` as uint8;
    - ``float32``: unchanged (as float32).

    A list of 2-D arrays (token embeddings) is quantized matrix by matrix with shared ranges.
    """
    if isinstance(embeddings, list):
        if not embeddings:
            return []
        embeddings = [_to_numpy(e) for e in embeddings]
        if embeddings[0].ndim == 2:
            if precision.endswith("int8") and ranges is None:
                data = np.concatenate(embeddings, axis=0) if calibration_embeddings is None else calibration_embeddings
                if len(data):
                    ranges = _ranges(data, precision, calibration_embeddings)
            return [
                quantize_embeddings(m, precision=precision, ranges=ranges, calibration_embeddings=calibration_embeddings)
                for m in embeddings
            ]
        embeddings = np.array(embeddings)
    embeddings = _to_numpy(embeddings)
    if embeddings.dtype in (np.uint8, np.int8):
        raise Exception("Embeddings to quantize must be float rather than int8 or uint8.")
    if embeddings.ndim == 2 and embeddings.shape[0] == 0:
        dim = embeddings.shape[1]
        if precision.endswith("int8"):
            return np.zeros((0, dim), dtype=np.int8 if precision == "int8" else np.uint8)
        if precision.endswith("binary"):
            return np.zeros((0, (dim + 7) // 8), dtype=np.int8 if precision == "binary" else np.uint8)
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision.endswith("int8"):
        if ranges is None:
            ranges = _ranges(embeddings, precision, calibration_embeddings)
        ranges = ranges.astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
        if precision == "uint8":
            return q.astype(np.uint8)
        if precision == "int8":
            return (q - 128).astype(np.int8)
    if precision == "binary":
        return (np.packbits(embeddings > 0, axis=-1) - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(embeddings > 0, axis=-1)
    raise ValueError(f"Precision {precision!r} is not supported")


def _ranges(embeddings: np.ndarray, precision: str, calibration_embeddings: np.ndarray | None) -> np.ndarray:
    if calibration_embeddings is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise ValueError(
                f"Cannot compute {precision} quantization ranges from a single embedding. "
                "Call `quantize_embeddings` with `ranges` or `calibration_embeddings` "
                "from a representative set of embeddings instead."
            )
        if embeddings.shape[0] < 100:
            import logging  # only here: importing logging costs a fresh interpreter milliseconds

            logging.getLogger(__name__).warning(
                f"Computing {precision} quantization buckets based on {len(embeddings)} embeddings."
                f" {precision} quantization is more stable with `ranges` calculated from more embeddings "
                "or a `calibration_embeddings` that can be used to calculate the buckets."
            )
        calibration_embeddings = embeddings
    calibration_embeddings = _to_numpy(calibration_embeddings)
    return np.vstack((np.min(calibration_embeddings, axis=0), np.max(calibration_embeddings, axis=0)))
