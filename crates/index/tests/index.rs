//! The index through its public API: walk rules, chunks against the real tokenizer, scores against
//! the engine's own vectors, incremental updates, separate models, concurrency, damage, the cache.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use sembed::{EmbedOptions, Embedder};
use sembed_index::{
    Cache, Error, Hit, Index, IndexOptions, Mode, Scope, SearchOptions, WalkOptions, walk,
};

fn builtin() -> &'static Embedder {
    static M: OnceLock<Embedder> = OnceLock::new();
    M.get_or_init(|| Embedder::builtin().unwrap())
}

/// The Model2Vec model distilled by Python model2vec (committed test data): a text's vector does
/// not depend on what it is embedded with, so two indexes built differently must agree exactly.
fn static_model() -> &'static Embedder {
    static M: OnceLock<Embedder> = OnceLock::new();
    M.get_or_init(|| Embedder::from_dir(sembed_testkit::data("m2v-minilm-256")).unwrap())
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    age(path);
}

/// Files written by a test are an hour old: a fresh modification time is not trusted (it could
/// change again within the clock's resolution), and these tests count what is re-read.
fn age(path: &Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

/// Sentences nobody here wrote: the STS Benchmark's.
fn sentences() -> Vec<String> {
    sembed_testkit::stsb_sentences()
}

/// A tree of `files` files of `per` sentences each, a paragraph of three sentences at a time.
fn corpus(root: &Path, files: usize, per: usize) {
    let s = sentences();
    for f in 0..files {
        let mut text = String::new();
        for i in 0..per {
            text.push_str(&s[(f * per + i) % s.len()]);
            text.push(if i % 3 == 2 { '\n' } else { ' ' });
            if i % 3 == 2 {
                text.push('\n');
            }
        }
        write(&root.join(format!("d{}/f{f:03}.txt", f % 4)), &text);
    }
}

fn semantic(top: usize) -> SearchOptions {
    SearchOptions {
        mode: Mode::Semantic,
        top,
        threshold: None,
    }
}

fn quiet() -> impl FnMut(sembed_index::Event) {
    |_| {}
}

/// (path, lines, score) of each hit, for comparing two indexes' answers.
fn summary(hits: &[Hit]) -> Vec<(PathBuf, usize, usize, f32)> {
    hits.iter()
        .map(|h| (h.path.clone(), h.start_line, h.end_line, h.score))
        .collect()
}

#[test]
fn walk_follows_ripgrep_rules() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(&r.join("a.txt"), "kept");
    write(&r.join("notes/b.md"), "kept");
    write(&r.join("notes/skip.md"), "globbed out");
    write(&r.join(".gitignore"), "ignored.txt\nbuild/\n");
    write(&r.join("ignored.txt"), "gitignored");
    write(&r.join("build/out.txt"), "gitignored folder");
    write(&r.join("sub/.ignore"), "private.txt\n");
    write(&r.join("sub/private.txt"), "ignored by .ignore");
    write(&r.join("sub/public.txt"), "kept");
    write(&r.join(".hidden.txt"), "hidden");
    write(&r.join(".dir/inside.txt"), "hidden folder");
    std::fs::write(r.join("bin.dat"), b"abc\0def").unwrap();
    std::fs::write(r.join("big.txt"), "x".repeat(5000)).unwrap();
    let fifo = r.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink(r, r.join("sub/loop")).unwrap();

    let run = |opts: &WalkOptions| {
        let mut skipped = walk::Skipped::default();
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        walk::walk(
            &[r.to_path_buf()],
            opts,
            &mut skipped,
            &mut |f| files.push(f),
            &mut |m| warnings.push(m),
        )
        .unwrap();
        // Read as an update would: binary files are told apart here.
        let mut found = BTreeSet::new();
        for f in files {
            let mut w = |m: String| warnings.push(m);
            if let walk::Read::Text(..) = walk::read(&f, opts, &mut skipped, &mut w) {
                found.insert(f.display.strip_prefix(r).unwrap().display().to_string());
            }
        }
        (found, skipped, warnings)
    };
    let base = WalkOptions {
        max_filesize: 4096,
        ..Default::default()
    };
    let (found, skipped, warnings) = run(&base);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        found,
        // Dotfiles (.gitignore too) are hidden, as in ripgrep.
        names(&["a.txt", "notes/b.md", "notes/skip.md", "sub/public.txt"])
    );
    assert_eq!(skipped.binary, 1);
    assert_eq!(skipped.too_large, 1);
    assert_eq!(skipped.not_regular, 1, "the FIFO: {warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("pipe") && w.contains("not a regular file"))
    );

    // --hidden, --no-ignore, and globs.
    let (found, _, _) = run(&WalkOptions {
        hidden: true,
        ..base.clone()
    });
    assert!(found.contains(".hidden.txt") && found.contains(".dir/inside.txt"));
    let (found, _, _) = run(&WalkOptions {
        no_ignore: true,
        ..base.clone()
    });
    assert!(found.contains("ignored.txt") && found.contains("build/out.txt"));
    assert!(found.contains("sub/private.txt"));
    let (found, _, _) = run(&WalkOptions {
        globs: vec!["*.md".into(), "!skip.md".into()],
        ..base.clone()
    });
    assert_eq!(found, names(&["notes/b.md"]));

    // Following links: the loop is reported and skipped, the walk finishes.
    let (found, skipped, warnings) = run(&WalkOptions {
        follow: true,
        ..base.clone()
    });
    assert_eq!(skipped.loops, 1, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("loop")));
    assert!(found.contains("a.txt"));

    // A bad glob is an error that names it.
    let mut skipped = walk::Skipped::default();
    let err = walk::walk(
        &[r.to_path_buf()],
        &WalkOptions {
            globs: vec!["a{b".into()],
            ..base
        },
        &mut skipped,
        &mut |_| {},
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("a{b"), "{err}");
}

#[test]
fn chunks_fit_the_model_and_cover_every_line() {
    chunks_fit(builtin(), 254);
    // Model2Vec: 512 "tokens" as its limit counts them (characters over the median token
    // length too, for its pre-cut).
    chunks_fit(static_model(), 512);
}

fn chunks_fit(model: &Embedder, want_budget: usize) {
    let texts: Vec<String> =
        serde_json::from_slice(&std::fs::read(sembed_testkit::data("mpnet/texts.json")).unwrap())
            .unwrap();
    let doc_opts = EmbedOptions {
        truncate: false,
        ..Default::default()
    };
    let budget = model.token_budget(&doc_opts).unwrap().unwrap();
    // all-MiniLM-L6-v2: 256 tokens, [CLS] and [SEP] included.
    assert_eq!(budget, want_budget);
    // One document of all the texts (paragraphs, long lines, CJK, code), and each text alone.
    let mut docs = vec![texts.join("\n\n"), texts.join("\n")];
    docs.extend(texts.iter().cloned());
    docs.push("word ".repeat(2000));
    // Long tokens (the static model's pre-cut counts characters) and code.
    docs.push("internationalization_configuration_parameters ".repeat(300));
    docs.push(
        std::fs::read_to_string(sembed_testkit::repo_root().join("crates/index/src/chunk.rs"))
            .unwrap(),
    );
    for overlap in [0, 40] {
        for max in [budget, 64, 7] {
            let doc_opts = EmbedOptions {
                max_length: (model.kind() == sembed::ModelKind::Static).then_some(max),
                ..doc_opts.clone()
            };
            let opts = sembed_index::ChunkOptions {
                max_tokens: max,
                overlap_tokens: overlap.min(max / 2),
            };
            for text in &docs {
                let count = |s: &str| model.count_tokens(s);
                let chunks = sembed_index::chunk::chunk(text, &opts, &count).unwrap();
                let lines: Vec<&str> = text.split('\n').collect();
                let mut covered = vec![false; lines.len()];
                for c in &chunks {
                    let piece = &text[c.bytes.clone()];
                    // Within the limit as the model counts, and embeddable without truncation.
                    assert!(
                        model.count_tokens(piece).unwrap() <= max,
                        "{max}: {piece:?}"
                    );
                    // (token_ids refuses a text the model would cut, truncation being off.)
                    let ids = model.token_ids(piece, &doc_opts).unwrap();
                    assert!(ids.len() <= budget + 2);
                    // Line numbers agree with the bytes.
                    let first = text[..c.bytes.start].matches('\n').count() + 1;
                    let last = text[..c.bytes.end].matches('\n').count() + 1;
                    assert_eq!((c.start_line, c.end_line), (first, last));
                    for l in c.start_line..=c.end_line {
                        covered[l - 1] = true;
                    }
                }
                for (i, l) in lines.iter().enumerate() {
                    assert!(
                        covered[i] || l.trim().is_empty(),
                        "line {} not in a chunk",
                        i + 1
                    );
                }
                // Deterministic.
                assert_eq!(
                    chunks,
                    sembed_index::chunk::chunk(text, &opts, &count).unwrap()
                );
            }
        }
    }
}

#[test]
fn semantic_scores_are_the_engines_cosines() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 12, 18);
    let model = builtin();
    let opts = IndexOptions {
        chunk_tokens: Some(64),
        ..Default::default()
    };
    let mut index = Index::open(&dir.path().join("i.sqlite"), model, &opts).unwrap();
    index
        .update(
            model,
            std::slice::from_ref(&tree),
            &WalkOptions::default(),
            &mut quiet(),
        )
        .unwrap();
    let query = "a man is playing a guitar";
    let hits = index
        .search(
            model,
            query,
            &Scope::paths(std::slice::from_ref(&tree)),
            &semantic(100),
        )
        .unwrap();
    assert!(hits.len() > 20);
    let q = model.embed(&[query], &EmbedOptions::default()).unwrap();
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    let e = model.embed(&texts, &EmbedOptions::default()).unwrap();
    for (h, v) in hits.iter().zip(e.rows()) {
        let want = sembed::cosine(q.row(0), v);
        assert!((h.score - want).abs() < 1e-6, "{} vs {want}", h.score);
        assert_eq!(h.cosine, Some(h.score));
        assert!(h.path.starts_with(&tree));
    }
    for w in hits.windows(2) {
        assert!(w[0].score >= w[1].score);
    }
    // The text stored is the file's, at the lines and bytes given.
    for h in &hits {
        let file = std::fs::read_to_string(&h.path).unwrap();
        assert_eq!(&file[h.bytes.clone()], h.text);
        assert_eq!(
            file[..h.bytes.start].matches('\n').count() + 1,
            h.start_line
        );
    }
}

#[test]
fn updates_touch_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 8, 30);
    let model = static_model();
    let db = dir.path().join("i.sqlite");
    let roots = [tree.clone()];
    let walk = WalkOptions::default();
    let mut index = Index::open(&db, model, &IndexOptions::default()).unwrap();
    let first = index.update(model, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!((first.seen, first.changed, first.deleted), (8, 8, 0));
    assert!(first.embedded >= 8 && first.embedded <= first.chunks);

    // Nothing changed: nothing read.
    let r = index.update(model, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!((r.changed, r.touched, r.embedded, r.chunks), (0, 0, 0, 0));

    // Touched: read again, same content, restamped only.
    let f = tree.join("d1/f001.txt");
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    let r = index.update(model, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!((r.changed, r.touched, r.embedded), (0, 1, 0));

    // Edited: re-chunked, only the new chunk embedded.
    let mut text = std::fs::read_to_string(&f).unwrap();
    text.push_str("\nA quokka crossed the quiet road at dawn.\n");
    write(&f, &text);
    let r = index.update(model, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!((r.changed, r.touched), (1, 0));
    assert_eq!(r.embedded, 1, "only the chunk with the new line: {r:?}");
    let scope = Scope::paths(&roots);
    let lexical = SearchOptions {
        mode: Mode::Lexical,
        top: 1,
        threshold: None,
    };
    let hits = index.search(model, "quokka", &scope, &lexical).unwrap();
    assert_eq!(hits[0].path, f);
    assert!(hits[0].text.contains("quokka"));

    // Renamed: the same chunks under a new path, nothing embedded, the old path gone.
    let g = tree.join("d1/renamed.txt");
    std::fs::rename(&f, &g).unwrap();
    let r = index.update(model, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!((r.changed, r.deleted, r.embedded), (1, 1, 0));
    let hits = index.search(model, "quokka", &scope, &lexical).unwrap();
    assert_eq!(hits[0].path, g);

    // Deleted: gone from every mode's results.
    std::fs::remove_file(&g).unwrap();
    let r = index.update(model, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!((r.changed, r.deleted), (0, 1));
    for mode in [Mode::Semantic, Mode::Lexical, Mode::Hybrid] {
        let opts = SearchOptions {
            mode,
            top: 1000,
            threshold: None,
        };
        let hits = index.search(model, "quokka road", &scope, &opts).unwrap();
        let bad: Vec<_> = hits
            .iter()
            .filter(|h| h.path == g || h.text.contains("quokka"))
            .collect();
        assert!(bad.is_empty(), "{mode:?} {bad:?}");
    }

    // A file that turned binary leaves the index; unchanged binary files are not read again.
    let b = tree.join("d2/f002.txt");
    std::fs::write(&b, b"\0binary now").unwrap();
    age(&b);
    let r = index.update(model, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!(r.skipped.binary, 1);
    let hits = index
        .search(model, "anything", &scope, &semantic(1000))
        .unwrap();
    assert!(hits.iter().all(|h| h.path != b));
    let r = index.update(model, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!((r.changed, r.skipped.binary), (0, 1));

    // The chunk count kept by every write is the chunks there are.
    let chunks = index.stats().unwrap().collections[0].chunks as usize;
    assert_eq!(
        index
            .search(model, "x", &scope, &semantic(1 << 20))
            .unwrap()
            .len(),
        chunks
    );

    // The final state answers as a fresh index of the same tree does.
    let fresh_db = dir.path().join("fresh.sqlite");
    let mut fresh = Index::open(&fresh_db, model, &IndexOptions::default()).unwrap();
    fresh.update(model, &roots, &walk, &mut quiet()).unwrap();
    for q in [
        "a woman is slicing an onion",
        "the stock market fell",
        "quokka",
    ] {
        for mode in [Mode::Semantic, Mode::Lexical, Mode::Hybrid] {
            let opts = SearchOptions {
                mode,
                top: 20,
                threshold: None,
            };
            assert_eq!(
                summary(&index.search(model, q, &scope, &opts).unwrap()),
                summary(&fresh.search(model, q, &scope, &opts).unwrap()),
                "{q} {mode:?}"
            );
        }
    }
}

#[test]
fn another_model_or_chunking_is_another_index() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 3, 12);
    let db = dir.path().join("i.sqlite");
    let roots = [tree.clone()];
    let walk = WalkOptions::default();
    let a = static_model();
    let b = builtin();
    let mut ia = Index::open(&db, a, &IndexOptions::default()).unwrap();
    ia.update(a, &roots, &walk, &mut quiet()).unwrap();
    let mut ib = Index::open(&db, b, &IndexOptions::default()).unwrap();
    let r = ib.update(b, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!(r.changed, 3, "the other model's index starts empty");
    assert_ne!(ia.fingerprint().unwrap(), ib.fingerprint().unwrap());
    let stats = ib.stats().unwrap();
    assert_eq!(stats.collections.len(), 2);
    assert!(stats.collections.iter().all(|c| c.docs == 3));
    let dims: BTreeSet<usize> = stats.collections.iter().map(|c| c.dim).collect();
    assert_eq!(dims, BTreeSet::from([256, 384]));
    // Each model's search sees its own vectors (cosines are its own).
    let q = "a man is playing a flute";
    let scope = Scope::paths(&roots);
    let ha = ia.search(a, q, &scope, &semantic(1)).unwrap();
    let hb = ib.search(b, q, &scope, &semantic(1)).unwrap();
    let want = |m: &Embedder, h: &Hit| {
        let e = m
            .embed(&[q, h.text.as_str()], &EmbedOptions::default())
            .unwrap();
        sembed::cosine(e.row(0), e.row(1))
    };
    assert!((ha[0].score - want(a, &ha[0])).abs() < 1e-6);
    assert!((hb[0].score - want(b, &hb[0])).abs() < 1e-6);

    // Other chunk settings: every file cut again.
    let mut ic = Index::open(
        &db,
        a,
        &IndexOptions {
            chunk_tokens: Some(16),
            ..Default::default()
        },
    )
    .unwrap();
    let r = ic.update(a, &roots, &walk, &mut quiet()).unwrap();
    assert_eq!(r.changed, 3);
    assert!(ic.chunk_options().max_tokens == 16);
    // Limits are checked against the model.
    let err = Index::open(
        &db,
        b,
        &IndexOptions {
            chunk_tokens: Some(300),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, Error::Invalid(_)) && err.to_string().contains("254"),
        "{err}"
    );
}

#[test]
fn two_indexers_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 40, 30);
    let db = dir.path().join("i.sqlite");
    let roots = vec![tree.clone()];
    let model = static_model();
    let reports: Vec<_> = std::thread::scope(|s| {
        let jobs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut index = Index::open(&db, model, &IndexOptions::default())?;
                    index.update(model, &roots, &WalkOptions::default(), &mut quiet())
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    for r in &reports {
        assert!(r.is_ok(), "{r:?}");
    }
    let index = Index::open(&db, model, &IndexOptions::default()).unwrap();
    let stats = index.stats().unwrap();
    assert_eq!(stats.collections[0].docs, 40);
    let mut fresh = Index::open(
        &dir.path().join("f.sqlite"),
        model,
        &IndexOptions::default(),
    )
    .unwrap();
    fresh
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    assert_eq!(
        stats.collections[0].chunks,
        fresh.stats().unwrap().collections[0].chunks
    );
    let scope = Scope::paths(&roots);
    for q in ["a dog runs on the beach", "oil prices"] {
        assert_eq!(
            summary(&index.search(model, q, &scope, &semantic(15)).unwrap()),
            summary(&fresh.search(model, q, &scope, &semantic(15)).unwrap())
        );
    }
}

#[test]
fn damaged_index_files_are_refused_with_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let model = static_model();
    let db = dir.path().join("i.sqlite");
    std::fs::write(&db, b"this is not a database, just some bytes ".repeat(200)).unwrap();
    let err = Index::open(&db, model, &IndexOptions::default())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, Error::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains(db.to_str().unwrap()) && msg.contains("--clear"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));

    // A real index cut short: an error at open or at the first query, never wrong results.
    sembed_index::delete_index(&db).unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 30, 30);
    let roots = [tree.clone()];
    {
        let mut index = Index::open(&db, model, &IndexOptions::default()).unwrap();
        index
            .update(model, &roots, &WalkOptions::default(), &mut quiet())
            .unwrap();
    }
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(len > 64 * 1024, "{len}");
    let f = std::fs::File::options().write(true).open(&db).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let result = Index::open(&db, model, &IndexOptions::default())
        .and_then(|i| i.search(model, "a man", &Scope::paths(&roots), &semantic(50)));
    match result {
        Err(e) => assert!(e.to_string().contains("i.sqlite"), "{e}"),
        Ok(hits) => panic!("a truncated index answered: {} hits", hits.len()),
    }
    // Deleting it is always possible, and then all is well.
    sembed_index::delete_index(&db).unwrap();
    let mut index = Index::open(&db, model, &IndexOptions::default()).unwrap();
    index
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
}

#[test]
fn items_are_indexed_and_removed_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let model = static_model();
    let mut index = Index::open(
        &dir.path().join("i.sqlite"),
        model,
        &IndexOptions::default(),
    )
    .unwrap();
    let s = sentences();
    let items: Vec<(String, String)> = (0..200)
        .map(|i| (format!("doc-{i}"), s[i].clone()))
        .collect();
    let r = index.update_items(model, &items).unwrap();
    assert_eq!((r.seen, r.changed), (200, 200));
    let r = index.update_items(model, &items).unwrap();
    assert_eq!(r.changed, 0, "unchanged items are not cut again");
    let scope = Scope::default().with_items();
    let hits = index.search(model, &s[17], &scope, &semantic(3)).unwrap();
    assert_eq!(hits[0].path, Path::new("doc-17"));
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert_eq!(index.remove_items(&["doc-17", "no-such"]).unwrap(), 1);
    let hits = index.search(model, &s[17], &scope, &semantic(3)).unwrap();
    assert!(hits.iter().all(|h| h.path != Path::new("doc-17")));
    // Files are not items: a search of paths does not see them.
    let hits = index
        .search(
            model,
            &s[17],
            &Scope::paths(&[dir.path().to_path_buf()]),
            &semantic(3),
        )
        .unwrap();
    assert!(hits.is_empty());
}

#[test]
fn the_quantized_scan_finds_what_exact_search_finds() {
    let dir = tempfile::tempdir().unwrap();
    let model = static_model();
    let mut index = Index::open(
        &dir.path().join("i.sqlite"),
        model,
        &IndexOptions::default(),
    )
    .unwrap();
    let s = sentences();
    let items: Vec<(String, String)> = s
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("{i}"), t.clone()))
        .collect();
    index.update_items(model, &items).unwrap();
    let check = |index: &Index, alive: &BTreeMap<String, String>| {
        let ids: Vec<&String> = alive.keys().collect();
        let texts: Vec<&str> = alive.values().map(String::as_str).collect();
        let all = model.embed(&texts, &EmbedOptions::default()).unwrap();
        let mut found = 0;
        let queries = [
            "a man is cooking",
            "the president spoke",
            "two dogs play in snow",
        ];
        for q in queries {
            let qv = model.embed(&[q], &EmbedOptions::default()).unwrap();
            let mut exact: Vec<(f32, &String)> = all
                .rows()
                .zip(&ids)
                .map(|(v, id)| (sembed::cosine(qv.row(0), v), *id))
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let hits = index
                .search(model, q, &Scope::default().with_items(), &semantic(10))
                .unwrap();
            let got: BTreeSet<String> = hits.iter().map(|h| h.path.display().to_string()).collect();
            found += exact[..10]
                .iter()
                .filter(|(_, id)| got.contains(*id))
                .count();
        }
        // Duplicate sentences tie; recall over the distinct texts is what matters.
        assert!(found >= 29, "recall@10 {found}/30");
    };
    let mut alive: BTreeMap<String, String> = items.iter().cloned().collect();
    check(&index, &alive);
    // Remove a third: the scan file is rebuilt, answers stay right.
    let gone: Vec<String> = (0..s.len())
        .filter(|i| i % 3 == 0)
        .map(|i| i.to_string())
        .collect();
    index.remove_items(&gone).unwrap();
    for g in &gone {
        alive.remove(g);
    }
    check(&index, &alive);
}

#[test]
fn cached_vectors_are_the_computed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    let model = builtin();
    let opts = EmbedOptions::default();
    let s = sentences();
    let texts: Vec<&str> = s[..300].iter().map(String::as_str).collect();
    let plain = model.embed(&texts, &opts).unwrap();
    let mut cache = Cache::open(&db, model, &opts).unwrap();
    assert!(cache.bypassed().is_none());
    let (first, r) = cache.embed(model, &texts, &opts).unwrap();
    // STS-B repeats some sentences: each distinct text is embedded once.
    let distinct = texts.iter().collect::<BTreeSet<_>>().len();
    assert_eq!((r.hits, r.misses), (0, texts.len()));
    assert_eq!(first, plain, "all misses: exactly the uncached call");
    let (second, r) = cache.embed(model, &texts, &opts).unwrap();
    assert_eq!((r.hits, r.misses), (texts.len(), 0));
    assert_eq!(second, plain, "all hits: the stored vectors, bit for bit");
    let stats = sembed_index::stats(&db).unwrap().unwrap();
    assert_eq!(stats.cached_vectors as usize, distinct);

    // Other options are another cache.
    let other = EmbedOptions {
        normalize: Some(false),
        ..Default::default()
    };
    let mut c2 = Cache::open(&db, model, &other).unwrap();
    let (_, r) = c2.embed(model, &texts[..10], &other).unwrap();
    assert_eq!(r.hits, 0);

    // A static model is never cached.
    let m2v = static_model();
    let c3 = Cache::open(&dir.path().join("none.sqlite"), m2v, &opts).unwrap();
    assert!(c3.bypassed().is_some());
    assert!(!dir.path().join("none.sqlite").exists());

    // Clearing keeps nothing an index does not use.
    assert!(sembed_index::clear_cache(&db).unwrap() >= distinct as u64);
    let (_, r) = Cache::open(&db, model, &opts)
        .unwrap()
        .embed(model, &texts[..5], &opts)
        .unwrap();
    assert_eq!(r.hits, 0);
}

#[test]
fn a_narrower_walk_hides_files_without_forgetting_them() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 6, 12);
    write(
        &tree.join("notes.md"),
        "A man is playing a guitar on the stage.\n",
    );
    let model = static_model();
    let roots = [tree.clone()];
    let mut index = Index::open(
        &dir.path().join("i.sqlite"),
        model,
        &IndexOptions::default(),
    )
    .unwrap();
    let all = index
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    assert_eq!(all.changed, 7);
    let md = WalkOptions {
        globs: vec!["*.md".into()],
        ..Default::default()
    };
    let r = index.update(model, &roots, &md, &mut quiet()).unwrap();
    assert_eq!(
        (r.seen, r.changed, r.deleted),
        (1, 0, 0),
        "out of view is not deleted"
    );
    let hits = index
        .search(
            model,
            "a man",
            &Scope::paths(&roots).within(&r),
            &semantic(50),
        )
        .unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.path.ends_with("notes.md")));
    // The whole view again: nothing to do, everything found.
    let r = index
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    assert_eq!((r.seen, r.changed, r.deleted), (7, 0, 0));
    let hits = index
        .search(
            model,
            "a man",
            &Scope::paths(&roots).within(&r),
            &semantic(50),
        )
        .unwrap();
    assert!(
        hits.iter()
            .any(|h| h.path.extension().is_some_and(|e| e == "txt"))
    );
}
