"""Wire tests against moto's server: several shards, every decoder format, malformed records in
the mix, planted anomalies found, and every record either scored or in the error sink."""

from __future__ import annotations

import json
import random
from typing import Any, Callable

import pytest
from rcf_fast.kinesis import (
    Boto3ShardSource,
    Consumer,
    FileStateStore,
    MemorySink,
    SQLiteCheckpointStore,
)
from rcf_fast.kinesis.config import ScorerConfig, build_step

from .conftest import create_stream
from .payloads import cwl_payload, kpl_payload, vpc_line

FOREST = {"num_trees": 40, "sample_size": 64, "seed": 5}
SPIKES = {"web-1": 150, "web-2": 220, "db-1": 300}  # index of the planted anomaly per key


def put_all(kinesis: Any, stream: str, records: list[tuple[str, bytes]]) -> None:
    for i in range(0, len(records), 500):
        chunk = records[i : i + 500]
        resp = kinesis.put_records(
            StreamName=stream, Records=[{"PartitionKey": pk, "Data": d} for pk, d in chunk]
        )
        assert resp["FailedRecordCount"] == 0


def series(rng: random.Random, key: str, n: int = 360) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        v = 50 + 10 * ((i % 24) / 24) + rng.gauss(0, 0.5)
        if i == SPIKES[key]:
            v = 140.0
        rows.append({"host": key, "t": i, "cpu": round(v, 3)})
    return rows


def consume(
    client: Callable[[str], Any], stream: str, cfg: ScorerConfig, tmp_path: Any
) -> tuple[MemorySink, MemorySink, Any]:
    results, errors = MemorySink(), MemorySink()
    step = build_step(cfg, results, errors)
    consumer = Consumer(
        Boto3ShardSource(client("kinesis"), stream),
        step,
        SQLiteCheckpointStore(str(tmp_path / "cp.db"), stream),
        FileStateStore(str(tmp_path / "state")),
        persist_interval=0.5,
        idle_sleep=0.05,
    )
    status = consumer.run(stop_after_idle=1.0)
    return results, errors, status


def top_per_key(results: MemorySink, field: str = "t") -> dict[str, Any]:
    best: dict[str, Any] = {}
    for r in results.items:
        if r["key"] not in best or r["score"] > best[r["key"]]["score"]:
            best[r["key"]] = r
    return best


def assert_all_accounted(
    results: MemorySink, errors: MemorySink, n_events: int, n_bad: int
) -> None:
    ids = [(r["shard_id"], r["sequence_number"], r["sub_sequence_number"]) for r in results.items]
    assert len(ids) == len(set(ids)), "a record was scored twice"
    assert len(results.items) + len(errors.items) == n_events
    assert len(errors.items) == n_bad
    for e in errors.items:
        assert (
            e["reason"]
            and e["data"] is not None
            and e["shard_id"].startswith("shardId-")
            and e["sequence_number"]
        )


def test_json_several_shards_planted_anomalies(
    client: Callable[[str], Any], name: str, tmp_path: Any
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 3)
    rng = random.Random(1)
    rows = [row for key in SPIKES for row in series(rng, key)]
    rng.shuffle(rows)
    rows.sort(key=lambda r: r["t"])  # interleave keys, each in time order
    records = [(r["host"], json.dumps(r).encode()) for r in rows]
    bad = [
        ("web-1", b'{"host": "web-1", "cpu": '),
        ("db-1", b'{"host": "db-1", "cpu": "NaN?"}'),
        ("web-2", b"\x00\x01binary"),
        ("web-2", b'{"cpu": 1.0}'),
    ]
    for i, b in enumerate(bad):
        records.insert(100 + 50 * i, b)
    put_all(kinesis, name, records)
    shards = {s.shard_id for s in Boto3ShardSource(kinesis, name).list_shards()}
    assert len(shards) == 3

    results, errors, status = consume(
        client, name, ScorerConfig(key="host", values=["cpu"], forest=FOREST), tmp_path
    )
    assert_all_accounted(results, errors, len(records), len(bad))
    assert status.records == len(records) and status.scored == len(rows)
    best = top_per_key(results)
    assert {k: best[k]["values"]["cpu"] for k in SPIKES} == {k: 140.0 for k in SPIKES}
    for k in SPIKES:
        scores = sorted(r["score"] for r in results.items if r["key"] == k)
        assert scores[-1] > 1.5 * scores[-2], f"{k}: the planted anomaly must stand out"
    assert best["web-1"]["attribution"]["cpu"]["high"] > best["web-1"]["attribution"]["cpu"]["low"]
    # Replaying the whole stream with the saved state learns nothing again.
    again, again_err, status2 = consume(
        client, name, ScorerConfig(key="host", values=["cpu"], forest=FOREST), tmp_path
    )
    assert again.items == [] and again_err.items == [] and status2.records == 0


def test_csv_with_discovered_schema(client: Callable[[str], Any], name: str, tmp_path: Any) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 2)
    rng = random.Random(2)
    rows = series(rng, "web-1")
    records = [("p", f"{r['t']},{r['cpu']},web-1".encode()) for r in rows]
    records.insert(40, ("p", b"1,2"))
    records.insert(80, ("p", b"3,abc,web-1"))
    put_all(kinesis, name, records)
    results, errors, _ = consume(
        client,
        name,
        ScorerConfig(
            format="csv",
            fields="t:int,cpu:float,host:str",
            values=["cpu"],
            key="host",
            forest=FOREST,
        ),
        tmp_path,
    )
    assert_all_accounted(results, errors, len(records), 2)
    assert top_per_key(results)["web-1"]["values"]["cpu"] == 140.0
    assert {e["reason"] for e in errors.items} == {
        "expected 3 CSV columns (t, cpu, host), got 2",
        "field 'cpu': expected a number, got 'abc'",
    }


def test_cloudwatch_logs_json_with_control_messages(
    client: Callable[[str], Any], name: str, tmp_path: Any
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 2)
    rng = random.Random(3)
    rows = series(rng, "db-1")
    records: list[tuple[str, bytes]] = [("ctl", cwl_payload([], control=True))]
    n_events, n_bad = 0, 0
    for i in range(0, len(rows), 8):
        msgs = [json.dumps(r) for r in rows[i : i + 8]]
        if i % 80 == 0:
            msgs.append("{broken json")
            n_bad += 1
        records.append(("db-1", cwl_payload(msgs, start_ms=1_700_000_000_000 + i * 60_000)))
        n_events += len(msgs)
    records.append(("x", b"not gzip at all"))
    n_events, n_bad = n_events + 1, n_bad + 1
    put_all(kinesis, name, records)
    results, errors, _ = consume(
        client,
        name,
        ScorerConfig(format="cwl", key="host", values=["cpu"], forest=FOREST),
        tmp_path,
    )
    assert_all_accounted(results, errors, n_events, n_bad)
    assert top_per_key(results)["db-1"]["values"]["cpu"] == 140.0
    assert any(
        e["reason"] == "CloudWatch Logs payload is not gzip: Not a gzipped file (b'no')"
        for e in errors.items
    )


def test_cloudwatch_logs_vpc_flow(client: Callable[[str], Any], name: str, tmp_path: Any) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 2)
    rng = random.Random(4)
    enis = ["eni-a", "eni-b"]
    records, n_events, n_bad = [], 0, 0
    for i in range(300):
        lines = []
        for eni in enis:
            packets = rng.randint(8, 12)
            nbytes = packets * rng.randint(500, 600)
            if eni == "eni-b" and i == 200:
                packets, nbytes = 9000, 9000 * 1400  # exfiltration-like burst
            lines.append(vpc_line(eni, packets, nbytes, start=1_700_000_000 + i * 60))
        if i % 100 == 50:
            lines.append("2 123456789012 eni-a truncated line")
            n_bad += 1
        records.append(("vpc", cwl_payload(lines, log_group="/vpc/flow")))
        n_events += len(lines)
    put_all(kinesis, name, records)
    cfg = ScorerConfig(format="cwl", message_format="vpc-flow", key="interface-id", forest=FOREST)
    results, errors, _ = consume(client, name, cfg, tmp_path)
    assert_all_accounted(results, errors, n_events, n_bad)
    best = top_per_key(results)
    assert best["eni-b"]["values"] == {"packets": 9000.0, "bytes": 12_600_000.0}
    assert set(best["eni-b"]["attribution"]) == {"packets", "bytes"}


def test_kpl_aggregated_and_plain_vpc_flow(
    client: Callable[[str], Any], name: str, tmp_path: Any
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 2)
    rng = random.Random(5)
    rows = series(rng, "web-2")
    records, n_bad = [], 0
    for i in range(0, len(rows), 5):
        msgs = [json.dumps(r).encode() for r in rows[i : i + 5]]
        if i == 100:
            msgs.insert(2, b"{nope")
            n_bad += 1
        records.append(("web-2", kpl_payload("web-2", msgs)))
    corrupt = bytearray(kpl_payload("web-2", [b'{"host": "web-2", "cpu": 1}']))
    corrupt[-1] ^= 1
    records.append(("web-2", bytes(corrupt)))
    n_bad += 1
    put_all(kinesis, name, records)
    results, errors, _ = consume(
        client,
        name,
        ScorerConfig(format="kpl", key="host", values=["cpu"], forest=FOREST),
        tmp_path,
    )
    assert_all_accounted(results, errors, len(rows) + n_bad, n_bad)
    assert top_per_key(results)["web-2"]["values"]["cpu"] == 140.0
    subs = {r["sub_sequence_number"] for r in results.items}
    assert subs == {0, 1, 2, 3, 4, 5}

    # Plain (not aggregated) VPC flow records, custom field list, on another stream.
    stream2 = name + "-vpc"
    create_stream(kinesis, stream2, 1)
    put_all(
        kinesis,
        stream2,
        [("v", f"5 eni-z {100 + i % 7} 2".encode()) for i in range(100)] + [("v", b"5 eni-z x 2")],
    )
    cfg = ScorerConfig(
        format="vpc-flow",
        vpc_format="${version} ${interface-id} ${bytes} ${tcp-flags}",
        values=["bytes"],
        key="interface-id",
        forest=FOREST,
    )
    results2, errors2, _ = consume(client, stream2, cfg, tmp_path / "vpc")
    assert_all_accounted(results2, errors2, 101, 1)


@pytest.fixture(autouse=True)
def _mkdirs(tmp_path: Any) -> None:
    (tmp_path / "vpc").mkdir()
