"""Detection quality on planted anomalies in synthetic streams (not NAB data).

NAB's held-out files cannot be used to judge a change made with the local 18, so this program
asks a narrower question on data nobody tuned on: which kinds of anomaly does a detector setting
find, and what does it cost on the others? Four stream shapes (overdispersed counts with a daily
and weekly cycle, a noisy level with a slow drift, log-normal latencies, a daily cycle with
noise), 4,032 points each (14 days of 5-minute data), one planted anomaly per stream between 40%
and 85% of it, a NAB window of 10% of the length around it, scored by ``rcf_fast.nab`` (standard
profile, one best threshold per anomaly kind).

    python benches/quality_synthetic.py                 # defaults against scales=()
    python benches/quality_synthetic.py --streams 24 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import zlib
from datetime import datetime, timedelta

import numpy as np
import rcf_fast
from rcf_fast import nab

DAY = 288  # 5-minute points per day
SHAPES = ("counts", "level", "latency", "cycle")
KINDS = ("spike", "dip", "shift", "burst", "flat_day", "low_day")


def stream(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n)
    if shape == "counts":
        lam = (
            20 * (1.2 + np.sin(2 * np.pi * t / DAY)) * (1 + 0.3 * np.sin(2 * np.pi * t / (7 * DAY)))
        )
        return rng.poisson(rng.gamma(4, lam / 4)).astype(float)
    if shape == "level":
        return np.clip(40 + np.cumsum(rng.normal(0, 0.05, n)) + rng.normal(0, 3, n), 0, 100)
    if shape == "latency":
        return rng.lognormal(3, 0.4, n)
    return 50 + 30 * np.sin(2 * np.pi * t / DAY) ** 2 + rng.normal(0, 8, n)


def plant(v: np.ndarray, kind: str, at: int, rng: np.random.Generator) -> np.ndarray:
    v = v.copy()
    sd, level = float(np.std(v[:at])), float(np.median(v[:at]))
    if kind == "spike":
        v[at] += 6 * sd
    elif kind == "dip":
        v[at] = level - 5 * sd
    elif kind == "shift":
        v[at:] += 2 * sd
    elif kind == "burst":
        v[at : at + 100] += rng.normal(0, 3 * sd, len(v[at : at + 100]))
    elif kind == "flat_day":
        v[at : at + DAY] = np.mean(v[at : at + DAY])
    elif kind == "low_day":
        v[at : at + DAY] = level + 0.6 * (v[at : at + DAY] - level) - 0.5 * sd
    return v


def corpus(kind: str, streams: int, n: int = 4032) -> list[nab.NabFile]:
    start = datetime(2026, 1, 1)
    times = [start + timedelta(minutes=5 * j) for j in range(n)]
    out = []
    for i in range(streams):
        shape = SHAPES[i % len(SHAPES)]
        rng = np.random.default_rng(zlib.crc32(kind.encode()) + i)
        at = int(rng.integers(int(0.4 * n), int(0.85 * n)))
        half = int(0.1 * n) // 2
        values = plant(stream(shape, n, rng), kind, at, rng)
        windows = [] if kind == "none" else [(at - half, min(n - 1, at + half))]
        out.append(nab.NabFile(f"{kind}/{shape}{i}.csv", times, values, windows))
    return out


def grades(f: nab.NabFile, seed: int, **params: object) -> np.ndarray:
    det = rcf_fast.AnomalyDetector(dimensions=1, seed=seed, **params)
    return np.asarray(det.process_many(f.values.reshape(-1, 1))["grade"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=12, help="streams per anomaly kind")
    ap.add_argument("--seeds", default="0", help="forest seeds, comma-separated (scores averaged)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = {"scales=() (one scale)": {"scales": ()}, "defaults": {}}
    print(f"NAB standard score (window hit rate), {args.streams} streams per kind, seeds {seeds}")
    print(f"{'kind':10s}" + "".join(f"{name:>26s}" for name in settings))
    for kind in KINDS:
        files = corpus(kind, args.streams)
        cells = []
        for params in settings.values():
            scores, hits = [], []
            for seed in seeds:
                res = nab.score_corpus(files, {f.name: grades(f, seed, **params) for f in files})
                scores.append(res.score)
                hits.append(res.window_hit_rate)
            cells.append(f"{np.mean(scores):6.1f} ({np.mean(hits):.2f})")
        print(f"{kind:10s}" + "".join(f"{c:>26s}" for c in cells), flush=True)
    # The cost side on its own: alerts on the same streams with nothing planted.
    files = corpus("none", args.streams)
    cells = []
    for params in settings.values():
        alerts = sum(
            int(np.count_nonzero(grades(f, seed, **params))) for f in files for seed in seeds
        )
        points = sum(len(f.values) for f in files) * len(seeds)
        cells.append(f"{1e4 * alerts / points:.1f} per 10k points")
    print(f"{'no anomaly':10s}" + "".join(f"{c:>26s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
