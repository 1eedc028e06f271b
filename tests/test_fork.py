"""A forest whose thread pool was started keeps working in a forked child (multiprocessing)."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
from rcf_fast import RandomCutForest


def child(forest_bytes: bytes, queue) -> None:
    same = FOREST.to_bytes() == forest_bytes
    queue.put((FOREST.score_update_many(DATA[1000:1200]).tolist(), same))


DATA = np.sin(np.arange(2000) / 7.0)
FOREST = RandomCutForest(shingle_size=4, seed=1, threads=2)


def test_forked_child_uses_its_own_pool():
    FOREST.update_many(DATA[:1000])  # starts the pool in the parent
    before = FOREST.to_bytes()
    expected = RandomCutForest.from_bytes(before).score_update_many(DATA[1000:1200]).tolist()
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(before, queue))
    proc.start()
    scores, same_state = queue.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert same_state
    assert scores == expected
    assert FOREST.to_bytes() == before  # the parent's forest is untouched by the child


def child_points(queue) -> None:
    # One-point calls hand trees to the helper threads; the parent's do not exist here.
    queue.put([POINTS.score_update(v) for v in DATA[1000:1100]])


POINTS = RandomCutForest(shingle_size=4, seed=2, threads=2)


def test_forked_child_one_point_calls_start_their_own_helpers():
    for v in DATA[:1000]:
        POINTS.score_update(v)  # starts the helpers in the parent
    expected = RandomCutForest.from_bytes(POINTS.to_bytes())
    want = [expected.score_update(v) for v in DATA[1000:1100]]
    ctx = mp.get_context("fork")
    for _ in range(2):  # a second child: the handler stays registered
        queue = ctx.Queue()
        proc = ctx.Process(target=child_points, args=(queue,))
        proc.start()
        scores = queue.get(timeout=60)
        proc.join(timeout=60)
        assert proc.exitcode == 0
        assert scores == want
    assert [POINTS.score_update(v) for v in DATA[1000:1100]] == want  # the parent still works
