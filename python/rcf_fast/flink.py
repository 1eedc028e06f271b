"""Apache Flink (PyFlink) integration: one forest per key in Flink keyed state.

Use it on a keyed stream of rows ``(key, values)`` or ``(key, values, event_time)``::

    from rcf_fast.flink import RandomCutForestFunction

    scores = ds.key_by(lambda r: r[0]).process(
        RandomCutForestFunction(1, shingle_size=4, seed=7),
        output_type=RandomCutForestFunction.output_type(),
    )
    anomalies = scores.get_side_output(RandomCutForestFunction.ANOMALIES)
    bad_rows = scores.get_side_output(RandomCutForestFunction.BAD_ROWS)

Output rows are ``Row(key, score, count, event_time)``: ``count`` is the number of rows the key's
forest has learned, this one included (1, 2, 3, ... in order per key; a gap or a repeat would
mean a lost or twice-learned row), ``event_time`` the row's third field, else the record's
timestamp, else ``None``. Read the fields by name (``row.score``, ``row["count"]``), not by position:
the alert grade and explanation (issue 13) are to follow ``score``.

Each key's forest is the forest ``rcf_fast.KeyedForests(dimensions, seed=seed, **params)`` gives
that key: a ``RandomCutForest`` with the same parameters and the seed :func:`key_seed` derives from
``seed`` and ``str(key)``, so a key's scores are the same in Flink, in ``KeyedForests`` and in any
process. Without ``seed`` one is drawn when the function is built (on the client), so every
parallel instance and every restore uses the same one.

State: the key's forest lives in a ``ValueState``. With ``state="object"`` (the default) the state
holds the forest object itself with PyFlink's pickled type: within a bundle PyFlink keeps the
written object in its Python-side state cache and serialises it (``RandomCutForest.to_bytes``, the
compact versioned format) only when the bundle finishes, which it always does before a checkpoint
barrier passes; so a checkpoint holds every row processed before it and nothing after.
``state="bytes"`` serialises the forest into a ``bytes`` state after every row (simple, and what
other engines do, but 10-100x slower: see docs/scale_out.md for the measurements).
"""

from __future__ import annotations

import math
import secrets
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

try:
    from pyflink.common import Row, Types
    from pyflink.common.typeinfo import TypeInformation
    from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext
    from pyflink.datastream.state import ValueStateDescriptor
except ImportError as exc:  # pragma: no cover - exercised only without pyflink
    raise ImportError(
        f"rcf_fast.flink needs PyFlink: pip install 'apache-flink==2.3.0' (import failed: {exc})"
    ) from exc

from rcf_fast import RandomCutForest

__all__ = ["RandomCutForestFunction", "fnv1a64", "key_seed"]

_MASK = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3

# Parameters of RandomCutForest a keyed function accepts (threads is fixed to 1 per forest:
# Flink's parallelism is the way to use more cores).
_FOREST_PARAMS = (
    "shingle_size",
    "num_trees",
    "sample_size",
    "time_decay",
    "sampler",
    "scoring",
    "output_after",
)
_STATE_MODES = ("object", "bytes")
_MAX_REPR = 200
# What ctx.timestamp() returns for a record without a timestamp (Long.MIN_VALUE).
_NO_TIMESTAMP = -(1 << 63)


def fnv1a64(data: bytes) -> int:
    """64-bit FNV-1a hash of ``data`` (offset basis 0xcbf29ce484222325, prime 0x100000001b3)."""
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def _splitmix64(state: int) -> int:
    z = (state + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def key_seed(seed: int, key: str) -> int:
    """The seed of ``key``'s forest, as ``KeyedForests`` derives it.

    ``splitmix64(seed XOR fnv1a64(utf-8 bytes of key))``: one SplitMix64 step, the same number
    in every process and on every platform.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= _MASK:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {type(key).__name__}")
    return _splitmix64(seed ^ fnv1a64(key.encode("utf-8")))


def _describe(row: object) -> str:
    text = repr(row)
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


class RandomCutForestFunction(KeyedProcessFunction):  # type: ignore[misc]
    """Scores then learns each row with its key's forest, kept in Flink keyed state.

    Parameters
    ----------
    dimensions : int
        Values per row (before shingling).
    seed : int, optional
        The collection seed every key's seed is derived from (:func:`key_seed`).
    anomaly_threshold : float
        Rows scoring at or above it also go to the ``ANOMALIES`` side output (default 2.0, as
        the Kinesis consumer).
    state : {"object", "bytes"}
        How the forest is kept in keyed state (see the module documentation).
    cache_size : int
        With ``state="object"``, how many keys' forests the operator keeps live between
        bundles (least recently used dropped first; 0: none). A cached forest is the one the
        state holds, so it saves deserialising the forest at the start of every bundle; each
        standard forest (100 trees, 256 samples) costs ~0.9 MB.
    **params
        ``RandomCutForest`` parameters: shingle_size, num_trees, sample_size, time_decay,
        sampler, scoring, output_after.
    """

    #: Side output of rows at or above ``anomaly_threshold``: ``Row(key, score, count, event_time, values)``.
    ANOMALIES = OutputTag(
        "rcf-anomalies",
        Types.ROW_NAMED(
            ["key", "score", "count", "event_time", "values"],
            [
                Types.STRING(),
                Types.DOUBLE(),
                Types.LONG(),
                Types.LONG(),
                Types.LIST(Types.DOUBLE()),
            ],
        ),
    )
    #: Side output of rows that could not be scored: ``Row(key, row, reason)`` (row as repr).
    BAD_ROWS = OutputTag(
        "rcf-bad-rows",
        Types.ROW_NAMED(["key", "row", "reason"], [Types.STRING(), Types.STRING(), Types.STRING()]),
    )

    def __init__(
        self,
        dimensions: int,
        *,
        seed: int | None = None,
        anomaly_threshold: float = 2.0,
        state: str = "object",
        cache_size: int = 128,
        **params: Any,
    ) -> None:
        unknown = sorted(set(params) - set(_FOREST_PARAMS))
        if unknown:
            raise TypeError(
                f"unknown RandomCutForestFunction parameter(s) {unknown}; expected "
                f"RandomCutForest parameters {list(_FOREST_PARAMS)}"
            )
        if state not in _STATE_MODES:
            raise ValueError(f"state must be one of {_STATE_MODES}, got {state!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an integer >= 0, got {cache_size!r}")
        if seed is None:
            seed = secrets.randbits(64)
        key_seed(seed, "")  # validates the seed
        if isinstance(anomaly_threshold, bool) or not isinstance(anomaly_threshold, (int, float)):
            raise TypeError(f"anomaly_threshold must be a number, got {anomaly_threshold!r}")
        if math.isnan(anomaly_threshold):
            raise ValueError("anomaly_threshold must not be NaN")
        # Builds one forest now so bad parameters fail on the client, not in a task.
        RandomCutForest(dimensions=dimensions, seed=seed, threads=1, **params)
        self.dimensions = int(dimensions)
        self.seed = seed
        self.anomaly_threshold = float(anomaly_threshold)
        self.state_mode = state
        self.cache_size = cache_size if state == "object" else 0
        self.params = dict(params)
        self._state: Any = None
        self._cache: OrderedDict[str, RandomCutForest] = OrderedDict()

    @staticmethod
    def output_type() -> TypeInformation:
        """The type of the main output: ``Row(key, score, count, event_time)``."""
        return Types.ROW_NAMED(
            ["key", "score", "count", "event_time"],
            [Types.STRING(), Types.DOUBLE(), Types.LONG(), Types.LONG()],
        )

    def new_forest(self, key: str) -> RandomCutForest:
        """A fresh forest for ``key`` (seeded with :func:`key_seed`)."""
        return RandomCutForest(
            dimensions=self.dimensions, seed=key_seed(self.seed, key), threads=1, **self.params
        )

    def open(self, runtime_context: RuntimeContext) -> None:
        if self.state_mode == "object":
            info = Types.PICKLED_BYTE_ARRAY()
        else:
            info = Types.PRIMITIVE_ARRAY(Types.BYTE())
        self._state = runtime_context.get_state(ValueStateDescriptor("rcf-forest", info))
        # A (re)started operator trusts only its state: after a restore the cache is empty.
        self._cache = OrderedDict()

    def _load(self, key: str) -> RandomCutForest:
        if self.cache_size:
            forest = self._cache.get(key)
            if forest is not None:
                self._cache.move_to_end(key)
                return forest
        forest = self._load_state(key)
        if self.cache_size:
            self._cache[key] = forest
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return forest

    def _load_state(self, key: str) -> RandomCutForest:
        stored = self._state.value()
        if stored is None:
            return self.new_forest(key)
        if self.state_mode == "object":
            return stored  # type: ignore[no-any-return]
        return RandomCutForest.from_bytes(bytes(stored))

    def _values(self, row: object) -> tuple[list[float] | None, int | None, str]:
        """(values, event_time, reason): values is None when the row is bad."""
        if not isinstance(row, (tuple, list, Row)):
            return None, None, f"row must be (key, values[, event_time]), got {type(row).__name__}"
        n = len(row)
        if n not in (2, 3):
            return None, None, f"row must have 2 or 3 fields (key, values[, event_time]), got {n}"
        values = row[1]
        event_time = row[2] if n == 3 else None
        if event_time is not None and (
            isinstance(event_time, bool) or not isinstance(event_time, int)
        ):
            return None, None, f"event_time must be an integer or None, got {event_time!r}"
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
            return (
                None,
                None,
                f"values must be a list of {self.dimensions} floats, got {type(values).__name__}",
            )
        if len(values) != self.dimensions:
            return None, None, f"values must have {self.dimensions} entries, got {len(values)}"
        out = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return None, None, f"values must be numbers, got {type(v).__name__} {v!r}"
            f = float(v)
            if not math.isfinite(f):
                return None, None, f"values must be finite, got {f!r}"
            out.append(f)
        return out, event_time, ""

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        current = ctx.get_current_key()
        key = current if isinstance(current, str) else str(current)
        values, event_time, reason = self._values(value)
        if values is None:
            yield self.BAD_ROWS, Row(key, _describe(value), reason)
            return
        if event_time is None:
            event_time = ctx.timestamp()
            if event_time is not None and event_time <= _NO_TIMESTAMP:
                event_time = None
        forest = self._load(key)
        score = forest.score_update(values)
        count = forest.entries_seen
        if self.state_mode == "object":
            self._state.update(forest)
        else:
            self._state.update(forest.to_bytes())
        yield Row(key, score, count, event_time)
        if score >= self.anomaly_threshold:
            yield self.ANOMALIES, Row(key, score, count, event_time, values)
