"""Shared fixtures. The reference data are the repo's copies in tests/data (see tests/data/README.md:
sentence-transformers 6.2 / torch 2.15 and model2vec 0.10 outputs); the real models come from
scripts/fetch-test-model.sh and scripts/fetch-mpnet.sh, whose folders python/tests/run.sh passes in
SEMBED_TEST_MINILM and SEMBED_TEST_MPNET. A missing one is an error, never a skip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
FIXTURES = DATA / "fixtures"


def _model_dir(var: str) -> Path:
    value = os.environ.get(var)
    if not value or not Path(value, "config.json").is_file():
        raise RuntimeError(f"{var} must name the model folder (python/tests/run.sh sets it); got {value!r}")
    return Path(value)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return _model_dir("SEMBED_TEST_MINILM")


@pytest.fixture(scope="session")
def mpnet_dir() -> Path:
    return _model_dir("SEMBED_TEST_MPNET")


@pytest.fixture(scope="session")
def stsb_sentences() -> list[str]:
    """All s1 then all s2 of the STS-B test split: the order of minilm-stsb.npy."""
    text = (DATA / "stsb-test.tsv").read_text(encoding="utf-8")
    rows = [line.rstrip("\r").split("\t") for line in text.split("\n") if line]
    assert len(rows) == 1379
    return [r[5] for r in rows] + [r[6] for r in rows]


def jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    # Two zero vectors (an empty text in a static model) are equal.
    cos = np.where(den == 0, np.where(np.abs(a).sum(axis=1) + np.abs(b).sum(axis=1) == 0, 1.0, 0.0), num / np.where(den == 0, 1, den))
    return float(cos.min())


@pytest.fixture(scope="session")
def builtin():
    import sembed

    return sembed.SentenceTransformer("builtin")
