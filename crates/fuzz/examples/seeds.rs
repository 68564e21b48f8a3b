//! Writes the seed inputs of each target into `fuzz/corpus/<target>/seed-<n>` (what a fuzzer
//! starts from; kept in the committed corpora). `cargo run -p sembed-fuzz --example seeds`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let texts: [&[u8]; 6] = [
        b"A man is playing a guitar.\nA woman slices an onion.\n",
        b"\"a\\nb\"\n{\"text\": \"c\", \"id\": 1}\n\n{\"id\": {\"k\": [1]}, \"text\": \"d\"}\n",
        b"line one\r\n\r\nd\xc3\xa9j\xc3\xa0 \xe6\x9d\xb1\xe4\xba\xac\n\xff bad\n",
        b"{\"text\": 5}\n",
        b"# Title\n\nA paragraph of several words that goes on for a while, longer than a chunk.\n\nword\n",
        b"supercalifragilisticexpialidocious antidisestablishmentarianism\n\n\n   \n\ttab",
    ];
    let mut seeds: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    seeds.push((
        "input",
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| [&[(i as u8) * 37][..], t].concat())
            .collect(),
    ));
    seeds.push((
        "chunker",
        texts.iter().map(|t| [&[8u8, 2][..], t].concat()).collect(),
    ));
    let floats: Vec<u8> = [
        0.5f32,
        -1.0,
        0.0,
        2.0,
        -0.1,
        0.3,
        f32::NAN,
        1e-40,
        3.4e38,
        -0.0,
        1.0,
        7.0,
    ]
    .iter()
    .flat_map(|x| x.to_le_bytes())
    .collect();
    seeds.push((
        "output",
        (0u8..25)
            .map(|ctl| [&[ctl, 3 | (ctl & 3) << 4][..], &floats].concat())
            .collect(),
    ));
    seeds.push((
        "model_files",
        (0..sembed_fuzz::MODEL_FILE_COUNT)
            .map(sembed_fuzz::model_files_seed)
            .collect(),
    ));
    seeds.push(("safetensors", vec![sembed_fuzz::safetensors_seed()]));
    seeds.push(("static_files", sembed_fuzz::static_files_seeds()));
    seeds.push(("index_file", sembed_fuzz::index_file_seeds()));
    seeds.push(("server_request", sembed_fuzz::server_seeds()));
    seeds.push(("hub_response", sembed_fuzz::hub_seeds()));
    for (target, inputs) in seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (i, s) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s)?;
        }
        println!("{target}: {} seeds", inputs.len());
    }
    Ok(())
}
