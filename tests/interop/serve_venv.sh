#!/usr/bin/env bash
# The Python venv for the `sembed serve` interop tests (tests/interop/serve_clients.py): real, unchanged
# openai, huggingface_hub and ollama clients, numpy, and schemathesis, each pinned exactly. Created once
# at $SEMBED_TEST_MODELS/py-serve (default ~/.cache/sembed/test-models/py-serve) and reused while the
# pins match; prints the venv's python path on stdout (progress goes to stderr).
set -euo pipefail
venv="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}/py-serve"
py="$venv/bin/python"
pins=(openai==3.57.0 huggingface_hub==2.4.0 ollama==0.6.3 numpy==2.4.6 schemathesis==4.32.5)
# The marker: every pinned package imports at exactly its pinned version.
marker='
import sys
from importlib.metadata import version
import openai, huggingface_hub, ollama, numpy, schemathesis
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    assert version(name) == want, (name, version(name), want)
'
if ! "$py" -c "$marker" "${pins[@]}" >/dev/null 2>&1; then
  echo "serve_venv: installing ${pins[*]} into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  [ -x "$py" ] || "$(command -v python3.11 || command -v python3)" -m venv "$venv" >&2
  "$py" -m pip install -q --disable-pip-version-check "${pins[@]}" >&2
  "$py" -c "$marker" "${pins[@]}" >&2
fi
echo "$py"
