"""``rcf-fast consume`` end to end against moto's server (subprocess, as users run it)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .conftest import create_stream
from .servers import AWS_ENV
from .test_wire import put_all


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, **AWS_ENV}
    return subprocess.run(
        [sys.executable, "-m", "rcf_fast.cli", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def metric_records(rng: random.Random, start: int, n: int, spike: int = -1) -> list[Any]:
    out = []
    for i in range(start, start + n):
        v = 100 + rng.gauss(0, 1) if i != spike else 400.0
        out.append(("svc", json.dumps({"svc": "api", "i": i, "latency": round(v, 2)}).encode()))
    return out


def metric_consume(
    name: str, endpoint: str, *extra: str, trees: str = "30", samples: str = "64"
) -> list[str]:
    """``rcf-fast consume`` of ``metric_records`` (key svc, value latency) to out.jsonl."""
    return [
        "consume",
        "--stream",
        name,
        "--endpoint-url",
        endpoint,
        "--key",
        "svc",
        "--values",
        "latency",
        "--num-trees",
        trees,
        "--sample-size",
        samples,
        "--output",
        "out.jsonl",
        "--poll-interval",
        "0.05",
        *extra,
    ]


def test_consume_to_files_then_resume(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 2)
    rng = random.Random(0)
    first = metric_records(rng, 0, 300, spike=250)
    first.insert(10, ("svc", b"{garbage"))
    put_all(kinesis, name, first)
    common = metric_consume(
        name, moto_endpoint, "--errors", "err.jsonl", "--stop-after-idle", "1", "--alerts"
    ) + ["--alert-score", "3"]
    proc = run_cli(common, tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    errors = [json.loads(x) for x in (tmp_path / "err.jsonl").read_text().splitlines()]
    assert len(results) == 300 and len(errors) == 1
    assert errors[0]["reason"].startswith("invalid JSON") and errors[0]["data"] == "e2dhcmJhZ2U="
    alerts = [line for line in proc.stdout.splitlines() if line.startswith("ALERT")]
    assert alerts and any("latency high" in a for a in alerts)
    top = max(results, key=lambda r: r["score"])
    assert top["values"]["latency"] == 400.0
    assert "301 records, 300 scored, 1 errors" in proc.stderr
    assert (tmp_path / ".rcf-fast" / f"{name}.state").exists()

    # New records only: the second run resumes from the checkpoints and the saved forests.
    second = metric_records(rng, 300, 50)
    put_all(kinesis, name, second)
    proc = run_cli(common, tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(results) == 350
    assert len({(r["shard_id"], r["sequence_number"]) for r in results}) == 350  # none scored twice
    new_latencies = [json.loads(d)["latency"] for _, d in second]
    assert sorted(r["values"]["latency"] for r in results[300:]) == sorted(new_latencies)


def test_consume_stream_to_stream_with_dynamodb_and_s3(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    kinesis = client("kinesis")
    for stream, shards in ((name, 3), (name + "-out", 1), (name + "-err", 1)):
        create_stream(kinesis, stream, shards)
    client("s3").create_bucket(Bucket=name)
    records = metric_records(random.Random(1), 0, 200, spike=150) + [("svc", b"\xff\xfe")]
    put_all(kinesis, name, records)
    proc = run_cli(
        [
            "consume",
            "--stream",
            name,
            "--endpoint-url",
            moto_endpoint,
            "--key",
            "svc",
            "--num-trees",
            "30",
            "--sample-size",
            "64",
            "--output-stream",
            name + "-out",
            "--error-stream",
            name + "-err",
            "--min-score",
            "1.5",
            "--checkpoint",
            f"dynamodb://{name}-leases",
            "--state",
            f"s3://{name}/rcf/state",
            "--stop-after-idle",
            "1",
            "--poll-interval",
            "0.05",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr

    def read(stream: str) -> list[Any]:
        shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        it = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        return [
            json.loads(r["Data"])
            for r in kinesis.get_records(ShardIterator=it, Limit=10000)["Records"]
        ]

    out, err = read(name + "-out"), read(name + "-err")
    assert len(err) == 1 and "not UTF-8" in err[0]["reason"]
    assert out and all(r["score"] >= 1.5 for r in out)
    assert any(r["values"]["latency"] == 400.0 for r in out)
    # The schema was discovered: 'i' and 'latency' are numeric, 'svc' is the key.
    assert set(out[0]["values"]) == {"i", "latency"}
    leases = client("dynamodb").scan(TableName=f"{name}-leases")["Items"]
    assert len(leases) == 3 and all("owner" not in item for item in leases)  # released at exit
    assert sum("sequence_number" in item for item in leases) >= 1
    # Per-key state under the prefix: meta, a position per shard read, one object per key.
    objects = client("s3").list_objects_v2(Bucket=name, Prefix="rcf/state/")["Contents"]
    names = {o["Key"][len("rcf/state/") :] for o in objects}
    assert "meta" in names and any(n.startswith("pos%2F") for n in names)
    assert {n[len("key%2F") :] for n in names if n.startswith("key%2F")} >= {r["key"] for r in out}


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("rcf-fast")
    assert script.exists(), "pyproject's [project.scripts] rcf-fast entry point is not installed"
    proc = subprocess.run(
        [str(script), "--version"], check=False, capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0 and proc.stdout.startswith("rcf-fast ")


def test_consume_alerts_by_per_key_grade_by_default(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 1)
    put_all(kinesis, name, metric_records(random.Random(4), 0, 400, spike=300))
    args = metric_consume(
        name, moto_endpoint, "--stop-after-idle", "1", "--passthrough", "i", "--alerts"
    )
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(results) == 400 and all(0.0 <= r["grade"] <= 1.0 for r in results)
    flagged = [r for r in results if r["is_anomaly"]]
    alerts = [line for line in proc.stdout.splitlines() if line.startswith("ALERT")]
    # One line per graded alert (an episode's start, not every score above a line), explained;
    # the spike (event 300) is in an alerted episode.
    assert len(alerts) == len(flagged) >= 1
    assert any(300 - 20 <= r["fields"]["i"] <= 300 for r in flagged)
    assert all(r["attribution"] is not None and r["grade"] > 0 for r in flagged)
    assert all("grade=" in a and ("latency high" in a or "latency low" in a) for a in alerts)
    assert f"{len(flagged)} anomalies (per-key grade)" in proc.stderr
    # Fewer alerts than a fixed line would give on the same scores.
    assert len(flagged) <= sum(r["score"] >= 1.0 for r in results)


def test_config_errors_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    proc = run_cli(["consume", "--stream", "s", "--fields", "v:double"], tmp_path)
    assert proc.returncode == 2
    assert "field 'v' has unknown type 'double'" in proc.stderr
    proc = run_cli(["consume", "--stream", "s", "--format", "xml"], tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'xml'" in proc.stderr
    proc = run_cli(["consume", "--stream", "s", "--values", "v", "--max-keys", "0"], tmp_path)
    assert proc.returncode == 2 and "--max-keys 0: expected at least 1" in proc.stderr
    proc = run_cli(
        ["consume", "--stream", "s", "--values", "v", "--alert-score", "3", "--z-factor", "2"],
        tmp_path,
    )
    assert proc.returncode == 2 and "exclude each other" in proc.stderr
    proc = run_cli(["consume", "--stream", "s", "--values", "v", "--z-factor", "-1"], tmp_path)
    assert proc.returncode == 2 and "alert grading" in proc.stderr


def test_aws_errors_are_one_clear_line(moto_endpoint: str, tmp_path: Path) -> None:
    proc = run_cli(
        ["consume", "--stream", "no-such-stream", "--endpoint-url", moto_endpoint], tmp_path
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("rcf-fast: error: An error occurred (ResourceNotFoundException)")
    assert "Traceback" not in proc.stderr


def test_sigterm_persists_checkpoints_and_exits_cleanly(
    moto_endpoint: str, client: Callable[[str], Any], name: str, tmp_path: Path
) -> None:
    kinesis = client("kinesis")
    create_stream(kinesis, name, 1)
    put_all(kinesis, name, metric_records(random.Random(2), 0, 100))
    args = metric_consume(
        name, moto_endpoint, "--persist-interval", "3600", trees="20", samples="32"
    )
    env = {**os.environ, **AWS_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rcf_fast.cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = tmp_path / "out.jsonl"
    state = tmp_path / ".rcf-fast" / f"{name}.state"
    try:
        # With an hour between persists nothing is written until the process is told to stop.
        # However far it got by then (a busy machine may not have read every record yet),
        # what it applied is persisted and the next run does exactly the rest.
        time.sleep(4.0)
        assert proc.poll() is None and not state.exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    first = _records_scored(err)
    assert first[0] == first[1] and 0 <= first[0] <= 100, err
    assert (len(out.read_text().splitlines()) if out.exists() else 0) == first[0]
    assert state.exists() or first[0] == 0
    again = run_cli([*args, "--stop-after-idle", "0.5"], tmp_path)
    assert again.returncode == 0, again.stderr
    rest = _records_scored(again.stderr)
    assert rest[0] == rest[1] and first[0] + rest[0] == 100, again.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({int(r["sequence_number"]) for r in lines}) == len(lines) == 100


def _records_scored(err: str) -> tuple[int, int]:
    """(records, scored) from the consumer's final summary line."""
    found = re.findall(r"(\d+) records, (\d+) scored", err)
    assert found, err
    return int(found[-1][0]), int(found[-1][1])
