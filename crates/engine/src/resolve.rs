//! Model names as users write them (`--model`, `SentenceTransformer(name)`), resolved the same way
//! everywhere: a folder, the built-in model, or a Hugging Face id through the cache Python shares.

use std::path::{Path, PathBuf};

use crate::embedder::Embedder;
use crate::error::Result;
use crate::hub::{Hub, ModelRef, Progress};
use crate::options::LoadOptions;

/// The hub id the built-in model is a copy of.
pub(crate) const BUILTIN_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Where a model name leads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolved {
    /// A folder: the path given, or a snapshot folder of the Hugging Face cache for `id`.
    Dir {
        /// The model folder.
        path: PathBuf,
        /// The hub id it was resolved from (`None` for a path).
        id: Option<ModelRef>,
    },
    /// The built-in model. `instead_of` is the hub id it stands in for: the name was
    /// all-MiniLM-L6-v2, which is not in the Hugging Face cache — the built-in float16 copy gives
    /// vectors within 0.9999995 cosine of it, without the network.
    Builtin {
        /// The id that was asked for, if it was not `builtin` itself.
        instead_of: Option<ModelRef>,
    },
}

/// Whether `name` can only be a path (so it is never looked up on the hub).
fn looks_like_path(name: &str) -> bool {
    name.starts_with(['.', '/', '~']) || name.contains('\\') || name.matches('/').count() > 1
}

/// Resolves a model name:
/// 1. an existing path, or anything that can only be a path, is that folder;
/// 2. `builtin` is the built-in model (when compiled in);
/// 3. all-MiniLM-L6-v2 (`all-MiniLM-L6-v2`, `sentence-transformers/all-MiniLM-L6-v2`, at its
///    default revision) is the Hugging Face cache's copy when complete, else the built-in model —
///    never a network call;
/// 4. any other hub id or alias is the cache's copy, else downloaded into the cache (unless the
///    hub is offline: then an error naming what is missing).
///
/// ```no_run
/// use sembed::hub::{Hub, HubOptions};
/// let hub = Hub::new(HubOptions::from_env());
/// let model = sembed::resolve("all-MiniLM-L6-v2", &hub, &mut ())?.load(&Default::default())?;
/// # Ok::<(), sembed::Error>(())
/// ```
pub fn resolve(name: &str, hub: &Hub, progress: &mut dyn Progress) -> Result<Resolved> {
    let path = Path::new(name);
    if path.exists() || looks_like_path(name) {
        return Ok(Resolved::Dir {
            path: path.to_path_buf(),
            id: None,
        });
    }
    if name == "builtin" && cfg!(feature = "builtin") {
        return Ok(Resolved::Builtin { instead_of: None });
    }
    let model: ModelRef = name.parse()?;
    if cfg!(feature = "builtin") && model.repo_id == BUILTIN_ID && model.revision == "main" {
        return Ok(match hub.cached(&model)? {
            Some(path) => Resolved::Dir {
                path,
                id: Some(model),
            },
            None => Resolved::Builtin {
                instead_of: Some(model),
            },
        });
    }
    let path = hub.resolve(&model, progress)?;
    Ok(Resolved::Dir {
        path,
        id: Some(model),
    })
}

impl Resolved {
    /// Loads the model, named after the id it was resolved from (unless `opts.name` is set).
    pub fn load(&self, opts: &LoadOptions) -> Result<Embedder> {
        match self {
            Resolved::Dir { path, id } => {
                let mut opts = opts.clone();
                if opts.name.is_none() {
                    opts.name = id.as_ref().map(ModelRef::to_string);
                }
                Embedder::from_dir_with(path, &opts)
            }
            #[cfg(feature = "builtin")]
            Resolved::Builtin { .. } => Embedder::builtin_with(opts),
            #[cfg(not(feature = "builtin"))]
            Resolved::Builtin { .. } => Err(crate::Error::InvalidOption(
                "this build has no built-in model (feature `builtin`)".into(),
            )),
        }
    }
}
