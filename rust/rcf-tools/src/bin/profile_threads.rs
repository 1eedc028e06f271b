//! Per-point streaming speed with 1 thread against `threads` (env THREADS, default all cores),
//! alternating blocks of points in one process so that both see the same machine noise.
//! Usage: cargo run --profile profiling -p rcf-tools --bin profile_threads -- [points] [dims]
use rcf_core::{Forest, ForestConfig};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(40_000);
    let dims: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let threads = std::env::var("THREADS").ok().and_then(|v| v.parse().ok());
    let mut c = ForestConfig::new(dims);
    c.shingle_size = if dims == 1 { 4 } else { 1 };
    c.seed = Some(1);
    let mut f = Forest::new(c).unwrap();
    let mut x = vec![0.0; dims];
    let mut point = |i: usize, f: &mut Forest| {
        for (j, v) in x.iter_mut().enumerate() {
            let t = i as f64 * 0.05 + j as f64;
            *v = 10_000.0 + 5_000.0 * t.sin() + 300.0 * (t * 7.3).cos();
        }
        f.score_update(&x).unwrap()
    };
    for i in 0..2_000 {
        point(i, &mut f);
    }
    let block = 500;
    let mut secs = [0.0f64; 2];
    let mut total = 0.0;
    for (b, start) in (2_000..n).step_by(block).enumerate() {
        let mode = b % 2;
        f.set_threads(if mode == 0 { Some(1) } else { threads })
            .unwrap();
        let t = Instant::now();
        for i in start..(start + block).min(n) {
            total += point(i, &mut f);
        }
        secs[mode] += t.elapsed().as_secs_f64();
    }
    let per_mode = (n - 2_000) as f64 / 2.0;
    println!(
        "threads=1: {:.0} points/s; threads={threads:?}: {:.0} points/s; ratio {:.2} (checksum {total:.3})",
        per_mode / secs[0],
        per_mode / secs[1],
        secs[0] / secs[1]
    );
}
