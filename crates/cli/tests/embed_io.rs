//! `sembed embed`'s input and output as a user meets them: streaming from a pipe, `-o -`, JSON
//! Lines detection, ids and texts in the output, csv headers, progress only on a terminal, quiet,
//! colour, prompts on static models, and errors raised before any work.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command as Std, Stdio};

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

fn ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A line written to a child's stdin comes back as a vector while stdin is still open: rows are
/// written as input arrives, in order.
#[test]
fn embed_streams_from_a_pipe() {
    let mut child = Std::new(env!("CARGO_BIN_EXE_sembed"))
        .args(["embed", "-m", tiny().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A CLI that waited for the end of stdin would hang here: end it after a minute instead.
    let pid = child.id().to_string();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            let _ = Std::new("kill").arg(&pid).status();
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut rows = Vec::new();
    for (i, text) in ["first line", "second line", "third"].iter().enumerate() {
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("no row for line {i} while stdin is open: {line:?}"));
        assert_eq!(v["index"], i, "rows in input order");
        rows.push(v["embedding"].clone());
    }
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.is_empty(), "{rest}");
    assert!(child.wait().unwrap().success());
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    // The same vectors as a one-shot run.
    let all = ok(sembed().args([
        "embed",
        "-m",
        tiny().to_str().unwrap(),
        "first line",
        "second line",
        "third",
    ]));
    let want: Vec<_> = json_lines(&all.stdout)
        .into_iter()
        .map(|v| v["embedding"].clone())
        .collect();
    assert_eq!(rows, want);
}

/// A long piped input: every row, in order, equal to embedding the texts as arguments.
#[test]
fn long_piped_input_keeps_order() {
    let texts: Vec<String> = (0..20_000).map(|i| format!("text {i} {}", i % 7)).collect();
    let out = ok(sembed()
        .args(["embed", "-m", tiny().to_str().unwrap(), "-f", "f32"])
        .write_stdin(texts.join("\n")));
    let got: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got.len(), texts.len() * 32);
    for i in [0, 8191, 8192, 12_345, 19_999] {
        let one = ok(sembed().args([
            "embed",
            "-m",
            tiny().to_str().unwrap(),
            "-f",
            "f32",
            &texts[i],
        ]));
        let want: Vec<f32> = one
            .stdout
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let d = got[i * 32..(i + 1) * 32]
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(d < 1e-5, "text {i}: {d}");
    }
}

#[test]
fn dash_output_is_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(sembed().current_dir(dir.path()).args([
        "embed",
        "-m",
        tiny().to_str().unwrap(),
        "-o",
        "-",
        "hello",
    ]));
    assert_eq!(json_lines(&out.stdout).len(), 1);
    assert!(!dir.path().join("-").exists(), "no file named -");
}

/// `--input x.jsonl` reads JSON Lines; `--input-format lines` reads the same file as raw lines.
#[test]
fn jsonl_input_is_detected_and_ids_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("docs.jsonl");
    std::fs::write(
        &f,
        "{\"id\": \"a\", \"text\": \"first doc\"}\n\"second doc\"\n{\"id\": 7, \"text\": \"third\", \"x\": 1}\n",
    )
    .unwrap();
    let m = tiny();
    let m = m.to_str().unwrap();
    let out = ok(sembed().args(["embed", "-m", m, "-i", f.to_str().unwrap(), "--with-text"]));
    let rows = json_lines(&out.stdout);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], "a");
    assert!(rows[1].get("id").is_none());
    assert_eq!(rows[2]["id"], 7);
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["first doc", "second doc", "third"]);
    let as_args = ok(sembed().args(["embed", "-m", m, "first doc", "second doc", "third"]));
    for (a, b) in rows.iter().zip(json_lines(&as_args.stdout)) {
        assert_eq!(a["embedding"], b["embedding"]);
    }
    // Without --with-text no text; raw lines when told so.
    let out = ok(sembed().args(["embed", "-m", m, "-i", f.to_str().unwrap()]));
    assert!(json_lines(&out.stdout)[0].get("text").is_none());
    let raw = ok(sembed().args([
        "embed",
        "-m",
        m,
        "-i",
        f.to_str().unwrap(),
        "--input-format",
        "lines",
        "--with-text",
    ]));
    assert_eq!(
        json_lines(&raw.stdout)[0]["text"],
        "{\"id\": \"a\", \"text\": \"first doc\"}"
    );
}

#[test]
fn csv_header_and_text_column() {
    let m = tiny();
    let out = ok(sembed().args([
        "embed",
        "-m",
        m.to_str().unwrap(),
        "-f",
        "csv",
        "--header",
        "--with-text",
        "say \"hi\"",
        "b",
    ]));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[0], "text");
    assert_eq!(header[1], "e0");
    assert_eq!(header.len(), 33);
    assert!(lines[1].starts_with("\"say \"\"hi\"\"\","), "{}", lines[1]);
    assert_eq!(lines[2].split(',').count(), 33);
}

/// Quantized output streams when each row's codes depend on that row only, and gives the same
/// bytes as the whole-input path.
#[test]
fn binary_precision_streams_the_same_codes() {
    let m = tiny();
    let m = m.to_str().unwrap();
    let texts = "a\nb c\nd e f\n";
    let piped = ok(sembed()
        .args(["embed", "-m", m, "--precision", "ubinary", "-f", "npy"])
        .write_stdin(texts));
    let args = ok(sembed().args([
        "embed",
        "-m",
        m,
        "--precision",
        "ubinary",
        "-f",
        "npy",
        "a",
        "b c",
        "d e f",
    ]));
    assert_eq!(piped.stdout, args.stdout);
    assert!(String::from_utf8_lossy(&piped.stdout[..128]).contains("'shape': (3, 4)"));
}

/// Progress is drawn on a terminal (here a pseudo-terminal from `script`) for a large input,
/// and never when stderr is a pipe or with --quiet.
#[test]
fn progress_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("many.txt");
    let texts: Vec<String> = (0..30_000).map(|i| format!("line {i}")).collect();
    std::fs::write(&f, texts.join("\n")).unwrap();
    let m = tiny();
    let args = [
        "embed",
        "-m",
        m.to_str().unwrap(),
        "-i",
        f.to_str().unwrap(),
        "-f",
        "f32",
        "-o",
        dir.path()
            .join("out.f32")
            .to_str()
            .unwrap()
            .to_string()
            .leak(),
    ];
    let piped = ok(sembed().args(args));
    assert!(
        piped.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let cmd = |extra: &str| {
        format!(
            "{} {} {extra}",
            env!("CARGO_BIN_EXE_sembed"),
            args.iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let tty = Std::new("script")
        .args(["-qec", &cmd(""), "/dev/null"])
        .output()
        .expect("script (util-linux) runs a command on a pseudo-terminal");
    assert!(tty.status.success());
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(shown.contains("texts embedded"), "{shown}");
    let quiet = Std::new("script")
        .args(["-qec", &cmd("--quiet"), "/dev/null"])
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert!(
        !String::from_utf8_lossy(&quiet.stdout).contains("texts embedded"),
        "--quiet draws nothing"
    );
}

/// Notes go to stderr, plain unless asked for colour; `--quiet` drops them; NO_COLOR wins over a
/// terminal but not over `--color always`.
#[test]
fn notes_quiet_and_colour() {
    let m = tiny();
    let m = m.to_str().unwrap();
    let long = "word ".repeat(100);
    let out = ok(sembed().args(["embed", "-m", m, &long]));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("sembed: note: 1 of 1 texts"), "{err}");
    assert!(!err.contains('\x1b'), "no colour on a pipe");
    let out = ok(sembed().args(["embed", "-q", "-m", m, &long]));
    assert!(out.stderr.is_empty());
    let out = ok(sembed().args(["embed", "--color", "always", "-m", m, &long]));
    assert!(String::from_utf8(out.stderr).unwrap().contains("\x1b["));
    let tty = Std::new("script")
        .args([
            "-qec",
            &format!(
                "{} embed -m '{m}' '{long}' >/dev/null",
                env!("CARGO_BIN_EXE_sembed")
            ),
            "/dev/null",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(
        shown.contains("note:") && !shown.contains("\x1b["),
        "{shown:?}"
    );
}

/// Static models take --prompt as prepended text and refuse an unknown --prompt-name (exit 2).
#[test]
fn static_model_prompts() {
    let m = data("m2v-minilm-256");
    let m = m.to_str().unwrap();
    let with = ok(sembed().args(["embed", "-m", m, "--prompt", "query: ", "hi"]));
    let by_hand = ok(sembed().args(["embed", "-m", m, "query: hi"]));
    let plain = ok(sembed().args(["embed", "-m", m, "hi"]));
    assert_eq!(with.stdout, by_hand.stdout);
    assert_ne!(with.stdout, plain.stdout);
    let out = sembed()
        .args(["embed", "-m", m, "--prompt-name", "doesnotexist", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("this model has no prompts"), "{err}");
    assert!(out.stdout.is_empty());
}

/// A bad option fails before any input is read (here stdin never closes).
#[test]
fn options_are_checked_before_reading_input() {
    let mut child = Std::new(env!("CARGO_BIN_EXE_sembed"))
        .args(["embed", "-m", tiny().to_str().unwrap(), "--max-length", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
}

#[test]
fn distill_dims_beyond_the_model_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = sembed()
        .args([
            "distill",
            "-m",
            tiny().to_str().unwrap(),
            "--dims",
            "1000",
            "-o",
            dir.path().join("m2v").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("dims 1000") && err.contains("32"), "{err}");
    assert!(!err.contains("PCA"), "fails before any work: {err}");
    assert!(!dir.path().join("m2v").exists());
}

/// An over-long text with truncation off is named by its line (blank JSON Lines counted).
#[test]
fn too_long_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("docs.jsonl");
    let long = "word ".repeat(100);
    std::fs::write(&f, format!("\"short\"\n\n{{\"text\": \"{long}\"}}\n")).unwrap();
    let out = sembed()
        .args([
            "embed",
            "-m",
            tiny().to_str().unwrap(),
            "--no-truncate",
            "-i",
            f.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("docs.jsonl:3: input 1") && err.contains("longer than 64 tokens"),
        "{err}"
    );
    let out = sembed()
        .args([
            "embed",
            "-m",
            tiny().to_str().unwrap(),
            "--no-truncate",
            "ok",
            &long,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("argument 2: input 1"), "{err}");
}

/// npy to a redirected stdout is written as it goes and fixed at the end, like `-o FILE`.
#[test]
fn npy_to_a_redirected_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let m = tiny();
    let m = m.to_str().unwrap();
    let file = dir.path().join("o.npy");
    ok(sembed().args([
        "embed",
        "-m",
        m,
        "-f",
        "npy",
        "-o",
        file.to_str().unwrap(),
        "a",
        "b",
    ]));
    let redirected = dir.path().join("r.npy");
    let status = Std::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' embed -m '{m}' -f npy a b > '{}'",
            env!("CARGO_BIN_EXE_sembed"),
            redirected.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(&redirected).unwrap(),
        std::fs::read(&file).unwrap()
    );
    // Appending (where seeking does not move writes): the rows are held and written after the
    // header at the end; the same bytes.
    let appended = dir.path().join("a.npy");
    let status = Std::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' embed -m '{m}' -f npy a b >> '{}'",
            env!("CARGO_BIN_EXE_sembed"),
            appended.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(&appended).unwrap(),
        std::fs::read(&file).unwrap()
    );
}

/// A calibration file of the wrong width is refused before anything is read.
#[test]
fn calibration_width_is_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let cal = dir.path().join("cal.npy");
    let m = tiny();
    let m = m.to_str().unwrap();
    // 16-wide calibration for a 32-wide model.
    ok(sembed().args([
        "embed",
        "-m",
        m,
        "--truncate-dim",
        "16",
        "-f",
        "npy",
        "-o",
        cal.to_str().unwrap(),
        "a",
        "b",
    ]));
    let out = sembed()
        .args([
            "embed",
            "-m",
            m,
            "--precision",
            "int8",
            "--calibration",
            cal.to_str().unwrap(),
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("calibration embeddings of 16 dimensions for vectors of 32"),
        "{err}"
    );
}

/// A line longer than the reader's limit (64 MiB: far past any model's token limit) is an error
/// naming it, not a buffer grown until the allocation fails; a line under it is embedded
/// (truncated to the model's limit).
#[test]
fn a_line_over_the_limit_is_an_error() {
    let limit = sembed_cli::input::MAX_LINE;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    f.write_all(b"first line\n").unwrap();
    let chunk = b"word ".repeat(1 << 16);
    for _ in 0..=limit / chunk.len() {
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    let out = sembed()
        .args(["embed", "-q", "-m"])
        .arg(tiny())
        .arg("--input")
        .arg(&big)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "big.txt:2: a line over the limit of {limit} bytes"
        )),
        "{err}"
    );
    let fits = dir.path().join("fits.txt");
    std::fs::write(&fits, b"word ".repeat(1 << 20)).unwrap();
    ok(sembed()
        .args(["embed", "-q", "-m"])
        .arg(tiny())
        .arg("--input")
        .arg(&fits));
}
