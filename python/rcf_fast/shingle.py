"""Shingling of a whole series, as rrcf's ``shingle`` helper does for streams."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def shingle(series: Sequence[float] | np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Yield the windows ``series[i : i + size]`` for every ``i``, oldest value first.

    Like ``rrcf.shingle``: a series of ``n`` values gives ``n - size + 1`` windows (none when
    ``n < size``). A 2-D series of shape ``(n, d)`` gives windows of shape ``(size, d)``.

    Raises
    ------
    ValueError
        If ``size`` is not a positive integer.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"shingle size must be a positive integer, got {size!r}")
    arr = np.asarray(series)
    for i in range(len(arr) - int(size) + 1):
        yield arr[i : i + size]
