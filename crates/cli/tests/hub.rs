//! `sembed models …` and `--model ID` against the loopback fake hub (`sembed_testkit::fake_hub`):
//! pull, list, offline embedding, rm, proxies and the saved login token, through the binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use sembed::{EmbedOptions, Embedder};
use sembed_testkit::fake_hub::FakeHub;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "test-org/tiny-dense";

fn fixture() -> PathBuf {
    sembed_testkit::data("fixtures/tiny-bert-max-dense")
}

fn serve_fixture() -> FakeHub {
    let hub = FakeHub::start();
    hub.add_repo_dir(REPO, COMMIT, &fixture());
    hub
}

/// Asserts a command exited 0, showing its stderr if not.
fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sembed` with a clean Hugging Face environment: the fake hub as endpoint, `hf_home/hub` as cache,
/// no token from the developer's own environment, network on.
fn sembed_cli(endpoint: &str, hf_home: &Path) -> Command {
    let mut c = Command::cargo_bin("sembed").unwrap();
    c.env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", hf_home)
        .env("HF_HUB_CACHE", hf_home.join("hub"))
        .env("HF_HUB_OFFLINE", "0")
        .env_remove("HF_TOKEN")
        .env_remove("HF_TOKEN_PATH")
        .env_remove("HUGGING_FACE_HUB_TOKEN");
    c
}

/// The CLI end to end: an id through HF_ENDPOINT/HF_HUB_CACHE, then `models list`, HF_HUB_OFFLINE,
/// `models rm`.
#[test]
fn cli_pulls_lists_embeds_offline_and_removes() {
    let fake = serve_fixture();
    let cache = tempfile::tempdir().unwrap();
    let sembed = |offline: bool| {
        let mut c = sembed_cli(&fake.url, cache.path());
        c.env("HF_HUB_OFFLINE", if offline { "1" } else { "0" });
        c
    };
    let out = sembed(false)
        .args(["models", "pull", REPO])
        .output()
        .unwrap();
    succeeded(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("downloading test-org/tiny-dense"),
        "{stderr}"
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.trim().ends_with(COMMIT), "{printed}");
    fake.take_log();

    let out = sembed(true)
        .args(["embed", "-m", REPO, "--format", "json", "hello hub"])
        .output()
        .unwrap();
    succeeded(&out);
    assert!(fake.take_log().is_empty());
    let got: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    let want = Embedder::from_dir(fixture())
        .unwrap()
        .embed(&["hello hub"], &EmbedOptions::default())
        .unwrap();
    assert_eq!(got[0], want.as_slice());

    let out = sembed(true).args(["models", "list"]).output().unwrap();
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(
        list.starts_with(REPO) && list.contains("main=0123456789"),
        "{list}"
    );

    let out = sembed(true).args(["models", "rm", REPO]).output().unwrap();
    assert!(out.status.success());
    assert!(
        !cache
            .path()
            .join("hub/models--test-org--tiny-dense")
            .exists()
    );
    let out = sembed(true)
        .args(["embed", "-m", REPO, "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("downloads are off") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(fake.take_log().is_empty());
}

/// HTTP_PROXY is honoured: with the hub at a name that does not resolve, every request (hub and CDN)
/// reaches the proxy (here the fake hub itself, answering CONNECT tunnels).
#[test]
fn requests_go_through_the_proxy_from_the_environment() {
    let fake = serve_fixture();
    let cache = tempfile::tempdir().unwrap();
    let out = sembed_cli("http://hub.invalid", cache.path())
        .args(["models", "pull", REPO])
        .env("HTTP_PROXY", &fake.url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    succeeded(&out);
    let log = fake.take_log();
    assert!(!log.is_empty() && log.iter().all(|r| r.proxied), "{log:?}");
    assert!(log.iter().any(|r| r.server == "cdn"), "{log:?}");
}

/// The token comes from the file `huggingface-cli login` writes (HF_TOKEN_PATH, else HF_HOME/token)
/// when HF_TOKEN is unset.
#[test]
fn cli_reads_the_saved_login_token() {
    let fake = serve_fixture();
    fake.require_token("hf_from_file");
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("token"), "hf_from_file\n").unwrap();
    let run = |with_home: bool| {
        let mut c = sembed_cli(&fake.url, home.path());
        c.args(["models", "pull", REPO]);
        if !with_home {
            c.env("HF_HOME", home.path().join("elsewhere"));
        }
        c.output().unwrap()
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 401") && err.contains("HF_TOKEN"),
        "{err}"
    );
    let out = run(true);
    succeeded(&out);
}

/// `-m all-MiniLM-L6-v2` with an empty cache: the built-in model, a one-line note, no request.
#[test]
fn builtin_alias_needs_no_network() {
    let fake = FakeHub::start();
    let home = tempfile::tempdir().unwrap();
    let builtin = Command::cargo_bin("sembed")
        .unwrap()
        .args(["embed", "hello"])
        .output()
        .unwrap();
    for name in ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"] {
        let out = sembed_cli(&fake.url, home.path())
            .args(["embed", "-m", name, "hello"])
            .output()
            .unwrap();
        succeeded(&out);
        assert_eq!(out.stdout, builtin.stdout, "the built-in model's vectors");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("sembed: note: sentence-transformers/all-MiniLM-L6-v2 is not in the Hugging Face cache"),
            "{err}"
        );
    }
    assert!(fake.take_log().is_empty(), "no request");
}
