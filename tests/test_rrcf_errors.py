"""Each rrcf 0.4.4 bug fixed by default in rcf_fast.rrcf: the oracle's behaviour, then ours."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import rcf_fast.rrcf as fast

oracle = pytest.importorskip("rrcf")


def boxes_consistent(tree) -> bool:
    """Every branch box equals the box of the points below it."""
    ok = []
    tree.map_branches(tree.root, op=lambda b: ok.append(np.array_equal(b.b, tree.get_bbox(b))))
    return all(ok)


def int_then_float(module, seed):
    tree = module.RCTree(random_state=seed)
    rs = np.random.RandomState(seed)
    for i in range(30):
        tree.insert_point(rs.randint(0, 10, size=2), index=i)
    for i in range(30, 60):
        tree.insert_point(rs.uniform(-0.7, 10.7, size=2), index=i)
    return tree


def test_integer_input_gets_float64_boxes():
    broken = [s for s in range(20) if not boxes_consistent(int_then_float(oracle, s))]
    assert broken, "rrcf 0.4.4 truncates float coordinates into integer boxes"
    for s in range(20):
        tree = int_then_float(fast, s)
        assert boxes_consistent(tree)
        assert tree.root.b.dtype == np.float64
        assert tree.leaves[0].x.dtype == np.float64


def test_integer_batch_input_is_float64():
    X = np.arange(20).reshape(10, 2)
    tree = fast.RCTree(X, random_state=0)
    tree.insert_point([2.5, 3.25], index=10)
    assert boxes_consistent(tree)
    assert tree.get_bbox().dtype == np.float64


@pytest.mark.parametrize("bad", [[np.nan, 0.0], [0.0, np.inf], [-np.inf, 1.0]])
def test_nan_and_infinity_raise_value_error(bad):
    tree = fast.RCTree(random_state=0)
    tree.insert_point([0.0, 0.0], index=0)
    tree.insert_point([1.0, 1.0], index=1)
    before = tree.to_dict()
    with pytest.raises(ValueError, match="NaN or infinity"):
        tree.insert_point(bad, index=2)
    assert tree.to_dict() == before and 2 not in tree.leaves
    with pytest.raises(ValueError, match="NaN or infinity"):
        fast.RCTree(random_state=0).insert_point(bad, index=0)
    with pytest.raises(ValueError, match="NaN or infinity at row 1"):
        fast.RCTree(np.array([[0.0, 0.0], bad]))
    with pytest.raises(ValueError, match="NaN or infinity"):
        tree.query(bad)


def test_nan_in_oracle_is_not_a_clear_error():
    tree = oracle.RCTree(random_state=0)
    tree.insert_point([0.0, 0.0], index=0)
    tree.insert_point([1.0, 1.0], index=1)
    with pytest.raises(OverflowError):  # "Range exceeds valid bounds", from numpy
        tree.insert_point([np.nan, 0.0], index=2)


def test_wrong_dimension_raises_value_error():
    tree = fast.RCTree(np.zeros((3, 2)) + np.arange(3)[:, None], random_state=0)
    with pytest.raises(ValueError, match="point has 3 coordinates, expected 2"):
        tree.insert_point([1.0, 2.0, 3.0], index=10)
    with pytest.raises(fast.DimensionError):
        tree.insert_point([1.0], index=10)
    with pytest.raises(AssertionError):  # what rrcf 0.4.4 raised, still catchable
        tree.insert_point([1.0], index=10)
    with pytest.raises(ValueError, match="expected 2"):
        tree.query([1.0, 2.0, 3.0])
    o = oracle.RCTree(np.zeros((3, 2)) + np.arange(3)[:, None], random_state=0)
    with pytest.raises(AssertionError):
        o.insert_point([1.0, 2.0, 3.0], index=10)


def test_unknown_index_raises_key_error():
    tree = fast.RCTree(np.arange(6.0).reshape(3, 2), random_state=0)
    for method in (tree.forget_point, tree.codisp, tree.disp, tree.codisp_with_cut_dimension):
        with pytest.raises(KeyError, match="'nope' is not an index of a point in this tree"):
            method("nope")
    with pytest.raises(KeyError):
        tree.leaves["nope"]


def test_repeated_index_raises_key_error():
    tree = fast.RCTree(random_state=0)
    tree.insert_point([0.0], index="a")
    tree.insert_point([1.0], index="b")
    with pytest.raises(KeyError, match="index 'a' is already in the tree"):
        tree.insert_point([2.0], index="a")
    with pytest.raises(fast.DuplicateIndexError):
        tree.insert_point([2.0], index="b")
    assert len(tree.leaves) == 2 and tree.root.n == 2
    o = oracle.RCTree(random_state=0)
    o.insert_point([0.0], index="a")
    o.insert_point([1.0], index="b")
    with pytest.raises(AssertionError):  # 0.4.4: a bare AssertionError
        o.insert_point([2.0], index="a")


def scores_after_stream(tree):
    rs = np.random.RandomState(0)
    for i in range(50):
        tree.insert_point(rs.randn(3), index=i)
    return [tree.codisp(i) for i in range(50)]


@pytest.mark.parametrize(
    "make_seed",
    [
        lambda: 7,
        lambda: np.int64(7),
        lambda: np.uint32(7),
        lambda: np.random.RandomState(7),
        lambda: np.random.default_rng(7),
        lambda: np.random.SeedSequence(7),
        lambda: np.random.PCG64(7),
        lambda: 2**80 + 7,
    ],
    ids=[
        "int",
        "np.int64",
        "np.uint32",
        "RandomState",
        "Generator",
        "SeedSequence",
        "PCG64",
        "bigint",
    ],
)
def test_any_seed_type_is_reproducible(make_seed):
    a = scores_after_stream(fast.RCTree(random_state=make_seed()))
    b = scores_after_stream(fast.RCTree(random_state=make_seed()))
    assert a == b


def test_numpy_integer_seed_means_the_same_as_int():
    a = fast.RCTree(random_state=np.int64(11))
    b = fast.RCTree(random_state=11)
    assert scores_after_stream(a) == scores_after_stream(b)
    # rrcf 0.4.4 ignores a numpy integer seed (it falls back to the global generator).
    np.random.seed(1)
    o1 = scores_after_stream(oracle.RCTree(random_state=np.int64(11)))
    np.random.seed(2)
    o2 = scores_after_stream(oracle.RCTree(random_state=np.int64(11)))
    assert o1 != o2


def test_bad_seeds_raise():
    with pytest.raises(TypeError, match="random_state must be None, an int"):
        fast.RCTree(random_state="seed")
    with pytest.raises(ValueError, match="non-negative"):
        fast.RCTree(random_state=-1)
    with pytest.raises(ValueError, match=r"between 0 and 2\*\*32 - 1"):
        fast.RCTree(random_state=2**32, compat="0.4.4")
    with pytest.raises(ValueError, match="compat='0.4.5'"):
        fast.RCTree(compat="0.4.5")


@pytest.mark.parametrize(
    "seed", [None, 3, np.random.default_rng(3)], ids=["unseeded", "int", "Generator"]
)
def test_pickle_with_or_without_seed(seed):
    tree = fast.RCTree(np.random.RandomState(1).randn(40, 2), random_state=seed)
    clone = pickle.loads(pickle.dumps(tree))
    assert clone.to_dict() == tree.to_dict()
    rs = np.random.RandomState(5)
    for i in range(40, 90):
        p = rs.randn(2)
        tree.insert_point(p, index=i)
        clone.insert_point(p, index=i)
        assert clone.codisp(i) == tree.codisp(i)
    assert clone.to_dict() == tree.to_dict()
    with pytest.raises(TypeError):
        pickle.dumps(oracle.RCTree())  # rrcf 0.4.4: "cannot pickle 'module' object"


def test_pickle_compat_global_generator_reconnects():
    np.random.seed(0)
    tree = fast.RCTree(np.random.randn(20, 2), compat="0.4.4")
    clone = pickle.loads(pickle.dumps(tree))
    np.random.seed(5)
    tree.insert_point([9.0, 9.0], index=99)
    np.random.seed(5)
    clone.insert_point([9.0, 9.0], index=99)
    assert clone.to_dict() == tree.to_dict()


def chain_dict(n):
    """rrcf dict of a 1-D tree of depth n - 1: leaf k is the left child of the k-th branch."""
    node = {"type": "Leaf", "i": n - 1, "x": [float(n - 1)], "d": n - 1, "n": 1, "ixs": [n - 1]}
    for k in range(n - 2, -1, -1):
        leaf = {"type": "Leaf", "i": k, "x": [float(k)], "d": k + 1, "n": 1, "ixs": [k]}
        node = {
            "type": "Branch",
            "q": 0,
            "p": k + 0.5,
            "n": n - k,
            "b": [[float(k)], [float(n - 1)]],
            "l": leaf,
            "r": node,
        }
    return node


def flatten(d):
    """Nodes of a nested tree dict in pre-order, without their children (iterative)."""
    out, stack = [], [d]
    while stack:
        node = stack.pop()
        out.append({k: v for k, v in node.items() if k not in ("l", "r")})
        if node["type"] == "Branch":
            stack += [node["r"], node["l"]]
    return out


def test_no_recursion_limit():
    n = sys.getrecursionlimit() + 500
    tree = fast.RCTree.from_dict(chain_dict(n), random_state=0)
    assert tree.leaves[n - 1].d == n - 1
    assert tree.codisp(0) == n - 1 and tree.codisp(n - 1) == 1.0
    assert tree.disp(0) == n - 1
    leaves = []
    tree.map_leaves(tree.root, op=leaves.append)
    assert [leaf.i for leaf in leaves] == list(range(n))
    branches = []
    tree.map_branches(tree.root, op=branches.append)
    assert len(branches) == n - 1
    assert flatten(tree.to_dict()) == flatten(chain_dict(n))  # == on nested dicts would recurse
    assert tree.query([n + 5.0]).i == n - 1
    assert repr(tree).count("(") == n
    clone = pickle.loads(pickle.dumps(tree))
    assert clone.codisp(n - 1) == tree.codisp(n - 1)
    for k in range(n, n + 50):
        tree.insert_point([k + 0.25], index=k)
    for k in range(n + 50):
        tree.forget_point(k)
    assert tree.root is None


def test_oracle_hits_the_recursion_limit():
    with pytest.raises(RecursionError):
        oracle.RCTree.from_dict(chain_dict(sys.getrecursionlimit() + 100))


def test_duplicates_merge_by_default():
    # 0.4.4 cuts on dimension 0 at a leaf; with equal first coordinates the new leaf shadows
    # the old one, so a later copy of the old point is not found and becomes a new leaf.
    o = oracle.RCTree(random_state=0)
    for k, p in enumerate([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]):
        o.insert_point(p, index=k)
    assert o.leaves[0] is not o.leaves[2] and o.root.n == 3
    c = fast.RCTree(random_state=0, compat="0.4.4")
    for k, p in enumerate([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]):
        c.insert_point(p, index=k)
    assert c.to_dict() == o.to_dict()  # compat reproduces it
    t = fast.RCTree(random_state=0)
    for k, p in enumerate([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]):
        t.insert_point(p, index=k)
    assert t.leaves[0] == t.leaves[2] and t.leaves[0].n == 2
    assert t.find_duplicate([0.0, 0.0]) == t.leaves[0]


def test_single_point_batch_builds_a_leaf():
    with pytest.raises((ValueError, RuntimeWarning)):  # 0/0 cut probabilities
        oracle.RCTree(np.array([[1.0, 2.0]]))
    tree = fast.RCTree(np.array([[1.0, 2.0], [1.0, 2.0]]), index_labels=["a", "b"])
    assert tree.root.n == 2 and tree.codisp("a") == 0.0 and set(tree.leaves) == {"a", "b"}


def test_bad_batch_input():
    with pytest.raises(ValueError, match="2-D"):
        fast.RCTree(np.zeros(5))
    with pytest.raises(ValueError, match="at least one row"):
        fast.RCTree(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="index_labels has 2 entries, expected one per row of X"):
        fast.RCTree(np.zeros((3, 1)) + np.arange(3)[:, None], index_labels=[1, 2])
    with pytest.raises(TypeError, match="precision must be an int"):
        fast.RCTree(np.zeros((3, 1)), precision=2.5)


def test_shingle_too_short_raises_index_error():
    with pytest.raises(IndexError, match="Sequence smaller than window size"):
        list(fast.shingle([1, 2], 3))


def test_empty_tree():
    tree = fast.RCTree()
    assert tree.to_dict() == {} and tree.root is None and tree.ndim is None
    assert repr(tree) == ""
    with pytest.raises(ValueError, match="empty"):
        tree.query([1.0])
    with pytest.raises(ValueError, match="empty"):
        tree.get_bbox()
    tree.load_dict({})
    assert len(tree.leaves) == 0


def test_bad_dicts():
    with pytest.raises(TypeError, match="must be Branch or Leaf"):
        fast.RCTree.from_dict({"type": "Twig"})
    with pytest.raises(ValueError, match="missing key 'x'"):
        fast.RCTree.from_dict({"type": "Leaf", "i": 0, "n": 1, "d": 0, "ixs": [0]})
    with pytest.raises(TypeError):
        fast.RCTree.from_dict([1, 2])
    leaf = {"type": "Leaf", "i": 0, "x": [0.0], "d": 1, "n": 1, "ixs": [0]}
    with pytest.raises(ValueError, match="q=3"):
        fast.RCTree.from_dict(
            {
                "type": "Branch",
                "q": 3,
                "p": 0.0,
                "n": 2,
                "b": [[0.0], [1.0]],
                "l": leaf,
                "r": {**leaf, "i": 1, "x": [1.0], "ixs": [1]},
            }
        )


def test_removed_leaf_views():
    tree = fast.RCTree(random_state=0)
    tree.insert_point([0.0], index=0)
    tree.insert_point([1.0], index=1)
    view = tree.leaves[0]
    removed = tree.forget_point(0)
    assert removed.i == 0 and removed.n == 1 and removed.x.tolist() == [0.0] and removed.u is None
    with pytest.raises(ValueError, match="removed"):
        _ = view.n
    with pytest.raises(ValueError, match="removed"):
        tree.codisp(removed)
