//! Compiles the built-in model with its linear weights already in the kernels' panel layout, so
//! loading it packs nothing (`src/weights/panels_file.rs`; the asset itself stays as published).

#[path = "src/weights/panels_file.rs"]
#[allow(dead_code)]
mod panels_file;

use std::path::PathBuf;

fn main() {
    let asset = "assets/all-MiniLM-L6-v2/model.safetensors";
    println!("cargo::rerun-if-changed={asset}");
    println!("cargo::rerun-if-changed=src/weights/panels_file.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin-panels.safetensors");
    if std::env::var_os("CARGO_FEATURE_BUILTIN").is_none() {
        return;
    }
    let src = std::fs::read(asset).unwrap_or_else(|e| panic!("reading {asset}: {e}"));
    let mut bytes = Vec::with_capacity(src.len() + 4096);
    panels_file::write_panels(&src, &panels_file::is_encoder_linear, &[], &mut bytes)
        .unwrap_or_else(|e| panic!("rewriting {asset}: {e}"));
    // Only rewrite when changed, so the crate is not rebuilt needlessly.
    if std::fs::read(&out).ok().as_deref() != Some(bytes.as_slice()) {
        std::fs::write(&out, &bytes).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    }
}
