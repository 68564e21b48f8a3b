"""StaticModel (model2vec's API) and distill."""

from __future__ import annotations

import json

import numpy as np
import pytest

import sembed
from conftest import DATA, FIXTURES, min_cosine

M2V = DATA / "m2v-minilm-256"
TEXTS = ["A man is playing a guitar.", "", "Stocks fell sharply on Monday."]


def test_from_pretrained_and_encode():
    model = sembed.StaticModel.from_pretrained(M2V)
    assert model.dim == 256 and model.normalize is True and model.max_length in (512, None)
    e = model.encode(TEXTS)
    assert e.shape == (3, 256) and e.dtype == np.float32
    assert np.all(e[1] == 0)  # an empty text has no tokens: zeros, as model2vec gives
    one = model.encode(TEXTS[0])
    assert one.shape == (256,)
    np.testing.assert_array_equal(one, e[0])
    np.testing.assert_allclose(np.linalg.norm(e[[0, 2]], axis=1), 1, rtol=1e-5)
    assert model.encode([]).shape == (0, 256)


def test_options():
    model = sembed.StaticModel.from_pretrained(M2V)
    raw = model.encode(TEXTS, normalize=False)
    assert not np.allclose(np.linalg.norm(raw[0]), 1)
    assert not np.allclose(model.encode(TEXTS[0], max_length=2), model.encode(TEXTS[0]))
    small = sembed.StaticModel.from_pretrained(M2V, dimensionality=64)
    assert small.dim == 64
    cut = small.encode(TEXTS)
    assert cut.shape == (3, 64)
    # model2vec slices the table: the same direction as the first 64 dimensions, normalized.
    np.testing.assert_allclose(cut[0], raw[0, :64] / np.linalg.norm(raw[0, :64]), rtol=1e-5, atol=1e-6)
    unnormalized = sembed.StaticModel.from_pretrained(M2V, normalize=False)
    np.testing.assert_allclose(unnormalized.encode(TEXTS), raw, rtol=1e-6)
    bar = model.encode(TEXTS * 10, batch_size=4, show_progress_bar=True)
    np.testing.assert_allclose(bar, model.encode(TEXTS * 10), atol=1e-7)


def test_unsupported_and_wrong_models():
    with pytest.raises(ValueError, match="quantize_to"):
        sembed.StaticModel.from_pretrained(M2V, quantize_to="int8")
    with pytest.raises(ValueError, match="vocabulary_quantization"):
        sembed.StaticModel.from_pretrained(M2V, vocabulary_quantization=8)
    with pytest.raises(ValueError, match="not a static model"):
        sembed.StaticModel.from_pretrained(FIXTURES / "tiny-bert-cls")
    with pytest.raises(ValueError, match="dimensionality"):
        sembed.StaticModel.from_pretrained(M2V, dimensionality=1000)
    with pytest.raises(ValueError, match="max_length"):
        sembed.StaticModel.from_pretrained(M2V).encode("x", max_length=0)


def test_save_pretrained_copies_a_loaded_model(tmp_path):
    model = sembed.StaticModel.from_pretrained(M2V)
    model.save_pretrained(tmp_path / "copy")
    again = sembed.StaticModel.from_pretrained(tmp_path / "copy")
    np.testing.assert_array_equal(again.encode(TEXTS), model.encode(TEXTS))


def test_distill_equals_the_cli_and_loads_in_model2vec(tmp_path):
    import model2vec

    teacher = FIXTURES / "tiny-bert-cls"
    static = sembed.distill(str(teacher), pca_dims=16)
    assert isinstance(static, sembed.StaticModel) and static.dim == 16
    e = static.encode(TEXTS)
    assert e.shape == (3, 16)
    static.save_pretrained(tmp_path / "m2v")
    config = json.loads((tmp_path / "m2v" / "config.json").read_text())
    assert config["normalize"] is True
    # Saved and loaded back (sembed and Python model2vec 0.10): the same vectors.
    np.testing.assert_allclose(sembed.StaticModel.from_pretrained(tmp_path / "m2v").encode(TEXTS), e, atol=1e-6)
    theirs = model2vec.StaticModel.from_pretrained(str(tmp_path / "m2v"))
    # model2vec computes in float16 with the saved float16 table.
    np.testing.assert_allclose(theirs.encode(TEXTS).astype(np.float32), e, atol=1e-3)
    # A loaded SentenceTransformer can be the source too; the result does not depend on how.
    again = sembed.distill(sembed.SentenceTransformer(str(teacher)), pca_dims=16, show_progress_bar=True)
    np.testing.assert_array_equal(again.encode(TEXTS), e)


def test_distill_rejects_what_it_does_not_do():
    teacher = str(FIXTURES / "tiny-bert-cls")
    for kwargs, message in [
        ({"vocabulary": ["a"]}, "vocabulary"),
        ({"pooling": "first"}, "mean pooling"),
        ({"quantize_to": "int8"}, "float16"),
        ({"pca_dims": None}, "pca_dims"),
        ({"sif_coefficient": None}, "sif_coefficient"),
        ({"device": "cuda"}, "not supported"),
        ({"sif_coefficient": 2.0}, "sif coefficient"),
    ]:
        with pytest.raises(ValueError, match=message):
            sembed.distill(teacher, **kwargs)
    with pytest.raises(ValueError, match="distillation source"):
        sembed.distill(sembed.SentenceTransformer(str(M2V)))


def test_tokenize_equals_model2vec():
    import model2vec

    texts = ["A man is playing a guitar.", "", "naïve café ☕ unknownwordxyz", "word " * 600]
    ours = sembed.StaticModel.from_pretrained(M2V).tokenize(texts)
    theirs = model2vec.StaticModel.from_pretrained(str(M2V)).tokenize(texts)
    assert ours[:3] == theirs[:3]
    # The long text: cut at max_length (512) tokens, as model2vec's tokenizer truncation does.
    assert ours[3] == theirs[3] and len(ours[3]) == 512
