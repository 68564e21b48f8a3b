"""Interop: the real, unchanged Python clients of three embedding APIs against `sembed serve`.

Usage: python serve_clients.py SEMBED_BIN MODEL_DIR REFERENCE_JSONL   (python from tests/interop/serve_venv.sh)

Starts `SEMBED_BIN serve --model MODEL_DIR --port 0 --quiet`, waits for the stderr line
`listening on http://HOST:PORT`, then checks that
  - openai's `OpenAI(base_url=URL/v1).embeddings.create` (default base64, explicit base64 and float,
    a single string, `dimensions=128`, a 40-text batch) gives the reference vectors, with sane usage,
    indices, object tags and model;
  - huggingface_hub's `InferenceClient(base_url=URL)` (TEI's `POST /`) `.feature_extraction` (string,
    list, 40-text batch) gives the reference vectors and `.sentence_similarity` their cosines;
  - ollama's `Client(host=URL).embed` (list, single string, 40-text batch) gives the reference vectors;
  - the server exits 0 within 10 s of SIGTERM.
REFERENCE_JSONL (tests/data/minilm-dev.jsonl) holds sentence-transformers all-MiniLM-L6-v2 normalized
vectors; texts that are empty or were truncated (>= 256 tokens) are not used. Every check runs; the last
line is `N passed, M failed`, and the exit code is 0 only when nothing failed.
"""
import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# The clients must talk to the loopback server as they would to any other: no proxy, no Hugging Face
# token or offline mode (HF_HUB_OFFLINE blocks every request of huggingface_hub, loopback included), no
# ollama API key. huggingface_hub reads these when imported, so scrub them first.
for _k in list(os.environ):
    if _k.startswith(("HF_", "HUGGING_FACE_")) or _k in ("TRANSFORMERS_OFFLINE", "OLLAMA_API_KEY", "OLLAMA_HOST"):
        del os.environ[_k]
_hf_home = tempfile.TemporaryDirectory(prefix="sembed-serve-clients-")
os.environ["HF_HOME"] = _hf_home.name
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

import numpy as np  # noqa: E402
import ollama  # noqa: E402
import openai  # noqa: E402
from huggingface_hub import InferenceClient  # noqa: E402

DIM = 384  # all-MiniLM-L6-v2
MIN_COS = 0.99999
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
CLIENT_TIMEOUT = 60.0
READY = re.compile(r"listening on (http://\S+)")


class Server:
    """`sembed serve` as a subprocess whose stderr is read (and kept) by a thread."""

    def __init__(self, argv):
        self.argv = argv
        self.lines = []  # every stderr line seen
        self._queue = queue.Queue()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=subprocess.PIPE)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        # Keeps reading after startup too, so a chatty server never blocks on a full pipe.
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def stderr_seen(self):
        return "\n".join(f"  | {line}" for line in self.lines[-60:]) or "  (no stderr)"

    def wait_ready(self):
        """Returns the base URL from the `listening on http://HOST:PORT` line."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no `listening on http://HOST:PORT` line on stderr within {START_TIMEOUT:.0f} s:\n"
                                     + self.stderr_seen())
            try:
                line = self._queue.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                try:
                    code = self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = "still running, stderr closed"
                raise AssertionError(f"`{' '.join(self.argv)}` ended before listening (exit {code}); stderr:\n"
                                     + self.stderr_seen())
            m = READY.fullmatch(line)
            if m:
                url = m.group(1).rstrip("/")
                # A wildcard bind address is not one to connect to.
                return url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Refs:
    def __init__(self, path):
        rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
        self.vec = {r["text"]: np.asarray(r["embedding"], dtype=np.float64) for r in rows}
        usable = [r["text"] for r in rows if r["text"] and len(r["input_ids"]) < 256]
        usable = list(dict.fromkeys(usable))
        assert len(usable) >= 12, f"only {len(usable)} usable reference texts in {path}"
        for t in usable:
            assert self.vec[t].shape == (DIM,), (t, self.vec[t].shape)
        self.few = usable[::4][:6]  # a handful of varied texts (ASCII, accents, CJK, emoji, ...)
        self.batch40 = (usable * (40 // len(usable) + 1))[:40]  # repeats are fine: it exercises batching

    def want(self, text, dims=None):
        v = self.vec[text]
        if dims is not None:
            v = v[:dims]
            v = v / np.linalg.norm(v)
        return v


def assert_vectors(refs, got, texts, dims=None):
    """got[i] equals the reference vector of texts[i] (optionally cut to dims and renormalized)."""
    got = list(got)
    assert len(got) == len(texts), f"{len(got)} vectors for {len(texts)} texts"
    worst, worst_text = 1.0, None
    for text, v in zip(texts, got):
        want = refs.want(text, dims)
        v = np.asarray(v, dtype=np.float64)
        assert v.shape == want.shape, f"{text!r}: shape {v.shape}, want {want.shape}"
        assert np.all(np.isfinite(v)), f"{text!r}: non-finite values"
        norm = float(np.linalg.norm(v))
        assert abs(norm - 1.0) < 1e-3, f"{text!r}: norm {norm}, want 1 (normalized)"
        cos = float(v @ want / norm / np.linalg.norm(want))
        if cos < worst:
            worst, worst_text = cos, text
    assert worst >= MIN_COS, f"min cosine {worst:.7f} < {MIN_COS} (text {worst_text!r})"


# ---- openai -------------------------------------------------------------------------------------

def assert_openai_response(r, n):
    assert r.object == "list", f"object {r.object!r}, want 'list'"
    assert isinstance(r.model, str), f"model {r.model!r} is not a string"
    assert len(r.data) == n, f"{len(r.data)} data items for {n} inputs"
    for i, d in enumerate(r.data):
        assert d.index == i, f"data[{i}].index == {d.index!r}"
        assert d.object == "embedding", f"data[{i}].object {d.object!r}, want 'embedding'"
    u = r.usage
    assert u is not None, "no usage"
    assert isinstance(u.prompt_tokens, int) and u.prompt_tokens > 0, f"usage.prompt_tokens {u.prompt_tokens!r}"
    assert u.total_tokens == u.prompt_tokens, f"usage.total_tokens {u.total_tokens!r} != prompt_tokens {u.prompt_tokens!r}"


def float_lists(r):
    for i, d in enumerate(r.data):
        assert isinstance(d.embedding, list) and all(isinstance(x, float) for x in d.embedding), \
            f"data[{i}].embedding is not a list of floats: {str(d.embedding)[:80]}"
    return [d.embedding for d in r.data]


def openai_checks(url, refs):
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=CLIENT_TIMEOUT)

    def create(**kw):
        return client.embeddings.create(model="anything", **kw)

    def default_format():
        # The client asks for base64 unless told otherwise, and decodes it to floats itself.
        r = create(input=refs.few)
        assert_openai_response(r, len(refs.few))
        assert_vectors(refs, float_lists(r), refs.few)

    def base64_format():
        # Asked for explicitly, base64 comes back as the string: little-endian float32s.
        r = create(input=refs.few, encoding_format="base64")
        assert_openai_response(r, len(refs.few))
        vecs = []
        for i, d in enumerate(r.data):
            assert isinstance(d.embedding, str), f"data[{i}].embedding is {type(d.embedding).__name__}, want a base64 string"
            raw = base64.b64decode(d.embedding, validate=True)
            assert len(raw) == 4 * DIM, f"data[{i}]: {len(raw)} bytes of base64, want {4 * DIM}"
            vecs.append(np.frombuffer(raw, dtype="<f4"))
        assert_vectors(refs, vecs, refs.few)

    def float_format():
        r = create(input=refs.few, encoding_format="float")
        assert_openai_response(r, len(refs.few))
        assert_vectors(refs, float_lists(r), refs.few)

    def single_string():
        r = create(input=refs.few[1])
        assert_openai_response(r, 1)
        assert_vectors(refs, float_lists(r), refs.few[1:2])

    def dimensions_128():
        for fmt in ("float", None):
            r = create(input=refs.few, dimensions=128, **({"encoding_format": fmt} if fmt else {}))
            assert_openai_response(r, len(refs.few))
            vecs = float_lists(r)
            assert all(len(v) == 128 for v in vecs), f"lengths {sorted({len(v) for v in vecs})}, want 128"
            assert_vectors(refs, vecs, refs.few, dims=128)

    def batch_40():
        r = create(input=refs.batch40)
        assert_openai_response(r, 40)
        assert_vectors(refs, float_lists(r), refs.batch40)

    return [("openai default encoding (base64, decoded by the client)", default_format),
            ("openai encoding_format=base64", base64_format),
            ("openai encoding_format=float", float_format),
            ("openai single string input", single_string),
            ("openai dimensions=128", dimensions_128),
            ("openai 40-text batch", batch_40)]


# ---- huggingface_hub (TEI) ----------------------------------------------------------------------

def hf_checks(url, refs):
    client = InferenceClient(base_url=url, timeout=CLIENT_TIMEOUT)

    def check_array(arr, texts):
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float32, f"{type(arr).__name__} {getattr(arr, 'dtype', '')}"
        assert arr.shape == (len(texts), DIM), f"shape {arr.shape}, want {(len(texts), DIM)}"
        assert_vectors(refs, arr, texts)

    def one_string():
        # TEI answers a single string with a batch of one: [[...]].
        check_array(client.feature_extraction(refs.few[2]), refs.few[2:3])

    def a_list():
        check_array(client.feature_extraction(refs.few), refs.few)

    def batch_40():
        check_array(client.feature_extraction(refs.batch40), refs.batch40)

    def similarity():
        source, others = refs.few[0], refs.few[1:] + [refs.few[0]]
        got = client.sentence_similarity(source, other_sentences=others)
        assert isinstance(got, list) and len(got) == len(others), f"got {str(got)[:200]}"
        assert all(isinstance(x, float) for x in got), f"not all floats: {got}"
        s = refs.want(source)
        want = [float(s @ refs.want(t)) for t in others]
        diff = max(abs(a - b) for a, b in zip(got, want))
        assert diff <= 1e-4, f"max |similarity - reference| {diff:.2e} > 1e-4: got {got}, want {want}"

    return [("huggingface_hub feature_extraction(str)", one_string),
            ("huggingface_hub feature_extraction(list)", a_list),
            ("huggingface_hub feature_extraction 40-text batch", batch_40),
            ("huggingface_hub sentence_similarity", similarity)]


# ---- ollama -------------------------------------------------------------------------------------

def ollama_checks(url, refs):
    client = ollama.Client(host=url, timeout=CLIENT_TIMEOUT)

    def embed(texts, inp):
        r = client.embed(model="anything", input=inp)
        assert_vectors(refs, r.embeddings, texts)

    return [("ollama embed(list)", lambda: embed(refs.few, refs.few)),
            ("ollama embed(str)", lambda: embed(refs.few[3:4], refs.few[3])),
            ("ollama embed 40-text batch", lambda: embed(refs.batch40, refs.batch40))]


# ---- runner -------------------------------------------------------------------------------------

def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sembed, model_dir, reference = sys.argv[1:4]
    refs = Refs(reference)
    passed = failed = 0

    def run(name, fn):
        nonlocal passed, failed
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
            failed += 1
            if isinstance(e, AssertionError):
                detail = str(e)
            else:  # a client error or a bug: the whole story
                detail = "".join(traceback.format_exception(e)).rstrip()
            print(f"FAIL {name}: " + detail.replace("\n", "\n    "), flush=True)
            return False
        passed += 1
        print(f"ok {name}", flush=True)
        return True

    server = url = None
    try:
        def start():
            nonlocal server, url
            server = Server([sembed, "serve", "--model", model_dir, "--port", "0", "--quiet"])
            url = server.wait_ready()

        if run("server starts and prints `listening on http://HOST:PORT`", start):
            print(f"# base URL {url}", file=sys.stderr)
            for name, fn in openai_checks(url, refs) + hf_checks(url, refs) + ollama_checks(url, refs):
                run(name, fn)

            def sigterm():
                code = server.proc.poll()
                assert code is None, f"the server had already exited (code {code}) before SIGTERM"
                server.proc.send_signal(signal.SIGTERM)
                try:
                    code = server.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"still running {STOP_TIMEOUT:.0f} s after SIGTERM") from None
                assert code == 0, f"exit code {code} after SIGTERM, want 0"

            run("server exits 0 within 10 s of SIGTERM", sigterm)
    finally:
        if server is not None:
            server.kill()
    if failed and server is not None:
        print("server stderr:\n" + server.stderr_seen(), flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
