//! Times the parts of a streaming step on a warmed standard forest (1-d, shingle 4).
//! Usage: cargo run --profile profiling -p rcf-tools --bin profile_parts
use rcf_core::{Forest, ForestConfig};
use std::time::Instant;

fn series(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = i as f64 * 0.05;
            10_000.0 + 5_000.0 * t.sin() + 300.0 * (t * 7.3).cos()
        })
        .collect()
}

fn main() {
    let mut c = ForestConfig::new(1);
    c.shingle_size = 4;
    c.seed = Some(1);
    c.threads = Some(1);
    let x = series(30_000);
    let mut f = Forest::new(c.clone()).unwrap();
    f.update_many(&x[..10_000]).unwrap();
    let n = 5_000;
    let rest = &x[10_000..10_000 + n];
    // PART=score|stream|update|batch runs only that part (instruction counts under callgrind).
    if let Ok(part) = std::env::var("PART") {
        if part == "batch" {
            let s: f64 = f.score_update_many(rest).unwrap().iter().sum();
            println!("{part}: {s:.3}");
            return;
        }
        let mut s = 0.0;
        for v in rest {
            s += match part.as_str() {
                "score" => f.score(&[*v]).unwrap(),
                "stream" => f.score_update(&[*v]).unwrap(),
                "update" => {
                    f.update(&[*v]).unwrap();
                    0.0
                }
                _ => 0.0,
            };
        }
        println!("{part}: {s:.3}");
        return;
    }

    let t = Instant::now();
    let mut s = 0.0;
    for v in rest {
        s += f.score(&[*v]).unwrap();
    }
    let score_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;

    // Descents alone (to each leaf the point would reach), for the share of the score walk.
    let q: Vec<Vec<f32>> = rest
        .windows(4)
        .map(|w| w.iter().map(|&v| v as f32).collect())
        .collect();
    let t = Instant::now();
    let mut depth = 0usize;
    for p in &q {
        for c in f.components() {
            depth += c.tree.leaf_depth(p);
        }
    }
    let descend_us = t.elapsed().as_secs_f64() * 1e6 / q.len() as f64;
    println!(
        "descents alone {descend_us:.1} us per point (mean depth {:.1})",
        depth as f64 / (q.len() * 100) as f64
    );

    let mut g = f.clone();
    let t = Instant::now();
    for v in rest {
        g.update(&[*v]).unwrap();
    }
    let update_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;

    let mut h = f.clone();
    let t = Instant::now();
    for v in rest {
        s += h.score_update(&[*v]).unwrap();
    }
    let both_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;

    let mut k = f.clone();
    let t = Instant::now();
    let b = k.score_update_many(rest).unwrap();
    let batch_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    s += b.iter().sum::<f64>();

    println!(
        "per point: score {score_us:.1} us, update {update_us:.1} us, score_update {both_us:.1} us, \
         batch(1 thread) {batch_us:.1} us   [{s:.1}]"
    );
}
