//! The `rcf_fast._rcf` extension module: thin PyO3 bindings over `rcf-core`.
use pyo3::prelude::*;

mod rrcf;

#[pymodule]
fn _rcf(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    rrcf::register(m)?;
    Ok(())
}
