//! Links the `sembed` executable as a non-PIE binary.
//!
//! A PIE has ~25k relative relocations whose targets fill ~120 pages of `.data.rel.ro`; the loader
//! patches (and so copies) every one of them at each start, ~0.4 ms in this VM, where a page fault
//! costs 2–8 µs. A fixed-address executable has none: measured 3.4 → 3.0 ms for a whole Model2Vec
//! run (hyperfine -N, 100 runs; BENCHMARKS.md). The trade-off: the executable image itself is not
//! address-randomized (shared libraries, heap, stack and mappings still are). The library crate is
//! unaffected.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    // A `+crt-static` build links `-static-pie` unless told otherwise; scripts/build-static.sh
    // passes `-C relocation-model=static` to make it a non-PIE static executable instead.
    if os == "linux" && !features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    // musl (scripts/build-musl.sh): jemalloc, compiled by musl-gcc, calls libgcc's helpers
    // (`__popcountdi2`), and rustc links with `-nodefaultlibs`.
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        println!("cargo:rustc-link-arg-bins=-lgcc");
    }
}
