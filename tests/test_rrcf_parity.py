"""compat="0.4.4" parity with rrcf 0.4.4 (the PyPI package is the oracle).

Each scenario runs the same code with ``rrcf`` and with ``rcf_fast.rrcf`` (trees made with
``compat="0.4.4"``) from the same random state, then compares every tree's ``to_dict()`` and
every ``codisp``/``disp``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import rcf_fast.rrcf as fast
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rrcf_readme import batch, batch_pandas, compat_module, streaming

oracle = pytest.importorskip("rrcf")

MAX_EXAMPLES = int(os.environ.get("RCF_HYPOTHESIS_EXAMPLES", "60"))


def unsigned_zeros(obj):
    """-0.0 -> 0.0 (known difference: the sign of a zero may differ, see docs)."""
    if isinstance(obj, dict):
        return {k: unsigned_zeros(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unsigned_zeros(v) for v in obj]
    if isinstance(obj, float) and obj == 0.0:
        return 0.0
    return obj


def assert_same_tree(ours, theirs):
    assert ours.to_dict() == theirs.to_dict()
    # Same JSON text: same key order, same int/float types, same float bits (up to zero signs).
    assert json.dumps(unsigned_zeros(ours.to_dict())) == json.dumps(
        unsigned_zeros(theirs.to_dict())
    )
    assert list(ours.leaves) == list(theirs.leaves)
    for k in theirs.leaves:
        assert ours.codisp(k) == theirs.codisp(k)
        assert ours.disp(k) == theirs.disp(k)
        assert ours.leaves[k].d == theirs.leaves[k].d
        assert ours.leaves[k].n == theirs.leaves[k].n
    assert ours.ndim == theirs.ndim
    assert repr(ours) == repr(theirs)
    leaves_a, leaves_b, branches_a, branches_b = [], [], [], []
    ours.map_leaves(ours.root, op=lambda x: leaves_a.append((x.i, x.x.tolist())))
    theirs.map_leaves(theirs.root, op=lambda x: leaves_b.append((x.i, x.x.tolist())))
    ours.map_branches(ours.root, op=lambda x: branches_a.append((x.q, x.p, x.n)))
    theirs.map_branches(theirs.root, op=lambda x: branches_b.append((x.q, x.p, x.n)))
    assert leaves_a == leaves_b and branches_a == branches_b
    assert np.array_equal(ours.get_bbox(), theirs.get_bbox())


@pytest.mark.slow
def test_readme_streaming_global_rng_parity():
    np.random.seed(42)
    theirs, scores_theirs = streaming(oracle)
    after_theirs = np.random.random_sample()
    np.random.seed(42)
    ours, scores_ours = streaming(compat_module())
    after_ours = np.random.random_sample()
    assert scores_ours == scores_theirs
    assert after_ours == after_theirs  # both advanced numpy's global generator identically
    for a, b in zip(ours, theirs):
        assert_same_tree(a, b)


def test_readme_streaming_seeded_trees_parity():
    def run(rrcf):
        forest = [
            rrcf.RCTree(random_state=s, compat="0.4.4")
            if rrcf is fast
            else rrcf.RCTree(random_state=s)
            for s in range(8)
        ]
        sin = 50 * np.sin(2 * np.pi / 100 * np.arange(400)) + 100
        sin[235:255] = 80
        scores = []
        for index, point in enumerate(rrcf.shingle(sin, size=4)):
            for tree in forest:
                if len(tree.leaves) > 64:
                    tree.forget_point(index - 64)
                tree.insert_point(point, index=index)
                scores.append(tree.codisp(index))
        return forest, scores

    theirs, s_theirs = run(oracle)
    ours, s_ours = run(fast)
    assert s_ours == s_theirs
    for a, b in zip(ours, theirs):
        assert_same_tree(a, b)


@pytest.mark.slow
def test_readme_batch_parity():
    theirs, avg_theirs = batch(oracle)
    after_theirs = np.random.random_sample()
    ours, avg_ours = batch(compat_module())
    after_ours = np.random.random_sample()
    assert np.array_equal(avg_ours, avg_theirs, equal_nan=True)
    assert after_ours == after_theirs  # same number of draws from the global generator
    for a, b in zip(ours, theirs):
        assert_same_tree(a, b)


def test_batch_with_duplicates_and_labels_parity():
    rs = np.random.RandomState(3)
    X = rs.randint(0, 4, size=(300, 3)).astype(float) + 0.25
    labels = np.arange(1000, 1300)
    for seed in range(5):
        a = fast.RCTree(X, index_labels=labels, random_state=seed, compat="0.4.4")
        b = oracle.RCTree(X, index_labels=labels, random_state=seed)
        assert_same_tree(a, b)


def test_batch_precision_rounding_parity():
    rs = np.random.RandomState(9)
    X = rs.randn(200, 2) * 1e-3
    X[100:] = X[:100] + 1e-12  # equal after rounding to 9 decimals
    for precision in (3, 9, 12):
        a = fast.RCTree(X, precision=precision, random_state=1, compat="0.4.4")
        b = oracle.RCTree(X, precision=precision, random_state=1)
        assert_same_tree(a, b)


def test_shared_random_state_interleaves_like_rrcf():
    X = np.random.RandomState(0).randn(50, 2)
    rs1, rs2 = np.random.RandomState(7), np.random.RandomState(7)
    ours = [fast.RCTree(X, random_state=rs1, compat="0.4.4") for _ in range(3)]
    theirs = [oracle.RCTree(X, random_state=rs2) for _ in range(3)]
    for i in range(50, 120):
        p = np.sin(np.arange(2) * i)
        for a, b in zip(ours, theirs):
            a.insert_point(p, index=i)
            b.insert_point(p, index=i)
    for a, b in zip(ours, theirs):
        assert_same_tree(a, b)
    assert rs1.random_sample() == rs2.random_sample()


def test_many_dimensions_use_numpy_pairwise_sums():
    # d > 8 exercises numpy's blocked pairwise summation in `span.sum()`.
    rs = np.random.RandomState(5)
    X = rs.randn(100, 23) * np.logspace(-3, 3, 23)
    a = fast.RCTree(X, random_state=11, compat="0.4.4")
    b = oracle.RCTree(X, random_state=11)
    for i in range(100, 200):
        p = rs.randn(23) * np.logspace(-3, 3, 23)
        a.insert_point(p, index=i)
        b.insert_point(p, index=i)
    assert_same_tree(a, b)


coords = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 3.5])
ops = st.lists(
    st.tuples(
        st.booleans(),
        st.lists(coords, min_size=3, max_size=3),
        st.integers(0, 30),
        st.booleans(),  # insert as an integer array (0.4.4 keeps integer boxes)
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    ops=ops,
    batch=st.integers(0, 12),
    tol=st.sampled_from([None, 1e-6]),
)
def test_random_insert_forget_sequences_parity(seed, ops, batch, tol):
    rs = np.random.RandomState(seed % 1000)
    if batch >= 2:
        X = rs.randint(-2, 3, size=(batch, 3)).astype(float)
        a = fast.RCTree(X, random_state=seed, compat="0.4.4")
        b = oracle.RCTree(X, random_state=seed)
        start = batch
    else:
        a = fast.RCTree(random_state=seed, compat="0.4.4")
        b = oracle.RCTree(random_state=seed)
        start = 0
    next_index = start
    for is_forget, point, pick, as_int in ops:
        if is_forget and len(b.leaves) > 0:
            key = list(b.leaves)[pick % len(b.leaves)]
            la, lb = a.forget_point(key), b.forget_point(key)
            assert la.n == lb.n
            assert np.array_equal(la.x, lb.x)
        else:
            p = np.array([int(v * 2) for v in point]) if as_int else np.array(point)
            a.insert_point(p, index=next_index, tolerance=tol)
            b.insert_point(p, index=next_index, tolerance=tol)
            next_index += 1
        if len(b.leaves):
            assert_same_tree(a, b)
        else:
            assert len(a.leaves) == 0 and a.root is None and a.ndim is None


@pytest.mark.parametrize("seed", range(6))
def test_integer_input_parity(seed):
    # rrcf 0.4.4 keeps integer arrays: integer boxes truncate later float points.
    rs = np.random.RandomState(seed)
    X = rs.randint(-20, 20, size=(40, 2))
    with pytest.raises(TypeError):  # 0.4.4 cannot batch-build integer X ("l /= l.sum()")
        oracle.RCTree(X, random_state=seed)
    assert fast.RCTree(X, random_state=seed, compat="0.4.4").root.n == 40
    a = fast.RCTree(random_state=seed, compat="0.4.4")
    b = oracle.RCTree(random_state=seed)
    for i, p in enumerate(X):
        a.insert_point(p, index=i)
        b.insert_point(p, index=i)
    assert_same_tree(a, b)
    for i in range(40, 140):
        p = rs.randint(-25, 25, size=2) if i % 3 else rs.uniform(-25.5, 25.5, size=2)
        a.insert_point(p, index=i)
        b.insert_point(p, index=i)
        if i % 4 == 0:
            a.forget_point(i - 30)
            b.forget_point(i - 30)
    assert_same_tree(a, b)
    # Integer lists in an empty tree, then floats.
    a = fast.RCTree(random_state=seed, compat="0.4.4")
    b = oracle.RCTree(random_state=seed)
    for i in range(60):
        p = (
            [int(v) for v in rs.randint(0, 9, size=3)]
            if i < 30
            else list(rs.uniform(-1, 10, size=3))
        )
        a.insert_point(p, index=i)
        b.insert_point(p, index=i)
    assert_same_tree(a, b)
    # And the integer boxes survive a JSON round trip in both directions.
    c = fast.RCTree.from_dict(json.loads(json.dumps(b.to_dict())), compat="0.4.4")
    assert json.dumps(c.to_dict()) == json.dumps(b.to_dict())


@pytest.mark.parametrize(
    "random_state",
    [None, np.int64(3), np.random.default_rng(3)],
    ids=["None", "np.int64", "Generator"],
)
def test_non_int_random_state_uses_global_generator_like_0_4_4(random_state):
    X = np.random.RandomState(2).randn(30, 2)
    np.random.seed(123)
    b = oracle.RCTree(X, random_state=random_state)
    for i in range(30, 60):
        b.insert_point(np.cos(np.arange(2) * i), index=i)
    after_b = np.random.random_sample()
    np.random.seed(123)
    a = fast.RCTree(X, random_state=random_state, compat="0.4.4")
    for i in range(30, 60):
        a.insert_point(np.cos(np.arange(2) * i), index=i)
    assert np.random.random_sample() == after_b
    assert_same_tree(a, b)


def test_pickled_trees_keep_sharing_their_random_state():
    import pickle

    rs = np.random.RandomState(4)
    trees = [
        fast.RCTree(np.random.RandomState(k).randn(20, 2), random_state=rs, compat="0.4.4")
        for k in range(3)
    ]
    clones = pickle.loads(pickle.dumps(trees))
    for i in range(20, 50):
        p = np.sin(np.arange(2) + i)
        for a, b in zip(trees, clones):
            a.insert_point(p, index=i)
            b.insert_point(p, index=i)
    for a, b in zip(trees, clones):
        assert a.to_dict() == b.to_dict()


@pytest.mark.slow
def test_readme_batch_pandas_parity():
    pytest.importorskip("pandas")
    theirs = batch_pandas(oracle)
    ours = batch_pandas(compat_module())
    assert ours.equals(theirs)
