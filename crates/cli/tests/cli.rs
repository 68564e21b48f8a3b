//! The `sembed` binary: output formats, inputs, similarity, info, and every error case the core
//! issue names (one line on stderr naming the file or line, non-zero exit, no panic).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use sembed_testkit::*;

fn sembed() -> Command {
    let mut c = Command::cargo_bin("sembed").unwrap();
    // Digests and prepared copies of weights go to the tests' own cache, not the user's.
    c.env(
        "XDG_CACHE_HOME",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-cache"),
    );
    c
}

fn tiny() -> PathBuf {
    data("fixtures/tiny-bert-cls")
}

/// Runs sembed expecting success; returns stdout.
fn ok(args: &[&str]) -> Vec<u8> {
    let out = sembed().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs sembed expecting failure with exit code `code`; returns the single stderr line.
fn fails(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(out.stdout.is_empty(), "no data on failure");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("sembed: error: "), "{err}");
    err.trim_end().to_string()
}

fn jsonl_vectors(out: &[u8]) -> Vec<(usize, Vec<f32>)> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let e = v["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            (v["index"].as_u64().unwrap() as usize, e)
        })
        .collect()
}

#[test]
fn jsonl_is_one_object_per_input_in_order() {
    let texts = [
        "first text",
        "",
        "a much longer third text that sorts differently",
        "4",
    ];
    let m = tiny();
    let mut args = vec!["embed", "--model", m.to_str().unwrap()];
    args.extend(texts);
    let rows = jsonl_vectors(&ok(&args));
    assert_eq!(rows.len(), 4);
    let model = sembed::Embedder::from_dir(&m).unwrap();
    let want = model.embed(&texts, &Default::default()).unwrap();
    for (i, (idx, v)) in rows.iter().enumerate() {
        assert_eq!(*idx, i);
        assert!(
            sembed::cosine(v, want.row(i)) > 0.999999,
            "row {i} out of order"
        );
    }
}

#[test]
fn npy_f32_json_csv_agree() {
    let m = tiny();
    let m = m.to_str().unwrap();
    fn args<'a>(m: &'a str, f: &'a str) -> Vec<&'a str> {
        vec!["embed", "--model", m, "--format", f, "one", "two", "three"]
    }
    let npy = ok(&args(m, "npy"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.npy");
    std::fs::write(&p, &npy).unwrap();
    let (rows, cols, data) = read_npy(&p);
    assert_eq!((rows, cols), (3, 32));
    assert_eq!(npy.len() % 16, 0);

    let raw = ok(&args(m, "f32"));
    assert_eq!(raw.len(), 3 * 32 * 4);
    let raw: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(raw, data);

    let json: Vec<Vec<f32>> = serde_json::from_slice(&ok(&args(m, "json"))).unwrap();
    assert_eq!(json.concat(), data);

    let csv = String::from_utf8(ok(&args(m, "csv"))).unwrap();
    let csv: Vec<f32> = csv
        .lines()
        .flat_map(|l| l.split(',').map(|x| x.parse::<f32>().unwrap()))
        .collect();
    assert_eq!(csv, data);
}

#[test]
fn output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.npy");
    let m = tiny();
    let stdout = ok(&[
        "embed",
        "-m",
        m.to_str().unwrap(),
        "-f",
        "npy",
        "-o",
        out.to_str().unwrap(),
        "x",
    ]);
    assert!(stdout.is_empty());
    assert_eq!(read_npy(&out).0, 1);
    // Written under a temporary name and renamed: nothing else is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["e.npy"]);
}

#[test]
fn stdin_lines_and_input_file_agree() {
    let m = tiny();
    let m = m.to_str().unwrap();
    let from_stdin = sembed()
        .args(["embed", "-m", m, "--input", "-"])
        .write_stdin("alpha\r\n\nbeta gamma\n")
        .output()
        .unwrap();
    assert!(from_stdin.status.success());
    let rows = jsonl_vectors(&from_stdin.stdout);
    assert_eq!(rows.len(), 3, "an empty line is an empty text");
    let direct = jsonl_vectors(&ok(&["embed", "-m", m, "alpha", "", "beta gamma"]));
    assert_eq!(rows, direct);

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.txt");
    std::fs::write(&f, "alpha\n\nbeta gamma\n").unwrap();
    assert_eq!(
        jsonl_vectors(&ok(&["embed", "-m", m, "-i", f.to_str().unwrap()])),
        direct
    );
    // Piped stdin without --input is read too.
    let piped = sembed()
        .args(["embed", "-m", m])
        .write_stdin("alpha\n\nbeta gamma")
        .output()
        .unwrap();
    assert_eq!(jsonl_vectors(&piped.stdout), direct);
}

#[test]
fn jsonl_input_allows_newlines_in_texts() {
    let m = tiny();
    let m = m.to_str().unwrap();
    let out = sembed()
        .args(["embed", "-m", m, "--input-format", "jsonl", "-i", "-"])
        .write_stdin("\"line one\\nline two\"\n{\"text\": \"tab\\tand\", \"id\": 7}\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let direct = jsonl_vectors(&ok(&["embed", "-m", m, "line one\nline two", "tab\tand"]));
    assert_eq!(jsonl_vectors(&out.stdout), direct);
}

#[test]
fn similarity_and_matrix() {
    let m = tiny();
    let m = m.to_str().unwrap();
    let out = String::from_utf8(ok(&[
        "similarity",
        "-m",
        m,
        "a cat",
        "a cat",
        "stock markets",
        "x",
    ]))
    .unwrap();
    let vals: Vec<f32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(vals.len(), 3);
    assert!((vals[0] - 1.0).abs() < 1e-6);
    assert!(vals.iter().all(|v| (-1.0..=1.0 + 1e-6).contains(v)));

    let out = String::from_utf8(ok(&[
        "similarity",
        "--matrix",
        "-m",
        m,
        "a cat",
        "stock markets",
        "x",
    ]))
    .unwrap();
    let rows: Vec<Vec<f32>> = out
        .lines()
        .map(|l| l.split('\t').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    for (i, row) in rows.iter().enumerate() {
        assert!((row[i] - 1.0).abs() < 1e-6);
        for (j, v) in row.iter().enumerate() {
            assert_eq!(*v, rows[j][i]);
        }
    }
}

#[cfg(feature = "builtin")]
#[test]
fn builtin_model_needs_no_files() {
    // The main job: no --model, no network, no files.
    let out = sembed()
        .args(["embed", "A man is playing a guitar."])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows = jsonl_vectors(&out.stdout);
    assert_eq!(rows[0].1.len(), 384);
    let info = String::from_utf8(ok(&["info"])).unwrap();
    // The kernels line names this machine's instruction set; everything else is the same everywhere
    // (the fingerprint included: it is made of the built-in files' recorded checksums).
    let info: String = info
        .lines()
        .map(|l| {
            if l.starts_with("kernels:") {
                "kernels:        [this CPU's]".to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    insta::assert_snapshot!("info_builtin", info);
}

#[test]
fn info_of_a_directory_model() {
    let m = data("fixtures/tiny-bert-max-dense");
    let out = String::from_utf8(ok(&["info", "--json", "-m", m.to_str().unwrap()])).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dimensions"], 16);
    assert_eq!(v["max_seq_length"], 48);
    assert_eq!(v["pooling"][0], "max");
    assert_eq!(v["dense"][0], "32->16");
    assert_eq!(v["normalize"], false);
    assert_eq!(v["architecture"], "BertModel");
}

#[test]
fn normalize_flags_override_the_model() {
    let m = data("fixtures/tiny-bert-meansqrt");
    let m = m.to_str().unwrap();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let raw = jsonl_vectors(&ok(&["embed", "-m", m, "hello there"]));
    assert!(
        (norm(&raw[0].1) - 1.0).abs() > 1e-3,
        "model has no Normalize"
    );
    let n = jsonl_vectors(&ok(&["embed", "-m", m, "--normalize", "hello there"]));
    assert!((norm(&n[0].1) - 1.0).abs() < 1e-5);
    let c = data("fixtures/tiny-bert-cls");
    let un = jsonl_vectors(&ok(&[
        "embed",
        "-m",
        c.to_str().unwrap(),
        "--no-normalize",
        "hello there",
    ]));
    assert!(
        (norm(&un[0].1) - 1.0).abs() > 1e-3,
        "Normalize module skipped"
    );
}

#[test]
fn closed_stdout_is_not_an_error() {
    // `head -c 1` closes the pipe after one byte; sembed must exit 0 without a message.
    let m = tiny();
    let texts: Vec<String> = (0..3000).map(|i| format!("text number {i}")).collect();
    let script = format!(
        "{} embed -m {} -i - | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        assert_cmd::cargo::cargo_bin("sembed").display(),
        m.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(texts.join("\n").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- error cases ----

/// A copy of the tiny model in a temp dir, to break.
fn broken_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("model");
    copy_dir(&tiny(), &dest);
    (dir, dest)
}

fn embed_with(model: &Path) -> Command {
    let mut c = sembed();
    c.args(["embed", "--model", model.to_str().unwrap(), "hello"]);
    c
}

#[test]
fn error_missing_model_dir() {
    let err = fails(&mut embed_with(Path::new("/nonexistent/model")), 1);
    assert!(
        err.contains("/nonexistent/model") && err.contains("no such directory"),
        "{err}"
    );
}

#[test]
fn error_missing_weights() {
    let (_d, m) = broken_copy();
    std::fs::remove_file(m.join("model.safetensors")).unwrap();
    let err = fails(&mut embed_with(&m), 1);
    assert!(
        err.contains("model.safetensors") && err.contains("safetensors weights only"),
        "{err}"
    );
}

#[test]
fn error_corrupt_weights() {
    let (_d, m) = broken_copy();
    std::fs::write(
        m.join("model.safetensors"),
        b"this is not a safetensors file at all",
    )
    .unwrap();
    let err = fails(&mut embed_with(&m), 1);
    assert!(
        err.contains("model.safetensors") && err.contains("not a valid safetensors file"),
        "{err}"
    );
}

#[test]
fn error_truncated_weights() {
    let (_d, m) = broken_copy();
    let p = m.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&mut embed_with(&m), 1);
    assert!(
        err.contains("model.safetensors") && err.contains("not a valid safetensors file"),
        "{err}"
    );
}

#[test]
fn error_wrong_tensor_shape() {
    let (_d, m) = broken_copy();
    let p = m.join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let name = "encoder.layer.1.attention.self.query.weight";
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            if n == name {
                // 32×32 stored as 16×64: same bytes, wrong shape.
                (
                    n,
                    safetensors::tensor::TensorView::new(t.dtype(), vec![16, 64], t.data())
                        .unwrap(),
                )
            } else {
                (n, t)
            }
        })
        .collect();
    let out = safetensors::serialize(tensors, None).unwrap();
    std::fs::write(&p, out).unwrap();
    let err = fails(&mut embed_with(&m), 1);
    assert!(
        err.contains(name) && err.contains("shape [16, 64], expected [32, 32]"),
        "{err}"
    );
}

#[test]
fn error_missing_tokenizer() {
    let (_d, m) = broken_copy();
    std::fs::remove_file(m.join("tokenizer.json")).unwrap();
    let err = fails(&mut embed_with(&m), 1);
    assert!(
        err.contains("tokenizer.json") && err.contains("no tokenizer"),
        "{err}"
    );
}

#[test]
fn error_corrupt_config() {
    let (_d, m) = broken_copy();
    std::fs::write(m.join("config.json"), "{ not json").unwrap();
    let err = fails(&mut embed_with(&m), 1);
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn error_unsupported_architecture() {
    let (_d, m) = broken_copy();
    let cfg = std::fs::read_to_string(m.join("config.json"))
        .unwrap()
        .replace("BertModel", "GPT2Model");
    std::fs::write(m.join("config.json"), cfg).unwrap();
    let err = fails(&mut embed_with(&m), 1);
    assert!(err.contains("unsupported architecture: GPT2Model"), "{err}");
}

#[test]
fn error_invalid_utf8_on_stdin_names_the_line() {
    let m = tiny();
    let mut c = sembed();
    c.args(["embed", "-m", m.to_str().unwrap(), "-i", "-"])
        .write_stdin(&b"fine\nalso fine\nbad \xff\xfe\n"[..]);
    let err = fails(&mut c, 1);
    assert_eq!(err, "sembed: error: <stdin>:3: invalid UTF-8 at byte 5");
}

/// An empty input is an empty result, as sentence-transformers' `encode([])` is: no JSON Lines,
/// an `(0, dim)` npy, `[]` in JSON — and exit 0 (this was an error before the foundation issue).
#[test]
fn empty_input_gives_an_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.txt");
    std::fs::write(&f, "").unwrap();
    let m = tiny();
    let m = m.to_str().unwrap();
    let f = f.to_str().unwrap();
    assert!(ok(&["embed", "-m", m, "-i", f]).is_empty());
    assert_eq!(ok(&["embed", "-m", m, "-i", f, "-f", "json"]), b"[]\n");
    let npy = ok(&["embed", "-m", m, "-i", f, "-f", "npy"]);
    assert!(
        String::from_utf8_lossy(&npy).contains("'shape': (0, 32)"),
        "{npy:?}"
    );
    assert_eq!(npy.len(), 128, "header only");
    let out = dir.path().join("e.npy");
    ok(&[
        "embed",
        "-m",
        m,
        "-i",
        f,
        "-f",
        "npy",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), npy);
    // Empty stdin too.
    let out = sembed()
        .args(["embed", "-m", m])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
}

#[test]
fn error_missing_input_file() {
    let m = tiny();
    let mut c = sembed();
    c.args([
        "embed",
        "-m",
        m.to_str().unwrap(),
        "-i",
        "/nonexistent/in.txt",
    ]);
    let err = fails(&mut c, 1);
    assert!(err.contains("/nonexistent/in.txt"), "{err}");
}

#[test]
fn error_bad_jsonl_line() {
    let m = tiny();
    let mut c = sembed();
    c.args([
        "embed",
        "-m",
        m.to_str().unwrap(),
        "--input-format",
        "jsonl",
        "-i",
        "-",
    ])
    .write_stdin("\"ok\"\n[1, 2]\n");
    let err = fails(&mut c, 1);
    assert!(err.contains("<stdin>:2:"), "{err}");
}

#[test]
fn error_bad_options_exit_2() {
    let m = tiny();
    let mut c = sembed();
    c.args(["embed", "-m", m.to_str().unwrap(), "--max-length", "0", "x"]);
    let err = fails(&mut c, 2);
    assert!(err.contains("max length 0"), "{err}");
    let mut c = sembed();
    c.args(["embed", "-m", m.to_str().unwrap(), "--batch-size", "0", "x"]);
    assert!(fails(&mut c, 2).contains("batch size"));
}

#[test]
fn distill_writes_a_loadable_static_model_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m2v");
    let m = tiny();
    let run = sembed()
        .args([
            "distill",
            "-m",
            m.to_str().unwrap(),
            "--dims",
            "8",
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.stdout.is_empty(), "progress goes to stderr");
    assert!(String::from_utf8_lossy(&run.stderr).contains("distill: wrote"));
    for f in [
        "model.safetensors",
        "tokenizer.json",
        "config.json",
        "modules.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let info: serde_json::Value =
        serde_json::from_slice(&ok(&["info", "--json", "-m", out.to_str().unwrap()])).unwrap();
    assert_eq!(info["dimensions"], 8);
    assert_eq!(info["architecture"], "StaticModel (Model2Vec)");
    let rows = jsonl_vectors(&ok(&[
        "embed",
        "-m",
        out.to_str().unwrap(),
        "a man plays",
        "",
    ]));
    assert_eq!(rows.len(), 2);
    assert!(
        rows[1].1.iter().all(|&x| x == 0.0),
        "empty text embeds to zeros, as in model2vec"
    );

    let mut again = sembed();
    again.args([
        "distill",
        "-m",
        m.to_str().unwrap(),
        "--dims",
        "8",
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = fails(&mut again, 2);
    assert!(err.contains("exists and is not empty"), "{err}");
}

#[test]
fn distill_of_a_static_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = data("m2v-minilm-256");
    let mut c = sembed();
    c.args([
        "distill",
        "-m",
        m.to_str().unwrap(),
        "-o",
        dir.path().join("x").to_str().unwrap(),
    ]);
    let err = fails(&mut c, 1);
    assert!(err.contains("unsupported distillation source"), "{err}");
}

#[test]
fn truncation_note_and_no_truncate() {
    let m = tiny();
    let m = m.to_str().unwrap();
    let long = "word ".repeat(100); // the tiny model's limit is 64 tokens
    let out = sembed()
        .args(["embed", "-m", m, "short", &long])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("note: 1 of 2 texts") && err.contains("truncated"),
        "{err}"
    );
    let mut c = sembed();
    c.args(["embed", "-m", m, "--no-truncate", "short", &long]);
    let err = fails(&mut c, 1);
    assert!(
        err.contains("input 1") && err.contains("longer than 64 tokens"),
        "{err}"
    );
}

#[test]
fn precision_outputs() {
    let m = tiny();
    let m = m.to_str().unwrap();
    let rows = |p: &str| -> Vec<Vec<i64>> {
        String::from_utf8(ok(&[
            "embed",
            "-m",
            m,
            "--precision",
            p,
            "a cat",
            "a dog",
            "stocks",
        ]))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect()
        })
        .collect()
    };
    let floats = jsonl_vectors(&ok(&["embed", "-m", m, "a cat", "a dog", "stocks"]));
    let ub = rows("ubinary");
    assert_eq!(ub[0].len(), 4, "32 dims -> 4 bytes");
    for (q, (_, f)) in ub.iter().zip(&floats) {
        for (j, &x) in f.iter().enumerate() {
            assert_eq!(q[j / 8] as u8 & (0x80 >> (j % 8)) != 0, x > 0.0);
        }
    }
    let b = rows("binary");
    assert!(
        b.iter()
            .flatten()
            .zip(ub.iter().flatten())
            .all(|(s, u)| *s == u - 128)
    );
    for p in ["int8", "uint8"] {
        let q = rows(p);
        let (lo, hi) = if p == "int8" { (-128, 127) } else { (0, 255) };
        assert!(q.iter().flatten().all(|v| (lo..=hi).contains(v)), "{p}");
        assert_eq!(q[0].len(), 32);
    }
    // npy carries the integer dtype; raw f32 refuses quantized data.
    let npy = ok(&[
        "embed",
        "-m",
        m,
        "--precision",
        "int8",
        "-f",
        "npy",
        "a",
        "b",
    ]);
    assert!(String::from_utf8_lossy(&npy[..80]).contains("'descr': '|i1'"));
    // As sentence-transformers 6.2: int8/uint8 ranges cannot come from one embedding.
    let mut c = sembed();
    c.args(["embed", "-m", m, "--precision", "uint8", "a"]);
    assert!(fails(&mut c, 2).contains("single embedding"));
    let mut c = sembed();
    c.args(["embed", "-m", m, "--precision", "int8", "-f", "f32", "a"]);
    assert!(fails(&mut c, 2).contains("float32 only"));
}

#[test]
fn output_to_a_fifo_or_symlink_is_written_in_place() {
    // Renaming a temporary file over the target would replace a device (/dev/null!), FIFO or symlink
    // with a plain file. Checked on a FIFO and a symlink of our own.
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let m = tiny();
    ok(&[
        "embed",
        "-m",
        m.to_str().unwrap(),
        "-f",
        "f32",
        "-o",
        fifo.to_str().unwrap(),
        "x",
    ]);
    assert_eq!(reader.join().unwrap().len(), 32 * 4);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "still a FIFO"
    );

    let target = dir.path().join("real.jsonl");
    std::fs::write(
        &target,
        "old content that is longer than nothing\n".repeat(100),
    )
    .unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    ok(&[
        "embed",
        "-m",
        m.to_str().unwrap(),
        "-o",
        link.to_str().unwrap(),
        "x",
    ]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "still a symlink"
    );
    assert_eq!(jsonl_vectors(&std::fs::read(&target).unwrap()).len(), 1);
}
