//! The built-in model: all-MiniLM-L6-v2 with float16 weights, compiled into the binary (feature
//! `builtin`). Made by `scripts/make-builtin.sh`; provenance, license and checksum in
//! `assets/all-MiniLM-L6-v2/PROVENANCE.md`. The weights are used straight from the executable's
//! read-only data: nothing is decoded at start-up, half-precision rows are converted as they are used.

/// Name under which the built-in model is reported.
pub const NAME: &str = "all-MiniLM-L6-v2 (built-in, float16)";

/// Forces 64-byte alignment on included bytes so tensors can be borrowed as `&[f16]`/`&[f32]`.
#[repr(C, align(64))]
struct Aligned<T: ?Sized>(T);

/// `assets/all-MiniLM-L6-v2/model.safetensors` with its linear weights in the kernels' panel
/// layout (by `build.rs`): the same values, read without packing.
static WEIGHTS: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/builtin-panels.safetensors"
)));

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

/// sha256 of every file, as recorded in PROVENANCE.md (checked against the bytes by a test), so the
/// built-in model's fingerprint costs no hashing.
static SHA256: &[(&str, &str)] = &[
    (
        "model.safetensors",
        "15d44cd288c97ffe46d057ab531fcc8836f7db892e8370b84ab4507670b40c24",
    ),
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "modules.json",
        "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    ),
    (
        "sentence_bert_config.json",
        "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "tokenizer_config.json",
        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    ),
    (
        "1_Pooling/config.json",
        "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    ),
];

/// The recorded sha256 of a file of the built-in model.
pub(crate) fn sha256(rel: &str) -> Option<[u8; 32]> {
    let (_, hex) = SHA256.iter().find(|(name, _)| *name == rel)?;
    hex.parse::<crate::Fingerprint>()
        .ok()
        .map(|f| *f.as_bytes())
}

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

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// The published asset (what the fingerprint names): model.safetensors as in the repository.
    fn asset(rel: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/all-MiniLM-L6-v2");
        std::fs::read(dir.join(rel)).unwrap()
    }

    #[test]
    fn recorded_checksums_match_the_compiled_in_bytes() {
        for (rel, hex) in super::SHA256 {
            let bytes = match *rel {
                "model.safetensors" => asset(rel),
                _ => super::file(rel)
                    .unwrap_or_else(|| panic!("{rel} is not compiled in"))
                    .to_vec(),
            };
            let got = crate::fingerprint::hex(&Sha256::digest(&bytes));
            assert_eq!(&got, hex, "{rel}");
        }
        assert_eq!(
            super::SHA256.len(),
            super::FILES.len() + 1,
            "every file has a checksum"
        );
    }

    /// The compiled-in weights hold the asset's values: every tensor byte for byte, the 36
    /// linear weights as panels (which `packed::pack` of the asset's matrix reproduces).
    #[test]
    fn compiled_in_panels_hold_the_assets_values() {
        use crate::bytes::Bytes;
        use crate::ops::packed::{self, PANEL};
        use crate::weights::{Mat, SafeTensors};
        use std::sync::Arc;
        let open = |b: Bytes| SafeTensors::from_shared(Arc::new(b), "model.safetensors".into());
        let ours = open(Bytes::Static(super::file("model.safetensors").unwrap())).unwrap();
        let theirs = open(Bytes::Owned(asset("model.safetensors").into())).unwrap();
        assert!(ours.has_panels() && !theirs.has_panels());
        let mut linears = 0;
        let names: Vec<String> = theirs.names().map(str::to_string).collect();
        assert_eq!(ours.names().count(), names.len());
        for name in names {
            let (_, shape) = theirs.shape(&name).unwrap();
            let shape = shape.to_vec();
            if shape.len() == 2 && name.contains(".layer.") {
                let (n, k) = (shape[0], shape[1]);
                let Ok(Mat::F16(w)) = theirs.mat(&name, n, k) else {
                    panic!("{name}: f16 expected")
                };
                let mut want = vec![half::f16::ZERO; packed::packed_len(n, k, PANEL)];
                packed::pack(&w, n, k, PANEL, &mut want);
                let got = ours.panels(&name, n, k).unwrap().expect("stored as panels");
                assert_eq!(
                    got.as_bytes(),
                    bytemuck::cast_slice::<_, u8>(&want),
                    "{name}"
                );
                assert_eq!(got.as_bytes().as_ptr() as usize % 64, 0, "{name}: aligned");
                linears += 1;
            } else {
                assert_eq!(
                    ours.tensor_bytes(&name),
                    theirs.tensor_bytes(&name),
                    "{name}"
                );
            }
        }
        assert_eq!(linears, 36);
    }
}
