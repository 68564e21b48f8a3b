#!/usr/bin/env bash
# schemathesis (PyPI) against `sembed serve`'s own /openapi.json: every operation, every check
# (no 5xx, responses match their documented schema and status, schema-valid requests accepted,
# schema-violating ones rejected), a fixed seed so a run is repeatable.
# Usage: serve_schemathesis.sh SEMBED_BIN PYTHON [MAX_EXAMPLES]
set -euo pipefail
bin="$1"; py="$2"; n="${3:-100}"
here="$(cd "$(dirname "$0")" && pwd)"
log="$(mktemp)"
"$bin" serve --port 0 --quiet 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 200); do
  url="$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's/listening on //')" || true
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "sembed serve exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$url" ] || { echo "sembed serve did not start" >&2; cat "$log" >&2; exit 1; }
"$(dirname "$py")/schemathesis" --config-file "$here/schemathesis.toml" run "$url/openapi.json" \
  --checks all --max-examples "$n" --seed 1
