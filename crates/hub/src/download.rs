//! HTTP against the hub: model metadata, file metadata, and resumable, verified downloads.
//!
//! Written over `ureq` rather than taken from `hf-hub`: hf-hub 0.4 sends the token to whatever host an
//! LFS file redirects to, does not verify checksums, resume, or retry; hf-hub 1.x is async (tokio +
//! reqwest), a runtime this CLI does not want on its start-up path. Redirects are followed here by
//! hand so that `Authorization` only ever goes to the endpoint's own origin.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use ureq::http::{Response, StatusCode};

use super::Progress;
use super::name::ModelRef;
use crate::error::{Error, Result};

/// How the client talks to the hub.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    pub endpoint: String,
    pub token: Option<String>,
    pub retries: u32,
    pub backoff: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

pub(crate) struct Client {
    agent: ureq::Agent,
    cfg: ClientConfig,
    origin: String,
}

/// `GET /api/models/{repo}/revision/{rev}`: the commit and the file list.
#[derive(Debug, Deserialize)]
pub(crate) struct RepoInfo {
    pub sha: String,
    #[serde(default)]
    pub siblings: Vec<Sibling>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Sibling {
    pub rfilename: String,
}

/// What a `HEAD …/resolve/…` tells about one file.
#[derive(Debug)]
pub(crate) struct FileMeta {
    pub commit: Option<String>,
    /// Normalized: no quotes, no `W/`. The sha256 for LFS files.
    pub etag: String,
    pub size: Option<u64>,
    /// Where the bytes are: the resolve URL itself or the (CDN) URL it redirects to.
    pub url: String,
}

/// One try's outcome: transient failures are retried with backoff, the rest are final.
enum Try<T> {
    Done(T),
    Again(String),
    Fail(Error),
}

const MAX_REDIRECTS: usize = 5;

/// Most bytes of a file whose size the hub does not announce (an LFS file always has its
/// `X-Linked-Size`; configs and tokenizers are at most tens of MB).
const MAX_UNSIZED_BYTES: u64 = 256 << 20;

impl Client {
    pub(crate) fn new(cfg: ClientConfig) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_per_read(Some(cfg.read_timeout))
            .user_agent(concat!("sembed/", env!("CARGO_PKG_VERSION")))
            .build();
        let origin = origin(&cfg.endpoint).to_string();
        Client {
            agent: ureq::Agent::new_with_config(config),
            cfg,
            origin,
        }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.cfg.endpoint
    }

    /// The commit a revision points to, and the repo's files.
    pub(crate) fn repo_info(&self, model: &ModelRef) -> Result<RepoInfo> {
        let url = format!(
            "{}/api/models/{}/revision/{}",
            self.cfg.endpoint,
            model.repo_id,
            encode(&model.revision, false)
        );
        self.retrying(&url, || {
            // A renamed repo answers with a redirect on the same host: follow it (with the token).
            let mut at = url.clone();
            let mut hops = 0;
            let resp = loop {
                let resp = match self.request("GET", &at, None) {
                    Ok(r) => r,
                    Err(e) => return classify(e, &at),
                };
                match header(&resp, "location").map(|l| absolute(&at, l)) {
                    Some(next)
                        if resp.status().is_redirection()
                            && origin(&next) == self.origin
                            && hops < MAX_REDIRECTS =>
                    {
                        hops += 1;
                        at = next;
                    }
                    _ => break resp,
                }
            };
            match resp.status().as_u16() {
                200 => {}
                s => return self.status_error(model, None, s, &resp),
            }
            let mut body = resp.into_body();
            match body.with_config().limit(64 << 20).read_to_vec() {
                Ok(bytes) => match serde_json::from_slice::<RepoInfo>(&bytes) {
                    Ok(info) => Try::Done(info),
                    Err(e) => Try::Fail(Error::Network {
                        url: url.clone(),
                        reason: format!("unexpected answer: {e}"),
                    }),
                },
                Err(e) => Try::Again(e.to_string()),
            }
        })
    }

    /// `HEAD` of a file at a commit; `None` when the repo has no such file.
    pub(crate) fn file_meta(
        &self,
        model: &ModelRef,
        commit: &str,
        file: &str,
    ) -> Result<Option<FileMeta>> {
        let first = format!(
            "{}/{}/resolve/{}/{}",
            self.cfg.endpoint,
            model.repo_id,
            encode(commit, false),
            encode(file, true)
        );
        self.retrying(&first, || {
            let mut url = first.clone();
            for _ in 0..=MAX_REDIRECTS {
                let resp = match self.request("HEAD", &url, None) {
                    Ok(r) => r,
                    Err(e) => return classify(e, &url),
                };
                let status = resp.status();
                let location = header(&resp, "location").map(|l| absolute(&url, l));
                // Same-origin redirects (renamed repos) are followed; a redirect elsewhere is where the
                // bytes are, and this response's headers describe them.
                if status.is_redirection()
                    && let Some(loc) = &location
                    && origin(loc) == self.origin
                    && header(&resp, "x-linked-etag").is_none()
                {
                    url = loc.clone();
                    continue;
                }
                if status == StatusCode::NOT_FOUND {
                    // A missing file in an existing repo; a missing repo fails earlier, in repo_info.
                    return Try::Done(None);
                }
                if !(status.is_success() || status.is_redirection()) {
                    return self.status_error(model, Some(file), status.as_u16(), &resp);
                }
                let etag = header(&resp, "x-linked-etag").or_else(|| header(&resp, "etag"));
                let Some(etag) = etag.map(normalize_etag) else {
                    return Try::Fail(Error::Network {
                        url,
                        reason: "the answer has no ETag (is HF_ENDPOINT a Hugging Face hub?)"
                            .into(),
                    });
                };
                let size = header(&resp, "x-linked-size")
                    .or_else(|| header(&resp, "content-length"))
                    .and_then(|s| s.parse().ok());
                let url = if status.is_redirection() {
                    location.unwrap_or(url)
                } else {
                    url
                };
                return Try::Done(Some(FileMeta {
                    commit: header(&resp, "x-repo-commit").map(str::to_string),
                    etag,
                    size,
                    url,
                }));
            }
            Try::Fail(Error::Network {
                url: first.clone(),
                reason: "too many redirects".into(),
            })
        })
    }

    /// Downloads `meta` into `blob`: through `<blob>.incomplete`, resuming what an earlier run left,
    /// checking size and (for LFS files) sha256, renaming into place at the end.
    pub(crate) fn download(
        &self,
        meta: &FileMeta,
        blob: &Path,
        label: &str,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let partial = PathBuf::from(format!("{}.incomplete", blob.display()));
        let result = self.retrying(&meta.url, || {
            self.download_once(meta, &partial, label, progress)
        });
        progress.finish();
        result?;
        if is_sha256(&meta.etag) {
            let actual = sha256_file(&partial)?;
            if actual != meta.etag {
                let _ = std::fs::remove_file(&partial);
                return Err(Error::Checksum {
                    file: label.to_string(),
                    expected: meta.etag.clone(),
                    actual,
                });
            }
        }
        std::fs::rename(&partial, blob).map_err(|e| Error::io(blob, e))
    }

    fn download_once(
        &self,
        meta: &FileMeta,
        partial: &Path,
        label: &str,
        progress: &mut dyn Progress,
    ) -> Try<()> {
        let mut have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if meta.size.is_some_and(|s| have > s) {
            have = 0;
        }
        if meta.size == Some(have) && have > 0 {
            return Try::Done(()); // complete on disk already; verified by the caller
        }
        let mut url = meta.url.clone();
        let mut redirects = 0;
        let resp = loop {
            let range = (have > 0).then_some(have);
            let resp = match self.request("GET", &url, range) {
                Ok(r) => r,
                Err(e) => return classify(e, &url),
            };
            if resp.status().is_redirection()
                && let Some(loc) = header(&resp, "location")
            {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Try::Fail(Error::Network {
                        url,
                        reason: "too many redirects".into(),
                    });
                }
                url = absolute(&url, loc);
                continue;
            }
            break resp;
        };
        let status = resp.status().as_u16();
        let append = match status {
            206 => {
                // Resume only if the server starts where the partial file ends.
                let start = header(&resp, "content-range")
                    .and_then(|r| r.strip_prefix("bytes "))
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if start != Some(have) {
                    let _ = std::fs::remove_file(partial);
                    return Try::Again("the server resumed at the wrong offset".into());
                }
                true
            }
            200 => false,
            416 => {
                let _ = std::fs::remove_file(partial);
                return Try::Again("the server refused to resume".into());
            }
            s if s == 429 || s >= 500 => return Try::Again(format!("HTTP {s}")),
            s => {
                return Try::Fail(Error::Network {
                    url,
                    reason: format!("HTTP {s} while downloading {label}"),
                });
            }
        };
        let mut file = match OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(partial)
        {
            Ok(f) => f,
            Err(e) => return Try::Fail(Error::io(partial, e)),
        };
        let mut done = if append { have } else { 0 };
        // A server sending more than it announced (or, unannounced, more than any config or
        // tokenizer file is) would fill the disk: stop there.
        let limit = meta.size.unwrap_or(MAX_UNSIZED_BYTES);
        progress.start(label, meta.size, done);
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                // The partial file keeps what arrived; the next try resumes after it.
                Err(e) => return Try::Again(format!("connection lost after {done} bytes: {e}")),
            };
            if done + n as u64 > limit {
                drop(file);
                let _ = std::fs::remove_file(partial);
                return Try::Fail(Error::Network {
                    url,
                    reason: format!(
                        "the server sent more than the {limit} bytes {} for {label}",
                        if meta.size.is_some() {
                            "it announced"
                        } else {
                            "allowed"
                        }
                    ),
                });
            }
            if let Err(e) = file.write_all(&buf[..n]) {
                return Try::Fail(Error::io(partial, e));
            }
            done += n as u64;
            progress.advance(n as u64);
        }
        if let Err(e) = file.sync_all() {
            return Try::Fail(Error::io(partial, e));
        }
        match meta.size {
            Some(s) if s != done => Try::Again(format!("got {done} of {s} bytes")),
            _ => Try::Done(()),
        }
    }

    fn request(
        &self,
        method: &str,
        url: &str,
        range: Option<u64>,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("Accept-Encoding", "identity");
        // The token is for the hub only, never for the CDN an LFS file redirects to.
        if let Some(token) = &self.cfg.token
            && origin(url) == self.origin
        {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(from) = range {
            req = req.header("Range", format!("bytes={from}-"));
        }
        let req = req.body(()).map_err(ureq::Error::Http)?;
        self.agent.run(req)
    }

    fn retrying<T>(&self, url: &str, mut f: impl FnMut() -> Try<T>) -> Result<T> {
        let mut delay = self.cfg.backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            match f() {
                Try::Done(t) => return Ok(t),
                Try::Fail(e) => return Err(e),
                Try::Again(reason) if tries > self.cfg.retries => {
                    return Err(Error::Network {
                        url: url.to_string(),
                        reason: format!("{reason} (gave up after {tries} tries)"),
                    });
                }
                Try::Again(_) => {
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    fn status_error<T>(
        &self,
        model: &ModelRef,
        file: Option<&str>,
        status: u16,
        resp: &Response<ureq::Body>,
    ) -> Try<T> {
        if status == 429 || status >= 500 {
            return Try::Again(format!("HTTP {status}"));
        }
        let what = match file {
            Some(f) => format!("{model}: {f}"),
            None => model.to_string(),
        };
        let code = header(resp, "x-error-code").unwrap_or_default();
        let hint = match status {
            401 if self.cfg.token.is_none() => {
                "the repo is private, gated or does not exist; if you have access, set HF_TOKEN (or run `huggingface-cli login`)".to_string()
            }
            401 => "the token was refused (HF_TOKEN or the saved login): check it, and that it can read this repo".to_string(),
            403 => "access denied: for a gated model accept its terms on the hub, and use a token that may read it".to_string(),
            404 if code == "RevisionNotFound" => format!("revision `{}` does not exist", model.revision),
            404 => format!(
                "no such model on {} (check the name; `sembed models aliases` lists short names)",
                self.cfg.endpoint
            ),
            s => format!("unexpected HTTP {s}"),
        };
        Try::Fail(Error::Hub { what, status, hint })
    }
}

/// Lock shared with Python's `filelock` (flock on `.locks/…/<etag>.lock`): two processes never write
/// the same blob at once.
pub(crate) struct BlobLock {
    _file: File,
}

impl BlobLock {
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::io(path, std::io::Error::last_os_error()));
        }
        Ok(BlobLock { _file: file })
    }
}

fn classify<T>(e: ureq::Error, url: &str) -> Try<T> {
    match e {
        ureq::Error::HostNotFound => Try::Fail(Error::Network {
            url: url.to_string(),
            reason: "host not found (no network? HF_HUB_OFFLINE=1 or --offline use the cache only)"
                .into(),
        }),
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_) => Try::Again(e.to_string()),
        e => Try::Fail(Error::Network {
            url: url.to_string(),
            reason: e.to_string(),
        }),
    }
}

fn header<'a>(resp: &'a Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let dir = &base[..base.rfind('/').map_or(base.len(), |i| i + 1)];
        format!("{dir}{location}")
    }
}

fn normalize_etag(e: &str) -> String {
    e.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Percent-encodes a path segment (keeping `/` when `keep_slash`), as Python's `quote`.
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            origin("https://huggingface.co/a/b"),
            "https://huggingface.co"
        );
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(absolute("http://h:1/a/b", "/c"), "http://h:1/c");
        assert_eq!(absolute("http://h:1/a/b", "http://x/y"), "http://x/y");
        assert_eq!(absolute("http://h:1/a/b", "c"), "http://h:1/a/c");
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(
            encode("1_Pooling/config.json", true),
            "1_Pooling/config.json"
        );
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
    }
}
