//! Invariants under random operation sequences (proptest).
use proptest::prelude::*;
use rcf_core::testing::Rng;
use rcf_core::testing::Scratch;
use rcf_core::testing::{PointStore, Tree};
use rcf_core::{Forest, ForestConfig, SamplerKind, ScoringKind};

/// Points on a small grid so that duplicates and ties on box boundaries happen often.
fn point_strategy(dim: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec((-4i8..=4).prop_map(|v| f32::from(v) * 0.5), dim)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Mass = leaves below, boxes tight and cached exactly above the threshold, cuts separate,
    /// after any sequence of inserts and deletes.
    #[test]
    fn tree_invariants_hold_after_inserts_and_deletes(
        dim in 1usize..4,
        ops in prop::collection::vec((any::<bool>(), 0usize..1000), 1..300),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::from_seed(seed);
        let mut sc = Scratch::default();
        let mut store = PointStore::new(dim);
        let mut tree = Tree::new(dim, 512);
        let mut prng = Rng::from_seed(seed ^ 1);
        let mut held: Vec<(u16, u32)> = Vec::new(); // (leaf slot, point id) per copy
        for (insert, pick) in ops {
            if insert || held.is_empty() {
                let p: Vec<f32> = (0..dim).map(|_| ((prng.next_f64() * 9.0).floor() as f32 - 4.0) * 0.5).collect();
                let id = store.add(&p);
                let (slot, added) = tree.insert(&store, id, &mut rng, &mut sc);
                if added { store.inc(id); } else { store.release_if_unused(id); }
                let pid = tree.leaves().iter().find(|(q, _)| store.point(*q) == p.as_slice()).unwrap().0;
                held.push((slot, pid));
            } else {
                let (slot, _) = held.swap_remove(pick % held.len());
                if let Some(gone) = tree.delete(&store, slot, &mut sc).unwrap() {
                    store.dec(gone);
                }
            }
            let mut refs = vec![0u32; store.len() + store.free_len()];
            prop_assert_eq!(tree.check(&store, &mut refs), Ok(()));
            prop_assert_eq!(tree.mass() as usize, held.len());
        }
    }

    /// Forest state stays consistent (sampler, trees and store agree) for every configuration.
    #[test]
    fn forest_state_is_consistent(
        points in prop::collection::vec(point_strategy(2), 1..400),
        window in any::<bool>(),
        codisp in any::<bool>(),
        shingle in 1usize..3,
        seed in any::<u64>(),
    ) {
        let mut c = ForestConfig::new(2);
        c.num_trees = 5;
        c.sample_size = 16;
        c.shingle_size = shingle;
        c.seed = Some(seed);
        c.sampler = if window { SamplerKind::Window } else { SamplerKind::Decay };
        c.scoring = if codisp { ScoringKind::CoDisp } else { ScoringKind::Rcf };
        let mut f = Forest::new(c).unwrap();
        for p in &points {
            let x: Vec<f64> = p.iter().map(|&v| f64::from(v)).collect();
            let s = f.score_update(&x).unwrap();
            prop_assert!(s.is_finite() && s >= 0.0);
        }
        prop_assert_eq!(f.check(), Ok(()));
        let restored = Forest::from_bytes(&f.to_bytes()).unwrap();
        prop_assert_eq!(restored.to_bytes(), f.to_bytes());
    }

    /// Batch and row-by-row calls give bit-identical scores and equal states, serial or parallel.
    #[test]
    fn batch_equals_row_by_row(
        points in prop::collection::vec(point_strategy(1), 1..300),
        threads in 1usize..4,
        seed in any::<u64>(),
    ) {
        let mut c = ForestConfig::new(1);
        c.num_trees = 7;
        c.sample_size = 32;
        c.output_after = Some(4);
        c.shingle_size = 2;
        c.seed = Some(seed);
        let mut one = Forest::new(c.clone()).unwrap();
        c.threads = Some(threads);
        let mut batch = Forest::new(c).unwrap();
        let row: Vec<f64> = points.iter().map(|p| f64::from(p[0])).collect();
        let a: Vec<f64> = row.iter().map(|&x| one.score_update(&[x]).unwrap()).collect();
        let b = batch.score_update_many(&row).unwrap();
        prop_assert_eq!(a, b);
        batch.set_threads(None).unwrap();
        prop_assert_eq!(one.to_bytes(), batch.to_bytes());
    }
}
