//! Points and boxes of `4·N` values as `N` vectors of four f32 (`wide`: SSE on x86-64, NEON on
//! aarch64, plain arrays elsewhere; no unsafe code here). The score's climb spends most of its
//! instructions on box arithmetic, which these kernels do four dimensions at a time.
use wide::f32x4;

/// `4·N` values.
pub(crate) type Lanes<const N: usize> = [f32x4; N];

/// The first `4·N` values of `s` as vectors.
#[inline(always)]
pub(crate) fn load<const N: usize>(s: &[f32]) -> Lanes<N> {
    let s = &s[..4 * N];
    std::array::from_fn(|i| {
        let c: [f32; 4] = s[4 * i..4 * i + 4].try_into().expect("four values");
        f32x4::from(c)
    })
}

/// Widens `lo/hi` by the box `blo/bhi` (a point when both are the same).
#[inline(always)]
pub(crate) fn widen<const N: usize>(
    lo: &mut Lanes<N>,
    hi: &mut Lanes<N>,
    blo: &Lanes<N>,
    bhi: &Lanes<N>,
) {
    for i in 0..N {
        lo[i] = lo[i].fast_min(blo[i]);
        hi[i] = hi[i].fast_max(bhi[i]);
    }
}

/// Out-of-box distance of `q` from `lo/hi` and the total span of the box extended by `q`; the
/// vector form of `score::separation` (terms summed lane by lane, then across lanes).
#[inline(always)]
pub(crate) fn separation<const N: usize>(lo: &Lanes<N>, hi: &Lanes<N>, q: &Lanes<N>) -> (f64, f64) {
    let zero = f32x4::ZERO;
    let mut out = zero;
    let mut span = zero;
    for i in 0..N {
        out += (lo[i] - q[i]).fast_max(zero) + (q[i] - hi[i]).fast_max(zero);
        span += hi[i] - lo[i];
    }
    let out = out.reduce_add();
    let span = span.reduce_add();
    (f64::from(out), f64::from(out) + f64::from(span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_matches_the_scalar_definition() {
        let lo = [0.0f32, 1.0, -2.0, 5.0, 0.5, 0.5, 0.5, 0.5];
        let hi = [1.0f32, 3.0, 2.0, 5.0, 1.5, 2.5, 0.5, 9.0];
        let q = [2.0f32, 0.0, 0.0, 5.0, 0.0, 3.0, 0.5, 1.0];
        let (out, total) = separation::<2>(&load(&lo), &load(&hi), &load(&q));
        // Outside by 1 (dim 0), 1 (dim 1), 0.5 (dim 4), 0.5 (dim 5).
        assert_eq!(out, 3.0);
        let span: f32 = lo.iter().zip(&hi).map(|(a, b)| b - a).sum();
        assert_eq!(total, 3.0 + f64::from(span));
        let (mut l, mut h) = (load::<2>(&lo), load::<2>(&hi));
        widen(&mut l, &mut h, &load(&q), &load(&q));
        let (out, _) = separation::<2>(&l, &h, &load(&q));
        assert_eq!(out, 0.0);
    }
}
