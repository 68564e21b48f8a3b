#!/usr/bin/env bash
# sembed side by side with every peer on this host, in one run (issue #17): sentence-transformers,
# Python onnxruntime, Python model2vec, candle, the ort crate, fastembed-rs and model2vec-rs, from the
# harness in bench/peers (copied from the project's ../shared/peers; its README says what each part does).
#
#   bench/peers.sh [ROUNDS_ONE] [ROUNDS_STSB]      (defaults 9 and 5)
#
# Sets up what is missing, with no Hugging Face hub: the Python packages (pinned, from PyPI) in the
# sentence-transformers venv, the ONNX export of the test model, the four Rust peers (their lock files),
# sembed's release build. Then the cold-start and STS-B rounds (bench/peers/bench.py: interleaved, medians),
# and the ratios (bench/peers_ratios.py). Static models: sembed's own distilled test model
# (tests/data/m2v-minilm-256) for all three (sembed, model2vec-rs, Python model2vec).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
rounds_one="${1:-9}"
rounds_stsb="${2:-5}"

export PY="${PY:-$HOME/.cache/sembed/bench-venv/bin/python}"
export MODEL_DIR="${MODEL_DIR:-$(scripts/fetch-test-model.sh)}"
export ONNX_DIR="${ONNX_DIR:-$HOME/.cache/sembed/bench/peers/minilm-onnx}"
export M2V_DIR="${M2V_DIR:-$root/tests/data/m2v-minilm-256}"
export STSB_TSV="${STSB_TSV:-$root/tests/data/stsb-test.tsv}"
export REF_NPY="${REF_NPY:-$root/tests/data/minilm-stsb.npy}"
export PEERS_OUT="${PEERS_OUT:-$HOME/.cache/sembed/bench/peers/out}"
export SEMBED="$root/target/release/sembed"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAYON_NUM_THREADS=2 EMBED_THREADS=2
mkdir -p "$PEERS_OUT"

[ -x "$PY" ] || { echo "peers.sh: no Python at $PY (PY=…: a venv with torch 2.15 and sentence-transformers 6.2)" >&2; exit 2; }
"$PY" -c "import onnxruntime, onnx, model2vec, scipy" 2>/dev/null ||
  "$PY" -m pip install -q --disable-pip-version-check "onnxruntime==1.32.0" "onnx==1.23.2" "ml_dtypes==0.6.0" \
    "model2vec==0.10.0" scipy
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$("$PY" -c 'import glob, os, onnxruntime; print(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*"))[0])')}"
[ -f "$ONNX_DIR/model.onnx" ] || "$PY" bench/peers/py/export_onnx.py
for p in candle-embed ort-embed fastembed-embed m2v-rs; do
  [ -x "bench/peers/$p/target/release/$p" ] || (cd "bench/peers/$p" && cargo build --release --locked)
done
cargo build --release -p sembed-cli

echo "host: $(lscpu | sed -n 's/^Model name: *//p') — $(nproc) CPUs; $(lscpu | grep -o 'avx512[a-z_]*' | sort -u | tr '\n' ' ')"
# sembed-*-avx512: the same runs without AMX tiles (SEMBED_CPU=avx512), for hosts that have them.
systems_one="true sembed-bi sembed-dir sembed-bi-avx512 sembed-dir-avx512 sembed-static candle ort-rs fastembed ort-py m2v-rs m2v-py st"
systems_stsb="sembed-bi sembed-dir sembed-bi-avx512 sembed-dir-avx512 sembed-static candle ort-rs fastembed ort-py m2v-rs m2v-py st"
# shellcheck disable=SC2086
python3 bench/peers/bench.py one "$rounds_one" $systems_one
# shellcheck disable=SC2086
python3 bench/peers/bench.py stsb "$rounds_stsb" $systems_stsb
# Cold start again, each system in its own hyperfine block after warm-up runs: in the interleaved
# rounds above a Python peer's imports (GBs of libraries) can push the others' files out of the page
# cache when the machine's memory cgroup is small (4.6 GB on the host of BENCHMARKS.md), so a
# "cold start" there partly measures disk reads. Here every system runs with its files cached.
one="A man is playing a guitar."
B="$root/bench/peers"
hyperfine -N --warmup 5 --runs "$((rounds_one * 5))" --export-json "$PEERS_OUT/hyperfine_cold_native.json" \
  -n true "/bin/true" \
  -n sembed-bi "$SEMBED embed -q '$one'" \
  -n sembed-dir "$SEMBED embed -q -m $MODEL_DIR '$one'" \
  -n sembed-bi-avx512 "env SEMBED_CPU=avx512 $SEMBED embed -q '$one'" \
  -n sembed-dir-avx512 "env SEMBED_CPU=avx512 $SEMBED embed -q -m $MODEL_DIR '$one'" \
  -n sembed-static "$SEMBED embed -q -m $M2V_DIR '$one'" \
  -n candle "$B/candle-embed/target/release/candle-embed $MODEL_DIR one" \
  -n ort-rs "$B/ort-embed/target/release/ort-embed $ONNX_DIR one" \
  -n fastembed "$B/fastembed-embed/target/release/fastembed-embed $ONNX_DIR one" \
  -n m2v-rs "$B/m2v-rs/target/release/m2v-rs $M2V_DIR one" >/dev/null
hyperfine -N --warmup 1 --runs "$rounds_stsb" --export-json "$PEERS_OUT/hyperfine_cold_python.json" \
  -n ort-py "$PY $B/py/ort_embed.py one" -n m2v-py "$PY $B/py/m2v_embed.py one" \
  -n st "$PY $B/py/st_embed.py one" >/dev/null
python3 bench/peers_ratios.py "$PEERS_OUT"
