//! Rough timing of the rrcf workloads in pure Rust, for profiling (not a test).
//! Usage: cargo run --profile profiling -p rcf-tools --bin rrcf_timing
use rcf_core::rrcf::{Behaviour, Inserted, Mt19937, RrcfTree};
use std::time::Instant;

fn rrcf_streaming_timing() {
    let n = 730;
    let t = 2.0 * std::f64::consts::PI / 100.0;
    let mut sin: Vec<f64> = (0..n)
        .map(|i| 50.0 * (t * i as f64 - 30.0 * t).sin() + 100.0)
        .collect();
    sin[235..255].fill(80.0);
    let pts: Vec<Vec<f64>> = sin.windows(4).map(<[f64]>::to_vec).collect();
    let start = Instant::now();
    let mut inserts = 0;
    let (mut t_forget, mut t_insert, mut t_codisp, mut depth_sum) = (0.0, 0.0, 0.0, 0usize);
    for k in 0..400 {
        let mut rng = Mt19937::new(k);
        let mut tree = RrcfTree::new(Behaviour::Master);
        let mut slots = std::collections::VecDeque::new();
        for p in &pts {
            let a = Instant::now();
            if slots.len() > 256 {
                tree.forget(slots.pop_front().unwrap());
            }
            let b = Instant::now();
            let s = match tree.insert(p, None, &mut rng).unwrap() {
                Inserted::New(s) | Inserted::Duplicate(s) => s,
            };
            let c = Instant::now();
            slots.push_back(s);
            std::hint::black_box(tree.codisp(s));
            let d = Instant::now();
            t_forget += (b - a).as_secs_f64();
            t_insert += (c - b).as_secs_f64();
            t_codisp += (d - c).as_secs_f64();
            depth_sum += tree.depth(s);
            inserts += 1;
        }
    }
    let per = start.elapsed().as_secs_f64() / f64::from(inserts) * 1e6;
    println!("core forget+insert+codisp: {per:.3} us per tree per point");
    let k = f64::from(inserts) / 1e6;
    println!(
        "forget {:.3} insert {:.3} codisp {:.3} us; mean leaf depth {:.1}",
        t_forget / k,
        t_insert / k,
        t_codisp / k,
        depth_sum as f64 / f64::from(inserts)
    );
}

fn rrcf_batch_timing() {
    let mut rng = Mt19937::new(0);
    let x: Vec<f64> = (0..256 * 3)
        .map(|_| rcf_core::rrcf::UniformSource::next_f64(&mut rng))
        .collect();
    let start = Instant::now();
    for k in 0..2000 {
        let mut r = Mt19937::new(k);
        std::hint::black_box(
            rcf_core::rrcf::build(Behaviour::Master, &x, 3, Some(9), &mut r).unwrap(),
        );
    }
    println!(
        "core batch build 256x3: {:.1} us",
        start.elapsed().as_secs_f64() / 2000.0 * 1e6
    );
    let start = Instant::now();
    for k in 0..2000 {
        std::hint::black_box(Mt19937::new(k));
    }
    println!(
        "Mt19937::new: {:.2} us",
        start.elapsed().as_secs_f64() / 2000.0 * 1e6
    );
}

fn rrcf_insert_forget_timing() {
    let mut rng = Mt19937::new(3);
    let mut tree = RrcfTree::new(Behaviour::Master);
    let pts: Vec<Vec<f64>> = (0..5000)
        .map(|_| {
            (0..4)
                .map(|_| rcf_core::rrcf::UniformSource::next_f64(&mut rng))
                .collect()
        })
        .collect();
    for p in &pts[..256] {
        tree.insert(p, None, &mut rng).unwrap();
    }
    let start = Instant::now();
    let mut depth = 0;
    for _ in 0..20 {
        for p in &pts[256..] {
            let Inserted::New(s) = tree.insert(p, None, &mut rng).unwrap() else {
                panic!()
            };
            depth += tree.depth(s);
            tree.forget(s);
        }
    }
    let n = 20.0 * (pts.len() - 256) as f64;
    println!(
        "insert+depth+forget: {:.3} us, mean depth {:.1}",
        start.elapsed().as_secs_f64() / n * 1e6,
        depth as f64 / n
    );
    let start = Instant::now();
    let mut hits = 0u32;
    for _ in 0..20 {
        for p in &pts[256..] {
            hits += u32::from(tree.find_duplicate(p, None).unwrap().is_some());
        }
    }
    println!(
        "find_duplicate: {:.3} us ({hits})",
        start.elapsed().as_secs_f64() / n * 1e6
    );
}

fn main() {
    rrcf_streaming_timing();
    rrcf_batch_timing();
    rrcf_insert_forget_timing();
}
