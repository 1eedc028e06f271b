//! The `rcf_fast._rcf` extension module: thin PyO3 bindings over `rcf-core`.
use pyo3::prelude::*;

mod arrays;
mod errors;
mod forest;
mod keyed;
mod rrcf;

#[pymodule]
fn _rcf(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<forest::PyForest>()?;
    m.add_class::<forest::PyAttribution>()?;
    m.add_class::<keyed::PyKeyed>()?;
    m.add("StateError", m.py().get_type::<errors::StateError>())?;
    rrcf::register(m)?;
    Ok(())
}
