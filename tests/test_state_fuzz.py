"""Structure-aware fuzzing of RandomCutForest.from_bytes: a real state is parsed
(tests/forest_state.py), fields are changed the way a damaged or hostile file would change them
(single values set to edge cases, counts changed, sections cut or repeated, bytes flipped), the
checksum is recomputed as serialize.rs computes it, and the bytes are loaded. The only allowed
outcomes are a forest (which must then work and save) or StateError/ValueError. Every example
runs in one subprocess under a memory cap and a time limit, so a crash, an abort or a runaway
allocation is a failure, not a killed test runner. Bounded: hypothesis' example count is set
below (the CI profile keeps it small)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isolated import expect_ok

# The worker: reads mutations as JSON lines on stdin, applies each to the base state, loads it,
# and prints one outcome per line. One process for a whole batch keeps the test fast.
WORKER = r"""
import json, struct, sys
import numpy as np
import forest_state as fs
from rcf_fast import RandomCutForest, StateError

def base(kind):
    kw = dict(num_trees=3, sample_size=16, seed=1)
    if kind == 1:
        kw.update(dimensions=3, shingle_size=2, sampler="window")
    if kind == 2:
        kw.update(dimensions=2, scoring="codisp", time_decay=0.5)
    f = RandomCutForest(**kw)
    f.update_many(np.random.default_rng(kind).normal(size=(60, f.dimensions)))
    return f.to_bytes()

BASES = [base(k) for k in range(3)]
STATES = [fs.parse(b) for b in BASES]

def fields(s):
    out = []  # (offset, struct format) of every scalar worth changing
    for k, v in s.config.items():
        if k.endswith("_at"):
            out.append((v, "Q" if k[:-3] in ("dimensions", "shingle_size", "num_trees", "sample_size") else "B"))
    out.append((s.store_dim_at, "Q"))
    for seq in (s.data, s.refs, s.free, s.shingle_recent):
        out.append((seq.at, "Q"))
        out += [(seq.start + i * seq.size, seq.fmt[0]) for i in range(min(seq.count, 40))]
    for t in s.trees:
        out += [(t.dim_at, "Q"), (t.root_at, "H"), (t.free_node_at, "H"), (t.free_leaf_at, "H")]
        for seq in (t.nodes, t.node_box, t.leaf, t.big_mass, t.boxes, t.free_box,
                    t.weights, t.leaves, t.fifo):
            if seq is None:
                continue
            out.append((seq.at, "Q"))
            for i in range(min(seq.count, 40)):
                at = seq.start + i * seq.size
                off = 0
                for c in seq.fmt:
                    out.append((at + off, c))
                    off += struct.calcsize("<" + c)
        if t.next_at is not None:
            out += [(t.next_at, "Q"), (t.epoch_at, "Q")]
        out += [(t.rng_at + 8 * i, "Q") for i in range(4)]
    out += [(s.entries_seen_at, "Q"), (s.points_seen_at, "Q")]
    return out

FIELDS = [fields(s) for s in STATES]
EDGE = {
    "f": [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 3.4e38, -3.4e38, 1e-45],
    "H": [0, 1, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF],
    "I": [0, 1, 0xFFFFFF, 0x1000000, 0xFF000000, 0xFFFFFFFF],
    "Q": [0, 1, 2, 255, 2**16, 2**24, 2**32 - 1, 2**63, 2**64 - 1],
    "B": [0, 1, 2, 255],
}

def mutate(m):
    k = m["base"] % 3
    p = bytearray(STATES[k].payload)
    fl = FIELDS[k]
    for op in m["ops"]:
        kind, a, b = op
        if kind == "set" and fl:
            at, fmt = fl[a % len(fl)]
            if at + struct.calcsize("<" + fmt) > len(p):  # cut off by an earlier op
                continue
            vals = EDGE[fmt]
            v = vals[b % len(vals)]
            if fmt in "HIQB":
                v = v if b < len(vals) * 4 else (struct.unpack_from("<" + fmt, p, at)[0] + (b % 5) - 2) % (1 << (8 * struct.calcsize(fmt)))
            struct.pack_into("<" + fmt, p, at, v)
        elif kind == "flip" and p:
            p[a % len(p)] ^= 1 << (b % 8)
        elif kind == "cut" and p:
            i = a % len(p)
            del p[i : i + (b % 64) + 1]
        elif kind == "dup" and p:
            i = a % len(p)
            p[i:i] = p[i : i + (b % 64) + 1]
    return bytes(p)

for line in sys.stdin:
    m = json.loads(line)
    blob = fs.seal(mutate(m))
    try:
        f = RandomCutForest.from_bytes(blob)
        # A forest that loads must work and save.
        x = np.zeros((3, f.dimensions))
        f.score_update_many(x)
        f.attribution(x[0])
        RandomCutForest.from_bytes(f.to_bytes())
        r = "ok"
    except (StateError, ValueError) as e:
        r = type(e).__name__
    except BaseException as e:
        r = "BAD " + type(e).__name__ + ": " + str(e)[:200]
    print(r, flush=True)
"""

op = st.tuples(
    st.sampled_from(["set", "set", "set", "flip", "cut", "dup"]),
    st.integers(0, 2**20),
    st.integers(0, 2**10),
)
mutation = st.fixed_dictionaries(
    {"base": st.integers(0, 2), "ops": st.lists(op, min_size=1, max_size=4)}
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=20, max_size=40))
def test_mutated_states_with_valid_checksums_load_or_raise_state_error(batch):
    # The worker reads its batch from a file (stdin is not wired through isolated.run).
    import os
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
        for m in batch:
            fh.write(json.dumps(m) + "\n")
        path = fh.name
    try:
        code = f"import sys\nsys.stdin = open({path!r})\n" + WORKER
        out = expect_ok(code, mem_gb=1.5, timeout=120).split("\n")
    finally:
        os.unlink(path)
    outcomes = [o for o in out if o]
    assert len(outcomes) == len(batch)
    bad = [(m, o) for m, o in zip(batch, outcomes) if o.startswith("BAD")]
    assert not bad, bad[:3]
