//! `sembed._sembed`: the Rust half of the Python package. Thin on purpose — types that own an
//! engine object and hand back numpy arrays; everything sentence-transformers-shaped (argument
//! names, return types, quantization, similarity functions) is the Python layer in `sembed/`.
//!
//! Every call that computes releases the GIL (`Python::detach`), so Python threads embed in
//! parallel on the engine's thread budget.

mod error;
mod index;
mod model;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _sembed(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<model::Model>()?;
    m.add_class::<index::Index>()?;
    m.add_class::<index::EmbeddingCache>()?;
    Ok(())
}
