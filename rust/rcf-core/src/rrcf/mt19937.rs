//! MT19937 as numpy's legacy `RandomState` uses it.
//!
//! Seeding follows numpy's `mt19937_seed` (Matsumoto–Nishimura `init_genrand`) for an integer seed
//! and `mt19937_init_by_array` for a key, so `Mt19937::new(s)` draws exactly what
//! `numpy.random.RandomState(s)` draws. `next_f64` is numpy's `random_sample`: 53 bits from two
//! 32-bit outputs, `((a >> 5) * 2^26 + (b >> 6)) / 2^53`.
use serde::{Deserialize, Serialize};

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A source of uniform doubles in `[0, 1)`; trees draw every cut through it.
pub trait UniformSource {
    /// One uniform double in `[0, 1)` (numpy's `random_sample()`).
    fn next_f64(&mut self) -> f64;
}

/// The 32-bit Mersenne Twister with numpy's legacy seeding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mt19937 {
    key: Vec<u32>,
    pos: usize,
}

impl Mt19937 {
    /// Seeds like `numpy.random.RandomState(seed)` for `0 <= seed < 2**32`.
    pub fn new(seed: u32) -> Self {
        let mut key = vec![0u32; N];
        let mut s = seed;
        for (i, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(i as u32 + 1);
        }
        Mt19937 { key, pos: N }
    }

    /// Seeds from a key like `numpy.random.RandomState([k0, k1, ...])` (`init_by_array`).
    pub fn from_key(init_key: &[u32]) -> Self {
        let mut mt = Mt19937::new(19_650_218);
        let key = &mut mt.key;
        let len = init_key.len().max(1);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(len) {
            let prev = key[i - 1] ^ (key[i - 1] >> 30);
            let kj = init_key.get(j).copied().unwrap_or(0);
            key[i] = (key[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(kj)
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                key[0] = key[N - 1];
                i = 1;
            }
            if j >= len {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = key[i - 1] ^ (key[i - 1] >> 30);
            key[i] = (key[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                key[0] = key[N - 1];
                i = 1;
            }
        }
        key[0] = 0x8000_0000;
        mt.pos = N;
        mt
    }

    /// Restores a state as `RandomState.get_state()` reports it (624 words and a position).
    pub fn from_state(key: Vec<u32>, pos: usize) -> Option<Self> {
        (key.len() == N && pos <= N).then_some(Mt19937 { key, pos })
    }

    /// The 624 state words and the position, as `RandomState.get_state()` reports them.
    pub fn state(&self) -> (&[u32], usize) {
        (&self.key, self.pos)
    }

    #[cold]
    fn generate(&mut self) {
        let k = &mut self.key[..N];
        let twist = |a: u32, b: u32, c: u32| {
            let y = (a & UPPER_MASK) | (b & LOWER_MASK);
            c ^ (y >> 1) ^ if y & 1 == 1 { MATRIX_A } else { 0 }
        };
        for i in 0..N - M {
            k[i] = twist(k[i], k[i + 1], k[i + M]);
        }
        for i in N - M..N - 1 {
            k[i] = twist(k[i], k[i + 1], k[i + M - N]);
        }
        k[N - 1] = twist(k[N - 1], k[0], k[M - 1]);
        self.pos = 0;
    }

    /// The next 32-bit output (`genrand_int32`).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

impl UniformSource for Mt19937 {
    #[inline]
    fn next_f64(&mut self) -> f64 {
        let a = u64::from(self.next_u32() >> 5);
        let b = u64::from(self.next_u32() >> 6);
        (a as f64 * 67_108_864.0 + b as f64) / 9_007_199_254_740_992.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_random_state_seed_0() {
        // numpy.random.RandomState(0).randint(0, 2**32, dtype=np.uint64)[:3] uses genrand_int32;
        // reference outputs of the MT19937 reference implementation for init_genrand(0).
        let mut mt = Mt19937::new(0);
        assert_eq!(mt.next_u32(), 2_357_136_044);
        assert_eq!(mt.next_u32(), 2_546_248_239);
        // numpy.random.RandomState(0).random_sample() == 0.5488135039273248
        let mut mt = Mt19937::new(0);
        assert_eq!(mt.next_f64(), 0.548_813_503_927_324_8);
        assert_eq!(mt.next_f64(), 0.715_189_366_372_419_5);
    }

    #[test]
    fn init_by_array_matches_reference() {
        // Reference mt19937ar.c test vector: init_by_array({0x123, 0x234, 0x345, 0x456}).
        let mut mt = Mt19937::from_key(&[0x123, 0x234, 0x345, 0x456]);
        assert_eq!(mt.next_u32(), 1_067_595_299);
        assert_eq!(mt.next_u32(), 955_945_823);
    }
}
