"""Alert grades in the scoring step: one rcf_fast.Thresholder per key, fed that key's scores in
order, saved with the key's forest (per-key records, the whole-state blob, eviction), and the
explanation of every alert."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np
import pytest
import rcf_fast
from rcf_fast.kinesis import ConfigError, RawRecord, ScoringStep, StateError, make_decoder
from rcf_fast.kinesis.keystate import KeyedStateStore, decode_record, encode_record
from rcf_fast.kinesis.stores.records import MemoryRecords

from .fakes import mem

FOREST: dict[str, Any] = {"num_trees": 20, "sample_size": 32, "seed": 7, "shingle_size": 2}
SHARD = "shardId-000000000000"
GRADING = {"warmup": 20, "alert_spacing": 30}


def rows(n: int, keys: int = 4, seed: int = 5) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, keys))
        a = math.sin(i * 0.1 + k) * 10 + rng.normal(0, 0.1)
        b = math.cos(i * 0.07) + rng.normal(0, 0.1)
        if i > 200 and rng.random() < 0.01:
            a += 60
        out.append({"host": f"h{k}", "a": round(a, 4), "b": round(b, 4)})
    return out


def recs(items: list[dict[str, Any]], start: int = 100) -> list[RawRecord]:
    return [RawRecord(SHARD, str(start + i), json.dumps(r).encode()) for i, r in enumerate(items)]


def step(**kw: Any) -> ScoringStep:
    return ScoringStep(
        make_decoder("json"), FOREST, key_field="host", value_fields=["a", "b"], **kw
    )


def run(s: ScoringStep, items: list[dict[str, Any]], start: int = 100, batch: int = 97) -> None:
    for i in range(0, len(items), batch):
        s.process(recs(items[i : i + batch], start=start + i))
    s.flush()


def graded(s: ScoringStep) -> list[tuple[str, float, float, bool, Any]]:
    return [
        (r["key"], r["score"], r["grade"], r["is_anomaly"], r["attribution"])
        for r in mem(s.results).items
    ]


def alerts_only(out: list[tuple[str, float, float, bool, Any]]) -> list[tuple]:
    """Which non-alert rows near a threshold are explained depends on how rows were batched;
    every other field, and the alerts' explanations, do not."""
    return [(k, s, g, a, att if a else None) for k, s, g, a, att in out]


def test_grades_are_each_keys_thresholder_over_its_scores() -> None:
    items = rows(900)
    s = step(grading=GRADING)
    run(s, items)
    got = graded(s)
    assert len(got) == len(items)
    by_key: dict[str, list[int]] = {}
    for i, (key, *_rest) in enumerate(got):
        by_key.setdefault(key, []).append(i)
    alerts = 0
    for key, idx in by_key.items():
        want = rcf_fast.Thresholder(**GRADING).process_many(np.array([got[i][1] for i in idx]))
        assert [got[i][2] for i in idx] == want["grade"].tolist()
        assert [got[i][3] for i in idx] == want["is_anomaly"].tolist()
        alerts += int(want["is_anomaly"].sum())
    assert 0 < alerts < len(items) // 10
    assert s.stats.anomalies == alerts
    floor = rcf_fast.Thresholder(**GRADING).score_floor
    explained = sum(a is not None for *_rest, a in got)
    for _key, score, _grade, alert, attribution in got:
        # Every alert is explained; nothing below the floor is.
        if alert:
            assert attribution is not None and score >= floor
        if score < floor:
            assert attribution is None
    # Only rows that could be alerts are explained: far fewer than those above the floor.
    assert alerts <= explained < sum(score >= floor for _k, score, *_r in got)


def test_explanations_equal_the_forest_before_the_row() -> None:
    items = rows(700)
    s = step(grading=GRADING)
    run(s, items)
    forests: dict[str, rcf_fast.RandomCutForest] = {}
    for r, out in zip(items, mem(s.results).items):
        key = r["host"]
        if key not in forests:
            seed = rcf_fast.KeyedForests.derive_seed(FOREST["seed"], key)
            forests[key] = rcf_fast.RandomCutForest(dimensions=2, **{**FOREST, "seed": seed})
        x = np.array([r["a"], r["b"]])
        att = forests[key].attribution(x)
        assert forests[key].score_update(x) == out["score"]
        if out["attribution"] is not None:
            assert out["attribution"]["a"] == {"high": att.high[0], "low": att.low[0]}
            assert out["attribution"]["b"] == {"high": att.high[1], "low": att.low[1]}


def test_without_grading_results_have_no_grade_and_anomalies_are_scores() -> None:
    items = rows(300)
    s = step(grading=False, anomaly_threshold=1.5)
    run(s, items)
    out = mem(s.results).items
    assert all("grade" not in r for r in out)
    assert [r["is_anomaly"] for r in out] == [r["score"] >= 1.5 for r in out]
    assert s.stats.anomalies == sum(r["score"] >= 1.5 for r in out)


def test_bad_grading_parameters_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="grading"):
        step(grading={"z_factor": -1.0})
    with pytest.raises(ConfigError, match="grading"):
        step(grading={"no_such_parameter": 1})
    with pytest.raises(ConfigError, match="grading"):
        step(grading="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("max_keys", [None, 2])
def test_graders_continue_exactly_across_per_key_state_and_eviction(max_keys: int | None) -> None:
    items = rows(900)
    clean = step(grading=GRADING)
    run(clean, items)
    want = graded(clean)

    records = MemoryRecords()
    first = step(grading=GRADING)
    first.attach_state(KeyedStateStore(records, max_keys=max_keys))
    run(first, items[:450])
    first.save_state()
    second = step(grading=GRADING)  # a new process on the same records
    second.attach_state(KeyedStateStore(records, max_keys=max_keys))
    run(second, items[450:], start=100 + 450)
    assert alerts_only(graded(first) + graded(second)) == alerts_only(want)
    # The grader is in each key's record, next to its forest.
    name = next(n for n in records.names("key/"))
    header, _ = decode_record(records.get(name), name)  # type: ignore[arg-type]
    restored = rcf_fast.Thresholder.from_bytes(base64.b64decode(header["grader"]))
    assert restored.scores_seen > 0


def test_graders_continue_exactly_through_the_whole_state_blob() -> None:
    items = rows(600)
    clean = step(grading=GRADING)
    run(clean, items)
    first = step(grading=GRADING)
    run(first, items[:300])
    blob = first.state_bytes()
    second = step(grading=GRADING)
    second.load_state(blob)
    run(second, items[300:], start=400)
    assert alerts_only(graded(first) + graded(second)) == alerts_only(graded(clean))


def test_a_damaged_saved_grader_is_a_state_error() -> None:
    records = MemoryRecords()
    first = step(grading=GRADING)
    first.attach_state(KeyedStateStore(records))
    run(first, rows(200))
    first.save_state()
    name = next(n for n in records.names("key/"))
    header, payload = decode_record(records.get(name), name)  # type: ignore[arg-type]
    for bad in ("not base64!", base64.b64encode(b"RCFTHRS\0garbage").decode(), 17):
        records.put(name, encode_record({**header, "grader": bad}, payload))
        again = step(grading=GRADING)
        again.attach_state(KeyedStateStore(records))
        with pytest.raises(StateError):
            run(again, [{"host": header["key"], "a": 1.0, "b": 1.0}], start=10_000)


@pytest.mark.parametrize("seed", range(4))
def test_can_alert_within_never_misses_an_alert(seed: int) -> None:
    """False from ``Thresholder.can_alert_within(m)`` means none of the next m scores alerts."""
    rng = np.random.default_rng(seed)
    scores = np.abs(rng.normal(1.0, 0.3, 3000))
    scores[rng.integers(0, 3000, 60)] += 4.0
    scores[rng.random(3000) < 0.01] = 0.0  # forest not ready: neither graded nor learned
    t = rcf_fast.Thresholder(warmup=50, alert_spacing=40, episode_gap=10)
    said_quiet = 0
    for i in range(len(scores)):
        m = int(rng.integers(1, 30))
        quiet = not t.can_alert_within(m)
        probe = rcf_fast.Thresholder.from_bytes(t.to_bytes())
        alerts = probe.process_many(scores[i : i + m])["is_anomaly"]
        if quiet:
            said_quiet += 1
            assert not alerts.any(), (i, m)
        t.process(float(scores[i]))
    assert said_quiet > 100
