#!/usr/bin/env bash
# Builds the fully static distribution binary (glibc static, no musl target needed) and checks it:
# no dynamic dependencies, and it embeds text. Prints its size. Usage: scripts/build-static.sh [cargo args]
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
# relocation-model=static: a fixed-address executable, no start-up relocations (see build.rs).
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" cargo build -p sembed-cli --profile dist --target "$target" "$@"
bin="${CARGO_TARGET_DIR:-target}/$target/dist/sembed"
# A static binary has no NEEDED entries (no shared libraries to load, not even libc).
if readelf -d "$bin" | grep -q NEEDED; then
  echo "error: $bin needs shared libraries:" >&2; readelf -d "$bin" | grep NEEDED >&2; exit 1
fi
ldd "$bin" 2>&1 | sed 's/^/ldd: /' || true
"$bin" --version
echo "size: $(stat -c %s "$bin") bytes ($bin)"
