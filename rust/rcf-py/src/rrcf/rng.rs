//! Random sources of a Python-facing rrcf tree: an owned MT19937, or (compat mode) the numpy
//! `RandomState` the user passed (or numpy's global one), drawn through numpy's `bitgen_t`.
//!
//! rrcf 0.4.4 keeps a reference to the `RandomState` and draws from it, so trees sharing one
//! generator interleave their draws. Calling numpy's C `next_double` through the `BitGenerator`
//! capsule reproduces that exactly without a Python call per draw.
use std::ffi::c_void;

use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use rcf_core::rrcf::{Mt19937, UniformSource};

/// numpy's `bitgen_t` (numpy/random/bitgen.h).
#[repr(C)]
struct BitGen {
    state: *mut c_void,
    next_uint64: unsafe extern "C" fn(*mut c_void) -> u64,
    next_uint32: unsafe extern "C" fn(*mut c_void) -> u32,
    next_double: unsafe extern "C" fn(*mut c_void) -> f64,
    next_raw: unsafe extern "C" fn(*mut c_void) -> u64,
}

/// A numpy generator shared with Python.
pub struct SharedGen {
    /// The `RandomState` (kept alive, pickled with the tree).
    pub owner: Py<PyAny>,
    /// The bit generator's lock, held while a tree operation draws.
    lock: Py<PyAny>,
    bitgen: *mut BitGen,
}

// SAFETY: `bitgen` points into the BitGenerator that `owner` keeps alive; it is only used by tree
// methods, which run attached to the interpreter and hold the bit generator's own lock.
unsafe impl Send for SharedGen {}
unsafe impl Sync for SharedGen {}

impl SharedGen {
    /// Wraps `random_state._bit_generator` of a numpy `RandomState`.
    pub fn new(owner: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bit_generator = owner.getattr("_bit_generator")?;
        let capsule = bit_generator.getattr("capsule")?;
        let capsule = capsule.cast::<PyCapsule>()?;
        let ptr = capsule.pointer_checked(Some(c"BitGenerator"))?;
        Ok(SharedGen {
            owner: owner.clone().unbind(),
            lock: bit_generator.getattr("lock")?.unbind(),
            bitgen: ptr.as_ptr().cast::<BitGen>(),
        })
    }
}

/// The generator a tree draws its cuts from.
pub enum TreeRng {
    /// Owned by the tree (seeded from an int or a key); pickled with it.
    Owned(Mt19937),
    /// A numpy `RandomState` shared with Python code (compat mode).
    Shared(SharedGen),
}

impl TreeRng {
    /// Runs `f` with a source of doubles, holding the shared generator's lock if there is one.
    pub fn with<T>(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut dyn UniformSource) -> T,
    ) -> PyResult<T> {
        match self {
            TreeRng::Owned(mt) => Ok(f(mt)),
            TreeRng::Shared(shared) => {
                let lock = shared.lock.bind(py).clone();
                lock.call_method0("acquire")?;
                let mut src = SharedSource {
                    bitgen: shared.bitgen,
                };
                let out = f(&mut src);
                lock.call_method0("release")?;
                Ok(out)
            }
        }
    }
}

struct SharedSource {
    bitgen: *mut BitGen,
}

impl UniformSource for SharedSource {
    fn next_f64(&mut self) -> f64 {
        // SAFETY: see `SharedGen`; numpy's next_double takes the state pointer of its bitgen.
        unsafe { ((*self.bitgen).next_double)((*self.bitgen).state) }
    }
}
