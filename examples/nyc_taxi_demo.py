"""Stream the bundled NYC taxi series (Numenta Anomaly Benchmark, MIT) through a forest.

Prints the top anomalies with timestamp, score and attribution, and writes out/nyc_taxi.png.
Run with `make demo`, or `python examples/nyc_taxi_demo.py [--shingle 48] [--top 8]`.
"""

from __future__ import annotations

import argparse
import csv
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import rcf_fast

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "nyc_taxi.csv"
# NAB's labelled anomaly windows for this series (labels/combined_windows.json).
NAB_WINDOWS = [
    ("2014-10-30 15:30:00", "2014-11-03 22:30:00"),  # NYC marathon
    ("2014-11-25 12:00:00", "2014-11-29 19:00:00"),  # Thanksgiving
    ("2014-12-23 11:30:00", "2014-12-27 18:30:00"),  # Christmas
    ("2014-12-29 21:30:00", "2015-01-03 04:30:00"),  # New year
    ("2015-01-24 20:30:00", "2015-01-29 03:30:00"),  # Snow storm
]


def load(path: Path) -> tuple[list[datetime], np.ndarray]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    stamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
    return stamps, np.array([float(r["value"]) for r in rows])


def in_window(ts: datetime) -> bool:
    return any(datetime.fromisoformat(a) <= ts <= datetime.fromisoformat(b) for a, b in NAB_WINDOWS)


def top_events(scores: np.ndarray, k: int, gap: int) -> list[int]:
    """Indices of the k highest scores, at least `gap` steps apart."""
    chosen: list[int] = []
    for i in np.argsort(scores)[::-1]:
        if all(abs(int(i) - j) >= gap for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--shingle", type=int, default=48, help="observations per point (48 = a day)"
    )
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "nyc_taxi.png")
    args = parser.parse_args()

    stamps, values = load(args.data)
    forest = rcf_fast.RandomCutForest(
        shingle_size=args.shingle, num_trees=100, sample_size=256, seed=42
    )
    # Learn the first week before scoring, so early points are judged against a full forest.
    warm = 7 * 48
    start = time.perf_counter()
    forest.update_many(values[:warm])
    scores = np.zeros(len(values))
    attributions = {}
    # Stream the rest one record at a time, as a consumer would.
    for i in range(warm, len(values)):
        scores[i] = forest.score_update(values[i])
    elapsed = time.perf_counter() - start
    print(
        f"streamed {len(values)} points of {args.data.name} in {elapsed:.2f}s "
        f"({len(values) / elapsed:,.0f} points/s, {forest.num_trees} trees, shingle {args.shingle})"
    )

    # Explain the top events: replay the forest up to each event and ask for its attribution.
    events = top_events(scores, args.top, gap=48)
    replay = rcf_fast.RandomCutForest(
        shingle_size=args.shingle, num_trees=100, sample_size=256, seed=42
    )
    last = 0
    for i in sorted(events):
        replay.update_many(values[last:i])
        attributions[i] = replay.attribution(values[i])
        last = i
    hits = 0
    print(f"\n{'rank':>4}  {'timestamp':19}  {'value':>7}  {'score':>6}  direction  NAB window")
    for rank, i in enumerate(events, 1):
        a = attributions[i]
        direction = "above" if a.high[0] >= a.low[0] else "below"
        hit = in_window(stamps[i])
        hits += hit
        print(
            f"{rank:>4}  {stamps[i]:%Y-%m-%d %H:%M}     {values[i]:>7.0f}  {scores[i]:>6.2f}  "
            f"{direction:9}  {'yes' if hit else '-'}"
            f"   (high {a.high[0]:.2f}, low {a.low[0]:.2f})"
        )
    covered = sum(
        any(
            in_window(stamps[i])
            and datetime.fromisoformat(a) <= stamps[i] <= datetime.fromisoformat(b)
            for i in events
        )
        for a, b in NAB_WINDOWS
    )
    print(
        f"\n{hits}/{len(events)} top events fall in NAB's labelled windows; "
        f"{covered}/{len(NAB_WINDOWS)} windows found"
    )
    plot(stamps, values, scores, events, args.out)
    print(f"plot written to {args.out}")
    alerts(stamps, values)


def alerts(stamps, values) -> None:
    """The same series through AnomalyDetector: one line per anomaly episode, at its start."""
    det = rcf_fast.AnomalyDetector(seed=42)
    out = det.process_many(values)
    starts = np.flatnonzero(out["is_anomaly"])
    print(f"\nAnomalyDetector (defaults): {len(starts)} alerts, one per episode")
    print(f"{'start':16}  {'extent':>7}  {'peak':>5}  {'grade':>5}  explanation  NAB window")
    for i in starts:
        end = i
        while (
            end + 1 < len(values) and out["in_episode"][end + 1] and not out["is_anomaly"][end + 1]
        ):
            end += 1
        hours = (stamps[end] - stamps[i]).total_seconds() / 3600
        peak = out["score"][i : end + 1].max()
        direction = (
            "above" if out["attribution_high"][i, 0] >= out["attribution_low"][i, 0] else "below"
        )
        expected = out["expected"][i, 0]
        block = int(out["scale"][i])  # 1: this point; else a coarse scale's block of points
        seen = values[i - block + 1 : i + 1].mean()
        what = "value" if block == 1 else f"mean of {block} points"
        print(
            f"{stamps[i]:%Y-%m-%d %H:%M}  {hours:>6.1f}h  {peak:>5.2f}  {out['grade'][i]:>5.2f}  "
            f"{what} {seen:.0f} {direction} expected {expected:.0f}  "
            f"{'yes' if in_window(stamps[i]) else '-'}"
        )


def plot(stamps, values, scores, events, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(14, 6), sharex=True)
    ax1.plot(stamps, values, lw=0.6, color="#1f77b4")
    ax1.set_ylabel("taxi passengers / 30 min")
    for a, b in NAB_WINDOWS:
        for ax in (ax1, ax2):
            ax.axvspan(
                datetime.fromisoformat(a), datetime.fromisoformat(b), color="orange", alpha=0.25
            )
    ax2.plot(stamps, scores, lw=0.6, color="#d62728")
    ax2.scatter(
        [stamps[i] for i in events], [scores[i] for i in events], color="black", s=12, zorder=3
    )
    ax2.set_ylabel("RCF anomaly score")
    ax1.set_title(
        "rcf_fast on NYC taxi (NAB): orange = labelled anomaly windows, dots = top events"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
