"""sembed's SentenceTransformer beside the real one, in one interpreter (the sentence-transformers venv,
with sembed importable from PYTHONPATH): for a matrix of encode() options, the same return types and
shapes, vectors within 1e-5 (cosine ≥ 0.99999), the same error for unknown keyword arguments, and
sembed.util equal to sentence_transformers.util. Needs torch, so it is not part of scripts/test.sh (whose
venv has no torch); bench/python.py --parts parity runs it. Usage: python st_parity.py MODEL_DIR
"""

import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer as Reference
from sentence_transformers import util as ref_util

import sembed
from sembed import util

model_dir = sys.argv[1]
ours = sembed.SentenceTransformer(model_dir)
theirs = Reference(model_dir, device="cpu")
texts = ["A man is playing a guitar.", "", "Stocks fell sharply on Monday after the report.", "hello world"]
checked = 0


def same(x, y, what):
    global checked
    assert type(x).__name__ == type(y).__name__ or (isinstance(y, torch.Tensor) and isinstance(x, np.ndarray) and what.endswith("[numpy]")), (what, type(x), type(y))
    if isinstance(y, list):
        assert len(x) == len(y), what
        for a, b in zip(x, y):
            same(a, b.numpy() if isinstance(b, torch.Tensor) else b, what + "[numpy]")
        return
    a = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    b = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    assert a.shape == b.shape and a.dtype == b.dtype, (what, a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind == "f" and a.size:
        assert np.abs(a - b).max() < 1e-5, (what, np.abs(a - b).max())
    elif a.size:
        # Codes of values at a bucket edge may differ by one step.
        assert np.abs(a.astype(np.int32) - b.astype(np.int32)).max() <= 1, what
    checked += 1


options = [
    {},
    {"convert_to_tensor": True},
    {"convert_to_numpy": False},
    {"normalize_embeddings": True},
    {"truncate_dim": 64},
    {"truncate_dim": 64, "normalize_embeddings": True},
    {"precision": "int8"},
    {"precision": "uint8"},
    {"precision": "binary"},
    {"precision": "ubinary"},
    {"prompt": "query: "},
    {"batch_size": 1},
]
for kw in options:
    # convert_to_numpy=False: sentence-transformers gives tensors, sembed numpy arrays (documented).
    tag = "[numpy]" if kw.get("convert_to_numpy") is False else ""
    same(ours.encode(texts, **kw), theirs.encode(texts, **kw), f"list {kw}{tag}")
    if kw.get("precision") in (None, "binary", "ubinary"):
        same(ours.encode(texts[0], **kw), theirs.encode(texts[0], **kw), f"one {kw}{tag}")
same(ours.encode([]), theirs.encode([]), "empty")
same(ours.encode([], convert_to_tensor=True), theirs.encode([], convert_to_tensor=True), "empty tensor")
same(ours.encode_query(texts), theirs.encode_query(texts), "encode_query")
same(ours.encode_document(texts), theirs.encode_document(texts), "encode_document")
same(ours.encode(sentences=texts), theirs.encode(sentences=texts), "sentences=")
tok_ours = ours.encode(texts[:1], output_value="token_embeddings")
tok_theirs = theirs.encode(texts[:1], output_value="token_embeddings")
same(tok_ours, tok_theirs, "token_embeddings")

for bad in ({"foo": 1}, {"foo": 1, "bar": 2}):
    errors = []
    for m in (ours, theirs):
        try:
            m.encode(texts, **bad)
        except ValueError as e:
            errors.append(str(e))
    assert len(errors) == 2 and (len(bad) > 1 or errors[0] == errors[1]), errors
    checked += 1

assert ours.get_embedding_dimension() == theirs.get_embedding_dimension()
assert ours.max_seq_length == theirs.max_seq_length
assert ours.prompts == theirs.prompts and ours.default_prompt_name == theirs.default_prompt_name
assert ours.similarity_fn_name == theirs.similarity_fn_name
e = ours.encode(texts)
same(ours.similarity(e, e), theirs.similarity(e, e).numpy(), "similarity")
same(ours.similarity_pairwise(e, e), theirs.similarity_pairwise(e, e).numpy(), "similarity_pairwise")
tokens_ours = ours.tokenize(texts)
tokens_theirs = theirs.tokenize(texts)
tensor_keys = {k for k, v in tokens_theirs.items() if isinstance(v, torch.Tensor)}
assert set(tokens_ours) == tensor_keys, (set(tokens_ours), tensor_keys)
for k in tensor_keys:
    same(tokens_ours[k], tokens_theirs[k].numpy(), f"tokenize {k}")

rng = np.random.default_rng(1)
a = rng.normal(size=(200, 64)).astype(np.float32)
c = rng.normal(size=(20, 64)).astype(np.float32)
for p in ("int8", "uint8", "binary", "ubinary", "float32"):
    assert np.array_equal(util.quantize_embeddings(a, p), ref_util.quantize_embeddings(a, p)), p
    assert np.array_equal(util.quantize_embeddings(a, p, calibration_embeddings=c), ref_util.quantize_embeddings(a, p, calibration_embeddings=c)), p
for name in ("cos_sim", "dot_score", "euclidean_sim", "manhattan_sim", "pairwise_cos_sim", "pairwise_dot_score", "pairwise_euclidean_sim", "pairwise_manhattan_sim"):
    x = getattr(util, name)(a[:20], c)
    y = getattr(ref_util, name)(a[:20], c).numpy()
    assert np.allclose(x, y, atol=1e-4), name
hits = util.semantic_search(c, a, top_k=7)
ref_hits = ref_util.semantic_search(torch.from_numpy(c), torch.from_numpy(a), top_k=7)
assert [[h["corpus_id"] for h in q] for q in hits] == [[h["corpus_id"] for h in q] for q in ref_hits]
print(f"parity with sentence-transformers {__import__('sentence_transformers').__version__}: {checked} encode/similarity/tokenize comparisons, util functions: all equal")
