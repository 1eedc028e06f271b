//! Streams a series through a standard forest; used with `perf record` to profile the core.
//! Usage: cargo run --profile profiling --example profile_stream -- [points] [dims]
use rcf_core::{Forest, ForestConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let dims: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut c = ForestConfig::new(dims);
    c.shingle_size = if dims == 1 { 4 } else { 1 };
    c.seed = Some(1);
    c.num_trees = std::env::var("TREES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    c.threads = std::env::var("THREADS").ok().and_then(|v| v.parse().ok());
    let mut f = Forest::new(c).unwrap();
    let mut x = vec![0.0; dims];
    let start = std::time::Instant::now();
    let mut total = 0.0;
    for i in 0..n {
        for (j, v) in x.iter_mut().enumerate() {
            let t = i as f64 * 0.05 + j as f64;
            *v = 10_000.0 + 5_000.0 * t.sin() + 300.0 * (t * 7.3).cos();
        }
        total += f.score_update(&x).unwrap();
    }
    let dt = start.elapsed().as_secs_f64();
    let depths: Vec<(f64, usize)> = f
        .components()
        .iter()
        .map(|c| depth_stats(&c.tree, f.store()))
        .collect();
    let mean = depths.iter().map(|d| d.0).sum::<f64>() / depths.len() as f64;
    let max = depths.iter().map(|d| d.1).max().unwrap_or(0);
    println!("mean leaf depth {mean:.1}, max {max}");
    println!(
        "{n} points in {dt:.3}s: {:.0} points/s (mean score {:.3})",
        n as f64 / dt,
        total / n as f64
    );
}

/// Mass-weighted mean depth of a tree's leaves and the largest depth (a leaf's own point leads
/// to it).
fn depth_stats(tree: &rcf_core::Tree, store: &rcf_core::PointStore) -> (f64, usize) {
    let (mut sum, mut count, mut max) = (0.0, 0.0, 0);
    for (id, mass) in tree.leaves() {
        let d = tree.leaf_depth(store.point(id));
        sum += f64::from(mass) * d as f64;
        count += f64::from(mass);
        max = max.max(d);
    }
    (if count > 0.0 { sum / count } else { 0.0 }, max)
}
