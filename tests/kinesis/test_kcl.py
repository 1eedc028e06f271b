"""The KCL v3 record processor: unit tests with a fake checkpointer, and one end-to-end run of
the real KCL MultiLangDaemon (Java 17, ``kclpy-ext`` jars) against ministack on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rcf_fast.kinesis import (
    ConfigError,
    KeyedForests,
    MemorySink,
    MemoryStateStore,
    ScoringStep,
    make_decoder,
)
from rcf_fast.kinesis.kcl import RcfRecordProcessor, processor_from_env

from .kcl_env import ensure_ministack, java, kcl_classpath
from .payloads import kpl_payload
from .servers import AWS_ENV, free_port, ministack_stream
from .servers import ministack as run_ministack

FOREST = {"num_trees": 20, "sample_size": 32, "seed": 1}


class FakeCheckpointer:
    def __init__(self, fail_first: str | None = None) -> None:
        self.calls: list[Any] = []
        self.fail_first = fail_first

    def checkpoint(
        self, sequence_number: str | None = None, sub_sequence_number: int | None = None
    ) -> None:
        if self.fail_first:
            err, self.fail_first = self.fail_first, None
            raise type("CheckpointError", (Exception,), {"value": err})(err)
        self.calls.append((sequence_number, sub_sequence_number))


def kcl_record(seq: str, sub: int, data: bytes) -> SimpleNamespace:
    return SimpleNamespace(
        sequence_number=seq,
        sub_sequence_number=sub,
        binary_data=data,
        partition_key="pk",
        approximate_arrival_timestamp=None,
    )


def test_processor_persists_before_checkpointing_and_skips_replays() -> None:
    store = MemoryStateStore()
    results = MemorySink()
    order: list[str] = []

    class TracingStore(MemoryStateStore):
        def save(self, data: bytes) -> None:
            order.append("save")
            store.save(data)

        def load(self) -> bytes | None:
            return store.load()

    class TracingCheckpointer(FakeCheckpointer):
        def checkpoint(
            self, sequence_number: str | None = None, sub_sequence_number: int | None = None
        ) -> None:
            order.append("checkpoint")
            super().checkpoint(sequence_number, sub_sequence_number)

    def make_step(shard_id: str) -> ScoringStep:
        return ScoringStep(
            make_decoder("json"), FOREST, key_field="k", value_fields=["v"], results=results
        )

    proc = RcfRecordProcessor(make_step, lambda s: TracingStore(), checkpoint_interval=0.0)
    proc.initialize(
        SimpleNamespace(shard_id="shardId-000000000007", sequence_number="TRIM_HORIZON")
    )
    # Three user records of one KPL aggregate share a sequence number (KCL deaggregated them).
    recs = [kcl_record("100", i, json.dumps({"k": "a", "v": i}).encode()) for i in range(3)]
    recs.append(kcl_record("101", 0, b"{bad"))
    cp = TracingCheckpointer(fail_first="ThrottlingException")
    proc.process_records(SimpleNamespace(records=recs, checkpointer=cp, millis_behind_latest=0))
    assert order == [
        "save",
        "checkpoint",
        "checkpoint",
    ]  # state first; throttled checkpoint retried
    assert cp.calls == [("101", 0)]
    assert [r["sub_sequence_number"] for r in results.items] == [0, 1, 2]
    # A new processor (failover) gets the same records again: all skipped.
    again = RcfRecordProcessor(make_step, lambda s: TracingStore(), checkpoint_interval=0.0)
    again.initialize(SimpleNamespace(shard_id="shardId-000000000007", sequence_number="100"))
    again.process_records(
        SimpleNamespace(records=recs, checkpointer=FakeCheckpointer(), millis_behind_latest=0)
    )
    assert len(results.items) == 3
    forests = KeyedForests(FOREST)
    forests.load_bytes(store.data or b"")
    assert forests.forests["a"].entries_seen == 3
    end = FakeCheckpointer()
    again.shard_ended(SimpleNamespace(checkpointer=end))
    assert end.calls == [(None, None)]  # SHARD_END checkpoint lets the children start


def test_processor_refuses_stdout_sinks() -> None:
    with pytest.raises(ConfigError, match="stdout belongs to the KCL"):
        processor_from_env({"RCF_OUTPUT": "-"})


@pytest.fixture(scope="module")
def ministack(aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_ministack([str(ensure_ministack())], tmp_path_factory.mktemp("ministack")) as url:
        yield url


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    return free_port()


def start_daemon(workdir: Path, endpoint: str, stream: str, app: str) -> subprocess.Popen:
    script = workdir / "rcf_kcl_app.sh"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m rcf_fast.kinesis.kcl\n")
    script.chmod(0o755)
    props = workdir / "app.properties"
    props.write_text(
        "\n".join(
            [
                f"executableName = {script}",
                f"streamName = {stream}",
                f"applicationName = {app}",
                "AWSCredentialsProvider = DefaultCredentialsProvider",
                "processingLanguage = python/3",
                "initialPositionInStream = TRIM_HORIZON",
                "regionName = us-east-1",
                f"kinesisEndpoint = {endpoint}",
                f"dynamoDBEndpoint = {endpoint}",
                "metricsLevel = NONE",
                "idleTimeBetweenReadsInMillis = 250",
                "failoverTimeMillis = 3000",
                "leaseAssignmentIntervalMillis = 1000",
                "parentShardPollIntervalMillis = 1000",
                "shardSyncIntervalMillis = 5000",
                # One fixed worker id: a restarted daemon is the same worker and takes its
                # leases back at once.
                "workerId = rcf-kcl-test-worker",
                "",
            ]
        )
    )
    env = {
        **os.environ,
        **AWS_ENV,
        "RCF_KEY": "host",
        "RCF_VALUES": "cpu",
        "RCF_FOREST": json.dumps(FOREST),
        "RCF_OUTPUT": str(workdir / "results-{shard_id}.jsonl"),
        "RCF_ERRORS": str(workdir / "errors-{shard_id}.jsonl"),
        "RCF_STATE": str(workdir / "state-{shard_id}.bin"),
        "RCF_CHECKPOINT_INTERVAL": "0.5",
    }
    cmd = [
        java(),
        # The KCL probes EC2/ECS metadata (169.254.169.254) at start; send any plain-Java HTTP
        # that is not for 127.0.0.1 to a closed local port so the test never leaves the host.
        "-Dhttp.proxyHost=127.0.0.1",
        f"-Dhttp.proxyPort={closed_port()}",
        "-Dhttp.nonProxyHosts=127.0.0.1|localhost",
        "-Daws.disableEc2Metadata=true",
        "-cp",
        kcl_classpath([str(workdir)]),
        "software.amazon.kinesis.multilang.MultiLangDaemon",
        "--properties-file",
        str(props),
    ]
    with open(workdir / "kcl.log", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def collect(workdir: Path, kind: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(workdir.glob(f"{kind}-*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return out


def wait_for(workdir: Path, total: int, proc: subprocess.Popen, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"KCL daemon exited with {proc.returncode}; see {workdir / 'kcl.log'}"
            )
        log = (workdir / "kcl.log").read_bytes().decode("utf-8", "replace")
        if "Failed to initialize child process" in log:
            # Our processor died (import error, bad config): fail now, with its stderr.
            lines = [ln for ln in log.splitlines() if "Received error line from subprocess" in ln]
            raise AssertionError("record processor failed to start:\n" + "\n".join(lines[-15:]))
        if len(collect(workdir, "results")) + len(collect(workdir, "errors")) >= total:
            time.sleep(2.0)  # a checkpoint interval or two, so the lease table catches up
            return
        time.sleep(0.5)
    raise AssertionError(
        f"KCL did not deliver {total} outputs in {timeout}s; see {workdir / 'kcl.log'}"
    )


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)  # graceful: shutdown_requested -> persist + checkpoint
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_kcl_multilang_daemon_end_to_end(ministack: str, tmp_path: Path) -> None:
    import boto3

    kinesis, stream, app = ministack_stream(ministack, "kcl", 2, tmp_path)
    rng = random.Random(3)
    records = []
    for i in range(240):
        host = ("web", "db")[i % 2]
        cpu = 140.0 if (host, i) == ("db", 181) else round(40 + rng.gauss(0, 1), 3)
        records.append(
            {"PartitionKey": host, "Data": json.dumps({"host": host, "cpu": cpu}).encode()}
        )
    records.insert(50, {"PartitionKey": "web", "Data": b"{not json"})
    agg = [json.dumps({"host": "web", "cpu": 41.0 + k / 10}).encode() for k in range(3)] + [
        b"{bad user record"
    ]
    records.append({"PartitionKey": "web", "Data": kpl_payload("web", agg)})
    assert kinesis.put_records(StreamName=stream, Records=records)["FailedRecordCount"] == 0
    n_events, n_bad = 240 + 1 + len(agg), 2

    proc = start_daemon(tmp_path, ministack, stream, app)
    try:
        wait_for(tmp_path, n_events, proc)
    finally:
        stop(proc)
    results, errors = collect(tmp_path, "results"), collect(tmp_path, "errors")
    ids = [(r["shard_id"], r["sequence_number"], r["sub_sequence_number"]) for r in results]
    assert (
        len(ids) == len(set(ids))
        and len(results) + len(errors) == n_events
        and len(errors) == n_bad
    )
    assert max(results, key=lambda r: r["score"])["values"]["cpu"] == 140.0
    kpl = [r for r in results if r["values"]["cpu"] in (41.0, 41.1, 41.2)]
    assert sorted(r["sub_sequence_number"] for r in kpl) == [0, 1, 2]  # deaggregated by the KCL
    assert {e["reason"].split(":")[0] for e in errors} == {"invalid JSON"}
    ddb = boto3.client("dynamodb", endpoint_url=ministack, region_name="us-east-1")
    leases = {it["leaseKey"]["S"]: it for it in ddb.scan(TableName=app)["Items"]}
    assert len(leases) == 2
    last: dict[str, int] = {}
    for r in results + errors:
        last[r["shard_id"]] = max(last.get(r["shard_id"], 0), int(r["sequence_number"]))
    for shard_id, seq in last.items():
        assert (
            int(leases[shard_id]["checkpoint"]["S"]) == seq
        )  # checkpointed exactly what the state covers

    # Restart after more records: the state and checkpoints carry over, only new records are scored.
    more = [
        {"PartitionKey": "db", "Data": json.dumps({"host": "db", "cpu": 40.5}).encode()}
        for _ in range(10)
    ]
    kinesis.put_records(StreamName=stream, Records=more)
    proc = start_daemon(tmp_path, ministack, stream, app)
    try:
        wait_for(tmp_path, n_events + 10, proc)
    finally:
        stop(proc)
    results2 = collect(tmp_path, "results")
    assert len(results2) == len(results) + 10
    ids2 = {(r["shard_id"], r["sequence_number"], r["sub_sequence_number"]) for r in results2}
    assert len(ids2) == len(results2)


def test_lease_lost_saves_nothing_and_shutdown_after_it_is_a_no_op() -> None:
    store = MemoryStateStore()

    def make_step(shard_id: str) -> ScoringStep:
        return ScoringStep(make_decoder("json"), FOREST, key_field="k", value_fields=["v"])

    proc = RcfRecordProcessor(make_step, lambda s: store, checkpoint_interval=3600)
    proc.initialize(
        SimpleNamespace(shard_id="shardId-000000000001", sequence_number="TRIM_HORIZON")
    )
    recs = [kcl_record(str(10 + i), 0, json.dumps({"k": "a", "v": i}).encode()) for i in range(5)]
    proc.process_records(SimpleNamespace(records=recs, checkpointer=FakeCheckpointer()))
    assert store.saves == 0  # an hour between checkpoints: nothing persisted yet
    proc.lease_lost(SimpleNamespace())
    cp = FakeCheckpointer()
    proc.shutdown_requested(SimpleNamespace(checkpointer=cp))
    assert store.saves == 0 and cp.calls == []  # the next owner replays from the last checkpoint
