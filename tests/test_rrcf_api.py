"""rcf_fast.rrcf API: rrcf's README examples unchanged, views, leaves mapping, helpers."""

from __future__ import annotations

import collections.abc

import numpy as np
import pytest
import rcf_fast.rrcf as rrcf  # noqa: PLR0402 (the drop-in import, as users write it)
import rrcf_readme


def test_readme_creating_inserting_deleting():
    # rrcf README "Robust random cut trees", verbatim.
    X = np.random.randn(100, 2)
    tree = rrcf.RCTree(X)
    tree = rrcf.RCTree()
    tree = rrcf.RCTree()
    for i in range(6):
        x = np.random.randn(2)
        tree.insert_point(x, index=i)
    tree.forget_point(2)
    assert sorted(tree.leaves) == [0, 1, 3, 4, 5]
    text = repr(tree)
    assert text.startswith("\u2500+\n") and "(2)" not in text and "(5)" in text


def test_readme_anomaly_score():
    # rrcf README "Anomaly score", verbatim.
    X = np.random.randn(100, 2)
    tree = rrcf.RCTree(X)
    inlier = np.array([0, 0])
    outlier = np.array([4, 4])
    tree.insert_point(inlier, index="inlier")
    tree.insert_point(outlier, index="outlier")
    assert tree.codisp("outlier") >= 1 and tree.codisp("inlier") >= 0
    # One tree is noisy (the README's 1.75 vs 39.0 is one draw); averaged over trees:
    scores = {"inlier": 0.0, "outlier": 0.0}
    for _ in range(50):
        tree = rrcf.RCTree(X)
        tree.insert_point(inlier, index="inlier")
        tree.insert_point(outlier, index="outlier")
        for k in scores:
            scores[k] += tree.codisp(k) / 50
    assert scores["outlier"] > 5 * scores["inlier"]


def test_readme_streaming_flags_the_anomaly():
    forest, avg_codisp = rrcf_readme.streaming(rrcf)
    top = max(avg_codisp, key=avg_codisp.get)
    assert 230 <= top <= 258
    assert all(len(tree.leaves) == 256 + 1 for tree in forest)


def test_readme_batch_with_pandas():
    pytest.importorskip("pandas")
    avg_codisp = rrcf_readme.batch_pandas(rrcf)
    assert avg_codisp[2000:].mean() > 3 * avg_codisp[:2000].mean()


def small_tree():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [1.0, 0.0]])
    return rrcf.RCTree(X, index_labels=["a", "b", "c", "d", "e"], random_state=4)


def test_views_and_attributes():
    tree = small_tree()
    root = tree.root
    assert isinstance(root, rrcf.Branch) and root.u is None and root.n == 5
    assert np.array_equal(root.b, [[0.0, 0.0], [5.0, 5.0]])
    assert isinstance(root.q, int) and isinstance(root.p, float)
    assert repr(root) == f"Branch(q={root.q}, p={root.p:.2f})"
    leaf = tree.leaves["b"]
    assert isinstance(leaf, rrcf.Leaf)
    assert leaf == tree.leaves["e"] and leaf.n == 2  # duplicates share a leaf
    assert hash(leaf) == hash(tree.leaves["e"])
    assert leaf.x.tolist() == [1.0, 0.0] and leaf.b.shape == (1, 2)
    assert isinstance(leaf.i, int)  # batch leaves: row of the deduplicated data, like rrcf
    assert leaf.u.l == leaf or leaf.u.r == leaf
    depth, node = 0, leaf
    while node.u is not None:
        node, depth = node.u, depth + 1
    assert leaf.d == depth and node == root
    assert repr(tree.leaves["a"]).startswith("Leaf(")


def test_leaves_mapping():
    tree = small_tree()
    leaves = tree.leaves
    assert isinstance(leaves, collections.abc.Mapping)
    assert len(leaves) == 5 and "a" in leaves and "z" not in leaves
    assert list(leaves) == list(leaves.keys()) and sorted(leaves) == ["a", "b", "c", "d", "e"]
    assert [k for k, _ in leaves.items()] == list(leaves)
    assert leaves.get("z") is None and leaves.get("a") == leaves["a"]
    assert len(leaves.values()) == 5 and dict(leaves.items())["d"] == leaves["d"]


def test_scores_query_bbox_duplicates():
    tree = small_tree()
    assert tree.codisp("d") >= 1.0
    codisp, dim = tree.codisp_with_cut_dimension("d")
    assert codisp == tree.codisp("d") and dim in (0, 1)
    assert tree.codisp(tree.leaves["d"]) == tree.codisp("d")
    assert tree.disp("d") == tree.disp(tree.leaves["d"])
    assert tree.query([4.9, 5.1]) == tree.leaves["d"]
    assert tree.query(np.array([[4.9, 5.1]])) == tree.leaves["d"]  # any shape, raveled
    assert tree.find_duplicate([5.0, 5.0]) == tree.leaves["d"]
    assert tree.find_duplicate([5.0, 5.0 + 1e-12]) is None
    assert tree.find_duplicate([5.0, 5.0 + 1e-12], tolerance=1e-9) == tree.leaves["d"]
    assert np.array_equal(tree.get_bbox(), [[0.0, 0.0], [5.0, 5.0]])
    for branch in (tree.root, tree.root.l, tree.root.r):
        if isinstance(branch, rrcf.Branch):
            assert np.array_equal(tree.get_bbox(branch), branch.b)
    leaf = tree.insert_point([5.0, 5.0 + 1e-12], index="f", tolerance=1e-9)
    assert leaf == tree.leaves["d"] and leaf.n == 2
    assert tree.forget_point("f") == tree.leaves["d"] and tree.leaves["d"].n == 1


def test_map_leaves_and_branches_order():
    tree = small_tree()
    leaves, branches = [], []
    tree.map_leaves(tree.root, op=lambda x, out: out.append(x.x.tolist()), out=leaves)
    tree.map_branches(tree.root, op=lambda x, stack: stack.append(x), stack=branches)
    assert len(leaves) == 4 and len(branches) == 3
    assert branches[-1] == tree.root  # post-order
    # Left-to-right leaf order: cuts increase along the way.
    walk = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        if isinstance(node, rrcf.Leaf):
            walk.append(node.x.tolist())
        else:
            stack += [node.r, node.l]
    assert walk == leaves


def test_inputs_lists_ints_and_2d_points():
    tree = rrcf.RCTree(random_state=1)
    tree.insert_point([1, 2], index=0)
    tree.insert_point((3, 4), index=1)
    tree.insert_point(np.array([[5, 6]], dtype=np.int32), index=2)
    tree.insert_point(np.arange(6.0)[::3], index=3)  # strided
    assert tree.ndim == 2 and len(tree.leaves) == 4
    assert tree.leaves[3].x.tolist() == [0.0, 3.0]
    with pytest.raises((TypeError, ValueError)):
        tree.insert_point(["x", "y"], index=4)


def test_index_labels_attribute_and_compat_property():
    X = np.arange(8.0).reshape(4, 2)
    tree = rrcf.RCTree(X, index_labels=[10, 11, 12, 13], random_state=0)
    assert tree.index_labels == [10, 11, 12, 13] and sorted(tree.leaves) == [10, 11, 12, 13]
    assert tree.compat is None and rrcf.RCTree(compat="0.4.4").compat == "0.4.4"
    assert np.array_equal(rrcf.RCTree(X).index_labels, np.arange(4))


def test_shingle_matches_rrcf():
    oracle = pytest.importorskip("rrcf")
    seq = np.arange(10.0)
    ours = list(rrcf.shingle(seq, size=3))
    theirs = list(oracle.shingle(seq, size=3))
    assert len(ours) == len(theirs) == 8
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_subclass_and_per_tree_seeds_differ():
    class MyTree(rrcf.RCTree):
        pass

    t = MyTree(np.random.RandomState(0).randn(50, 2), random_state=1)
    assert isinstance(t, rrcf.RCTree) and type(rrcf.RCTree.from_dict(t.to_dict())) is rrcf.RCTree
    assert type(MyTree.from_dict(t.to_dict())) is MyTree
    a = rrcf.RCTree(np.random.RandomState(0).randn(50, 2))
    b = rrcf.RCTree(np.random.RandomState(0).randn(50, 2))
    assert a.to_dict() != b.to_dict()  # unseeded trees draw fresh entropy
