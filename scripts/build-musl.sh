#!/usr/bin/env bash
# Builds a fully static sembed for x86_64-unknown-linux-musl (issue #18, item 4) and checks it: no
# dynamic dependencies, and it embeds text. Prints its size. Usage: scripts/build-musl.sh [cargo args]
#
# No rustup target is needed: Debian's rustc-web (rustc/cargo 1.96 in /usr/bin) builds std for musl
# from rust-web-src (-Zbuild-std), musl-tools' musl-gcc compiles the C parts (SQLite, ring, oniguruma)
# and links. std's `unwind` crate asks the linker for `-lunwind`, and Debian ships no libunwind built
# for musl (LLVM's libunwind.a there is built against glibc's fortified functions): the binary gets
# its `_Unwind_*` functions from the `unwinding` crate (pure Rust; see crates/cli/Cargo.toml), and an
# empty libunwind.a satisfies the linker's `-lunwind`; jemalloc replaces musl's allocator, which
# unmapped every large buffer on free (1.4x slower). The glibc static binary (build-static.sh)
# remains the one the Dockerfile uses; this one is for systems without glibc (Alpine and the like).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
if [ ! -x /usr/bin/rustc ] || [ ! -x /usr/bin/cargo ] || ! command -v musl-gcc >/dev/null ||
  [ ! -d /usr/lib/rustlib/src/rust/library ]; then
  [ "$(id -u)" = 0 ] || { echo "build-musl.sh: needs Debian's rustc-web cargo-web rust-web-src musl-tools (apt-get install as root)" >&2; exit 1; }
  echo "build-musl.sh: installing rustc-web cargo-web rust-web-src musl-tools (Debian)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src musl-tools >/dev/null
fi
dir="${CARGO_TARGET_DIR:-target}/musl"
mkdir -p "$dir/empty-libunwind"
[ -f "$dir/empty-libunwind/libunwind.a" ] || ar rcs "$dir/empty-libunwind/libunwind.a"
# Debian's rustc and cargo by full path, for this build only (the product stays on rustup's).
# relocation-model=static: a fixed-address executable, as build-static.sh makes (see build.rs).
CC_x86_64_unknown_linux_musl=musl-gcc RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="-C linker=musl-gcc -C link-self-contained=no -C target-feature=+crt-static -C relocation-model=static -L $PWD/$dir/empty-libunwind" \
  /usr/bin/cargo build --profile dist --target "$target" -Zbuild-std=std,panic_abort -p sembed-cli \
  --target-dir "$dir" "$@"
bin="$dir/$target/dist/sembed"
if readelf -d "$bin" | grep -q NEEDED; then
  echo "error: $bin needs shared libraries:" >&2; readelf -d "$bin" | grep NEEDED >&2; exit 1
fi
"$bin" --version
# It runs: the built-in model on one sentence.
"$bin" embed -q "A man is playing a guitar." >/dev/null
echo "size: $(stat -c %s "$bin") bytes ($bin)"
