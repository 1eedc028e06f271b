"""Print the figures docs/api.md quotes: rcf_fast's RCF score against krcf on NYC taxi.

    python benches/agreement_figures.py

The same comparison as tests/test_agreement.py (100 trees, 256 samples, shingle 4, seeds 1 and
2, the first 500 points left out), with the numbers printed instead of bounded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from rcf_fast import RandomCutForest
from test_agreement import WARMUP, krcf_scores

x = np.loadtxt(ROOT / "data" / "nyc_taxi.csv", delimiter=",", skiprows=1, usecols=1)
ours = RandomCutForest(shingle_size=4, seed=1).score_update_many(x)[WARMUP:]
k1, k2 = krcf_scores(x, 1)[WARMUP:], krcf_scores(x, 2)[WARMUP:]
print(f"median score: rcf_fast {np.median(ours):.3f}, krcf {np.median(k1):.3f}")
print(
    f"Spearman rank correlation: rcf_fast vs krcf {spearmanr(ours, k1).correlation:.3f}, "
    f"krcf seed 1 vs seed 2 {spearmanr(k1, k2).correlation:.3f}"
)
