//! Model folders from untrusted files: sentence-transformers folders, their safetensors file,
//! Model2Vec folders.

use sembed::{EmbedOptions, Embedder};

/// The files of the tiny BERT fixture (CLS pooling, Normalize): a whole
/// sentence-transformers folder, small enough to fuzz.
const MODEL_FILES: [(&str, &[u8]); 9] = [
    ("modules.json", data!("fixtures/tiny-bert-cls/modules.json")),
    ("config.json", data!("fixtures/tiny-bert-cls/config.json")),
    (
        "sentence_bert_config.json",
        data!("fixtures/tiny-bert-cls/sentence_bert_config.json"),
    ),
    (
        "config_sentence_transformers.json",
        data!("fixtures/tiny-bert-cls/config_sentence_transformers.json"),
    ),
    (
        "1_Pooling/config.json",
        data!("fixtures/tiny-bert-cls/1_Pooling/config.json"),
    ),
    (
        "2_Normalize/config.json",
        data!("fixtures/tiny-bert-cls/2_Normalize/config.json"),
    ),
    (
        "tokenizer.json",
        data!("fixtures/tiny-bert-cls/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        data!("fixtures/tiny-bert-cls/tokenizer_config.json"),
    ),
    (
        "model.safetensors",
        data!("fixtures/tiny-bert-cls/model.safetensors"),
    ),
];

/// A seed for [`model_files`]: file `index` of the fixture replaced by its own bytes (a valid
/// input the fuzzer mutates from).
pub fn model_files_seed(index: usize) -> Vec<u8> {
    let (_, bytes) = MODEL_FILES[index % MODEL_FILES.len()];
    let mut seed = vec![index as u8];
    seed.extend_from_slice(bytes);
    seed
}

/// How many files [`model_files`] can replace.
pub const MODEL_FILE_COUNT: usize = MODEL_FILES.len();

/// The `data[0]` that makes [`model_files`] replace the file `name`, if the fixture has it.
pub fn model_file_index(name: &str) -> Option<u8> {
    MODEL_FILES
        .iter()
        .position(|&(n, _)| n == name)
        .map(|i| i as u8)
}

/// Model loading from untrusted files: the fixture's folder with one file (`data[0]` picks which:
/// configs, tokenizer.json, the safetensors header and tensors) replaced by `data[1..]`, loaded
/// from memory; a model that loads must embed texts into one vector each, of its dimension.
/// Errors are fine; a panic, an abort or a wrong shape is a finding. Returns whether the model
/// loaded and embedded (the tests check that the unmodified seeds do).
pub fn model_files(data: &[u8]) -> bool {
    let Some((&pick, content)) = data.split_first() else {
        return false;
    };
    let replaced = pick as usize % MODEL_FILES.len();
    let files = MODEL_FILES
        .iter()
        .enumerate()
        .map(|(i, &(name, bytes))| (name, if i == replaced { content } else { bytes }.to_vec()));
    load_and_embed(files)
}

/// The fixture's files, as [`Embedder::from_files`] takes them.
pub(crate) fn fixture_files() -> impl Iterator<Item = (&'static str, Vec<u8>)> {
    MODEL_FILES.iter().map(|&(n, b)| (n, b.to_vec()))
}

/// Loads `files` on one thread and embeds three texts (one empty); a model that loads must give
/// one vector per text, of its dimension. Whether it loaded and embedded.
fn load_and_embed<K: Into<String>>(files: impl IntoIterator<Item = (K, Vec<u8>)>) -> bool {
    let Ok(model) = Embedder::from_files(files, &crate::one_thread()) else {
        return false;
    };
    let texts = ["A man is playing a guitar.", "", "déjà vu 東京 🙂"];
    let Ok(e) = model.embed(&texts, &EmbedOptions::default()) else {
        return false;
    };
    assert_eq!(e.len(), texts.len(), "one vector per text");
    assert_eq!(e.dim(), model.dim(), "vectors of the model's dimension");
    assert_eq!(e.as_slice().len(), texts.len() * model.dim());
    true
}

/// The fixture's safetensors file split in its header JSON and its tensor bytes.
fn fixture_safetensors() -> (&'static [u8], &'static [u8]) {
    let file = MODEL_FILES[MODEL_FILES.len() - 1].1;
    let n = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    (&file[8..8 + n], &file[8 + n..])
}

/// A seed for [`safetensors`]: the fixture's own header.
pub fn safetensors_seed() -> Vec<u8> {
    fixture_safetensors().0.to_vec()
}

/// The safetensors reader and the tensor-table checks: the fixture folder with `model.safetensors`
/// made of the input as its header JSON (names, dtypes, shapes, offsets) followed by the fixture's
/// own tensor bytes, so offsets can point at real data. Whole-file mutations (the length prefix,
/// truncation) are `model_files`' part. Whether the model loaded and embedded.
pub fn safetensors(data: &[u8]) -> bool {
    let (_, tensors) = fixture_safetensors();
    let mut file = (data.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(data);
    file.extend_from_slice(tensors);
    let files = MODEL_FILES.iter().map(|&(name, bytes)| {
        let b = if name == "model.safetensors" {
            file.clone()
        } else {
            bytes.to_vec()
        };
        (name, b)
    });
    load_and_embed(files)
}

/// A tiny Model2Vec folder (the BERT fixture's 1,000-token vocabulary, 8 dimensions, f32), made
/// in memory: modules.json, config.json, tokenizer.json, model.safetensors.
fn static_folder() -> [(&'static str, Vec<u8>); 4] {
    const VOCAB: usize = 1000;
    const DIM: usize = 8;
    let header = format!(
        r#"{{"embeddings":{{"dtype":"F32","shape":[{VOCAB},{DIM}],"data_offsets":[0,{}]}}}}"#,
        VOCAB * DIM * 4
    );
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(&header);
    for i in 0..VOCAB * DIM {
        // Deterministic, varied, some negative.
        let x = ((i * 7919 % 2003) as f32 - 1001.0) / 1001.0;
        st.extend_from_slice(&x.to_le_bytes());
    }
    let config = br#"{"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": 8, "normalize": true, "pooling": "mean", "max_length": 512}"#;
    [
        (
            "modules.json",
            data!("m2v-minilm-256/modules.json").to_vec(),
        ),
        ("config.json", config.to_vec()),
        (
            "tokenizer.json",
            data!("fixtures/tiny-bert-cls/tokenizer.json").to_vec(),
        ),
        ("model.safetensors", st),
    ]
}

/// Seeds for [`static_files`]: each file of the tiny Model2Vec folder as it is.
pub fn static_files_seeds() -> Vec<Vec<u8>> {
    static_folder()
        .into_iter()
        .enumerate()
        .map(|(i, (_, bytes))| [vec![i as u8], bytes].concat())
        .collect()
}

/// Model2Vec loading from untrusted files: the tiny static folder with one file (`data[0]` picks
/// which) replaced by `data[1..]`. Whether the model loaded and embedded.
pub fn static_files(data: &[u8]) -> bool {
    let Some((&pick, content)) = data.split_first() else {
        return false;
    };
    let mut files = static_folder();
    let replaced = pick as usize % files.len();
    files[replaced].1 = content.to_vec();
    load_and_embed(files)
}
