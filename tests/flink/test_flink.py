"""rcf_fast.flink.RandomCutForestFunction: unit tests of its row handling, then jobs on a local
PyFlink MiniCluster (equality with KeyedForests' per-key seeding, side outputs, failover)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
import rcf_fast
from pyflink.common import Row
from rcf_fast.flink import RandomCutForestFunction, _frame, _unframe, fnv1a64, key_seed

from .flinkenv import reference_grades, reference_scores

PARAMS: dict[str, Any] = {"shingle_size": 4, "num_trees": 20, "sample_size": 64}
SEED = 7


# ---------------------------------------------------------------- no cluster: seeds and row checks


def test_fnv_and_key_seed_match_the_documented_derivation() -> None:
    # Published FNV-1a test vectors, then SplitMix64 by hand for one key.
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    mask = (1 << 64) - 1
    z = ((7 ^ fnv1a64(b"host-1")) + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    assert key_seed(7, "host-1") == z ^ (z >> 31)
    assert key_seed(7, "host-1") != key_seed(7, "host-2") != key_seed(8, "host-2")
    assert key_seed(7, "é") == key_seed(7, "é")


@pytest.mark.parametrize("seed", [-1, 1 << 64, 1.5, "7", True])
def test_key_seed_rejects_bad_seeds(seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be an integer"):
        key_seed(seed, "k")  # type: ignore[arg-type]


def test_keyed_forests_seeds_keys_like_key_seed() -> None:
    for seed, key in [(SEED, "k"), (0, ""), ((1 << 64) - 1, "host-\u00e9"), (12345, "x" * 300)]:
        assert rcf_fast.KeyedForests.derive_seed(seed, key) == key_seed(seed, key)
    keyed = rcf_fast.KeyedForests(1, seed=SEED, **PARAMS)
    ref = rcf_fast.RandomCutForest(1, seed=key_seed(SEED, "k"), threads=1, **PARAMS)
    fn = RandomCutForestFunction(1, seed=SEED, **PARAMS)
    fn._state = _State()
    scores = []
    for i in range(60):
        x = [float(i % 5)]
        (row,) = _run(fn, "k", ("k", x))
        assert keyed.score_update("k", x) == ref.score_update(x) == row[1]
        scores.append(row[1])
    # The same forest, byte for byte (threads is a runtime setting saved with the state).
    theirs = keyed.forest("k")
    theirs.threads = 1
    forest, grader = fn._state.stored
    assert theirs.to_bytes() == forest.to_bytes()
    # The key's thresholder is kept with it and has learned every score but the not-ready 0s.
    assert 0 < grader.scores_seen == sum(1 for x in scores if x > 0) < 60


def test_score_then_update_equals_score_update() -> None:
    # The function scores, grades, explains an alert, then learns the row (two calls instead of
    # score_update): the same scores and the same forest, byte for byte.
    a = rcf_fast.RandomCutForest(1, seed=3, threads=1, **PARAMS)
    b = rcf_fast.RandomCutForest(1, seed=3, threads=1, **PARAMS)
    for i in range(400):
        x = [(25.0 if i in (150, 300) else 0.0) + float(i % 7)]
        s = b.score(x)
        b.update(x)
        assert a.score_update(x) == s, i
    assert a.entries_seen == b.entries_seen == 400
    assert a.to_bytes() == b.to_bytes()


def test_constructor_rejects_bad_parameters_on_the_client() -> None:
    with pytest.raises(TypeError, match="unknown RandomCutForestFunction parameter"):
        RandomCutForestFunction(1, trees=3)
    with pytest.raises(ValueError, match="state must be one of"):
        RandomCutForestFunction(1, state="disk")
    with pytest.raises(ValueError):
        RandomCutForestFunction(0)
    with pytest.raises(TypeError, match="anomaly_threshold"):
        RandomCutForestFunction(1, anomaly_threshold="high")  # type: ignore[arg-type]
    # Alert grading parameters are Thresholder's, checked the same way.
    with pytest.raises(TypeError, match="grading parameters"):
        RandomCutForestFunction(1, grading={"zfactor": 3.0})
    for bad in ({"z_factor": -1.0}, {"warmup": -5}, {"score_floor": float("nan")}):
        with pytest.raises(ValueError, match="grading parameters"):
            RandomCutForestFunction(1, grading=bad)
    with pytest.raises(TypeError, match="grading parameters"):
        RandomCutForestFunction(1, grading={"horizon": "long"})
    for bad_grading in ("yes", 1, None, [("warmup", 3)]):
        with pytest.raises(TypeError, match="grading must be True, False or a dict"):
            RandomCutForestFunction(1, grading=bad_grading)  # type: ignore[arg-type]
    # No seed: one is drawn once, on the client, so every worker and restore shares it.
    fn = RandomCutForestFunction(1)
    assert 0 <= fn.seed < 1 << 64
    assert cloudpickle.loads(cloudpickle.dumps(fn)).seed == fn.seed


class _State:
    def __init__(self) -> None:
        self.stored: Any = None

    def value(self) -> Any:
        return self.stored

    def update(self, v: Any) -> None:
        self.stored = v


class _Ctx:
    def __init__(self, key: object, ts: int | None = None) -> None:
        self.key = key
        self.ts = ts

    def get_current_key(self) -> object:
        return self.key

    def timestamp(self) -> int | None:
        return self.ts


def _run(fn: RandomCutForestFunction, key: object, row: object, ts: int | None = None) -> list:
    return list(fn.process_element(row, _Ctx(key, ts)))


HOSTILE = [
    ("k", "1.0"),
    ("k", None),
    ("k", [1.0, 2.0]),
    ("k", []),
    ("k", [float("nan")]),
    ("k", [float("inf")]),
    ("k", ["1.0"]),
    ("k", [[1.0]]),
    ("k", [True]),
    ("k", [1.0], "noon"),
    ("k", [1.0], 1.5),
    ("k",),
    ("k", [1.0], 3, 4),
    42,
    None,
    b"k\x00\xff",
    ("k", [1.0] * 100_000),
    {"k": 1, "v": 2},
    {0: "k", 1: [1.0]},
    ("k", {0: 1.0}),
    ("k", (x for x in [1.0])),
    ("k", [None]),
    ("k", [1e400]),
    ("k", [1.0], "1"),
    Row("k", [float("-inf")]),
]


@pytest.mark.parametrize("mode", ["object", "bytes"])
def test_bad_rows_go_to_the_side_output_and_learn_nothing(mode: str) -> None:
    fn = RandomCutForestFunction(1, seed=SEED, state=mode, **PARAMS)
    fn._state = _State()
    for row in HOSTILE:
        out = _run(fn, "k", row)
        assert len(out) == 1, row
        tag, bad = out[0]
        assert tag is RandomCutForestFunction.BAD_ROWS
        assert bad[0] == "k" and len(bad[1]) <= 203 and bad[2], row
    assert fn._state.stored is None  # nothing learned, no forest created
    # A good row after all that is the key's first (score 0, not ready: graded 0).
    (row,) = _run(fn, "k", ("k", [1.0]))
    assert row == Row("k", 0.0, 1, None, 0.0, False)


@pytest.mark.parametrize("mode", ["object", "bytes"])
@pytest.mark.parametrize("grading", [{"warmup": 30}, False])
def test_process_element_equals_the_reference_and_emits_anomalies(
    mode: str, grading: dict[str, Any] | bool
) -> None:
    fn = RandomCutForestFunction(
        1, seed=SEED, state=mode, anomaly_threshold=1.5, grading=grading, **PARAMS
    )
    states = {"a": _State(), "b": _State()}
    rows = [("a" if i % 3 else "b", [float(i % 5) if i != 250 else 40.0]) for i in range(300)]
    expected = reference_scores(rows, 1, SEED, **PARAMS)
    # A copy of each key's forest before it learns the row: what an alert must be explained by.
    shadow = {
        k: rcf_fast.RandomCutForest(1, seed=key_seed(SEED, k), threads=1, **PARAMS) for k in states
    }
    got: dict[str, list[float]] = {}
    flags: dict[str, list[tuple[float | None, bool]]] = {}
    anomalies = []
    for i, row in enumerate(rows):
        fn._state = states[row[0]]
        attribution = shadow[row[0]].attribution(row[1])
        shadow[row[0]].update(row[1])
        for out in _run(fn, row[0], row, ts=1000 + i):
            if isinstance(out, tuple) and out[0] is RandomCutForestFunction.ANOMALIES:
                # Row(key, score, count, event_time, values, grade, Row(high, low))
                a = out[1]
                anomalies.append(a)
                assert a[6] == Row(list(attribution.high), list(attribution.low))
                assert (a[5], True) == flags[a[0]][-1] and a[1] == got[a[0]][-1]
            else:
                # Row(key, score, count, event_time, grade, is_anomaly)
                assert out[1] >= 0.0 and out[3] == 1000 + i
                assert out[2] == len(got.get(row[0], [])) + 1
                got.setdefault(out[0], []).append(out[1])
                flags.setdefault(out[0], []).append((out[4], out[5]))
    assert got == expected
    if grading is False:
        # Today's behaviour: no grade, an anomaly is a score at or above anomaly_threshold.
        assert flags == {k: [(None, s >= 1.5) for s in v] for k, v in expected.items()}
        assert all(a[1] >= 1.5 and a[5] is None for a in anomalies)
    else:
        assert isinstance(grading, dict)
        assert flags == reference_grades(expected, **grading)
        assert all(a[5] > 0 for a in anomalies)
    assert sum(f[1] for v in flags.values() for f in v) == len(anomalies)
    spike = [a for a in anomalies if a[4] == [40.0]]
    assert spike and spike[0][6][0][0] > spike[0][6][1][0]  # explained as high
    stored = states["a"].stored
    forest, grader = stored if mode == "object" else _unframe(stored)
    assert forest.entries_seen == 200
    assert (grader is None) == (grading is False)
    if grader is not None:
        assert grader.scores_seen > 0


def test_state_frames_round_trip_and_old_states_load() -> None:
    fn = RandomCutForestFunction(1, seed=SEED, grading={"warmup": 5}, **PARAMS)
    forest = fn.new_forest("k")
    grader = fn.new_grader()
    assert grader is not None
    for i in range(50):
        grader.process(forest.score_update([float(i % 4)]))
    framed = _frame(forest, grader)
    f2, g2 = _unframe(framed)
    assert g2 is not None
    assert f2.to_bytes() == forest.to_bytes() and g2.to_bytes() == grader.to_bytes()
    assert _unframe(_frame(forest, None))[1] is None
    # Bare forest bytes / a bare forest object (state written before grading) load with a
    # fresh thresholder, then continue the forest.
    for mode, old in (("bytes", forest.to_bytes()), ("object", forest)):
        f = RandomCutForestFunction(1, seed=SEED, state=mode, **PARAMS)
        f._state = _State()
        f._state.stored = old
        (row,) = _run(f, "k", ("k", [2.0]))
        assert row[2] == 51 and row[4] == 0.0
        held = f._state.stored if mode == "object" else _unframe(f._state.stored)
        assert held[1] is not None and held[1].scores_seen == 1
    # Damaged frames fail with a message, not a crash.
    for bad in (framed[:10], framed[:-3], framed[:40], framed[:20] + b"\x00" * 10):
        with pytest.raises((ValueError, rcf_fast.StateError)):
            _unframe(bad)


def test_non_string_keys_are_seeded_by_their_str() -> None:
    fn = RandomCutForestFunction(1, seed=SEED, **PARAMS)
    fn._state = _State()
    ref = rcf_fast.RandomCutForest(1, seed=key_seed(SEED, "12"), threads=1, **PARAMS)
    for i in range(40):
        (row,) = _run(fn, 12, (12, [float(i % 4)]))
        assert row[0] == "12" and row[1] == ref.score_update([float(i % 4)])


# ---------------------------------------------------------------- MiniCluster jobs (tests/flink/jobs.py)

JOBS = Path(__file__).resolve().parent / "jobs.py"
sys.path.insert(0, str(JOBS.parent))
import jobs


def _run_job(name: str, tmp_path: Path) -> list[list[Any]]:
    """Runs a job of jobs.py in a child process (its JVM ends with it) and returns its output."""
    out = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, str(JOBS), name, str(out), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def test_minicluster_scores_equal_keyed_forests_in_both_state_modes(tmp_path: Path) -> None:
    result = _run_job("equality", tmp_path)
    rows = jobs.equality_rows()
    expected = reference_scores(rows, 1, jobs.SEED, **jobs.PARAMS)
    expected_grades = reference_grades(expected, **jobs.GRADING)
    spike_key = rows[-20][0]
    spike_count = sum(1 for k, _ in rows[:-19] if k == spike_key)
    for mode in ("object", "bytes"):
        got: dict[str, list[float]] = {}
        grades: dict[str, list[tuple[float, bool]]] = {}
        for kind, key, score, count, _, grade, alert, _ in result:
            if kind == mode:
                got.setdefault(key, []).append(score)
                grades.setdefault(key, []).append((grade, alert))
                assert count == len(got[key])  # in order per key, none lost or repeated
        assert got == expected, mode
        # Each key's grades are those of its own Thresholder fed its scores in order.
        assert grades == expected_grades, mode
        reasons = sorted(r[4] for r in result if r[0] == mode + "-bad")
        assert reasons == ["values must be finite, got nan", "values must have 1 entries, got 2"]
        # The side output holds exactly the alerts, explained (high, low for the 1 dimension).
        anomalies = {(r[1], r[3]): r for r in result if r[0] == mode + "-anomaly"}
        alerts = {
            (k, i + 1): g for k, v in expected_grades.items() for i, (g, a) in enumerate(v) if a
        }
        assert set(anomalies) == set(alerts) and (spike_key, spike_count) in anomalies
        assert all(anomalies[a][5] == alerts[a] > 0 for a in alerts)
        high, low = anomalies[(spike_key, spike_count)][7]
        assert high > low >= 0.0  # the spike is explained as a high value


def test_minicluster_failover_restores_without_losing_or_relearning_a_row(
    tmp_path: Path,
) -> None:
    result = _run_job("failover", tmp_path)
    logs = tmp_path / "logs"
    failed_at = int((logs / "failed").read_text())
    assert failed_at >= jobs.FAIL_AT
    seen = (logs / "seen").read_text().split("\n")
    after = [int(s.split()[1]) for s in seen if s.startswith("after")]
    # The restarted job resumed from a checkpoint taken before the failure (not from row 0),
    # so rows between that checkpoint and the failure were processed twice by the source side.
    assert after and 0 < min(after) < failed_at
    assert max(after) == jobs.FAILOVER_ROWS - 1

    rows = [jobs.failover_row(i) for i in range(jobs.FAILOVER_ROWS)]
    expected = reference_scores(rows, 1, jobs.SEED, **jobs.PARAMS)
    expected_grades = reference_grades(expected)
    got: dict[str, list[float]] = {}
    grades: dict[str, list[tuple[float, bool]]] = {}
    for kind, key, score, count, grade, alert in result:
        if kind != "main":
            continue
        got.setdefault(key, []).append(score)
        grades.setdefault(key, []).append((grade, alert))
        assert count == len(got[key]), (key, count)  # no row lost, none learned twice
    assert got == expected
    # The thresholders were restored with the forests: grades continue exactly, and the spikes
    # after the failure are alerts (a thresholder restarted afresh would still be warming up).
    assert grades == expected_grades
    assert sum(a for v in grades.values() for _, a in v) == len(jobs.FAILOVER_SPIKES)
    # Each alert reached the ANOMALIES side output once (not replayed), explained as high.
    side = sorted((r[1], r[3], r[4], r[5]) for r in result if r[0] == "anomaly")
    alerts = sorted(
        (k, i + 1, g, True) for k, v in expected_grades.items() for i, (g, a) in enumerate(v) if a
    )
    assert side == alerts


def test_a_small_cache_reloads_from_state_and_scores_the_same() -> None:
    # cache_size=1 with three keys interleaved: every row of a key reloads its forest from the
    # (fake) state; scores must equal the uncached function's and the reference.
    rows = [(f"k{i % 3}", [float((i * 5) % 11)]) for i in range(240)]
    expected = reference_scores(rows, 1, SEED, **PARAMS)
    for cache in (0, 1, 2, 128):
        fn = RandomCutForestFunction(1, seed=SEED, cache_size=cache, **PARAMS)
        states = {k: _State() for k in ("k0", "k1", "k2")}
        got: dict[str, list[float]] = {}
        for key, values in rows:
            fn._state = states[key]
            (out,) = _run(fn, key, (key, values))
            got.setdefault(key, []).append(out[1])
        assert got == expected, cache
        assert len(fn._cache) == min(cache, 3)
    with pytest.raises(ValueError, match="cache_size"):
        RandomCutForestFunction(1, cache_size=-1)
