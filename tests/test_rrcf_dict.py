"""to_dict / load_dict / from_dict: JSON round trips both ways with rrcf 0.4.4."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rcf_fast.rrcf as fast

oracle = pytest.importorskip("rrcf")


def streamed(module, seed, compat=None, n=120):
    kwargs = {"random_state": seed}
    if compat:
        kwargs["compat"] = compat
    tree = module.RCTree(np.random.RandomState(seed).randn(30, 3), **kwargs)
    rs = np.random.RandomState(seed + 100)
    for i in range(30, n):
        p = np.round(rs.randn(3), 1)  # rounding makes some duplicates
        tree.insert_point(p, index=i)
        if i % 3 == 0:
            tree.forget_point(i - 20)
    tree.insert_point([0.5, 0.5, 0.5], index="label")
    return tree


def scores(tree):
    return {k: (tree.codisp(k), tree.disp(k)) for k in tree.leaves}


@pytest.mark.parametrize("compat", [None, "0.4.4"])
@pytest.mark.parametrize("seed", range(4))
def test_ours_to_rrcf_via_json(seed, compat):
    ours = streamed(fast, seed, compat)
    text = json.dumps(ours.to_dict())
    theirs = oracle.RCTree.from_dict(json.loads(text))
    assert json.dumps(theirs.to_dict()) == text
    assert scores(theirs) == scores(ours)


@pytest.mark.parametrize("compat", [None, "0.4.4"])
@pytest.mark.parametrize("seed", range(4))
def test_rrcf_to_ours_via_json(seed, compat):
    theirs = streamed(oracle, seed)
    text = json.dumps(theirs.to_dict())
    ours = fast.RCTree.from_dict(json.loads(text), compat=compat)
    assert json.dumps(ours.to_dict()) == text
    assert scores(ours) == scores(theirs)
    # Both continue identically after loading (compat mode, same seed for the draws).
    if compat:
        a = fast.RCTree(random_state=9, compat="0.4.4")
        a.load_dict(json.loads(text))
        b = oracle.RCTree(random_state=9)
        b.load_dict(json.loads(text))
        for i in range(200, 260):
            p = np.sin(np.arange(3) + i)
            a.insert_point(p, index=i)
            b.insert_point(p, index=i)
        assert a.to_dict() == b.to_dict()
        assert scores(a) == scores(b)


def test_load_dict_replaces_content_and_keeps_settings():
    tree = fast.RCTree(np.arange(10.0).reshape(5, 2), random_state=1, compat="0.4.4")
    other = streamed(oracle, 2)
    tree.load_dict(other.to_dict())
    assert tree.compat == "0.4.4"
    assert set(tree.leaves) == set(other.leaves)
    assert tree.ndim == 3


def test_dict_keys_and_types_match_rrcf():
    X = np.random.RandomState(0).randn(8, 2)
    X[3] = X[1]
    ours = fast.RCTree(X, random_state=0, compat="0.4.4").to_dict()
    theirs = oracle.RCTree(X, random_state=0).to_dict()
    assert list(ours) == list(theirs) == ["type", "q", "p", "n", "b", "l", "r"]
    stack = [(ours, theirs)]
    while stack:
        a, b = stack.pop()
        assert list(a) == list(b)
        for key in a:
            if key in ("l", "r"):
                stack.append((a[key], b[key]))
            else:
                assert type(a[key]) is type(b[key]), key
                assert a[key] == b[key]
