//! Models by name for sembed: Hugging Face hub ids, resolved offline-first through the cache Python shares.
//!
//! Resolution of `org/name[@revision]` (or an [alias](name::ALIASES)):
//! 1. the Hugging Face cache: `refs/<revision>` → `snapshots/<commit>/`; if every file the model needs
//!    is there, that folder is the model and **no request is made**;
//! 2. unless offline (`HF_HUB_OFFLINE=1`, [`HubOptions::offline`]), the hub: the revision's commit and
//!    file list, then each needed file (modules.json decides which; safetensors only) into `blobs/`,
//!    linked from `snapshots/<commit>/`, exactly as Python's `huggingface_hub` lays them out.
//!
//! ```no_run
//! use sembed_hub::{Hub, HubOptions};
//! let hub = Hub::new(HubOptions::from_env());
//! let dir = hub.resolve(&"all-MiniLM-L6-v2".parse()?, &mut ())?;
//! println!("model files in {}", dir.display());
//! # Ok::<(), sembed_hub::Error>(())
//! ```
//!
//! The sembed engine loads such a folder (`sembed::Embedder::from_dir`); with its `hub` feature it
//! also resolves names itself (`sembed::ModelSpec`).

#![warn(missing_docs)]

mod cache;
mod download;
mod error;
pub mod name;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub use cache::{CachedModel, HfCache};
pub use name::{ALIASES, ModelRef};

use download::{BlobLock, Client, ClientConfig};

pub use error::{Error, Result};

/// One entry of a sentence-transformers `modules.json`: which folder holds a module of which kind
/// (all the hub needs to decide which files a model consists of).
#[derive(Debug, Clone, serde::Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

impl ModuleEntry {
    /// The class name without its Python module path (`Pooling`, `Transformer`, ...).
    fn short_kind(&self) -> &str {
        self.kind.rsplit('.').next().unwrap_or(&self.kind)
    }
}

/// Joins a module folder and a file name as modules.json paths are meant ("" is the root).
fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() {
        file.to_string()
    } else {
        format!("{}/{file}", dir.trim_end_matches('/'))
    }
}

/// Receives download progress (the CLI draws a bar; `()` ignores it).
pub trait Progress {
    /// A file starts (or resumes at `done` bytes); `total` is its size when the hub says it.
    fn start(&mut self, _file: &str, _total: Option<u64>, _done: u64) {}
    /// `bytes` more arrived.
    fn advance(&mut self, _bytes: u64) {}
    /// The current file is over (finished or failed).
    fn finish(&mut self) {}
    /// A model is about to be downloaded: `files` files at `commit`.
    fn model(&mut self, _model: &ModelRef, _commit: &str, _files: usize) {}
    /// All files of the model are in place.
    fn model_done(&mut self) {}
}

impl Progress for () {}

/// Where models come from and how downloads behave. [`HubOptions::from_env`] reads what Python reads.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// The cache root (holding `models--*`).
    pub cache_dir: PathBuf,
    /// The hub's base URL (`HF_ENDPOINT`; mirrors use it).
    pub endpoint: String,
    /// Bearer token for private or gated models; sent to `endpoint`'s host only.
    pub token: Option<String>,
    /// No network at all: the cache or an error.
    pub offline: bool,
    /// Extra tries after a transient failure (connection lost, timeout, HTTP 5xx/429).
    pub retries: u32,
    /// Wait before the first retry; doubles each time.
    pub backoff: Duration,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for any single read: a stalled download fails (and is retried) after this.
    pub read_timeout: Duration,
}

impl HubOptions {
    /// Options as Python's `huggingface_hub` reads them: `HF_HUB_CACHE`/`HF_HOME`, `HF_ENDPOINT`,
    /// `HF_TOKEN` (else `HF_TOKEN_PATH`, else the token file `huggingface-cli login` writes),
    /// `HF_HUB_OFFLINE`. Proxies (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) are read by
    /// the HTTP client itself.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let truthy = |k: &str| {
            var(k).is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "on" | "yes" | "true"
                )
            })
        };
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| cache::hf_home().join("token"));
                std::fs::read_to_string(path).ok()
            })
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        HubOptions {
            cache_dir: HfCache::from_env().root().to_path_buf(),
            endpoint: var("HF_ENDPOINT")
                .map(|e| e.trim().trim_end_matches('/').to_string())
                .unwrap_or_else(|| "https://huggingface.co".into()),
            token,
            offline: truthy("HF_HUB_OFFLINE") || truthy("TRANSFORMERS_OFFLINE"),
            retries: 4,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// The hub and its local cache. Cheap to create: nothing touches the network until a model is
/// missing from the cache.
pub struct Hub {
    opts: HubOptions,
    cache: HfCache,
    client: OnceLock<Client>,
}

impl Hub {
    /// A hub with these options.
    pub fn new(opts: HubOptions) -> Self {
        Hub {
            cache: HfCache::new(&opts.cache_dir),
            opts,
            client: OnceLock::new(),
        }
    }

    /// The local cache.
    pub fn cache(&self) -> &HfCache {
        &self.cache
    }

    /// The options in force.
    pub fn options(&self) -> &HubOptions {
        &self.opts
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            Client::new(ClientConfig {
                endpoint: self.opts.endpoint.clone(),
                token: self.opts.token.clone(),
                retries: self.opts.retries,
                backoff: self.opts.backoff,
                connect_timeout: self.opts.connect_timeout,
                read_timeout: self.opts.read_timeout,
            })
        })
    }

    /// The model's folder (`snapshots/<commit>/`): from the cache when complete, else downloaded.
    pub fn resolve(&self, model: &ModelRef, progress: &mut dyn Progress) -> Result<PathBuf> {
        if let Some(dir) = self.cached(model)? {
            return Ok(dir);
        }
        if self.opts.offline {
            let detail = match self.cache.cached_commit(model) {
                None => format!(
                    "no `{}` in {}",
                    model.cache_folder(),
                    self.cache.root().display()
                ),
                Some(c) => {
                    let snap = self.cache.snapshot_dir(&model.repo_id, &c);
                    format!(
                        "{} lacks {}",
                        snap.display(),
                        missing_files(&snap).join(", ")
                    )
                }
            };
            return Err(Error::Offline {
                model: model.to_string(),
                detail,
            });
        }
        self.download(model, progress)
    }

    /// The cached snapshot, if it has every file the model needs.
    pub fn cached(&self, model: &ModelRef) -> Result<Option<PathBuf>> {
        let Some(commit) = self.cache.cached_commit(model) else {
            return Ok(None);
        };
        let snap = self.cache.snapshot_dir(&model.repo_id, &commit);
        Ok(missing_files(&snap).is_empty().then_some(snap))
    }

    /// Downloads what the cache lacks (always asks the hub which commit `revision` is now).
    pub fn download(&self, model: &ModelRef, progress: &mut dyn Progress) -> Result<PathBuf> {
        if self.opts.offline {
            return self.resolve(model, progress);
        }
        let client = self.client();
        let info = client.repo_info(model)?;
        let commit = info.sha.to_ascii_lowercase();
        if !name::is_commit_hash(&commit) {
            return Err(Error::Network {
                url: client.endpoint().to_string(),
                reason: format!("the hub gave `{commit}` as the commit of {model}"),
            });
        }
        let files: BTreeSet<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
        let pin = ModelRef {
            repo_id: model.repo_id.clone(),
            revision: commit.clone(),
        };
        let snap = self.cache.snapshot_dir(&model.repo_id, &commit);
        let modules: Option<Vec<ModuleEntry>> = if files.contains("modules.json") {
            self.fetch(&pin, "modules.json", &mut ())?;
            let p = snap.join("modules.json");
            let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            Some(serde_json::from_slice(&bytes).map_err(|e| Error::invalid(&p, e.to_string()))?)
        } else {
            None
        };
        let wanted = select_files(model, &files, modules.as_deref())?;
        let todo: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|f| !snap.join(f).exists())
            .collect();
        if !todo.is_empty() {
            progress.model(model, &commit, todo.len());
        }
        let downloading = !todo.is_empty();
        for file in todo {
            self.fetch(&pin, file, progress)?;
        }
        if downloading {
            progress.model_done();
        }
        self.cache.write_ref(model, &commit)?;
        Ok(snap)
    }

    /// One file of a pinned commit into the cache (blob + snapshot link).
    fn fetch(&self, pin: &ModelRef, file: &str, progress: &mut dyn Progress) -> Result<()> {
        let client = self.client();
        let Some(meta) = client.file_meta(pin, &pin.revision, file)? else {
            return Err(Error::Hub {
                what: format!("{}: {file}", pin.repo_id),
                status: 404,
                hint: "listed by the hub but not downloadable".into(),
            });
        };
        // The ETag names a file in blobs/: it must not be able to name anything else.
        let etag_ok = !meta.etag.is_empty()
            && meta.etag.len() <= 128
            && meta
                .etag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !etag_ok {
            return Err(Error::Network {
                url: meta.url.clone(),
                reason: format!("the hub gave an unusable ETag {:?} for {file}", meta.etag),
            });
        }
        if meta
            .commit
            .as_deref()
            .is_some_and(|c| !c.eq_ignore_ascii_case(&pin.revision))
        {
            return Err(Error::Network {
                url: meta.url.clone(),
                reason: format!(
                    "asked for commit {} of {file}, the hub answered for another",
                    pin.revision
                ),
            });
        }
        let commit = &pin.revision;
        let blob = self.cache.blob_path(&pin.repo_id, &meta.etag);
        if !blob.exists() {
            let _lock = BlobLock::acquire(&self.cache.lock_path(&pin.repo_id, &meta.etag))?;
            // Another process may have finished it while we waited for the lock.
            if !blob.exists() {
                if let Some(dir) = blob.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                }
                client.download(&meta, &blob, file, progress)?;
            }
        }
        self.cache.link(&pin.repo_id, commit, file, &meta.etag)?;
        Ok(())
    }
}

/// The files a model needs, from the repo's file list: configs and tokenizer files of the root and
/// of each module folder, and `model.safetensors` where weights live. Never pickled `.bin` weights.
fn select_files<'a>(
    model: &ModelRef,
    files: &BTreeSet<&'a str>,
    modules: Option<&[ModuleEntry]>,
) -> Result<Vec<&'a str>> {
    let mut dirs: BTreeSet<&str> = BTreeSet::from([""]);
    // Folders whose module carries weights.
    let mut weighted: Vec<&str> = Vec::new();
    match modules {
        Some(ms) => {
            for m in ms {
                let path = m.path.trim_end_matches('/');
                if !path.is_empty() && !safe_relative(path) {
                    return Err(Error::Unsupported(format!(
                        "{model}: modules.json names the folder {path:?}"
                    )));
                }
                dirs.insert(path);
                let kind = m.short_kind();
                if matches!(kind, "Transformer" | "Dense" | "StaticEmbedding") {
                    weighted.push(path);
                }
            }
        }
        None => weighted.push(""),
    }
    for dir in &weighted {
        if files.contains(join(dir, "model.safetensors").as_str()) {
            continue;
        }
        let why = if files.contains(join(dir, "model.safetensors.index.json").as_str()) {
            "weights sharded over several safetensors files (not supported yet)"
        } else if files
            .iter()
            .any(|f| f.ends_with(".bin") && parent(f) == *dir)
        {
            "only pickled PyTorch weights (.bin), which sembed never loads; use a revision that has \
             model.safetensors (the hub's safetensors conversion opens one as refs/pr/N)"
        } else {
            "no model.safetensors"
        };
        return Err(Error::Unsupported(format!("{model}: {why}")));
    }
    Ok(files
        .iter()
        .copied()
        .filter(|f| {
            let base = f.rsplit('/').next().unwrap_or(f);
            safe_relative(f)
                && dirs.contains(parent(f))
                && (base == "model.safetensors"
                    || base.ends_with(".json")
                    || base.ends_with(".txt"))
                && !base.ends_with(".index.json")
        })
        .collect())
}

/// A relative path that stays inside the snapshot folder: no `..`, `.`, empty or absolute parts (the
/// file list comes from the server, and its names become paths on disk).
fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\\')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

fn parent(f: &str) -> &str {
    f.rsplit_once('/').map_or("", |(d, _)| d)
}

/// What a snapshot folder lacks for the model to load (empty when complete).
fn missing_files(snap: &Path) -> Vec<String> {
    if !snap.is_dir() {
        return vec!["everything (no snapshot folder)".into()];
    }
    let mut need: Vec<String> = Vec::new();
    let modules: Option<Vec<ModuleEntry>> = std::fs::read(snap.join("modules.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let tokenizer = |dir: &str| {
        let (a, b) = (join(dir, "tokenizer.json"), join(dir, "vocab.txt"));
        if snap.join(&a).exists() || snap.join(&b).exists() {
            None
        } else {
            Some(a)
        }
    };
    match modules {
        Some(ms) => {
            for m in &ms {
                let dir = m.path.trim_end_matches('/');
                match m.short_kind() {
                    "Transformer" => {
                        need.push(join(dir, "config.json"));
                        need.push(join(dir, "model.safetensors"));
                        need.extend(tokenizer(dir));
                    }
                    "Dense" => {
                        need.push(join(dir, "config.json"));
                        need.push(join(dir, "model.safetensors"));
                    }
                    "StaticEmbedding" => {
                        need.push(join(dir, "model.safetensors"));
                        need.push(join(dir, "tokenizer.json"));
                    }
                    "Pooling" => need.push(join(dir, "config.json")),
                    _ => {}
                }
            }
        }
        None => {
            need.push("model.safetensors".into());
            need.extend(tokenizer(""));
        }
    }
    need.retain(|f| !snap.join(f).exists());
    need
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(json: &str) -> Vec<ModuleEntry> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn selects_configs_tokenizer_and_safetensors_only() {
        let m: ModelRef = "a/b".parse().unwrap();
        let files: BTreeSet<&str> = [
            ".gitattributes",
            "README.md",
            "config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "tokenizer.json",
            "vocab.txt",
            "modules.json",
            "1_Pooling/config.json",
            "onnx/model.onnx",
            "onnx/config.json",
            "train_script.py",
            "2_Dense/model.safetensors",
            "2_Dense/config.json",
        ]
        .into();
        let ms = modules(
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
        );
        let got = select_files(&m, &files, Some(&ms)).unwrap();
        assert_eq!(
            got,
            [
                "1_Pooling/config.json",
                "2_Dense/config.json",
                "2_Dense/model.safetensors",
                "config.json",
                "model.safetensors",
                "modules.json",
                "tokenizer.json",
                "vocab.txt"
            ]
        );
    }

    #[test]
    fn names_from_the_server_cannot_leave_the_snapshot() {
        let m: ModelRef = "a/b".parse().unwrap();
        let files: BTreeSet<&str> = [
            "config.json",
            "model.safetensors",
            "../../evil.json",
            "/etc/x.json",
            "a/../../b.json",
            "./c.json",
            "d//e.json",
            "f\\g.json",
        ]
        .into();
        assert_eq!(
            select_files(&m, &files, None).unwrap(),
            ["config.json", "model.safetensors"]
        );
        let ms = modules(r#"[{"path":"../x","type":"sentence_transformers.models.Dense"}]"#);
        assert!(select_files(&m, &files, Some(&ms)).is_err());
    }

    #[test]
    fn refuses_pickle_only_and_sharded_repos() {
        let m: ModelRef = "a/b".parse().unwrap();
        let files: BTreeSet<&str> = ["config.json", "pytorch_model.bin", "tokenizer.json"].into();
        let e = select_files(&m, &files, None).unwrap_err().to_string();
        assert!(e.contains("pickled"), "{e}");
        let files: BTreeSet<&str> = [
            "config.json",
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
        ]
        .into();
        let e = select_files(&m, &files, None).unwrap_err().to_string();
        assert!(e.contains("sharded"), "{e}");
    }
}
