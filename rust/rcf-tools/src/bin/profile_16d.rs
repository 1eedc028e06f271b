//! Instruction counts for 16-d points (the benchmark's third workload) on a warmed forest.
//! Usage: PART=none|score|stream valgrind --tool=callgrind \
//!   target/profiling/profile_16d   (subtract `none` for the part's own cost)
use rcf_core::{Forest, ForestConfig};

fn main() {
    const D: usize = 16;
    let mut c = ForestConfig::new(D);
    c.seed = Some(1);
    c.threads = Some(1);
    // A random walk plus noise, as in benches/conftest.py (own generator: no dependency).
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut walk = [0.0f64; D];
    let rows: Vec<f64> = (0..12_000)
        .flat_map(|_| {
            let mut r = [0.0; D];
            for (w, v) in walk.iter_mut().zip(r.iter_mut()) {
                *w += (uniform() - 0.5) * 0.1;
                *v = *w + (uniform() - 0.5) * 2.0;
            }
            r
        })
        .collect();
    let mut f = Forest::new(c).unwrap();
    f.update_many(&rows[..10_000 * D]).unwrap();
    let rest = &rows[10_000 * D..];
    let part = std::env::var("PART").unwrap_or_default();
    let mut s = 0.0;
    for x in rest.chunks(D) {
        s += match part.as_str() {
            "score" => f.score(x).unwrap(),
            "stream" => f.score_update(x).unwrap(),
            _ => 0.0,
        };
    }
    println!("{part}: {s:.3} over {} points", rest.len() / D);
}
