"""Vectors through the Python package equal sentence-transformers' and model2vec's references."""

from __future__ import annotations

import numpy as np
import pytest

import sembed
from conftest import DATA, FIXTURES, jsonl, min_cosine


def test_f32_minilm_stsb_equals_sentence_transformers(minilm_dir, stsb_sentences):
    model = sembed.SentenceTransformer(str(minilm_dir))
    got = model.encode(stsb_sentences, normalize_embeddings=True)
    ref = np.load(DATA / "minilm-stsb.npy")
    assert got.shape == ref.shape == (2758, 384) and got.dtype == np.float32
    assert min_cosine(got, ref) >= 0.99999


def test_builtin_stsb_equals_sentence_transformers(builtin, stsb_sentences):
    got = builtin.encode(stsb_sentences, normalize_embeddings=True)
    assert min_cosine(got, np.load(DATA / "minilm-stsb.npy")) >= 0.9999


@pytest.mark.parametrize("which", ["f32", "builtin"])
def test_minilm_edge_texts_vectors_and_ids(which, minilm_dir, builtin):
    model = builtin if which == "builtin" else sembed.SentenceTransformer(str(minilm_dir))
    refs = jsonl(DATA / "minilm-dev.jsonl")
    texts = [r["text"] for r in refs]
    got = model.encode(texts)
    bound = 0.9999 if which == "builtin" else 0.99999
    assert min_cosine(got, np.array([r["embedding"] for r in refs])) >= bound
    tokens = model.tokenize(texts)
    for i, r in enumerate(refs):
        n = int(tokens["attention_mask"][i].sum())
        assert tokens["input_ids"][i][:n].tolist() == r["input_ids"], r["text"][:40]


def test_real_mpnet_equals_sentence_transformers(mpnet_dir):
    model = sembed.SentenceTransformer(str(mpnet_dir))
    refs = jsonl(DATA / "mpnet" / "reference.jsonl")
    # Each text alone, as the references were made, and all together (batching must not matter).
    together = model.encode([r["text"] for r in refs])
    ref = np.array([r["embedding"] for r in refs])
    assert min_cosine(together, ref) >= 0.99999
    alone = np.stack([model.encode(r["text"]) for r in refs[:8]])
    assert min_cosine(alone, ref[:8]) >= 0.99999


@pytest.mark.parametrize("fixture", ["tiny-bert-cls", "tiny-bert-max-dense", "tiny-bert-meansqrt", "tiny-mpnet-mean", "tiny-xlmr-mean"])
def test_tiny_fixtures(fixture):
    refs = jsonl(FIXTURES / fixture / "reference.jsonl")
    model = sembed.SentenceTransformer(str(FIXTURES / fixture))
    got = model.encode([r["text"] for r in refs])
    assert min_cosine(got, np.array([r["embedding"] for r in refs])) >= 0.99999


def test_static_model_equals_model2vec_references(stsb_sentences):
    model = sembed.StaticModel.from_pretrained(DATA / "m2v-minilm-256")
    got = model.encode(stsb_sentences)
    ref = np.load(DATA / "m2v-minilm-256-stsb.npy")
    assert got.shape == ref.shape == (2758, 256)
    # model2vec computes with its float16 table in float16 (its outputs are float16 values);
    # sembed widens to float32: equal up to float16 rounding (2^-11 for values below 1).
    assert min_cosine(got, ref) >= 0.99999
    assert np.abs(got - ref).max() < 1e-3
    dev = jsonl(DATA / "m2v-minilm-256-dev.jsonl")
    got = model.encode([r["text"] for r in dev])
    want = np.array([r["embedding"] for r in dev])
    assert min_cosine(got, want) >= 0.99999
    assert np.abs(got - want).max() < 1e-3


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"max_length": 4}, {"max_length": None}, {"normalize": False}, {"max_length": 1, "normalize": False}],
)
def test_static_model_equals_live_model2vec(kwargs, stsb_sentences):
    """The same call through Python model2vec 0.10 (installed in the test venv) and through sembed."""
    import model2vec

    assert model2vec.__version__ == "0.10.0"
    ours = sembed.StaticModel.from_pretrained(DATA / "m2v-minilm-256")
    theirs = model2vec.StaticModel.from_pretrained(str(DATA / "m2v-minilm-256"))
    texts = stsb_sentences[:300] + [r["text"] for r in jsonl(DATA / "m2v-minilm-256-dev.jsonl")]
    a = ours.encode(texts, **kwargs)
    b = theirs.encode(texts, **kwargs)
    assert a.shape == b.shape and a.dtype == np.float32 and b.dtype == np.float16
    assert min_cosine(a, b) >= 0.99999
    assert np.abs(a - b).max() < 1e-3 * max(1.0, float(np.abs(b).max()))
    one = ours.encode(texts[0], **kwargs)
    assert one.shape == (256,)
    assert min_cosine(one[None], theirs.encode(texts[0], **kwargs)[None]) >= 0.99999
