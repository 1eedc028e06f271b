//! Invariants of the rrcf trees under random inserts and forgets (proptest).
// Inside `mod rrcf` so that `cargo test rrcf` selects these tests.
mod rrcf {
    use proptest::prelude::*;
    use rcf_core::rrcf::{build, Behaviour, Inserted, Mt19937, RrcfTree};

    /// Pre-order description of a subtree: (`is_leaf`, cut dim, cut value bits, mass, box bits).
    fn describe(t: &RrcfTree) -> Vec<(bool, u32, u64, u64, Vec<u64>)> {
        let Some(root) = t.root() else {
            return Vec::new();
        };
        t.preorder(root)
            .into_iter()
            .map(|(s, _)| {
                let leaf = t.is_leaf(s);
                let (q, p) = if leaf { (0, 0.0) } else { t.cut(s) };
                let bits = t.lo(s).iter().chain(t.hi(s)).map(|v| v.to_bits()).collect();
                (leaf, q, p.to_bits(), t.mass(s), bits)
            })
            .collect()
    }

    /// Masses add up, boxes are the tight boxes of their leaves, parents and children agree.
    fn check_invariants(t: &RrcfTree) {
        let Some(root) = t.root() else { return };
        assert_eq!(t.parent(root), None);
        for (s, depth) in t.preorder(root) {
            assert_eq!(t.depth(s), depth);
            if t.is_leaf(s) {
                assert!(t.mass(s) >= 1);
                assert_eq!(t.lo(s), t.hi(s));
                continue;
            }
            let (l, r) = t.children(s);
            assert_eq!(t.parent(l), Some(s));
            assert_eq!(t.parent(r), Some(s));
            assert_eq!(t.mass(s), t.mass(l) + t.mass(r));
            let (lo, hi) = t.get_bbox(Some(s));
            assert_eq!(t.lo(s), &lo[..]);
            assert_eq!(t.hi(s), &hi[..]);
            // Cuts separate: every leaf on the left has x[q] <= p, on the right x[q] > p.
            // (0.4.4's leaf cut may put the old leaf right at x[q] == p; that is its bug.)
            if t.behaviour() == Behaviour::Compat044 {
                continue;
            }
            let (q, p) = t.cut(s);
            for leaf in t.leaves_under(l) {
                assert!(t.lo(leaf)[q as usize] <= p);
            }
            for leaf in t.leaves_under(r) {
                assert!(t.lo(leaf)[q as usize] > p);
            }
        }
    }

    fn point_strategy() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(
            prop::sample::select(vec![-2.0, -0.5, 0.0, 0.25, 1.0, 3.0]),
            3,
        )
    }

    fn behaviour_strategy() -> impl Strategy<Value = Behaviour> {
        prop::sample::select(vec![Behaviour::Master, Behaviour::Compat044])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn inserts_and_forgets_keep_invariants(
            seed in any::<u32>(),
            behaviour in behaviour_strategy(),
            ops in prop::collection::vec((any::<bool>(), point_strategy(), any::<usize>()), 1..120),
        ) {
            let mut rng = Mt19937::new(seed);
            let mut tree = RrcfTree::new(behaviour);
            let mut live: Vec<u32> = Vec::new();
            for (forget, point, pick) in ops {
                if forget && !live.is_empty() {
                    let slot = live.swap_remove(pick % live.len());
                    tree.forget(slot);
                } else {
                    match tree.insert(&point, None, &mut rng).unwrap() {
                        Inserted::New(s) | Inserted::Duplicate(s) => live.push(s),
                    }
                }
                check_invariants(&tree);
                let total: u64 = tree.root().map_or(0, |r| tree.mass(r));
                prop_assert_eq!(total as usize, live.len());
            }
        }

        #[test]
        fn master_merges_every_duplicate(
            seed in any::<u32>(),
            points in prop::collection::vec(point_strategy(), 1..60),
        ) {
            let mut rng = Mt19937::new(seed);
            let mut tree = RrcfTree::new(Behaviour::Master);
            for p in &points {
                tree.insert(p, None, &mut rng).unwrap();
            }
            let mut distinct = points.clone();
            distinct.sort_by(|a, b| a.partial_cmp(b).unwrap());
            distinct.dedup();
            prop_assert_eq!(tree.leaves_under(tree.root().unwrap()).len(), distinct.len());
        }

        #[test]
        fn insert_then_forget_restores_the_tree(
            seed in any::<u32>(),
            behaviour in behaviour_strategy(),
            base in prop::collection::vec(point_strategy(), 1..40),
            extra in point_strategy(),
        ) {
            let mut rng = Mt19937::new(seed);
            let mut tree = RrcfTree::new(behaviour);
            for p in &base {
                tree.insert(p, None, &mut rng).unwrap();
            }
            let before = describe(&tree);
            let slot = match tree.insert(&extra, None, &mut rng).unwrap() {
                Inserted::New(s) | Inserted::Duplicate(s) => s,
            };
            tree.forget(slot);
            prop_assert_eq!(describe(&tree), before);
        }

        #[test]
        fn batch_build_is_deterministic_and_consistent(
            seed in any::<u32>(),
            rows in prop::collection::vec(point_strategy(), 2..80),
        ) {
            let x: Vec<f64> = rows.concat();
            let (a, leaves, order) = build(Behaviour::Compat044, &x, 3, Some(9), &mut Mt19937::new(seed)).unwrap();
            let (b, _, _) = build(Behaviour::Compat044, &x, 3, Some(9), &mut Mt19937::new(seed)).unwrap();
            prop_assert_eq!(describe(&a), describe(&b));
            check_invariants(&a);
            prop_assert_eq!(a.mass(a.root().unwrap()) as usize, rows.len());
            let mut seen = vec![false; rows.len()];
            for leaf in &leaves {
                prop_assert_eq!(a.mass(leaf.slot) as usize, leaf.rows.len());
                for &r in &order[leaf.rows.clone()] {
                    prop_assert_eq!(a.lo(leaf.slot), &rows[r][..]);
                    seen[r] = true;
                }
            }
            prop_assert!(seen.iter().all(|&s| s));
        }

        #[test]
        fn bytes_round_trip(seed in any::<u32>(), points in prop::collection::vec(point_strategy(), 1..40)) {
            let mut rng = Mt19937::new(seed);
            let mut tree = RrcfTree::new(Behaviour::Master);
            for p in &points {
                tree.insert(p, None, &mut rng).unwrap();
            }
            let back = RrcfTree::from_bytes(&tree.to_bytes()).unwrap();
            prop_assert_eq!(describe(&back), describe(&tree));
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let mut rng = Mt19937::new(0);
        let mut tree = RrcfTree::new(Behaviour::Master);
        tree.insert(&[0.0, 1.0], None, &mut rng).unwrap();
        let e = tree.insert(&[0.0, f64::NAN], None, &mut rng).unwrap_err();
        assert!(e.to_string().contains("NaN or infinity at position 1"));
        let e = tree.insert(&[0.0], None, &mut rng).unwrap_err();
        assert_eq!(
            e.to_string(),
            "point has 1 coordinates, expected 2 (the dimension of the points in the tree)"
        );
        assert!(build(Behaviour::Master, &[], 2, None, &mut rng).is_err());
        assert!(RrcfTree::from_bytes(b"not a tree").is_none());
    }
}
