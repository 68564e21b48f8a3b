//! Builds the built-in model asset from a Hugging Face all-MiniLM-L6-v2 snapshot:
//! matrices (≥ 2-D float tensors) → float16, vectors (biases, LayerNorm) stay float32, non-float
//! tensors (`embeddings.position_ids`) and the unused `pooler.*` are dropped; the small config and tokenizer files are copied.
//!
//! Usage: cargo run --release --no-default-features --example make_builtin -- SRC_DIR DEST_DIR
//! (scripts/make-builtin.sh fetches the snapshot and records checksums).

use std::path::Path;

use half::f16;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

const COPY: &[&str] = &[
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "1_Pooling/config.json",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dest] = args.as_slice() else {
        return Err("usage: make_builtin SRC_DIR DEST_DIR".into());
    };
    let (src, dest) = (Path::new(src), Path::new(dest));
    let bytes = std::fs::read(src.join("model.safetensors"))?;
    let st = SafeTensors::deserialize(&bytes)?;
    let mut out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in st.tensors() {
        if name.starts_with("pooler.") {
            eprintln!("dropping {name} (BertModel's pooler: sentence-transformers never uses it)");
            continue;
        }
        match (t.dtype(), t.shape().len()) {
            (Dtype::F32, 1) => out.push((name, Dtype::F32, t.shape().to_vec(), t.data().to_vec())),
            (Dtype::F32, _) => {
                let data: Vec<u8> = t
                    .data()
                    .chunks_exact(4)
                    .flat_map(|c| {
                        f16::from_f32(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes()
                    })
                    .collect();
                out.push((name, Dtype::F16, t.shape().to_vec(), data));
            }
            (d, _) => eprintln!("dropping {name} ({d:?})"),
        }
    }
    let views: Vec<(String, TensorView<'_>)> = out
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    std::fs::create_dir_all(dest.join("1_Pooling"))?;
    safetensors::serialize_to_file(views, None, &dest.join("model.safetensors"))?;
    for f in COPY {
        std::fs::copy(src.join(f), dest.join(f))?;
    }
    eprintln!("wrote {} tensors to {}", out.len(), dest.display());
    Ok(())
}
