"""sembed.util against sentence_transformers.util's definitions, on numpy arrays."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sembed import util

rng = np.random.default_rng(7)
A = rng.normal(size=(5, 16)).astype(np.float32)
B = rng.normal(size=(7, 16)).astype(np.float32)


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_similarity_matrices():
    np.testing.assert_allclose(util.cos_sim(A, B), unit(A) @ unit(B).T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(util.pytorch_cos_sim(A, B), util.cos_sim(A, B))
    np.testing.assert_allclose(util.dot_score(A, B), A @ B.T, rtol=1e-5)
    np.testing.assert_allclose(util.euclidean_sim(A, B), -np.linalg.norm(A[:, None] - B[None], axis=-1), rtol=1e-5)
    np.testing.assert_allclose(util.manhattan_sim(A, B), -np.abs(A[:, None] - B[None]).sum(-1), rtol=1e-5)
    # One vector is one row; lists of vectors and of floats are accepted.
    assert util.cos_sim(A[0], B).shape == (1, 7)
    np.testing.assert_allclose(util.cos_sim(list(A), B), util.cos_sim(A, B), rtol=1e-6)
    np.testing.assert_allclose(util.dot_score(A[0].tolist(), B[0].tolist()), [[A[0] @ B[0]]], rtol=1e-5)


def test_pairwise():
    C = B[:5]
    np.testing.assert_allclose(util.pairwise_cos_sim(A, C), (unit(A) * unit(C)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(util.pairwise_dot_score(A, C), (A * C).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(util.pairwise_euclidean_sim(A, C), -np.linalg.norm(A - C, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(util.pairwise_manhattan_sim(A, C), -np.abs(A - C).sum(-1), rtol=1e-5)


def test_normalize_embeddings():
    n = util.normalize_embeddings(A)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, rtol=1e-6)
    assert np.all(util.normalize_embeddings(np.zeros((2, 3), np.float32)) == 0)


def test_semantic_search_equals_brute_force():
    corpus = rng.normal(size=(1000, 16)).astype(np.float32)
    queries = rng.normal(size=(30, 16)).astype(np.float32)
    scores = unit(queries) @ unit(corpus).T
    # Small chunks exercise the merging of per-chunk top-k lists.
    hits = util.semantic_search(queries, corpus, query_chunk_size=7, corpus_chunk_size=128, top_k=5)
    assert len(hits) == 30
    for q, h in enumerate(hits):
        best = np.argsort(-scores[q])[:5]
        assert [x["corpus_id"] for x in h] == best.tolist()
        np.testing.assert_allclose([x["score"] for x in h], scores[q, best], rtol=1e-5)
    one = util.semantic_search(queries[0], corpus, top_k=3)
    assert [x["corpus_id"] for x in one[0]] == [x["corpus_id"] for x in hits[0][:3]]
    dot = util.semantic_search(queries, corpus, top_k=2, score_function=util.dot_score)
    assert dot[0][0]["corpus_id"] == int(np.argmax(queries[0] @ corpus.T))
    assert util.semantic_search(queries, corpus[:2], top_k=10)[0].__len__() == 2


def test_quantize_embeddings_as_sentence_transformers_6_2():
    e = np.array([[-1.0, 0.5, 3.0], [0.0, 0.5, -3.0], [1.0, 0.5, 0.0]], dtype=np.float32)
    # step = (max - min) / 255 per column; column 1 is constant (step 1, all 0).
    u8 = util.quantize_embeddings(e, "uint8")
    assert u8.dtype == np.uint8
    # float32 throughout, as numpy computes it: the top of column 0 lands on 254.99998 -> 254.
    assert u8.tolist() == [[0, 0, 255], [127, 0, 0], [254, 0, 127]]
    np.testing.assert_array_equal(util.quantize_embeddings(e, "int8"), (u8.astype(np.int16) - 128).astype(np.int8))
    # Calibrated: values outside the range are clipped.
    ranges = np.array([[-0.5, 0.0, -1.0], [0.5, 1.0, 1.0]], dtype=np.float32)
    c = util.quantize_embeddings(e, "uint8", ranges=ranges)
    assert c[0, 0] == 0 and c[2, 0] == 255 and c[0, 2] == 255 and c[1, 2] == 0
    assert util.quantize_embeddings(e, "ubinary").tolist() == [[0b0110_0000], [0b0100_0000], [0b1100_0000]]
    np.testing.assert_array_equal(util.quantize_embeddings(e, "binary"), (util.quantize_embeddings(e, "ubinary").astype(np.int16) - 128).astype(np.int8))
    assert util.quantize_embeddings(e, "float32").dtype == np.float32
    assert util.quantize_embeddings(np.zeros((0, 10), np.float32), "binary").shape == (0, 2)
    with pytest.raises(ValueError, match="single embedding"):
        util.quantize_embeddings(e[:1], "int8")
    assert util.quantize_embeddings(e[:1], "int8", calibration_embeddings=e).shape == (1, 3)
    with pytest.raises(ValueError, match="not supported"):
        util.quantize_embeddings(e, "int4")
    with pytest.raises(Exception, match="must be float"):
        util.quantize_embeddings(e.astype(np.int8), "int8")
    # Token embeddings: a list of matrices shares one set of ranges.
    parts = util.quantize_embeddings([e[:2], e[2:]], "uint8")
    np.testing.assert_array_equal(np.concatenate(parts), u8)


def test_quantize_warns_on_few_embeddings(caplog):
    with caplog.at_level(logging.WARNING):
        util.quantize_embeddings(A, "int8")
    assert "buckets based on 5 embeddings" in caplog.text
