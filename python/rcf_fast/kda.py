"""Kinesis Data Analytics SQL's Random Cut Forest functions in Python.

``random_cut_forest(rows, ...)`` and ``random_cut_forest_with_explanation(rows, ...)`` take an
iterable of dict rows (a stream) and yield each row with its columns plus ``ANOMALY_SCORE``
(and ``ANOMALY_EXPLANATION``), with the parameters and meanings of KDA's SQL functions
``RANDOM_CUT_FOREST`` and ``RANDOM_CUT_FOREST_WITH_EXPLANATION``:

* ``number_of_trees`` (100), ``sub_sample_size`` (256): trees and points per tree.
* ``time_decay`` (100000): KDA's ``timeDecay``, how many recent records the model mostly
  considers; it becomes the forest's decay rate ``1 / time_decay`` (rcf_fast's own
  ``RandomCutForest(time_decay=...)`` is that rate, so do not pass 100000 there).
* ``shingle_size`` (1): consecutive records per point.
* ``with_directionality`` (False): add ``DIRECTION`` and ``STRENGTH`` to the explanation.

Like KDA, scores are 0 while the model is in its initial learning phase (the first
``sub_sample_size // 4`` records, and the first ``shingle_size - 1``). The numeric columns are the
int and float (not bool) columns of the first row, in order, unless ``columns`` names them.

``ANOMALY_EXPLANATION`` is a JSON object keyed by numeric column; per column
``ATTRIBUTION_SCORE`` (that column's share of the anomaly score: the shares add up to
``ANOMALY_SCORE``) and, with directionality, ``DIRECTION`` (``"HIGH"`` when the part of the
attribution due to the value being above what the forest expects outweighs the part due to it
being below, else ``"LOW"``) and ``STRENGTH``. KDA's reference does not give a formula for
STRENGTH; its published example output is reproduced by ``|high - low| / min(high, low)``
(0.0922 for a normal record, 7.0982 for a far-out one), which is what we compute (capped at
1e6 when one side is 0). As in KDA's output, the values are strings with four decimals.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from rcf_fast._rcf import RandomCutForest

__all__ = ["KdaInputError", "random_cut_forest", "random_cut_forest_with_explanation"]

STRENGTH_CAP = 1e6


class KdaInputError(ValueError):
    """A row that cannot be scored (missing or non-numeric column), or bad parameters."""


def _is_number(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _positive_int(name: str, v: object, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or int(v) < low:
        raise KdaInputError(f"{name} must be an integer >= {low}, got {v!r}")
    return int(v)


def _forest(
    dims: int,
    number_of_trees: int,
    sub_sample_size: int,
    time_decay: float,
    shingle_size: int,
    seed: int | None,
) -> RandomCutForest:
    return RandomCutForest(
        dimensions=dims,
        shingle_size=shingle_size,
        num_trees=number_of_trees,
        sample_size=sub_sample_size,
        time_decay=1.0 / time_decay,
        seed=seed,
    )


def _check_params(
    number_of_trees: object, sub_sample_size: object, time_decay: object, shingle_size: object
) -> tuple[int, int, float, int]:
    trees = _positive_int("number_of_trees", number_of_trees)
    sample = _positive_int("sub_sample_size", sub_sample_size, 2)
    shingle = _positive_int("shingle_size", shingle_size)
    if not _is_number(time_decay) or not (float(time_decay) >= 1.0):  # type: ignore[arg-type]
        raise KdaInputError(
            f"time_decay is KDA's record count (default 100000) and must be a number >= 1, "
            f"got {time_decay!r}"
        )
    return trees, sample, float(time_decay), shingle  # type: ignore[arg-type]


def _columns(first: Mapping[str, Any], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        cols = list(columns)
        if not cols or not all(isinstance(c, str) for c in cols):
            raise KdaInputError(f"columns must be a non-empty list of names, got {columns!r}")
        return cols
    cols = [k for k, v in first.items() if _is_number(v)]
    if not cols:
        raise KdaInputError(
            f"the first row has no numeric column (int or float) to score: {dict(first)!r}"
        )
    return cols


def _values(row: Any, cols: Sequence[str], index: int) -> list[float]:
    if not isinstance(row, Mapping):
        raise KdaInputError(f"row {index}: expected a dict, got {type(row).__name__}")
    out = []
    for c in cols:
        if c not in row:
            raise KdaInputError(f"row {index}: numeric column {c!r} is missing")
        v = row[c]
        if not _is_number(v):
            raise KdaInputError(f"row {index}: column {c!r} must be a number, got {v!r}")
        f = float(v)
        if not math.isfinite(f):
            raise KdaInputError(f"row {index}: column {c!r} must be finite, got {v!r}")
        out.append(f)
    return out


def random_cut_forest(
    rows: Iterable[Mapping[str, Any]],
    number_of_trees: int = 100,
    sub_sample_size: int = 256,
    time_decay: float = 100000,
    shingle_size: int = 1,
    *,
    columns: Sequence[str] | None = None,
    seed: int | None = None,
) -> Iterator[dict[str, Any]]:
    """KDA's ``RANDOM_CUT_FOREST``: yields each row with ``ANOMALY_SCORE`` added."""
    trees, sample, decay, shingle = _check_params(
        number_of_trees, sub_sample_size, time_decay, shingle_size
    )
    forest = None
    cols: list[str] = []
    for i, row in enumerate(rows):
        if forest is None:
            if not isinstance(row, Mapping):
                raise KdaInputError(f"row {i}: expected a dict, got {type(row).__name__}")
            cols = _columns(row, columns)
            forest = _forest(len(cols), trees, sample, decay, shingle, seed)
        x = _values(row, cols, i)
        out = dict(row)
        out["ANOMALY_SCORE"] = forest.score_update(x)
        yield out


def _explanation(
    cols: Sequence[str], high: Sequence[float], low: Sequence[float], directionality: bool
) -> str:
    doc: dict[str, dict[str, str]] = {}
    for c, h, lo in zip(cols, high, low):
        entry = {"ATTRIBUTION_SCORE": f"{h + lo:.4f}"}
        if directionality:
            small = min(h, lo)
            strength = abs(h - lo) / small if small > 0 else (STRENGTH_CAP if h != lo else 0.0)
            entry = {
                "DIRECTION": "HIGH" if h > lo else "LOW",
                "STRENGTH": f"{min(strength, STRENGTH_CAP):.4f}",
                **entry,
            }
        doc[c] = entry
    return json.dumps(doc, separators=(",", ":"))


def random_cut_forest_with_explanation(
    rows: Iterable[Mapping[str, Any]],
    number_of_trees: int = 100,
    sub_sample_size: int = 256,
    time_decay: float = 100000,
    shingle_size: int = 1,
    with_directionality: bool = False,
    *,
    columns: Sequence[str] | None = None,
    seed: int | None = None,
) -> Iterator[dict[str, Any]]:
    """KDA's ``RANDOM_CUT_FOREST_WITH_EXPLANATION``: yields each row with ``ANOMALY_SCORE`` and
    ``ANOMALY_EXPLANATION`` (a JSON string) added."""
    trees, sample, decay, shingle = _check_params(
        number_of_trees, sub_sample_size, time_decay, shingle_size
    )
    if not isinstance(with_directionality, bool):
        raise KdaInputError(
            f"with_directionality must be True or False, got {with_directionality!r}"
        )
    forest = None
    cols: list[str] = []
    for i, row in enumerate(rows):
        if forest is None:
            if not isinstance(row, Mapping):
                raise KdaInputError(f"row {i}: expected a dict, got {type(row).__name__}")
            cols = _columns(row, columns)
            forest = _forest(len(cols), trees, sample, decay, shingle, seed)
        x = _values(row, cols, i)
        a = forest.attribution(x)
        forest.update(x)
        out = dict(row)
        out["ANOMALY_SCORE"] = float(a.total)
        out["ANOMALY_EXPLANATION"] = _explanation(
            cols, a.high.tolist(), a.low.tolist(), with_directionality
        )
        yield out
