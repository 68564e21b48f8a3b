//! The server in process, on a loopback port, through raw HTTP/1.1: every route's shapes, the
//! vectors (equal to the engine's, bit for bit, whatever the batching; within 1e-5 cosine of
//! sentence-transformers' with the real f32 model), every limit and error status, timeouts,
//! cancellation and graceful shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sembed::{EmbedOptions, Embedder};
use sembed_server::{Config, ModelSpec, Server};
use serde_json::{Value, json};

struct Running {
    addr: SocketAddr,
    stop: Option<tokio_free::Stop>,
    thread: Option<JoinHandle<Result<(), sembed_server::Error>>>,
}

/// A shutdown trigger without a tokio dependency in the test: a future polling a channel.
mod tokio_free {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    #[derive(Default)]
    struct Inner {
        fired: bool,
        waker: Option<Waker>,
    }

    pub struct Stop(Arc<Mutex<Inner>>);
    pub struct Wait(Arc<Mutex<Inner>>);

    pub fn pair() -> (Stop, Wait) {
        let inner = Arc::new(Mutex::new(Inner::default()));
        (Stop(inner.clone()), Wait(inner))
    }

    impl Stop {
        pub fn fire(self) {
            let mut i = self.0.lock().unwrap();
            i.fired = true;
            if let Some(w) = i.waker.take() {
                w.wake();
            }
        }
    }

    impl Future for Wait {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut i = self.0.lock().unwrap();
            if i.fired {
                Poll::Ready(())
            } else {
                i.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn start(config: Config, models: Vec<ModelSpec>) -> Running {
    let server = Server::bind(Config { port: 0, ..config }, models).expect("bind");
    let addr = server.local_addr();
    let (stop, wait) = tokio_free::pair();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        server.run(wait, move |_| {
            let _ = tx.send(());
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("ready");
    Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    }
}

impl Running {
    fn stop(&mut self) -> Result<(), sembed_server::Error> {
        if let Some(s) = self.stop.take() {
            s.fire();
        }
        self.thread.take().map_or(Ok(()), |t| t.join().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn builtin() -> ModelSpec {
    ModelSpec::new("all-MiniLM-L6-v2", Embedder::builtin().unwrap()).alias("builtin")
}

fn default_server() -> Running {
    start(Config::default(), vec![builtin()])
}

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// One request on its own connection (`Connection: close`); reads the whole response.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers[9..12].parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap().iter().map(floats).collect()
}

fn engine(texts: &[&str], opts: &EmbedOptions) -> Vec<Vec<f32>> {
    let e = Embedder::builtin().unwrap().embed(texts, opts).unwrap();
    e.rows().map(<[f32]>::to_vec).collect()
}

const TEXTS: &[&str] = &[
    "A man is playing a guitar.",
    "Someone plays music.",
    "The stock market fell sharply today.",
    "ß and ü and 東京 and 🙂",
];

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn openai_shapes_and_vectors() {
    let s = default_server();
    let want = engine(TEXTS, &EmbedOptions::default());
    let r = post(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "whatever", "input": TEXTS}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "all-MiniLM-L6-v2");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), TEXTS.len());
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], i);
        // The server's batcher gives the engine's bits (vectors do not depend on their batch).
        assert_eq!(floats(&d["embedding"]), want[i], "row {i}");
    }
    // Real token counts: what the model consumed, specials included.
    let model = Embedder::builtin().unwrap();
    let tokens = model
        .tokenize(TEXTS, &EmbedOptions::default())
        .unwrap()
        .total_tokens();
    assert_eq!(v["usage"]["prompt_tokens"], tokens);
    assert_eq!(v["usage"]["total_tokens"], tokens);

    // base64: little-endian float32, the same numbers.
    let r = post(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "m", "input": TEXTS[0], "encoding_format": "base64"}),
    );
    assert_eq!(r.status, 200);
    let b = r.json()["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, want[0]);

    // dimensions: the first N, normalized again.
    let r = post(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "m", "input": [TEXTS[1]], "dimensions": 64, "user": "u1"}),
    );
    assert_eq!(r.status, 200);
    let got = floats(&r.json()["data"][0]["embedding"]);
    assert_eq!(got.len(), 64);
    assert!((norm(&got) - 1.0).abs() < 1e-5);
    let n = norm(&want[1][..64]);
    for (g, w) in got.iter().zip(&want[1][..64]) {
        assert!((g - w / n).abs() < 1e-6);
    }

    // Token ids of the model's own tokenizer: one array, or several — the same vectors as the
    // texts they tokenize.
    let ids: Vec<Vec<u32>> = TEXTS[..2]
        .iter()
        .map(|t| {
            let all = model.token_ids(t, &EmbedOptions::default()).unwrap();
            all[1..all.len() - 1].to_vec()
        })
        .collect();
    let r = post(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "m", "input": ids}),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(floats(&v["data"][0]["embedding"]), want[0]);
    assert_eq!(floats(&v["data"][1]["embedding"]), want[1]);
    let r = post(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "m", "input": ids[0]}),
    );
    assert_eq!(floats(&r.json()["data"][0]["embedding"]), want[0]);

    let r = get(s.addr, "/v1/models");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "all-MiniLM-L6-v2");
    assert_eq!(v["data"][0]["object"], "model");
}

#[test]
fn tei_shapes_and_vectors() {
    let s = default_server();
    let want = engine(TEXTS, &EmbedOptions::default());
    // A single string is still a list of one vector, as TEI answers.
    let r = post(s.addr, "/embed", &json!({"inputs": TEXTS[0]}));
    assert_eq!(r.status, 200);
    assert_eq!(matrix(&r.json()), vec![want[0].clone()]);
    let r = post(s.addr, "/embed", &json!({"inputs": TEXTS}));
    assert_eq!(matrix(&r.json()), want);

    // normalize: false gives the pooled vector as is.
    let raw = engine(
        TEXTS,
        &EmbedOptions {
            normalize: Some(false),
            ..Default::default()
        },
    );
    let r = post(
        s.addr,
        "/embed",
        &json!({"inputs": TEXTS, "normalize": false, "truncate": true, "truncation_direction": "Right"}),
    );
    assert_eq!(r.status, 200);
    let got = matrix(&r.json());
    assert_eq!(got, raw);
    assert!((norm(&got[0]) - 1.0).abs() > 1e-3, "not normalized");

    // dimensions with normalize: cut, then unit length.
    let r = post(
        s.addr,
        "/embed",
        &json!({"inputs": [TEXTS[2]], "dimensions": 32}),
    );
    let got = &matrix(&r.json())[0];
    assert_eq!(got.len(), 32);
    assert!((norm(got) - 1.0).abs() < 1e-5);

    // /similarity and the compatibility route, both ways InferenceClient posts.
    let body = json!({"inputs": {"source_sentence": TEXTS[0], "sentences": &TEXTS[1..]}});
    let r = post(s.addr, "/similarity", &body);
    assert_eq!(r.status, 200);
    let scores = floats(&r.json());
    assert_eq!(scores.len(), 3);
    for (i, sc) in scores.iter().enumerate() {
        let c = sembed::cosine(&want[0], &want[i + 1]);
        assert!((sc - c).abs() < 1e-6, "{sc} vs {c}");
    }
    let mut with_params = body.clone();
    with_params["parameters"] = json!({});
    let r = post(s.addr, "/", &with_params);
    assert_eq!(floats(&r.json()), scores);
    let r = post(s.addr, "/", &json!({"inputs": TEXTS[1]}));
    assert_eq!(matrix(&r.json()), vec![want[1].clone()]);
    let r = post(
        s.addr,
        "/",
        &json!({"inputs": TEXTS[1], "parameters": {"normalize": false}}),
    );
    assert_eq!(matrix(&r.json()), vec![raw[1].clone()]);

    // /tokenize: the ids the model consumes, with their strings.
    let model = Embedder::builtin().unwrap();
    let r = post(s.addr, "/tokenize", &json!({"inputs": ["Hello world!"]}));
    assert_eq!(r.status, 200);
    let toks = r.json()[0].as_array().unwrap().clone();
    let ids: Vec<u64> = toks.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    let want_ids: Vec<u64> = model
        .token_ids("Hello world!", &EmbedOptions::default())
        .unwrap()
        .into_iter()
        .map(u64::from)
        .collect();
    assert_eq!(ids, want_ids);
    let texts: Vec<&str> = toks.iter().map(|t| t["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["[CLS]", "hello", "world", "!", "[SEP]"]);
    assert_eq!(toks[0]["special"], true);
    assert_eq!(toks[1]["special"], false);
    let r = post(
        s.addr,
        "/tokenize",
        &json!({"inputs": "Hello world!", "add_special_tokens": false}),
    );
    assert_eq!(r.json()[0].as_array().unwrap().len(), 3);

    let r = get(s.addr, "/info");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["model_id"], "all-MiniLM-L6-v2");
    assert_eq!(v["max_input_length"], 256);
    assert_eq!(v["model_type"]["embedding"]["pooling"], "mean");
    assert_eq!(v["max_batch_tokens"], Config::default().max_batch_tokens);
    assert_eq!(v["dimension"], 384);

    let r = get(s.addr, "/health");
    assert_eq!(r.status, 200);
}

#[test]
fn ollama_shapes() {
    let s = default_server();
    let want = engine(TEXTS, &EmbedOptions::default());
    let r = post(
        s.addr,
        "/api/embed",
        &json!({"model": "all-minilm", "input": TEXTS}),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["model"], "all-minilm");
    assert_eq!(matrix(&v["embeddings"]), want);
    assert!(v["prompt_eval_count"].as_u64().unwrap() > 0);
    assert!(v["total_duration"].as_u64().is_some());
    assert!(v["load_duration"].as_u64().is_some());
    let r = post(
        s.addr,
        "/api/embed",
        &json!({"model": "m", "input": TEXTS[3], "keep_alive": "5m", "options": {"num_ctx": 8}}),
    );
    assert_eq!(matrix(&r.json()["embeddings"]), vec![want[3].clone()]);
    let r = post(
        s.addr,
        "/api/embeddings",
        &json!({"model": "m", "prompt": TEXTS[2]}),
    );
    assert_eq!(floats(&r.json()["embedding"]), want[2]);
    let r = get(s.addr, "/api/tags");
    assert_eq!(r.json()["models"][0]["name"], "all-MiniLM-L6-v2");
    // Ollama truncates by default; a long text is cut, not refused.
    let long = "word ".repeat(600);
    let r = post(s.addr, "/api/embed", &json!({"model": "m", "input": long}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["prompt_eval_count"], 256);
    let r = post(
        s.addr,
        "/api/embed",
        &json!({"model": "m", "input": long, "truncate": false}),
    );
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("longer than 256 tokens")
    );
}

/// Vectors from the real f32 all-MiniLM-L6-v2 through each API equal sentence-transformers'.
#[test]
fn real_model_matches_sentence_transformers() {
    let dir = sembed_testkit::real_model();
    let refs: Vec<(String, Vec<f32>)> =
        sembed_testkit::read_jsonl(&sembed_testkit::data("minilm-dev.jsonl"))
            .into_iter()
            .filter(|r| !r.text.is_empty())
            .map(|r| (r.text, r.embedding))
            .collect();
    let texts: Vec<&str> = refs.iter().map(|(t, _)| t.as_str()).collect();
    let model = ModelSpec::new("all-MiniLM-L6-v2", Embedder::from_dir(&dir).unwrap());
    let s = start(
        Config {
            auto_truncate: true,
            ..Default::default()
        },
        vec![model],
    );
    let check = |got: Vec<Vec<f32>>, what: &str| {
        assert_eq!(got.len(), refs.len());
        let g: Vec<&[f32]> = got.iter().map(Vec::as_slice).collect();
        let w: Vec<&[f32]> = refs.iter().map(|(_, e)| e.as_slice()).collect();
        let (min, at) = sembed_testkit::min_cosine(&g, &w);
        assert!(min >= 0.99999, "{what}: min cosine {min} at {at}");
    };
    let v = post(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "x", "input": texts}),
    )
    .json();
    check(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| floats(&d["embedding"]))
            .collect(),
        "openai",
    );
    check(
        matrix(&post(s.addr, "/embed", &json!({"inputs": texts})).json()),
        "tei",
    );
    check(
        matrix(&post(s.addr, "/", &json!({"inputs": texts})).json()),
        "compat",
    );
    check(
        matrix(
            &post(s.addr, "/api/embed", &json!({"model": "x", "input": texts})).json()["embeddings"],
        ),
        "ollama",
    );
}

#[test]
fn requests_are_split_and_joined_in_order() {
    // A budget of 64 tokens: 120 texts of ~10 tokens become many pieces; concurrent clients'
    // pieces share batches. Every row must still be its own text's, bit for bit.
    let s = start(
        Config {
            max_batch_tokens: 64,
            ..Default::default()
        },
        vec![builtin()],
    );
    let texts: Vec<String> = (0..120)
        .map(|i| format!("sentence number {i} about item {}", i * 7))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let want = engine(&refs, &EmbedOptions::default());
    let addr = s.addr;
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let texts = texts.clone();
            let want = want.clone();
            std::thread::spawn(move || {
                // Each client sends a different rotation, so batches mix requests.
                let mut order: Vec<usize> = (0..texts.len()).collect();
                order.rotate_left(t * 17);
                let input: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
                let r = post(addr, "/embed", &json!({"inputs": input}));
                assert_eq!(r.status, 200);
                let got = matrix(&r.json());
                for (k, &i) in order.iter().enumerate() {
                    assert_eq!(got[k], want[i], "client {t}, row {k}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The batches stayed within the budget (a histogram's largest bucket with anything in it).
    let metrics = String::from_utf8(get(addr, "/metrics").body).unwrap();
    let over: u64 = metrics
        .lines()
        .find(|l| l.starts_with("sembed_batch_tokens_bucket{le=\"64.0\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("bucket le=64");
    let count: u64 = metrics
        .lines()
        .find(|l| l.starts_with("sembed_batch_tokens_count"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    let tokens = Embedder::builtin()
        .unwrap()
        .tokenize(&refs, &EmbedOptions::default())
        .unwrap()
        .total_tokens();
    assert!(
        count as usize >= 6 * tokens / 64,
        "{count} batches for {} tokens",
        6 * tokens
    );
    assert_eq!(over, count, "every batch within 64 tokens");
}

#[test]
fn errors_have_each_family_shape_and_status() {
    let s = start(
        Config {
            max_client_batch_size: 4,
            payload_limit: 4096,
            ..Default::default()
        },
        vec![builtin()],
    );
    let a = s.addr;
    // 400: no input, malformed JSON.
    let r = post(a, "/v1/embeddings", &json!({"model": "m", "input": []}));
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!(e["type"], "invalid_request_error");
    assert!(e["message"].is_string() && e.get("param").is_some() && e.get("code").is_some());
    let r = post(a, "/embed", &json!({"inputs": []}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error_type"], "empty");
    // An empty text is embedded, as sentence-transformers embeds it (`[CLS] [SEP]`).
    let r = post(a, "/embed", &json!({"inputs": ""}));
    assert_eq!(r.status, 200);
    assert_eq!(matrix(&r.json()), engine(&[""], &EmbedOptions::default()));
    let r = request(
        a,
        "POST",
        "/api/embed",
        &[("Content-Type", "application/json")],
        b"{\"model\": ",
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
    // 415: not declared JSON.
    let r = request(
        a,
        "POST",
        "/embed",
        &[("Content-Type", "text/plain")],
        b"{\"inputs\": \"x\"}",
    );
    assert_eq!(r.status, 415);
    let r = request(a, "POST", "/v1/embeddings", &[], b"{\"input\": \"x\"}");
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    // 413: body over the payload limit (declared, and chunked without a length), too many inputs.
    let big = json!({"inputs": "x".repeat(5000)});
    let r = post(a, "/embed", &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error_type"], "validation");
    let r = chunked_post(a, "/embed", big.to_string().as_bytes());
    assert_eq!(r.status, 413);
    let r = post(
        a,
        "/v1/embeddings",
        &json!({"input": ["a", "b", "c", "d", "e"]}),
    );
    assert_eq!(r.status, 413);
    // 422: too long without truncation, token id out of range, wrong field type, bad options.
    let long = "word ".repeat(300);
    let r = post(a, "/embed", &json!({"inputs": long}));
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("longer than 256 tokens")
    );
    let r = post(a, "/embed", &json!({"inputs": long, "truncate": true}));
    assert_eq!(r.status, 200);
    let r = post(a, "/v1/embeddings", &json!({"input": [[101, 30522]]}));
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("30522")
    );
    let r = post(a, "/v1/embeddings", &json!({"input": {"text": "x"}}));
    assert_eq!(r.status, 422);
    let r = post(
        a,
        "/v1/embeddings",
        &json!({"input": "x", "encoding_format": "int8"}),
    );
    assert_eq!(r.status, 422);
    let r = post(
        a,
        "/v1/embeddings",
        &json!({"input": "x", "dimensions": 385}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["error"]["param"], "dimensions");
    let r = post(
        a,
        "/embed",
        &json!({"inputs": "x", "truncation_direction": "Left"}),
    );
    assert_eq!(r.status, 422);
    let r = post(a, "/embed", &json!({"inputs": "x", "prompt_name": "query"}));
    assert_eq!(r.status, 422);
    // 404 and 405.
    let r = get(a, "/v2/nothing");
    assert_eq!(r.status, 404);
    let r = get(a, "/embed");
    assert_eq!(r.status, 405);
}

fn chunked_post(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    for c in body.chunks(1000) {
        let _ = s.write_all(format!("{:x}\r\n", c.len()).as_bytes());
        let _ = s.write_all(c);
        let _ = s.write_all(b"\r\n");
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

#[test]
fn unknown_model_with_several_served() {
    let m2v = Embedder::from_dir(sembed_testkit::data("m2v-minilm-256")).unwrap();
    let s = start(
        Config::default(),
        vec![builtin(), ModelSpec::new("m2v", m2v).alias("static-one")],
    );
    let r = post(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "nope", "input": "x"}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    let r = post(
        s.addr,
        "/api/embed",
        &json!({"model": "nope", "input": "x"}),
    );
    assert_eq!(r.status, 404);
    // Picked by name or alias; no name is the first.
    let dim = |r: Reply| r.json()["data"][0]["embedding"].as_array().unwrap().len();
    assert_eq!(
        dim(post(
            s.addr,
            "/v1/embeddings",
            &json!({"model": "static-one", "input": "x"})
        )),
        256
    );
    assert_eq!(
        dim(post(
            s.addr,
            "/v1/embeddings",
            &json!({"model": "builtin", "input": "x"})
        )),
        384
    );
    assert_eq!(
        dim(post(s.addr, "/v1/embeddings", &json!({"input": "x"}))),
        384
    );
    let want = Embedder::from_dir(sembed_testkit::data("m2v-minilm-256"))
        .unwrap()
        .embed(&["static text"], &EmbedOptions::default())
        .unwrap();
    let r = post(
        s.addr,
        "/v1/embeddings",
        &json!({"model": "m2v", "input": ["static text"]}),
    );
    assert_eq!(floats(&r.json()["data"][0]["embedding"]), want.row(0));
    let v = get(s.addr, "/v1/models").json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
}

#[test]
fn api_key_on_every_route_but_health() {
    let s = start(
        Config {
            api_key: Some("s3cret".into()),
            ..Default::default()
        },
        vec![builtin()],
    );
    let a = s.addr;
    assert_eq!(get(a, "/health").status, 200);
    let body = json!({"model": "m", "input": "x"}).to_string();
    let r = request(
        a,
        "POST",
        "/v1/embeddings",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );
    let wrong = [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer s3creT"),
    ];
    let r = request(a, "POST", "/v1/embeddings", &wrong, body.as_bytes());
    assert_eq!(r.status, 401);
    let r = request(a, "POST", "/api/embed", &wrong, body.as_bytes());
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (401, "wrong API key")
    );
    let r = request(a, "POST", "/embed", &wrong, b"{\"inputs\": \"x\"}");
    assert_eq!(
        (r.status, r.json()["error_type"].as_str().unwrap()),
        (401, "unauthorized")
    );
    for path in [
        "/info",
        "/metrics",
        "/v1/models",
        "/openapi.json",
        "/api/tags",
    ] {
        assert_eq!(get(a, path).status, 401, "{path}");
    }
    let right = [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer s3cret"),
    ];
    let r = request(a, "POST", "/v1/embeddings", &right, body.as_bytes());
    assert_eq!(r.status, 200);
    let r = request(
        a,
        "GET",
        "/metrics",
        &[("Authorization", "bearer s3cret")],
        b"",
    );
    assert_eq!(r.status, 200);
}

/// Opens a POST whose body never comes: admitted (admission is before the body), it holds a
/// slot until the body timeout.
fn hold_slot(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    s
}

fn in_flight(addr: SocketAddr) -> u64 {
    metric(addr, "sembed_requests_in_flight") as u64
}

#[test]
fn overload_is_429_at_once_and_slow_bodies_time_out() {
    let s = start(
        Config {
            max_concurrent_requests: 2,
            body_read_timeout: Duration::from_secs(2),
            ..Default::default()
        },
        vec![builtin()],
    );
    let a = s.addr;
    let mut held = vec![hold_slot(a), hold_slot(a)];
    let t0 = Instant::now();
    while in_flight(a) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(10), "slots not taken");
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    let r = post(a, "/v1/embeddings", &json!({"input": "x"}));
    assert_eq!(r.status, 429);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "429 must be immediate"
    );
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        post(a, "/embed", &json!({"inputs": "x"})).json()["error_type"],
        "overloaded"
    );
    // GETs are not queued work: still answered.
    assert_eq!(get(a, "/health").status, 200);
    // The held requests end with 408 once their body is overdue; the slots come back.
    for h in &mut held {
        h.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = h.read(&mut buf) {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if raw.windows(4).any(|w| w == b"\r\n\r\n") && raw.ends_with(b"}") {
                break;
            }
        }
        assert_eq!(parse(&raw).status, 408, "{}", String::from_utf8_lossy(&raw));
    }
    let t0 = Instant::now();
    while in_flight(a) > 0 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(post(a, "/embed", &json!({"inputs": "x"})).status, 200);
}

#[test]
fn idle_and_slow_header_connections_are_closed() {
    let s = start(
        Config {
            header_read_timeout: Duration::from_millis(500),
            ..Default::default()
        },
        vec![builtin()],
    );
    // Nothing sent at all; then half a request line: both are closed after the timeout.
    for partial in [&b""[..], b"POST /embed HT"] {
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.write_all(partial).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t = Instant::now();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        let waited = t.elapsed();
        assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    }
    // A kept-alive connection that goes idle after a request is closed too.
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    assert!(t.elapsed() < Duration::from_secs(5));
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    let m = String::from_utf8(get(addr, "/metrics").body).unwrap();
    m.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

#[test]
fn a_client_that_leaves_has_its_queued_work_dropped() {
    let s = start(
        Config {
            max_batch_tokens: 512,
            ..Default::default()
        },
        vec![builtin()],
    );
    let a = s.addr;
    // A long request keeps the batcher busy for a while (pieces of 512 tokens) ...
    let long: Vec<String> = (0..400)
        .map(|i| format!("{i} {}", "many words here ".repeat(30)))
        .collect();
    let busy = std::thread::spawn(move || {
        post(a, "/embed", &json!({"inputs": long, "truncate": true})).status
    });
    std::thread::sleep(Duration::from_millis(200));
    // ... while another client sends its request and hangs up.
    let texts: Vec<String> = (0..50).map(|i| format!("short text {i}")).collect();
    let body = json!({"inputs": texts}).to_string();
    let mut c = TcpStream::connect(a).unwrap();
    write!(
        c,
        "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(c);
    assert_eq!(busy.join().unwrap(), 200);
    let t0 = Instant::now();
    while metric(a, "sembed_cancelled_pieces_total") < 1.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the abandoned request was computed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // What it would have embedded was not: only the long request's texts (and the probe's).
    assert_eq!(metric(a, "sembed_embedded_texts_total"), 400.0);
}

#[test]
fn shutdown_finishes_requests_in_flight() {
    let mut s = start(Config::default(), vec![builtin()]);
    let a = s.addr;
    let texts: Vec<String> = (0..600)
        .map(|i| format!("{i} {}", "some words ".repeat(20)))
        .collect();
    let n = texts.len();
    let busy = std::thread::spawn(move || {
        let r = post(a, "/embed", &json!({"inputs": texts}));
        (r.status, matrix(&r.json()).len())
    });
    let t0 = Instant::now();
    while in_flight(a) < 1 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    s.stop().unwrap();
    assert_eq!(busy.join().unwrap(), (200, n));
    // Stopped: no longer accepting.
    assert!(TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_err());
}

#[test]
fn openapi_document_lists_every_route() {
    let s = default_server();
    let r = get(s.addr, "/openapi.json");
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut served = vec![
        "POST /v1/embeddings",
        "GET /v1/models",
        "POST /embed",
        "POST /similarity",
        "POST /tokenize",
        "GET /info",
        "GET /health",
        "POST /",
        "POST /api/embed",
        "POST /api/embeddings",
        "GET /api/tags",
        "GET /api/version",
        "GET /metrics",
        "GET /openapi.json",
    ];
    served.sort();
    assert_eq!(documented, served);
    // Each documented route is really served (not 404/405) ...
    for route in &served {
        let (method, path) = route.split_once(' ').unwrap();
        let r = request(
            s.addr,
            method,
            path,
            &[("Content-Type", "application/json")],
            b"{}",
        );
        assert!(r.status != 404 && r.status != 405, "{route}: {}", r.status);
    }
    // ... and an undocumented one is not.
    assert_eq!(get(s.addr, "/v1/chat/completions").status, 404);
}
