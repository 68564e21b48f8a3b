"""The CLI and the Python package agree: the same vectors, and the CLI's --precision codes equal
sembed.util.quantize_embeddings (sentence-transformers 6.2's algorithm, in numpy) on the same floats."""

from __future__ import annotations

import io
import os
import subprocess

import numpy as np
import pytest

import sembed
from sembed import util


@pytest.fixture(scope="module")
def cli() -> str:
    path = os.environ.get("SEMBED_TEST_CLI")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"SEMBED_TEST_CLI must name the sembed binary (python/tests/run.sh sets it); got {path!r}")
    return path


def embed(cli: str, texts: list[str], *args: str) -> np.ndarray:
    proc = subprocess.run([cli, "embed", "-f", "npy", *args], input=("\n".join(texts) + "\n").encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return np.load(io.BytesIO(proc.stdout))


def test_same_vectors_as_the_cli(cli, stsb_sentences, builtin):
    texts = stsb_sentences[:200]
    np.testing.assert_array_equal(embed(cli, texts), builtin.encode(texts))


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_cli_precision_equals_quantize_embeddings(cli, stsb_sentences, precision, tmp_path):
    texts = stsb_sentences[:300]
    floats = embed(cli, texts)
    codes = embed(cli, texts, "--precision", precision)
    np.testing.assert_array_equal(codes, util.quantize_embeddings(floats, precision))
    # Calibrated by other embeddings: values outside their range are clipped the same way.
    calibration = embed(cli, stsb_sentences[1000:1050])
    np.save(tmp_path / "cal.npy", calibration)
    codes = embed(cli, texts, "--precision", precision, "--calibration", str(tmp_path / "cal.npy"))
    np.testing.assert_array_equal(codes, util.quantize_embeddings(floats, precision, calibration_embeddings=calibration))
