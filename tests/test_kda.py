"""rcf_fast.kda: KDA SQL's RANDOM_CUT_FOREST(_WITH_EXPLANATION), replayed on its blood-pressure example.

The KDA developer guide's example streams blood pressure readings (Systolic, Diastolic,
BloodPressureLevel), mostly NORMAL with rare HIGH and LOW ones, through
RANDOM_CUT_FOREST_WITH_EXPLANATION(CURSOR(...), 100, 256, 100000, 1, true). Its published output
shows NORMAL rows scoring about 0.71-0.74 and a HIGH row (144/123) about 3.86, explained as
HIGH on both columns. The generator's exact ranges are not reproduced here; these are read from
the published rows (normal systolic 90-120 / diastolic 60-80, the planted levels well outside).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from rcf_fast import kda


def blood_pressure(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        r = rng.random()
        if r < 0.005:
            rows.append(
                {
                    "Systolic": rng.randint(50, 80),
                    "Diastolic": rng.randint(30, 50),
                    "BloodPressureLevel": "LOW",
                }
            )
        elif r > 0.995:
            rows.append(
                {
                    "Systolic": rng.randint(130, 200),
                    "Diastolic": rng.randint(90, 150),
                    "BloodPressureLevel": "HIGH",
                }
            )
        else:
            rows.append(
                {
                    "Systolic": rng.randint(90, 120),
                    "Diastolic": rng.randint(60, 80),
                    "BloodPressureLevel": "NORMAL",
                }
            )
    return rows


@pytest.fixture(scope="module")
def replay():
    rows = blood_pressure(6000)
    # KDA's parameters from the example: 100 trees, 256 samples, timeDecay 100000, shingle 1.
    return list(kda.random_cut_forest_with_explanation(rows, 100, 256, 100000, 1, True, seed=3))


def test_scores_in_the_published_ranges(replay):
    late = replay[1000:]
    normal = np.array([r["ANOMALY_SCORE"] for r in late if r["BloodPressureLevel"] == "NORMAL"])
    high = np.array([r["ANOMALY_SCORE"] for r in late if r["BloodPressureLevel"] == "HIGH"])
    assert 0.65 <= np.median(normal) <= 0.80, np.median(normal)  # published: 0.71-0.74
    assert len(high) >= 5
    assert 2.5 <= np.median(high) <= 6.0, np.median(high)  # published: 3.86
    assert np.median(high) > 3 * np.median(normal)


def test_direction_matches_the_planted_level(replay):
    # The most strongly directed column of a planted reading points the planted way, and so do
    # most columns: a reading with one column near the normal range (LOW 76/49, HIGH 191/92),
    # with more extreme planted readings in the sample, can have that column the other way.
    rows, agree, columns = 0, 0, 0
    for r in replay[1000:]:
        level = r["BloodPressureLevel"]
        if level == "NORMAL":
            continue
        e = json.loads(r["ANOMALY_EXPLANATION"])
        strongest = max(e.values(), key=lambda c: float(c["STRENGTH"]))
        assert strongest["DIRECTION"] == level, (r, e)
        assert float(strongest["STRENGTH"]) > 0.5
        agree += sum(c["DIRECTION"] == level for c in e.values())
        columns += len(e)
        rows += 1
    assert rows >= 10
    assert agree >= 0.75 * columns, (agree, columns)


def test_attribution_scores_add_up_to_the_score(replay):
    for r in replay[300:400]:
        e = json.loads(r["ANOMALY_EXPLANATION"])
        total = sum(float(c["ATTRIBUTION_SCORE"]) for c in e.values())
        assert total == pytest.approx(r["ANOMALY_SCORE"], abs=1e-3)
        assert set(e) == {"Systolic", "Diastolic"}  # numeric columns only
        assert r["BloodPressureLevel"] in ("NORMAL", "HIGH", "LOW")  # input columns kept


def test_initial_learning_phase_scores_zero_and_plain_function_matches():
    rows = blood_pressure(400, seed=1)
    explained = list(kda.random_cut_forest_with_explanation(rows, seed=5))
    plain = list(kda.random_cut_forest(rows, seed=5))
    assert all(r["ANOMALY_SCORE"] == 0.0 for r in explained[:64])
    assert all(r["ANOMALY_SCORE"] > 0.0 for r in explained[64:])
    np.testing.assert_allclose(
        [r["ANOMALY_SCORE"] for r in plain], [r["ANOMALY_SCORE"] for r in explained], rtol=1e-9
    )
    assert "DIRECTION" not in json.loads(explained[-1]["ANOMALY_EXPLANATION"])["Systolic"]


def test_time_decay_is_a_record_count():
    rows = blood_pressure(300, seed=2)
    with pytest.raises(ValueError, match="record count"):
        list(kda.random_cut_forest(rows, time_decay=0.001))
    # 100000 records and 1000 records give different (valid) models
    a = [r["ANOMALY_SCORE"] for r in kda.random_cut_forest(rows, time_decay=100000, seed=1)]
    b = [r["ANOMALY_SCORE"] for r in kda.random_cut_forest(rows, time_decay=300, seed=1)]
    assert a != b and min(a[100:]) > 0 and min(b[100:]) > 0


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        ([{"a": "x"}], {}, "no numeric column"),
        ([{"a": 1.0}, {"b": 2.0}], {}, "row 1: numeric column 'a' is missing"),
        ([{"a": 1.0}, {"a": "2"}], {}, "row 1: column 'a' must be a number"),
        ([{"a": 1.0}, {"a": float("nan")}], {}, "must be finite"),
        ([{"a": 1.0}, [1.0]], {}, "row 1: expected a dict"),
        ([{"a": 1.0}], {"number_of_trees": 0}, "number_of_trees"),
        ([{"a": 1.0}], {"shingle_size": 1.5}, "shingle_size"),
        ([{"a": 1.0}], {"columns": []}, "columns"),
        ([{"a": True, "b": 1}], {"columns": ["a"]}, "must be a number"),
    ],
)
def test_bad_rows_and_parameters(rows, kwargs, message):
    with pytest.raises(kda.KdaInputError, match=message):
        list(kda.random_cut_forest_with_explanation(rows, **kwargs))
