//! The built-in model: all-MiniLM-L6-v2 with float16 weights, compiled into the binary (feature
//! `builtin`). Made by `scripts/make-builtin.sh`; provenance, license and checksum in
//! `assets/all-MiniLM-L6-v2/PROVENANCE.md`. The weights are used straight from the executable's
//! read-only data: nothing is decoded at start-up, half-precision rows are converted as they are used.

/// Name under which the built-in model is reported.
pub const NAME: &str = "all-MiniLM-L6-v2 (built-in, float16)";

/// Forces 64-byte alignment on included bytes so tensors can be borrowed as `&[f16]`/`&[f32]`.
#[repr(C, align(64))]
struct Aligned<T: ?Sized>(T);

static WEIGHTS: &Aligned<[u8]> = &Aligned(*include_bytes!(
    "../assets/all-MiniLM-L6-v2/model.safetensors"
));

macro_rules! asset {
    ($rel:literal) => {
        (
            $rel,
            include_bytes!(concat!("../assets/all-MiniLM-L6-v2/", $rel)).as_slice(),
        )
    };
}

static FILES: &[(&str, &[u8])] = &[
    asset!("config.json"),
    asset!("modules.json"),
    asset!("sentence_bert_config.json"),
    asset!("tokenizer.json"),
    asset!("tokenizer_config.json"),
    asset!("1_Pooling/config.json"),
];

/// A file of the built-in model by its path relative to the model root.
pub(crate) fn file(rel: &str) -> Option<&'static [u8]> {
    if rel == "model.safetensors" {
        return Some(&WEIGHTS.0);
    }
    FILES
        .iter()
        .find(|(name, _)| *name == rel)
        .map(|(_, bytes)| *bytes)
}
