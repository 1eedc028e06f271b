"""Helpers shared by the KCL scale-out tests: KCL v3 MultiLangDaemon workers (``kclpy-ext`` jars,
``rcf_fast.kinesis.kcl`` as the record processor) against the local ministack emulator, their
JSON-lines outputs, and a clean single pass to compare with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kinesis.kcl_env import java, kcl_classpath
from kinesis.servers import AWS_ENV, free_port
from rcf_fast.kinesis import ScoringStep, make_decoder
from rcf_fast.kinesis.keystate import KeyedStateStore
from rcf_fast.kinesis.records import RawRecord
from rcf_fast.kinesis.stores.records import DirRecords

FOREST = {"num_trees": 20, "sample_size": 32, "seed": 1}


def saved_forests(workdir: Path) -> dict[str, bytes]:
    """Every key's saved forest (``to_bytes()``), read from the workers' per-key state store
    (``workdir/state``) through a scoring step attached to it."""
    step = ScoringStep(make_decoder("json"), FOREST, key_field="host", value_fields=["cpu"])
    step.attach_state(KeyedStateStore(DirRecords(str(workdir / "state"))))
    return {k: f.to_bytes() for k, f in step.forests}


def start_worker(
    workdir: Path,
    name: str,
    endpoint: str,
    stream: str,
    app: str,
    *,
    state: str | None = None,
    extra_properties: dict[str, str] | None = None,
) -> subprocess.Popen:
    """A MultiLangDaemon with workerId ``name`` in its own process group; results and errors go
    to files per worker and shard, the state to ``state`` (default: the directory
    ``workdir/state``, shared by every worker and shard)."""
    script = workdir / "rcf_kcl_app.sh"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m rcf_fast.kinesis.kcl\n")
    script.chmod(0o755)
    props = {
        "executableName": str(script),
        "streamName": stream,
        "applicationName": app,
        "AWSCredentialsProvider": "DefaultCredentialsProvider",
        "processingLanguage": "python/3",
        "initialPositionInStream": "TRIM_HORIZON",
        "regionName": "us-east-1",
        "kinesisEndpoint": endpoint,
        "dynamoDBEndpoint": endpoint,
        "metricsLevel": "NONE",
        "idleTimeBetweenReadsInMillis": "250",
        "failoverTimeMillis": "3000",
        "leaseAssignmentIntervalMillis": "1000",
        "parentShardPollIntervalMillis": "1000",
        "shardSyncIntervalMillis": "5000",
        "workerId": name,
        **(extra_properties or {}),
    }
    path = workdir / f"{name}.properties"
    path.write_text("".join(f"{k} = {v}\n" for k, v in props.items()))
    env = {
        **os.environ,
        **AWS_ENV,
        "RCF_KEY": "host",
        "RCF_VALUES": "cpu",
        "RCF_FOREST": json.dumps(FOREST),
        "RCF_OUTPUT": str(workdir / f"results-{name}-{{shard_id}}.jsonl"),
        "RCF_ERRORS": str(workdir / f"errors-{name}-{{shard_id}}.jsonl"),
        # One per-key store for every shard (no {shard_id}): keys find their forests on any
        # worker and after a reshard.
        "RCF_STATE": state or str(workdir / "state"),
        "RCF_CHECKPOINT_INTERVAL": "0.5",
    }
    cmd = [
        java(),
        "-Dhttp.proxyHost=127.0.0.1",
        f"-Dhttp.proxyPort={free_port()}",
        "-Dhttp.nonProxyHosts=127.0.0.1|localhost",
        "-Daws.disableEc2Metadata=true",
        "-cp",
        kcl_classpath([str(workdir)]),
        "software.amazon.kinesis.multilang.MultiLangDaemon",
        "--properties-file",
        str(path),
    ]
    with open(workdir / f"kcl-{name}.log", "ab") as log:
        return subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def outputs(workdir: Path, worker: str = "*") -> list[dict[str, Any]]:
    out = []
    for path in sorted(workdir.glob(f"results-{worker}-*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # the last line of a killed worker may be cut short
    return out


def ids(rows: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {(r["shard_id"], r["sequence_number"], r["sub_sequence_number"]) for r in rows}


def wait_until(cond: Any, what: str, procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"a KCL worker exited with {p.returncode} waiting for {what}")
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def put(kinesis: Any, stream: str, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), 100):
        batch = [
            {"PartitionKey": r["host"], "Data": json.dumps(r).encode()} for r in rows[i : i + 100]
        ]
        assert kinesis.put_records(StreamName=stream, Records=batch)["FailedRecordCount"] == 0


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the daemon and its record processors (its process group), no shutdown."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def shard_records(kinesis: Any, stream: str, shard_id: str) -> list[RawRecord]:
    """Every record of a shard, read back from the stream from TRIM_HORIZON."""
    it = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    recs: list[RawRecord] = []
    while it:
        resp = kinesis.get_records(ShardIterator=it, Limit=1000)
        recs += [
            RawRecord(shard_id, r["SequenceNumber"], r["Data"], r["PartitionKey"])
            for r in resp["Records"]
        ]
        if not resp["Records"]:
            break
        it = resp.get("NextShardIterator")
    return recs


def lease_items(ddb: Any, table: str) -> list[dict[str, Any]]:
    """The KCL lease table's items (empty until the table exists)."""
    try:
        return list(ddb.scan(TableName=table)["Items"])
    except ddb.exceptions.ResourceNotFoundException:
        return []
