"""The hardening of the Kinesis layer, piece by piece: bounds, the proportional error sink, the
KPL reader, schema discovery, VPC flow versions, multi-row CSV, passthrough, conditional state
writes and retries of infrastructure faults."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import pytest
from rcf_fast.kinesis import (
    ConfigError,
    ConflictError,
    Consumer,
    DecodeError,
    MemorySink,
    MemoryStateStore,
    RawRecord,
    S3StateStore,
    ScoringStep,
    SQLiteCheckpointStore,
    make_decoder,
)
from rcf_fast.kinesis.config import ScorerConfig, build_step
from rcf_fast.kinesis.errors import LimitError, is_transient
from rcf_fast.kinesis.lambda_handler import LambdaScorer
from rcf_fast.kinesis.limits import Limits, flatten, gunzip, json_shape
from rcf_fast.kinesis.records import Event, EventFailure

from .fakes import FakeShardSource, RecordingForest, failed_event_count, mem
from .hostile import (
    big_int_json,
    cwl_payload,
    deep_json,
    gzip_bomb,
    kpl_aggregate,
    overflow_int_json,
)
from .test_step import forests, recs

# -- bounds ------------------------------------------------------------------------------------


def test_gzip_bomb_stops_at_the_limit_with_bounded_memory() -> None:
    bomb = gzip_bomb()
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match="max_decompressed_bytes=10485760") as info:
            make_decoder("cwl").decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.limit == "max_decompressed_bytes"
    assert peak < 3 * Limits().max_decompressed_bytes, f"peak {peak / 2**20:.0f} MiB"


def test_gunzip_reads_several_members_and_rejects_truncation() -> None:
    two = gzip.compress(b"abc") + gzip.compress(b"def")
    assert gunzip(two, 100) == b"abcdef"
    with pytest.raises(LimitError):
        gunzip(two, 5)
    with pytest.raises(DecodeError, match="truncated"):
        gunzip(gzip.compress(b"x" * 1000)[:-12], 10_000)


@pytest.mark.parametrize(
    "text, shape",
    [
        (b'{"a": [1, {"b": "}}}]]]"}], "c": "\\"{["}', (3, 3)),
        (b"[[[]]]", (3, 3)),
        (b'["unterminated [[[', (1, 1)),
        (b"", (0, 0)),
        ('{"ünï": ["{"]}', (2, 2)),
    ],
)
def test_json_shape_ignores_brackets_inside_strings(text: Any, shape: tuple[int, int]) -> None:
    assert json_shape(text) == shape


def test_json_depth_is_measured_without_recursion() -> None:
    deep = b"[" * 2_000_000
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # a recursive measure would fail long before 2,000,000 levels
    try:
        assert json_shape(deep) == (2_000_000, 2_000_000)
    finally:
        sys.setrecursionlimit(limit)
    with pytest.raises(LimitError, match="max_json_depth=64"):
        make_decoder("json").decode(deep_json())


def test_flatten_is_iterative_and_bounded() -> None:
    obj: dict = {"v": 1}
    for _ in range(60):
        obj = {"a": obj, "n": 2}
    flat = flatten(obj, Limits())
    assert flat["a." * 60 + "v"] == 1 and len(flat) == 61
    with pytest.raises(LimitError, match="max_fields=10"):
        flatten({f"k{i}": i for i in range(11)}, Limits(max_fields=10))
    with pytest.raises(LimitError, match="max_field_bytes=8"):
        flatten({"s": "x" * 9}, Limits(max_field_bytes=8))


def test_number_digits_are_limited_and_overflow_is_contained() -> None:
    with pytest.raises(LimitError, match="max_number_digits=100"):
        make_decoder("json").decode(big_int_json())
    with pytest.raises(LimitError, match="max_number_digits"):
        make_decoder("json").decode(overflow_int_json())
    # With the limit raised, a 400-digit integer decodes, and the step contains the overflow.
    dec = make_decoder("json", limits=Limits(max_number_digits=500))
    step = ScoringStep(dec, {}, key_field="svc", value_fields=["latency"], forests=forests())
    stats = step.process(recs([overflow_int_json(), {"svc": "api", "latency": 1}]))
    step.flush()
    assert (stats.scored, stats.errors) == (1, 1)
    assert "field 'latency': expected a number" in mem(step.errors).items[0]["reason"]


def test_events_per_record_limit_is_one_error_naming_it() -> None:
    msgs = ['{"svc": "api", "v": 1}'] * 11
    dec = make_decoder("cwl", limits=Limits(max_events=10))
    with pytest.raises(LimitError, match="max_events=10"):
        dec.decode(cwl_payload(msgs))
    kpl = make_decoder("kpl", limits=Limits(max_events=10))
    with pytest.raises(LimitError, match="max_events=10"):
        kpl.decode(kpl_aggregate([("pk", b"{}")] * 11))
    csv = make_decoder("csv", limits=Limits(max_events=2))
    with pytest.raises(LimitError, match="max_events=2"):
        csv.decode(b"1\n2\n3\n")
    step = ScoringStep(dec, {}, value_fields=["v"], forests=forests())
    stats = step.process(recs([cwl_payload(msgs)]))
    step.flush()
    assert stats.errors == 1 and len(mem(step.errors).items) == 1
    assert "max_events=10" in mem(step.errors).items[0]["reason"]


def test_line_limit() -> None:
    dec = make_decoder("json", limits=Limits(max_line_bytes=20))
    with pytest.raises(LimitError, match="max_line_bytes=20"):
        dec.decode(b'{"v": "' + b"x" * 30 + b'"}')


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_events=0"):
        Limits(max_events=0)
    with pytest.raises(ConfigError, match="unknown limit"):
        Limits().replace(max_everything=3)
    cfg = ScorerConfig.from_env({"RCF_MAX_JSON_DEPTH": "8", "RCF_VALUES": "v"})
    assert cfg.limits.max_json_depth == 8
    with pytest.raises(ConfigError, match="RCF_MAX_EVENTS"):
        ScorerConfig.from_env({"RCF_MAX_EVENTS": "many"})


# -- the error sink --------------------------------------------------------------------------


def error_bytes(items: list[dict[str, Any]]) -> int:
    return sum(len(json.dumps(e)) + 1 for e in items)


@pytest.mark.parametrize("fmt", ["cwl", "kpl"])
def test_error_output_is_proportional_to_the_bad_record(fmt: str) -> None:
    n = 5000
    if fmt == "cwl":
        data = cwl_payload([f"{{{i}" for i in range(n)])
    else:
        data = kpl_aggregate([("pk", b"{")] * n)
    step = ScoringStep(make_decoder(fmt), {}, value_fields=["v"], forests=forests())
    stats = step.process([RawRecord("shardId-0", "7", data, "pk")])
    step.flush()
    items = mem(step.errors).items
    assert stats.errors == n and failed_event_count(items) == n
    record = [e for e in items if e["kind"] == "record"]
    events = [e for e in items if e["kind"] == "event"]
    assert len(record) == 1 and base64.b64decode(record[0]["data"]) == data
    assert all("data" not in e for e in events)
    assert 0 < len(events) <= Limits().max_event_errors
    assert record[0]["unlisted_errors"] == n - len(events)
    assert [e["event_index"] for e in events] == list(range(len(events)))
    assert error_bytes(items) <= 2 * len(data) + 64 * 1024


def test_small_record_with_two_bad_events_lists_both() -> None:
    data = cwl_payload(['{"v": 1}', "bad one", '{"v": 3}', "bad two"])
    step = ScoringStep(make_decoder("cwl"), {}, value_fields=["v"], forests=forests())
    stats = step.process([RawRecord("shardId-0", "7", data)])
    step.flush()
    items = mem(step.errors).items
    assert (stats.scored, stats.errors) == (2, 2)
    assert [e["kind"] for e in items] == ["record", "event", "event"]
    assert items[0]["reason"].startswith("2 of 4 events failed; first: log event 1: invalid JSON")
    assert [(e["event_index"], e["excerpt"]) for e in items[1:]] == [(1, "bad one"), (3, "bad two")]
    assert error_bytes(items) < 3 * len(data) + 4096


# -- KPL -----------------------------------------------------------------------------------------


def test_kpl_decodes_in_a_fresh_interpreter_with_each_user_records_keys(tmp_path: Path) -> None:
    from aws_kinesis_agg.aggregator import RecordAggregator

    agg = RecordAggregator()
    expected = []
    for i in range(12):
        pk, ehk = f"user-{i % 3}", str((i % 2) * 2**127)
        agg.add_user_record(pk, json.dumps({"v": i}).encode(), explicit_hash_key=ehk)
        expected.append([pk, ehk, {"v": i}])
    (tmp_path / "agg.bin").write_bytes(agg.clear_and_get().get_contents()[2])
    script = textwrap.dedent(
        """
        import json, sys
        from rcf_fast.kinesis import make_decoder
        data = open(sys.argv[1], "rb").read()
        out = [[e.partition_key, e.explicit_hash_key, e.fields]
               for e in make_decoder("kpl").decode(data)]
        print(json.dumps({"events": out, "agg_loaded": "aws_kinesis_agg" in sys.modules}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "agg.bin")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got == {"events": expected, "agg_loaded": False}


def test_kpl_user_records_are_keyed_by_their_own_partition_key() -> None:
    data = kpl_aggregate(
        [("a", b'{"v": 1}'), ("b", b'{"v": 2}'), ("a", b'{"v": 3}')],
        explicit_hash_keys=[None, "42", None],
    )
    step = ScoringStep(
        make_decoder("kpl"), {}, key_field="@partition_key", value_fields=["v"], forests=forests()
    )
    step.process([RawRecord("shardId-0", "5", data, partition_key="outer")])
    step.flush()
    res = mem(step.results).items
    assert [(r["key"], r["partition_key"], r.get("explicit_hash_key")) for r in res] == [
        ("a", "a", None),
        ("b", "b", "42"),
        ("a", "a", None),
    ]
    assert sorted(step.forests.forests) == ["a", "b"]


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"\x1a\x02\x08\x00", "no partition key index or no data"),  # record without data
        (b"\x0a\x01k\x1a\x05\x08\x07\x1a\x01x", "partition key index 7 out of range"),
    ],
)
def test_kpl_bad_user_record_fails_alone(body: bytes, reason: str) -> None:
    import hashlib

    from .hostile import KPL_MAGIC

    out = make_decoder("kpl").decode(KPL_MAGIC + body + hashlib.md5(body).digest())
    assert len(out) == 1 and isinstance(out[0], EventFailure) and reason in out[0].reason


# -- schema discovery ------------------------------------------------------------------------


def discovering_step(**kw: Any) -> ScoringStep:
    return ScoringStep(make_decoder("json"), {}, forests=forests(), **kw)


def test_a_rare_numeric_field_is_optional_not_mandatory() -> None:
    rows = [{"host": "a", "cpu": i % 7} for i in range(200)]
    for i in range(0, 200, 20):
        rows[i]["gpu"] = 1  # in 5% of the events
    step = discovering_step(key_field="host")
    stats = step.process(recs(rows))
    assert step.value_fields == ["cpu"]
    assert (stats.scored, stats.errors) == (200, 0)


def test_one_nested_value_in_the_sample_fails_only_that_event() -> None:
    rows: list[Any] = [{"host": "a", "cpu": i} for i in range(42)]
    rows[5] = {"host": "a", "cpu": {"x": 1}}
    step = discovering_step(key_field="host")
    stats = step.process(recs(rows))
    step.flush()
    assert step.value_fields == ["cpu"]
    assert (stats.scored, stats.errors) == (41, 1)
    assert mem(step.errors).items[0]["reason"] == "missing field 'cpu'"


def test_epoch_columns_are_timestamps_not_dimensions() -> None:
    rows = [
        {"ts_ms": 1_700_000_000_000 + i * 1000, "when": 1_700_000_000 + i, "bytes": 500 + i}
        for i in range(50)
    ]
    step = discovering_step()
    step.process(recs(rows))
    assert step.value_fields == ["bytes"]
    assert step.schema is not None and step.schema.type_of("ts_ms") == "timestamp"
    assert step.schema.type_of("when") == "timestamp"  # no time name, but a clock's spread
    step.flush()
    assert mem(step.results).items[0]["timestamp"] == 1_700_000_000_000


def test_a_non_numeric_value_fails_that_event_only() -> None:
    rows: list[Any] = [{"cpu": i} for i in range(30)]
    rows[10] = {"cpu": "n/a"}
    step = discovering_step()
    stats = step.process(recs(rows))
    assert (stats.scored, stats.errors) == (29, 1)


def test_fields_first_seen_after_discovery_are_logged_once(caplog: Any) -> None:
    step = discovering_step()
    step.process(recs([{"cpu": i} for i in range(10)]))
    with caplog.at_level(logging.INFO, logger="rcf_fast.kinesis"):
        step.process(recs([{"cpu": i, "extra": i} for i in range(10)], start=500))
    logged = [r.getMessage() for r in caplog.records if "first seen" in r.getMessage()]
    assert logged == ["field 'extra' first seen after schema discovery (not scored)"]


def test_a_batch_without_numeric_fields_does_not_stop_the_step() -> None:
    step = discovering_step()
    stats = step.process(recs([{"a": "x"}, b"garbage"]))
    assert step.value_fields is None and stats.errors == 2
    stats = step.process(recs([{"v": 1}, {"v": 2}], start=300))
    assert step.value_fields == ["v"] and stats.scored == 2


def test_lambda_discovers_from_the_whole_batch() -> None:
    from .test_lambda import FOREST, event

    rows = [json.dumps({"host": "h", "cpu": 1}).encode()] + [
        json.dumps({"host": "h", "cpu": i, "mem": 2 * i}).encode() for i in range(19)
    ]
    steps: list[ScoringStep] = []

    def make() -> ScoringStep:
        steps.append(build_step(ScorerConfig(key="host", forest=FOREST)))
        return steps[-1]

    scorer = LambdaScorer(make, lambda shard: MemoryStateStore())
    assert scorer.handle(event(rows)) == {"batchItemFailures": []}
    assert steps[0].value_fields == ["cpu", "mem"]


# -- VPC flow logs ---------------------------------------------------------------------------

V7_V8 = (
    "${version} ${interface-id} ${packets} ${bytes} ${action} ${log-status} "
    "${ecs-cluster-name} ${ecs-task-id} ${reject-reason}"
)


@pytest.mark.parametrize("version", range(2, 9))
def test_vpc_flow_versions_2_to_8_by_field_name(version: int) -> None:
    line = f"{version} eni-1 12 999 REJECT OK web abc BPA"
    cfg = ScorerConfig(format="vpc-flow", vpc_format=V7_V8, key="interface-id")
    step = build_step(cfg)
    stats = step.process(recs([line.encode()]))
    step.flush()
    assert stats.scored == 1, mem(step.errors).items


def test_vpc_flow_nodata_and_skipdata_are_skipped() -> None:
    lines = [f"8 eni-1 {10 + i} 900 ACCEPT OK web t -" for i in range(5)]
    lines += ["8 eni-1 - - - NODATA - - -", "8 eni-1 - - - SKIPDATA - - -"]
    cfg = ScorerConfig(format="cwl", message_format="vpc-flow", vpc_format=V7_V8)
    step = build_step(cfg)
    stats = step.process(recs([cwl_payload(lines)]))
    step.flush()
    assert (stats.scored, stats.errors, stats.no_data) == (5, 0, 2)
    assert mem(step.errors).items == []


def test_vpc_format_without_value_fields_is_a_config_error_at_start() -> None:
    with pytest.raises(ConfigError, match="no field 'packets', 'bytes' to score"):
        ScorerConfig(format="vpc-flow", vpc_format="${version} ${action}").validate()
    with pytest.raises(ConfigError, match="no field 'pkts'"):
        ScorerConfig(format="cwl", message_format="vpc-flow", values=["pkts"]).validate()
    with pytest.raises(ConfigError, match="invalid field name"):
        ScorerConfig(format="vpc-flow", vpc_format="${version} ${By tes}").validate()
    with pytest.raises(ConfigError, match="--key 'eni'"):
        ScorerConfig(format="vpc-flow", key="eni").validate()


# -- CSV, passthrough ----------------------------------------------------------------------------


def test_csv_record_with_several_rows_and_a_custom_delimiter() -> None:
    cfg = ScorerConfig(
        format="csv", fields="host:str,v:float", key="host", row_delimiter="|", passthrough=["host"]
    )
    step = build_step(cfg)
    stats = step.process(recs([b"a,1|b,2||a,x|a,4"]))
    step.flush()
    assert (stats.scored, stats.errors) == (3, 1)
    res = mem(step.results).items
    assert [(r["sub_sequence_number"], r["fields"]) for r in res] == [
        (0, {"host": "a"}),
        (1, {"host": "b"}),
        (3, {"host": "a"}),
    ]
    (err,) = mem(step.errors).items
    assert err["event_index"] == 2 and err["reason"] == "field 'v': expected a number, got 'x'"


def test_passthrough_all_and_missing_names() -> None:
    step = ScoringStep(
        make_decoder("json"), {}, value_fields=["v"], passthrough="all", forests=forests()
    )
    step.process(recs([{"v": 1, "m": {"x": "y"}}]))
    step.flush()
    assert mem(step.results).items[0]["fields"] == {"v": 1, "m.x": "y"}
    some = ScoringStep(
        make_decoder("json"), {}, value_fields=["v"], passthrough=["m.x", "zz"], forests=forests()
    )
    some.process(recs([{"v": 1, "m": {"x": "y"}}]))
    some.flush()
    assert mem(some.results).items[0]["fields"] == {"m.x": "y"}


# -- infrastructure faults -----------------------------------------------------------------------


def test_s3_state_is_written_with_a_conditional_write(
    client: Callable[[str], Any], name: str
) -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=name)
    a, b = S3StateStore(s3, name, "state"), S3StateStore(s3, name, "state")
    assert a.load() is None
    a.save(b"one")
    assert b.load() == b"one"
    b.save(b"two")
    with pytest.raises(ConflictError, match="another process"):
        a.save(b"stale")  # a's ETag is that of b"one"
    fresh = S3StateStore(s3, name, "state")
    assert fresh.load() == b"two"
    c = S3StateStore(s3, name, "new")  # no object yet: If-None-Match
    d = S3StateStore(s3, name, "new")
    assert c.load() is None and d.load() is None
    c.save(b"c")
    with pytest.raises(ConflictError):
        d.save(b"d")
    assert S3StateStore(s3, name, "new").load() == b"c"


class ConflictingStore(MemoryStateStore):
    def save(self, data: bytes) -> None:
        raise ConflictError("state was saved by another process")


def test_a_lost_state_condition_stops_the_consumer_cleanly(tmp_path: Path) -> None:
    import random

    source = FakeShardSource(1, random.Random(0), limit_jitter=False)
    for i in range(5):
        source.put(json.dumps({"v": i}).encode(), "k")
    checkpoints = SQLiteCheckpointStore(str(tmp_path / "cp.db"), "x")
    step = ScoringStep(make_decoder("json"), {}, value_fields=["v"], forests=forests())
    consumer = Consumer(source, step, checkpoints, ConflictingStore(), persist_interval=0)
    with pytest.raises(ConflictError):
        consumer.run(max_rounds=3)
    (shard,) = [s.shard_id for s in source.list_shards()]
    cp = checkpoints.get(shard)
    assert cp is not None and cp.sequence_number is None and cp.owner is None  # nothing advanced


def throttle_first(client: Any, operation: str, count: int) -> list[int]:
    """Once ``calls[1]`` is set, make the next ``count`` ``operation`` calls answer
    ProvisionedThroughputExceeded; ``calls[0]`` counts the calls made while armed."""
    from botocore.awsrequest import AWSResponse

    calls = [0, 0]

    class Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_: Any) -> Any:
            yield self.body

    def handler(request: Any, **_: Any) -> Any:
        if not calls[1]:
            return None
        calls[0] += 1
        if calls[0] > count:
            return None
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "throttled (test)",
            }
        ).encode()
        return AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, Raw(body)
        )

    client.meta.events.register(f"before-send.dynamodb.{operation}", handler)
    return calls


def test_a_throttled_checkpoint_write_is_retried_not_fatal(
    moto_endpoint: str, name: str, tmp_path: Path
) -> None:
    import random

    import boto3
    from botocore.config import Config
    from rcf_fast.kinesis import DynamoDBCheckpointStore

    # No client retries: the consumer's own backoff must absorb the throttling.
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    store = DynamoDBCheckpointStore(ddb, name)
    store.ensure_table()
    source = FakeShardSource(1, random.Random(0), limit_jitter=False)
    for i in range(5):
        source.put(json.dumps({"v": i}).encode(), "k")
    step = ScoringStep(make_decoder("json"), {}, value_fields=["v"], forests=forests())
    slept: list[float] = []
    consumer = Consumer(
        source, step, store, MemoryStateStore(), persist_interval=0, sleep=slept.append, seed=1
    )
    calls = throttle_first(ddb, "UpdateItem", 4)

    def arm() -> None:  # once the lease is taken and records are read: throttle the checkpoint
        calls[1] = 1

    source.on_call = arm
    status = consumer.run(max_rounds=2)
    assert calls[0] > 4 and status.transient_faults >= 2 and len(slept) >= 2
    (shard,) = [s.shard_id for s in source.list_shards()]
    checkpoint = store.get(shard)
    assert checkpoint is not None
    assert checkpoint.sequence_number == source.written[-1].sequence_number


def test_transient_fault_classification() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    def err(code: str, status: int = 400) -> ClientError:
        return ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
        )

    assert is_transient(err("ProvisionedThroughputExceededException"))
    assert is_transient(err("InternalFailure", 500)) and is_transient(err("Whatever", 503))
    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert not is_transient(err("ResourceNotFoundException"))
    assert not is_transient(ConflictError("lost"))


class FlakySink(MemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.fail = 1

    def deliver(self, items: list[dict[str, Any]]) -> None:
        if self.fail:
            self.fail -= 1
            raise OSError("connection reset")
        super().deliver(items)


def test_a_failed_flush_keeps_the_buffer_for_the_retry() -> None:
    sink = FlakySink()
    for i in range(3):
        sink.write({"i": i})
    with pytest.raises(OSError):
        sink.flush()
    sink.flush()
    assert [x["i"] for x in sink.items] == [0, 1, 2] and sink.buffer == []


def test_cli_clients_use_botocore_standard_retries() -> None:
    from rcf_fast.kinesis.aws import client_config

    cfg = client_config()
    assert cfg.retries == {"mode": "standard", "max_attempts": 10}


def test_forest_exceptions_are_contained() -> None:
    class Exploding(RecordingForest):
        def score_update(self, x: object) -> float:
            raise RuntimeError("boom")

    from rcf_fast.kinesis import KeyedForests

    step = ScoringStep(
        make_decoder("json"),
        {},
        value_fields=["v"],
        forests=KeyedForests({}, factory=Exploding, loader=Exploding.from_bytes),
    )
    stats = step.process(recs([{"v": 1}, {"v": 2}]))
    step.flush()
    assert stats.errors == 2 and "RuntimeError: boom" in mem(step.errors).items[0]["reason"]


def test_decoded_events_are_events_or_failures() -> None:
    out = make_decoder("cwl").decode(cwl_payload(['{"v": 1}', "[1]"]))
    assert isinstance(out[0], Event) and isinstance(out[1], EventFailure)
