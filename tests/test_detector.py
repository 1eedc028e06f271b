"""rcf_fast.AnomalyDetector: graded alerts, explanations, batch = loop, exact continuation."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rcf_fast
from rcf_fast import AnomalyDetector, StateError


def spiky(n: int = 2500, at: int = 1800, jump: float = 6.0, dims: int = 1) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(n)
    x = np.stack([np.sin(t * 0.2 + k) + rng.normal(0, 0.05, n) for k in range(dims)], axis=1)
    x[at, dims - 1] += jump
    return x


def test_spike_raises_one_alert_explained_by_its_dimension():
    x = spiky(dims=3)
    det = AnomalyDetector(dimensions=3, seed=1)
    results = [det.process(row) for row in x]
    alerts = [i for i, r in enumerate(results) if r.is_anomaly]
    assert 1800 in alerts
    assert len(alerts) <= 3
    r = results[1800]
    assert 0.0 < r.grade <= 1.0 and r.start_of_anomaly and r.in_episode
    assert r.score >= r.threshold
    assert r.relative_index <= 0
    assert r.attribution is not None
    parts = r.attribution.high + r.attribution.low
    assert int(np.argmax(parts)) == 2 and r.attribution.high[2] > 2 * r.attribution.low[2]
    assert r.expected is not None and np.isnan(r.expected[0])
    assert abs(r.expected[2] - (x[1800, 2] - 6.0)) < 1.0
    quiet = results[1500]
    assert quiet.grade == 0.0 and not quiet.is_anomaly and quiet.attribution is None
    assert quiet.expected is None and 0.0 <= quiet.confidence <= 1.0


def test_warmup_has_no_alerts_and_infinite_threshold():
    det = AnomalyDetector(seed=2, warmup=500)
    out = det.process_many(spiky()[:400])
    assert not out["is_anomaly"].any()
    assert np.isinf(out["threshold"]).all()


def test_process_many_is_the_loop():
    x = spiky(dims=2)
    ts = np.arange(len(x), dtype=float) * 60.0
    a = AnomalyDetector(dimensions=2, seed=4)
    b = AnomalyDetector(dimensions=2, seed=4)
    many = a.process_many(x, ts)
    loop = [b.process(row, timestamp=t) for row, t in zip(x, ts)]
    assert loop[-1].timestamp == ts[-1]
    for key in ("score", "grade", "threshold", "confidence", "relative_index"):
        np.testing.assert_array_equal(many[key], [getattr(r, key) for r in loop])
    for key in ("is_anomaly", "in_episode", "start_of_anomaly"):
        np.testing.assert_array_equal(many[key], [getattr(r, key) for r in loop])
    for i, r in enumerate(loop):
        if r.is_anomaly:
            np.testing.assert_array_equal(many["expected"][i], r.expected)
            np.testing.assert_array_equal(many["attribution_high"][i], r.attribution.high)
        else:
            assert np.isnan(many["expected"][i]).all()
            assert (many["attribution_low"][i] == 0).all()
    assert many["is_anomaly"].sum() >= 1


@pytest.mark.parametrize("how", ["bytes", "pickle"])
def test_state_continues_exactly(how):
    x = spiky()
    a = AnomalyDetector(seed=5, transform="normalize_difference")
    a.process_many(x[:1000])
    if how == "bytes":
        b = AnomalyDetector.from_bytes(a.to_bytes())
    else:
        b = pickle.loads(pickle.dumps(a))
    ra, rb = a.process_many(x[1000:]), b.process_many(x[1000:])
    for key in ra:
        np.testing.assert_array_equal(ra[key], rb[key])
    assert b.transform == "normalize_difference"


def test_damaged_state_raises_state_error():
    det = AnomalyDetector(seed=1)
    det.process_many(spiky()[:300])
    data = det.to_bytes()
    for bad in (b"", data[:10], data[:-1], b"RCFD" + data[4:-8], b"xxxx" + data[4:]):
        with pytest.raises(StateError):
            AnomalyDetector.from_bytes(bad)
    with pytest.raises(StateError):
        AnomalyDetector.from_bytes(rcf_fast.RandomCutForest().to_bytes())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"z_factor": 0.0}, "z_factor"),
        ({"z_factor": float("nan")}, "z_factor"),
        ({"score_floor": -1.0}, "score_floor"),
        ({"horizon": 0.0}, "horizon"),
        ({"episode_gap": 0}, "episode_gap"),
        ({"warmup": -1}, "warmup"),
        ({"transform": "log"}, "transform"),
        ({"alert_spacing": -5}, "alert_spacing"),
        ({"transform_horizon": float("inf")}, "transform_horizon"),
        ({"shingle_size": 0}, "shingle_size"),
        ({"sampler": "lifo"}, "sampler"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AnomalyDetector(**kwargs)


def test_bad_input_is_rejected_before_anything_is_learned():
    det = AnomalyDetector(dimensions=2, seed=1)
    with pytest.raises(ValueError, match="NaN"):
        det.process([1.0, float("nan")])
    with pytest.raises(ValueError):
        det.process([1.0])
    with pytest.raises(ValueError, match="timestamp"):
        det.process([1.0, 2.0], timestamp=float("inf"))
    x = np.zeros((10, 2))
    x[7, 1] = np.inf
    with pytest.raises(ValueError, match="row 7"):
        det.process_many(x)
    with pytest.raises(ValueError, match="timestamps"):
        det.process_many(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="shape"):
        det.process_many(np.zeros((10, 3)))
    with pytest.raises(TypeError):
        det.process("ab")  # type: ignore[arg-type]
    assert det.entries_seen == 0


def test_episode_reported_once_at_its_start():
    # A level shift that lasts: one alert, then the episode goes on without new alerts. The fine
    # stream alone: on this sine of period 31.4 the block means of 16 points beat slowly (period
    # ~1700 points) and the 16x4 scale sees a new pattern at 1663, an alert that would hold
    # back the one at 1800 by the spacing.
    x = spiky(jump=0.0)
    x[1800:1830, 0] += 5.0
    out = AnomalyDetector(seed=7, scales=()).process_many(x)
    starts = np.flatnonzero(out["is_anomaly"][1790:1840])
    assert len(starts) == 1
    assert out["in_episode"][1790 + starts[0] : 1825].all()


# --- rcf_fast.Thresholder: the detector's grading on its own (one per key, e.g.) ---------------

THRESHOLDER_KEYS = (
    "grade",
    "is_anomaly",
    "threshold",
    "confidence",
    "in_episode",
    "start_of_anomaly",
    "relative_index",
)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"z_factor": 2.5, "score_floor": 0.5, "warmup": 20, "episode_gap": 3, "alert_spacing": 0},
        {"z_factor": 3.0, "alert_spacing": 40},
    ],
)
def test_thresholder_grades_as_the_detector_does(kwargs):
    det = AnomalyDetector(seed=4, scales=(), **kwargs)
    x = spiky(n=3000, at=2200, jump=5.0)
    x[2600:2640] += 3.0
    out = det.process_many(x)
    assert out["is_anomaly"].sum() >= 1
    t = rcf_fast.Thresholder(**kwargs)
    got = t.process_many(out["score"])
    assert set(got) == set(THRESHOLDER_KEYS)
    for k in THRESHOLDER_KEYS[:-1]:
        np.testing.assert_array_equal(got[k], out[k], err_msg=k)
    # The detector may point further back (per-position attribution), never less far.
    assert np.all(out["relative_index"] <= got["relative_index"])
    assert np.all(got["relative_index"][~got["is_anomaly"]] == 0)


def test_thresholder_process_is_process_many_and_state_continues_exactly():
    rng = np.random.default_rng(3)
    scores = np.abs(rng.normal(0.9, 0.1, 1500))
    scores[:30] = 0.0  # forest not ready
    scores[[700, 701, 1200]] = [4.0, 5.0, 6.0]
    a = rcf_fast.Thresholder(warmup=50)
    loop = [a.process(float(s)) for s in scores]
    b = rcf_fast.Thresholder(warmup=50)
    many = b.process_many(scores)
    for k in THRESHOLDER_KEYS:
        np.testing.assert_array_equal(np.array([r[k] for r in loop]), many[k], err_msg=k)
    assert many["is_anomaly"][700] and not many["is_anomaly"][701]
    assert np.all(np.isinf(many["threshold"][:80]))
    assert a.scores_seen == 1470
    # Cut at 900 three ways: bytes, bytearray, pickle; the continuations agree with no cut.
    whole = rcf_fast.Thresholder(warmup=50).process_many(scores)
    c = rcf_fast.Thresholder(warmup=50)
    c.process_many(scores[:900])
    data = c.to_bytes()
    for restored in (
        rcf_fast.Thresholder.from_bytes(data),
        rcf_fast.Thresholder.from_bytes(bytearray(data)),
        pickle.loads(pickle.dumps(c)),
    ):
        assert restored.to_bytes() == data
        rest = restored.process_many(scores[900:])
        for k in THRESHOLDER_KEYS:
            np.testing.assert_array_equal(rest[k], whole[k][900:], err_msg=k)
    assert "scores_seen=870" in repr(c) and "alert_spacing=256" in repr(c)


def test_thresholder_rejects_hostile_input_before_learning():
    t = rcf_fast.Thresholder(warmup=5)
    t.process_many([1.0] * 10)
    before = t.to_bytes()
    for bad, match in (
        ([1.0, float("nan")], "row 1"),
        ([1.0, 2.0, float("inf")], "row 2"),
        ([0.5, -0.1], "score"),
        (np.zeros((3, 2)), "1-D"),
        (np.zeros((3, 1)), "1-D"),
        ([[1.0, 2.0], [3.0]], None),
        ("abc", None),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            t.process_many(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        t.process_many({"a": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score"):
        t.process(float("-inf"))
    with pytest.raises(TypeError):
        t.process("1.0")  # type: ignore[arg-type]
    assert t.to_bytes() == before, "nothing learned from rejected input"
    assert t.process_many([])["grade"].shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"z_factor": -1.0}, "z_factor"),
        ({"score_floor": float("nan")}, "score_floor"),
        ({"horizon": 0.5}, "horizon"),
        ({"warmup": -3}, "warmup"),
        ({"episode_gap": 0}, "episode_gap"),
        ({"alert_spacing": -1}, "alert_spacing"),
        ({"alert_spacing": 10**10}, "alert_spacing"),
    ],
)
def test_thresholder_bad_parameters_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rcf_fast.Thresholder(**kwargs)


def test_thresholder_damaged_state_raises_state_error():
    t = rcf_fast.Thresholder()
    t.process_many(np.linspace(0.5, 1.5, 400))
    data = t.to_bytes()
    rng = np.random.default_rng(0)
    bads = [b"", data[:10], data[:-1], data + b"\0", b"RCFTHRS\0" + data[8:12] + b"\xff" * 12]
    bads += [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in (0, 24, 200, 5000)]
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    bads.append(bytes(flipped))
    bads.append(AnomalyDetector(seed=1).to_bytes())
    for bad in bads:
        with pytest.raises(StateError):
            rcf_fast.Thresholder.from_bytes(bad)
    with pytest.raises(TypeError):
        rcf_fast.Thresholder.from_bytes("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("dims", [1, 2])
def test_expected_value_is_the_planted_series_not_the_spike(dims):
    """`.expected` imputes the value under a planted spike (conditional query on the trees): on
    a noisy sine (amplitude 2, noise 0.05) its median error is near the noise; the earlier
    best-of-recent-values choice measured 0.08 (1-D) and 0.17 (2-D) on the same kind of data."""
    rng = np.random.default_rng(11)
    errors = []
    for trial in range(8):
        t = np.arange(2600)
        clean = 2 * np.sin(2 * np.pi * t / 50) + rng.normal(0, 0.05, t.size)
        at = int(rng.integers(1800, 2400))
        x = clean.copy()
        x[at] += float(rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 6.0))
        cols = [np.cos(2 * np.pi * t / 70) + rng.normal(0, 0.05, t.size)] if dims == 2 else []
        out = AnomalyDetector(dimensions=dims, seed=trial).process_many(np.column_stack(cols + [x]))
        if not out["is_anomaly"][at]:  # a small spike can go unnoticed; most are alerts
            continue
        e = out["expected"][at]
        assert not np.isnan(e[-1]) and (dims == 1 or np.isnan(e[0]))
        # Explained after one combined pass (past 4 samples' worth of points) by the trees that
        # did not keep the point, scaled to the score; the planted dimension, the planted way.
        high, low = out["attribution_high"][at], out["attribution_low"][at]
        assert high.sum() + low.sum() == pytest.approx(out["score"][at], rel=1e-9)
        up = x[at] > clean[at]
        assert (high[-1] > low[-1]) == up
        assert high[-1] + low[-1] > 0.5 * (high.sum() + low.sum())
        errors.append(abs(e[-1] - clean[at]))
    assert len(errors) >= 6, errors
    assert np.median(errors) < 0.07, errors
    assert max(errors) < 0.5, errors


# --- coarse scales ------------------------------------------------------------------------------

DATA = Path(__file__).parent / "data"
# process_many's arrays before scales: the score, the thresholder's, and the explanation's.
RESULT_KEYS = ("score", *THRESHOLDER_KEYS, "expected", "attribution_high", "attribution_low")
# The detector of tests/data/detector_v2.*: written by the single-scale detector before scales
# (commit 21a8114) with tests/data/make_detector_v2.py.
V2_KWARGS: dict[str, Any] = {
    "dimensions": 2,
    "shingle_size": 4,
    "num_trees": 12,
    "sample_size": 32,
    "seed": 9,
    "warmup": 30,
    "alert_spacing": 40,
    "transform": "normalize",
}


def assert_same(got, want, keys=RESULT_KEYS):
    for k in keys:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_scales_default_and_none():
    assert AnomalyDetector().scales == ((16, 4), (32, 8))
    assert AnomalyDetector(scales=[[8, 2]]).scales == ((8, 2),)
    assert AnomalyDetector(scales=np.array([[8, 2], [64, 1]])).scales == ((8, 2), (64, 1))
    assert AnomalyDetector(scales=()).scales == ()
    assert "scales=" in repr(AnomalyDetector())


def test_no_scales_is_the_detector_before_scales():
    """scales=() reproduces, value for value, what the single-scale detector computed (golden
    values from before scales), and its version-2 bytes load as such a detector and continue
    exactly as it did."""
    gold = np.load(DATA / "detector_v2.npz")
    x = gold["x"]
    full = AnomalyDetector(**V2_KWARGS, scales=()).process_many(x)
    assert_same(full, {k: gold["full_" + k] for k in RESULT_KEYS})
    assert full["is_anomaly"].sum() == 2 and (full["scale"] == 1).all()
    old = AnomalyDetector.from_bytes((DATA / "detector_v2.bin").read_bytes())
    assert old.scales == () and old.entries_seen == 400 and old.transform == "normalize"
    cont = old.process_many(x[400:])
    assert_same(cont, {k: gold["cont_" + k] for k in RESULT_KEYS})
    assert cont["is_anomaly"].sum() == 2
    # ... and saved again (version 3), it still continues as the version-2 detector did.
    old = AnomalyDetector.from_bytes((DATA / "detector_v2.bin").read_bytes())
    again = AnomalyDetector.from_bytes(old.to_bytes())
    assert_same(again.process_many(x[400:]), cont)


@pytest.mark.parametrize(
    ("scales", "error", "message"),
    [
        ("16x4", TypeError, "sequence of \\(block, shingle_size\\) pairs"),
        (b"ab", TypeError, "sequence of"),
        (5, TypeError, "sequence of"),
        (None, TypeError, "sequence of.*or \\(\\) for none, got NoneType"),
        ({16: 4}, TypeError, "sequence of"),
        ([16, 4], TypeError, "scale 0 must be a \\(block, shingle_size\\) pair"),
        ([(16, 4, 1)], TypeError, "scale 0 must be a \\(block, shingle_size\\) pair"),
        ([(16,)], TypeError, "scale 0 must be a"),
        ([(16, 4), "ab"], TypeError, "scale 1 must be a"),
        ([(16.0, 4)], TypeError, "block of scale 0 must be an int, got float"),
        ([(16, "4")], TypeError, "shingle_size of scale 0 must be an int, got str"),
        ([(True, 4)], TypeError, "got bool"),
        ([(16, None)], TypeError, "shingle_size of scale 0 must be an int"),
        ([(-16, 4)], ValueError, "block of scale 0 must be between 2 and 1000000, got -16"),
        (
            [(16, -4)],
            ValueError,
            "shingle_size of scale 0 must be between 1 and 65535 / dimensions, got -4",
        ),
        (
            [(16, 2**200)],
            ValueError,
            "shingle_size of scale 0 must be between 1 and 65535 / dimensions, got 1606938",
        ),
        (
            [(2**70, 4)],
            ValueError,
            "block of scale 0 must be between 2 and 1000000, got 1180591620717411303424",
        ),
        ([(1, 4)], ValueError, "block must be between 2 and 1000000, got 1"),
        ([(1_000_001, 4)], ValueError, "block must be between 2 and 1000000"),
        ([(16, 0)], ValueError, "shingle_size must be between 1 and 65535, got 0"),
        ([(16, 65536)], ValueError, "shingle_size must be between 1 and 65535"),
        ([(16, 4), (32, 8), (16, 4)], ValueError, "duplicate scale \\(16, 4\\) \\(scale 2\\)"),
        ([(k + 2, 1) for k in range(9)], ValueError, "at most 8"),
        ([(k + 2, 1) for k in range(10**6)], ValueError, "at most 8"),
    ],
)
def test_bad_scales_name_themselves(scales, error, message):
    with pytest.raises(error, match="`scales`.*" + message):
        AnomalyDetector(scales=scales)


def test_scale_shingle_limit_depends_on_dimensions():
    AnomalyDetector(dimensions=3, scales=[(16, 21845)])
    with pytest.raises(ValueError, match="`scales`.*between 1 and 21845, got 21846"):
        AnomalyDetector(dimensions=3, scales=[(16, 21846)])


def held_day(seed: int, trough: bool, period: int = 288, days: int = 30, day: int = 24):
    """A daily sine (10 +- 5, noise 0.1) that stops for a whole day at its peak (or trough):
    every window of 8 points of it looks like the peak of a normal day, only the day does not."""
    rng = np.random.default_rng(seed)
    t = np.arange(period * days)
    x = 10 + 5 * np.sin(2 * np.pi * t / period)
    t0 = day * period + (3 * period // 4 if trough else period // 4)
    x = np.concatenate([x[:t0], np.full(period, x[t0]), x[t0:]])
    return (x + rng.normal(0, 0.1, x.size))[:, None], t0


@pytest.mark.parametrize("trough", [False, True])
def test_a_day_held_at_its_peak_is_seen_by_a_coarse_scale(trough):
    x, t0 = held_day(3, trough)
    day = slice(t0, t0 + 288)
    fine = AnomalyDetector(seed=3, scales=()).process_many(x)
    assert not fine["is_anomaly"][day].any()  # the shingle of 8 sees a normal peak
    out = AnomalyDetector(seed=3).process_many(x)
    at = t0 + int(np.flatnonzero(out["is_anomaly"][day])[0])
    block = int(out["scale"][at])
    assert block in (16, 32) and (at + 1) % block == 0  # alerts when a block completes
    # the scale's episode lasts at least until two more of its blocks complete
    assert out["in_episode"][at : at + 2 * block].all()
    assert out["relative_index"][at] <= -(block - 1)  # points back at least to the block start
    assert at + out["relative_index"][at] >= t0 - 4 * block
    high, low = out["attribution_high"][at][0], out["attribution_low"][at][0]
    assert (low > 2 * high) if trough else (high > 2 * low)
    level = x[t0, 0]
    assert abs(out["expected"][at][0] - level) > 0.1  # the expected block mean is not the held one
    assert out["score"][at] < out["threshold"][at]  # the fine score is not what alerted
    assert (out["scale"][~out["is_anomaly"]] == 1).all()
    d = AnomalyDetector(seed=3)
    r = [d.process(row) for row in x[: at + 1]][-1]
    assert r.scale == block and r.is_anomaly and r.relative_index == out["relative_index"][at]
    np.testing.assert_array_equal(r.attribution.high, out["attribution_high"][at])


def test_process_many_is_the_loop_with_scales():
    held, _ = held_day(3, False)
    t = np.arange(len(held))
    other = np.cos(2 * np.pi * t / 200) + np.random.default_rng(2).normal(0, 0.05, t.size)
    other[3000] += 3.0
    x = np.column_stack([other, held[:, 0]])
    ts = t.astype(float)
    many = AnomalyDetector(dimensions=2, seed=6, scales=((8, 2), (16, 4), (32, 8))).process_many(
        x, ts
    )
    d = AnomalyDetector(dimensions=2, seed=6, scales=((8, 2), (16, 4), (32, 8)))
    loop = [d.process(row, timestamp=t) for row, t in zip(x, ts)]
    assert (many["scale"] > 1).any() and (many["scale"][many["is_anomaly"]] == 1).any()
    for key in ("score", "grade", "threshold", "confidence", "relative_index", "scale"):
        np.testing.assert_array_equal(many[key], [getattr(r, key) for r in loop], err_msg=key)
    for key in ("is_anomaly", "in_episode", "start_of_anomaly"):
        np.testing.assert_array_equal(many[key], [getattr(r, key) for r in loop], err_msg=key)
    for i, r in enumerate(loop):
        if r.is_anomaly:
            np.testing.assert_array_equal(many["expected"][i], r.expected)
            np.testing.assert_array_equal(many["attribution_low"][i], r.attribution.low)
            assert r.in_episode
        else:
            assert r.attribution is None and r.expected is None and r.scale == 1


def test_alerts_are_spaced_across_scales():
    x, _ = held_day(1, False)
    out = AnomalyDetector(
        seed=1, scales=((16, 4), (32, 8), (8, 1)), alert_spacing=100
    ).process_many(x)
    alerts = np.flatnonzero(out["is_anomaly"])
    assert len(alerts) >= 2 and np.diff(alerts).min() > 100


@pytest.mark.parametrize("cut", [1000, 1007, 1023, 1024, 1031])
@pytest.mark.parametrize("how", ["bytes", "pickle"])
def test_state_with_scales_continues_exactly_mid_block(how, cut):
    x, _ = held_day(3, False, days=12, day=9)
    a = AnomalyDetector(seed=3, transform="normalize", scales=((16, 4), (32, 8), (5, 3)))
    a.process_many(x[:cut])
    b = (
        AnomalyDetector.from_bytes(a.to_bytes())
        if how == "bytes"
        else pickle.loads(pickle.dumps(a))
    )
    assert b.scales == ((16, 4), (32, 8), (5, 3))
    ra, rb = a.process_many(x[cut:]), b.process_many(x[cut:])
    assert set(ra) == set(RESULT_KEYS) | {"scale"}
    assert_same(ra, rb, tuple(ra))
    assert (ra["scale"] > 1).any()


def test_damaged_state_with_scales_raises_state_error():
    det = AnomalyDetector(seed=1)
    det.process_many(held_day(1, False, days=3, day=1)[0][:700])
    data = det.to_bytes()
    rng = np.random.default_rng(5)
    bads = [data[:n] for n in (0, 5, 13, 21, len(data) // 3, len(data) - 5, len(data) - 1)]
    bads += [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in (17, 300, 20000)]
    bads.append(b"RCFD\x03" + bytes(rng.integers(0, 256, 4000, dtype=np.uint8)))
    bads.append(b"RCFD\x09" + data[5:])
    for k in range(0, len(data), max(1, len(data) // 40)):
        flipped = bytearray(data)
        flipped[k] ^= 0x08
        bads.append(bytes(flipped))
    for bad in bads:
        with pytest.raises(StateError):
            AnomalyDetector.from_bytes(bad)
    assert AnomalyDetector.from_bytes(data).scales == ((16, 4), (32, 8))


def test_signature_shows_the_real_defaults():
    import inspect

    params = inspect.signature(AnomalyDetector).parameters
    det = AnomalyDetector()
    for name in ("shingle_size", "z_factor", "score_floor", "horizon", "warmup", "episode_gap"):
        assert params[name].default == getattr(det, name), name
    assert params["alert_spacing"].default == det.alert_spacing
    assert params["transform"].default == det.transform
    assert params["scales"].default == det.scales


@pytest.mark.parametrize("transform", ["none", "normalize", "difference", "normalize_difference"])
def test_scales_over_every_transform(transform):
    """Block means of the transformed input: finite results, batch = loop, coarse alerts whose
    expected block mean is finite where it is given (in the units the forest sees)."""
    x = spiky(n=1500, at=1200, jump=4.0, dims=2)
    x[900:1000, 0] += 1.0
    kw = {"dimensions": 2, "seed": 2, "transform": transform, "scales": ((4, 2), (8, 1))}
    kw |= {"alert_spacing": 20, "warmup": 30, "output_after": 16}
    many = AnomalyDetector(**kw).process_many(x)
    d = AnomalyDetector(**kw)
    loop = [d.process(row) for row in x]
    np.testing.assert_array_equal(many["grade"], [r.grade for r in loop])
    np.testing.assert_array_equal(many["scale"], [r.scale for r in loop])
    assert np.isfinite(many["score"]).all()
    coarse = np.flatnonzero(many["scale"] > 1)
    assert len(coarse) > 0
    for i in coarse:
        e = many["expected"][i]
        assert np.isfinite(e[~np.isnan(e)]).all() and (~np.isnan(e)).any()
        total = many["attribution_high"][i].sum() + many["attribution_low"][i].sum()
        assert total > 0
