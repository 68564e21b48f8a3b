//! model2vec-rs 0.4 baseline: `model2vec-rs-bench MODEL_DIR --text TEXT` (cold start) or
//! `model2vec-rs-bench MODEL_DIR --input FILE [--repeat N]` (prints in-process sentences/s on stderr).
use std::time::Instant;

use model2vec_rs::model::StaticModel;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = StaticModel::from_pretrained(&args[1], None, None, None).expect("load model");
    match args[2].as_str() {
        "--text" => {
            let e = model.encode(&[args[3].clone()]);
            println!("{}", e[0].len());
        }
        "--input" => {
            let texts: Vec<String> = std::fs::read_to_string(&args[3]).unwrap().lines().map(String::from).collect();
            let repeat: usize = args.get(5).map_or(1, |r| r.parse().unwrap());
            let t = Instant::now();
            let mut n = 0;
            for _ in 0..repeat {
                n += model.encode(&texts).len();
            }
            eprintln!("model2vec-rs: {:.0} sent/s in-process", n as f64 / t.elapsed().as_secs_f64());
        }
        other => panic!("unknown mode {other}"),
    }
}
