//! Best-of-60 timing of one kind of call on a warmed standard forest, for A/B comparisons on a
//! noisy machine (the minimum over short passes is stable where means are not).
//! Usage: MODE=score|update|stream|batch [DIMS=1|16] [THREADS=n] [V=1]
//!        cargo run --profile profiling -p rcf-core --example time_min
use rcf_core::{Forest, ForestConfig};
use std::time::Instant;

fn main() {
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<usize>().ok());
    let dims = env("DIMS").unwrap_or(1);
    let mut c = ForestConfig::new(dims);
    c.shingle_size = if dims == 1 { 4 } else { 1 };
    c.seed = Some(1);
    c.threads = Some(env("THREADS").unwrap_or(1));
    let x: Vec<f64> = (0..80_000 * dims)
        .map(|i| {
            let t = (i / dims) as f64 * 0.05 + (i % dims) as f64;
            10_000.0 + 5_000.0 * t.sin() + 300.0 * (t * 7.3).cos()
        })
        .collect();
    let mut f = Forest::new(c).unwrap();
    f.update_many(&x[..10_000 * dims]).unwrap();
    let n = 1000;
    let mode = std::env::var("MODE").unwrap_or_else(|_| "stream".into());
    let mut best = f64::MAX;
    let mut sum = 0.0;
    for rep in 0..60 {
        let rest = &x[(10_000 + rep * n) * dims..(10_000 + rep * n + n) * dims];
        let t = Instant::now();
        match mode.as_str() {
            "score" => rest.chunks(dims).for_each(|v| sum += f.score(v).unwrap()),
            "update" => rest.chunks(dims).for_each(|v| f.update(v).unwrap()),
            "batch" => sum += f.score_update_many(rest).unwrap().iter().sum::<f64>(),
            _ => rest
                .chunks(dims)
                .for_each(|v| sum += f.score_update(v).unwrap()),
        }
        let e = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        if std::env::var_os("V").is_some() {
            eprint!("{e:.1} ");
        }
        best = best.min(e);
    }
    // The checksum shows that two builds computed the same scores.
    println!("{mode}: min {best:.2} us/point [{sum:.3}]");
}
