//! The server's request parsing, every route, through a real `sembed serve` on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use sembed_server::{Config, ModelSpec, Server};

/// Every route with a body, and the ones without (asked with a body anyway).
const ROUTES: [(&str, &str); 14] = [
    ("POST", "/v1/embeddings"),
    ("POST", "/embed"),
    ("POST", "/similarity"),
    ("POST", "/tokenize"),
    ("POST", "/"),
    ("POST", "/api/embed"),
    ("POST", "/api/embeddings"),
    ("GET", "/v1/models"),
    ("GET", "/info"),
    ("GET", "/health"),
    ("GET", "/api/tags"),
    ("GET", "/api/version"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "",
];

/// The server, started once per process on a free loopback port with the tiny BERT fixture
/// (named `tiny`, and also `all-MiniLM-L6-v2` as clients often send).
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        // Its own copy: the server owns the models it serves.
        let model = ModelSpec::new("tiny", crate::load_tiny()).alias("all-MiniLM-L6-v2");
        let config = Config {
            host: "127.0.0.1".into(),
            port: 0,
            http_threads: 1,
            ..Default::default()
        };
        let server = Server::bind(config, vec![model]).expect("bind on loopback");
        let addr = server.local_addr();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            server
                .run(std::future::pending(), move |_| {
                    let _ = tx.send(());
                })
                .expect("server runs");
        });
        rx.recv().expect("server ready");
        addr
    })
}

/// Seeds for [`server_request`]: a valid request body for each route with one.
pub fn server_seeds() -> Vec<Vec<u8>> {
    let bodies: [&[u8]; 7] = [
        br#"{"input": ["A man is playing a guitar.", "hello"], "model": "tiny", "encoding_format": "float"}"#,
        br#"{"inputs": ["A man is playing a guitar."], "normalize": true, "truncate": true}"#,
        br#"{"inputs": {"source_sentence": "a cat", "sentences": ["a dog", "a car"]}}"#,
        br#"{"inputs": "hello world", "add_special_tokens": true}"#,
        br#"{"inputs": "hello"}"#,
        br#"{"model": "tiny", "input": ["why is the sky blue?"], "truncate": true}"#,
        br#"{"model": "tiny", "prompt": "why is the sky blue?"}"#,
    ];
    let mut seeds: Vec<Vec<u8>> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut s = vec![i as u8, 0];
            s.extend_from_slice(b);
            s
        })
        .collect();
    seeds.push(vec![7, 0]); // GET /v1/models
    seeds.push(vec![0, 0, b'x']); // not JSON
    seeds
}

/// One HTTP/1.1 request to a real server: `data[0]` picks the route (method and path), `data[1]`
/// the Content-Type; the rest is the body. The server must answer every request with a
/// well-formed response of a 2xx or 4xx status (503 when busy); a 5xx, a dropped connection (a
/// handler panic) or no answer within 30 s is a finding. Returns the status.
pub fn server_request(data: &[u8]) -> u16 {
    let [route, ct, body @ ..] = data else {
        return 0;
    };
    let (method, path) = ROUTES[*route as usize % ROUTES.len()];
    let content_type = CONTENT_TYPES[*ct as usize % CONTENT_TYPES.len()];
    let addr = server();
    let mut s = TcpStream::connect(addr).expect("connect to the server");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if !content_type.is_empty() {
        req.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (413) and close before reading a large body: a failed write is fine.
    let _ = s.write_all(&bytes);
    let mut resp = Vec::new();
    let read = s.read_to_end(&mut resp);
    assert!(
        resp.starts_with(b"HTTP/1.1 "),
        "no response to {method} {path} ({} body bytes): {read:?}, {:?}",
        body.len(),
        String::from_utf8_lossy(&resp)
    );
    let status: u16 = std::str::from_utf8(&resp[9..12.min(resp.len())])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    assert!(
        (200..500).contains(&status) || status == 503,
        "{method} {path} → {status}: {}",
        String::from_utf8_lossy(&resp)
    );
    status
}
