//! Criterion benches of the core: the operations the Python benches time, without FFI.
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rcf_core::{Forest, ForestConfig};

fn series(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let t = i as f64 * 0.05;
            10_000.0 + 5_000.0 * t.sin() + 300.0 * (t * 7.3).cos()
        })
        .collect()
}

fn warmed(dims: usize, shingle: usize, threads: Option<usize>, data: &[f64]) -> Forest {
    let mut c = ForestConfig::new(dims);
    c.shingle_size = shingle;
    c.seed = Some(1);
    c.threads = threads;
    let mut f = Forest::new(c).unwrap();
    f.update_many(data).unwrap();
    f
}

fn standard(c: &mut Criterion) {
    let x = series(12_000);
    let (warm, rest) = x.split_at(10_000);
    let base = warmed(1, 4, Some(1), warm);
    let mut g = c.benchmark_group("standard 1-d shingle 4");
    g.throughput(Throughput::Elements(rest.len() as u64));
    g.sample_size(10);
    g.bench_function("score_update per point", |b| {
        b.iter_batched(
            || base.clone(),
            |mut f| {
                for v in rest {
                    black_box(f.score_update(&[*v]).unwrap());
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.bench_function("score per point", |b| {
        b.iter(|| {
            for v in rest {
                black_box(base.score(&[*v]).unwrap());
            }
        });
    });
    for threads in [Some(1), None] {
        let name = format!("score_update_many threads={threads:?}");
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut f = base.clone();
                    f.set_threads(threads).unwrap();
                    f
                },
                |mut f| black_box(f.score_update_many(rest).unwrap()),
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn sixteen_dims(c: &mut Criterion) {
    let x = series(16 * 4_000);
    let (warm, rest) = x.split_at(16 * 3_000);
    let base = warmed(16, 1, Some(1), warm);
    let mut g = c.benchmark_group("16-d points");
    g.throughput(Throughput::Elements((rest.len() / 16) as u64));
    g.sample_size(10);
    g.bench_function("score_update per point", |b| {
        b.iter_batched(
            || base.clone(),
            |mut f| {
                for row in rest.chunks(16) {
                    black_box(f.score_update(row).unwrap());
                }
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn state(c: &mut Criterion) {
    let x = series(10_000);
    let f = warmed(1, 4, Some(1), &x);
    let bytes = f.to_bytes();
    let mut g = c.benchmark_group("state");
    g.bench_function("to_bytes", |b| b.iter(|| black_box(f.to_bytes())));
    g.bench_function("from_bytes", |b| {
        b.iter(|| black_box(Forest::from_bytes(&bytes).unwrap()));
    });
    g.finish();
}

criterion_group!(benches, standard, sixteen_dims, state);
criterion_main!(benches);
