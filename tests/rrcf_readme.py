"""rrcf's README programs, kept in one place for the tests and benchmarks that run them.

Each takes the module to run on (``rrcf`` itself, ``rcf_fast.rrcf``, or ``compat_module()``),
so one text serves the drop-in tests, the bit-for-bit parity tests against rrcf 0.4.4 and the
speed comparison. The bodies follow the README line for line; only the parameters are lifted
into arguments and the results returned.
"""

from __future__ import annotations

import numpy as np
import rcf_fast.rrcf as fast


def compat_module():
    """`rcf_fast.rrcf` with RCTree defaulting to compat="0.4.4" (so rrcf code runs unchanged)."""

    class Module:
        shingle = staticmethod(fast.shingle)

        class RCTree(fast.RCTree):
            def __new__(cls, *args, compat="0.4.4", **kwargs):
                return super().__new__(cls, *args, compat=compat, **kwargs)

    return Module


def sine_with_dip(n=730):
    """The README's streaming series: a sine with a flat stretch at 235-255."""
    A = 50
    center = 100
    phi = 30
    T = 2 * np.pi / 100
    t = np.arange(n)
    sin = A * np.sin(T * t - phi * T) + center
    sin[235:255] = 80
    return sin


def streaming(rrcf, num_trees=40, shingle_size=4, tree_size=256, n=730):
    """README "Streaming anomaly detection": returns the forest and {index: mean CoDisp}."""
    sin = sine_with_dip(n)
    forest = []
    for _ in range(num_trees):
        tree = rrcf.RCTree()
        forest.append(tree)
    points = rrcf.shingle(sin, size=shingle_size)
    avg_codisp = {}
    for index, point in enumerate(points):
        for tree in forest:
            if len(tree.leaves) > tree_size:
                tree.forget_point(index - tree_size)
            tree.insert_point(point, index=index)
            if not index in avg_codisp:
                avg_codisp[index] = 0
            avg_codisp[index] += tree.codisp(index) / num_trees
    return forest, avg_codisp


def _batch_forest(rrcf):
    np.random.seed(0)
    n = 2010
    d = 3
    num_trees = 100
    tree_size = 256
    X = np.zeros((n, d))
    X[:1000, 0] = 5
    X[1000:2000, 0] = -5
    X += 0.01 * np.random.randn(*X.shape)
    forest = []
    while len(forest) < num_trees:
        ixs = np.random.choice(n, size=(n // tree_size, tree_size), replace=False)
        trees = [rrcf.RCTree(X[ix], index_labels=ix) for ix in ixs]
        forest.extend(trees)
    return n, forest


def batch(rrcf):
    """README "Batch anomaly detection" with numpy arrays for the pandas Series: returns the
    forest and the mean CoDisp per point (NaN for a point no tree holds)."""
    n, forest = _batch_forest(rrcf)
    avg_codisp = np.zeros(n)
    index = np.zeros(n)
    for tree in forest:
        keys = np.array(list(tree.leaves))
        codisp = np.array([tree.codisp(leaf) for leaf in tree.leaves])
        np.add.at(avg_codisp, keys, codisp)
        np.add.at(index, keys, 1)
    avg_codisp /= index
    return forest, avg_codisp


def batch_pandas(rrcf):
    """README "Batch anomaly detection" as written (needs pandas): the mean CoDisp Series."""
    import pandas as pd

    n, forest = _batch_forest(rrcf)
    avg_codisp = pd.Series(0.0, index=np.arange(n))
    index = np.zeros(n)
    for tree in forest:
        codisp = pd.Series({leaf: tree.codisp(leaf) for leaf in tree.leaves})
        avg_codisp[codisp.index] += codisp
        np.add.at(index, codisp.index.values, 1)
    avg_codisp /= index
    return avg_codisp
