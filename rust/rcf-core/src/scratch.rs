//! Per-thread scratch buffers for tree walks, so that no walk allocates.
use std::cell::RefCell;

use crate::lanes::Lanes;

/// Reusable buffers of one thread.
#[derive(Default)]
pub struct Scratch {
    /// Node path of the current walk.
    pub path: Vec<u16>,
    /// The last lockstep walk (see `lockstep`).
    pub(crate) lanes: Lanes,
    /// Two boxes' worth of f32 (lo, hi).
    pub boxes: Vec<f32>,
    /// Per-level or per-dimension f64 work space (an insertion's level separations).
    pub work: Vec<f64>,
    /// Second f64 work space.
    pub work2: Vec<f64>,
}

impl Scratch {
    /// Two slices of `d` values each: a box's lower and upper corners.
    pub fn box_pair(&mut self, d: usize) -> (&mut [f32], &mut [f32]) {
        box_pair(&mut self.boxes, d)
    }
}

/// Two slices of `d` values each carved from `buf` (grown when needed).
pub fn box_pair(buf: &mut Vec<f32>, d: usize) -> (&mut [f32], &mut [f32]) {
    if buf.len() < 2 * d {
        buf.resize(2 * d, 0.0);
    }
    let (lo, rest) = buf.split_at_mut(d);
    (lo, &mut rest[..d])
}

/// Room for one box of `d` values (lo, hi): on the stack for up to 16 values, else on the
/// heap (for the few walks that must not borrow a thread's scratch).
pub struct BoxRoom {
    lo: [f32; 16],
    hi: [f32; 16],
    big: Vec<f32>,
    d: usize,
}

impl BoxRoom {
    /// Room for a box of `d` values.
    pub fn new(d: usize) -> Self {
        BoxRoom {
            lo: [0.0; 16],
            hi: [0.0; 16],
            big: if d > 16 { vec![0.0; 2 * d] } else { Vec::new() },
            d,
        }
    }

    /// The box's two corners.
    pub fn pair(&mut self) -> (&mut [f32], &mut [f32]) {
        if self.d <= 16 {
            (&mut self.lo[..self.d], &mut self.hi[..self.d])
        } else {
            self.big.split_at_mut(self.d)
        }
    }
}

/// Two zeroed f64 vectors of length `d` (per-dimension high and low parts).
pub fn zeroed_pair<'a>(
    a: &'a mut Vec<f64>,
    b: &'a mut Vec<f64>,
    d: usize,
) -> (&'a mut [f64], &'a mut [f64]) {
    a.clear();
    a.resize(d, 0.0);
    b.clear();
    b.resize(d, 0.0);
    (a.as_mut_slice(), b.as_mut_slice())
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers.
pub fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        // Re-entrant use (never expected): fall back to fresh buffers rather than panic.
        Err(_) => f(&mut Scratch::default()),
    })
}
