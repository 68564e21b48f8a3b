"""SentenceTransformer's API: return types, every encode option, prompts, similarity, errors."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import warnings

import numpy as np
import pytest

import sembed
from conftest import FIXTURES

TEXTS = ["A man is playing a guitar.", "A woman is reading a book in the park.", "Stocks fell sharply."]
MEANSQRT = FIXTURES / "tiny-bert-meansqrt"  # no Normalize module


# -- return types ---------------------------------------------------------------------------------


def test_return_types(builtin):
    one = builtin.encode("hello world")
    assert isinstance(one, np.ndarray) and one.shape == (384,) and one.dtype == np.float32
    many = builtin.encode(TEXTS)
    assert isinstance(many, np.ndarray) and many.shape == (3, 384) and many.dtype == np.float32
    np.testing.assert_array_equal(one, builtin.encode(["hello world"])[0])
    as_list = builtin.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == 3
    assert all(isinstance(v, np.ndarray) and v.shape == (384,) for v in as_list)
    np.testing.assert_array_equal(np.stack(as_list), many)
    single_no_numpy = builtin.encode("hello world", convert_to_numpy=False)
    assert isinstance(single_no_numpy, np.ndarray) and single_no_numpy.shape == (384,)
    # Other iterables are lists of texts too.
    np.testing.assert_array_equal(builtin.encode(tuple(TEXTS)), many)
    np.testing.assert_array_equal(builtin.encode(np.array(TEXTS)), many)
    np.testing.assert_array_equal(builtin.encode(t for t in TEXTS), many)


def test_vectors_are_the_engines_buffer(builtin):
    """No copy on the way out: the array's memory is the engine's Vec, owned by rust-numpy's container."""
    e = builtin.encode(TEXTS)
    assert not e.flags.owndata and type(e.base).__name__ == "PySliceContainer"
    assert e.flags.c_contiguous and e.flags.writeable


def test_empty_input(builtin):
    e = builtin.encode([])
    assert isinstance(e, np.ndarray) and e.shape == (0,)
    assert builtin.encode([], convert_to_numpy=False) == []


def test_old_argument_name_sentences(builtin, caplog):
    with caplog.at_level(logging.WARNING, logger="sembed"):
        e = builtin.encode(sentences=TEXTS)
    np.testing.assert_array_equal(e, builtin.encode(TEXTS))
    assert "`sentences` argument was renamed" in caplog.text


def test_unknown_keyword_arguments_raise_like_sentence_transformers(builtin):
    with pytest.raises(ValueError) as err:
        builtin.encode(TEXTS, foo=1)
    assert str(err.value) == (
        "SentenceTransformer.encode() has been called with additional keyword arguments that this model does not use: ['foo']. "
        "As per SentenceTransformer.get_model_kwargs(), this model does not accept any additional keyword arguments."
    )
    assert builtin.get_model_kwargs() == []
    # task is accepted, as sentence-transformers accepts it for every model.
    np.testing.assert_array_equal(builtin.encode(TEXTS, task="query"), builtin.encode(TEXTS))


def test_convert_to_tensor():
    try:
        import torch
    except ImportError:
        torch = None
    model = sembed.SentenceTransformer("builtin")
    if torch is None:
        with pytest.raises(ImportError, match="torch is not installed"):
            model.encode(TEXTS, convert_to_tensor=True)
    else:
        t = model.encode(TEXTS, convert_to_tensor=True)
        assert isinstance(t, torch.Tensor) and tuple(t.shape) == (3, 384)
        np.testing.assert_array_equal(t.numpy(), model.encode(TEXTS))


def test_precisions_equal_quantize_embeddings(builtin):
    texts = TEXTS + ["one more", "and another text here"]
    floats = builtin.encode(texts)
    for precision, dtype, width in [("int8", np.int8, 384), ("uint8", np.uint8, 384), ("binary", np.int8, 48), ("ubinary", np.uint8, 48)]:
        q = builtin.encode(texts, precision=precision)
        assert q.dtype == dtype and q.shape == (5, width), precision
        np.testing.assert_array_equal(q, sembed.util.quantize_embeddings(floats, precision))
    np.testing.assert_array_equal(builtin.encode(texts, precision="float32"), floats)
    with pytest.raises(ValueError, match="Precision 'float16' is not supported"):
        builtin.encode(texts, precision="float16")
    # As sentence-transformers 6.2: int8 ranges cannot come from one embedding.
    with pytest.raises(ValueError, match="single embedding"):
        builtin.encode("one", precision="int8")
    assert builtin.encode("one", precision="ubinary").shape == (48,)


# -- options --------------------------------------------------------------------------------------


def test_normalize_embeddings():
    model = sembed.SentenceTransformer(str(MEANSQRT))
    raw = model.encode(TEXTS)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)
    unit = model.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_truncate_dim(builtin):
    full = builtin.encode(TEXTS)
    cut = builtin.encode(TEXTS, truncate_dim=64)
    assert cut.shape == (3, 64)
    np.testing.assert_allclose(cut, full[:, :64], rtol=1e-6, atol=1e-7)
    renorm = builtin.encode(TEXTS, truncate_dim=64, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(renorm, axis=1), 1, rtol=1e-6)
    model = sembed.SentenceTransformer("builtin", truncate_dim=32)
    assert model.encode(TEXTS).shape == (3, 32)
    assert model.get_embedding_dimension() == 32
    assert model.encode(TEXTS, truncate_dim=16).shape == (3, 16)
    # As sentence-transformers' slicing: a truncate_dim past the width cuts nothing.
    np.testing.assert_array_equal(builtin.encode(TEXTS, truncate_dim=1000), full)


def test_max_seq_length_read_write():
    model = sembed.SentenceTransformer("builtin")
    assert model.max_seq_length == 256
    long_text = "word " * 50
    full = model.encode(long_text)
    model.max_seq_length = 8
    assert model.max_seq_length == 8
    assert model.tokenize([long_text])["input_ids"].shape == (1, 8)
    short = model.encode(long_text)
    assert not np.allclose(short, full)
    # The same cut as sentence-transformers' per-call processing_kwargs.
    other = sembed.SentenceTransformer("builtin")
    np.testing.assert_array_equal(other.encode(long_text, processing_kwargs={"text": {"max_length": 8}}), short)
    with pytest.raises(ValueError, match="longer than 8 tokens"):
        other.encode(long_text, processing_kwargs={"text": {"max_length": 8, "truncation": False}})
    with pytest.raises(ValueError, match="positive integer"):
        model.max_seq_length = 0


def test_batch_size_does_not_change_vectors(builtin):
    texts = TEXTS * 7
    a = builtin.encode(texts, batch_size=1)
    b = builtin.encode(texts, batch_size=32)
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0."):
        builtin.encode(texts, batch_size=0)


def test_output_values(builtin):
    tokens = builtin.encode(["hello world", "a"], output_value="token_embeddings")
    assert [t.shape for t in tokens] == [(4, 384), (3, 384)]
    both = builtin.encode(["hello world"], output_value=None)
    assert set(both[0]) == {"sentence_embedding", "token_embeddings", "input_ids", "attention_mask"}
    np.testing.assert_array_equal(both[0]["sentence_embedding"], builtin.encode("hello world"))
    assert both[0]["input_ids"].tolist() == [101, 7592, 2088, 102]
    with pytest.raises(ValueError, match="output_value"):
        builtin.encode(["x"], output_value="logits")


def test_progress_bar_only_when_asked(builtin, capsys):
    texts = [f"text number {i}" for i in range(100)]
    quiet = builtin.encode(texts, batch_size=8)
    assert capsys.readouterr().err == ""
    shown = builtin.encode(texts, batch_size=8, show_progress_bar=True)
    assert "Batches" in capsys.readouterr().err
    np.testing.assert_allclose(shown, quiet, atol=1e-6)
    # None (the default) follows the logger, as in sentence-transformers: INFO shows the bar.
    logger = logging.getLogger("sembed")
    logger.setLevel(logging.INFO)
    try:
        builtin.encode(texts, batch_size=8)
    finally:
        logger.setLevel(logging.NOTSET)
    assert "Batches" in capsys.readouterr().err


# -- prompts --------------------------------------------------------------------------------------


def test_prompts():
    model = sembed.SentenceTransformer("builtin", prompts={"query": "query: ", "passage": "passage: "})
    assert model.prompts == {"query": "query: ", "document": "", "passage": "passage: "}
    q = model.encode_query("what is sembed?")
    np.testing.assert_array_equal(q, model.encode("what is sembed?", prompt="query: "))
    np.testing.assert_array_equal(q, model.encode("query: what is sembed?"))
    np.testing.assert_array_equal(model.encode("what is sembed?", prompt_name="query"), q)
    assert not np.allclose(q, model.encode("what is sembed?"))
    # encode_document takes "document" first: empty here, so no prompt.
    np.testing.assert_array_equal(model.encode_document("sembed is fast"), model.encode("sembed is fast"))
    with pytest.raises(ValueError, match="Prompt name 'nope' not found"):
        model.encode("x", prompt_name="nope")


def test_default_prompt_name():
    model = sembed.SentenceTransformer("builtin", prompts={"query": "query: "}, default_prompt_name="query")
    np.testing.assert_array_equal(model.encode("abc"), model.encode("query: abc", prompt=""))
    # encode_query with the empty "document" prompt turns the default off.
    np.testing.assert_array_equal(model.encode_document("abc"), model.encode("abc", prompt=""))
    with pytest.raises(ValueError, match="Default prompt name 'x' not found"):
        sembed.SentenceTransformer("builtin", default_prompt_name="x")


def test_builtin_prompts_are_sentence_transformers_defaults(builtin):
    assert builtin.prompts == {"query": "", "document": ""}
    assert builtin.default_prompt_name is None


# -- similarity -----------------------------------------------------------------------------------


def test_similarity_functions(builtin):
    e = builtin.encode(TEXTS)
    f = builtin.encode(["a guitar", "a book"])
    np.testing.assert_allclose(builtin.similarity(e, f), e @ f.T, rtol=1e-5, atol=1e-6)  # unit vectors
    np.testing.assert_allclose(builtin.similarity_pairwise(e[:2], f), (e[:2] * f).sum(1), rtol=1e-5)
    expected = {
        "dot": e @ f.T,
        "euclidean": -np.linalg.norm(e[:, None] - f[None], axis=-1),
        "manhattan": -np.abs(e[:, None] - f[None]).sum(-1),
    }
    for name, want in expected.items():
        model = sembed.SentenceTransformer("builtin", similarity_fn_name=name)
        assert model.similarity_fn_name == name
        np.testing.assert_allclose(model.similarity(e, f), want, rtol=1e-5, atol=1e-5)
        pair = model.similarity_pairwise(e[:2], f)
        np.testing.assert_allclose(pair, np.diag(want[:2]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="only supports similarity_fn_name"):
        sembed.SentenceTransformer("builtin", similarity_fn_name="maxsim")
    assert builtin.similarity(e[0], f).shape == (1, 2)


def test_similarity_fn_name_from_model_config(tmp_path):
    model_dir = tmp_path / "m"
    shutil.copytree(MEANSQRT, model_dir)
    cfg = (model_dir / "config_sentence_transformers.json").read_text().replace('"cosine"', '"dot"')
    (model_dir / "config_sentence_transformers.json").write_text(cfg)
    assert sembed.SentenceTransformer(str(model_dir)).similarity_fn_name == "dot"
    assert sembed.SentenceTransformer(str(model_dir), similarity_fn_name="manhattan").similarity_fn_name == "manhattan"


# -- facts ----------------------------------------------------------------------------------------


def test_dimensions_and_facts(builtin):
    assert builtin.get_embedding_dimension() == 384
    with pytest.warns(FutureWarning, match="renamed to `get_embedding_dimension`"):
        assert builtin.get_sentence_embedding_dimension() == 384
    assert builtin.device == "cpu"
    assert builtin.info["architecture"] == "BertModel"
    assert len(builtin.fingerprint()) > 16
    assert "sembed" in repr(builtin)


def test_help_reads_like_sentence_transformers():
    doc = sembed.SentenceTransformer.encode.__doc__
    for part in ("Computes embeddings", "prompt_name (str, optional)", "normalize_embeddings", "Returns:"):
        assert part in doc
    assert "Hugging Face id or alias" in sembed.SentenceTransformer.__doc__


def test_stubs_ship_with_the_package():
    pkg = os.path.dirname(sembed.__file__)
    assert os.path.isfile(os.path.join(pkg, "py.typed"))
    assert os.path.isfile(os.path.join(pkg, "_sembed.pyi"))


# -- errors for what sembed does not do -----------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"device": "cuda"}, "device='cuda' is not supported"),
        ({"device": "cuda:0"}, "device='cuda:0' is not supported"),
        ({"device": "mps"}, "device='mps' is not supported"),
        ({"backend": "onnx"}, "backend='onnx' is not supported"),
        ({"backend": "openvino"}, "backend='openvino' is not supported"),
        ({"modules": [object()]}, "modules is not supported"),
        ({"model_kwargs": {"torch_dtype": "float16"}}, "model_kwargs is not supported"),
        ({"processor_kwargs": {"x": 1}}, "processor_kwargs is not supported"),
        ({"config_kwargs": {"x": 1}}, "config_kwargs is not supported"),
        ({"threads": 0}, "threads must be a positive integer"),
    ],
)
def test_unsupported_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sembed.SentenceTransformer("builtin", **kwargs)


def test_unsupported_encode_arguments(builtin):
    with pytest.raises(ValueError, match="device='cuda' is not supported"):
        builtin.encode("x", device="cuda")
    with pytest.raises(ValueError, match="multi-process"):
        builtin.encode("x", device=["cpu", "cpu"])
    with pytest.raises(ValueError, match="pool and chunk_size"):
        builtin.encode("x", pool={"processes": []})
    with pytest.raises(TypeError, match="input 1 is a int"):
        builtin.encode(["x", 3])
    np.testing.assert_array_equal(builtin.encode("x", device="cpu"), builtin.encode("x"))


def test_missing_model_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        sembed.SentenceTransformer(str(tmp_path / "no-such-model"))
    with pytest.raises(OSError, match="offline"):
        sembed.SentenceTransformer("sentence-transformers/no-such-model", local_files_only=True, cache_folder=str(tmp_path))
    with pytest.raises(ValueError, match="model_name_or_path is required"):
        sembed.SentenceTransformer()


def test_token_and_use_auth_token():
    with pytest.warns(FutureWarning, match="use_auth_token"):
        sembed.SentenceTransformer("builtin", use_auth_token="hf_x")
    with pytest.raises(ValueError, match="Both `token` and `use_auth_token`"), pytest.warns(FutureWarning):
        sembed.SentenceTransformer("builtin", token="a", use_auth_token="b")


# -- names resolve as the CLI resolves them --------------------------------------------------------


def _hf_cache(root, repo_id: str, model_dir, commit: str = "0" * 39 + "1"):
    """A Hugging Face cache holding model_dir as repo_id at `main` (the layout huggingface_hub writes)."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    return repo


def test_hub_id_from_cache_folder_offline(tmp_path):
    _hf_cache(tmp_path, "test-org/tiny-meansqrt", MEANSQRT)
    model = sembed.SentenceTransformer("test-org/tiny-meansqrt", cache_folder=str(tmp_path), local_files_only=True)
    direct = sembed.SentenceTransformer(str(MEANSQRT))
    np.testing.assert_array_equal(model.encode(TEXTS), direct.encode(TEXTS))
    assert model.info["name"] == "test-org/tiny-meansqrt"
    with pytest.raises(OSError):
        sembed.SentenceTransformer("test-org/tiny-meansqrt", cache_folder=str(tmp_path), local_files_only=True, revision="v2")


def test_minilm_names_use_the_builtin_copy_without_the_cache(tmp_path):
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        model = sembed.SentenceTransformer(name, cache_folder=str(tmp_path), local_files_only=True)
        assert "built-in" in model.info["name"]


# -- threads --------------------------------------------------------------------------------------


def test_encode_releases_the_gil(builtin):
    """While one thread is inside encode, another thread runs Python code. With the GIL held, no Python
    code could run between the call's start and its end, so a timestamp taken by the other thread
    in the middle half of the call cannot exist."""
    texts = [f"sentence number {i} about a guitar, a park and a book" for i in range(1500)]
    span = {}
    started = threading.Event()

    def work() -> None:
        started.set()
        span["start"] = time.monotonic()
        builtin.encode(texts)
        span["end"] = time.monotonic()

    worker = threading.Thread(target=work)
    worker.start()
    started.wait()
    seen = []
    while worker.is_alive():
        seen.append(time.monotonic())
        time.sleep(0.005)
    worker.join()
    start, end = span["start"], span["end"]
    middle = [t for t in seen if start + 0.25 * (end - start) < t < start + 0.75 * (end - start)]
    assert middle, f"no Python code ran during the middle of a {end - start:.2f} s encode: the GIL was held"


def test_two_threads_encode_at_once(builtin):
    """Two threads encoding at once each get the vectors they would get alone."""
    texts = [f"sentence number {i} about a guitar and a park" for i in range(300)]
    expected = builtin.encode(texts)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        results[k] = builtin.encode(texts[k::2] if k else texts)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    np.testing.assert_allclose(results[0], expected, atol=1e-6)
    np.testing.assert_allclose(results[1], expected[1::2], atol=1e-6)


def test_threads_argument_caps_the_budget():
    model = sembed.SentenceTransformer("builtin", threads=1)
    assert model._model.threads() == 1
    np.testing.assert_allclose(model.encode(TEXTS), sembed.SentenceTransformer("builtin").encode(TEXTS), atol=1e-6)


def test_no_warnings_on_plain_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sembed.SentenceTransformer("builtin").encode(TEXTS)


def test_ctrl_c_stops_a_long_encode():
    """A long encode goes to the engine in slices with Python's signal handlers run between them, so
    SIGINT ends it within a slice (seconds) instead of after the whole input (minutes here)."""
    import signal
    import subprocess
    import sys

    script = (
        "import signal, sys, sembed\n"
        # A suite started as a background job of a non-interactive shell inherits SIGINT ignored
        # (Python then leaves it so): restore the handler a terminal's Ctrl-C meets.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "m = sembed.SentenceTransformer('builtin')\n"
        "texts = [f'sentence {i} about a guitar, a park, a book and the weather on a long afternoon' for i in range(100000)]\n"
        "print('started', flush=True)\n"
        "m.encode(texts)\n"
        "print('finished', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        # Without the checks the whole input (100,000 texts) would be embedded first: minutes.
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "finished" not in out
    assert "KeyboardInterrupt" in err


def test_long_inputs_in_slices_equal_one_call():
    """Over 2,048 texts the engine is called per slice; the vectors are those of the texts alone."""
    model = sembed.StaticModel.from_pretrained(FIXTURES.parent / "m2v-minilm-256")
    texts = [f"text {i} " + "word " * (i % 37) for i in range(5000)]
    whole = model.encode(texts)
    assert whole.shape == (5000, 256)
    parts = np.concatenate([model.encode(texts[i : i + 700]) for i in range(0, 5000, 700)])
    np.testing.assert_array_equal(whole, parts)
