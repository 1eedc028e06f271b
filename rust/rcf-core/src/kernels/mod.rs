//! The kernels under everything else: dimension counts, box arithmetic, the separation of a
//! point from a box, the RCF score's scale. Plain functions of slices (and, in [`simd`], of
//! vectors); this module uses nothing else of the crate.
pub(crate) mod simd;

/// Minimum for values known not to be NaN (one instruction, unlike `f32::min`).
#[inline(always)]
pub(crate) fn fmin(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// Maximum for values known not to be NaN.
#[inline(always)]
pub(crate) fn fmax(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// The number of dimensions a kernel works on: the compile-time `D` (so loops unroll and bounds
/// checks vanish), or the run-time `n` when `D == 0`.
#[inline(always)]
pub(crate) const fn dims<const D: usize>(n: usize) -> usize {
    if D == 0 {
        n
    } else {
        D
    }
}

/// Widens `lo/hi` by the box `blo/bhi` (a point when both are the same slice), for `D`
/// dimensions (0: any).
#[inline(always)]
pub(crate) fn widen_d<const D: usize>(lo: &mut [f32], hi: &mut [f32], blo: &[f32], bhi: &[f32]) {
    let n = dims::<D>(lo.len());
    let (lo, hi, blo, bhi) = (&mut lo[..n], &mut hi[..n], &blo[..n], &bhi[..n]);
    for i in 0..n {
        lo[i] = fmin(lo[i], blo[i]);
        hi[i] = fmax(hi[i], bhi[i]);
    }
}

/// Out-of-box distance and total span of `lo/hi ∪ q` (their ratio is the probability that a
/// random cut separates q). f32 is exact enough for a ratio of a few sums, and `out == 0`
/// exactly when q lies in the box.
#[inline(always)]
pub(crate) fn separation(lo: &[f32], hi: &[f32], q: &[f32]) -> (f64, f64) {
    separation_d::<0>(lo, hi, q)
}

/// [`separation`] for `D` dimensions (0: any).
#[inline(always)]
pub(crate) fn separation_d<const D: usize>(lo: &[f32], hi: &[f32], q: &[f32]) -> (f64, f64) {
    let n = dims::<D>(q.len());
    let (lo, hi, q) = (&lo[..n], &hi[..n], &q[..n]);
    let mut out = 0.0f32;
    let mut span = 0.0f32;
    for i in 0..n {
        let (a, b, x) = (lo[i], hi[i], q[i]);
        // Branch-free distance outside [a, b] (no NaN can occur: all values are finite).
        let below = a - x;
        let above = x - b;
        out += if below > 0.0 { below } else { 0.0 } + if above > 0.0 { above } else { 0.0 };
        span += b - a;
    }
    (f64::from(out), f64::from(out) + f64::from(span))
}

/// [`separation_d`], through the vector kernel for point sizes 4, 8 and 16.
#[inline(always)]
pub(crate) fn separation_any<const D: usize>(lo: &[f32], hi: &[f32], q: &[f32]) -> (f64, f64) {
    match D {
        4 => simd::separation::<1>(&simd::load(lo), &simd::load(hi), &simd::load(q)),
        8 => simd::separation::<2>(&simd::load(lo), &simd::load(hi), &simd::load(q)),
        16 => simd::separation::<4>(&simd::load(lo), &simd::load(hi), &simd::load(q)),
        _ => separation_d::<D>(lo, hi, q),
    }
}

/// `log2(mass + 1)`, the scale of a tree's RCF score, from a table for trees of up to 1024
/// points (a logarithm per tree and point was 4% of a score's instructions).
#[inline(always)]
pub(crate) fn norm_of(mass: f64) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| (0..=1024).map(|m| (f64::from(m) + 1.0).log2()).collect());
    table
        .get(mass as usize)
        .copied()
        .unwrap_or_else(|| (mass + 1.0).log2())
}

/// The RCF score in a tree of mass `tree_mass` of a point equal to the leaf of mass `mass` at
/// `depth`: the one formula for the read-only score, the insertion's and the attribution.
#[inline]
pub(crate) fn duplicate_score(depth: usize, mass: u32, tree_mass: u32) -> f64 {
    let (m, big_m) = (f64::from(mass), f64::from(tree_mass));
    (1.0 - m / (2.0 * big_m)) / (depth as f64 + (m + 1.0).log2()) * norm_of(big_m)
}
