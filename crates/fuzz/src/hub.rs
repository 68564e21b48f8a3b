//! The hub client against a hostile hub: every response (status line, headers, redirects, JSON,
//! sizes, bodies) comes from the input, served on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sembed_hub::{Hub, HubOptions, ModelRef};
use sha2::{Digest, Sha256};

/// Separates the scripted responses in an input.
const NEXT: &[u8] = b"\n=====\n";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "org/tiny";
/// Stands for another origin (a CDN) in an input: replaced by `localhost:<port>` of the same
/// server (the hub's address is `127.0.0.1:<port>`).
const CDN: &str = "cdn.invalid";

/// One scripted answer: given to the first request whose method is `method` and whose path ends
/// with `suffix`, once.
struct Answer {
    method: String,
    suffix: String,
    raw: Vec<u8>,
}

/// Set when a request to the other origin carried the token.
static TOKEN_LEAKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The answers of the current input (one input at a time).
static SCRIPT: Mutex<Vec<Answer>> = Mutex::new(Vec::new());

/// The loopback server answering from [`SCRIPT`] (404 when nothing matches), one response per
/// connection, then closed.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
        let addr = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // The rest of the request head (a request from this client has no body).
                let (mut h, mut cdn, mut auth) = (String::new(), false, false);
                while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                    let lower = h.to_ascii_lowercase();
                    cdn |= lower.starts_with("host: localhost");
                    auth |= lower.starts_with("authorization:");
                    h.clear();
                }
                if cdn && auth {
                    TOKEN_LEAKED.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let raw = {
                    let mut script = SCRIPT.lock().unwrap_or_else(|e| e.into_inner());
                    let at = script
                        .iter()
                        .position(|a| a.method == method && path.ends_with(&a.suffix));
                    at.map(|i| script.remove(i).raw)
                };
                let raw = raw.unwrap_or_else(|| {
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec()
                });
                let _ = stream.write_all(&raw);
            }
        });
        addr
    })
}

/// The files of the fake repo: the tiny BERT fixture's names and modules.json (which decides
/// what is downloaded), the other files cut to their first 64 bytes (the client only stores them;
/// small inputs keep the fuzzer fast).
fn repo_files() -> Vec<(&'static str, Vec<u8>)> {
    crate::model::fixture_files()
        .map(|(name, mut b)| {
            if name != "modules.json" {
                b.truncate(64);
            }
            (name, b)
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// Seeds for [`hub_response`]: what the hub answers for a whole download of the fixture (the
/// revision's file list, then HEAD and GET of each file), and the same with the safetensors file
/// behind a redirect to another host, as the hub's CDN does.
pub fn hub_seeds() -> Vec<Vec<u8>> {
    let files = repo_files();
    let siblings: Vec<serde_json::Value> = files
        .iter()
        .map(|(f, _)| serde_json::json!({ "rfilename": f }))
        .collect();
    let info = serde_json::json!({ "id": REPO, "sha": COMMIT, "siblings": siblings }).to_string();
    let mut answers: Vec<(String, String, Vec<u8>)> = vec![(
        "GET".into(),
        format!("/api/models/{REPO}/revision/main"),
        response(
            "200 OK",
            &[
                ("Content-Type", "application/json".into()),
                ("Content-Length", info.len().to_string()),
            ],
            info.as_bytes(),
        ),
    )];
    for (f, bytes) in &files {
        let etag = format!("\"{}\"", sha256_hex(bytes));
        let suffix = format!("/resolve/{COMMIT}/{f}");
        let head = [
            ("ETag", etag),
            ("X-Repo-Commit", COMMIT.to_string()),
            ("Content-Length", bytes.len().to_string()),
        ];
        answers.push((
            "HEAD".into(),
            suffix.clone(),
            response("200 OK", &head, b""),
        ));
        let get = [("Content-Length", bytes.len().to_string())];
        answers.push(("GET".into(), suffix, response("200 OK", &get, bytes)));
    }
    let join = |answers: &[(String, String, Vec<u8>)]| {
        let mut out = Vec::new();
        for (i, (m, s, raw)) in answers.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(NEXT);
            }
            out.extend_from_slice(format!("{m} {s}\n").as_bytes());
            out.extend_from_slice(raw);
        }
        out
    };
    let plain = join(&answers);
    // The weights behind a redirect to another origin (a CDN), with the LFS headers.
    let (_, st) = files
        .iter()
        .find(|(f, _)| *f == "model.safetensors")
        .expect("weights");
    let sha = sha256_hex(st);
    for a in &mut answers {
        if a.1.ends_with("/model.safetensors") && a.0 == "HEAD" {
            a.2 = response(
                "302 Found",
                &[
                    ("Location", format!("http://{CDN}/cdn/weights")),
                    ("X-Linked-Etag", format!("\"{sha}\"")),
                    ("X-Linked-Size", st.len().to_string()),
                    ("X-Repo-Commit", COMMIT.into()),
                    ("ETag", "\"abc\"".into()),
                ],
                b"",
            );
        }
    }
    let get = [("Content-Length", st.len().to_string())];
    answers.push((
        "GET".into(),
        "/cdn/weights".into(),
        response("200 OK", &get, st),
    ));
    vec![plain, join(&answers)]
}

/// `b` with every `from` replaced by `to`.
fn replace(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Whether every path under `root` (symbolic links followed where they point) stays inside it.
fn contained(root: &Path) -> bool {
    let Ok(canon) = root.canonicalize() else {
        return false;
    };
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            if meta.is_symlink() {
                let target = std::fs::read_link(&p).expect("link");
                // Resolve textually: the target may not exist (yet).
                let mut at = p.parent().expect("parent").to_path_buf();
                for c in target.components() {
                    match c {
                        std::path::Component::ParentDir => {
                            at.pop();
                        }
                        std::path::Component::Normal(n) => at.push(n),
                        std::path::Component::RootDir => at = "/".into(),
                        _ => {}
                    }
                }
                let at = at.canonicalize().unwrap_or(at);
                if !at.starts_with(&canon) && !at.starts_with(root) {
                    return false;
                }
            } else if meta.is_dir() {
                todo.push(p);
            }
        }
    }
    true
}

/// A download of `org/tiny` from a hub whose every answer is scripted by the input: answers
/// separated by `\n=====\n`, each a line `METHOD PATH-SUFFIX` then the raw HTTP response given to
/// the first such request (404 when none is left). Errors are fine; a panic, a file written
/// outside the cache folder, a link pointing out of it, a folder returned outside it, the token
/// sent to another origin or shown in an error is a finding. Whether the download succeeded.
pub fn hub_response(data: &[u8]) -> bool {
    // One input at a time: the script and the leak flag are the process's (tests run in threads).
    static ONE: Mutex<()> = Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let addr = server();
    let mut script = Vec::new();
    let mut rest = data;
    loop {
        let (entry, next) = match rest.windows(NEXT.len()).position(|w| w == NEXT) {
            Some(i) => (&rest[..i], Some(&rest[i + NEXT.len()..])),
            None => (rest, None),
        };
        let nl = entry
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(entry.len());
        let key = String::from_utf8_lossy(&entry[..nl]);
        let mut key = key.splitn(2, ' ');
        let raw = entry.get(nl + 1..).unwrap_or_default();
        script.push(Answer {
            method: key.next().unwrap_or("").to_string(),
            suffix: key.next().unwrap_or("").to_string(),
            raw: replace(
                raw,
                CDN.as_bytes(),
                format!("localhost:{}", addr.port()).as_bytes(),
            ),
        });
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    *SCRIPT.lock().unwrap_or_else(|e| e.into_inner()) = script;
    let dir = tempfile::tempdir().expect("temporary directory");
    let cache = dir.path().join("cache");
    let hub = Hub::new(HubOptions {
        cache_dir: cache.clone(),
        endpoint: format!("http://{addr}"),
        token: Some("hf_secret".into()),
        offline: false,
        retries: 0,
        backoff: Duration::ZERO,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
    });
    let model: ModelRef = REPO.parse().expect("a model name");
    let result = hub.download(&model, &mut ());
    SCRIPT.lock().unwrap_or_else(|e| e.into_inner()).clear();
    assert!(
        !TOKEN_LEAKED.swap(false, std::sync::atomic::Ordering::SeqCst),
        "the token was sent to another origin"
    );
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "cache")
        .collect();
    assert!(outside.is_empty(), "written beside the cache: {outside:?}");
    assert!(
        !cache.exists() || contained(&cache),
        "a path leaves the cache"
    );
    match result {
        Ok(snap) => {
            assert!(
                snap.starts_with(&cache),
                "{} is outside the cache",
                snap.display()
            );
            true
        }
        Err(e) => {
            assert!(
                !e.to_string().contains("hf_secret"),
                "the token in an error: {e}"
            );
            false
        }
    }
}
