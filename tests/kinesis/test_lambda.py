"""The Lambda helper: hand-built Kinesis events, partial failures (batchItemFailures), state in
S3 and DynamoDB (moto server)."""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

import pytest
from rcf_fast.kinesis import (
    ConfigError,
    DynamoDBStateStore,
    KeyedForests,
    MemorySink,
    MemoryStateStore,
    S3StateStore,
    ScoringStep,
    SinkError,
    make_decoder,
    make_lambda_handler,
)
from rcf_fast.kinesis.config import ScorerConfig, build_step
from rcf_fast.kinesis.lambda_handler import LambdaScorer

from .fakes import mem

FOREST = {"num_trees": 20, "sample_size": 32, "seed": 9}
SHARD = "shardId-000000000003"


def event(payloads: list[bytes], start: int = 0, shard: str = SHARD) -> dict[str, Any]:
    records = []
    for i, data in enumerate(payloads, start):
        seq = str(49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898 + i)
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "pk",
                    "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1545084650.987,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{seq}",
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/metrics",
            }
        )
    return {"Records": records}


def rows(n: int, start: int = 0) -> list[bytes]:
    return [
        json.dumps({"host": f"h{i % 2}", "v": 10 + (i % 5)}).encode()
        for i in range(start, start + n)
    ]


class BoomSink(MemorySink):
    """A results sink that fails (an infrastructure fault) at one marked record while armed."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True
        self.fail_at: str | None = None

    def write(self, item: dict[str, Any]) -> None:
        if self.armed and item["sequence_number"] == self.fail_at:
            raise SinkError("downstream unavailable")
        super().write(item)


def clean_forests(payloads: list[bytes]) -> KeyedForests:
    step = ScoringStep(make_decoder("json"), FOREST, key_field="host", value_fields=["v"])
    from .test_step import recs

    step.process(recs(payloads, shard=SHARD))
    return step.forests


def test_batch_with_bad_records_succeeds_and_replays_are_skipped(
    client: Callable[[str], Any], name: str
) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=name)
    results: list[MemorySink] = []
    errors: list[MemorySink] = []

    def sink(bag: list[MemorySink]) -> Callable[[], MemorySink]:
        def make() -> MemorySink:
            bag.append(MemorySink())
            return bag[-1]

        return make

    cfg = ScorerConfig(key="host", values=["v"], forest=FOREST)
    handler = make_lambda_handler(
        cfg, lambda shard: S3StateStore(s3, name, f"state/{shard}"), sink(results), sink(errors)
    )
    payloads = rows(40)
    payloads[7] = b"{not json"
    ev = event(payloads[:30])
    assert handler(ev) == {"batchItemFailures": []}
    assert len(results[0].items) == 29 and len(errors[0].items) == 1
    assert errors[0].items[0]["sequence_number"] == ev["Records"][7]["kinesis"]["sequenceNumber"]
    assert errors[0].items[0]["shard_id"] == SHARD
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 1

    # A cold start (new container) replays 20..39: 20..29 are skipped, 30..39 learned.
    handler2 = make_lambda_handler(
        cfg, lambda shard: S3StateStore(s3, name, f"state/{shard}"), sink(results), sink(errors)
    )
    assert handler2(event(payloads[20:], start=20)) == {"batchItemFailures": []}
    assert len(results[1].items) == 10 and errors[1].items == []
    final = KeyedForests(FOREST)
    final.load_bytes(S3StateStore(s3, name, f"state/{SHARD}").load() or b"")
    clean = clean_forests(payloads)
    assert [(k, f.to_bytes()) for k, f in final] == [(k, f.to_bytes()) for k, f in clean]


def test_infrastructure_fault_fails_the_batch_and_the_retry_completes() -> None:
    store = MemoryStateStore()
    results = BoomSink()
    scorer = LambdaScorer(
        lambda: ScoringStep(
            make_decoder("json"), FOREST, key_field="host", value_fields=["v"], results=results
        ),
        lambda shard: store,
    )
    payloads = rows(20)
    ev = event(payloads)
    results.fail_at = ev["Records"][12]["kinesis"]["sequenceNumber"]
    out = scorer.handle(ev)
    assert out == {
        "batchItemFailures": [{"itemIdentifier": ev["Records"][0]["kinesis"]["sequenceNumber"]}]
    }
    # Nothing of the failed batch is durable: no result delivered, no state saved.
    assert results.items == [] and results.buffer == [] and store.saves == 0
    # Lambda retries the batch; now it succeeds.
    results.armed = False
    assert scorer.handle(ev) == {"batchItemFailures": []}
    # A full retry of the original batch too: nothing is learned twice.
    assert scorer.handle(ev) == {"batchItemFailures": []}
    assert len(results.items) == 20
    final = KeyedForests(FOREST)
    final.load_bytes(store.data or b"")
    clean = clean_forests(payloads)
    assert [(k, f.to_bytes()) for k, f in final] == [(k, f.to_bytes()) for k, f in clean]


class FailingStore(MemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def save(self, data: bytes) -> None:
        if self.fail:
            raise OSError("S3 unavailable")
        super().save(data)


def test_state_save_failure_fails_the_whole_batch() -> None:
    store = FailingStore()
    scorer = LambdaScorer(
        lambda: ScoringStep(make_decoder("json"), FOREST, key_field="host", value_fields=["v"]),
        lambda shard: store,
    )
    ev = event(rows(5))
    assert scorer.handle(ev) == {
        "batchItemFailures": [{"itemIdentifier": ev["Records"][0]["kinesis"]["sequenceNumber"]}]
    }
    store.fail = False
    assert scorer.handle(ev) == {"batchItemFailures": []}
    final = KeyedForests(FOREST)
    final.load_bytes(store.data or b"")
    assert sum(f.entries_seen for _, f in final) == 5  # the failed attempt left nothing behind


def test_dynamodb_state_conflict_becomes_a_batch_failure(
    client: Callable[[str], Any], name: str
) -> None:
    ddb = client("dynamodb")
    DynamoDBStateStore(ddb, name, SHARD).ensure_table()

    def make(cfg: ScorerConfig | None = None) -> LambdaScorer:
        c = cfg or ScorerConfig(key="host", values=["v"], forest=FOREST)
        return LambdaScorer(
            lambda: build_step(c), lambda shard: DynamoDBStateStore(ddb, name, shard)
        )

    a, b = make(), make()
    ev = event(rows(10))
    assert a.handle(ev) == {"batchItemFailures": []}
    assert b.handle(event(rows(5, 10), start=10)) == {
        "batchItemFailures": []
    }  # b loaded a's version 1
    # a still holds version 1 in memory; its save must not overwrite b's version 2.
    out = a.handle(event(rows(5, 15), start=15))
    assert (
        out["batchItemFailures"][0]["itemIdentifier"]
        == event(rows(5, 15), start=15)["Records"][0]["kinesis"]["sequenceNumber"]
    )
    assert a.handle(event(rows(5, 15), start=15)) == {
        "batchItemFailures": []
    }  # reloaded, then saved
    final = KeyedForests(FOREST)
    final.load_bytes(DynamoDBStateStore(ddb, name, SHARD).load() or b"")
    assert sum(f.entries_seen for _, f in final) == 20


def test_config_from_env() -> None:
    cfg = ScorerConfig.from_env(
        {
            "RCF_FORMAT": "cwl",
            "RCF_MESSAGE_FORMAT": "vpc-flow",
            "RCF_KEY": "interface-id",
            "RCF_FOREST": '{"num_trees": 50}',
        }
    )
    assert cfg.value_fields() == ["packets", "bytes"] and cfg.forest == {"num_trees": 50}
    with pytest.raises(ConfigError, match="RCF_FOREST"):
        ScorerConfig.from_env({"RCF_FOREST": "{"})
    with pytest.raises(ConfigError, match="format 'xml'"):
        ScorerConfig.from_env({"RCF_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="unknown forest parameter"):
        ScorerConfig.from_env({"RCF_FOREST": '{"trees": 5}'})


def test_ready_made_handler_from_env(
    moto_endpoint: str, client: Callable[[str], Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rcf_fast.kinesis import lambda_handler as module

    from .conftest import create_stream

    kinesis, s3 = client("kinesis"), client("s3")
    create_stream(kinesis, name + "-out", 1)
    s3.create_bucket(Bucket=name)
    env = {
        "RCF_KEY": "host",
        "RCF_VALUES": "v",
        "RCF_FOREST": json.dumps(FOREST),
        "RCF_STATE": f"s3://{name}/rcf",
        "RCF_OUTPUT_STREAM": name + "-out",
        "RCF_ENDPOINT_URL": moto_endpoint,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(module, "_env_handler", None)
    payloads = rows(12)
    payloads[3] = b"{oops"
    assert module.handler(event(payloads)) == {"batchItemFailures": []}
    # Per-key state under the prefix: the shard's position, meta, and one object per key.
    assert s3.head_object(Bucket=name, Key=f"rcf/pos%2F{SHARD}")["ContentLength"] > 0
    objects = {o["Key"] for o in s3.list_objects_v2(Bucket=name, Prefix="rcf/")["Contents"]}
    assert "rcf/meta" in objects and any(k.startswith("rcf/key%2F") for k in objects)
    shard = kinesis.list_shards(StreamName=name + "-out")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(
        StreamName=name + "-out", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert len(kinesis.get_records(ShardIterator=it)["Records"]) == 11
    with pytest.raises(ConfigError, match="RCF_STATE"):
        module.handler_from_env({"RCF_STATE": "/tmp/x"})


def test_per_key_state_follows_keys_to_child_shards_and_survives_a_failed_batch() -> None:
    """Per-key records shared by the shards: after a split, the child shards' invocations
    continue the parent's keys; a batch failing mid-way (sink fault) is retried exactly."""
    from rcf_fast.kinesis.keystate import KeyedStateStore
    from rcf_fast.kinesis.stores.records import MemoryRecords

    records = MemoryRecords()
    results = BoomSink()
    cfg = ScorerConfig(key="host", values=["v"], forest=FOREST)
    handler = make_lambda_handler(
        cfg, lambda shard: KeyedStateStore(records), lambda: results, MemorySink
    )
    payloads = rows(60)
    assert handler(event(payloads[:30])) == {"batchItemFailures": []}
    # The split: h0's records continue on one child, h1's on the other, in new containers.
    h0 = [p for p in payloads[30:] if b'"h0"' in p]
    h1 = [p for p in payloads[30:] if b'"h1"' in p]
    child_b = make_lambda_handler(
        cfg, lambda shard: KeyedStateStore(records), lambda: results, MemorySink
    )
    results.fail_at = event(h0, start=100, shard="child-b")["Records"][5]["kinesis"][
        "sequenceNumber"
    ]
    failed = child_b(event(h0, start=100, shard="child-b"))
    assert failed["batchItemFailures"]  # an infrastructure fault: Lambda retries the batch
    results.armed = False
    assert child_b(event(h0, start=100, shard="child-b")) == {"batchItemFailures": []}
    assert child_b(event(h1, start=200, shard="child-c")) == {"batchItemFailures": []}
    got = {(r["key"], r["values"]["v"], r["score"]) for r in results.items}
    clean = ScoringStep(make_decoder("json"), FOREST, key_field="host", value_fields=["v"])
    from .test_step import recs

    clean.process(recs(payloads, shard=SHARD))
    clean.flush()
    want = {(r["key"], r["values"]["v"], r["score"]) for r in mem(clean.results).items}
    assert got == want
    final = ScoringStep(make_decoder("json"), FOREST, key_field="host", value_fields=["v"])
    final.attach_state(KeyedStateStore(records))
    assert {k: f.to_bytes() for k, f in final.forests} == {
        k: f.to_bytes() for k, f in clean.forests
    }
