//! In-process latency and throughput (`cargo bench --bench latency`): warm single-sentence latency and
//! STS-B throughput for the built-in model and, when fetched, the f32 model directory.
//! Whole-process numbers (cold start, baselines) come from bench/bench.py.

use std::time::Instant;

use sembed::{Cpu, EmbedOptions, Embedder, LoadOptions};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn stsb() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/stsb-test.tsv"
    ))
    .unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    rows.iter()
        .map(|r| r[5].to_string())
        .chain(rows.iter().map(|r| r[6].to_string()))
        .collect()
}

fn run(name: &str, model: &Embedder, sentences: &[String]) {
    let one = ["A man is playing a guitar."];
    for threads in [1, 2] {
        let opts = EmbedOptions {
            threads,
            ..Default::default()
        };
        // Past the point where a reused model copies its f32 layers into huge pages (64 runs).
        for _ in 0..100 {
            model.embed(&one, &opts).unwrap();
        }
        let times: Vec<f64> = (0..200)
            .map(|_| {
                let t = Instant::now();
                model.embed(&one, &opts).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!(
            "{name}: warm latency, 1 sentence, {threads} thread(s): median {:.3} ms",
            median(times)
        );
    }
    let opts = EmbedOptions {
        threads: 2,
        ..Default::default()
    };
    let tokens: usize = sentences
        .iter()
        .map(|s| model.token_ids(s, &opts).unwrap().len())
        .sum();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        model.embed(sentences, &opts).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{name}: STS-B {} sentences / {tokens} tokens, 2 threads: best of 3 {best:.3} s = {:.0} sent/s, {:.0} tokens/s",
        sentences.len(),
        sentences.len() as f64 / best,
        tokens as f64 / best
    );
}

/// Model2Vec: in-process throughput over the STS-B sentences repeated 20 times.
fn run_static(sentences: &[String]) {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/m2v-minilm-256"
    );
    let model = Embedder::from_dir(dir).unwrap();
    let many: Vec<&str> = (0..20)
        .flat_map(|_| sentences.iter().map(String::as_str))
        .collect();
    for threads in [1, 2] {
        let opts = EmbedOptions {
            threads,
            ..Default::default()
        };
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            model.embed(&many, &opts).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "Model2Vec m2v-minilm-256: {} sentences, {threads} thread(s): best of 5 {:.1} ms = {:.0} sent/s",
            many.len(),
            best * 1e3,
            many.len() as f64 / best
        );
    }
}

/// The machine's f32 GEMM rate on one core at the encoder's batch shape (1024 tokens × 384 → 1536),
/// with `matrixmultiply` and with sembed's packed-weights kernel: the reference for "share of peak".
fn gemm_peak() -> f64 {
    let (m, k, n) = (1024, 384, 1536);
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0f32; m * n];
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let t = Instant::now();
        // SAFETY: dense row-major buffers of exactly these shapes.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gflops = 2.0 * (m * k * n) as f64 / best / 1e9;
    println!("GEMM peak (matrixmultiply sgemm 1024x384x1536, 1 thread): {gflops:.1} GFLOP/s");
    // Ours, over weights packed once (what a batched run uses): the higher of the two is the peak.
    let packed = sembed::__bench::packed_gemm_gflops(m, k, n);
    println!("GEMM peak (sembed packed weights 1024x384x1536, 1 thread): {packed:.1} GFLOP/s");
    gflops.max(packed)
}

/// Warm single-sentence latency only, many times over (for `perf record`): `-- latency [ITERATIONS]`.
fn latency_only(model: &Embedder, iterations: usize) {
    let one = ["A man is playing a guitar."];
    let opts = EmbedOptions {
        threads: 2,
        ..Default::default()
    };
    for _ in 0..100 {
        model.embed(&one, &opts).unwrap();
    }
    let t = Instant::now();
    for _ in 0..iterations {
        model.embed(&one, &opts).unwrap();
    }
    println!(
        "{iterations} single-sentence embeddings, 2 threads: mean {:.3} ms",
        t.elapsed().as_secs_f64() * 1e3 / iterations as f64
    );
}

fn model_dir() -> String {
    std::env::var("SEMBED_TEST_MODEL").unwrap_or_else(|_| {
        format!(
            "{}/.cache/sembed/test-models/all-MiniLM-L6-v2",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench --bench latency -- static` runs only the Model2Vec part.
    if args.iter().any(|a| a == "static") {
        run_static(&stsb());
        return;
    }
    // `-- latency [N]`: only the f32 directory's warm latency, N times (default 2,000).
    if let Some(i) = args.iter().position(|a| a == "latency") {
        let n = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(2000);
        match Embedder::from_dir(model_dir()) {
            Ok(m) => latency_only(&m, n),
            Err(e) => eprintln!("model dir f32: not run ({e})"),
        }
        return;
    }
    let peak = gemm_peak();
    // all-MiniLM-L6-v2: 6 layers × (4·384² + 2·384·1536) multiply-adds per token = 21.2 MFLOP.
    println!(
        "  => 2-core ceiling for all-MiniLM-L6-v2: {:.0} tokens/s",
        2.0 * peak * 1e9 / 21.2e6
    );
    let sentences = stsb();
    run_static(&sentences);
    // Prepared copies in a folder of their own, as the CLI keeps them (f32 panels; AMX tiles).
    let prepared = tempfile::tempdir().unwrap();
    // The best kernels here, then (where that is AMX) the same capped at AVX-512, side by side.
    let mut best = String::new();
    for cpu in [Cpu::Auto, Cpu::Avx512] {
        if cpu == Cpu::Avx512 && best != "amx" {
            break;
        }
        let o = LoadOptions {
            cpu,
            prepared: Some(prepared.path().to_path_buf()),
            ..Default::default()
        };
        let mut level = |m: &Embedder| {
            if cpu == Cpu::Auto {
                best = m.info().cpu.to_string();
            }
            m.info().cpu.to_string()
        };
        #[cfg(feature = "builtin")]
        {
            let m = Embedder::builtin_with(&o).unwrap();
            run(&format!("built-in f16 [{}]", level(&m)), &m, &sentences);
        }
        match Embedder::from_dir_with(model_dir(), &o) {
            Ok(m) => run(&format!("model dir f32 [{}]", level(&m)), &m, &sentences),
            Err(e) => {
                eprintln!("model dir f32: not run ({e}); scripts/fetch-test-model.sh fetches it")
            }
        }
    }
}
