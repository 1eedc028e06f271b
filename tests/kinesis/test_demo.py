"""`examples/kinesis_demo.py` end to end: embedded Kinesis, both replays, alerts, files, plot."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_under_two_minutes_and_accounts_for_every_record(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "kinesis_demo.py"), "--out", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert elapsed < 120
    assert "counts add up: True" in proc.stdout
    assert "planted incident minutes found: 8/8" in proc.stdout
    assert "2014-11-02" in proc.stdout and "2015-01-27" in proc.stdout  # marathon, blizzard
    alerts = [line for line in proc.stdout.splitlines() if " ALERT " in line]
    assert any("bytes high" in a for a in alerts) and any("value low" in a for a in alerts)
    anomalies = [json.loads(x) for x in (tmp_path / "anomalies.jsonl").read_text().splitlines()]
    errors = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 5 and all(
        {"reason", "data", "shard_id", "sequence_number"} <= set(e) for e in errors
    )
    assert anomalies and all("attribution" in a for a in anomalies)
    assert (tmp_path / "kinesis_demo.png").stat().st_size > 10_000
