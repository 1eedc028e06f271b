"""Hostile input to rcf_fast.rrcf (issue 10): each case runs in its own process under a memory cap
and a time limit, so a crash, a hang or runaway memory fails the test instead of killing pytest.

A case is a program that prints one line: the outcome (``ok ...`` or the exception type and
message). The test asserts the process ended normally and the outcome is the expected one.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

MEMORY_CAP = 1536 * 2**20  # bytes of address space per case
TIME_LIMIT = 60  # seconds per case

PRELUDE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
import gc, pickle
import numpy as np
import rcf_fast.rrcf as rrcf

def outcome(f):
    try:
        r = f()
    except BaseException as e:  # PanicException derives from BaseException
        print(f"{{type(e).__module__}}.{{type(e).__name__}}: {{e}}"[:300])
    else:
        print("ok", r)
"""


def run_case(body: str) -> str:
    """Runs ``body`` after the prelude in a fresh interpreter; returns its last output line."""
    code = PRELUDE.format(cap=MEMORY_CAP) + textwrap.dedent(body)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            check=False,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"case did not finish in {TIME_LIMIT} s:\n{body}")
    assert proc.returncode == 0, (
        f"case ended with return code {proc.returncode} (signal if negative)\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no outcome printed; stderr: {proc.stderr[-2000:]}"
    return lines[-1]


# ---- item 1: a tree sharing a RandomState must not keep a dangling pointer -------------------


@pytest.mark.parametrize("compat", ["'0.4.4'", "None"])
def test_reseeded_shared_random_state_is_not_a_use_after_free(compat):
    out = run_case(
        f"""
        rs = np.random.RandomState(0)
        tree = rrcf.RCTree(random_state=rs, compat={compat})
        for i in range(50):
            tree.insert_point(np.random.RandomState(i).uniform(size=3), index=i)
        def churn():
            for k in range(200):
                rs.__init__(k)  # replaces (and frees) the old bit generator
                junk = [np.random.RandomState(j) for j in range(20)]  # reuse the freed memory
                del junk
                gc.collect()
                for i in range(3):
                    tree.insert_point(np.random.RandomState(1000 + k * 3 + i).uniform(size=3),
                                      index=10_000 + k * 3 + i)
            return len(tree.leaves)
        outcome(churn)
        # After re-seeding, the tree draws from the new stream, as rrcf's does.
        rs.__init__(7)
        t2 = rrcf.RCTree(random_state=7, compat={compat})
        a = rrcf.RCTree(random_state=rs, compat={compat})
        pts = np.random.RandomState(3).uniform(size=(40, 2))
        for i, p in enumerate(pts):
            a.insert_point(p, index=i)
            t2.insert_point(p, index=i)
        print("same", str(a) == str(t2))
        """
    )
    assert out == "same True"


def test_reseeded_random_state_still_matches_rrcf_stream():
    out = run_case(
        """
        import rrcf as oracle
        def build(mod, **kw):
            rs = np.random.RandomState(1)
            t = mod.RCTree(random_state=rs, **kw)
            pts = np.random.RandomState(3).uniform(size=(60, 2))
            for i, p in enumerate(pts):
                if i == 30:
                    rs.__init__(9)
                t.insert_point(p, index=i)
            return t.to_dict()
        print("same", build(rrcf, compat="0.4.4") == build(oracle))
        """
    )
    assert out == "same True"


# ---- item 2: unbounded memory or time from finite input --------------------------------------


@pytest.mark.parametrize("compat", ["'0.4.4'", "None"])
@pytest.mark.parametrize(
    "call",
    [
        "rrcf.RCTree([[-1e300], [1e300]], random_state=0, compat={c})",
        "rrcf.RCTree([[-1e300, 0.0], [1e300, 1.0]], random_state=0, compat={c})",
        "rrcf.RCTree([[1.6e308, 1.6e308], [-1e308, -1e308], [0.0, 0.0]], random_state=0, compat={c})",
        "rrcf.RCTree(np.random.RandomState(0).randn(50, 3), precision=308, random_state=0, compat={c})",
        "rrcf.RCTree(np.random.RandomState(0).randn(50, 3), precision=2**31 - 1, random_state=0, compat={c})",
        "rrcf.RCTree(np.random.RandomState(0).randn(50, 3), precision=-(2**31), random_state=0, compat={c})",
    ],
)
def test_batch_overflow_raises_value_error(call, compat):
    out = run_case(f"outcome(lambda: {call.format(c=compat)})")
    assert out.startswith("builtins.ValueError:"), out


@pytest.mark.parametrize("precision", ["2**31", "2**200", "-(2**31) - 1"])
def test_precision_out_of_range_is_value_error(precision):
    out = run_case(f"outcome(lambda: rrcf.RCTree([[0.0], [1.0]], precision={precision}))")
    assert out.startswith("builtins.ValueError:") and "precision" in out, out


@pytest.mark.parametrize("compat", ["'0.4.4'", "None"])
def test_insert_whose_box_span_overflows_raises_value_error(compat):
    out = run_case(
        f"""
        tree = rrcf.RCTree(random_state=0, compat={compat})
        tree.insert_point([-1e308, 0.0], index=0)
        tree.insert_point([0.0, 0.0], index=1)
        before = tree.to_dict()
        def go():
            try:
                tree.insert_point([1.7e308, 1.0], index=2)
            finally:
                assert tree.to_dict() == before and 2 not in tree.leaves
        outcome(go)
        """
    )
    assert out.startswith("builtins.ValueError:"), out


def test_load_dict_of_a_cyclic_dict_raises():
    out = run_case(
        """
        t = rrcf.RCTree(np.random.RandomState(0).randn(6, 2), random_state=0)
        d = t.to_dict()
        d["l"]["l"] = d  # a cycle back to the root
        outcome(lambda: rrcf.RCTree().load_dict(d))
        """
    )
    assert out.startswith(("builtins.ValueError:", "builtins.RecursionError:")), out


def test_load_dict_of_a_shared_subtree_raises():
    # A DAG: a subtree reachable twice; 40 levels would unfold to 2**40 nodes.
    out = run_case(
        """
        leaf = {"type": "Leaf", "i": 0, "x": [0.0], "d": 0, "n": 1, "ixs": [0]}
        node = leaf
        for _ in range(40):
            node = {"type": "Branch", "q": 0, "p": 0.0, "n": 2, "b": [[0.0], [0.0]],
                    "l": node, "r": node}
        outcome(lambda: rrcf.RCTree().load_dict(node))
        """
    )
    assert out.startswith("builtins.ValueError:"), out


def test_load_dict_with_an_endless_ixs_iterator_raises():
    out = run_case(
        """
        import itertools
        d = {"type": "Leaf", "i": 0, "x": [0.0], "d": 0, "n": 1, "ixs": itertools.count()}
        outcome(lambda: rrcf.RCTree().load_dict(d))
        d = {"type": "Leaf", "i": 0, "x": [0.0], "d": 0, "n": 10**18, "ixs": itertools.count()}
        outcome(lambda: rrcf.RCTree().load_dict(d))
        """
    )
    assert out.startswith(("builtins.ValueError:", "builtins.TypeError:")), out


# ---- item 4: no PanicException ----------------------------------------------------------------


def test_load_dict_leaf_with_more_indices_than_mass_then_forget():
    out = run_case(
        """
        t = rrcf.RCTree(np.random.RandomState(0).randn(6, 2), random_state=0)
        d = t.to_dict()
        node = d
        while node["type"] == "Branch":
            node = node["l"]
        node["ixs"] = node["ixs"] + [100, 101]
        def go():
            t2 = rrcf.RCTree()
            t2.load_dict(d)
            for k in list(t2.leaves):
                t2.forget_point(k)
            return len(t2.leaves)
        outcome(go)
        """
    )
    assert out.startswith("builtins.ValueError:") and "ixs" in out, out


@pytest.mark.parametrize("method", ["codisp", "disp", "forget_point"])
def test_pickle_with_out_of_range_slot_raises(method):
    out = run_case(
        f"""
        t = rrcf.RCTree(np.random.RandomState(0).randn(6, 2), random_state=0)
        fn, (cls, state, attrs) = t.__reduce__()
        items = list(state[5])
        items[0] = (items[0][0], 10**6)
        state = state[:5] + (items,)
        def go():
            t2 = fn(cls, state, attrs)
            return t2.{method}(items[0][0])
        outcome(go)
        """
    )
    assert out.startswith("builtins.ValueError:"), out


def test_pickle_with_mutated_tree_bytes_never_panics_or_hangs():
    out = run_case(
        """
        import random
        t = rrcf.RCTree(np.random.RandomState(0).randn(12, 2), random_state=0)
        for i in range(12, 20):
            t.insert_point(np.random.RandomState(i).randn(2), index=i)
        fn, (cls, state, attrs) = t.__reduce__()
        raw = bytearray(state[1])
        rnd = random.Random(0)
        kinds = {}
        for trial in range(3000):
            b = bytearray(raw)
            for _ in range(rnd.randint(1, 4)):
                pos = rnd.randrange(len(b))
                b[pos] = rnd.randrange(256) if rnd.random() < 0.7 else b[pos] ^ (1 << rnd.randrange(8))
            try:
                t2 = fn(cls, state[:1] + (bytes(b),) + state[2:], attrs)
                t2.to_dict(); repr(t2)
                for k in list(t2.leaves)[:3]:
                    t2.codisp(k); t2.disp(k); t2.forget_point(k)
                t2.insert_point([0.5, 0.5], index="new")
                t2.map_leaves(t2.root); t2.get_bbox()
                kinds["ok"] = kinds.get("ok", 0) + 1
            except (ValueError, KeyError, TypeError) as e:
                kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
        print("ok", sorted(kinds))
        """
    )
    assert out.startswith("ok") and "ValueError" in out, out


def test_index_whose_eq_touches_the_tree():
    out = run_case(
        """
        class Key:
            tree = None
            def __init__(self, v): self.v = v
            def __hash__(self): return 1  # every Key collides, so __eq__ runs on lookups
            def __eq__(self, other):
                t = Key.tree
                if t is not None and len(t.leaves):
                    t.codisp(next(iter(t.leaves)))  # reads
                    try:
                        t.insert_point([float(self.v), 7.0], index=("inner", self.v))
                    except Exception:
                        pass
                return isinstance(other, Key) and other.v == self.v
        def go():
            t = rrcf.RCTree(random_state=0)
            Key.tree = t
            for i in range(30):
                t.insert_point([float(i), float(i % 3)], index=Key(i))
            for k in list(t.leaves)[:20]:
                if k in t.leaves:
                    t.codisp(k); t.disp(k); t.forget_point(k)
            # Every branch mass equals the leaf masses below it, every index has a leaf.
            masses = []
            t.map_branches(t.root, op=lambda b: masses.append(b.n == t._count_leaves(b)))
            return all(masses) and t.root.n == len(t.leaves)
        outcome(go)
        """
    )
    assert out == "ok True", out


# ---- item 5: all-or-nothing operations --------------------------------------------------------


@pytest.mark.parametrize("compat", ["'0.4.4'", "None"])
def test_index_whose_hash_fails_the_second_time_leaves_the_tree_unchanged(compat):
    out = run_case(
        f"""
        class Flaky:
            def __init__(self): self.calls = 0
            def __hash__(self):
                self.calls += 1
                if self.calls >= 2:
                    raise RuntimeError("hash failed")
                return 12345
        t = rrcf.RCTree(random_state=0, compat={compat})
        for i in range(4):
            t.insert_point([float(i), 0.5 * i], index=i)
        before = t.to_dict()
        for point in ([10.0, 2.0], [1.0, 0.5]):  # a new leaf, then a duplicate point
            try:
                t.insert_point(point, index=Flaky())
            except RuntimeError:
                pass
            assert t.to_dict() == before, "tree changed"
        print("ok", t.root.n, len(t.leaves), t._count_leaves(t.root))
        """
    )
    assert out == "ok 4 4 4", out


# ---- item 9: clear errors ---------------------------------------------------------------------


@pytest.mark.parametrize("point", ["None", "[None, 1.0]", "'ab'", "[[1.0], 2.0]", "{'a': 1}"])
def test_non_numeric_point_is_a_type_error_naming_the_input(point):
    out = run_case(
        f"""
        t = rrcf.RCTree(random_state=0)
        outcome(lambda: t.insert_point({point}, index=0))
        t.insert_point([1.0], index=1)
        outcome(lambda: t.insert_point({point}, index=0))
        """
    )
    assert out.startswith(("builtins.TypeError:", "builtins.ValueError:")), out
    assert "NaN" not in out and "point" in out, out
