"""`rcf-fast score`: CSV/JSON lines in, every row plus its score out; hostile input; streaming."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rcf_fast
from rcf_fast import cli

ROOT = Path(__file__).resolve().parent.parent
TAXI = ROOT / "data" / "nyc_taxi.csv"
CMD = [sys.executable, "-m", "rcf_fast.cli", "score"]


def score(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["score", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def expected(rows, **kw) -> np.ndarray:
    """What the library gives for the same rows and options (the CLI's default seed is 0)."""
    x = np.asarray(rows, dtype=float)
    f = rcf_fast.RandomCutForest(dimensions=1 if x.ndim == 1 else x.shape[1], seed=0, **kw)
    return f.score_update_many(x)


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def series_csv(n: int = 400, spike: int = 300) -> tuple[str, np.ndarray]:
    v = np.sin(np.arange(n) / 5.0) * 10 + 50
    v[spike] += 40
    lines = ["timestamp,host,value"] + [
        f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d},web-1,{x!r}"
        for i, x in enumerate(v.tolist())
    ]
    return "\n".join(lines) + "\n", v


def test_nab_file_as_it_is(capsys):
    code, out, err = score(capsys, str(TAXI), "--shingle-size", "4", "--num-trees", "50")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["timestamp", "value", "score", "grade", "is_anomaly", "explanation"]
    values = np.loadtxt(TAXI, delimiter=",", skiprows=1, usecols=1)
    assert len(rows) == len(values) + 1
    with TAXI.open() as fh:
        original = list(csv.reader(fh))
    assert [r[:2] for r in rows] == original  # every input row, unchanged
    got = np.array([float(r[2]) for r in rows[1:]])
    np.testing.assert_array_equal(got, expected(values, shingle_size=4, num_trees=50))
    assert f"{len(values)} rows scored, 0 skipped" in err


def test_columns_and_forest_flags(capsys, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    text = "ts,a,b,c,label\n" + "".join(
        f"{i},{r[0]},{r[1]},{r[2]},x\n" for i, r in enumerate(x.tolist())
    )
    path = write(tmp_path, "m.csv", text)
    code, out, _ = score(
        capsys,
        str(path),
        "--columns",
        "a,c",
        "--timestamp",
        "ts",
        "--num-trees",
        "20",
        "--sample-size",
        "64",
        "--seed",
        "0",
        "--time-decay",
        "0.01",
        "--shingle-size",
        "2",
        "--output-after",
        "10",
    )
    assert code == 0
    got = np.array([float(r["score"]) for r in csv.DictReader(io.StringIO(out))])
    want = expected(
        x[:, [0, 2]], num_trees=20, sample_size=64, time_decay=0.01, shingle_size=2, output_after=10
    )
    np.testing.assert_array_equal(got, want)
    assert got.max() > 0


def test_default_columns_are_the_numeric_ones(capsys, tmp_path):
    text, v = series_csv()
    code, out, err = score(capsys, str(write(tmp_path, "s.csv", text)), "--threshold", "2")
    assert "with score >= 2\n" in err
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    got = np.array([float(r["score"]) for r in rows])
    np.testing.assert_array_equal(got, expected(v))  # host and timestamp are not fed
    assert rows[300]["host"] == "web-1"
    assert int(np.argmax(got)) == 300


def test_jsonl_in_and_out_keeps_every_field(capsys, tmp_path):
    v = np.cos(np.arange(200) / 3.0)
    lines = [
        json.dumps({"t": i, "v": float(x), "meta": {"k": [1, 2]}, "ok": True})
        for i, x in enumerate(v)
    ]
    lines[50] = json.dumps({"t": 50, "v": float(v[50]), "extra": "new key"})
    path = write(tmp_path, "in.jsonl", "\n".join(lines) + "\n")
    out_path = tmp_path / "out.jsonl"
    code, out, _ = score(capsys, str(path), "-o", str(out_path), "--columns", "v")
    assert code == 0 and out == ""
    objs = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert len(objs) == 200
    assert objs[0]["meta"] == {"k": [1, 2]} and objs[0]["ok"] is True
    assert objs[50]["extra"] == "new key"
    np.testing.assert_array_equal([o["score"] for o in objs], expected(v))


def test_csv_to_jsonl_writes_numbers(capsys, tmp_path):
    path = write(tmp_path, "a.csv", "timestamp,value\n2024-01-01,7\n2024-01-02,7.5\n")
    code, out, _ = score(capsys, str(path), "--output-format", "jsonl")
    assert code == 0
    objs = [json.loads(line) for line in out.splitlines()]
    assert objs[0] == {
        "timestamp": "2024-01-01",
        "value": 7,
        "score": 0.0,
        "grade": 0.0,
        "is_anomaly": False,
        "explanation": None,
    }
    assert objs[1]["value"] == 7.5


def test_bad_rows_are_reported_with_line_numbers_and_skipped(capsys, tmp_path):
    good = [float(x) for x in np.sin(np.arange(120) / 4.0)]
    lines = ["timestamp,value"] + [f"t{i},{x!r}" for i, x in enumerate(good)]
    bad = {
        5: "t,abc",  # wrong type
        9: "t,1,2,3",  # too many fields
        12: "t",  # truncated
        20: "t,nan",
        21: "t,inf",
        22: "t,1e39",  # beyond float32
        30: 't,"unterminated',
    }
    for at, text in sorted(bad.items()):
        lines.insert(at - 1, text)
    blob = ("\n".join(lines) + "\n").encode()
    garbage_line = len(lines) + 1
    blob += b"\x00\xff\xfe\x80garbage\x9f\n" + b"t,1.0" + b"9" * (1 << 21) + b"\n" + b"t,0.5\n"
    path = write(tmp_path, "bad.csv", blob)
    code, out, err = score(capsys, str(path))
    assert code == 0
    reported = sorted(
        int(line.split("line ")[1].split(":")[0]) for line in err.splitlines() if ": line " in line
    )
    assert reported == sorted([*bad, garbage_line, garbage_line + 1])
    assert "'abc' is not a number" in err and "longer than" in err and "not UTF-8" in err
    assert "expected 2 like the header" in err and "finite float32" in err
    rows = list(csv.reader(io.StringIO(out)))[1:]
    assert [r[0] for r in rows] == [f"t{i}" for i in range(len(good))] + ["t"]
    got = np.array([float(r[2]) for r in rows])
    np.testing.assert_array_equal(got, expected([*good, 0.5]))


def test_hostile_json_lines(capsys, tmp_path):
    rows = [json.dumps({"v": float(i % 7)}) for i in range(60)]
    hostile = [
        "[1, 2, 3]",  # not an object
        '"just a string"',
        '{"v": true}',  # bool is not a number
        '{"v": "12abc"}',
        '{"v": null}',
        '{"w": 1}',  # no value field
        '{"v": 1',  # truncated
        "[" * 100_000 + "]" * 100_000,  # nesting deep enough to overflow a recursive parser
        '{"v": ' + "9" * 400 + "}",  # an integer beyond float range
        '{"v": NaN}',
    ]
    text = "\n".join(rows[:10] + hostile + rows[10:]) + "\n"
    code, out, err = score(capsys, str(write(tmp_path, "h.jsonl", text)))
    assert code == 0
    assert err.count("row skipped") == len(hostile)
    for k in range(len(hostile)):
        assert f"line {11 + k}:" in err
    rows = list(csv.DictReader(io.StringIO(out)))  # JSON lines in, CSV out (the default)
    assert list(rows[0]) == ["v", "score", "grade", "is_anomaly", "explanation"]
    got = [float(r["score"]) for r in rows]
    np.testing.assert_array_equal(got, expected([float(i % 7) for i in range(60)]))


def test_bom_crlf_and_blank_lines(capsys, tmp_path):
    text, v = series_csv(100, 50)
    data = b"\xef\xbb\xbf" + text.replace("\n", "\r\n\r\n").encode()
    code, out, _ = score(capsys, str(write(tmp_path, "w.csv", data)))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "timestamp",
        "host",
        "value",
        "score",
        "grade",
        "is_anomaly",
        "explanation",
    ]
    np.testing.assert_array_equal([float(r["score"]) for r in rows], expected(v))


@pytest.mark.parametrize(
    ("args", "data", "message"),
    [
        ([], "", "empty input"),
        ([], "a,b\n", "no data rows"),
        ([], "name\nx\ny\n", "no numeric column"),
        (["--columns", "nope"], "a,b\n1,2\n", "--columns 'nope'"),
        (["--timestamp", "when"], "a,b\n1,2\n", "--timestamp 'when'"),
        (["--num-trees", "0"], "a\n1\n", "forest options"),
        (["--sample-size", "1"], "a\n1\n", "forest options"),
        ([], "a,a\n1,2\n", "distinct"),
        ([], "value,score\n1,2\n", "--score-column"),
    ],
)
def test_input_errors_exit_2_with_a_message(capsys, tmp_path, args, data, message):
    code, out, err = score(capsys, str(write(tmp_path, "x.csv", data)), *args)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_score_column_rename(capsys, tmp_path):
    path = write(tmp_path, "x.csv", "value,score\n1,2\n3,4\n")
    code, out, _ = score(capsys, str(path), "--columns", "value", "--score-column", "rcf")
    assert code == 0 and out.splitlines()[0] == "value,score,rcf,grade,is_anomaly,explanation"


def test_missing_file(capsys, tmp_path):
    code, _, err = score(capsys, str(tmp_path / "nope.csv"))
    assert code == 2 and "cannot open" in err


def test_plot(capsys, tmp_path):
    text, _ = series_csv()
    png = tmp_path / "s.png"
    code, _, _ = score(capsys, str(write(tmp_path, "s.csv", text)), "--plot", str(png))
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_plot_without_matplotlib_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    text, _ = series_csv()
    code, out, err = score(capsys, str(write(tmp_path, "s.csv", text)), "--plot", "x.png")
    assert code == 2 and out == ""
    assert "pip install 'rcf_fast[plot]'" in err


def test_stdin_streams_row_by_row(tmp_path):
    """Each result arrives while the writer still holds the pipe open (no read to EOF)."""
    with (
        (tmp_path / "err").open("wb") as err,
        subprocess.Popen(
            [*CMD, "-", "--output-after", "3"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        ) as proc,
    ):
        assert proc.stdin and proc.stdout
        proc.stdin.write(b"timestamp,value\n")
        for i in range(8):
            proc.stdin.write(f"t{i},{i % 3}.5\n".encode())
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, f"no output for row {i} before EOF"
            line = proc.stdout.readline().decode()
            if i == 0:
                assert line == "timestamp,value,score,grade,is_anomaly,explanation\n"
                line = proc.stdout.readline().decode()
            assert line.startswith(f"t{i},{i % 3}.5,"), line
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    assert b"8 rows scored" in (tmp_path / "err").read_bytes()


def test_progress_bar_only_on_a_terminal(tmp_path):
    text, _ = series_csv(3000, 100)
    path = write(tmp_path, "p.csv", text)
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [*CMD, str(path), "--progress", "-o", os.devnull], stderr=slave, timeout=120, check=True
        )
        os.close(slave)
        seen = b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert b"100%" in seen and b"3,000 rows" in seen
    piped = subprocess.run(
        [*CMD, str(path), "-o", os.devnull], capture_output=True, timeout=120, check=True
    )
    assert b"\r[" not in piped.stderr and b"3000 rows scored" in piped.stderr


def test_closed_pipe_is_quiet():
    proc = subprocess.run(
        f"{sys.executable} -m rcf_fast.cli score {TAXI} | head -n 2",
        shell=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.decode().splitlines()[0].startswith("timestamp,value,score,grade,")
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr


def test_hostile_headers_give_short_errors(capsys, tmp_path):
    dup = "a," * 300_000 + "\n1,2\n"
    code, out, err = score(capsys, str(write(tmp_path, "dup.csv", dup)))
    assert out == ""
    assert code == 2 and "distinct" in err and "(300001 names)" in err and len(err) < 500
    n = 70_000  # more values per point than the forest takes
    wide = ",".join(f"c{i}" for i in range(n)) + "\n" + ",".join("1" for _ in range(n)) + "\n"
    code, out, err = score(capsys, str(write(tmp_path, "wide.csv", wide)))
    assert out == ""
    assert code == 2 and "forest options" in err and "65535" in err and len(err) < 500


# ---- alerts: grade, is_anomaly, explanation (AnomalyDetector) --------------------------------


def detector_out(values, **kw) -> dict:
    """What AnomalyDetector gives for the same rows and the CLI's options (seed 0, shingle 1)."""
    x = np.asarray(values, dtype=float).reshape(len(values), -1)
    det = rcf_fast.AnomalyDetector(dimensions=x.shape[1], shingle_size=1, seed=0, **kw)
    return det.process_many(x)


def test_alert_columns_are_the_detectors(capsys, tmp_path):
    text, v = series_csv(1200, 900)
    code, out, err = score(capsys, str(write(tmp_path, "s.csv", text)))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    want = detector_out(v)
    np.testing.assert_array_equal([float(r["score"]) for r in rows], expected(v))
    np.testing.assert_array_equal([float(r["grade"]) for r in rows], want["grade"])
    assert [r["is_anomaly"] == "True" for r in rows] == want["is_anomaly"].tolist()
    alerts = [i for i, r in enumerate(rows) if r["is_anomaly"] == "True"]
    assert 900 in alerts and len(alerts) <= 5, alerts
    assert f"{len(alerts)} alerts (anomaly episodes)" in err
    assert all(r["explanation"] == "" for i, r in enumerate(rows) if i not in alerts)
    spike = json.loads(rows[900]["explanation"])
    assert list(spike) == ["value"]
    assert spike["value"]["direction"] == "HIGH"
    assert spike["value"]["attribution"] == pytest.approx(float(rows[900]["score"]))
    assert 35.0 <= spike["value"]["expected"] <= 65.0  # the sine's range, not the spike (90+)
    assert spike["value"]["expected_over"] == int(want["scale"][900]) == 1


def test_alerts_streamed_equal_alerts_in_batches(tmp_path):
    text, _ = series_csv(600, 450)
    path = write(tmp_path, "s.csv", text)
    batch = subprocess.run(
        [*CMD, str(path), "--z-factor", "3", "--warmup", "50"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    streamed = subprocess.run(
        [*CMD, "-", "--z-factor", "3", "--warmup", "50"],
        input=text.encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert streamed.stdout == batch.stdout
    assert b",True," in batch.stdout


def test_alert_flags_and_no_alerts(capsys, tmp_path):
    text, v = series_csv(800, 600)
    path = str(write(tmp_path, "s.csv", text))
    code, out, _ = score(capsys, path, "--no-alerts")
    assert code == 0 and out.splitlines()[0] == "timestamp,host,value,score"
    plain = [float(r["score"]) for r in csv.DictReader(io.StringIO(out))]
    np.testing.assert_array_equal(plain, expected(v))
    flags = ["--z-factor", "2.5", "--score-floor", "0.5", "--warmup", "30", "--episode-gap", "5"]
    flags += ["--alert-spacing", "10"]
    code, out, _ = score(capsys, path, *flags, "--output-format", "jsonl")
    assert code == 0
    objs = [json.loads(line) for line in out.splitlines()]
    want = detector_out(
        v, z_factor=2.5, score_floor=0.5, warmup=30, episode_gap=5, alert_spacing=10
    )
    np.testing.assert_array_equal([o["grade"] for o in objs], want["grade"])
    np.testing.assert_array_equal([o["score"] for o in objs], plain)
    assert sum(o["is_anomaly"] for o in objs) > sum(detector_out(v)["is_anomaly"])


@pytest.mark.parametrize(
    ("args", "data", "message"),
    [
        (["--z-factor", "0"], "a\n1\n", "z_factor"),
        (["--score-floor", "-1"], "a\n1\n", "score_floor"),
        (["--warmup", "-1"], "a\n1\n", "warmup"),
        (["--episode-gap", "0"], "a\n1\n", "episode_gap"),
        (["--alert-spacing", "-1"], "a\n1\n", "alert_spacing"),
        (["--scales", "16"], "a\n1\n", "--scales '16': expected BLOCKxSHINGLE pairs"),
        (["--scales", "16x4,"], "a\n1\n", "--scales '16x4,': expected"),
        (["--scales", "16x-4"], "a\n1\n", "expected BLOCKxSHINGLE pairs of whole numbers"),
        (["--scales", "16x4x2"], "a\n1\n", "expected BLOCKxSHINGLE"),
        (["--scales", "\u00b2x4"], "a\n1\n", "expected BLOCKxSHINGLE"),
        (["--scales", ""], "a\n1\n", "expected BLOCKxSHINGLE"),
        (["--scales", "1x4"], "a\n1\n", "`scales`: block must be between 2 and 1000000, got 1"),
        (["--scales", "16x4,16x4"], "a\n1\n", "duplicate scale (16, 4)"),
        (["--scales", "9" * 30 + "x4"], "a\n1\n", "block of scale 0 must be between 2 and"),
        (["--scales", ",".join(f"{k}x1" for k in range(2, 12))], "a\n1\n", "at most 8"),
        ([], "value,grade\n1,2\n", "--no-alerts"),
        (["--columns", "value"], "value,explanation\n1,x\n", "--no-alerts"),
    ],
)
def test_alert_errors_exit_2_with_a_message(capsys, tmp_path, args, data, message):
    code, out, err = score(capsys, str(write(tmp_path, "x.csv", data)), *args)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_input_column_named_like_an_alert_column_works_without_alerts(capsys, tmp_path):
    path = write(tmp_path, "x.csv", "value,grade\n1,2\n3,4\n")
    code, out, _ = score(capsys, str(path), "--no-alerts", "--columns", "value")
    assert code == 0 and out.splitlines()[0] == "value,grade,score"


def test_scales_flag(capsys, tmp_path):
    """--scales sets the detector's coarse scales; 'none' is the single-scale detector. A stretch
    held at the sine's peak: each row is a normal value (shingle 1), only block means are not."""
    v = np.sin(np.arange(3500) / 5.0) * 10 + 50  # coarse forests are ready after 64 blocks
    v[3000:3200] = 60.0
    text = "value\n" + "\n".join(repr(x) for x in v.tolist()) + "\n"
    path = str(write(tmp_path, "s.csv", text))
    for flag, scales in (
        ("none", ()),
        ("8x2, 64X1", ((8, 2), (64, 1))),
        (None, ((16, 4), (32, 8))),
    ):
        code, out, _ = score(capsys, path, *(["--scales", flag] if flag else []))
        assert code == 0
        rows = list(csv.DictReader(io.StringIO(out)))
        want = detector_out(v, scales=scales)
        np.testing.assert_array_equal([float(r["grade"]) for r in rows], want["grade"])
        coarse = want["scale"] > 1
        assert coarse.any() == bool(scales), flag
        if coarse.any():  # the held stretch, explained as the block mean it expected
            at = int(np.flatnonzero(coarse)[0])
            assert 3000 <= at < 3200
            explanation = json.loads(rows[at]["explanation"])["value"]
            assert explanation["direction"] == "HIGH" and explanation["expected"] < 59.0
            assert explanation["expected_over"] == int(want["scale"][at]) > 1
