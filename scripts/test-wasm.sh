#!/usr/bin/env bash
# The npm package's tests (issue #18): builds wasm/pkg and the small wasm/pkg-small
# (scripts/build-wasm.sh installs the toolchain when missing: a missing toolchain fails, never
# skips), then Node's test runner on wasm/tests/: the real all-MiniLM-L6-v2 f32 files, the tiny
# fixtures and the Model2Vec test model in Node, both builds, and the
# demo page (wasm/demo) in headless Chromium (Debian's, installed here when missing; driven by npm
# playwright-core, pinned, cached). The screenshot goes to target/wasm-test-out/demo.png.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "test-wasm.sh: Node.js (>= 20) is needed" >&2; exit 1; }
scripts/build-wasm.sh --small
scripts/build-wasm.sh
chromium="$(command -v chromium || true)"
if [ -z "$chromium" ]; then
  [ "$(id -u)" = 0 ] || { echo "test-wasm.sh: chromium is needed: apt-get install chromium" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  chromium="$(command -v chromium)"
fi
tools="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}/wasm-tools/node"
playwright="$tools/node_modules/playwright-core"
if [ "$(node -p "require('$playwright/package.json').version" 2>/dev/null)" != 1.65.2 ]; then
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --silent playwright-core@1.65.2
fi
SEMBED_WASM_PKG=wasm/pkg SEMBED_WASM_PKG_SMALL=wasm/pkg-small SEMBED_MINILM="$(scripts/fetch-test-model.sh)" \
  SEMBED_CHROMIUM="$chromium" SEMBED_PLAYWRIGHT="$playwright" SEMBED_WASM_OUT=target/wasm-test-out \
  node --test wasm/tests/
# The relaxed-SIMD build (fused multiply-adds): Node 20 runs it behind a V8 flag; the same
# fidelity tests on it (the browser test above already loaded it in Chromium).
if node --v8-options | grep -- --experimental-wasm-relaxed-simd >/dev/null; then
  SEMBED_WASM_PKG=wasm/pkg SEMBED_MINILM="$(scripts/fetch-test-model.sh)" \
    node --experimental-wasm-relaxed-simd --test wasm/tests/node.test.mjs
fi
