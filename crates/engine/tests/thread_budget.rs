//! The thread budget shared by models and concurrent callers, in a test binary of its own: it
//! counts the process's threads, which other tests running alongside would change.

use sembed::{EmbedOptions, Embedder, Embeddings, LoadOptions, ThreadPool};
use sembed_testkit::*;

const TEXTS: [&str; 3] = ["A man is playing a guitar.", "", "naïve café — 東京 🎸"];

fn max_abs_diff(a: &Embeddings, b: &Embeddings) -> f32 {
    assert_eq!(a.as_slice().len(), b.as_slice().len());
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Eight threads share one model and a budget of two: never more than two compute at once, no
/// thread is started per call, and every caller gets the vectors it would get alone.
#[test]
fn a_shared_thread_budget_is_never_exceeded() {
    let pool = ThreadPool::new(2);
    let opts = LoadOptions {
        threads: Some(pool.clone()),
        ..Default::default()
    };
    let models = [
        Embedder::from_dir_with(data("fixtures/tiny-bert-cls"), &opts).unwrap(),
        Embedder::from_dir_with(data("m2v-minilm-256"), &opts).unwrap(),
    ];
    let texts: Vec<String> = (0..300)
        .map(|i| format!("text number {i} {}", TEXTS[i % TEXTS.len()]))
        .collect();
    let one = EmbedOptions {
        threads: 1,
        ..Default::default()
    };
    let want: Vec<Embeddings> = models
        .iter()
        .map(|m| m.embed(&texts, &one).unwrap())
        .collect();
    let tasks = || std::fs::read_dir("/proc/self/task").map(|d| d.count()).ok();
    let before = tasks();
    let peak_threads = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for c in 0..8 {
            let (models, texts, want, peak) = (&models, &texts, &want, &peak_threads);
            s.spawn(move || {
                for round in 0..6 {
                    let m = (c + round) % 2;
                    // Single texts (the helper-thread path) and whole lists (threads over batches).
                    let got = if round % 3 == 0 {
                        models[m].embed(&texts[c..c + 1], &EmbedOptions::default())
                    } else {
                        models[m].embed(texts, &EmbedOptions::default())
                    }
                    .unwrap();
                    // One kernel for every batch shape on AVX2/AVX-512: the same bits there; the
                    // portable fallback may differ in the last bits, by at most 1e-5.
                    if round % 3 == 0 {
                        let d = got
                            .row(0)
                            .iter()
                            .zip(want[m].row(c))
                            .map(|(x, y)| (x - y).abs())
                            .fold(0.0, f32::max);
                        assert!(d < 1e-5, "{d}");
                    } else {
                        assert!(max_abs_diff(&got, &want[m]) < 1e-5);
                    }
                    if let Some(n) = tasks() {
                        peak.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert!(
        pool.peak_busy() <= 2,
        "{} threads computed at once",
        pool.peak_busy()
    );
    assert_eq!(pool.peak_busy(), 2, "the budget was used");
    assert!(
        pool.workers() <= 1,
        "{} workers for a budget of 2",
        pool.workers()
    );
    // The process never had more threads than the callers, the worker, and what ran before.
    if let (Some(before), peak) = (
        before,
        peak_threads.load(std::sync::atomic::Ordering::Relaxed),
    ) {
        assert!(peak <= before + 8 + 1 + 2, "{peak} threads (from {before})");
    }
}
