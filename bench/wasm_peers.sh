#!/usr/bin/env bash
# The sembed npm package (WebAssembly) against transformers.js and model2vec-rs's WebAssembly build,
# in Node (issue #18): sets up whatever is missing, then runs bench/wasm_peers.mjs.
#
#   bench/wasm_peers.sh [R] [SYSTEM ...]      (R rounds, default 3; systems: see bench/wasm_peers.mjs)
#
# Idempotent; everything it makes is cached under $WASM_PEERS_CACHE (default
# ~/.cache/sembed/bench/wasm-peers), nothing in the checkout:
#   - the sembed package: $SEMBED_WASM_PKG, default wasm/pkg (built by scripts/build-wasm.sh if absent);
#   - the ONNX export of all-MiniLM-L6-v2: the one bench/peers.sh uses ($ONNX_DIR, default
#     ~/.cache/sembed/bench/peers/minilm-onnx), made the same way (bench/peers/py/export_onnx.py in
#     the sentence-transformers venv $PY, created with pinned versions if missing);
#   - transformers.js's model folder models/all-MiniLM-L6-v2 (config.json, tokenizer*.json,
#     onnx/model.onnx: symlinks into $ONNX_DIR);
#   - npm/node_modules: `npm ci` of bench/wasm-peers/package-lock.json (onnxruntime-node's install
#     step, which fetches CUDA libraries from outside the npm registry, skipped);
#   - m2v-rs-wasm-pkg: bench/wasm-peers/m2v-rs-wasm built for wasm32 as scripts/build-wasm.sh builds
#     sembed (Debian's rustc-web, -Zbuild-std, +simd128) and run through wasm-bindgen 0.2.130;
#   - the native reference, target/release/sembed (cargo build --release -p sembed-cli, if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export WASM_PEERS_CACHE="${WASM_PEERS_CACHE:-$HOME/.cache/sembed/bench/wasm-peers}"
cache="$WASM_PEERS_CACHE"
export PY="${PY:-$HOME/.cache/sembed/bench-venv/bin/python}"
export MODEL_DIR="${MODEL_DIR:-$(scripts/fetch-test-model.sh)}"
export ONNX_DIR="${ONNX_DIR:-$HOME/.cache/sembed/bench/peers/minilm-onnx}"
export SEMBED_WASM_PKG="${SEMBED_WASM_PKG:-$root/wasm/pkg}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p "$cache"
say() { echo "wasm_peers.sh: $*" >&2; }

# The sembed package.
[ -f "$SEMBED_WASM_PKG/index.js" ] || {
  [ "$SEMBED_WASM_PKG" = "$root/wasm/pkg" ] || { say "no sembed package at $SEMBED_WASM_PKG"; exit 1; }
  scripts/build-wasm.sh
}

# The ONNX export (shared with bench/peers.sh), from the sentence-transformers venv.
if [ ! -f "$ONNX_DIR/model.onnx" ]; then
  if [ ! -x "$PY" ]; then
    say "creating the venv $(dirname "$(dirname "$PY")") (torch 2.15, sentence-transformers 6.2: several GB)"
    python3 -m venv "$(dirname "$(dirname "$PY")")"
    "$PY" -m pip install -q --disable-pip-version-check "torch==2.15.0" "sentence-transformers==6.2.0" \
      "transformers==5.24.0" "tokenizers==0.23.3" "numpy==2.4.6"
  fi
  "$PY" -c "import onnxruntime, onnx" 2>/dev/null ||
    "$PY" -m pip install -q --disable-pip-version-check "onnxruntime==1.32.0" "onnx==1.23.2" "ml_dtypes==0.6.0"
  "$PY" bench/peers/py/export_onnx.py
fi

# transformers.js's local model folder (laid out like a hub repository).
tjs_model="$cache/models/all-MiniLM-L6-v2"
mkdir -p "$tjs_model/onnx"
for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json; do
  ln -sfn "$ONNX_DIR/$f" "$tjs_model/$f"
done
ln -sfn "$ONNX_DIR/model.onnx" "$tjs_model/onnx/model.onnx"

# npm packages, at the lock file's versions.
npm_dir="$cache/npm"
if ! cmp -s bench/wasm-peers/package-lock.json "$npm_dir/package-lock.json" || [ ! -d "$npm_dir/node_modules" ]; then
  say "npm ci (transformers.js, onnxruntime-web) into $npm_dir"
  mkdir -p "$npm_dir"
  cp bench/wasm-peers/package.json bench/wasm-peers/package-lock.json "$npm_dir/"
  (cd "$npm_dir" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi

# model2vec-rs for wasm32, rebuilt when its sources change.
m2v_src=bench/wasm-peers/m2v-rs-wasm
m2v_pkg="$cache/m2v-rs-wasm-pkg"
stamp="$(cat "$m2v_src/Cargo.toml" "$m2v_src/Cargo.lock" "$m2v_src/src/lib.rs" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$m2v_pkg/.stamp" 2>/dev/null)" != "$stamp" ]; then
  if [ ! -x /usr/bin/rustc ] || [ ! -x /usr/bin/cargo ] || ! command -v wasm-ld >/dev/null ||
    [ ! -d /usr/lib/rustlib/src/rust/library ]; then
    say "Debian's rustc-web, cargo-web, rust-web-src and lld are missing: scripts/build-wasm.sh installs them"
    exit 1
  fi
  bindgen="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}/wasm-tools/bin/wasm-bindgen" # scripts/build-wasm.sh's
  if ! "$bindgen" --version 2>/dev/null | grep -qx "wasm-bindgen 0.2.130"; then
    bindgen="$cache/tools/bin/wasm-bindgen"
    "$bindgen" --version 2>/dev/null | grep -qx "wasm-bindgen 0.2.130" ||
      cargo install -q wasm-bindgen-cli --version 0.2.130 --root "$cache/tools"
  fi
  say "building model2vec-rs for wasm32 (a few minutes on 2 cores)"
  (cd "$m2v_src" && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS='-C linker=wasm-ld -C target-feature=+simd128 --cfg getrandom_backend="wasm_js"' \
    /usr/bin/cargo build -q --release --locked --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
    --target-dir "$cache/m2v-rs-wasm-target")
  rm -rf "$m2v_pkg"
  "$bindgen" --target web --out-dir "$m2v_pkg" --out-name m2v_rs_wasm \
    "$cache/m2v-rs-wasm-target/wasm32-unknown-unknown/release/m2v_rs_wasm.wasm"
  echo "$stamp" >"$m2v_pkg/.stamp"
fi

# The native reference.
export SEMBED="${SEMBED:-$root/target/release/sembed}"
[ -x "$SEMBED" ] || cargo build --release -p sembed-cli

exec node bench/wasm_peers.mjs "$@"
