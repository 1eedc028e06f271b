"""Issue 10, forest side: nothing a caller passes segfaults, panics, hangs, freezes the
interpreter or allocates without bound. Adversarial cases run in a subprocess under a memory cap
and a time limit (tests/isolated.py), so a regression is a failure, not a killed runner."""

from __future__ import annotations

import ast
import pickle
import struct

import forest_state as fs
import numpy as np
import pytest
from isolated import expect_ok
from rcf_fast import RandomCutForest, StateError

# Builds a small trained forest and defines `load(payload)`: seal, from_bytes, report the outcome
# as one line ("ok", "StateError: ...", or another exception's type).
PRELUDE = """
import pickle, struct, sys
import numpy as np
import forest_state as fs
from rcf_fast import RandomCutForest, StateError

def trained(**kw):
    kw.setdefault("num_trees", 3)
    kw.setdefault("sample_size", 64)
    kw.setdefault("seed", 1)
    f = RandomCutForest(**kw)
    f.update_many(np.random.default_rng(0).normal(size=(300, f.dimensions)))
    return f

def outcome(fn):
    try:
        fn()
        return "ok"
    except StateError as e:
        return "StateError: " + str(e)
    except BaseException as e:
        return type(e).__name__ + ": " + str(e)

def load(payload):
    return outcome(lambda: RandomCutForest.from_bytes(fs.seal(payload)))
"""


def isolated_outcome(body: str, mem_gb: float = 1.5) -> str:
    out = expect_ok(PRELUDE + body, mem_gb=mem_gb)
    return out.strip().splitlines()[-1]


def test_point_store_shorter_than_its_references_is_a_state_error():
    out = isolated_outcome(
        """
f = trained(dimensions=2)
st = fs.parse(f.to_bytes())
d = st.data
cut = 2 * 4  # drop the last point's two values
p = st.payload
new = p[: d.at] + struct.pack("<Q", d.count - 2) + p[d.start : d.end - cut] + p[d.end :]
print(load(new))
"""
    )
    assert out.startswith("StateError"), out


def test_point_store_shorter_than_its_references_through_pickle():
    out = isolated_outcome(
        """
f = trained(dimensions=2)
st = fs.parse(f.to_bytes())
d = st.data
p = st.payload
new = p[: d.at] + struct.pack("<Q", d.count - 2) + p[d.start : d.end - 8] + p[d.end :]
class Bad:
    def __reduce__(self):
        return (RandomCutForest._from_bytes, (fs.seal(new),))
blob = pickle.dumps(Bad())
print(outcome(lambda: pickle.loads(blob)))
"""
    )
    assert out.startswith("StateError"), out


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_cut_values_are_rejected(value):
    out = isolated_outcome(
        f"""
f = trained(dimensions=2)
st = fs.parse(f.to_bytes())
t = st.trees[0]
outcomes = []
for i in range(t.nodes.count):
    p = bytearray(st.payload)
    struct.pack_into("<f", p, t.nodes.start + 12 * i, float({str(value)!r}))
    outcomes.append(load(p).split(":")[0])
print(sorted(set(outcomes)))
"""
    )
    assert out == "['StateError']", out


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_sampler_weights_are_rejected(value):
    out = isolated_outcome(
        f"""
f = trained()
st = fs.parse(f.to_bytes())
t = st.trees[1]
p = bytearray(st.payload)
struct.pack_into("<f", p, t.weights.start + 4 * 5, float({str(value)!r}))
print(load(p))
"""
    )
    assert out.startswith("StateError"), out


def test_out_of_range_indices_and_wrong_masses_are_rejected():
    out = isolated_outcome(
        """
f = trained(dimensions=3)
st = fs.parse(f.to_bytes())
t = st.trees[0]
seen = set()
# Every u16 field of every node (left, right, dim, mass) set to values out of range or off by one.
for i in range(t.nodes.count):
    for k, off in enumerate((4, 6, 8, 10)):
        at = t.nodes.start + 12 * i + off
        (v,) = struct.unpack_from("<H", st.payload, at)
        for new in (v + 1, v - 1, 0x7FFF, 0x8000 | 0x7FF0, 0xFFFE):
            if new == v or not 0 <= new <= 0xFFFF:
                continue
            p = bytearray(st.payload)
            struct.pack_into("<H", p, at, new)
            r = load(p)
            seen.add(r.split(":")[0])
# Leaf point ids and masses.
for i in range(t.leaf.count):
    at = t.leaf.start + 4 * i
    (v,) = struct.unpack_from("<I", st.payload, at)
    for new in (v ^ 1, v + (1 << 24), v | 0xFFFFFF, v & 0xFFFFFF):
        p = bytearray(st.payload)
        struct.pack_into("<I", p, at, new & 0xFFFFFFFF)
        seen.add(load(p).split(":")[0])
print(sorted(seen))
"""
    )
    # Some changes leave a valid forest (a cut dimension that still separates, say); none may
    # give anything but a forest or StateError.
    assert set(eval(out)) <= {"ok", "StateError"}, out
    assert "StateError" in out


def test_structural_check_does_not_allocate_by_declared_size():
    # A 65535-dimension forest whose tree claims 32766 internal nodes over 32767 leaves of one
    # point: ~590 KB with a valid checksum. The check used to allocate two 17 GB box arrays.
    out = isolated_outcome(
        """
D = 65535
f = RandomCutForest(dimensions=D, num_trees=1, sample_size=32766, seed=1)
f.update(np.zeros(D))
st = fs.parse(f.to_bytes())
t = st.trees[0]
p = st.payload
n_nodes = 32766
nodes = bytearray()
for i in range(n_nodes):
    left = 0x8000 | i
    right = i + 1 if i + 1 < n_nodes else 0x8000 | n_nodes
    nodes += struct.pack("<fHHHH", 0.0, left, right, i % D, min(n_nodes + 1 - i, 0xFFFF))
leaves = struct.pack("<I", (1 << 24) | 0) * (n_nodes + 1)
new = (
    p[: t.root_at] + struct.pack("<H", 0)
    + struct.pack("<Q", n_nodes) + nodes
    + struct.pack("<Q", n_nodes) + struct.pack("<H", 0xFFFF) * n_nodes
    + p[t.free_node_at : t.leaf.at]
    + struct.pack("<Q", n_nodes + 1) + leaves
    + p[t.leaf.end :]
)
print(len(new), load(new))
""",
        mem_gb=1.0,
    )
    assert "StateError" in out, out


def test_constructor_memory_grows_with_data_not_capacity():
    # 10,000 trees x 1,677 samples: nothing learned yet, so nothing much to hold.
    out = isolated_outcome(
        """
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096
before = rss()
f = RandomCutForest(num_trees=10_000, sample_size=1677, seed=1)
after = rss()
g = RandomCutForest.from_bytes(f.to_bytes())
loaded = rss()
print(f.memory_usage(), after - before, loaded - after)
""",
        mem_gb=2.0,
    )
    usage, grown, grown_load = (int(v) for v in out.split())
    assert usage < 20 * 2**20, out
    assert grown < 40 * 2**20, out
    assert grown_load < 40 * 2**20, out


def test_checksum_valid_garbage_is_never_more_than_a_state_error():
    # Random bytes sealed with a valid checksum, and every prefix of a real state.
    out = isolated_outcome(
        """
rng = np.random.default_rng(5)
seen = set()
for n in (0, 1, 7, 40, 200, 5000):
    for _ in range(20):
        seen.add(load(rng.integers(0, 256, n, dtype=np.uint8).tobytes()).split(":")[0])
st = fs.parse(trained(dimensions=2, sampler="window").to_bytes())
for n in range(0, len(st.payload), 37):
    seen.add(load(st.payload[:n]).split(":")[0])
print(sorted(seen))
"""
    )
    assert out == "['StateError']", out


def test_state_round_trip_still_exact():
    f = RandomCutForest(dimensions=2, shingle_size=2, num_trees=5, sample_size=32, seed=3)
    x = np.random.default_rng(1).normal(size=(300, 2))
    f.update_many(x)
    g = RandomCutForest.from_bytes(f.to_bytes())
    assert g.to_bytes() == f.to_bytes()
    h = pickle.loads(pickle.dumps(f))
    assert h.score_update_many(x[:50]).tolist() == f.score_update_many(x[:50]).tolist()
    with pytest.raises(StateError):
        RandomCutForest.from_bytes(fs.seal(fs.payload_of(f.to_bytes())[:-1]))
    assert struct.calcsize("<fHHHH") == 12


@pytest.mark.parametrize("bad", [1e37, 1e3, float("inf"), float("nan"), -1e-9])
def test_time_decay_that_could_not_be_saved_is_refused(bad):
    with pytest.raises(ValueError, match="time_decay.*between 0 and 100"):
        RandomCutForest(time_decay=bad)


@pytest.mark.parametrize("td", [0.0, 1e-4, 1.0, 100.0])
def test_every_accepted_time_decay_saves_and_loads(td):
    f = RandomCutForest(num_trees=5, time_decay=td, seed=2)
    x = np.random.default_rng(3).normal(size=(700, 1))
    f.update_many(x)
    g = RandomCutForest.from_bytes(f.to_bytes())
    assert g.score_update_many(x[:100]).tolist() == f.score_update_many(x[:100]).tolist()


# --- Input validation (issue 10 item 9) -------------------------------------------------------


def test_big_endian_arrays_are_accepted():
    f = RandomCutForest(dimensions=2, num_trees=10, seed=1)
    g = RandomCutForest(dimensions=2, num_trees=10, seed=1)
    x = np.random.default_rng(0).normal(size=(300, 2))
    assert f.score_update_many(x.astype(">f8")).tolist() == g.score_update_many(x).tolist()
    assert f.score(x[0].astype(">f8")) == g.score(x[0])
    assert f.score(x[0].astype(">f4")) == g.score(x[0].astype("<f4"))


@pytest.mark.parametrize(
    "kw",
    [
        {"dimensions": 2**63},
        {"dimensions": 10**400},
        {"output_after": 2**64 - 1},
        {"seed": 2**200},
        {"seed": -1},
        {"num_trees": -(2**70)},
        {"threads": 2**64},
        {"time_decay": 10**400},
    ],
)
def test_out_of_range_parameters_are_value_errors_naming_the_range(kw):
    (name,) = kw
    with pytest.raises(ValueError, match=f"`{name}`: .*(between|beyond)") as e:
        RandomCutForest(**kw)
    assert type(e.value) is ValueError


def test_seed_message_names_the_type():
    with pytest.raises(TypeError, match="`seed`: expected an int, got float"):
        RandomCutForest(seed=1.5)
    assert RandomCutForest(seed=np.uint64(2**64 - 1)).seed == 2**64 - 1


@pytest.mark.parametrize("point", [[10**400, 1.0], np.array([10**400, 1], dtype=object)])
def test_huge_python_ints_in_points_are_value_errors(point):
    f = RandomCutForest(dimensions=2, seed=1)
    with pytest.raises(ValueError, match="out of range at row 0, column 0"):
        f.score(point)
    with pytest.raises(ValueError, match="out of range"):
        f.update_many([point])
    with pytest.raises(ValueError, match="out of range"):
        RandomCutForest(seed=1).score(10**400)


@pytest.mark.parametrize("blob", [b"\x01\x02", bytearray(b"\x01\x02"), memoryview(b"\x01\x02")])
def test_bytes_like_points_are_all_refused_alike(blob):
    f = RandomCutForest(dimensions=2, seed=1)
    for call in (f.score, f.update, f.score_many, f.update_many):
        with pytest.raises(TypeError, match=type(blob).__name__):
            call(blob)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_state_loads_from_any_bytes_like(kind):
    f = RandomCutForest(num_trees=5, seed=1)
    f.update_many(np.arange(100.0))
    assert RandomCutForest.from_bytes(kind(f.to_bytes())).to_bytes() == f.to_bytes()
    with pytest.raises(StateError):
        RandomCutForest.from_bytes(kind(b"x" * 30))


def test_pandas_missing_values_give_the_same_error_in_a_frame_and_a_series():
    import pandas as pd

    f2 = RandomCutForest(dimensions=2, seed=1)
    f1 = RandomCutForest(seed=1)
    inputs = [
        (f2, pd.DataFrame({"a": [1.0, pd.NA], "b": [1.0, 2.0]})),
        (f2, pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1.0, 2.0]})),
        (f1, pd.Series([1.0, pd.NA])),
        (f1, pd.Series([1, None], dtype="Int64")),
        (f1, pd.Series([1, None], dtype="Float64")),
    ]
    for forest, data in inputs:
        with pytest.raises(ValueError, match="row 1, column 0"):
            forest.update_many(data)
    assert f1.entries_seen == 0 and f2.entries_seen == 0


# --- Locks never hold the GIL (item 6), one pool per process (item 7), fork (item 8) -------------


def _long_batch_rows(forest: RandomCutForest) -> np.ndarray:
    """Rows enough for a batch of about two seconds on this machine (sized by a short run)."""
    import time

    probe = np.random.default_rng(1).normal(size=(2000, 1))
    t = time.perf_counter()
    RandomCutForest.from_bytes(forest.to_bytes()).update_many(probe)
    per_row = (time.perf_counter() - t) / len(probe)
    n = int(min(max(2.0 / max(per_row, 1e-7), 5_000), 2_000_000))
    return np.random.default_rng(2).normal(size=(n, 1))


@pytest.mark.parametrize(
    "call",
    ["getter", "repr", "copy", "threads_setter", "score_update", "to_bytes"],
)
def test_waiting_for_the_forest_lock_does_not_freeze_other_python_threads(call):
    import copy
    import threading
    import time

    f = RandomCutForest(num_trees=100, seed=1, threads=1)
    f.update_many(np.random.default_rng(0).normal(size=(500, 1)))
    rows = _long_batch_rows(f)
    calls = {
        "getter": lambda: f.entries_seen,
        "repr": lambda: repr(f),
        "copy": lambda: copy.copy(f),
        "threads_setter": lambda: setattr(f, "threads", 1),
        "score_update": lambda: f.score_update(0.5),
        "to_bytes": lambda: f.to_bytes(),
    }
    batch_started = threading.Event()
    batch_done = threading.Event()
    waiter_calling = threading.Event()

    def batch():
        batch_started.set()
        f.score_update_many(rows)
        batch_done.set()

    def waiter():
        batch_started.wait()
        # Let the batch take the lock (it converts its input first); not a timing assertion.
        time.sleep(0.3)
        waiter_calling.set()
        calls[call]()  # waits for the batch to finish

    a = threading.Thread(target=batch)
    b = threading.Thread(target=waiter)
    a.start()
    b.start()
    waiter_calling.wait()
    # A fixed amount of pure-Python work: it must complete while the batch still runs. If the
    # waiter held the GIL while waiting for the lock, this thread could not run until the
    # batch ended (at most one switch interval of progress).
    n = 0
    for _ in range(300_000):
        n += 1
    finished_during_batch = not batch_done.is_set()
    a.join()
    b.join()
    assert n == 300_000
    assert finished_during_batch, f"{call}: this thread made no progress during the batch"


def test_forests_share_one_pool_of_threads():
    out = isolated_outcome(
        """
import os
def threads():
    return len(os.listdir("/proc/self/task"))
cores = len(os.sched_getaffinity(0))
start = threads()
x = np.random.default_rng(0).normal(size=(600, 1))
forests = [RandomCutForest(num_trees=16, sample_size=32, seed=i) for i in range(100)]
for f in forests:
    f.update_many(x)
    for v in x[:20]:
        f.score_update(v)
default = threads() - start
big = [RandomCutForest(num_trees=16, sample_size=32, seed=i, threads=1024) for i in range(10)]
for f in big:
    f.update_many(x)
    f.score_update(0.3)
after_big = threads() - start
print(cores, default, after_big)
""",
        mem_gb=3.0,
    )
    cores, default, after_big = (int(v) for v in out.split())
    # One pool thread per core for batches and at most 3 helpers for one-point calls, shared.
    limit = cores + 3
    assert default <= limit, out
    assert after_big <= limit, out


def test_a_forest_in_use_at_fork_time_raises_in_the_child_instead_of_hanging():
    out = isolated_outcome(
        """
import os, threading, time
busy = RandomCutForest(num_trees=100, seed=1, threads=1)
other = RandomCutForest(num_trees=10, seed=2)
x = np.random.default_rng(0).normal(size=(400_000, 1))
other.update_many(x[:300])
started = threading.Event()
def batch():
    started.set()
    busy.update_many(x)
t = threading.Thread(target=batch)
t.start()
started.wait()
time.sleep(0.05)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    res = [outcome(lambda: busy.score(0.1)), outcome(lambda: busy.entries_seen),
           outcome(lambda: other.score_update(0.2)), outcome(lambda: RandomCutForest(seed=3).update_many(x[:500]))]
    os.write(w, repr(res).encode())
    os._exit(0)
os.close(w)
got = b""
while chunk := os.read(r, 4096):
    got += chunk
os.waitpid(pid, 0)
t.join()
print(got.decode())
""",
        mem_gb=2.0,
    )
    res = ast.literal_eval(out)
    assert res[0].startswith("RuntimeError") and "forked" in res[0], res
    assert res[1].startswith("RuntimeError"), res
    assert res[2] == "ok" and res[3] == "ok", res


@pytest.mark.parametrize("dims,shingle", [(1, 1), (2, 1), (3, 1), (4, 1), (2, 8), (16, 1)])
def test_huge_values_give_finite_scores_or_a_clear_value_error(dims, shingle):
    n = dims * shingle
    limit = float(np.finfo(np.float32).max) / (2 * n)
    f = RandomCutForest(dimensions=dims, shingle_size=shingle, num_trees=20, seed=1)
    rng = np.random.default_rng(0)
    x = rng.uniform(-limit, limit, size=(600, dims))
    s = f.score_update_many(x)
    assert np.isfinite(s).all()
    for q in (x[0], np.full(dims, limit), np.full(dims, -limit)):
        assert np.isfinite(f.score(q))
        a = f.attribution(q)
        assert np.isfinite(a.high).all() and np.isfinite(a.low).all() and np.isfinite(a.total)
    g = RandomCutForest(dimensions=dims, shingle_size=shingle, num_trees=20, seed=1)
    g.update_many(rng.normal(size=(300, dims)))
    assert np.isfinite(g.score(np.full(dims, limit)))
    for bad in (1.7e38, 3e38, limit * 1.01):
        if bad <= limit:
            continue
        with pytest.raises(ValueError, match="out of range"):
            g.score(np.full(dims, bad))
        with pytest.raises(ValueError, match="out of range"):
            g.update_many(np.full((2, dims), bad))
