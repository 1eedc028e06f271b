//! Pinned behaviour: checksums of every score and of the saved state for a set of seeded
//! configurations. A refactoring must leave them equal; a deliberate change of scores or of
//! the state format updates the constants (and says so in its commit).
//!
//! The constants were recorded on commit 8e526df (before the tree split of issue 12).
use std::fmt::Write;

use rcf_core::{Forest, ForestConfig, SamplerKind, ScoringKind};

/// FNV-1a over bytes.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn f64(&mut self, v: f64) {
        self.bytes(&v.to_bits().to_le_bytes());
    }
}

/// A seeded series of `n` rows of `d` values: sines with noise, rare spikes and, with `coarse`,
/// values rounded to halves (so that duplicate points occur).
fn series(n: usize, d: usize, seed: u64, coarse: bool) -> Vec<f64> {
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(n * d);
    for i in 0..n {
        let spike = next() < 0.01;
        for j in 0..d {
            let t = i as f64 * 0.07 + j as f64;
            let mut v = 10.0 * t.sin() + (next() - 0.5) * 2.0;
            if spike {
                v += 30.0;
            }
            if coarse {
                v = (v * 2.0).round() / 2.0;
            }
            out.push(v);
        }
    }
    out
}

struct Case {
    dims: usize,
    shingle: usize,
    sampler: SamplerKind,
    scoring: ScoringKind,
    coarse: bool,
    threads: usize,
}

/// (scores checksum, state checksum) of one case: one-point calls, batches, read-only scores
/// and attributions, then the saved state.
fn run(c: &Case) -> (u64, u64) {
    let mut cfg = ForestConfig::new(c.dims);
    cfg.shingle_size = c.shingle;
    cfg.num_trees = 24;
    cfg.sample_size = 64;
    cfg.sampler = c.sampler;
    cfg.scoring = c.scoring;
    cfg.seed = Some(42 + c.dims as u64);
    cfg.threads = Some(c.threads);
    let d = c.dims;
    let x = series(3000, d, 7 * c.dims as u64 + c.shingle as u64, c.coarse);
    let mut f = Forest::new(cfg).unwrap();
    let mut h = Fnv::new();
    // One point at a time.
    for row in x[..1000 * d].chunks(d) {
        h.f64(f.score_update(row).unwrap());
    }
    // Batches.
    for s in f.score_update_many(&x[1000 * d..2000 * d]).unwrap() {
        h.f64(s);
    }
    f.update_many(&x[2000 * d..2500 * d]).unwrap();
    // Read-only.
    for s in f.score_many(&x[2500 * d..2800 * d]).unwrap() {
        h.f64(s);
    }
    for row in x[2800 * d..2900 * d].chunks(d) {
        h.f64(f.score(row).unwrap());
        let a = f.attribution(row).unwrap();
        for v in a.high.iter().chain(&a.low) {
            h.f64(*v);
        }
    }
    for row in x[2900 * d..].chunks(d) {
        h.f64(f.score_update(row).unwrap());
    }
    let mut s = Fnv::new();
    s.bytes(&f.to_bytes());
    (h.0, s.0)
}

fn cases() -> Vec<Case> {
    use SamplerKind::{Decay, Window};
    use ScoringKind::{CoDisp, Rcf};
    let case = |dims, shingle, sampler, scoring, coarse, threads| Case {
        dims,
        shingle,
        sampler,
        scoring,
        coarse,
        threads,
    };
    vec![
        case(1, 1, Decay, Rcf, false, 1),
        case(1, 4, Decay, Rcf, false, 2),
        case(1, 4, Window, CoDisp, false, 1),
        case(2, 1, Decay, CoDisp, true, 1),
        case(2, 4, Decay, Rcf, false, 1),
        case(2, 2, Window, Rcf, true, 2),
        case(4, 1, Window, Rcf, false, 1),
        case(4, 1, Decay, Rcf, true, 1),
        case(5, 1, Decay, CoDisp, false, 1),
        case(5, 2, Window, Rcf, false, 1),
        case(5, 1, Decay, Rcf, true, 2),
        case(16, 1, Decay, Rcf, false, 1),
        case(16, 1, Window, CoDisp, false, 2),
    ]
}

/// Recorded on commit 8e526df: (scores, state) per case of [`cases`], in order.
const PINNED: [(u64, u64); 13] = [
    (0x0bf7_b279_828c_9e65, 0x03c3_ccfb_0148_46d6),
    (0x8a02_4de4_282a_c929, 0xe146_6f08_5454_8d95),
    (0x32be_9a19_66ab_366b, 0x918e_17df_db1c_fbed),
    (0xc929_4714_4f1b_d60d, 0xc17e_35c6_45d6_82cc),
    (0x1c13_b115_f8b4_18e4, 0x6112_47fc_4d2b_fd9c),
    (0xedda_86eb_e630_df58, 0xa6bf_fa58_0667_3b6e),
    (0xd355_8e1f_2ed2_1fd6, 0x7b5b_550a_c6d3_2038),
    (0x364e_2da4_925d_9df7, 0x81bb_b64c_ffdc_00d1),
    (0xda33_6df6_308e_ca61, 0xedaa_d864_9ee4_21fa),
    (0x073e_cbbf_9825_56b5, 0x9533_b75f_cccc_5b57),
    (0xc3d8_9f23_3b84_4457, 0x6be7_ad81_b10c_c9ac),
    (0x9006_09b5_765e_003a, 0x3801_83e3_7aae_5836),
    (0xd082_dd09_6370_609e, 0x26ce_17df_1ae8_b4db),
];

#[test]
fn scores_and_state_bytes_are_pinned() {
    let got: Vec<(u64, u64)> = cases().iter().map(run).collect();
    let mut listing = String::new();
    for (a, b) in &got {
        writeln!(listing, "    (0x{a:016x}, 0x{b:016x}),").unwrap();
    }
    for (i, (g, want)) in got.iter().zip(PINNED.iter()).enumerate() {
        assert_eq!(g, want, "case {i} changed; all cases now:\n{listing}");
    }
}
