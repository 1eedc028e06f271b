//! Floating-point helpers that reproduce numpy's exact arithmetic where rrcf's results depend on it.
//!
//! rrcf computes sums with `ndarray.sum()` (pairwise summation in blocks of 8, not a left-to-right
//! loop), cumulative sums with `np.cumsum` (left to right), rounds with `np.around` (scale, round
//! half to even, unscale) and compares with `np.isclose`. Bit-exact parity needs the same order of
//! operations, so these functions mirror numpy's C loops.

/// `np.sum` of a contiguous float64 vector: numpy's `pairwise_sum` started from 0.
#[inline]
pub fn pairwise_sum(a: &[f64]) -> f64 {
    0.0 + pairwise(a)
}

fn pairwise(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(&a[..n2]) + pairwise(&a[n2..])
    }
}

/// numpy's `power_of_ten`: exact table up to 1e8, then repeated multiplication by ten.
fn power_of_ten(n: u32) -> f64 {
    const P10: [f64; 9] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
    if (n as usize) < P10.len() {
        P10[n as usize]
    } else {
        let mut ret = 1e9;
        for _ in 9..n {
            ret *= 10.0;
            if ret == f64::INFINITY {
                // numpy keeps multiplying an infinity; the result cannot change any more.
                break;
            }
        }
        ret
    }
}

/// `np.around(x, decimals)` for float64: `rint(x * 10**d) / 10**d` (or the inverse for d < 0).
pub fn around(x: f64, decimals: i32) -> f64 {
    Rounder::new(decimals).round(x)
}

/// `np.around` with its power of ten computed once (numpy does it once per array).
#[derive(Clone, Copy, Debug)]
pub struct Rounder {
    factor: f64,
    negative: bool,
}

impl Rounder {
    /// Rounding to `decimals` decimals (negative: to tens, hundreds, ...).
    pub fn new(decimals: i32) -> Self {
        Rounder {
            factor: power_of_ten(decimals.unsigned_abs()),
            negative: decimals < 0,
        }
    }
    /// `x` rounded like `np.around` (may overflow to an infinity or give NaN, as numpy does).
    #[inline]
    pub fn round(self, x: f64) -> f64 {
        if self.negative {
            (x / self.factor).round_ties_even() * self.factor
        } else {
            (x * self.factor).round_ties_even() / self.factor
        }
    }
}

/// `np.isclose(a, b, rtol=rtol, atol=1e-8)` for one pair (numpy 2 formula, `equal_nan=False`).
pub fn isclose(a: f64, b: f64, rtol: f64) -> bool {
    let atol = 1e-8;
    ((a - b).abs() <= atol + rtol * b.abs() && b.is_finite()) || a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_differs_from_sequential_like_numpy() {
        let a: Vec<f64> = (0..20).map(|i| 0.1 * f64::from(i) + 1e-3).collect();
        let seq: f64 = a.iter().sum();
        // Same value up to rounding; the exact bits follow numpy's blocked order.
        assert!((pairwise_sum(&a) - seq).abs() < 1e-12);
        assert_eq!(pairwise_sum(&[1.0, 2.0, 3.0]), 6.0);
    }

    #[test]
    fn around_rounds_half_to_even() {
        assert_eq!(around(0.5, 0), 0.0);
        assert_eq!(around(1.5, 0), 2.0);
        assert_eq!(around(1234.5, -1), 1230.0);
        assert_eq!(around(0.123_456_789_01, 9), 0.123_456_789);
    }

    #[test]
    fn huge_precisions_return_quickly_with_numpy_results() {
        // numpy: 10**d overflows to inf, x * inf = inf, rint(inf) / inf = NaN; 0 * inf = NaN.
        assert!(around(1.5, i32::MAX).is_nan());
        assert!(around(0.0, i32::MAX).is_nan());
        assert!(around(1.5, i32::MIN).is_nan());
        assert!(around(0.0, i32::MIN).is_nan());
        assert_eq!(around(1.5, 308), 1.5);
        assert_eq!(around(2.5, 308), f64::INFINITY);
    }
}
