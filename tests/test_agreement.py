"""Agreement with the peers used as oracles: krcf for the RCF score, rrcf for CoDisp."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rrcf_readme
from rcf_fast import RandomCutForest
from scipy.stats import spearmanr

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import krcf
    import rrcf

WARMUP = 500


def krcf_scores(series: np.ndarray, seed: int) -> np.ndarray:
    opts = {
        "dimensions": 1,
        "shingle_size": 4,
        "num_trees": 100,
        "sample_size": 256,
        "output_after": 64,
        "random_seed": seed,
        "internal_shingling": True,
    }
    forest = krcf.RandomCutForest(opts)
    out = []
    for v in series:
        p = [float(v)]
        out.append(forest.score(p))
        forest.update(p)
    return np.array(out)


@pytest.fixture(scope="module")
def taxi_scores(nyc_taxi):
    x = nyc_taxi
    ours = RandomCutForest(shingle_size=4, seed=1).score_update_many(x)
    return ours, krcf_scores(x, 1), krcf_scores(x, 2)


def test_rcf_score_median_within_15_percent_of_krcf(taxi_scores):
    # Compare once both forests score every point (shingle filled and output_after reached).
    ours, k1, _ = taxi_scores
    m_ours, m_krcf = np.median(ours[WARMUP:]), np.median(k1[WARMUP:])
    assert abs(m_ours - m_krcf) <= 0.15 * m_krcf, (m_ours, m_krcf)


def test_rcf_rank_correlation_matches_krcf_seed_to_seed(taxi_scores):
    ours, k1, k2 = taxi_scores
    between_krcf_seeds = spearmanr(k1[WARMUP:], k2[WARMUP:]).correlation
    ours_vs_krcf = spearmanr(ours[WARMUP:], k1[WARMUP:]).correlation
    assert ours_vs_krcf >= between_krcf_seeds - 0.05, (ours_vs_krcf, between_krcf_seeds)


def rrcf_readme_stream(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """rrcf's README streaming example (40 trees, shingle 4, tree size 256): series, scores."""
    np.random.seed(seed)
    _, avg = rrcf_readme.streaming(rrcf)
    return rrcf_readme.sine_with_dip(), np.array([avg[i] for i in range(len(avg))])


def test_codisp_agrees_with_rrcf_in_distribution():
    sin, theirs = rrcf_readme_stream(0)
    forest = RandomCutForest(
        shingle_size=4,
        num_trees=40,
        sample_size=256,
        sampler="window",
        scoring="codisp",
        output_after=1,
        seed=0,
    )
    ours = forest.score_update_many(sin)[3:]  # first 3 observations only fill the shingle
    assert len(ours) == len(theirs)
    body = slice(50, None)
    for q in (0.25, 0.5, 0.75, 0.9):
        a, b = np.quantile(ours[body], q), np.quantile(theirs[body], q)
        assert abs(a - b) <= 0.2 * b, (q, a, b)
    # Both put the anomaly (the flat stretch at 235..255) on top.
    assert 225 <= int(np.argmax(ours)) <= 256 and 225 <= int(np.argmax(theirs)) <= 256
    assert spearmanr(ours[body], theirs[body]).correlation > 0.3
