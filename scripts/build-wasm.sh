#!/usr/bin/env bash
# Builds the npm package `sembed` (WebAssembly, issue #18) into wasm/pkg/: the sembed-wasm crate
# for wasm32-unknown-unknown, wasm-bindgen's ES module, and the package's own files (wasm/js/).
# Prints the .wasm's size, raw and gzipped.
#
#   scripts/build-wasm.sh            # wasm/pkg: every tokenizer kind, in two builds: simd128,
#                                    # and simd128 + relaxed SIMD (FMA), which index.js picks
#                                    # where the engine validates it
#   scripts/build-wasm.sh --small    # wasm/pkg-small: without the `tokenizers` crate (Model2Vec
#                                    # and BERT WordPiece models; others are a load error);
#                                    # simd128 only
#
# The toolchain, installed here when missing (and cached): no rustup target is needed — Debian's
# rustc-web (rustc/cargo 1.96 in /usr/bin) builds std from rust-web-src (-Zbuild-std) and lld's
# wasm-ld links; wasm-bindgen-cli is pinned to the wasm-bindgen crate's version. The product itself
# stays on the rustup toolchain: Debian's rustc and cargo are called by full path, for this build
# only.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") out=wasm/pkg features=() ;;
  --small) out=wasm/pkg-small features=(--no-default-features) ;;
  *) echo "usage: scripts/build-wasm.sh [--small]" >&2; exit 2 ;;
esac
WASM_BINDGEN_VERSION=0.2.130 # = the `wasm-bindgen` crate's version in crates/wasm/Cargo.toml
tools="${SEMBED_TEST_MODELS:-$HOME/.cache/sembed/test-models}/wasm-tools"

if [ ! -x /usr/bin/rustc ] || [ ! -x /usr/bin/cargo ] || ! command -v wasm-ld >/dev/null ||
  [ ! -d /usr/lib/rustlib/src/rust/library ]; then
  [ "$(id -u)" = 0 ] || { echo "build-wasm.sh: needs Debian's rustc-web cargo-web rust-web-src lld (apt-get install as root)" >&2; exit 1; }
  echo "build-wasm.sh: installing rustc-web cargo-web rust-web-src lld (Debian)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld >/dev/null
fi
bindgen="$tools/bin/wasm-bindgen"
if ! "$bindgen" --version 2>/dev/null | grep -qx "wasm-bindgen $WASM_BINDGEN_VERSION"; then
  echo "build-wasm.sh: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION into $tools" >&2
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$tools"
fi

# One build of sembed-wasm for the target features $1 (comma-separated), in its own target folder
# (another RUSTFLAGS would rebuild std each time), through wasm-bindgen into the folder $2.
build() {
  local dir="target/wasm${1//[^a-z0-9]/-}"
  # getrandom (through the tokenizers crate) needs its JavaScript backend named in wasm32.
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-C linker=wasm-ld -C target-feature=$1 --cfg getrandom_backend=\"wasm_js\"" \
    /usr/bin/cargo build --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort \
    -p sembed-wasm --target-dir "$dir" ${features[@]+"${features[@]}"}
  rm -rf "$2"
  "$bindgen" --target web --out-dir "$2" --out-name sembed_wasm \
    "$dir/wasm32-unknown-unknown/release/sembed_wasm.wasm"
}
size() { echo "$(stat -c %s "$1") bytes of wasm, $(gzip -9 -c "$1" | wc -c) gzipped"; }

build +simd128 "$out"
cp wasm/js/index.d.ts wasm/js/package.json "$out/"
if [ "$out" = wasm/pkg ]; then
  build +simd128,+relaxed-simd "$out.relaxed"
  # One JavaScript glue serves both modules (index.js instantiates either with it).
  cmp -s "$out/sembed_wasm.js" "$out.relaxed/sembed_wasm.js" ||
    { echo "build-wasm.sh: the two builds' wasm-bindgen glue differs" >&2; exit 1; }
  mv "$out.relaxed/sembed_wasm_bg.wasm" "$out/sembed_wasm_relaxed_bg.wasm"
  rm -rf "$out.relaxed"
  sed 's|^const RELAXED_BUILD = false;.*|const RELAXED_BUILD = true;|' wasm/js/index.js >"$out/index.js"
  grep -q '^const RELAXED_BUILD = true;' "$out/index.js"
  echo "build-wasm.sh: $out: $(size "$out/sembed_wasm_bg.wasm"); relaxed SIMD build $(size "$out/sembed_wasm_relaxed_bg.wasm")" >&2
else
  cp wasm/js/index.js "$out/"
  echo "build-wasm.sh: $out: $(size "$out/sembed_wasm_bg.wasm")" >&2
fi
