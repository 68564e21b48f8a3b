//! Property test (proptest) of incremental indexing: whatever sequence of file creations, edits
//! (same-size ones too), appends, renames, touches and deletions happens to a tree, with updates after some of them, the
//! index answers as a fresh index of the final tree does — the same chunks (paths, lines, bytes,
//! text) and the same search results — and both hold exactly the chunks the chunker cuts from the
//! final files.
//!
//! The model is the committed Model2Vec model (static, the cheapest the index tests use): a text's
//! vector does not depend on what it is embedded with, so the two indexes must agree to the bit
//! (cosines are compared within 1e-6, BM25 scores within a relative 1e-5).
//!
//! The property runs a fixed number of cases (`ProptestConfig::cases`, not `PROPTEST_CASES`), and
//! `failure_persistence` is `None`: a failure prints its minimal case (the operations) and the
//! seed, and nothing is written beside the sources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use sembed::Embedder;
use sembed_index::chunk::chunk;
use sembed_index::{Hit, Index, IndexOptions, Mode, Scope, SearchOptions, WalkOptions};

fn static_model() -> &'static Embedder {
    static M: OnceLock<Embedder> = OnceLock::new();
    M.get_or_init(|| Embedder::from_dir(sembed_testkit::data("m2v-minilm-256")).unwrap())
}

/// Files the operations write, at the root and in folders two deep.
const PATHS: &[&str] = &[
    "a.txt",
    "b.md",
    "notes.txt",
    "sub/c.txt",
    "sub/d.md",
    "sub/deeper/e.txt",
    "other/f.txt",
    "other/deeper/g.md",
];

/// Folders an operation may delete whole.
const DIRS: &[&str] = &["sub", "sub/deeper", "other"];

/// The words of the files' text, a small pool so that texts repeat (equal scores, chunks that
/// share a vector); the queries use some of them.
const WORDS: &[&str] = &[
    "the",
    "a",
    "cat",
    "dog",
    "guitar",
    "music",
    "river",
    "quiet",
    "bank",
    "money",
    "stock",
    "market",
    "fell",
    "rose",
    "snow",
    "winter",
    "café",
    "naïve",
    "東京",
    "budget",
    "quarterly",
    "road",
    "dawn",
    "quokka",
];

/// Queries: words of the files, a sentence, and a word no file has.
const QUERIES: &[&str] = &["guitar music", "the stock market fell", "quokka", "zebra"];

/// One change to the tree. `file` picks one of the files there are (modulo their number; nothing
/// happens if there are none).
#[derive(Debug, Clone)]
enum Op {
    /// Creates `PATHS[path]`, or overwrites it.
    Write { path: usize, text: String },
    /// Replaces an existing file's text.
    Modify { file: usize, text: String },
    /// Appends to an existing file.
    Append { file: usize, text: String },
    /// Reverses the order of an existing file's lines: another text of the same size (only the
    /// modification time tells it changed).
    Reverse { file: usize },
    /// Deletes a file.
    Delete { file: usize },
    /// Moves a file to `PATHS[to]` (replacing what is there).
    Rename { file: usize, to: usize },
    /// A new modification time, the same content.
    Touch { file: usize },
    /// Deletes a folder and everything in it.
    DeleteDir { dir: usize },
}

/// A file's text: lines of words from [`WORDS`], some blank (paragraph breaks), maybe none at all,
/// maybe without a final line break.
fn text() -> impl Strategy<Value = String> {
    let line = prop::collection::vec(prop::sample::select(WORDS), 0..7).prop_map(|w| w.join(" "));
    (prop::collection::vec(line, 0..8), any::<bool>()).prop_map(|(lines, newline)| {
        let mut t = lines.join("\n");
        if newline && !t.is_empty() {
            t.push('\n');
        }
        t
    })
}

fn op() -> impl Strategy<Value = Op> {
    let file = 0..16usize;
    prop_oneof![
        4 => (0..PATHS.len(), text()).prop_map(|(path, text)| Op::Write { path, text }),
        3 => (file.clone(), text()).prop_map(|(file, text)| Op::Modify { file, text }),
        2 => (file.clone(), text()).prop_map(|(file, text)| Op::Append { file, text }),
        2 => file.clone().prop_map(|file| Op::Reverse { file }),
        2 => file.clone().prop_map(|file| Op::Delete { file }),
        2 => (file.clone(), 0..PATHS.len()).prop_map(|(file, to)| Op::Rename { file, to }),
        1 => file.prop_map(|file| Op::Touch { file }),
        1 => (0..DIRS.len()).prop_map(|dir| Op::DeleteDir { dir }),
    ]
}

/// A case: chunking options (small chunks, so files have several, with and without overlap),
/// whether files get distinct old modification times (trusted by the index's unchanged-file
/// check) or keep fresh ones (which the index never trusts, so it rereads them), and up to 8
/// operations, each followed by an update or not.
#[derive(Debug, Clone)]
struct Case {
    chunk_tokens: usize,
    overlap_tokens: usize,
    aged: bool,
    steps: Vec<(Op, bool)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        // Chunks of 5 to 40 tokens, overlaps of 0 to 4 (below the chunk size, as the index
        // requires; the chunker keeps at most half a chunk).
        5..=40usize,
        0..=4usize,
        any::<bool>(),
        prop::collection::vec((op(), prop::bool::weighted(0.6)), 1..=8),
    )
        .prop_map(|(chunk_tokens, overlap_tokens, aged, steps)| Case {
            chunk_tokens,
            overlap_tokens,
            aged,
            steps,
        })
}

/// The tree on disk and what it should hold (relative path → text).
struct Tree {
    root: PathBuf,
    files: BTreeMap<String, String>,
    aged: bool,
    /// Writes so far: the n-th gets a modification time of a week ago plus n seconds.
    clock: u64,
}

impl Tree {
    /// Gives `rel` its next modification time: old and distinct if aged, now if not.
    fn stamp(&mut self, rel: &str) {
        self.clock += 1;
        let t = if self.aged {
            SystemTime::now() - Duration::from_secs(7 * 86_400) + Duration::from_secs(self.clock)
        } else {
            SystemTime::now()
        };
        let f = std::fs::File::options()
            .write(true)
            .open(self.root.join(rel))
            .unwrap();
        f.set_modified(t).unwrap();
    }

    fn write(&mut self, rel: &str, text: String) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &text).unwrap();
        self.files.insert(rel.to_string(), text);
        self.stamp(rel);
    }

    /// The `i`-th existing file (modulo their number).
    fn pick(&self, i: usize) -> Option<String> {
        (!self.files.is_empty())
            .then(|| self.files.keys().nth(i % self.files.len()).unwrap().clone())
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Write { path, text } => self.write(PATHS[*path], text.clone()),
            Op::Modify { file, text } => {
                if let Some(rel) = self.pick(*file) {
                    self.write(&rel, text.clone());
                }
            }
            Op::Append { file, text } => {
                if let Some(rel) = self.pick(*file) {
                    let t = format!("{}{text}", self.files[&rel]);
                    self.write(&rel, t);
                }
            }
            Op::Reverse { file } => {
                if let Some(rel) = self.pick(*file) {
                    let old = &self.files[&rel];
                    let body = old.strip_suffix('\n');
                    let mut lines: Vec<&str> = body.unwrap_or(old).split('\n').collect();
                    lines.reverse();
                    let mut t = lines.join("\n");
                    if body.is_some() {
                        t.push('\n');
                    }
                    assert_eq!(t.len(), old.len());
                    self.write(&rel, t);
                }
            }
            Op::Delete { file } => {
                if let Some(rel) = self.pick(*file) {
                    std::fs::remove_file(self.root.join(&rel)).unwrap();
                    self.files.remove(&rel);
                }
            }
            Op::Rename { file, to } => {
                let to = PATHS[*to];
                if let Some(rel) = self.pick(*file).filter(|r| r != to) {
                    let dest = self.root.join(to);
                    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                    // A rename keeps the inode and the modification time.
                    std::fs::rename(self.root.join(&rel), dest).unwrap();
                    let text = self.files.remove(&rel).unwrap();
                    self.files.insert(to.to_string(), text);
                }
            }
            Op::Touch { file } => {
                if let Some(rel) = self.pick(*file) {
                    self.stamp(&rel);
                }
            }
            Op::DeleteDir { dir } => {
                let d = DIRS[*dir];
                let p = self.root.join(d);
                if p.exists() {
                    std::fs::remove_dir_all(p).unwrap();
                }
                let prefix = format!("{d}/");
                self.files.retain(|rel, _| !rel.starts_with(&prefix));
            }
        }
    }
}

/// A chunk as compared: path relative to the tree, lines, bytes, text.
type ChunkRow = (String, usize, usize, (usize, usize), String);

fn row(root: &Path, h: &Hit) -> ChunkRow {
    let rel = h.path.strip_prefix(root).unwrap_or(&h.path);
    (
        rel.to_string_lossy().into_owned(),
        h.start_line,
        h.end_line,
        (h.bytes.start, h.bytes.end),
        h.text.clone(),
    )
}

/// Every chunk the index has, sorted (a semantic search of them all).
fn all_chunks(index: &Index, root: &Path) -> Vec<ChunkRow> {
    let opts = SearchOptions {
        mode: Mode::Semantic,
        top: 1 << 20,
        threshold: None,
    };
    let hits = index
        .search(
            static_model(),
            "anything",
            &Scope::paths(&[root.to_path_buf()]),
            &opts,
        )
        .unwrap();
    let mut rows: Vec<ChunkRow> = hits.iter().map(|h| row(root, h)).collect();
    rows.sort();
    rows
}

/// The chunks the chunker cuts from the files the tree should hold, sorted.
fn expected_chunks(tree: &Tree, index: &Index) -> Vec<ChunkRow> {
    let model = static_model();
    let count = |s: &str| model.count_tokens(s);
    let mut rows = Vec::new();
    for (rel, text) in &tree.files {
        for c in chunk(text, &index.chunk_options(), &count).unwrap() {
            rows.push((
                rel.clone(),
                c.start_line,
                c.end_line,
                (c.bytes.start, c.bytes.end),
                text[c.bytes].to_string(),
            ));
        }
    }
    rows.sort();
    rows
}

/// How close two indexes' scores must be.
#[derive(Debug, Clone, Copy)]
enum Tolerance {
    /// Within this much (cosines: 1e-6).
    Absolute(f32),
    /// Within this fraction of the larger (BM25 scores: FTS5 floors a word's IDF at 1e-6, so with
    /// few documents scores of 1e-6 are common and an absolute bound would say nothing).
    Relative(f32),
}

impl Tolerance {
    fn holds(self, a: f32, b: f32) -> bool {
        match self {
            Tolerance::Absolute(t) => (a - b).abs() <= t,
            Tolerance::Relative(t) => (a - b).abs() <= t * a.abs().max(b.abs()),
        }
    }
}

/// Checks that two searches' hits agree: the same chunks in the same order, with scores within
/// `tol` (`ordered`); or, where equal scores may come in either order (lexical ties are broken by
/// row id, which differs between the indexes), the same chunks each with its score within `tol`
/// and the same sequence of scores.
fn same_hits(
    what: &str,
    root: &Path,
    (a, b): (&[Hit], &[Hit]),
    ordered: bool,
    tol: Tolerance,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len(), "{}: hit counts", what);
    let scored = |hits: &[Hit]| -> Vec<(ChunkRow, f32)> {
        let mut v: Vec<(ChunkRow, f32)> = hits.iter().map(|h| (row(root, h), h.score)).collect();
        if !ordered {
            v.sort_by(|x, y| x.0.cmp(&y.0));
        }
        v
    };
    for ((ra, sa), (rb, sb)) in scored(a).into_iter().zip(scored(b)) {
        prop_assert_eq!(&ra, &rb, "{}", what);
        prop_assert!(
            (sa - sb).abs() <= 1e-6,
            "{what}: {ra:?} scores {sa} and {sb}"
        );
    }
    for (x, y) in a.iter().zip(b) {
        prop_assert!(
            tol.holds(x.score, y.score),
            "{what}: the scores in rank order differ: {} and {}",
            x.score,
            y.score
        );
    }
    Ok(())
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let model = static_model();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(&root).unwrap();
    let roots = [root.clone()];
    let walk = WalkOptions::default();
    let opts = IndexOptions {
        chunk_tokens: Some(case.chunk_tokens),
        overlap_tokens: case.overlap_tokens,
        threads: 0,
    };
    let mut tree = Tree {
        root: root.clone(),
        files: BTreeMap::new(),
        aged: case.aged,
        clock: 0,
    };
    let mut index = Index::open(&dir.path().join("incremental.sqlite"), model, &opts).unwrap();
    index.update(model, &roots, &walk, &mut |_| {}).unwrap();
    for (op, update) in &case.steps {
        tree.apply(op);
        if *update {
            index.update(model, &roots, &walk, &mut |_| {}).unwrap();
        }
    }
    index.update(model, &roots, &walk, &mut |_| {}).unwrap();

    // A fresh index of the final tree, its database in another folder.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut fresh = Index::open(&elsewhere.path().join("fresh.sqlite"), model, &opts).unwrap();
    fresh.update(model, &roots, &walk, &mut |_| {}).unwrap();

    let chunks = all_chunks(&index, &root);
    let fresh_chunks = all_chunks(&fresh, &root);
    prop_assert_eq!(&chunks, &fresh_chunks, "incremental vs fresh chunks");
    prop_assert_eq!(
        &fresh_chunks,
        &expected_chunks(&tree, &fresh),
        "fresh index vs the chunker over the final files"
    );
    let (s, f) = (index.stats().unwrap(), fresh.stats().unwrap());
    let counts = |s: &sembed_index::Stats| {
        s.collections
            .iter()
            .map(|c| (c.docs, c.chunks))
            .collect::<Vec<_>>()
    };
    prop_assert_eq!(counts(&s), counts(&f), "(docs, chunks) per collection");

    let scope = Scope::paths(&roots);
    for q in QUERIES {
        let cosine = Tolerance::Absolute(1e-6);
        let bm25 = Tolerance::Relative(1e-5);
        for (mode, top, ordered, tol) in [
            (Mode::Semantic, 3, true, cosine),
            (Mode::Semantic, 1 << 20, true, cosine),
            (Mode::Lexical, 1 << 20, false, bm25),
        ] {
            let so = SearchOptions {
                mode,
                top,
                threshold: None,
            };
            let a = index.search(model, q, &scope, &so).unwrap();
            let b = fresh.search(model, q, &scope, &so).unwrap();
            let what = format!("{q:?} {mode:?} top {top}");
            same_hits(&what, &root, (&a, &b), ordered, tol)?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        // Bounded shrinking: 2048 steps or a minute.
        max_shrink_iters: 2048,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    })]

    /// After any sequence of changes to a tree, with incremental updates in between, the index
    /// has the chunks and gives the search results a fresh index of the final tree does. Broken
    /// if an update missed a change (a stamp check that trusts too much), left a deleted or
    /// renamed file's chunks behind, kept a stale chunk text, vector or full-text entry, or
    /// rebuilt the scan file from stale rows.
    #[test]
    fn incremental_updates_match_a_fresh_index(case in case()) {
        run(&case)?;
    }
}
