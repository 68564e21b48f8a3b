//! Model names resolved as every front end resolves them (`sembed::resolve`): paths, `builtin`,
//! the built-in model standing in for all-MiniLM-L6-v2 without any network call, hub ids through
//! the cache (the loopback fake hub counts every request).
#![cfg(all(feature = "hub", feature = "builtin"))]

use std::path::Path;
use std::time::Duration;

use sembed::hub::{Hub, HubOptions, ModelRef};
use sembed::{EmbedOptions, Embedder, LoadOptions, Resolved};
use sembed_testkit::fake_hub::{FakeHub, lay_out_cache};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn hub(fake: &FakeHub, cache: &Path, offline: bool) -> Hub {
    Hub::new(HubOptions {
        cache_dir: cache.to_path_buf(),
        endpoint: fake.url.clone(),
        token: None,
        offline,
        retries: 0,
        backoff: Duration::from_millis(1),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
    })
}

#[test]
fn all_minilm_is_the_built_in_model_when_not_cached_and_never_asks_the_hub() {
    let fake = FakeHub::start();
    // The hub even has it: it must not be asked.
    fake.add_repo_dir(
        "sentence-transformers/all-MiniLM-L6-v2",
        COMMIT,
        &sembed_testkit::data("fixtures/tiny-bert-cls"),
    );
    let cache = tempfile::tempdir().unwrap();
    for offline in [false, true] {
        let hub = hub(&fake, cache.path(), offline);
        for name in [
            "all-MiniLM-L6-v2",
            "sentence-transformers/all-MiniLM-L6-v2",
            "sentence-transformers/all-MiniLM-L6-v2@main",
        ] {
            let r = sembed::resolve(name, &hub, &mut ()).unwrap();
            let want: ModelRef = "sentence-transformers/all-MiniLM-L6-v2".parse().unwrap();
            assert_eq!(
                r,
                Resolved::Builtin {
                    instead_of: Some(want)
                },
                "{name}"
            );
            let model = r.load(&LoadOptions::default()).unwrap();
            assert_eq!(model.info().weights_dtype, "f16");
            assert_eq!(
                model.embed(&["hi"], &EmbedOptions::default()).unwrap(),
                Embedder::builtin()
                    .unwrap()
                    .embed(&["hi"], &EmbedOptions::default())
                    .unwrap()
            );
        }
    }
    assert!(fake.take_log().is_empty(), "no request at all");
    assert!(
        std::fs::read_dir(cache.path()).unwrap().next().is_none(),
        "nothing written to the cache"
    );
}

#[test]
fn all_minilm_in_the_cache_is_used_from_there() {
    let fake = FakeHub::start();
    let cache = tempfile::tempdir().unwrap();
    let dir = sembed_testkit::data("fixtures/tiny-bert-cls");
    let snap = lay_out_cache(
        cache.path(),
        "sentence-transformers/all-MiniLM-L6-v2",
        COMMIT,
        &dir,
    );
    let hub = hub(&fake, cache.path(), false);
    let r = sembed::resolve("all-MiniLM-L6-v2", &hub, &mut ()).unwrap();
    assert!(
        matches!(&r, Resolved::Dir { path, .. } if *path == snap),
        "{r:?}"
    );
    let model = r.load(&LoadOptions::default()).unwrap();
    assert_eq!(model.info().name, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(model.dim(), Embedder::from_dir(&dir).unwrap().dim());
    // A pinned other revision is a hub lookup like any id (here: not cached, offline → error).
    let offline = self::hub(&fake, cache.path(), true);
    let other = format!("sentence-transformers/all-MiniLM-L6-v2@{}", "f".repeat(40));
    assert!(sembed::resolve(&other, &offline, &mut ()).is_err());
    assert!(fake.take_log().is_empty());
}

#[test]
fn paths_builtin_and_hub_ids() {
    let fake = FakeHub::start();
    fake.add_repo_dir(
        "org/tiny",
        COMMIT,
        &sembed_testkit::data("fixtures/tiny-bert-max-dense"),
    );
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&fake, cache.path(), false);
    let dir = sembed_testkit::data("fixtures/tiny-bert-cls");
    let r = sembed::resolve(dir.to_str().unwrap(), &hub, &mut ()).unwrap();
    assert_eq!(
        r,
        Resolved::Dir {
            path: dir,
            id: None
        }
    );
    assert_eq!(
        sembed::resolve("builtin", &hub, &mut ()).unwrap(),
        Resolved::Builtin { instead_of: None }
    );
    assert!(matches!(
        sembed::resolve("./no/such/dir", &hub, &mut ()).unwrap(),
        Resolved::Dir { id: None, .. }
    ));
    // An id: downloaded into the cache, named after the id.
    let r = sembed::resolve("org/tiny", &hub, &mut ()).unwrap();
    let model = r.load(&LoadOptions::default()).unwrap();
    assert_eq!(model.info().name, "org/tiny");
    assert!(!fake.take_log().is_empty());
    // Embedder::from_hub names it the same way (it was the hub's test of this before the split).
    let m: ModelRef = "org/tiny".parse().unwrap();
    let e = Embedder::from_hub(&m, &hub, &mut ()).unwrap();
    assert_eq!(e.info().name, m.to_string());
    assert!(fake.take_log().is_empty(), "cached now: no request");
    // A bad name is an error, not a panic.
    assert!(sembed::resolve("org/x@", &hub, &mut ()).is_err());
}
