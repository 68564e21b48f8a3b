//! `sembed search`, `sembed index`, `sembed cache` and `embed --cache` as a user meets them: the
//! JSON fields, paths as given, exit codes, standard input, an index without its tree, a killed
//! indexer, a full disk, a damaged index file, and a cache whose output is the uncached output.

use std::path::Path;
use std::process::{Command as Std, Stdio};
use std::time::{Duration, SystemTime};

use assert_cmd::Command;

fn sembed() -> Command {
    let mut c = Command::cargo_bin("sembed").unwrap();
    // Never the user's cache (nor any: nothing can be made under /dev/null); each test names its
    // index.
    c.env("XDG_CACHE_HOME", "/dev/null/sembed-tests");
    c
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(cmd: &mut Command) -> String {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    out
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

/// `files` files of STS-B sentences (real text nobody here wrote), `per` each, in paragraphs.
fn corpus(root: &Path, files: usize, per: usize) {
    let s = sembed_testkit::stsb_sentences();
    for f in 0..files {
        let mut text = String::new();
        for i in 0..per {
            text.push_str(&s[(f * per + i) % s.len()]);
            text.push_str(if i % 4 == 3 { "\n\n" } else { "\n" });
        }
        write(&root.join(format!("part{}/f{f:03}.txt", f % 3)), &text);
    }
}

fn m2v() -> String {
    sembed_testkit::data("m2v-minilm-256")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn json_hits_have_the_documented_fields_and_paths_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 6, 12);
    let index = dir.path().join("i.sqlite");
    let out = ok(sembed()
        .current_dir(dir.path())
        .args([
            "search",
            "--json",
            "-k",
            "5",
            "--mode",
            "semantic",
            "a man plays guitar",
            "tree",
        ])
        .arg("--index")
        .arg(&index));
    let hits = json_lines(&out);
    assert_eq!(hits.len(), 5);
    // The documented fields first, in the documented order.
    for line in out.lines() {
        let at: Vec<usize> = ["path", "start_line", "end_line", "score", "text"]
            .iter()
            .map(|k| line.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(
            line.starts_with("{\"path\":") && at.windows(2).all(|w| w[0] < w[1]),
            "{line}"
        );
    }
    let mut last = f64::INFINITY;
    for h in &hits {
        let path = h["path"].as_str().unwrap();
        assert!(path.starts_with("tree/part"), "{path}");
        let (start, end) = (
            h["start_line"].as_u64().unwrap(),
            h["end_line"].as_u64().unwrap(),
        );
        assert!(start >= 1 && start <= end);
        let score = h["score"].as_f64().unwrap();
        assert!(score <= last && score > 0.0 && score <= 1.0);
        last = score;
        // Lines 1-based inclusive: exactly the text of those lines.
        let file = std::fs::read_to_string(dir.path().join(path)).unwrap();
        let lines: Vec<&str> = file.lines().collect();
        let want = lines[start as usize - 1..end as usize].join("\n");
        assert_eq!(h["text"].as_str().unwrap(), want);
    }
    // No path: the current folder, shown as relative paths.
    let out = ok(sembed()
        .current_dir(&tree)
        .args([
            "search",
            "--json",
            "-k",
            "3",
            "a man plays guitar",
            "--index",
        ])
        .arg(&index));
    for h in json_lines(&out) {
        let p = h["path"].as_str().unwrap();
        assert!(p.starts_with("part") && !p.starts_with("./"), "{p}");
    }
    // An absolute root stays absolute.
    let out = ok(sembed()
        .args(["search", "--json", "-k", "1", "guitar"])
        .arg(&tree)
        .arg("--index")
        .arg(&index));
    assert!(
        json_lines(&out)[0]["path"]
            .as_str()
            .unwrap()
            .starts_with(tree.to_str().unwrap())
    );
}

#[test]
fn text_output_files_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 4, 16);
    write(
        &tree.join("notes.md"),
        "# Retries\n\nThe client retries three times.\nBackoff doubles each time.\n",
    );
    let idx = dir.path().join("i.sqlite");
    let search = |args: &[&str]| {
        let mut c = sembed();
        c.current_dir(&tree)
            .arg("search")
            .args(args)
            .arg("--index")
            .arg(&idx);
        run(&mut c)
    };
    let (code, out, err) = search(&["how often does the client retry", "-k", "2"]);
    assert_eq!(code, 0, "{err}");
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("notes.md:1-4: "), "{out}");
    assert!(out.contains("3:The client retries three times."), "{out}");
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(err.contains("indexed first"), "{err}");
    // Colour on request.
    let (_, out, _) = search(&["retry", "-k", "1", "--color", "always"]);
    assert!(out.contains('\x1b'));
    // -l: each file once.
    let (code, out, _) = search(&["a man", "-l", "-k", "3"]);
    assert_eq!(code, 0);
    let files: Vec<&str> = out.lines().collect();
    assert_eq!(files.len(), 3);
    assert_eq!(
        files
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
    // Nothing above the threshold: exit 1, nothing printed.
    let (code, out, _) = search(&["a man", "--threshold", "0.9999"]);
    assert_eq!((code, out.as_str()), (1, ""));
    // -C: context lines marked with '-'.
    let (_, out, _) = search(&["backoff doubles", "-k", "1", "--mode", "lexical", "-C", "1"]);
    assert!(out.contains("4:Backoff doubles each time."), "{out}");
    assert!(out.contains("3-The client retries"), "{out}");
    // A usage error (an impossible chunk size) exits 2 with one line.
    let (code, _, err) = search(&["x", "--chunk-tokens", "100000"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn standard_input_and_an_index_whose_tree_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 3, 12);
    let idx = dir.path().join("i.sqlite");
    let mut c = sembed();
    c.args([
        "search",
        "--json",
        "-k",
        "1",
        "a quokka crossed the road",
        "-",
        "--index",
    ])
    .arg(&idx)
    .write_stdin("nothing here\n\nA quokka walked across the street.\n");
    let hits = json_lines(&ok(&mut c));
    assert_eq!(hits[0]["path"], "<stdin>");
    assert_eq!(
        (hits[0]["start_line"].as_u64(), hits[0]["end_line"].as_u64()),
        (Some(1), Some(3))
    );
    assert!(hits[0]["text"].as_str().unwrap().ends_with("street."));
    // Standard input is searched beside the paths, and not kept.
    ok(sembed().arg("index").arg(&tree).arg("--index").arg(&idx));
    let stats = ok(sembed()
        .args(["index", "--stats", "--json", "--index"])
        .arg(&idx));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["collections"][0]["documents"], 3, "{stats}");

    let before = ok(sembed()
        .args(["search", "--json", "-k", "4", "people cooking"])
        .arg(&tree)
        .arg("--index")
        .arg(&idx));
    std::fs::rename(&tree, dir.path().join("elsewhere")).unwrap();
    let after = ok(sembed()
        .args([
            "search",
            "--json",
            "-k",
            "4",
            "--no-update",
            "people cooking",
        ])
        .arg(&tree)
        .arg("--index")
        .arg(&idx));
    assert_eq!(before, after, "the index answers without its files");
}

/// Files the indexer is given, in a size that takes it a few seconds with the built-in model.
fn killable(root: &Path) {
    corpus(root, 48, 40);
}

#[test]
fn a_killed_indexer_leaves_an_index_that_equals_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    killable(&tree);
    let idx = dir.path().join("killed.sqlite");
    let bin = env!("CARGO_BIN_EXE_sembed");
    let mut killed_with_work_left = 0;
    for delay_ms in [150u64, 400, 900, 1500, 2500] {
        let mut child = Std::new(bin)
            .args(["index", "-t", "1", "--index"])
            .arg(&idx)
            .arg(&tree)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_with_work_left += 1;
        }
        // SIGKILL: no destructor, no cleanup, mid-transaction or not.
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever state it left is a usable index.
        let (code, _, err) = run(sembed()
            .args(["search", "--no-update", "-k", "1", "x", "--index"])
            .arg(&idx)
            .arg(&tree));
        assert!(code == 0 || code == 1, "{err}");
    }
    assert!(
        killed_with_work_left >= 2,
        "the corpus is too small to kill mid-run"
    );
    let finished = ok(sembed()
        .args(["index", "--json", "--index"])
        .arg(&idx)
        .arg(&tree));
    let finished: serde_json::Value = serde_json::from_str(&finished).unwrap();
    assert!(finished["embedded"].as_u64().unwrap() < finished["chunks"].as_u64().unwrap() + 1);
    let fresh = dir.path().join("fresh.sqlite");
    ok(sembed().args(["index", "--index"]).arg(&fresh).arg(&tree));
    let stats = |db: &Path| {
        let s = ok(sembed()
            .args(["index", "--stats", "--json", "--index"])
            .arg(db));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        (
            v["collections"][0]["documents"].clone(),
            v["collections"][0]["chunks"].clone(),
        )
    };
    assert_eq!(stats(&idx), stats(&fresh));
    for q in [
        "a woman slices a tomato",
        "the economy grew",
        "children play football",
    ] {
        for mode in ["semantic", "lexical", "hybrid"] {
            let search = |db: &Path| {
                let out = ok(sembed()
                    .args([
                        "search",
                        "--no-update",
                        "--json",
                        "-k",
                        "10",
                        "--mode",
                        mode,
                        q,
                    ])
                    .arg(&tree)
                    .arg("--index")
                    .arg(db));
                json_lines(&out)
            };
            let (a, b) = (search(&idx), search(&fresh));
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x["path"], y["path"], "{q} {mode}");
                assert_eq!(x["start_line"], y["start_line"]);
                assert_eq!(x["text"], y["text"]);
                // Vectors embedded in other batches have the same bits: so have the scores.
                assert_eq!(x["score"], y["score"], "{q} {mode}");
            }
        }
    }
}

#[test]
fn two_indexers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 30, 30);
    let idx = dir.path().join("i.sqlite");
    let bin = env!("CARGO_BIN_EXE_sembed");
    let spawn = |args: &[&str]| {
        Std::new(bin)
            .args(args)
            .arg("--index")
            .arg(&idx)
            .arg(&tree)
            .args(["-m", &m2v()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&["index"]);
    let b = spawn(&["search", "-k", "1", "a man"]);
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = ok(sembed()
        .args(["index", "--stats", "--json", "--index"])
        .arg(&idx));
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["collections"][0]["documents"], 30);
}

#[test]
fn a_full_disk_is_an_error_and_the_index_stays_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 6, 20);
    let idx = dir.path().join("i.sqlite");
    ok(sembed()
        .args(["index", "--index"])
        .arg(&idx)
        .arg(&tree)
        .args(["-m", &m2v()]));
    let query = |extra: &[&str]| {
        let mut c = sembed();
        c.args([
            "search",
            "--json",
            "-k",
            "8",
            "-m",
            &m2v(),
            "a man is cooking",
        ])
        .args(extra)
        .arg("--index")
        .arg(&idx)
        .arg(&tree);
        run(&mut c)
    };
    let (_, before, _) = query(&["--no-update"]);
    // Much more to write than a small file size limit lets through.
    corpus(&dir.path().join("tree/more"), 200, 40);
    let limit_kb = 256;
    let out = Std::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -f {limit_kb}; exec \"$0\" index --index \"$1\" \"$2\" -m \"$3\""
        ))
        .arg(env!("CARGO_BIN_EXE_sembed"))
        .arg(&idx)
        .arg(&tree)
        .arg(m2v())
        .env("XDG_CACHE_HOME", "/dev/null/sembed-tests")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("i.sqlite"), "{err}");
    assert!(err.contains("full") || err.contains("limit"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The index answers as before, without the files it could not add.
    let (code, after, e) = query(&["--no-update"]);
    assert_eq!(code, 0, "{e}");
    assert_eq!(before, after);
}

#[test]
fn a_damaged_index_is_named_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    corpus(&tree, 2, 8);
    let idx = dir.path().join("bad.sqlite");
    std::fs::write(&idx, vec![0x5au8; 10_000]).unwrap();
    let (code, out, err) = run(sembed()
        .args(["search", "-m", &m2v(), "x", "--index"])
        .arg(&idx)
        .arg(&tree));
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(idx.to_str().unwrap()) && err.contains("--rebuild"),
        "{err}"
    );
    let (code, _, err) = run(sembed().args(["index", "--stats", "--index"]).arg(&idx));
    assert_eq!(code, 1, "{err}");
    // --rebuild starts over.
    let out = ok(sembed()
        .args([
            "search",
            "--rebuild",
            "--json",
            "-m",
            &m2v(),
            "a man",
            "--index",
        ])
        .arg(&idx)
        .arg(&tree));
    assert!(!json_lines(&out).is_empty());
    // --clear deletes it (and says so).
    let out = ok(sembed().args(["index", "--clear", "--index"]).arg(&idx));
    assert!(out.starts_with("deleted"), "{out}");
    assert!(!idx.exists());
}

#[test]
fn embed_cache_gives_the_uncached_output_and_counts_hits() {
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<String> = sembed_testkit::stsb_sentences()[..400].to_vec();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, texts.join("\n")).unwrap();
    let cache = dir.path().join("cache");
    let embed = |extra: &[&str]| {
        let mut c = sembed();
        c.args(["embed", "-f", "npy", "-o", "-", "-i"])
            .arg(&input)
            .args(extra);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (plain, _) = embed(&[]);
    let dir_arg = cache.to_str().unwrap();
    let (first, err) = embed(&["--cache-dir", dir_arg]);
    assert_eq!(first, plain, "all misses: the uncached output");
    assert!(
        err.contains("cache: 0 of 400 texts found, 400 embedded"),
        "{err}"
    );
    let (second, err) = embed(&["--cache-dir", dir_arg]);
    assert_eq!(second, plain, "all hits: the uncached output, bit for bit");
    assert!(
        err.contains("cache: 400 of 400 texts found, 0 embedded"),
        "{err}"
    );
    // Some hits: the misses are embedded in other batches than in the uncached run, and the
    // output is still the uncached output bit for bit — with the built-in model (panels compiled
    // in) and with a model folder of f32 weights (packed at load: this cache folder has no
    // prepared copies).
    let part = dir.path().join("part.txt");
    let some: Vec<&str> = texts.iter().step_by(3).map(String::as_str).collect();
    std::fs::write(&part, some.join("\n")).unwrap();
    let real = sembed_testkit::real_model();
    for model in ["builtin", real.to_str().unwrap()] {
        let partial = dir.path().join(format!("partial-{}", model.len()));
        let partial = partial.to_str().unwrap();
        let (plain, _) = embed(&["-m", model]);
        let mut fill = sembed();
        fill.args([
            "embed",
            "-f",
            "npy",
            "-o",
            "/dev/null",
            "--cache-dir",
            partial,
            "-m",
            model,
        ])
        .arg("-i")
        .arg(&part);
        ok(&mut fill);
        let (mixed, err) = embed(&["--cache-dir", partial, "-m", model]);
        let found = texts.iter().filter(|t| some.contains(&t.as_str())).count();
        assert!(
            err.contains(&format!(
                "cache: {found} of 400 texts found, {} embedded",
                400 - found
            )),
            "{err}"
        );
        assert_eq!(
            mixed, plain,
            "{model}: some hits, the uncached output bit for bit"
        );
    }
    // `cache stats` sees them; `cache clear` removes them.
    let s = ok(sembed().args(["cache", "stats", "--json", "--cache-dir", dir_arg]));
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let distinct = texts
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert_eq!(v["cached_vectors"], distinct);
    let out = ok(sembed().args(["cache", "clear", "--cache-dir", dir_arg]));
    assert!(
        out.contains(&format!("removed {distinct} cached vectors")),
        "{out}"
    );
    // Other options: other entries.
    let (_, err) = embed(&["--cache-dir", dir_arg, "--no-normalize"]);
    assert!(err.contains("cache: 0 of 400"), "{err}");
    // A static model bypasses the cache and says why.
    let (_, err) = embed(&["--cache-dir", dir_arg, "-m", &m2v()]);
    assert!(err.contains("bypassed"), "{err}");
}

/// The semantic scores are those sentence-transformers' `util.semantic_search` gives for the same
/// chunks (`tests/data/search/reference.json`, made by `make_reference.py` with Python
/// sentence-transformers 6.2 on the real all-MiniLM-L6-v2): each hit's score is Python's for its
/// chunk, and no chunk Python ranks higher is missing (ties within 1e-5 aside).
#[test]
fn semantic_scores_match_sentence_transformers() {
    let reference: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sembed_testkit::data("search/reference.json")).unwrap(),
    )
    .unwrap();
    let corpus = sembed_testkit::data("search/corpus");
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("i.sqlite");
    let model = sembed_testkit::real_model();
    let k = 10;
    for q in reference["queries"].as_array().unwrap() {
        let query = q["query"].as_str().unwrap();
        // Python's score of every chunk, by its file, first byte and text.
        let all: Vec<(String, u64, String, f64)> = reference["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .zip(q["scores"].as_array().unwrap())
            .map(|(c, s)| {
                (
                    c["path"].as_str().unwrap().to_string(),
                    c["start_byte"].as_u64().unwrap(),
                    c["text"].as_str().unwrap().to_string(),
                    s.as_f64().unwrap(),
                )
            })
            .collect();
        let out = ok(sembed()
            .current_dir(&corpus)
            .args([
                "search",
                "--json",
                "--mode",
                "semantic",
                "-k",
                &k.to_string(),
                "-m",
            ])
            .arg(&model)
            .arg("--index")
            .arg(&idx)
            .arg(query));
        let got = json_lines(&out);
        assert_eq!(got.len(), k, "{query}");
        for g in &got {
            let key = (
                g["path"].as_str().unwrap(),
                g["start_byte"].as_u64().unwrap(),
            );
            let (_, _, text, want) = all
                .iter()
                .find(|(p, l, _, _)| (p.as_str(), *l) == key)
                .unwrap_or_else(|| panic!("{query}: {key:?} is not a chunk Python saw"));
            assert_eq!(g["text"].as_str().unwrap(), text);
            let s = g["score"].as_f64().unwrap();
            assert!(
                (s - want).abs() < 1e-5,
                "{query}: {s} vs sentence-transformers' {want}"
            );
        }
        let kth = got[k - 1]["score"].as_f64().unwrap();
        let shown: Vec<(&str, u64)> = got
            .iter()
            .map(|g| {
                (
                    g["path"].as_str().unwrap(),
                    g["start_byte"].as_u64().unwrap(),
                )
            })
            .collect();
        for (p, l, _, score) in &all {
            if !shown.contains(&(p.as_str(), *l)) {
                assert!(
                    *score <= kth + 1e-5,
                    "{query}: Python ranks {p}:{l} ({score}) above the {k}th hit ({kth})"
                );
            }
        }
    }
}

/// A model folder's first load writes its prepared copy (the kernels' layout) to the cache
/// folder; `cache stats` counts it, later loads reuse it with the same output, and
/// `cache clear --prepared` deletes it.
#[test]
fn prepared_weights_are_shown_reused_and_cleared() {
    let xdg = tempfile::tempdir().unwrap();
    let real = sembed_testkit::real_model();
    let cmd = |args: &[&str]| {
        let mut c = Command::cargo_bin("sembed").unwrap();
        c.env("XDG_CACHE_HOME", xdg.path()).args(args);
        c
    };
    let embed = [
        "embed",
        "-f",
        "npy",
        "-o",
        "-",
        "-m",
        real.to_str().unwrap(),
        "a",
        "b c",
    ];
    let stats = || -> serde_json::Value {
        serde_json::from_str(&ok(&mut cmd(&["cache", "stats", "--json"]))).unwrap()
    };
    assert_eq!(stats()["prepared"]["files"], 0);
    let first = cmd(&embed).output().unwrap();
    assert!(first.status.success());
    let s = stats();
    assert_eq!(s["prepared"]["files"], 1, "{s}");
    assert_eq!(s["prepared"]["vocabularies"]["files"], 1, "{s}");
    let size = std::fs::metadata(real.join("model.safetensors"))
        .unwrap()
        .len();
    let bytes = s["prepared"]["bytes"].as_u64().unwrap();
    assert!(
        bytes >= size && bytes < size + size / 50,
        "{bytes} vs {size}"
    );
    let text = ok(&mut cmd(&["cache", "stats"]));
    assert!(text.contains("prepared weights: 1 file ("), "{text}");
    assert!(text.contains("vocabularies: 1 file ("), "{text}");
    let again = cmd(&embed).output().unwrap();
    assert_eq!(again.stdout, first.stdout);
    assert_eq!(stats()["prepared"]["files"], 1);
    // What a killed load leaves half-written goes too.
    let dir = xdg.path().join("sembed/prepared");
    std::fs::write(dir.join(".abc.tmp-1-ThreadId(1)"), b"partial").unwrap();
    let out = ok(&mut cmd(&["cache", "clear", "--prepared"]));
    assert!(out.contains("removed 1 file of prepared weights"), "{out}");
    assert!(out.contains("and 1 file of vocabularies"), "{out}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    assert_eq!(stats()["prepared"]["files"], 0);
    let after = cmd(&embed).output().unwrap();
    assert_eq!(after.stdout, first.stdout);
}

/// `--index postgres://…` through the whole CLI against a real PostgreSQL + pgvector (started
/// here; see sembed_testkit::Postgres): index, search in every mode with the same hits as the
/// SQLite index of the same files (exact scan), stats, clear, and a wrong password as one line
/// with exit status 2 and no password in it.
#[test]
fn a_postgres_index_works_as_the_sqlite_one() {
    let pg = sembed_testkit::Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 12, 8);
    let root = dir.path().to_str().unwrap();
    let url = pg.table("cli") + "&scan=exact";
    let db = dir.path().join("i.sqlite");
    let lite = db.to_str().unwrap();
    let out = ok(sembed().args(["index", "--json", "-m", &m2v(), "--index", &url, root]));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["changed"], 12);
    assert!(!r["index"].as_str().unwrap().contains(":@"), "{r}");
    ok(sembed().args(["index", "-m", &m2v(), "--index", lite, root]));
    for mode in ["semantic", "hybrid"] {
        let q = |index: &str| {
            let out = ok(sembed().args([
                "search",
                "--json",
                "--no-update",
                "-k",
                "5",
                "--mode",
                mode,
                "-m",
                &m2v(),
                "--index",
                index,
                "a man plays a guitar",
                root,
            ]));
            json_lines(&out)
                .iter()
                .map(|h| {
                    (
                        h["path"].clone(),
                        h["start_line"].clone(),
                        h["text"].clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (q(&url), q(lite));
        assert_eq!(a.len(), 5);
        if mode == "semantic" {
            assert_eq!(a, b);
        } else {
            // Lexical ranks differ (ts_rank_cd vs BM25); the semantic best is in both.
            assert!(a.iter().any(|h| h == &b[0]) || b.iter().any(|h| h == &a[0]));
        }
    }
    let out = ok(sembed().args(["index", "--stats", "--json", "--index", &url]));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["collections"][0]["documents"], 12);
    let out = ok(sembed().args(["index", "--clear", "--index", &url]));
    assert!(out.starts_with("deleted postgresql://"), "{out}");
    let out = ok(sembed().args(["index", "--stats", "--index", &url]));
    assert!(out.starts_with("no index at"), "{out}");
    // A wrong password: one line, exit 2, the password nowhere.
    let host = pg.url.split("host=").nth(1).unwrap();
    let wrong = format!(
        "postgresql://{}:not-the-password@/postgres?host={host}",
        pg.password_user
    );
    let (code, out, err) =
        run(sembed().args(["search", "-m", &m2v(), "--index", &wrong, "x", root]));
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}
