//! `sembed serve` as a process: the one `listening on` line, the access log, the API key from the
//! environment, several models by name, SIGTERM → exit 0, and startup errors as one line with
//! the right exit code. (The routes themselves are tested in crates/server/tests.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn sembed() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("sembed"));
    c.env(
        "XDG_CACHE_HOME",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/xdg-cache"),
    );
    c.env_remove("SEMBED_API_KEY");
    c
}

struct Served {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

/// Starts `sembed serve ARGS --port 0` and waits for its `listening on` line; every stderr line
/// before it is returned too.
// The child is waited for by `terminate`, or killed and waited for by `Drop`.
#[allow(clippy::zombie_processes)]
fn serve(args: &[&str], env: &[(&str, &str)]) -> (Served, Vec<String>) {
    let mut cmd = sembed();
    cmd.arg("serve")
        .args(args)
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr: ChildStderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut before = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no `listening on` line; saw {before:?}"));
        if let Some(url) = line.strip_prefix("listening on ") {
            let url = url.to_string();
            return (
                Served {
                    child,
                    url,
                    lines: rx,
                },
                before,
            );
        }
        before.push(line);
    }
}

impl Served {
    fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    fn request(&self, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    fn embed(&self, model: &str, headers: &str) -> (u16, String) {
        self.request(
            "POST",
            "/v1/embeddings",
            &format!("Content-Type: application/json\r\n{headers}"),
            &format!(r#"{{"model": "{model}", "input": "hello"}}"#),
        )
    }

    /// SIGTERM; the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no exit within 10 s of SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn one_ready_line_access_log_and_clean_exit_on_sigterm() {
    let (mut s, before) = serve(&[], &[]);
    assert!(
        before.is_empty(),
        "nothing before the ready line: {before:?}"
    );
    assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.url);
    let (status, _) = s.request("GET", "/health", "", "");
    assert_eq!(status, 200);
    let (status, body) = s.embed("all-MiniLM-L6-v2", "");
    assert_eq!(status, 200, "{body}");
    let log = s.lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(log.contains("GET /health 200"), "{log}");
    let log = s.lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(log.contains("POST /v1/embeddings 200"), "{log}");
    let status = s.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn quiet_api_key_from_environment_and_several_models() {
    let m2v = sembed_testkit::data("m2v-minilm-256");
    let (mut s, before) = serve(
        &["--quiet", "-m", "builtin", "-m", m2v.to_str().unwrap()],
        &[("SEMBED_API_KEY", "k3y")],
    );
    assert!(before.is_empty(), "{before:?}");
    // /health needs no key; the rest do.
    assert_eq!(s.request("GET", "/health", "", "").0, 200);
    assert_eq!(s.embed("builtin", "").0, 401);
    let auth = "Authorization: Bearer k3y\r\n";
    let (status, body) = s.embed("builtin", auth);
    assert_eq!(status, 200, "{body}");
    assert!(body.matches(',').count() >= 384, "{body}");
    // The built-in model answers to its hub id too; the folder to the path given and its name.
    assert_eq!(
        s.embed("sentence-transformers/all-MiniLM-L6-v2", auth).0,
        200
    );
    let (status, body) = s.embed("m2v-minilm-256", auth);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("\"model\":\"{}\"", m2v.display())),
        "{body}"
    );
    assert_eq!(s.embed("other", auth).0, 404);
    // --quiet: no access log.
    assert!(s.lines.recv_timeout(Duration::from_millis(300)).is_err());
    assert_eq!(s.terminate().code(), Some(0));
}

#[test]
fn startup_errors_are_one_line() {
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = sembed().args(["serve", "--port", &port]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    // A limit of zero is a usage error.
    let out = sembed()
        .args(["serve", "--port", "0", "--max-batch-tokens", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max batch tokens must be at least 1"));
    // A model that cannot load.
    let out = sembed()
        .args(["serve", "--port", "0", "-m", "/no/such/model"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/model"));
}
