"""Structure-aware fuzzing of the rrcf loaders (issue 10): ``load_dict`` with mutated to_dict()
output and pickles with mutated state. Every input must either load into a tree that works
(scores, forgets, inserts, serializes, with masses that add up) or raise ValueError, TypeError
or KeyError: never another exception, a panic, a hang or a crash.

Bounded by the hypothesis profile of tests/conftest.py (HYPOTHESIS_PROFILE=fast|slow).
"""

from __future__ import annotations

import copy
import math
import pickle
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from rcf_fast import rrcf

EXPECTED = (ValueError, TypeError, KeyError)


def make_tree(seed: int, n: int, compat: str | None) -> rrcf.RCTree:
    rs = np.random.RandomState(seed)
    tree = rrcf.RCTree(rs.randn(n, 2).round(1), random_state=seed, compat=compat)
    for i in range(n, n + 4):
        tree.insert_point(rs.randn(2).round(1), index=i)
    return tree


def exercise(tree: rrcf.RCTree) -> None:
    """Uses a loaded tree every way; its masses must add up."""
    if tree.root is None:
        return
    sums = []
    tree.map_branches(tree.root, op=lambda b: sums.append(b.n == tree._count_leaves(b)))
    assert all(sums)
    assert len(tree.leaves) <= tree.root.n
    repr(tree)
    tree.to_dict()
    tree.get_bbox()
    keys = list(tree.leaves)
    for k in keys[:3]:
        tree.codisp(k)
        tree.disp(k)
    for k in keys[: len(keys) // 2]:
        tree.forget_point(k)
    if tree.root is not None and tree.ndim is not None:
        tree.insert_point(np.zeros(tree.ndim), index="fuzz")
        tree.codisp("fuzz")
    pickle.loads(pickle.dumps(tree)).to_dict()


def nodes(d: dict) -> list[dict]:
    out, stack = [], [d]
    while stack:
        n = stack.pop()
        out.append(n)
        if n.get("type") == "Branch":
            stack += [n["l"], n["r"]]
    return out


ODD_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    [
        None,
        -1,
        0,
        1,
        2,
        3,
        2**64,
        -(2**63),
        1.5,
        math.nan,
        math.inf,
        -math.inf,
        "x",
        [],
        [[]],
        [0.0],
        [[0.0, 0.0]],
        [[0.0, 0.0], [1.0, 1.0]],
        {},
        {"type": "Leaf"},
        (1, 2),
        [0, 0],
        [1e308, -1e308],
    ]
)
FIELDS = st.sampled_from(["type", "q", "p", "n", "b", "l", "r", "i", "x", "d", "ixs"])


@st.composite
def mutated_dict(draw):
    tree = make_tree(
        draw(st.integers(0, 50)), draw(st.integers(2, 12)), draw(st.sampled_from([None, "0.4.4"]))
    )
    d = tree.to_dict()
    all_nodes = nodes(d)
    for _ in range(draw(st.integers(1, 4))):
        node = all_nodes[draw(st.integers(0, len(all_nodes) - 1))]
        action = draw(st.sampled_from(["set", "delete", "link", "copy"]))
        field = draw(FIELDS)
        if action == "set":
            node[field] = draw(ODD_VALUES)
        elif action == "delete":
            node.pop(field, None)
        elif action == "link":  # point a child at another node (cycles, shared subtrees)
            node[draw(st.sampled_from(["l", "r"]))] = all_nodes[
                draw(st.integers(0, len(all_nodes) - 1))
            ]
        else:  # a deep copy of another node's subtree (valid shape, wrong masses/indices)
            node[draw(st.sampled_from(["l", "r"]))] = copy.deepcopy(
                all_nodes[draw(st.integers(0, len(all_nodes) - 1))]
            )
    return d


@given(mutated_dict())
def test_load_dict_fuzz(d):
    tree = rrcf.RCTree(random_state=0)
    try:
        tree.load_dict(d)
    except EXPECTED:
        return
    exercise(tree)


@st.composite
def mutated_state(draw):
    tree = make_tree(
        draw(st.integers(0, 50)), draw(st.integers(2, 12)), draw(st.sampled_from([None, "0.4.4"]))
    )
    fn, (cls, state, attrs) = tree.__reduce__()
    state = list(state)
    what = draw(st.sampled_from(["bytes", "truncate", "extend", "labels", "items", "rng"]))
    raw = bytearray(state[1])
    if what == "bytes":
        for _ in range(draw(st.integers(1, 6))):
            pos = draw(st.integers(0, len(raw) - 1))
            raw[pos] = draw(st.integers(0, 255))
        state[1] = bytes(raw)
    elif what == "truncate":
        state[1] = bytes(raw[: draw(st.integers(0, len(raw) - 1))])
    elif what == "extend":
        state[1] = bytes(raw) + bytes(draw(st.binary(min_size=1, max_size=64)))
    elif what == "labels":
        labels = list(state[4])
        if labels and draw(st.booleans()):
            labels.pop()
        else:
            labels += [draw(ODD_VALUES)] * draw(st.integers(1, 100))
        state[4] = labels if draw(st.booleans()) else tuple(labels)
    elif what == "items":
        items = list(state[5])
        k = draw(st.integers(0, len(items) - 1))
        slot = draw(st.one_of(st.integers(-5, 2**40), ODD_VALUES))
        choice = draw(st.sampled_from(["slot", "dup", "extra"]))
        if choice == "slot":
            items[k] = (items[k][0], slot)
        elif choice == "dup":
            items.append(items[k])
        else:
            items.append(("extra", items[k][1]))
        state[5] = items
    else:
        state[2] = draw(st.one_of(ODD_VALUES, st.lists(st.integers(0, 2**32 - 1), max_size=700)))
        state[3] = draw(st.one_of(ODD_VALUES, st.integers(-1, 1000)))
    return fn, cls, tuple(state), attrs


@given(mutated_state())
def test_pickle_state_fuzz(case):
    fn, cls, state, attrs = case
    try:
        tree = fn(cls, state, attrs)
    except EXPECTED:
        return
    exercise(tree)
