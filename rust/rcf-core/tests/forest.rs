//! Scenarios of the whole forest: planted anomalies, determinism, attribution, save/restore.
use rcf_core::{Forest, ForestConfig, RcfError, SamplerKind, ScoringKind};

fn sine(i: usize) -> f64 {
    (i as f64 * 2.0 * std::f64::consts::PI / 50.0).sin() * 10.0
}

fn config(seed: u64) -> ForestConfig {
    let mut c = ForestConfig::new(1);
    c.shingle_size = 4;
    c.seed = Some(seed);
    c.num_trees = 50;
    c
}

#[test]
fn planted_spike_scores_far_above_the_rest() {
    for scoring in [ScoringKind::Rcf, ScoringKind::CoDisp] {
        let mut c = config(1);
        c.scoring = scoring;
        let mut f = Forest::new(c).unwrap();
        let mut scores = Vec::new();
        for i in 0..3000 {
            let x = if i == 2500 { 40.0 } else { sine(i) };
            scores.push(f.score_update(&[x]).unwrap());
        }
        let spike = scores[2500];
        let mut rest: Vec<f64> = scores[1000..2500].to_vec();
        rest.sort_by(f64::total_cmp);
        let p99 = rest[rest.len() * 99 / 100];
        assert!(spike > 3.0 * p99, "{scoring:?}: spike {spike} vs p99 {p99}");
    }
}

#[test]
fn rcf_scores_are_on_the_aws_scale() {
    let mut f = Forest::new(config(2)).unwrap();
    let mut s = Vec::new();
    for i in 0..3000 {
        s.push(f.score_update(&[sine(i)]).unwrap());
    }
    let mut tail = s[1000..].to_vec();
    tail.sort_by(f64::total_cmp);
    let median = tail[tail.len() / 2];
    assert!(median > 0.3 && median < 1.2, "median {median}");
    assert!(f.score(&[60.0]).unwrap() > 2.0);
}

#[test]
fn same_seed_same_scores_and_bytes() {
    let run = |seed| {
        let mut f = Forest::new(config(seed)).unwrap();
        let s: Vec<f64> = (0..800)
            .map(|i| f.score_update(&[sine(i)]).unwrap())
            .collect();
        (s, f.to_bytes())
    };
    let (a, ab) = run(9);
    let (b, bb) = run(9);
    let (c, _) = run(10);
    assert_eq!(a, b);
    assert_eq!(ab, bb);
    assert_ne!(a, c);
}

#[test]
fn restored_forest_continues_exactly() {
    let mut f = Forest::new(config(3)).unwrap();
    for i in 0..700 {
        f.update(&[sine(i)]).unwrap();
    }
    let mut g = Forest::from_bytes(&f.to_bytes()).unwrap();
    for i in 700..1500 {
        let x = [sine(i) + if i % 97 == 0 { 15.0 } else { 0.0 }];
        assert_eq!(f.score_update(&x).unwrap(), g.score_update(&x).unwrap());
    }
    assert_eq!(f.to_bytes(), g.to_bytes());
}

#[test]
fn corrupted_bytes_are_errors_not_panics() {
    let mut f = Forest::new(config(4)).unwrap();
    for i in 0..300 {
        f.update(&[sine(i)]).unwrap();
    }
    let bytes = f.to_bytes();
    assert!(matches!(
        Forest::from_bytes(b"hello"),
        Err(RcfError::Corrupt(_))
    ));
    assert!(matches!(
        Forest::from_bytes(&bytes[..bytes.len() - 3]),
        Err(RcfError::Corrupt(_))
    ));
    for pos in (0..bytes.len()).step_by(97) {
        let mut b = bytes.clone();
        b[pos] ^= 0x5A;
        assert!(Forest::from_bytes(&b).is_err(), "flip at {pos} accepted");
    }
    // A valid checksum over a damaged payload must still be caught by the structural checks.
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 40] ^= 0x01;
    let crc = crc32fast::hash(&b[24..]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    let _ = Forest::from_bytes(&b); // must not panic; may be Ok if the flip hit a free value
}

#[test]
fn attribution_points_at_the_dimension_and_direction() {
    let mut c = ForestConfig::new(3);
    c.seed = Some(5);
    c.num_trees = 50;
    let mut f = Forest::new(c).unwrap();
    for i in 0..1500 {
        let t = i as f64 * 0.1;
        f.update(&[t.sin(), t.cos(), (t * 0.5).sin()]).unwrap();
    }
    let x = [0.0, 1.0 - 8.0, 0.0];
    let a = f.attribution(&x).unwrap();
    let s = f.score(&x).unwrap();
    assert!(
        (a.total() - s).abs() < 1e-6 * s.max(1.0),
        "{} vs {s}",
        a.total()
    );
    assert!(a.low[1] > 0.8 * a.total(), "{a:?}");
    assert!(a.high[1] < a.low[1]);
}

#[test]
fn window_sampler_keeps_the_last_points() {
    let mut c = config(6);
    c.sampler = SamplerKind::Window;
    c.sample_size = 64;
    let mut f = Forest::new(c).unwrap();
    for i in 0..500 {
        f.update(&[i as f64]).unwrap();
    }
    // Every tree holds the last 64 shingles: first values 433..=496.
    for comp in f.components() {
        let mut firsts: Vec<f32> = comp
            .tree
            .leaves()
            .iter()
            .map(|&(p, _)| f.store().point(p)[0])
            .collect();
        firsts.sort_by(f32::total_cmp);
        assert_eq!(firsts.len(), 64);
        assert_eq!(firsts[0], 433.0);
        assert_eq!(firsts[63], 496.0);
    }
    f.check().unwrap();
}

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    let mut f = Forest::new(config(7)).unwrap();
    for i in 0..100 {
        f.update(&[sine(i)]).unwrap();
    }
    let before = f.to_bytes();
    assert!(matches!(
        f.update(&[f64::NAN]),
        Err(RcfError::InvalidValue { .. })
    ));
    assert!(matches!(
        f.update(&[1.0, 2.0]),
        Err(RcfError::DimensionMismatch { .. })
    ));
    assert!(f.score_update_many(&[1.0, 2.0, f64::INFINITY]).is_err());
    assert!(f.score_update(&[1e300]).is_err());
    assert_eq!(before, f.to_bytes());
}

#[test]
fn duplicates_merge_and_flatline_is_not_anomalous() {
    let mut c = ForestConfig::new(1);
    c.seed = Some(8);
    c.num_trees = 20;
    let mut f = Forest::new(c).unwrap();
    for _ in 0..1000 {
        f.update(&[5.0]).unwrap();
    }
    f.check().unwrap();
    assert_eq!(f.store().len(), 1);
    let normal = f.score(&[5.0]).unwrap();
    let odd = f.score(&[6.0]).unwrap();
    // AWS formula for a leaf holding every point at depth 0: (1 - m/2M) = 0.5.
    assert!(normal <= 0.5 && odd > 4.0, "{normal} {odd}");
}

/// A forest saved by the build before the sampler planned its next keep (format 1: five trees of
/// 16 points over a sine, shingle 2, seed 7) still loads: the same trees give the same scores the
/// old build printed, and the stream goes on.
#[test]
fn a_forest_saved_in_format_1_loads_and_goes_on() {
    let bytes = include_bytes!("data/forest_v1.bin");
    assert_eq!(&bytes[8..12], &1u32.to_le_bytes());
    let mut f = Forest::from_bytes(bytes).unwrap();
    assert_eq!(f.score(&[3.5]).unwrap(), 0.907_263_775_249_241_4);
    assert_eq!(f.score(&[-25.0]).unwrap(), 2.315_763_273_362_916_3);
    assert!(f.is_ready());
    for i in 200..700 {
        let s = f
            .score_update(&[(f64::from(i) * 0.3).sin() * 10.0])
            .unwrap();
        assert!(s > 0.0 && s.is_finite());
    }
    f.check().unwrap();
    let again = f.to_bytes();
    assert_eq!(
        &again[8..12],
        &rcf_core::testing::FORMAT_VERSION.to_le_bytes()
    );
    assert_eq!(Forest::from_bytes(&again).unwrap().to_bytes(), again);
}

/// Damaged format-1 payloads (checksum recomputed, so decoding and the checks see them) give an
/// error or a valid forest, never a panic.
#[test]
fn damaged_format_1_payloads_never_panic() {
    let bytes = include_bytes!("data/forest_v1.bin");
    for pos in 24..bytes.len() {
        let mut b = bytes.to_vec();
        b[pos] ^= 0x5a;
        let crc = crc32fast::hash(&b[24..]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        if let Ok(f) = Forest::from_bytes(&b) {
            f.check().unwrap();
        }
    }
}

/// A tree that keeps the new point scores it during the insertion (which walks the same path
/// and boxes); that score must be bit for bit the one a read-only `score` gives, for every point
/// size with a kernel of its own, both samplers, duplicates included.
#[test]
fn streaming_scores_equal_read_only_scores() {
    for dims in [1usize, 2, 3, 4, 5, 8, 16] {
        for window in [false, true] {
            let mut c = ForestConfig::new(dims);
            c.seed = Some(dims as u64);
            c.num_trees = 20;
            c.sample_size = 32;
            if window {
                c.sampler = SamplerKind::Window;
            }
            let mut f = Forest::new(c).unwrap();
            let mut kept = 0;
            for i in 0..400 {
                // Integer-valued points repeat, so merges into equal leaves happen too.
                let x: Vec<f64> = (0..dims)
                    .map(|k| {
                        ((i * (k + 3)) % 7) as f64 + if i % 5 == 0 { 0.0 } else { sine(i + k) }
                    })
                    .collect();
                let read_only = f.score(&x).unwrap();
                let streamed = f.score_update(&x).unwrap();
                assert_eq!(read_only, streamed, "dims {dims} window {window} point {i}");
                kept += usize::from(streamed > 0.0);
            }
            assert!(kept > 300, "scores were mostly 0 ({kept})");
            f.check().unwrap();
        }
    }
}

/// A full tree holds one leaf more for a moment during an update; copies and restored forests
/// keep room for it, so their first updates do not grow (double) the trees' arrays. (The point
/// store may grow: the trees come to hold more distinct points.)
#[test]
fn copies_and_restored_forests_do_not_grow_on_update() {
    let mut c = config(9);
    c.sample_size = 64;
    let mut f = Forest::new(c).unwrap();
    // Exactly full: every tree holds 64 points and has had no deletion yet.
    for i in 0..67 {
        f.update(&[sine(i)]).unwrap();
    }
    let trees = |f: &Forest| -> usize {
        f.components()
            .iter()
            .map(rcf_core::testing::Component::heap_bytes)
            .sum()
    };
    let before = trees(&f);
    let mut copy = f.clone();
    let mut restored = Forest::from_bytes(&f.to_bytes()).unwrap();
    for g in [&mut f, &mut copy, &mut restored] {
        for i in 67..200 {
            g.score_update(&[sine(i) + 0.5]).unwrap();
        }
    }
    // The original grows a little (more cached boxes as the trees reshape), never doubles;
    // copies and restored forests hold no more than the original.
    let grown = trees(&f);
    assert!(
        grown < before + before / 4,
        "original: {before} -> {grown} heap bytes"
    );
    for (name, g) in [("copy", &copy), ("restored", &restored)] {
        g.check().unwrap();
        let after = trees(g);
        assert!(
            after < grown + grown / 10,
            "{name}: {before} -> {after} heap bytes (original: {grown})"
        );
    }
}

/// Memory grows with the data: a new forest reserves nothing for its trees' capacity
/// (10,000 trees x 1,677 samples used to reserve ~300 MB before the first point).
#[test]
fn a_new_forest_holds_memory_for_its_data_not_its_capacity() {
    let mut c = config(1);
    c.num_trees = 10_000;
    c.sample_size = 1677;
    let mut f = Forest::new(c).unwrap();
    assert!(f.heap_bytes() < 20 << 20, "{} heap bytes", f.heap_bytes());
    let empty = f.heap_bytes();
    for i in 0..3 {
        f.update(&[sine(i)]).unwrap();
    }
    // Three points in 10,000 trees: a few hundred bytes per tree at most.
    assert!(f.heap_bytes() - empty < 10_000 * 400, "{}", f.heap_bytes());
    let g = Forest::from_bytes(&f.to_bytes()).unwrap();
    assert!(g.heap_bytes() < 20 << 20, "{} heap bytes", g.heap_bytes());
}
