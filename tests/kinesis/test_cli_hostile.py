"""Hostile streams through ``rcf-fast consume`` on the moto server, as a user runs it.

Each test mixes good records with the hostile classes of the hardening issue and checks: the
consumer exits 0 (content never stops it), every good event is scored exactly once across a
restart, the error sink stays within a small multiple of the bad input, the consumer's peak
memory (ru_maxrss of that very child, from ``os.wait4``) stays bounded, and KPL user records
are filed under their own partition keys.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from .conftest import create_stream
from .hostile import (
    big_int_json,
    cwl_malformed,
    cwl_many_events,
    cwl_payload,
    cwl_vpc_as_json,
    deep_json,
    deep_list_unclosed,
    gzip_bomb,
    kpl_bad,
    overflow_int_json,
)
from .servers import AWS_ENV
from .test_wire import put_all

# Peak RSS allowed for the whole consumer process (Python, numpy, boto3, forests) while it
# reads records of up to 1 MiB each: "a few hundred MB", against 2.1-2.5 GB before the bounds.
MAX_RSS_BYTES = 400 * 2**20
# Error output per failed record: its raw bytes once (base64: 4/3) plus capped per-event entries.
ERROR_MULTIPLE = 3.0
ERROR_SLACK = 64 * 1024


def consume(
    args: list[str], cwd: Path, endpoint: str, stream: str, timeout: float = 240
) -> tuple[int, str, int]:
    """Run ``rcf-fast consume``; return (exit status, stderr, peak RSS in bytes)."""
    cmd = [
        sys.executable,
        "-m",
        "rcf_fast.cli",
        "consume",
        "--stream",
        stream,
        "--endpoint-url",
        endpoint,
        "--output",
        "out.jsonl",
        "--errors",
        "err.jsonl",
        "--num-trees",
        "20",
        "--sample-size",
        "32",
        "--stop-after-idle",
        "1",
        "--poll-interval",
        "0.05",
        *args,
    ]
    env = {**os.environ, **AWS_ENV}
    with open(cwd / "stderr.txt", "wb") as err, open(cwd / "stdout.txt", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, (cwd / "stderr.txt").read_text(), usage.ru_maxrss * 1024


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines()]


def good_json(i: int, svc: str = "api") -> bytes:
    return json.dumps({"svc": svc, "i": i, "latency": 100 + (i * 7919) % 13}).encode()


def assert_exactly_once(results: list[dict[str, Any]], expected: set[int]) -> None:
    seen = [int(r["values"]["i"]) for r in results]
    assert sorted(seen) == sorted(expected), "every good event scored exactly once"


def test_hostile_json_records_never_stop_the_consumer(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 1)
    bad = [deep_json(), deep_list_unclosed(), big_int_json(), overflow_int_json(), b"\xff" * 10]
    records = [("svc", good_json(i)) for i in range(60)]
    for j, b in enumerate(bad):
        records.insert(5 + 11 * j, ("svc", b))
    put_all(kinesis, name, records)
    args = ["--key", "svc", "--values", "i,latency"]
    status, err, rss = consume(args, tmp_path, moto_endpoint, name)
    assert status == 0, err
    assert_exactly_once(lines(tmp_path / "out.jsonl"), set(range(60)))
    errors = lines(tmp_path / "err.jsonl")
    assert len(errors) == len(bad)
    assert {base64.b64decode(e["data"]) for e in errors} == set(bad)
    reasons = " | ".join(e["reason"] for e in errors)
    assert "max_json_depth" in reasons and "max_number_digits" in reasons, reasons
    err_bytes = (tmp_path / "err.jsonl").stat().st_size
    assert err_bytes <= ERROR_MULTIPLE * sum(map(len, bad)) + ERROR_SLACK
    assert rss < MAX_RSS_BYTES

    # A restart: the old records are not scored again, the new ones (and new hostile ones) are.
    more = [("svc", good_json(i)) for i in range(60, 90)] + [("svc", deep_json(50_000))]
    put_all(kinesis, name, more)
    status, err, _ = consume(args, tmp_path, moto_endpoint, name)
    assert status == 0, err
    assert_exactly_once(lines(tmp_path / "out.jsonl"), set(range(90)))
    assert len(lines(tmp_path / "err.jsonl")) == len(bad) + 1


def test_hostile_cloudwatch_logs_records_are_bounded(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 1)
    bad = {
        "gzip_bomb": gzip_bomb(),
        "many_events": cwl_many_events(),
        "malformed": cwl_malformed(),
        "vpc_as_json": cwl_vpc_as_json(),
    }
    good = [
        cwl_payload([good_json(i).decode() for i in range(k, k + 10)]) for k in range(0, 100, 10)
    ]
    records = [("svc", g) for g in good[:5]] + [("svc", b) for b in bad.values()]
    records += [("svc", g) for g in good[5:]]
    put_all(kinesis, name, records)
    status, err, rss = consume(
        ["--format", "cwl", "--key", "svc", "--values", "i,latency"], tmp_path, moto_endpoint, name
    )
    assert status == 0, err
    assert_exactly_once(lines(tmp_path / "out.jsonl"), set(range(100)))
    errors = lines(tmp_path / "err.jsonl")
    # One record-level entry per bad record carries its bytes; per-event entries do not.
    with_data = [e for e in errors if e.get("data")]
    assert sorted(len(base64.b64decode(e["data"])) for e in with_data) == sorted(
        map(len, bad.values())
    )
    reasons = " | ".join(e["reason"] for e in with_data)
    assert "max_decompressed_bytes" in reasons, reasons
    err_bytes = (tmp_path / "err.jsonl").stat().st_size
    bad_bytes = sum(map(len, bad.values()))
    assert err_bytes <= ERROR_MULTIPLE * bad_bytes + len(bad) * ERROR_SLACK, (err_bytes, bad_bytes)
    assert rss < MAX_RSS_BYTES, f"peak RSS {rss / 2**20:.0f} MiB"


def test_kpl_in_a_fresh_process_with_each_user_records_partition_key(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    from aws_kinesis_agg.aggregator import RecordAggregator

    kinesis = client("kinesis")
    create_stream(kinesis, name, 1)
    agg = RecordAggregator()
    expected: dict[str, set[int]] = {}
    for i in range(40):
        host = f"host-{i % 4}"
        expected.setdefault(host, set()).add(i)
        agg.add_user_record(host, good_json(i), explicit_hash_key=str(i % 4 * 2**120))
    aggregate = agg.clear_and_get().get_contents()[2]
    put_all(kinesis, name, [("outer-key", aggregate), ("outer-key", kpl_bad())])
    status, err, rss = consume(
        ["--format", "kpl", "--key", "@partition_key", "--values", "i,latency"],
        tmp_path,
        moto_endpoint,
        name,
    )
    assert status == 0, err
    results = lines(tmp_path / "out.jsonl")
    got: dict[str, set[int]] = {}
    for r in results:
        got.setdefault(r["key"], set()).add(int(r["values"]["i"]))
        assert r["explicit_hash_key"] == str(int(r["key"][-1]) * 2**120)
    assert got == expected
    err_bytes = (tmp_path / "err.jsonl").stat().st_size
    assert err_bytes <= ERROR_MULTIPLE * len(kpl_bad()) + ERROR_SLACK
    assert rss < MAX_RSS_BYTES


def test_vpc_flow_versions_nodata_and_a_format_without_values(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 1)
    fmt = (
        "${version} ${interface-id} ${packets} ${bytes} ${action} ${log-status} "
        "${ecs-cluster-name} ${ecs-task-id} ${reject-reason}"
    )
    lines_ = [f"8 eni-1 {10 + i % 3} {900 + i} ACCEPT OK web {i:08x} -" for i in range(50)]
    lines_ += ["8 eni-1 - - - NODATA - - -", "8 eni-1 - - - SKIPDATA - - -"]
    lines_ += ["7 eni-1 12 999 REJECT OK web abc BPA"]
    put_all(kinesis, name, [("v", cwl_payload(lines_))])
    base = ["--format", "cwl", "--message-format", "vpc-flow", "--key", "interface-id"]
    status, err, _ = consume([*base, "--vpc-format", fmt], tmp_path, moto_endpoint, name)
    assert status == 0, err
    assert len(lines(tmp_path / "out.jsonl")) == 51 and lines(tmp_path / "err.jsonl") == []
    assert "2 skipped" in err
    no_values = "${version} ${interface-id} ${action} ${log-status}"
    status, err, _ = consume([*base, "--vpc-format", no_values], tmp_path, moto_endpoint, name)
    assert status == 2 and "packets" in err and "--vpc-format" in err, err


def test_csv_records_with_several_rows(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 1)
    rows = [f"api,{i},{100 + i % 5}" for i in range(30)]
    records = [("p", "\n".join(rows[k : k + 3]).encode() + b"\n") for k in range(0, 30, 3)]
    put_all(kinesis, name, records)
    status, err, _ = consume(
        [
            "--format",
            "csv",
            "--fields",
            "svc:str,i:int,latency:float",
            "--key",
            "svc",
            "--values",
            "i,latency",
            "--passthrough",
            "all",
        ],
        tmp_path,
        moto_endpoint,
        name,
    )
    assert status == 0, err
    results = lines(tmp_path / "out.jsonl")
    assert_exactly_once(results, set(range(30)))
    assert all(r["fields"]["svc"] == "api" for r in results)
    positions = {(r["sequence_number"], r["sub_sequence_number"]) for r in results}
    assert len(positions) == 30


@pytest.mark.parametrize("hostile", ["deep", "digits"])
def test_hostile_record_is_not_retried_forever_by_lambda(hostile: str) -> None:
    """The Lambda handler reports no batchItemFailure for a record's content."""
    from rcf_fast.kinesis import MemorySink, MemoryStateStore, ScoringStep, make_decoder
    from rcf_fast.kinesis.lambda_handler import LambdaScorer

    from .test_lambda import FOREST, event

    payload = deep_json() if hostile == "deep" else big_int_json()
    errors = MemorySink()
    scorer = LambdaScorer(
        lambda: ScoringStep(
            make_decoder("json"), FOREST, key_field="svc", value_fields=["latency"], errors=errors
        ),
        lambda shard: MemoryStateStore(),
    )
    ev = event([good_json(0), payload, good_json(1)])
    assert scorer.handle(ev) == {"batchItemFailures": []}
    assert len(errors.items) == 1
