//! Random sources of a Python-facing rrcf tree: an owned MT19937, or the numpy `RandomState` the
//! user passed (or numpy's global one), drawn through numpy's `bitgen_t`.
//!
//! rrcf keeps a reference to the `RandomState` and draws from it, so trees sharing one generator
//! interleave their draws. Calling numpy's C `next_double` through the `BitGenerator` capsule
//! reproduces that exactly without a Python call per draw.
//!
//! The tree holds only a reference to the `RandomState`. Its bit generator can be replaced at any
//! time from Python (`rs.__init__(5)` makes a new one and frees the old), so the bit generator,
//! its lock and the `bitgen_t` pointer are fetched again for every operation ([`SharedGen::lease`])
//! and the bit generator object is kept alive by the returned [`Lease`] while the pointer is used.
use std::ffi::c_void;
use std::ptr::NonNull;

use pyo3::exceptions::PyTypeError;
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

/// A numpy `RandomState` shared with Python: only an owned reference, no pointer into it.
pub struct SharedGen {
    /// The `RandomState` (kept alive, pickled with the tree).
    pub owner: Py<PyAny>,
}

/// The bit generator of a `RandomState`, borrowed for one tree operation: the bit generator object
/// is held (so its `bitgen_t` stays allocated) and its lock is acquired until the lease is dropped.
pub struct Lease<'py> {
    /// Keeps the BitGenerator (which owns the `bitgen_t` struct) alive while `bitgen` is used.
    _bit_generator: Bound<'py, PyAny>,
    lock: Bound<'py, PyAny>,
    bitgen: NonNull<BitGen>,
}

impl SharedGen {
    /// Wraps a numpy `RandomState` (checked now, and again on every use).
    pub fn new(owner: &Bound<'_, PyAny>) -> PyResult<Self> {
        let me = SharedGen {
            owner: owner.clone().unbind(),
        };
        // Fail at construction, not at the first insert, if it is not a usable generator.
        drop(me.lease(owner.py())?);
        Ok(me)
    }

    /// Fetches the current bit generator of the `RandomState` and acquires its lock.
    ///
    /// Runs Python code (attribute lookups, `lock.acquire`), so callers must not hold a borrow of
    /// the tree while calling it.
    pub fn lease<'py>(&self, py: Python<'py>) -> PyResult<Lease<'py>> {
        let owner = self.owner.bind(py);
        let not_gen = || {
            PyTypeError::new_err(format!(
                "random_state must be a numpy.random.RandomState with a numpy BitGenerator; got {}",
                owner
                    .get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        };
        let bit_generator = owner.getattr("_bit_generator").map_err(|_| not_gen())?;
        let capsule = bit_generator.getattr("capsule").map_err(|_| not_gen())?;
        let capsule = capsule.cast::<PyCapsule>().map_err(|_| not_gen())?;
        // Checks the capsule's name: numpy names the capsule of a `bitgen_t` "BitGenerator".
        let ptr = capsule
            .pointer_checked(Some(c"BitGenerator"))
            .map_err(|_| not_gen())?;
        let lock = bit_generator.getattr("lock").map_err(|_| not_gen())?;
        lock.call_method0("acquire")?;
        Ok(Lease {
            _bit_generator: bit_generator,
            lock,
            bitgen: ptr.cast::<BitGen>(),
        })
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // A failed release (a user-replaced lock object) cannot be reported from drop; the lock
        // is numpy's `threading.Lock`, whose release after our acquire cannot fail.
        let _ = self.lock.call_method0("release");
    }
}

impl UniformSource for Lease<'_> {
    fn next_f64(&mut self) -> f64 {
        // SAFETY: `bitgen` came from the "BitGenerator" capsule of `_bit_generator`, which
        // numpy makes to point at the `bitgen_t` stored inside that BitGenerator object. The
        // lease holds a strong reference to the object, so the struct (and the state it points
        // to) lives as long as the lease; re-seeding the RandomState replaces its
        // `_bit_generator` attribute but cannot free the object we hold. The lease is only used
        // while attached to the interpreter, with the bit generator's lock held (numpy's own
        // rule for touching `bitgen_t`), so no other thread draws concurrently.
        unsafe {
            let g = self.bitgen.as_ptr();
            ((*g).next_double)((*g).state)
        }
    }
}

/// The generator a tree draws its cuts from.
pub enum TreeRng {
    /// Owned by the tree (seeded from an int or a key); pickled with it.
    Owned(Mt19937),
    /// A numpy `RandomState` shared with Python code.
    Shared(SharedGen),
}

impl TreeRng {
    /// The shared generator's owner, if any (to lease it before borrowing the tree).
    pub fn shared_owner(&self, py: Python<'_>) -> Option<SharedGen> {
        match self {
            TreeRng::Owned(_) => None,
            TreeRng::Shared(s) => Some(SharedGen {
                owner: s.owner.clone_ref(py),
            }),
        }
    }

    /// A source of doubles: the owned generator, or the lease of the shared one (which must be
    /// given when this generator is shared).
    pub fn source<'a>(
        &'a mut self,
        lease: Option<&'a mut Lease<'_>>,
    ) -> Option<&'a mut dyn UniformSource> {
        match (self, lease) {
            (TreeRng::Owned(mt), _) => Some(mt),
            (TreeRng::Shared(_), Some(l)) => Some(l),
            (TreeRng::Shared(_), None) => None,
        }
    }
}
