//! A loopback imitation of the Hugging Face hub for download tests: the `api/models` and `resolve`
//! endpoints on one port, and LFS files redirected to a "CDN" on another port (another origin), with
//! `X-Repo-Commit`, `ETag`/`X-Linked-Etag`, `X-Linked-Size` and `Range` as the real hub sends them.
//! Faults (dropped connections, corrupted bodies, 500s) are injected per test. Every request is logged.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Request {
    /// "hub" or "cdn".
    pub server: &'static str,
    /// Arrived through a proxy tunnel (CONNECT).
    pub proxied: bool,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Repo {
    pub commit: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Default)]
pub struct Faults {
    /// (file, bytes): the CDN sends only this many bytes of the file, then closes — `times` times.
    pub drop_after: Option<(String, usize)>,
    pub drop_times: usize,
    /// The CDN flips a byte of this file.
    pub corrupt: Option<String>,
    /// The next N API calls answer 500.
    pub api_500s: usize,
    /// The CDN sends this file's headers and first half, goes silent (connection open) for 3 s, then
    /// sends garbage for the rest — once.
    pub stall: Option<String>,
    /// The CDN sends this file followed by 1 MiB more than its headers announce (no
    /// Content-Length of its own, as a stream that never ends would).
    pub oversend: Option<String>,
}

#[derive(Default)]
struct State {
    repos: BTreeMap<String, Repo>,
    /// Renamed repos: old id → new id (answered with same-host 307s, as the hub does).
    renamed: BTreeMap<String, String>,
    token: Option<String>,
    faults: Faults,
    log: Vec<Request>,
}

pub struct FakeHub {
    pub url: String,
    pub cdn_url: String,
    state: Arc<Mutex<State>>,
}

pub fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The git blob id the hub uses as ETag for non-LFS files (sha1 of `"blob <len>\0<bytes>"`); a
/// 40-hex stand-in is enough here: sha256 of the same, cut to 40 characters.
pub fn git_etag(b: &[u8]) -> String {
    let mut v = format!("blob {}\0", b.len()).into_bytes();
    v.extend_from_slice(b);
    sha256_hex(&v)[..40].to_string()
}

fn is_lfs(name: &str) -> bool {
    name.ends_with(".safetensors")
}

impl FakeHub {
    pub fn start() -> FakeHub {
        let state = Arc::new(Mutex::new(State::default()));
        let hub = TcpListener::bind("127.0.0.1:0").unwrap();
        let cdn = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", hub.local_addr().unwrap());
        let cdn_url = format!("http://{}", cdn.local_addr().unwrap());
        for (listener, server) in [(hub, "hub"), (cdn, "cdn")] {
            let state = state.clone();
            let cdn_url = cdn_url.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let state = state.clone();
                    let cdn_url = cdn_url.clone();
                    std::thread::spawn(move || serve(stream, server, &state, &cdn_url));
                }
            });
        }
        FakeHub {
            url,
            cdn_url,
            state,
        }
    }

    /// Serves a model folder as repo `id` at `commit`.
    pub fn add_repo_dir(&self, id: &str, commit: &str, dir: &Path) {
        self.add_repo(id, commit, read_tree(dir));
    }

    pub fn add_repo(&self, id: &str, commit: &str, files: BTreeMap<String, Vec<u8>>) {
        let repo = Repo {
            commit: commit.to_string(),
            files,
        };
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(id.to_string(), repo);
    }

    /// Makes `old` a former name of `new`.
    pub fn rename(&self, old: &str, new: &str) {
        let mut st = self.state.lock().unwrap();
        st.renamed.insert(old.to_string(), new.to_string());
    }

    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_string());
    }

    pub fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.state.lock().unwrap().faults)
    }

    /// Requests so far (and clears the log).
    pub fn take_log(&self) -> Vec<Request> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }
}

/// Lays out `dir`'s files in a Hugging Face cache at `root` as Python's `huggingface_hub` does
/// (blobs named by their ETag: sha256 for safetensors, the git blob id otherwise; relative snapshot
/// symlinks; `refs/main`), and returns the snapshot folder.
pub fn lay_out_cache(root: &Path, repo_id: &str, commit: &str, dir: &Path) -> std::path::PathBuf {
    let repo = root.join(format!("models--{}", repo_id.replace('/', "--")));
    let snap = repo.join("snapshots").join(commit);
    for (rel, bytes) in &read_tree(dir) {
        let etag = if rel.ends_with(".safetensors") {
            sha256_hex(bytes)
        } else {
            git_etag(bytes)
        };
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs").join(&etag), bytes).unwrap();
        let pointer = snap.join(rel);
        std::fs::create_dir_all(pointer.parent().unwrap()).unwrap();
        let ups = "../".repeat(2 + rel.matches('/').count());
        std::os::unix::fs::symlink(format!("{ups}blobs/{etag}"), &pointer).unwrap();
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    snap
}

/// Every file under `dir`, by path relative to it (`/`-separated), with its bytes.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn serve(stream: TcpStream, server: &'static str, state: &Mutex<State>, cdn_url: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some((method, target, headers)) = read_head(&mut reader) else {
        return;
    };
    // As a proxy: `CONNECT host:port` opens a tunnel, then one request arrives through it, for the
    // hub or the CDN depending on the tunnel's target.
    let (server, proxied, method, target, headers) = if method == "CONNECT" {
        let _ = (&stream).write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let cdn_port = cdn_url.rsplit(':').next().unwrap_or_default();
        let server = if target.ends_with(&format!(":{cdn_port}")) {
            "cdn"
        } else {
            "hub"
        };
        let Some((m, t, h)) = read_head(&mut reader) else {
            return;
        };
        (server, true, m, t, h)
    } else {
        (server, false, method, target, headers)
    };
    let req = Request {
        server,
        proxied,
        method,
        path: target.split('?').next().unwrap_or_default().to_string(),
        headers,
    };
    let mut st = state.lock().unwrap();
    st.log.push(req.clone());
    let resp = if server == "hub" {
        hub_response(&mut st, &req, cdn_url)
    } else {
        cdn_response(&mut st, &req)
    };
    drop(st);
    resp.send(stream, req.method == "HEAD");
}

type Head = (String, String, Vec<(String, String)>);

fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some((method, target, headers))
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Announce the full length but send only this many bytes, then close.
    cut: Option<usize>,
    /// After `cut` bytes, keep the connection open and silent for this long, then send garbage.
    stall_for: Option<std::time::Duration>,
    /// No Content-Length: the body ends when the connection closes.
    omit_length: bool,
}

impl Resp {
    fn new(status: u16, body: Vec<u8>) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body,
            cut: None,
            stall_for: None,
            omit_length: false,
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    fn send(self, mut s: TcpStream, head_only: bool) {
        let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", self.status);
        let has_len = self.headers.iter().any(|(k, _)| k == "Content-Length");
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_len && !self.omit_length {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str("\r\n");
        let _ = s.write_all(out.as_bytes());
        if !head_only {
            let n = self.cut.unwrap_or(self.body.len()).min(self.body.len());
            let _ = s.write_all(&self.body[..n]);
        }
        let _ = s.flush();
        if let Some(d) = self.stall_for {
            // A client still waiting after the stall gets wrong bytes (caught by the checksum).
            std::thread::sleep(d);
            let n = self.cut.unwrap_or(0).min(self.body.len());
            let _ = s.write_all(&vec![0xab; self.body.len() - n]);
        }
        let _ = s.flush();
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

fn hub_response(st: &mut State, req: &Request, cdn_url: &str) -> Resp {
    for (old, new) in &st.renamed {
        for prefix in ["/api/models/", "/"] {
            if let Some(rest) = req.path.strip_prefix(&format!("{prefix}{old}/")) {
                return Resp::new(307, Vec::new())
                    .header("Location", format!("{prefix}{new}/{rest}"));
            }
        }
    }
    if let Some(t) = &st.token
        && req.header("authorization") != Some(&format!("Bearer {t}"))
    {
        return Resp::new(
            401,
            b"{\"error\":\"Invalid username or password.\"}".to_vec(),
        );
    }
    if let Some(rest) = req.path.strip_prefix("/api/models/") {
        if st.faults.api_500s > 0 {
            st.faults.api_500s -= 1;
            return Resp::new(500, b"oops".to_vec());
        }
        // `revision/{rev}` (model info) or `tree/{rev}` (the file listing Python 2.x uses).
        let Some((id, rev, tree)) = rest
            .split_once("/revision/")
            .map(|(i, r)| (i, r, false))
            .or_else(|| rest.split_once("/tree/").map(|(i, r)| (i, r, true)))
        else {
            return Resp::new(404, Vec::new());
        };
        let Some(repo) = st.repos.get(id) else {
            return Resp::new(404, Vec::new()).header("X-Error-Code", "RepoNotFound");
        };
        if rev != "main" && rev != repo.commit {
            return Resp::new(404, Vec::new()).header("X-Error-Code", "RevisionNotFound");
        }
        if tree {
            let entries: Vec<_> = repo
                .files
                .iter()
                .map(|(f, b)| {
                    let mut e = serde_json::json!({ "type": "file", "path": f, "size": b.len(), "oid": git_etag(b) });
                    if is_lfs(f) {
                        e["lfs"] = serde_json::json!({ "oid": sha256_hex(b), "size": b.len(), "pointerSize": 134 });
                    }
                    e
                })
                .collect();
            return Resp::new(200, serde_json::to_vec(&entries).unwrap());
        }
        let siblings: Vec<_> = repo
            .files
            .keys()
            .map(|f| serde_json::json!({ "rfilename": f }))
            .collect();
        let body = serde_json::json!({ "id": id, "sha": repo.commit, "siblings": siblings });
        return Resp::new(200, body.to_string().into_bytes());
    }
    // /{org}/{name}/resolve/{rev}/{file}
    let parts: Vec<&str> = req.path.trim_start_matches('/').splitn(5, '/').collect();
    if parts.len() != 5 || parts[2] != "resolve" {
        return Resp::new(404, Vec::new());
    }
    let id = format!("{}/{}", parts[0], parts[1]);
    let Some(repo) = st.repos.get(&id) else {
        return Resp::new(404, Vec::new()).header("X-Error-Code", "RepoNotFound");
    };
    if parts[3] != "main" && parts[3] != repo.commit {
        return Resp::new(404, Vec::new()).header("X-Error-Code", "RevisionNotFound");
    }
    let Some(body) = repo.files.get(parts[4]) else {
        return Resp::new(404, Vec::new()).header("X-Error-Code", "EntryNotFound");
    };
    let commit = repo.commit.clone();
    if is_lfs(parts[4]) {
        let sha = sha256_hex(body);
        Resp::new(302, Vec::new())
            .header("Location", format!("{cdn_url}/lfs/{sha}"))
            .header("X-Repo-Commit", commit)
            .header("ETag", format!("\"{}\"", git_etag(body)))
            .header("X-Linked-Etag", format!("\"{sha}\""))
            .header("X-Linked-Size", body.len().to_string())
    } else {
        Resp::new(200, body.clone())
            .header("X-Repo-Commit", commit)
            .header("ETag", format!("\"{}\"", git_etag(body)))
    }
}

fn cdn_response(st: &mut State, req: &Request) -> Resp {
    let Some(sha) = req.path.strip_prefix("/lfs/") else {
        return Resp::new(404, Vec::new());
    };
    let found = st
        .repos
        .values()
        .flat_map(|r| r.files.iter())
        .find(|(_, b)| sha256_hex(b) == sha);
    let Some((name, body)) = found.map(|(n, b)| (n.clone(), b.clone())) else {
        return Resp::new(404, Vec::new());
    };
    let mut body = body;
    if st.faults.corrupt.as_deref() == Some(name.as_str()) {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let total = body.len();
    let (status, start) = match req.header("range").and_then(|r| r.strip_prefix("bytes=")) {
        Some(r) => {
            let start: usize = r.trim_end_matches('-').parse().unwrap_or(0);
            (206, start.min(total))
        }
        None => (200, 0),
    };
    let mut resp = Resp::new(status, body[start..].to_vec());
    if status == 206 {
        resp = resp.header(
            "Content-Range",
            format!("bytes {start}-{}/{total}", total.saturating_sub(1)),
        );
    }
    if let Some((file, n)) = &st.faults.drop_after
        && *file == name
        && st.faults.drop_times > 0
    {
        st.faults.drop_times -= 1;
        resp.cut = Some(n.saturating_sub(start));
    }
    if st.faults.oversend.as_deref() == Some(name.as_str()) {
        resp.body.extend(std::iter::repeat_n(0u8, 1 << 20));
        resp.omit_length = true;
    }
    if st.faults.stall.as_deref() == Some(name.as_str()) {
        st.faults.stall = None;
        resp.cut = Some((total - start) / 2);
        resp.stall_for = Some(std::time::Duration::from_secs(3));
    }
    resp
}
