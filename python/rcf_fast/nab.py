"""The Numenta Anomaly Benchmark's score, computed the way NAB's own code computes it.

NAB (Lavin & Ahmad 2015; numenta/NAB ``nab/sweeper.py``, ``nab/optimizer.py``,
``nab/runner.py``, ``config/profiles.json``) scores a detector's per-row anomaly scores as follows:

* The first ``min(floor(0.15 * n), 0.15 * 5000)`` rows of a file are a probation period: they are
  left out of the scoring (so are windows, or parts of windows, inside it).
* A row inside a labelled window at index ``i`` (window ``[a, b]``, width ``w = b - a + 1``)
  is worth ``tp * S(-(b - i + 1) / w) / S(-1)``, with the scaled sigmoid
  ``S(x) = 2 / (1 + exp(5 x)) - 1`` (``-1`` for ``x > 3``); a window is worth the best of its
  detected rows (the earliest detection), or ``-fn`` when nothing in it was detected.
* A detected row outside every window costs ``fp * S(|i - b'| / (w' - 1))`` after the previous
  window ``[a', b']`` (``-fp`` before the first window); every such row counts.
* A row is detected when its anomaly score is ``>=`` the threshold. One threshold is chosen for
  the whole corpus: the one with the highest total (NAB's sweep over every distinct score;
  among equal totals the highest threshold).
* Normalised score: ``100 * (raw - null) / (perfect - null)``, ``null`` being the null
  detector's raw score (a constant score, optimised the same way) and ``perfect`` the number of
  windows times ``tp``.

Only the order of the scores matters, so scores need not lie in ``[0, 1]``.

Beyond NAB's score this module reports the point-wise ROC-AUC (rows in windows are positives,
probation rows left out) and the window hit rate at the chosen threshold (windows with at least
one detection / windows).

``rcf-fast nab DATA_DIR`` runs detectors over NAB-format data (``DATA_DIR/data/**.csv``
with ``timestamp,value`` rows and ``DATA_DIR/labels/combined_windows.json``) and prints the three
profiles' scores.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

__all__ = [
    "PROFILES",
    "NabDataError",
    "NabFile",
    "ProfileResult",
    "load_corpus",
    "probation_length",
    "roc_auc",
    "scaled_sigmoid",
    "score_corpus",
    "score_corpus_all_profiles",
]

PROFILES: dict[str, dict[str, float]] = {
    # numenta/NAB config/profiles.json (tnWeight is unused by the scorer)
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11},
}
PROBATION_PERCENT = 0.15

# Window marks of a row: its window's number (>= 0), or one of these.
_OUTSIDE = -1
_PROBATION = -2


class NabDataError(ValueError):
    """NAB-format data or labels that cannot be scored (missing files, unknown timestamps...)."""


def scaled_sigmoid(x: float) -> float:
    """NAB's ``scaledSigmoid``: ``2 * sigmoid(-5 x) - 1``, and ``-1`` beyond ``x > 3``."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def probation_length(n: int, percent: float = PROBATION_PERCENT) -> float:
    """Rows at the start of an ``n``-row file that NAB leaves out of the score."""
    return min(math.floor(percent * n), percent * 5000)


@dataclass
class NabFile:
    """One data file: its name (``realKnownCause/nyc_taxi.csv``), rows and windows (row indices)."""

    name: str
    timestamps: list[datetime]
    values: np.ndarray
    windows: list[tuple[int, int]] = field(default_factory=list)

    def labels(self) -> np.ndarray:
        """1 for rows inside a window, else 0."""
        out = np.zeros(len(self.values), dtype=np.int8)
        for a, b in self.windows:
            out[a : b + 1] = 1
        return out


def _parse_time(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise NabDataError(
            f"{where}: timestamp {text!r} is not 'YYYY-MM-DD HH:MM:SS[.ffffff]'"
        ) from None


def _read_csv(path: str, name: str) -> tuple[list[datetime], np.ndarray]:
    times: list[datetime] = []
    values: list[float] = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise NabDataError(f"{name}: expected a 'timestamp,value' header, got {header!r}")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise NabDataError(
                    f"{name} line {line_no}: expected 'timestamp,value', got {row!r}"
                )
            times.append(_parse_time(row[0], f"{name} line {line_no}"))
            try:
                values.append(float(row[1]))
            except ValueError:
                raise NabDataError(
                    f"{name} line {line_no}: value {row[1]!r} is not a number"
                ) from None
    return times, np.asarray(values, dtype=np.float64)


def _window_indices(
    name: str, times: Sequence[datetime], limits: Iterable[Sequence[str]]
) -> list[tuple[int, int]]:
    index = {t: i for i, t in enumerate(times)}
    out: list[tuple[int, int]] = []
    for limit in limits:
        if not isinstance(limit, (list, tuple)) or len(limit) != 2:
            raise NabDataError(f"{name}: a window must be [start, end], got {limit!r}")
        ends = []
        for text in limit:
            if not isinstance(text, str):
                raise NabDataError(f"{name}: window limit {text!r} is not a timestamp string")
            t = _parse_time(text, f"{name} window")
            if t not in index:
                raise NabDataError(f"{name}: window limit {text} is not a timestamp of the file")
            ends.append(index[t])
        a, b = ends
        if b < a or (out and a <= out[-1][1]):
            raise NabDataError(f"{name}: windows must be ordered and disjoint, got {limit!r}")
        out.append((a, b))
    return out


def load_corpus(data_dir: str, files: Iterable[str] | None = None) -> list[NabFile]:
    """Reads ``data_dir/labels/combined_windows.json`` and every labelled file under
    ``data_dir/data`` that exists (or only ``files``, names as in the labels)."""
    labels_path = os.path.join(data_dir, "labels", "combined_windows.json")
    if not os.path.isfile(labels_path):
        raise NabDataError(
            f"no NAB labels at {labels_path}: expected a NAB-format directory with "
            "data/<category>/<file>.csv and labels/combined_windows.json"
        )
    with open(labels_path) as f:
        try:
            windows = json.load(f)
        except json.JSONDecodeError as exc:
            raise NabDataError(f"{labels_path}: not JSON ({exc})") from None
    if not isinstance(windows, dict):
        raise NabDataError(f"{labels_path}: expected an object keyed by file name")
    wanted = sorted(windows) if files is None else list(files)
    corpus = []
    for name in wanted:
        if name not in windows:
            raise NabDataError(f"{name}: not in {labels_path}")
        path = os.path.join(data_dir, "data", name)
        if not os.path.isfile(path):
            if files is None:
                continue  # a subset of NAB: score the files that are here
            raise NabDataError(f"{name}: no data file at {path}")
        times, values = _read_csv(path, name)
        corpus.append(NabFile(name, times, values, _window_indices(name, times, windows[name])))
    if not corpus:
        raise NabDataError(f"no labelled data files under {os.path.join(data_dir, 'data')}")
    return corpus


def _sweep_rows(
    n: int, windows: Sequence[tuple[int, int]], profile: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: NAB's sweep score (its worth if detected) and its window mark."""
    tp, fp = profile["tpWeight"], profile["fpWeight"]
    max_tp = scaled_sigmoid(-1.0)
    probation = probation_length(n)
    sweep = np.empty(n, dtype=np.float64)
    mark = np.full(n, _OUTSIDE, dtype=np.int64)
    prev_right: int | None = None
    prev_width = 0.0
    w = 0
    i = 0
    while i < n:
        if w < len(windows) and i == windows[w][0]:
            a, b = windows[w]
            width = float(b - a + 1)
            for j in range(a, b + 1):
                sweep[j] = scaled_sigmoid(-(b - j + 1) / width) * tp / max_tp
                mark[j] = w
            prev_right, prev_width = b, width
            w += 1
            i = b + 1
            continue
        if prev_right is None:
            sweep[i] = -1.0 * fp
        else:
            # NAB divides by (width - 1): a one-row window makes this infinite (x > 3: -1).
            denom = prev_width - 1.0
            x = abs(prev_right - i) / denom if denom > 0 else math.inf
            sweep[i] = scaled_sigmoid(x) * fp
        i += 1
    cut = math.ceil(probation)  # rows i < probation are probationary
    mark[:cut] = _PROBATION
    return sweep, mark


@dataclass
class ProfileResult:
    """One profile's result over a corpus."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    tp: int
    fp: int
    fn: int
    tn: int
    windows: int
    windows_detected: int
    per_file: dict[str, float]

    @property
    def score(self) -> float:
        """NAB's normalised score: 0 for the null detector, 100 for the perfect one."""
        if self.perfect == self.null:
            return 0.0
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)

    @property
    def window_hit_rate(self) -> float:
        """Windows with at least one detection at the chosen threshold, over all windows."""
        return self.windows_detected / self.windows if self.windows else float("nan")


def _sweep_thresholds(
    scores: np.ndarray, sweep: np.ndarray, mark: np.ndarray, fn_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """NAB's ``calcScoreByThreshold`` over rows of a whole corpus (window marks unique across
    files): candidate thresholds (``inf`` first: nothing detected) and the total at each."""
    keep = mark != _PROBATION
    s, sw, mk = scores[keep], sweep[keep], mark[keep]
    order = np.argsort(-s, kind="stable")
    s, sw, mk = s[order], sw[order], mk[order]
    windows = np.unique(mk[mk >= 0])
    best = {int(k): -fn_weight for k in windows}
    win_sum = -fn_weight * len(windows)
    fp_sum = 0.0
    thresholds = [math.inf]
    totals = [win_sum]
    for k in range(len(s)):
        m = int(mk[k])
        v = float(sw[k])
        if m < 0:
            fp_sum += v
        elif v > best[m]:
            win_sum += v - best[m]
            best[m] = v
        if k + 1 == len(s) or s[k + 1] != s[k]:
            thresholds.append(float(s[k]))
            totals.append(fp_sum + win_sum)
    return np.asarray(thresholds), np.asarray(totals)


def _check_scores(f: NabFile, scores: Any) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (len(f.values),):
        raise NabDataError(
            f"{f.name}: expected {len(f.values)} scores (one per row), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise NabDataError(f"{f.name}: scores must be finite numbers (NaN or inf found)")
    return arr


def _stack(
    corpus: Sequence[NabFile], results: Mapping[str, Any], profile: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    scores, sweeps, marks, owners = [], [], [], []
    offset = 0
    for fi, f in enumerate(corpus):
        if f.name not in results:
            raise NabDataError(f"no scores for {f.name}")
        s = _check_scores(f, results[f.name])
        sw, mk = _sweep_rows(len(s), f.windows, profile)
        mk = np.where(mk >= 0, mk + offset, mk)
        offset += len(f.windows)
        scores.append(s)
        sweeps.append(sw)
        marks.append(mk)
        owners.append(np.full(len(s), fi))
    return (
        np.concatenate(scores),
        np.concatenate(sweeps),
        np.concatenate(marks),
        np.concatenate(owners),
    )


def _raw_at(
    scores: np.ndarray, sweep: np.ndarray, mark: np.ndarray, threshold: float, fn_weight: float
) -> tuple[float, dict[str, int], int, int]:
    keep = mark != _PROBATION
    det = keep & (scores >= threshold)
    fp_rows = det & (mark == _OUTSIDE)
    total = float(np.sum(sweep[fp_rows]))
    windows = np.unique(mark[mark >= 0])
    detected = 0
    for w in windows:
        hit = det & (mark == w)
        if hit.any():
            total += float(np.max(sweep[hit]))
            detected += 1
        else:
            total -= fn_weight
    in_win = keep & (mark >= 0)
    counts = {
        "tp": int(np.sum(det & in_win)),
        "fp": int(np.sum(fp_rows)),
        "fn": int(np.sum(in_win & ~det)),
        "tn": int(np.sum(keep & (mark == _OUTSIDE) & ~det)),
    }
    return total, counts, len(windows), detected


def _best(
    scores: np.ndarray, sweep: np.ndarray, mark: np.ndarray, fn: float
) -> tuple[float, float]:
    thresholds, totals = _sweep_thresholds(scores, sweep, mark, fn)
    k = int(np.argmax(totals))  # first maximum: the highest threshold among equal totals
    return float(thresholds[k]), float(totals[k])


def score_corpus(
    corpus: Sequence[NabFile], results: Mapping[str, Any], profile: str = "standard"
) -> ProfileResult:
    """NAB's score of per-file anomaly scores (``results[name]``, one per row) for one profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown NAB profile {profile!r}; expected one of {sorted(PROFILES)}")
    weights = PROFILES[profile]
    scores, sweep, mark, owner = _stack(corpus, results, weights)
    fn_w = weights["fnWeight"]
    threshold, raw = _best(scores, sweep, mark, fn_w)
    # The null detector: one constant score everywhere, optimised the same way.
    _, null = _best(np.zeros_like(scores), sweep, mark, fn_w)
    _, counts, n_windows, detected = _raw_at(scores, sweep, mark, threshold, fn_w)
    per_file = {}
    for fi, f in enumerate(corpus):
        sel = owner == fi
        per_file[f.name] = _raw_at(scores[sel], sweep[sel], mark[sel], threshold, fn_w)[0]
    perfect = sum(len(f.windows) for f in corpus) * weights["tpWeight"]
    return ProfileResult(
        profile=profile,
        threshold=threshold,
        raw=raw,
        null=null,
        perfect=perfect,
        windows=n_windows,
        windows_detected=detected,
        per_file=per_file,
        **counts,
    )


def score_corpus_all_profiles(
    corpus: Sequence[NabFile], results: Mapping[str, Any]
) -> dict[str, ProfileResult]:
    """:func:`score_corpus` for NAB's three profiles."""
    return {p: score_corpus(corpus, results, p) for p in PROFILES}


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve (ties count one half): the chance that a random positive row
    scores above a random negative one. NaN without both classes."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in shape: {s.shape} vs {y.shape}")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks for ties
    n = len(s)
    bounds = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n]])
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def corpus_roc_auc(corpus: Sequence[NabFile], results: Mapping[str, Any]) -> float:
    """Point-wise ROC-AUC over all files (probation rows left out)."""
    s, y = [], []
    for f in corpus:
        arr = _check_scores(f, results[f.name])
        cut = math.ceil(probation_length(len(arr)))
        s.append(arr[cut:])
        y.append(f.labels()[cut:])
    return roc_auc(np.concatenate(s), np.concatenate(y))


# --- detectors run over the corpus ------------------------------------------------------------

DetectorFn = Callable[[NabFile, int], np.ndarray]


def _forest_scores(f: NabFile, seed: int) -> np.ndarray:
    from rcf_fast import RandomCutForest

    forest = RandomCutForest(dimensions=1, shingle_size=DEFAULT_SHINGLE, seed=seed)
    return np.asarray(forest.score_update_many(f.values.reshape(-1, 1)))


def _detector_grades(f: NabFile, seed: int) -> np.ndarray:
    import rcf_fast

    det = rcf_fast.AnomalyDetector(dimensions=1, seed=seed)  # type: ignore[attr-defined]
    ts = np.array([t.timestamp() for t in f.timestamps])
    out = det.process_many(f.values.reshape(-1, 1), ts)
    return np.asarray(out["grade"])


def _krcf_scores(f: NabFile, seed: int) -> np.ndarray:
    import krcf

    forest = krcf.RandomCutForest(
        {
            "dimensions": 1,
            "shingle_size": DEFAULT_SHINGLE,
            "num_trees": 100,
            "sample_size": 256,
            "output_after": 32,
            "random_seed": seed,
            "internal_shingling": True,
        }
    )
    out = np.empty(len(f.values))
    for i, v in enumerate(f.values):
        p = [float(v)]
        out[i] = forest.score(p)
        forest.update(p)
    return out


DEFAULT_SHINGLE = 8
DETECTORS: dict[str, DetectorFn] = {
    "forest": _forest_scores,
    "detector": _detector_grades,
    "krcf": _krcf_scores,
}


def run_detector(corpus: Sequence[NabFile], detector: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-file scores of a named detector (``forest``: RandomCutForest's RCF score with
    shingle 8; ``detector``: AnomalyDetector's grade with its defaults, coarse scales 16x4 and
    32x8 included; ``krcf``)."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; expected one of {sorted(DETECTORS)}")
    return {f.name: DETECTORS[detector](f, seed) for f in corpus}


def report(corpus: Sequence[NabFile], results: Mapping[str, Any]) -> dict[str, Any]:
    """All figures for one detector: the three profiles, ROC-AUC, window hit rate."""
    profiles = score_corpus_all_profiles(corpus, results)
    return {
        "profiles": {
            name: {
                "score": r.score,
                "raw": r.raw,
                "threshold": r.threshold,
                "window_hit_rate": r.window_hit_rate,
                "tp": r.tp,
                "fp": r.fp,
                "fn": r.fn,
            }
            for name, r in profiles.items()
        },
        "roc_auc": corpus_roc_auc(corpus, results),
    }


def add_cli(sub: Any) -> None:
    """Registers ``rcf-fast nab`` on the CLI's subparsers."""
    p = sub.add_parser(
        "nab",
        help="score detectors on NAB-format data with NAB's scoring",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "data_dir", help="NAB-format directory (data/**.csv, labels/combined_windows.json)"
    )
    p.add_argument(
        "--detectors",
        default="forest,detector",
        help=f"comma-separated, from {','.join(DETECTORS)}",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds",
        help="comma-separated seeds: run each detector once per seed and print the mean figures "
        "(one seed moves a small corpus's score by a few points); overrides --seed",
    )
    p.add_argument(
        "--files", help="comma-separated file names (as in the labels) to score only those"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def _parse_seeds(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        try:
            seed = int(part.strip())
        except ValueError:
            raise ValueError(
                f"--seeds {text!r}: expected whole numbers separated by commas"
            ) from None
        if not 0 <= seed < 2**64:
            raise ValueError(f"--seeds: {seed} is out of range (0 to 2**64 - 1)")
        seeds.append(seed)
    if len(seeds) > 100:
        raise ValueError(f"--seeds: at most 100 seeds, got {len(seeds)}")
    return seeds


def _mean_report(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The figures of several :func:`report` results averaged (counts included)."""
    profiles = {
        name: {
            key: float(np.mean([r["profiles"][name][key] for r in reports]))
            for key in reports[0]["profiles"][name]
        }
        for name in reports[0]["profiles"]
    }
    return {"profiles": profiles, "roc_auc": float(np.mean([r["roc_auc"] for r in reports]))}


def cli_main(args: argparse.Namespace) -> int:
    """``rcf-fast nab``: prints one line per detector and profile."""
    try:
        files = args.files.split(",") if args.files else None
        corpus = load_corpus(args.data_dir, files)
        names = [d.strip() for d in args.detectors.split(",") if d.strip()]
        for d in names:
            if d not in DETECTORS:
                raise ValueError(f"unknown detector {d!r}; expected one of {sorted(DETECTORS)}")
        seeds = _parse_seeds(args.seeds) if args.seeds is not None else [args.seed]
    except (NabDataError, ValueError, OSError) as exc:
        sys.stderr.write(f"rcf-fast nab: error: {exc}\n")
        return 2
    out: dict[str, Any] = {}
    windows = sum(len(f.windows) for f in corpus)
    if not args.json:
        print(
            f"{len(corpus)} files, {sum(len(f.values) for f in corpus)} rows, {windows} windows"
            + (f", mean of seeds {','.join(map(str, seeds))}" if len(seeds) > 1 else "")
        )
        print(
            f"{'detector':<10} {'standard':>9} {'low_FP':>9} {'low_FN':>9} {'ROC-AUC':>8} "
            f"{'hit rate':>9} {'seconds':>8}"
        )
    for d in names:
        t0 = time.perf_counter()
        reps = [report(corpus, run_detector(corpus, d, seed)) for seed in seeds]
        secs = (time.perf_counter() - t0) / len(seeds)
        rep = _mean_report(reps) if len(reps) > 1 else reps[0]
        rep["seconds"] = secs
        if len(reps) > 1:
            rep["seeds"] = seeds
        out[d] = rep
        if not args.json:
            pr = rep["profiles"]
            print(
                f"{d:<10} {pr['standard']['score']:9.1f} {pr['reward_low_FP_rate']['score']:9.1f} "
                f"{pr['reward_low_FN_rate']['score']:9.1f} {rep['roc_auc']:8.3f} "
                f"{pr['standard']['window_hit_rate']:9.2f} {secs:8.1f}"
            )
    if args.json:
        print(json.dumps(out, indent=2))
    return 0
