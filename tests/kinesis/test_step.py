"""The scoring step: counts, idempotency, keys, schema discovery, attribution, state blobs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rcf_fast.kinesis import (
    ConfigError,
    KeyedForests,
    RawRecord,
    ScoringStep,
    StateError,
    derive_seed,
    make_decoder,
    parse_fields,
)

from .fakes import RecordingForest, mem


def forests(**params: Any) -> KeyedForests:
    return KeyedForests(
        {"seed": 3, **params}, factory=RecordingForest, loader=RecordingForest.from_bytes
    )


def recs(rows: list[Any], shard: str = "shardId-000000000000", start: int = 100) -> list[RawRecord]:
    out = []
    for i, row in enumerate(rows):
        data = row if isinstance(row, bytes) else json.dumps(row).encode()
        out.append(RawRecord(shard, str(start + i), data, partition_key=f"pk{i % 2}"))
    return out


def test_counts_add_up_and_errors_carry_reason_data_shard_and_sequence() -> None:
    step = ScoringStep(
        make_decoder("json"), {}, key_field="host", value_fields=["v"], forests=forests()
    )
    rows: list[Any] = [
        {"host": "a", "v": 1},
        b"{oops",
        {"host": "b", "v": "x"},
        {"v": 2},
        {"host": "a", "v": 3},
    ]
    stats = step.process(recs(rows))
    step.flush()
    assert (stats.records, stats.scored, stats.errors, stats.skipped) == (5, 2, 3, 0)
    reasons = [e["reason"] for e in mem(step.errors).items]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1] == "field 'v': expected a number, got 'x'"
    assert reasons[2] == "missing key field 'host'"
    err = mem(step.errors).items[0]
    assert (
        err["data"] == "e29vcHM="
        and err["shard_id"] == "shardId-000000000000"
        and err["sequence_number"] == "101"
    )
    res = mem(step.results).items[0]
    assert set(res) >= {
        "key",
        "shard_id",
        "sequence_number",
        "sub_sequence_number",
        "score",
        "attribution",
    }
    assert res["attribution"] == {"v": {"high": 0.01, "low": 0.0}}


def test_replayed_records_are_skipped_not_learned_twice() -> None:
    step = ScoringStep(
        make_decoder("json"), {}, key_field="host", value_fields=["v"], forests=forests()
    )
    batch = recs([{"host": "a", "v": i} for i in range(6)])
    step.process(batch[:4])
    stats = step.process(batch[2:])  # at-least-once delivery replays 2 records
    assert stats.skipped == 2 and stats.scored == 2
    assert [p[0] for p in step.forests.forests["a"].points] == [0, 1, 2, 3, 4, 5]
    # Another shard's positions are independent.
    other = step.process(recs([{"host": "a", "v": 9}], shard="shardId-000000000001", start=1))
    assert other.scored == 1


def test_state_round_trip_keeps_positions_and_rejects_other_configs() -> None:
    step = ScoringStep(
        make_decoder("json"), {}, key_field="host", value_fields=["v"], forests=forests()
    )
    batch = recs([{"host": h, "v": i} for i, h in enumerate("abab")])
    step.process(batch)
    blob = step.state_bytes()
    again = ScoringStep(make_decoder("json"), {}, key_field="host", forests=forests())
    again.load_state(blob)
    assert again.value_fields == ["v"]
    assert again.process(batch).skipped == 4
    assert again.forests.forests["a"].to_bytes() == step.forests.forests["a"].to_bytes()
    with pytest.raises(StateError, match="forest parameters"):
        forests(seed=4).load_bytes(blob)
    with pytest.raises(StateError, match="magic"):
        forests().load_bytes(b"garbage-bytes")
    with pytest.raises(StateError, match="truncated"):
        forests().load_bytes(blob[:-3])
    with pytest.raises(ConfigError, match="state scores fields"):
        ScoringStep(make_decoder("json"), {}, value_fields=["w"], forests=forests()).load_state(
            blob
        )


def test_key_from_partition_key_and_default_key() -> None:
    step = ScoringStep(
        make_decoder("json"), {}, key_field="@partition_key", value_fields=["v"], forests=forests()
    )
    step.process(recs([{"v": i} for i in range(4)]))
    assert sorted(step.forests.forests) == ["pk0", "pk1"]
    single = ScoringStep(make_decoder("json"), {}, value_fields=["v"], forests=forests())
    single.process(recs([{"v": 1}, {"v": 2}]))
    assert list(single.forests.forests) == ["default"]


def test_seeds_are_stable_per_key() -> None:
    assert derive_seed(3, "a") == derive_seed(3, "a") != derive_seed(3, "b")
    assert derive_seed(3, "a") != derive_seed(4, "a")
    step = ScoringStep(
        make_decoder("json"), {}, key_field="host", value_fields=["v"], forests=forests()
    )
    step.process(recs([{"host": "a", "v": 1}]))
    assert step.forests.forests["a"].seed == derive_seed(3, "a")


def test_schema_discovered_from_first_batch_excludes_key_and_timestamp() -> None:
    step = ScoringStep(make_decoder("json"), {}, key_field="host", forests=forests())
    rows = [
        {"ts": f"2024-01-01T00:00:{i:02d}Z", "host": "h", "cpu": 0.5 + i, "mem": i}
        for i in range(10)
    ]
    step.process(recs(rows))
    assert step.value_fields == ["cpu", "mem"]
    step.flush()
    assert mem(step.results).items[0]["timestamp"] == "2024-01-01T00:00:00Z"
    assert len(mem(step.results).items) == 10


def test_schema_override_and_csv_columns() -> None:
    schema = parse_fields("ts:timestamp,value:float")
    step = ScoringStep(
        make_decoder("csv", columns=schema.names), {}, schema=schema, forests=forests()
    )
    stats = step.process(recs([b"2014-07-01 00:00:00,10844", b"2014-07-01 00:30:00,8127", b"bad"]))
    assert (stats.scored, stats.errors) == (2, 1)
    assert step.value_fields == ["value"]


def test_schema_without_numeric_fields_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no numeric field"):
        ScoringStep(make_decoder("json"), {}, schema=parse_fields("a:str"), forests=forests())


def test_unknown_forest_parameter_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown forest parameter"):
        KeyedForests({"trees": 10})


def test_csv_header_names_the_discovered_columns_and_survives_a_restart() -> None:
    def make() -> ScoringStep:
        return ScoringStep(make_decoder("csv"), {}, key_field="host", forests=forests())

    step = make()
    lines = [b"timestamp,value,host"] + [
        f"2014-07-01 00:{i:02d}:00,{100 + i},h{i % 2}".encode() for i in range(10)
    ]
    stats = step.process(recs(lines))
    # The header row names the columns; it is skipped, neither scored nor an error.
    assert (stats.scored, stats.errors, stats.no_data) == (10, 0, 1)
    step.flush()
    assert mem(step.errors).items == []
    assert step.value_fields == ["value"] and step.schema is not None
    assert step.schema.to_spec() == "timestamp:timestamp,value:int,host:str"
    assert mem(step.results).items[0]["timestamp"] == "2014-07-01 00:00:00"
    again = make()
    again.load_state(step.state_bytes())
    more = [f"2014-07-01 01:{i:02d}:00,{200 + i},h0".encode() for i in range(3)]
    assert again.process(recs(more, start=200)).scored == 3
    again.flush()
    assert [r["values"]["value"] for r in mem(again.results).items] == [200.0, 201.0, 202.0]
