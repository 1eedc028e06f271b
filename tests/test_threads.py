"""Concurrent use from Python threads: no crash, no lost update, results as if serialised."""

from __future__ import annotations

import threading

import numpy as np
from rcf_fast import RandomCutForest


def test_concurrent_updates_and_scores_lose_nothing():
    f = RandomCutForest(dimensions=2, seed=1, num_trees=30)
    rng = np.random.default_rng(0)
    chunks = [rng.normal(size=(200, 2)) for _ in range(8)]
    errors = []

    def writer(X):
        try:
            for i in range(0, len(X), 50):
                f.score_update_many(X[i : i + 50])
            for row in X[:20]:
                f.update(row)
        except Exception as e:  # noqa: BLE001 - any failure is collected and asserted below
            errors.append(e)

    def reader():
        try:
            for _ in range(200):
                s = f.score([0.1, 0.2])
                assert s >= 0.0
                f.attribution([5.0, 0.0])
                f.to_bytes()
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(c,)) for c in chunks]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert f.entries_seen == 8 * 220
    g = RandomCutForest.from_bytes(f.to_bytes())
    assert g.entries_seen == f.entries_seen


def test_many_forests_in_parallel_threads_match_serial_results():
    rng = np.random.default_rng(5)
    data = [rng.normal(size=(500, 3)) for _ in range(6)]
    serial = [
        RandomCutForest(dimensions=3, seed=i).score_update_many(d) for i, d in enumerate(data)
    ]
    results = [None] * 6

    def run(i):
        f = RandomCutForest(dimensions=3, seed=i)
        results[i] = np.array([f.score_update(r) for r in data[i]])

    ts = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for a, b in zip(results, serial):
        np.testing.assert_array_equal(a, b)
