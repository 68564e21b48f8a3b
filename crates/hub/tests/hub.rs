//! The hub client against a loopback imitation of the hub (`sembed_testkit::fake_hub`), never the
//! real one: cache layout shared with Python, no requests when cached, resume, checksums, tokens,
//! errors. Downloaded models are loaded by the engine to check they embed like the original.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sembed::{EmbedOptions, Embedder};
use sembed_hub::{Error, Hub, HubOptions, ModelRef};
use sembed_testkit::fake_hub::{FakeHub, git_etag, read_tree, sha256_hex};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "test-org/tiny-dense";

fn fixture() -> PathBuf {
    sembed_testkit::data("fixtures/tiny-bert-max-dense")
}

fn options(hub: &FakeHub, cache: &Path) -> HubOptions {
    HubOptions {
        cache_dir: cache.to_path_buf(),
        endpoint: hub.url.clone(),
        token: None,
        offline: false,
        retries: 3,
        backoff: Duration::from_millis(5),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
    }
}

fn serve_fixture() -> FakeHub {
    let hub = FakeHub::start();
    hub.add_repo_dir(REPO, COMMIT, &fixture());
    hub
}

fn model() -> ModelRef {
    REPO.parse().unwrap()
}

fn embed(dir: &Path) -> Vec<f32> {
    let m = Embedder::from_dir(dir).unwrap();
    let e = m
        .embed(&["hello hub", "a second text"], &EmbedOptions::default())
        .unwrap();
    e.as_slice().to_vec()
}

#[test]
fn fresh_download_lays_out_the_python_cache_and_second_run_makes_no_request() {
    let fake = serve_fixture();
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(options(&fake, cache.path()));
    let snap = hub.resolve(&model(), &mut ()).unwrap();

    let repo = cache.path().join("models--test-org--tiny-dense");
    assert_eq!(snap, repo.join("snapshots").join(COMMIT));
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT
    );
    // LFS files: blob named by sha256, relative symlinks one `..` per level.
    let weights = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let link = std::fs::read_link(snap.join("model.safetensors")).unwrap();
    assert_eq!(link, Path::new("../../blobs").join(sha256_hex(&weights)));
    let dense = std::fs::read(fixture().join("2_Dense/model.safetensors")).unwrap();
    let link = std::fs::read_link(snap.join("2_Dense/model.safetensors")).unwrap();
    assert_eq!(link, Path::new("../../../blobs").join(sha256_hex(&dense)));
    // Small files: blob named by the git ETag.
    let config = std::fs::read(fixture().join("config.json")).unwrap();
    assert_eq!(
        std::fs::read_link(snap.join("config.json")).unwrap(),
        Path::new("../../blobs").join(git_etag(&config))
    );
    // Only what the model needs: no README-like or reference files.
    assert!(!snap.join("FIXTURE.md").exists() && !snap.join("reference.jsonl").exists());
    assert_eq!(
        embed(&snap),
        embed(&fixture()),
        "downloaded model embeds differently"
    );

    let log = fake.take_log();
    assert!(
        log.iter().any(|r| r.server == "cdn"),
        "LFS files come through the redirect"
    );
    assert!(
        log.iter()
            .all(|r| r.header("accept-encoding") == Some("identity"))
    );

    // Second run: everything from the cache, not a single request.
    let again = Hub::new(options(&fake, cache.path()))
        .resolve(&model(), &mut ())
        .unwrap();
    assert_eq!(again, snap);
    assert!(
        fake.take_log().is_empty(),
        "a cached model must not touch the network"
    );
}

#[test]
fn interrupted_download_resumes_with_range() {
    let fake = serve_fixture();
    fake.faults(|f| {
        f.drop_after = Some(("model.safetensors".into(), 100_000));
        f.drop_times = 1;
    });
    let cache = tempfile::tempdir().unwrap();
    // A run that gives up at once (as if killed) leaves the partial blob behind...
    let mut opts = options(&fake, cache.path());
    opts.retries = 0;
    let err = Hub::new(opts).resolve(&model(), &mut ()).unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err}");
    let weights = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let sha = sha256_hex(&weights);
    let partial = cache.path().join(format!(
        "models--test-org--tiny-dense/blobs/{sha}.incomplete"
    ));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 100_000);
    fake.take_log();

    // ...and the next run asks only for the rest.
    let snap = Hub::new(options(&fake, cache.path()))
        .resolve(&model(), &mut ())
        .unwrap();
    let cdn: Vec<_> = fake
        .take_log()
        .into_iter()
        .filter(|r| r.server == "cdn")
        .collect();
    let ranged = cdn
        .iter()
        .find(|r| r.path == format!("/lfs/{sha}"))
        .expect("the weights were fetched from the CDN");
    assert_eq!(ranged.header("range"), Some("bytes=100000-"));
    assert!(!partial.exists());
    assert_eq!(
        std::fs::read(snap.join("model.safetensors")).unwrap(),
        weights
    );
}

#[test]
fn a_connection_dropped_mid_file_is_retried_within_one_run() {
    let fake = serve_fixture();
    fake.faults(|f| {
        f.drop_after = Some(("model.safetensors".into(), 50_000));
        f.drop_times = 2;
        f.api_500s = 2;
    });
    let cache = tempfile::tempdir().unwrap();
    let snap = Hub::new(options(&fake, cache.path()))
        .resolve(&model(), &mut ())
        .unwrap();
    assert_eq!(embed(&snap), embed(&fixture()));
    let log = fake.take_log();
    let api_calls = log.iter().filter(|r| r.path.starts_with("/api/")).count();
    assert_eq!(api_calls, 3, "two 500s, then success");
}

/// A download that stops sending (connection open, silent) hits the read timeout and is resumed on a
/// new connection. A client that waited the stall out would receive garbage and fail the checksum.
#[test]
fn a_stalled_download_times_out_and_resumes() {
    let fake = serve_fixture();
    fake.faults(|f| f.stall = Some("model.safetensors".into()));
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&fake, cache.path());
    opts.read_timeout = Duration::from_millis(300);
    let snap = Hub::new(opts).resolve(&model(), &mut ()).unwrap();
    assert_eq!(embed(&snap), embed(&fixture()));
    let weights = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let resumed = fake
        .take_log()
        .into_iter()
        .filter(|r| r.path == format!("/lfs/{}", sha256_hex(&weights)))
        .filter_map(|r| r.header("range").map(str::to_string))
        .collect::<Vec<_>>();
    assert_eq!(resumed, [format!("bytes={}-", weights.len() / 2)]);
}

/// A server that keeps sending past the size it announced is cut off there (it could fill the
/// disk otherwise), and nothing it sent is kept.
#[test]
fn a_body_longer_than_announced_is_refused() {
    let fake = serve_fixture();
    fake.faults(|f| f.oversend = Some("model.safetensors".into()));
    let cache = tempfile::tempdir().unwrap();
    let err = Hub::new(options(&fake, cache.path()))
        .resolve(&model(), &mut ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the server sent more than the")
            && err.contains("bytes it announced for model.safetensors"),
        "{err}"
    );
    let blobs = cache.path().join("models--test-org--tiny-dense/blobs");
    let kept: Vec<_> = std::fs::read_dir(&blobs)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        kept.iter()
            .all(|n| !n.to_string_lossy().ends_with(".incomplete")),
        "{kept:?}"
    );
}

#[test]
fn corrupted_body_is_rejected_by_checksum() {
    let fake = serve_fixture();
    fake.faults(|f| f.corrupt = Some("model.safetensors".into()));
    let cache = tempfile::tempdir().unwrap();
    let err = Hub::new(options(&fake, cache.path()))
        .resolve(&model(), &mut ())
        .unwrap_err();
    let Error::Checksum {
        file,
        expected,
        actual,
    } = &err
    else {
        panic!("expected a checksum error, got {err}");
    };
    assert_eq!(file, "model.safetensors");
    assert_ne!(expected, actual);
    let blobs = cache.path().join("models--test-org--tiny-dense/blobs");
    let weights = std::fs::read(fixture().join("model.safetensors")).unwrap();
    assert!(
        !blobs.join(sha256_hex(&weights)).exists(),
        "a bad blob was kept"
    );
    assert!(
        !blobs
            .join(format!("{}.incomplete", sha256_hex(&weights)))
            .exists()
    );
    let snap = cache
        .path()
        .join("models--test-org--tiny-dense/snapshots")
        .join(COMMIT);
    assert!(!snap.join("model.safetensors").exists());
}

#[test]
fn token_is_required_sent_to_the_hub_and_never_to_the_cdn() {
    let fake = serve_fixture();
    fake.require_token("hf_secret");
    let cache = tempfile::tempdir().unwrap();
    let err = Hub::new(options(&fake, cache.path()))
        .resolve(&model(), &mut ())
        .unwrap_err();
    assert!(matches!(err, Error::Hub { status: 401, .. }), "{err}");
    assert!(err.to_string().contains("HF_TOKEN"), "{err}");

    let mut opts = options(&fake, cache.path());
    opts.token = Some("hf_secret".into());
    let snap = Hub::new(opts).resolve(&model(), &mut ()).unwrap();
    assert_eq!(embed(&snap), embed(&fixture()));
    let log = fake.take_log();
    let (hub, cdn): (Vec<_>, Vec<_>) = log.iter().partition(|r| r.server == "hub");
    assert!(!cdn.is_empty());
    assert!(
        cdn.iter().all(|r| r.header("authorization").is_none()),
        "token leaked to the CDN"
    );
    assert!(
        hub.iter()
            .skip(1)
            .all(|r| r.header("authorization") == Some("Bearer hf_secret")),
        "the hub must get the token"
    );
}

/// A renamed repo: the hub answers the old name with same-host redirects; the model is cached under
/// the name it was asked by (as Python does) and the token follows those redirects.
#[test]
fn renamed_repos_are_followed() {
    let fake = serve_fixture();
    fake.rename("old-org/old-name", REPO);
    fake.require_token("hf_x");
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&fake, cache.path());
    opts.token = Some("hf_x".into());
    let snap = Hub::new(opts)
        .resolve(&"old-org/old-name".parse().unwrap(), &mut ())
        .unwrap();
    assert!(snap.starts_with(cache.path().join("models--old-org--old-name")));
    assert_eq!(embed(&snap), embed(&fixture()));
}

#[test]
fn missing_repo_and_revision_give_404_errors() {
    let fake = serve_fixture();
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(options(&fake, cache.path()));
    let err = hub
        .resolve(&"test-org/nope".parse().unwrap(), &mut ())
        .unwrap_err();
    assert!(matches!(err, Error::Hub { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("no such model"), "{err}");
    let err = hub
        .resolve(&format!("{REPO}@v9").parse().unwrap(), &mut ())
        .unwrap_err();
    assert!(
        err.to_string().contains("revision `v9` does not exist"),
        "{err}"
    );
}

#[test]
fn offline_makes_no_request_and_names_what_is_missing() {
    let fake = serve_fixture();
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&fake, cache.path());
    opts.offline = true;
    let err = Hub::new(opts.clone())
        .resolve(&model(), &mut ())
        .unwrap_err();
    assert!(matches!(err, Error::Offline { .. }), "{err}");
    assert!(
        err.to_string().contains("models--test-org--tiny-dense"),
        "{err}"
    );
    assert!(fake.take_log().is_empty());

    Hub::new(options(&fake, cache.path()))
        .resolve(&model(), &mut ())
        .unwrap();
    fake.take_log();
    // A snapshot that lost a file is named as such.
    let snap = Hub::new(opts.clone()).resolve(&model(), &mut ()).unwrap();
    std::fs::remove_file(snap.join("2_Dense/model.safetensors")).unwrap();
    let err = Hub::new(opts).resolve(&model(), &mut ()).unwrap_err();
    assert!(
        err.to_string().contains("lacks 2_Dense/model.safetensors"),
        "{err}"
    );
    assert!(fake.take_log().is_empty());
}

/// A cache laid out by hand the way Python's huggingface_hub writes it (blobs by etag, relative
/// symlinks, refs/main) loads offline, by branch and by commit.
#[test]
fn loads_a_python_made_cache_offline() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache
        .path()
        .join("models--sentence-transformers--all-MiniLM-L6-v2");
    let snap = repo.join("snapshots").join(COMMIT);
    let files = read_tree(&fixture());
    for (rel, bytes) in &files {
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
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();

    let opts = HubOptions {
        cache_dir: cache.path().to_path_buf(),
        endpoint: "http://127.0.0.1:9".into(), // nothing listens: any request would fail
        offline: true,
        ..HubOptions::from_env()
    };
    let hub = Hub::new(opts);
    for name in [
        "all-MiniLM-L6-v2",
        &format!("sentence-transformers/all-MiniLM-L6-v2@{COMMIT}"),
    ] {
        let m: ModelRef = name.parse().unwrap();
        // (That the engine names a model loaded by id after the id is tested in the engine.)
        let e = Embedder::from_dir(hub.resolve(&m, &mut ()).unwrap()).unwrap();
        let v = e
            .embed(&["hello hub", "a second text"], &EmbedOptions::default())
            .unwrap();
        assert_eq!(v.as_slice(), embed(&fixture()).as_slice());
    }
    let listed = hub.cache().list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].repo_id, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(
        listed[0].refs,
        vec![("main".to_string(), COMMIT.to_string())]
    );
    assert_eq!(
        listed[0].size,
        files.values().map(|b| b.len() as u64).sum::<u64>()
    );
}

#[test]
fn pickle_only_repos_are_refused_and_empty_files_download() {
    let fake = serve_fixture();
    let mut files = read_tree(&fixture());
    let mut pickle = files.clone();
    let weights = pickle.remove("model.safetensors").unwrap();
    pickle.insert("pytorch_model.bin".into(), weights);
    fake.add_repo("test-org/pickled", COMMIT, pickle);
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub::new(options(&fake, cache.path()));
    let err = hub
        .resolve(&"test-org/pickled".parse().unwrap(), &mut ())
        .unwrap_err();
    assert!(err.to_string().contains("pickled PyTorch weights"), "{err}");
    assert!(
        fake.take_log().iter().all(|r| !r.path.ends_with(".bin")),
        "a .bin was requested"
    );

    files.insert("empty.txt".into(), Vec::new());
    fake.add_repo("test-org/with-empty", COMMIT, files);
    let snap = hub
        .resolve(&"test-org/with-empty".parse().unwrap(), &mut ())
        .unwrap();
    assert_eq!(std::fs::read(snap.join("empty.txt")).unwrap(), b"");
}

/// Python's huggingface_hub and sembed share one cache both ways: what Python downloads (from the
/// fake hub) sembed loads offline; what sembed downloads, Python finds with `local_files_only`.
/// Needs a Python with huggingface_hub: scripts/test.sh runs it with SEMBED_TEST_PYTHON set.
#[test]
#[ignore = "needs Python huggingface_hub; scripts/test.sh runs it with --ignored"]
fn python_huggingface_hub_shares_the_cache_both_ways() {
    let python = std::env::var("SEMBED_TEST_PYTHON")
        .expect("set SEMBED_TEST_PYTHON to a python with huggingface_hub (scripts/test.sh does)");
    let fake = serve_fixture();
    let script = sembed_testkit::repo_root().join("tests/interop/hf_cache.py");
    let py = |offline: bool, args: &[&str]| {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(args)
            .env("HF_ENDPOINT", &fake.url)
            .env("HF_HUB_OFFLINE", if offline { "1" } else { "0" })
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env_remove("HF_TOKEN")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    };

    // Python downloads; sembed loads offline with no request.
    let cache = tempfile::tempdir().unwrap();
    let cache_s = cache.path().to_str().unwrap();
    let py_snap = py(false, &["download", REPO, cache_s]);
    fake.take_log();
    let mut opts = options(&fake, cache.path());
    opts.offline = true;
    let hub = Hub::new(opts);
    assert_eq!(hub.resolve(&model(), &mut ()).unwrap(), py_snap);
    let e = Embedder::from_dir(hub.resolve(&model(), &mut ()).unwrap()).unwrap();
    let v = e
        .embed(&["hello hub", "a second text"], &EmbedOptions::default())
        .unwrap();
    assert_eq!(v.as_slice(), embed(&fixture()).as_slice());
    assert!(fake.take_log().is_empty());

    // sembed downloads; Python finds every file offline.
    let cache = tempfile::tempdir().unwrap();
    let cache_s = cache.path().to_str().unwrap();
    let snap = Hub::new(options(&fake, cache.path()))
        .resolve(&model(), &mut ())
        .unwrap();
    fake.take_log();
    let files = [
        "config.json",
        "model.safetensors",
        "modules.json",
        "tokenizer.json",
        "1_Pooling/config.json",
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
    ];
    let mut args = vec!["offline", REPO, cache_s];
    args.extend(files);
    assert_eq!(py(true, &args), snap);
    assert!(fake.take_log().is_empty());
}
