//! Library errors as the Python exceptions sentence-transformers users expect: a model that
//! cannot be found or read is an `OSError` (as `SentenceTransformer("no/such-model")` raises), a bad
//! option or input a `ValueError`, anything else a `RuntimeError` — each with the whole cause chain
//! on one line.

use pyo3::PyErr;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};

/// `e` and its sources, joined as the CLI prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// An engine error as a Python exception.
pub fn engine(e: sembed::Error) -> PyErr {
    let msg = chain(&e);
    match e {
        sembed::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        sembed::Error::Io { .. } | sembed::Error::Hub(_) => PyOSError::new_err(msg),
        sembed::Error::InvalidOption(_)
        | sembed::Error::TooLong { .. }
        | sembed::Error::Tokenizer(_)
        | sembed::Error::Unsupported { .. }
        | sembed::Error::InvalidFile { .. }
        | sembed::Error::Tensor { .. } => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// An index error as a Python exception.
pub fn index(e: sembed_index::Error) -> PyErr {
    match e {
        sembed_index::Error::Engine(e) => engine(e),
        sembed_index::Error::Invalid(_) => PyValueError::new_err(chain(&e)),
        sembed_index::Error::Io { .. } => PyOSError::new_err(chain(&e)),
        e => PyRuntimeError::new_err(chain(&e)),
    }
}
