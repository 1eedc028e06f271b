"""rcf_fast.AnomalyDetector: graded alerts, explanations, batch = loop, exact continuation."""

from __future__ import annotations

import pickle

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
    # A level shift that lasts: one alert, then the episode goes on without new alerts.
    x = spiky(jump=0.0)
    x[1800:1830, 0] += 5.0
    out = AnomalyDetector(seed=7).process_many(x)
    starts = np.flatnonzero(out["is_anomaly"][1790:1840])
    assert len(starts) == 1
    assert out["in_episode"][1790 + starts[0] : 1825].all()
