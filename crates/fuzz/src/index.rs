//! The search index: the chunker, and an index whose files on disk were corrupted.

use std::path::PathBuf;
use std::sync::OnceLock;

use sembed_index::chunk::{ChunkOptions, chunk};
use sembed_index::{Index, IndexOptions, Mode, Scope, SearchOptions, WalkOptions};

use crate::tiny_model;

/// The chunker: `data[0]` sets the most tokens per chunk (1–64), `data[1]` the overlap; the rest
/// is a file's text (invalid UTF-8 replaced, as the index reads files). Tokens are counted by the
/// tiny BERT fixture's tokenizer, as an index counts them. Every chunk must be within the text, on
/// character boundaries, its line numbers those of its bytes, within the token limit, in order;
/// every non-blank character must be in a chunk; the same text must cut the same way twice.
pub fn chunker(data: &[u8]) {
    let [max, overlap, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let opts = ChunkOptions {
        max_tokens: 1 + (max % 64) as usize,
        overlap_tokens: (overlap % 32) as usize,
    };
    let model = tiny_model();
    let count = |s: &str| model.count_tokens(s);
    let chunks = chunk(&text, &opts, &count).expect("the fixture counts any text");
    assert_eq!(
        chunks,
        chunk(&text, &opts, &count).expect("counts"),
        "deterministic"
    );
    let line_of = |at: usize| {
        1 + text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };
    let mut covered = vec![false; text.len()];
    let mut prev_start = 0;
    for c in &chunks {
        let r = c.bytes.clone();
        assert!(
            r.start <= r.end && r.end <= text.len(),
            "{r:?} outside the text"
        );
        assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
        assert!(r.start >= prev_start, "chunks in order");
        prev_start = r.start;
        assert_eq!(c.start_line, line_of(r.start), "first line of {r:?}");
        assert_eq!(c.end_line, line_of(r.end), "last line of {r:?}");
        let piece = &text[r.clone()];
        let tokens = count(piece).expect("counts");
        // A single character the tokenizer makes more tokens of is kept alone (never for BERT).
        assert!(
            tokens <= opts.max_tokens || piece.chars().count() == 1,
            "{tokens} tokens > {} in {piece:?}",
            opts.max_tokens
        );
        covered[r].iter_mut().for_each(|b| *b = true);
    }
    for (i, ch) in text.char_indices() {
        assert!(
            ch.is_whitespace() || covered[i],
            "{ch:?} at byte {i} is in no chunk"
        );
    }
}

/// A small index built once: three files of the tree it indexes, the database and its scan file.
struct Base {
    /// Holds the tree and the index until the process ends.
    _dir: tempfile::TempDir,
    root: PathBuf,
    db: Vec<u8>,
    /// (file name beside the database, bytes)
    scan: (String, Vec<u8>),
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("sub")).expect("tree");
        std::fs::write(
            root.join("a.txt"),
            "A man is playing a guitar.\n\nA woman slices an onion.\n",
        )
        .expect("file");
        std::fs::write(root.join("b.md"), "# Notes\nThe cat sits on the mat.\n").expect("file");
        std::fs::write(root.join("sub/c.txt"), "déjà vu 東京\nsearch by meaning\n").expect("file");
        let path = dir.path().join("index.db");
        let model = tiny_model();
        let mut index = Index::open(&path, model, &IndexOptions::default()).expect("open");
        index
            .update(
                model,
                std::slice::from_ref(&root),
                &WalkOptions::default(),
                &mut |_| {},
            )
            .expect("update");
        // A search writes the scan file.
        index
            .search(
                model,
                "guitar",
                &Scope::paths(std::slice::from_ref(&root)),
                &SearchOptions::default(),
            )
            .expect("search");
        drop(index);
        let db = std::fs::read(&path).expect("database");
        let scan = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("index.db.scan-") && !n.ends_with(".lock"))
            .expect("a scan file");
        let scan_bytes = std::fs::read(dir.path().join(&scan)).expect("scan file");
        Base {
            _dir: dir,
            root,
            db,
            scan: (scan, scan_bytes),
        }
    })
}

/// Seeds for [`index_file`]: the database and the scan file as they are.
pub fn index_file_seeds() -> Vec<Vec<u8>> {
    let b = base();
    [(0u8, &b.db), (1, &b.scan.1)]
        .into_iter()
        .map(|(pick, bytes)| {
            let mut s = vec![pick];
            s.extend_from_slice(bytes);
            s
        })
        .collect()
}

/// A corrupted index on disk: the base index with its SQLite database (`data[0]` even) or its
/// scan file of int8 vectors (odd) replaced by `data[1..]`, then opened, searched in each mode,
/// brought up to date with the tree and searched again. Errors are fine; a panic, a hit outside
/// its file's lines or a similarity outside [-1, 1] is a finding. Whether every step succeeded.
pub fn index_file(data: &[u8]) -> bool {
    let Some((&pick, content)) = data.split_first() else {
        return false;
    };
    let b = base();
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = dir.path().join("index.db");
    let scan = dir.path().join(&b.scan.0);
    let (db_bytes, scan_bytes) = if pick % 2 == 0 {
        (content, b.scan.1.as_slice())
    } else {
        (b.db.as_slice(), content)
    };
    std::fs::write(&db, db_bytes).expect("write");
    std::fs::write(&scan, scan_bytes).expect("write");
    let model = tiny_model();
    let Ok(mut index) = Index::open(&db, model, &IndexOptions::default()) else {
        return false;
    };
    let roots = std::slice::from_ref(&b.root);
    let scope = Scope::paths(roots);
    let search = |index: &Index| {
        let mut ok = true;
        for mode in [Mode::Semantic, Mode::Lexical, Mode::Hybrid] {
            let opts = SearchOptions {
                mode,
                top: 5,
                threshold: None,
            };
            match index.search(model, "guitar onion", &scope, &opts) {
                Ok(hits) => {
                    assert!(hits.len() <= 5);
                    for h in hits {
                        assert!(h.start_line >= 1 && h.start_line <= h.end_line, "{h:?}");
                        assert!(h.bytes.start <= h.bytes.end, "{h:?}");
                        if let Some(c) = h.cosine {
                            assert!((-1.001..=1.001).contains(&c), "cosine {c} in {h:?}");
                        }
                    }
                }
                Err(_) => ok = false,
            }
        }
        ok
    };
    let mut ok = search(&index);
    ok &= index.stats().is_ok();
    ok &= index
        .update(model, roots, &WalkOptions::default(), &mut |_| {})
        .is_ok();
    ok &= search(&index);
    ok
}
