"""NAB's score on small synthetic files whose score can be worked out by hand."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from rcf_fast import cli, nab

S = nab.scaled_sigmoid
MAX_TP = S(-1.0)


def one_file(n: int = 40, windows: list[tuple[int, int]] | None = None) -> list[nab.NabFile]:
    from datetime import datetime, timedelta

    t0 = datetime(2020, 1, 1)
    times = [t0 + timedelta(minutes=5 * i) for i in range(n)]
    return [
        nab.NabFile("cat/f.csv", times, np.zeros(n), [(20, 29)] if windows is None else windows)
    ]


def scores_with(n: int, marks: dict[int, float]) -> np.ndarray:
    s = np.zeros(n)
    for i, v in marks.items():
        s[i] = v
    return s


def test_scaled_sigmoid_values_from_nab_docstring():
    assert S(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert S(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert S(0.0) == 0.0
    assert S(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert S(3.0001) == -1.0


def test_probation_length():
    assert nab.probation_length(40) == 6
    assert nab.probation_length(10_000) == 750  # capped at 15% of 5000 rows


def test_single_detection_in_the_middle_of_the_window():
    corpus = one_file()
    r = nab.score_corpus(corpus, {"cat/f.csv": scores_with(40, {25: 1.0})})
    expected = S(-(29 - 25 + 1) / 10) / MAX_TP  # S(-0.5) / S(-1)
    assert r.threshold == 1.0
    assert r.raw == pytest.approx(expected)
    assert r.null == -1.0 and r.perfect == 1.0
    assert r.score == pytest.approx(100 * (expected + 1) / 2)
    assert r.window_hit_rate == 1.0


def test_only_the_first_detection_in_a_window_counts():
    corpus = one_file()
    r = nab.score_corpus(corpus, {"cat/f.csv": scores_with(40, {22: 1.0, 27: 1.0, 29: 1.0})})
    assert r.raw == pytest.approx(S(-(29 - 22 + 1) / 10) / MAX_TP)
    assert r.tp == 3  # rows are counted, the window once


def test_false_positives_before_and_after_the_window_and_the_threshold_choice():
    corpus = one_file()
    # Row 10 (before any window) scores highest, the window's row 25 next, row 31 (after) last.
    s = scores_with(40, {10: 1.0, 25: 0.9, 31: 0.8})
    std = nab.score_corpus(corpus, {"cat/f.csv": s})
    tp = S(-0.5) / MAX_TP
    fp_before = -0.11
    fp_after = S(abs(29 - 31) / (10 - 1)) * 0.11
    candidates = {1.0: fp_before - 1.0, 0.9: fp_before + tp, 0.8: fp_before + tp + fp_after}
    best = max(candidates, key=lambda k: candidates[k])
    assert std.threshold == best == 0.9
    assert std.raw == pytest.approx(candidates[0.9])
    assert std.fp == 1 and std.per_file["cat/f.csv"] == pytest.approx(candidates[0.9])
    # reward_low_FP_rate doubles the false positive weight.
    low_fp = nab.score_corpus(corpus, {"cat/f.csv": s}, "reward_low_FP_rate")
    assert low_fp.raw == pytest.approx(-0.22 + tp)


def test_missed_window_costs_the_fn_weight_of_the_profile():
    # Long enough that the null detector's best is to detect nothing (raw -2 * fn).
    corpus = one_file(400, [(100, 109), (200, 204)])
    s = scores_with(400, {100: 1.0})  # the first row of window one; window two missed
    std = nab.score_corpus(corpus, {"cat/f.csv": s})
    assert std.raw == pytest.approx(S(-1.0) / MAX_TP - 1.0)
    assert std.null == -2.0
    assert std.score == pytest.approx(100 * (std.raw + 2) / (2 + 2))
    low_fn = nab.score_corpus(corpus, {"cat/f.csv": s}, "reward_low_FN_rate")
    assert low_fn.raw == pytest.approx(1.0 - 2.0)
    assert low_fn.null == -4.0
    assert std.window_hit_rate == 0.5


def test_null_detector_is_optimised_like_any_other():
    # Short file, few rows outside the window: detecting everything (the window's first row is
    # worth 1, the 6 scorable rows before it cost 0.11 each) beats detecting nothing (-1).
    corpus = one_file(30, [(10, 29)])  # probation: rows 0..3
    r = nab.score_corpus(corpus, {"cat/f.csv": scores_with(30, {})})
    assert r.null == pytest.approx(S(-(29 - 10 + 1) / 20) / MAX_TP - 6 * 0.11)
    assert r.score == 0.0


def test_probation_rows_are_ignored():
    corpus = one_file()
    # A high score at row 3 (probation: first 6 rows) costs nothing and detects nothing.
    r = nab.score_corpus(corpus, {"cat/f.csv": scores_with(40, {3: 5.0, 25: 1.0})})
    assert r.raw == pytest.approx(S(-0.5) / MAX_TP)
    assert r.fp == 0


def test_window_partly_in_probation_keeps_its_width():
    corpus = one_file(40, [(4, 9)])  # probation: rows 0..5
    r = nab.score_corpus(corpus, {"cat/f.csv": scores_with(40, {6: 1.0})})
    assert r.raw == pytest.approx(S(-(9 - 6 + 1) / 6) / MAX_TP)


def test_two_files_share_one_threshold_and_add_up():
    a = one_file()[0]
    b = nab.NabFile("cat/g.csv", a.timestamps, a.values, [(30, 39)])
    s_a = scores_with(40, {25: 0.5, 12: 0.6})
    s_b = scores_with(40, {35: 0.7})
    r = nab.score_corpus([a, b], {a.name: s_a, b.name: s_b})
    at = {
        0.7: -1.0 + S(-(39 - 35 + 1) / 10) / MAX_TP,
        0.6: -1.0 - 0.11 + S(-0.5) / MAX_TP,
        0.5: -0.11 + S(-0.5) / MAX_TP + S(-0.5) / MAX_TP,
    }
    assert r.threshold == 0.5
    assert r.raw == pytest.approx(at[0.5])
    assert sum(r.per_file.values()) == pytest.approx(r.raw)
    assert r.score == pytest.approx(100 * (at[0.5] + 2) / 4)


def test_order_preserving_transform_keeps_the_score():
    rng = np.random.default_rng(1)
    corpus = one_file(200, [(50, 69), (120, 139)])
    s = rng.random(200)
    r1 = nab.score_corpus(corpus, {"cat/f.csv": s})
    r2 = nab.score_corpus(corpus, {"cat/f.csv": np.exp(3 * s) + 7})
    assert r1.raw == pytest.approx(r2.raw)


def test_roc_auc_by_hand():
    assert nab.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert nab.roc_auc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5
    assert math.isnan(nab.roc_auc([1, 2], [0, 0]))
    with pytest.raises(ValueError, match="shape"):
        nab.roc_auc([1, 2, 3], [0, 1])


def test_bad_scores_are_rejected_with_the_file_name():
    corpus = one_file()
    with pytest.raises(nab.NabDataError, match="expected 40 scores"):
        nab.score_corpus(corpus, {"cat/f.csv": np.zeros(39)})
    with pytest.raises(nab.NabDataError, match="finite"):
        nab.score_corpus(corpus, {"cat/f.csv": np.full(40, np.nan)})
    with pytest.raises(nab.NabDataError, match="no scores for cat/f.csv"):
        nab.score_corpus(corpus, {})
    with pytest.raises(ValueError, match="unknown NAB profile"):
        nab.score_corpus(corpus, {"cat/f.csv": np.zeros(40)}, "lenient")


def write_corpus(root, rows: int = 400, windows=None, extra: str = "") -> str:
    d = root / "data" / "cat"
    d.mkdir(parents=True)
    (root / "labels").mkdir()
    lines = ["timestamp,value"]
    rng = np.random.default_rng(0)
    for i in range(rows):
        v = 10 + rng.normal() + (30 if 300 <= i < 305 else 0)
        lines.append(
            f"2020-01-{1 + i // 288:02d} {(i % 288) // 12:02d}:{(i % 12) * 5:02d}:00,{v:.3f}"
        )
    (d / "f.csv").write_text("\n".join(lines) + "\n" + extra)
    if windows is None:
        windows = [["2020-01-02 00:00:00.000000", "2020-01-02 01:00:00.000000"]]
    (root / "labels" / "combined_windows.json").write_text(json.dumps({"cat/f.csv": windows}))
    return str(root)


def test_load_corpus_reads_nab_layout(tmp_path):
    corpus = nab.load_corpus(write_corpus(tmp_path))
    assert len(corpus) == 1 and corpus[0].name == "cat/f.csv"
    assert corpus[0].windows == [(288, 300)]
    assert corpus[0].labels().sum() == 13


@pytest.mark.parametrize(
    ("windows", "extra", "message"),
    [
        ([["2021-01-01 00:00:00", "2021-01-01 01:00:00"]], "", "not a timestamp of the file"),
        ([["2020-01-01 01:00:00"]], "", r"must be \[start, end\]"),
        ([[1, 2]], "", "not a timestamp string"),
        ([["2020-01-01 02:00:00", "2020-01-01 01:00:00"]], "", "ordered and disjoint"),
        (None, "yesterday,3\n", "is not 'YYYY-MM-DD"),
        (None, "2020-01-09 00:00:00,high\n", "is not a number"),
        (None, "2020-01-09 00:00:00\n", "expected 'timestamp,value'"),
    ],
)
def test_load_corpus_rejects_bad_data(tmp_path, windows, extra, message):
    root = write_corpus(tmp_path, windows=windows, extra=extra)
    with pytest.raises(nab.NabDataError, match=message):
        nab.load_corpus(root)


def test_load_corpus_without_labels_says_what_is_expected(tmp_path):
    with pytest.raises(nab.NabDataError, match="combined_windows.json"):
        nab.load_corpus(str(tmp_path))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text("[1, 2]")
    with pytest.raises(nab.NabDataError, match="keyed by file name"):
        nab.load_corpus(str(tmp_path))


def test_cli_scores_a_small_corpus(tmp_path, capsys):
    root = write_corpus(tmp_path, rows=600)
    assert cli.main(["nab", root, "--detectors", "forest", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    std = out["forest"]["profiles"]["standard"]
    # The planted jump (rows 300-304, just past the window's end) is right after the window:
    # whatever the threshold, the score lies between the null (0) and perfect (100) detector.
    assert 0.0 <= std["score"] <= 100.0
    assert 0.0 <= out["forest"]["roc_auc"] <= 1.0


def test_cli_seeds_average_the_single_seed_runs(tmp_path, capsys):
    root = write_corpus(tmp_path, rows=600)
    single = []
    for seed in (3, 4):
        assert cli.main(["nab", root, "--detectors", "forest", "--seed", str(seed), "--json"]) == 0
        single.append(json.loads(capsys.readouterr().out)["forest"])
    assert cli.main(["nab", root, "--detectors", "forest", "--seeds", "3, 4", "--json"]) == 0
    mean = json.loads(capsys.readouterr().out)["forest"]
    assert mean["seeds"] == [3, 4]
    for profile in nab.PROFILES:
        want = (
            single[0]["profiles"][profile]["score"] + single[1]["profiles"][profile]["score"]
        ) / 2
        assert mean["profiles"][profile]["score"] == pytest.approx(want)
    assert mean["roc_auc"] == pytest.approx((single[0]["roc_auc"] + single[1]["roc_auc"]) / 2)
    for bad, message in (("1,x", "whole numbers"), ("-1", "out of range"), ("", "whole numbers")):
        assert cli.main(["nab", root, "--seeds", bad]) == 2
        assert message in capsys.readouterr().err


def test_cli_missing_directory_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["nab", os.path.join(str(tmp_path), "nope")]) == 2
    assert "no NAB labels" in capsys.readouterr().err
    assert cli.main(["nab", str(tmp_path), "--detectors", "magic"]) == 2
