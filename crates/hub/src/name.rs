//! Model names: `org/name`, `org/name@revision`, and short aliases for well-known models.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Short names accepted by `--model`, as sentence-transformers accepts them, with what they are.
///
/// A name without `/` is looked up here (case-insensitively); Python's sentence-transformers does the
/// same for its own models by prefixing `sentence-transformers/`.
pub const ALIASES: &[(&str, &str, &str)] = &[
    (
        "all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "English, 384 dims, fast (also built in)",
    ),
    (
        "all-MiniLM-L12-v2",
        "sentence-transformers/all-MiniLM-L12-v2",
        "English, 384 dims",
    ),
    (
        "all-mpnet-base-v2",
        "sentence-transformers/all-mpnet-base-v2",
        "English, 768 dims, best quality of these",
    ),
    (
        "all-distilroberta-v1",
        "sentence-transformers/all-distilroberta-v1",
        "English, 768 dims",
    ),
    (
        "paraphrase-multilingual-MiniLM-L12-v2",
        "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
        "50+ languages, 384 dims",
    ),
    (
        "paraphrase-multilingual-mpnet-base-v2",
        "sentence-transformers/paraphrase-multilingual-mpnet-base-v2",
        "50+ languages, 768 dims",
    ),
    (
        "paraphrase-MiniLM-L6-v2",
        "sentence-transformers/paraphrase-MiniLM-L6-v2",
        "English, 384 dims",
    ),
    (
        "multi-qa-MiniLM-L6-cos-v1",
        "sentence-transformers/multi-qa-MiniLM-L6-cos-v1",
        "English question answering, 384 dims",
    ),
    (
        "multi-qa-mpnet-base-dot-v1",
        "sentence-transformers/multi-qa-mpnet-base-dot-v1",
        "English question answering, 768 dims",
    ),
    (
        "bge-small-en-v1.5",
        "BAAI/bge-small-en-v1.5",
        "English, 384 dims",
    ),
    (
        "bge-base-en-v1.5",
        "BAAI/bge-base-en-v1.5",
        "English, 768 dims",
    ),
    (
        "e5-small-v2",
        "intfloat/e5-small-v2",
        "English, 384 dims (prefix texts with 'query: ' / 'passage: ')",
    ),
    (
        "multilingual-e5-small",
        "intfloat/multilingual-e5-small",
        "100 languages, 384 dims",
    ),
    (
        "potion-base-8M",
        "minishlab/potion-base-8M",
        "Model2Vec static, English, 256 dims",
    ),
    (
        "m2v-base-output",
        "minishlab/M2V_base_output",
        "Model2Vec static, English, 256 dims",
    ),
];

/// A model on the Hugging Face hub: `org/name` at a revision (branch, tag or commit; default `main`).
///
/// ```
/// use sembed_hub::ModelRef;
/// let m: ModelRef = "all-MiniLM-L6-v2".parse()?;
/// assert_eq!(m.repo_id, "sentence-transformers/all-MiniLM-L6-v2");
/// assert_eq!(m.revision, "main");
/// let m: ModelRef = "BAAI/bge-small-en-v1.5@v1".parse()?;
/// assert_eq!((m.repo_id.as_str(), m.revision.as_str()), ("BAAI/bge-small-en-v1.5", "v1"));
/// # Ok::<(), sembed_hub::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// `org/name` (aliases already expanded).
    pub repo_id: String,
    /// Branch, tag or 40-hex commit.
    pub revision: String,
}

impl ModelRef {
    /// The cache folder name Python uses: `models--org--name`.
    pub fn cache_folder(&self) -> String {
        repo_folder(&self.repo_id)
    }

    /// Whether the revision is a full commit hash (then no ref lookup is needed).
    pub fn is_commit(&self) -> bool {
        is_commit_hash(&self.revision)
    }
}

pub(crate) fn repo_folder(repo_id: &str) -> String {
    format!("models--{}", repo_id.replace('/', "--"))
}

pub(crate) fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The full repo id for an alias, if `name` is one.
pub fn alias(name: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|(a, _, _)| a.eq_ignore_ascii_case(name))
        .map(|&(_, id, _)| id)
}

impl FromStr for ModelRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidName {
            name: s.to_string(),
            reason: why.to_string(),
        };
        let (name, revision) = match s.split_once('@') {
            Some((_, "")) => return Err(bad("empty revision after '@'")),
            Some((n, r)) => (n, r.to_string()),
            None => (s, "main".to_string()),
        };
        // The revision becomes a path under refs/: every part must be a plain name.
        if revision
            .chars()
            .any(|c| c.is_control() || c == ' ' || c == '\\')
            || revision
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad(
                "the revision has spaces, control characters, or empty, '.' or '..' parts",
            ));
        }
        let repo_id = match name.split_once('/') {
            None => alias(name).map(str::to_string).ok_or_else(|| {
                bad("not a directory, not `org/name`, and not a known alias (see `sembed models aliases`)")
            })?,
            Some((org, model)) => {
                for part in [org, model] {
                    let ok = !part.is_empty()
                        && part.len() <= 96
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                        && !part.starts_with(['-', '.'])
                        && !part.ends_with(['-', '.'])
                        && !part.contains("--")
                        && !part.contains("..");
                    if !ok {
                        return Err(bad(
                            "a hub id is `org/name` with letters, digits, '-', '_' and '.' (no '--' or '..')",
                        ));
                    }
                }
                name.to_string()
            }
        };
        Ok(ModelRef { repo_id, revision })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.revision == "main" {
            f.write_str(&self.repo_id)
        } else {
            write!(f, "{}@{}", self.repo_id, self.revision)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_revisions_and_aliases() {
        let m: ModelRef = "org/model.v2_x@refs/pr/3".parse().unwrap();
        assert_eq!(
            (m.repo_id.as_str(), m.revision.as_str()),
            ("org/model.v2_x", "refs/pr/3")
        );
        assert_eq!(m.cache_folder(), "models--org--model.v2_x");
        let m: ModelRef = "BGE-SMALL-EN-V1.5".parse().unwrap();
        assert_eq!(m.repo_id, "BAAI/bge-small-en-v1.5");
        assert_eq!(m.to_string(), "BAAI/bge-small-en-v1.5");
        let c = "0123456789abcdef0123456789abcdef01234567";
        let m: ModelRef = format!("a/b@{c}").parse().unwrap();
        assert!(m.is_commit());
        assert_eq!(m.to_string(), format!("a/b@{c}"));
    }

    #[test]
    fn rejects_bad_names() {
        for s in [
            "",
            "nope",
            "a/",
            "/b",
            "a/b/c",
            "a--b/c",
            "a/b@",
            "a/b@x y",
            "../x",
            "a/b@../../etc",
            "a/b@/main",
            "a/b@refs//x",
            "a/b@.",
            "a/b@x\\y",
        ] {
            let e = s.parse::<ModelRef>().unwrap_err();
            assert!(matches!(e, Error::InvalidName { .. }), "{s}: {e}");
        }
    }
}
