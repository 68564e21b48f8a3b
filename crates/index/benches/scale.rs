//! A million chunks in one index: dense query latency in process, recall@10 against exact search,
//! index size and peak memory. Timing, not a test: `cargo bench -p sembed-index --bench scale`.
//!
//! The chunks are synthetic but made of real text: each is two STS Benchmark sentences picked by
//! a fixed pseudo-random sequence (2,758² possible pairs, so nearly all distinct), embedded by the
//! Model2Vec test model (256 dimensions). Queries are single STS-B sentences. `SCALE_N` sets the
//! number of chunks (default 1,000,000), `SCALE_DIR` where the index is kept between runs.

use std::time::{Duration, Instant};

use sembed::{EmbedOptions, Embedder};
use sembed_index::{Index, IndexOptions, Mode, Scope, SearchOptions};

fn main() {
    let n: usize = std::env::var("SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::var("SCALE_DIR").map_or_else(
        |_| std::env::temp_dir().join(format!("sembed-scale-{n}")),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("index.sqlite");
    let model = Embedder::from_dir(sembed_testkit::data("m2v-minilm-256")).unwrap();
    let s = sembed_testkit::stsb_sentences();
    let texts = sembed_testkit::stsb_pairs(n);
    let queries: Vec<&str> = s
        .iter()
        .step_by(s.len() / 50)
        .take(50)
        .map(String::as_str)
        .collect();

    let mut index = Index::open(&db, &model, &IndexOptions::default()).unwrap();
    let have = index
        .stats()
        .unwrap()
        .collections
        .first()
        .map_or(0, |c| c.chunks);
    if have as usize != n {
        let t = Instant::now();
        for (k, block) in texts.chunks(50_000).enumerate() {
            let items: Vec<(String, &str)> = block
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("c{}", k * 50_000 + i), t.as_str()))
                .collect();
            index.update_items(&model, &items).unwrap();
            eprint!("\rindexed {}", (k + 1) * block.len());
        }
        eprintln!("\rindexed {n} chunks in {:.1} s", t.elapsed().as_secs_f64());
    }
    let bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();

    // Searching alone: a fresh index handle, and the peak RSS counted from here (clear_refs 5
    // resets VmHWM), so neither building nor the exact baseline below is in it.
    drop(index);
    drop(texts);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = peak_rss_mb();
    let index = Index::open(&db, &model, &IndexOptions::default()).unwrap();
    eprintln!("opened: peak RSS {} MB", peak_rss_mb());
    let scope = Scope::default().with_items();
    let opts = SearchOptions {
        mode: Mode::Semantic,
        top: 10,
        threshold: None,
    };
    // The first query maps the scan file (and builds it if needed): not timed.
    let t = Instant::now();
    index.search(&model, queries[0], &scope, &opts).unwrap();
    eprintln!(
        "first query (scan file made if missing): {:.0} ms; peak RSS {} MB",
        t.elapsed().as_secs_f64() * 1e3,
        peak_rss_mb()
    );
    let mut times = Vec::new();
    let mut answers = Vec::new();
    for q in &queries {
        let t = Instant::now();
        let hits = index.search(&model, q, &scope, &opts).unwrap();
        times.push(t.elapsed());
        answers.push(hits.iter().map(|h| h.score).collect::<Vec<f32>>());
        if std::env::var_os("SCALE_RSS").is_some() {
            eprintln!("rss {} hwm {}", rss_mb("VmRSS:"), peak_rss_mb());
        }
    }
    let rss = peak_rss_mb();

    // Exact answers: every chunk's vector, brute force.
    let texts = sembed_testkit::stsb_pairs(n);
    let t = Instant::now();
    let all = model.embed(&texts, &EmbedOptions::default()).unwrap();
    eprintln!("exact vectors in {:.1} s", t.elapsed().as_secs_f64());
    let (mut found, mut wanted) = (0usize, 0usize);
    for (q, got) in queries.iter().zip(&answers) {
        let qv = model.embed(&[*q], &EmbedOptions::default()).unwrap();
        let mut exact: Vec<f32> = all.rows().map(|v| sembed::cosine(qv.row(0), v)).collect();
        exact.select_nth_unstable_by(9, |a, b| b.total_cmp(a));
        // A tie at the 10th score can be either chunk: count by score, not by id.
        let tenth = exact[..10].iter().copied().fold(f32::INFINITY, f32::min);
        wanted += 10;
        found += got.iter().filter(|&&g| g >= tenth - 1e-6).count().min(10);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{n} chunks, 256 dims: query median {:.1} ms, p90 {:.1} ms, max {:.1} ms (in process, semantic, top 10); \
         recall@10 {:.4}; index {:.0} MB on disk; peak RSS while searching {} MB (process before: {} MB)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        ms(times[times.len() - 1]),
        found as f64 / wanted as f64,
        bytes as f64 / 1e6,
        rss,
        rss_before
    );
}

fn rss_mb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb / 1024)
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb / 1024)
}
