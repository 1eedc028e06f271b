"""ScoringStep on the Rust engine: one call per batch equals the per-event loop, attribution only
where read (explain), one error per rejected point, and states of the previous release."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import rcf_fast
from rcf_fast.kinesis import ConfigError, KeyedForests, RawRecord, ScoringStep, make_decoder
from rcf_fast.kinesis.forests import EngineForests

from .fakes import mem

FOREST: dict[str, Any] = {"num_trees": 20, "sample_size": 32, "seed": 7, "shingle_size": 2}
SHARD = "shardId-000000000000"


def rows(n: int, keys: int = 5, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(0, keys))
        a = math.sin(i * 0.1 + k) * 10 + rng.normal(0, 0.1)
        b = math.cos(i * 0.07) + rng.normal(0, 0.1)
        if rng.random() < 0.03:
            a += 80
        out.append({"host": f"h{k}", "a": round(a, 4), "b": round(b, 4)})
    return out


def recs(items: list[Any], shard: str = SHARD, start: int = 100) -> list[RawRecord]:
    return [
        RawRecord(shard, str(start + i), r if isinstance(r, bytes) else json.dumps(r).encode())
        for i, r in enumerate(items)
    ]


def step(**kw: Any) -> ScoringStep:
    return ScoringStep(
        make_decoder("json"), FOREST, key_field="host", value_fields=["a", "b"], **kw
    )


def reference(items: list[dict[str, Any]], threshold: float, explain: str) -> list[tuple]:
    """Today's per-event loop: a RandomCutForest per key (the engine's seed), attribution(x)
    then score_update(x)."""
    forests: dict[str, rcf_fast.RandomCutForest] = {}
    out = []
    for r in items:
        key = r["host"]
        if key not in forests:
            seed = rcf_fast.KeyedForests.derive_seed(FOREST["seed"], key)
            forests[key] = rcf_fast.RandomCutForest(dimensions=2, **{**FOREST, "seed": seed})
        x = np.array([r["a"], r["b"]], dtype=np.float64)
        att = forests[key].attribution(x)
        score = forests[key].score_update(x)
        show = explain == "always" or (explain == "anomalies" and score >= threshold)
        a = (
            {
                "a": {"high": float(att.high[0]), "low": float(att.low[0])},
                "b": {"high": float(att.high[1]), "low": float(att.low[1])},
            }
            if show
            else None
        )
        out.append((key, score, a))
    return out


@pytest.mark.parametrize("explain", ["anomalies", "always", "never"])
def test_batches_equal_the_per_event_loop(explain: str) -> None:
    items = rows(600)
    s = step(explain=explain, anomaly_threshold=1.5)
    for i in range(0, len(items), 137):
        s.process(recs(items[i : i + 137], start=100 + i))
    s.flush()
    got = [(r["key"], r["score"], r["attribution"]) for r in mem(s.results).items]
    want = reference(items, 1.5, explain)
    assert got == want
    explained = sum(a is not None for _, _, a in got)
    if explain == "anomalies":
        assert 0 < explained < len(items)
        assert s.stats.anomalies == explained
    else:
        assert explained == (len(items) if explain == "always" else 0)
    assert isinstance(s.forests, EngineForests) and len(s.forests) == 5


def test_rejected_points_cost_one_error_each_and_the_rest_is_scored() -> None:
    items: list[Any] = rows(40)
    items[5] = {"host": "h1", "a": 1e300, "b": 0.0}  # beyond the engine's magnitude limit
    items[9] = b'{"host": "h2", "a": NaN, "b": 1}'
    items[12] = {"host": "h3", "a": "x", "b": 1}
    s = step(explain="always")
    stats = s.process(recs(items))
    s.flush()
    assert (stats.scored, stats.errors) == (37, 3)
    errors = mem(s.errors).items
    assert [e["sequence_number"] for e in errors] == ["105", "109", "112"]
    assert "forest rejected the point" in errors[0]["reason"]
    good = [r for i, r in enumerate(items) if i not in (5, 9, 12)]
    assert [(r["key"], r["score"], r["attribution"]) for r in mem(s.results).items] == reference(
        good, 2.0, "always"
    )


def test_results_come_in_record_order_with_errors_after_their_record() -> None:
    items: list[Any] = rows(30, keys=3)
    items[4] = b"{broken"
    s = step()
    s.process(recs(items))
    s.flush()
    seqs = [r["sequence_number"] for r in mem(s.results).items]
    assert seqs == [str(100 + i) for i in range(30) if i != 4]


def test_unknown_explain_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="explain"):
        step(explain="sometimes")


def old_release_blob(items: list[dict[str, Any]]) -> bytes:
    """A state of the previous release: Python-side forests seeded by BLAKE2b, RCFK v1 blob."""
    old = step(forests=KeyedForests(FOREST))
    old.process(recs(items))
    return old.state_bytes()


def test_state_of_the_previous_release_continues_exactly() -> None:
    items = rows(400)
    blob = old_release_blob(items[:250])
    # The previous release, continuing from its own state.
    old = step(forests=KeyedForests(FOREST))
    old.load_state(blob)
    old.process(recs(items[250:], start=350))
    old.flush()
    # This release, continuing from the same blob.
    new = step()
    new.load_state(blob)
    assert isinstance(new.forests, EngineForests)
    engine = new.forests.engine
    assert engine.seed_overrides() and all(
        seed != rcf_fast.KeyedForests.derive_seed(FOREST["seed"], k)
        for k, seed in engine.seed_overrides()
    )
    # Replayed records of the blob are skipped, the rest scored exactly as the old code does.
    stats = new.process(recs(items[200:], start=300))
    new.flush()
    assert stats.skipped == 50
    got = [(r["key"], r["score"], r["attribution"]) for r in mem(new.results).items]
    want = [(r["key"], r["score"], r["attribution"]) for r in mem(old.results).items]
    assert got == want
    # The state it writes is RCFK v1 again and loads into the old collection as well.
    again = KeyedForests(FOREST)
    again.load_bytes(new.state_bytes())
    assert [(k, f.to_bytes()) for k, f in again] == [(k, f.to_bytes()) for k, f in old.forests]


def test_explain_helper_handles_results_without_attribution() -> None:
    from rcf_fast.kinesis.records import explain

    s = step(explain="never")
    s.process(recs(rows(20)))
    s.flush()
    res = mem(s.results).items[-1]
    assert res["attribution"] is None and explain(res) == []
