//! Best-of-60 timing of one kind of call on a warmed standard forest, for A/B comparisons on a
//! noisy machine (the minimum over short passes is stable where means are not).
//! Usage: MODE=score|update|stream|batch [DIMS=1|16] [THREADS=n] [TREES=n] [V=1]
//!        cargo run --profile profiling -p rcf-tools --bin time_min
use rcf_core::{Forest, ForestConfig};
use std::time::Instant;

fn main() {
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<usize>().ok());
    let dims = env("DIMS").unwrap_or(1);
    let mut c = ForestConfig::new(dims);
    c.shingle_size = if dims == 1 { 4 } else { 1 };
    c.seed = Some(1);
    c.num_trees = env("TREES").unwrap_or(100);
    c.threads = Some(env("THREADS").unwrap_or(1));
    // CSV=path: the `value` column of a NAB file (1-d), warmed on 2,000 points and each pass
    // streaming the next 2,000 through a fresh copy (the Python benchmark's setting).
    let csv = std::env::var("CSV").ok();
    let x: Vec<f64> = match &csv {
        Some(path) => std::fs::read_to_string(path)
            .expect("readable CSV")
            .lines()
            .skip(1)
            .filter_map(|l| l.rsplit(',').next()?.trim().parse().ok())
            .collect(),
        None => (0..80_000 * dims)
            .map(|i| {
                let t = (i / dims) as f64 * 0.05 + (i % dims) as f64;
                10_000.0 + 5_000.0 * t.sin() + 300.0 * (t * 7.3).cos()
            })
            .collect(),
    };
    let (warm, n) = if csv.is_some() {
        (2_000, 2_000)
    } else {
        (10_000, 1_000)
    };
    let mut f = Forest::new(c).unwrap();
    f.update_many(&x[..warm * dims]).unwrap();
    let warmed = f.clone();
    if std::env::var_os("V").is_some() && dims == 1 {
        // Mean depth of the leaves that the next points reach (shingle 4).
        let q: Vec<Vec<f32>> = x[warm..warm + 500]
            .windows(4)
            .map(|w| w.iter().map(|&v| v as f32).collect())
            .collect();
        let total: usize = q
            .iter()
            .map(|p| {
                f.components()
                    .iter()
                    .map(|c| c.tree.leaf_depth(p))
                    .sum::<usize>()
            })
            .sum();
        eprintln!(
            "mean leaf depth {:.1}",
            total as f64 / (q.len() * f.components().len()) as f64
        );
    }
    let mode = std::env::var("MODE").unwrap_or_else(|_| "stream".into());
    let mut best = f64::MAX;
    let mut sum = 0.0;
    let reps = env("REPS").unwrap_or(60);
    for rep in 0..reps {
        let start = if csv.is_some() {
            f = if std::env::var_os("REBUILD").is_some() {
                let mut g = Forest::new(warmed.config().clone()).unwrap();
                g.update_many(&x[..warm * dims]).unwrap();
                g
            } else {
                warmed.clone()
            };
            warm
        } else {
            warm + rep * n
        };
        let rest = &x[start * dims..(start + n) * dims];
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
