"""examples/flink/rcf_flink_job.py (the Managed Service for Apache Flink template) run locally on a
collection source: the same pipeline, its output checked against KeyedForests' seeding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .flinkenv import reference_grades, reference_scores

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flink"
sys.path.insert(0, str(EXAMPLE))
import rcf_flink_job as example


def test_properties_are_validated() -> None:
    props = example.load_properties(EXAMPLE / "application_properties.json")
    settings = example.rcf_settings(props)
    assert settings["seed"] == 7 and settings["value_fields"] == ["cpu"]
    assert settings["params"] == {"shingle_size": 4, "num_trees": 50, "sample_size": 128}
    assert settings["grading"] == {"warmup": 50}
    off = example.rcf_settings({"rcf": {"seed": "1", "grading": "False", "warmup": "5"}})
    assert off["grading"] is False
    with pytest.raises(ValueError, match="rcf.grading must be true or false"):
        example.rcf_settings({"rcf": {"seed": "1", "grading": "maybe"}})
    with pytest.raises(ValueError, match="rcf.seed is required"):
        example.rcf_settings({"rcf": {"key_field": "host"}})
    with pytest.raises(ValueError, match="unknown properties"):
        example.rcf_settings({"rcf": {"seed": "1", "num_tree": "5"}})


def test_parse_keeps_broken_records_for_the_bad_rows_output() -> None:
    assert example.parse('{"h": "a", "v": 1, "t": 5}', "h", ["v"], "t") == ("a", [1.0], 5)
    for text in ["not json", '{"h": "a"}', '{"h": "a", "v": "x"}', "[1]", '{"h": "a", "v": {}}']:
        key, values, ts = example.parse(text, "h", ["v"], "t")
        assert key.startswith("unreadable: ") and values == [] and ts is None


def test_local_run_of_the_managed_flink_job(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "rcf_flink_job.py"), "--local", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    settings = example.rcf_settings(
        example.load_properties(EXAMPLE / "application_properties.json")
    )
    rows = []
    for text in example.demo_records():
        key, values, _ = example.parse(text, "host", ["cpu"], "ts")
        if values:
            rows.append((key, values))
    expected = reference_scores(rows, 1, settings["seed"], **settings["params"])
    expected_grades = reference_grades(expected, **settings["grading"])
    got: dict[str, list[float]] = {}
    grades: dict[str, list[tuple[float, bool]]] = {}
    times: dict[str, list[int]] = {}
    for r in result["score"]:
        got.setdefault(r["key"], []).append(r["score"])
        grades.setdefault(r["key"], []).append((r["grade"], r["is_anomaly"]))
        times.setdefault(r["key"], []).append(r["event_time"])
        assert r["count"] == len(got[r["key"]])
    assert got == expected
    assert grades == expected_grades
    assert all(t == sorted(t) and t[0] == 1_700_000_000_000 for t in times.values())
    assert len(result["bad"]) == 2
    assert {b["key"].split(":")[0] for b in result["bad"]} == {"unreadable"}
    spikes = [a for a in result["anomaly"] if a["key"] == "web-2" and a["values"] == [9.0]]
    assert len(spikes) == 1 and spikes[0]["grade"] > 0
    assert spikes[0]["attribution"]["high"][0] > spikes[0]["attribution"]["low"][0]
    assert len(result["anomaly"]) == sum(a for v in grades.values() for _, a in v)
