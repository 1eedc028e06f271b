"""Sinks: batching (<= 500 records per PutRecords), retry of failed entries, filters, files."""

from __future__ import annotations

import io
import json
from typing import Any, Callable

import pytest
from rcf_fast.kinesis import (
    CallbackSink,
    JsonLinesSink,
    KinesisSink,
    MemorySink,
    SinkError,
    TeeSink,
)

from .conftest import create_stream


class FlakyKinesis:
    """PutRecords that fails every third entry on the first try of each batch."""

    def __init__(self, fail_always: bool = False) -> None:
        self.calls: list[int] = []
        self.delivered: list[bytes] = []
        self.fail_always = fail_always
        self.seen: dict[bytes, int] = {}

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        assert len(Records) <= 500
        self.calls.append(len(Records))
        out = []
        for i, rec in enumerate(Records):
            tries = self.seen.get(rec["Data"], 0)
            self.seen[rec["Data"]] = tries + 1
            if self.fail_always or (i % 3 == 0 and tries == 0):
                out.append(
                    {
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": "slow down",
                    }
                )
            else:
                self.delivered.append(rec["Data"])
                out.append({"SequenceNumber": "1", "ShardId": "shardId-000000000000"})
        return {"FailedRecordCount": sum("ErrorCode" in r for r in out), "Records": out}


def items(n: int) -> list[dict[str, Any]]:
    return [{"key": f"k{i % 4}", "score": i / n * 4, "i": i} for i in range(n)]


def test_kinesis_sink_batches_and_retries_failed_entries() -> None:
    fake = FlakyKinesis()
    sink = KinesisSink(fake, "out", sleep=lambda s: None)
    for item in items(1203):
        sink.write(item)
    sink.flush()
    assert fake.calls == [
        500,
        167,
        500,
        167,
        203,
        68,
    ]  # batches of <= 500, then only the failed ones
    got = sorted(json.loads(d)["i"] for d in fake.delivered)
    assert got == list(range(1203))  # every record exactly once after the retries
    assert sink.written == 1203


def test_kinesis_sink_gives_up_with_a_typed_error() -> None:
    sink = KinesisSink(FlakyKinesis(fail_always=True), "out", max_retries=2, sleep=lambda s: None)
    sink.write({"key": "a", "score": 1.0})
    with pytest.raises(SinkError, match="1 record\\(s\\) still failing after 2 retries"):
        sink.flush()


def test_kinesis_sink_does_not_retry_a_missing_stream(
    client: Callable[[str], Any], name: str
) -> None:
    sleeps: list[float] = []
    sink = KinesisSink(client("kinesis"), name + "-missing", sleep=sleeps.append)
    sink.write({"key": "a", "score": 1.0})
    with pytest.raises(SinkError, match="ResourceNotFoundException"):
        sink.flush()
    assert sink.put_calls == 1 and sleeps == []


def test_kinesis_sink_truncates_oversized_error_payloads() -> None:
    fake = FlakyKinesis()
    sink = KinesisSink(fake, "err", partition_key_field="shard_id", sleep=lambda s: None)
    sink.write(
        {"reason": "too big", "data": "A" * 1_500_000, "shard_id": "s", "sequence_number": "1"}
    )
    sink.flush()
    (data,) = fake.delivered
    assert json.loads(data) == {
        "reason": "too big",
        "data": "",
        "data_truncated": True,
        "shard_id": "s",
        "sequence_number": "1",
    }


def test_min_score_filter_and_tee() -> None:
    high, everything = MemorySink(min_score=2.0), MemorySink()
    seen: list[dict[str, Any]] = []
    tee = TeeSink([high, everything, CallbackSink(seen.append, min_score=3.0)])
    for item in items(8):
        tee.write(item)
    tee.write({"reason": "bad", "data": ""})  # errors have no score and always pass
    tee.flush()
    assert [i["i"] for i in high.items[:-1]] == [4, 5, 6, 7] and high.items[-1]["reason"] == "bad"
    assert len(everything.items) == 9
    assert [i["i"] for i in seen if "i" in i] == [6, 7]


def test_json_lines_sink(tmp_path: Any) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonLinesSink(str(path), min_score=1.0)
    for item in items(4):
        sink.write(item)
    sink.close()
    assert [json.loads(line)["i"] for line in path.read_text().splitlines()] == [1, 2, 3]
    buf = io.StringIO()
    JsonLinesSink(buf).deliver([{"b": 1, "a": 2}])
    assert buf.getvalue() == '{"a": 2, "b": 1}\n'


def test_kinesis_sink_against_moto(client: Callable[[str], Any], name: str) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 2)
    sink = KinesisSink(kinesis, name)
    for item in items(700):
        sink.write(item)
    sink.flush()
    assert sink.put_calls == 2
    got = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        it = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        got += [
            json.loads(r["Data"])["i"]
            for r in kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]
        ]
    assert sorted(got) == list(range(700))
