#!/usr/bin/env bash
# The npm package's tests (issue #18): builds wasm/pkg (scripts/build-wasm.sh installs the
# toolchain when missing: a missing toolchain fails, never skips), then Node's test runner on
# wasm/tests/ with the real all-MiniLM-L6-v2 f32 files.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "test-wasm.sh: Node.js (>= 20) is needed" >&2; exit 1; }
scripts/build-wasm.sh
SEMBED_WASM_PKG=wasm/pkg SEMBED_MINILM="$(scripts/fetch-test-model.sh)" node --test wasm/tests/
