"""Apache Flink (PyFlink) integration: one forest per key in Flink keyed state.

Use it on a keyed stream of rows ``(key, values)`` or ``(key, values, event_time)``::

    from rcf_fast.flink import RandomCutForestFunction

    scores = ds.key_by(lambda r: r[0]).process(
        RandomCutForestFunction(1, shingle_size=4, seed=7),
        output_type=RandomCutForestFunction.output_type(),
    )
    anomalies = scores.get_side_output(RandomCutForestFunction.ANOMALIES)
    bad_rows = scores.get_side_output(RandomCutForestFunction.BAD_ROWS)

Output rows are ``Row(key, score, count, event_time, grade, is_anomaly)``: ``count`` is the number
of rows the key's forest has learned, this one included (1, 2, 3, ... in order per key; a gap or a
repeat would mean a lost or twice-learned row), ``event_time`` the row's third field, else the
record's timestamp, else ``None``. ``grade`` and ``is_anomaly`` come from the key's alert grader
(``grading``, on by default): one ``rcf_fast.Thresholder`` per key, kept in keyed state next to the
key's forest and fed that key's scores in order, so a key's grades are those of a
``Thresholder`` fed its scores (a score of 0, forest not ready, is not graded). ``is_anomaly`` is an
alert at the start of an anomaly episode. With ``grading=False``, ``grade`` is ``None`` and
``is_anomaly`` is ``score >= anomaly_threshold``. Fields may be read by name or by position (new
fields are only ever appended).

The ``ANOMALIES`` side output carries the rows with ``is_anomaly`` and their explanation:
``Row(key, score, count, event_time, values, grade, attribution)`` where ``attribution`` is
``Row(high, low)``, each a list of one double per input dimension (``RandomCutForest.attribution``
computed on the forest before it learns the row, so it explains the score). A job must take at
least one of the side outputs (``get_side_output``, even to discard it): when a job takes none,
PyFlink sends side-output records down the main output, whose coder fails on the first alert or
bad row.

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
other engines do, but 10-100x slower: see docs/scale_out.md for the measurements). Either way the
key's thresholder is kept with its forest: ``state="object"`` pickles the pair ``(forest,
thresholder)``; ``state="bytes"`` frames them (``b"RCFFLNK\x01"``, the forest's byte length as a
little-endian u64, the forest's ``to_bytes()``, then the thresholder's ``to_bytes()``, empty without
grading). State written before grading existed (a bare forest, or bare forest bytes) still loads: the
key's thresholder then starts afresh.
"""

from __future__ import annotations

import math
import secrets
import struct
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

from rcf_fast import RandomCutForest, Thresholder

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
# Header of a key's framed state with state="bytes" (then forest length as u64 LE, forest, grader).
_FRAME = b"RCFFLNK\x01"
_FRAME_LEN = struct.Struct("<Q")
# A key's state: its forest and its thresholder (None without grading).
_KeyState = tuple[RandomCutForest, "Thresholder | None"]
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
        Without grading: rows scoring at or above it are anomalies (``is_anomaly``, and the
        ``ANOMALIES`` side output); default 2.0, as the Kinesis consumer. Unused with grading.
    grading : bool or dict
        Per-key alert grading (default ``True``): a dict holds ``rcf_fast.Thresholder``
        parameters (z_factor, score_floor, horizon, warmup, episode_gap, alert_spacing), ``True``
        its defaults, ``False`` no grading.
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

    #: Side output of the alerts (``is_anomaly``), explained:
    #: ``Row(key, score, count, event_time, values, grade, attribution)``, ``attribution`` a
    #: ``Row(high, low)`` of per-input-dimension lists.
    ANOMALIES = OutputTag(
        "rcf-anomalies",
        Types.ROW_NAMED(
            ["key", "score", "count", "event_time", "values", "grade", "attribution"],
            [
                Types.STRING(),
                Types.DOUBLE(),
                Types.LONG(),
                Types.LONG(),
                Types.LIST(Types.DOUBLE()),
                Types.DOUBLE(),
                Types.ROW_NAMED(
                    ["high", "low"], [Types.LIST(Types.DOUBLE()), Types.LIST(Types.DOUBLE())]
                ),
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
        grading: bool | dict[str, Any] = True,
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
        # Builds one forest (and thresholder) now so bad parameters fail on the client, not in
        # a task.
        RandomCutForest(dimensions=dimensions, seed=seed, threads=1, **params)
        if grading is True:
            self.grading: dict[str, Any] | None = {}
        elif grading is False:
            self.grading = None
        elif isinstance(grading, dict):
            self.grading = dict(grading)
        else:
            raise TypeError(
                f"grading must be True, False or a dict of Thresholder parameters, got {grading!r}"
            )
        if self.grading is not None:
            try:
                Thresholder(**self.grading)
            except TypeError as exc:
                raise TypeError(f"grading parameters {self.grading}: {exc}") from None
            except ValueError as exc:
                raise ValueError(f"grading parameters {self.grading}: {exc}") from None
        self.dimensions = int(dimensions)
        self.seed = seed
        self.anomaly_threshold = float(anomaly_threshold)
        self.state_mode = state
        self.cache_size = cache_size if state == "object" else 0
        self.params = dict(params)
        self._state: Any = None
        self._cache: OrderedDict[str, _KeyState] = OrderedDict()

    @staticmethod
    def output_type() -> TypeInformation:
        """The type of the main output: ``Row(key, score, count, event_time, grade, is_anomaly)``."""
        return Types.ROW_NAMED(
            ["key", "score", "count", "event_time", "grade", "is_anomaly"],
            [
                Types.STRING(),
                Types.DOUBLE(),
                Types.LONG(),
                Types.LONG(),
                Types.DOUBLE(),
                Types.BOOLEAN(),
            ],
        )

    def new_forest(self, key: str) -> RandomCutForest:
        """A fresh forest for ``key`` (seeded with :func:`key_seed`)."""
        return RandomCutForest(
            dimensions=self.dimensions, seed=key_seed(self.seed, key), threads=1, **self.params
        )

    def new_grader(self) -> Thresholder | None:
        """A fresh thresholder (``None`` without grading)."""
        return None if self.grading is None else Thresholder(**self.grading)

    def open(self, runtime_context: RuntimeContext) -> None:
        if self.state_mode == "object":
            info = Types.PICKLED_BYTE_ARRAY()
        else:
            info = Types.PRIMITIVE_ARRAY(Types.BYTE())
        self._state = runtime_context.get_state(ValueStateDescriptor("rcf-forest", info))
        # A (re)started operator trusts only its state: after a restore the cache is empty.
        self._cache = OrderedDict()

    def _load(self, key: str) -> _KeyState:
        if self.cache_size:
            held = self._cache.get(key)
            if held is not None:
                self._cache.move_to_end(key)
                return held
        held = self._load_state(key)
        if self.cache_size:
            self._cache[key] = held
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return held

    def _load_state(self, key: str) -> _KeyState:
        stored = self._state.value()
        if stored is None:
            return (self.new_forest(key), self.new_grader())
        if self.state_mode == "object":
            if isinstance(stored, RandomCutForest):  # written before grading existed
                forest, grader = stored, None
            else:
                forest, grader = stored
        else:
            forest, grader = _unframe(bytes(stored))
        if self.grading is None:
            grader = None
        elif grader is None:
            grader = self.new_grader()
        return (forest, grader)

    def _save(self, held: _KeyState) -> None:
        if self.state_mode == "object":
            self._state.update(held)
        else:
            self._state.update(_frame(*held))

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
        held = self._load(key)
        forest, grader = held
        # score then update gives the score and forest score_update gives (tested), and lets
        # an alert be explained by the forest that scored it, before it learns the row.
        score = forest.score(values)
        if grader is None:
            grade = None
            alert = score >= self.anomaly_threshold
        else:
            graded = grader.process(score)
            grade = float(graded["grade"])
            alert = bool(graded["is_anomaly"])
        attribution = forest.attribution(values) if alert else None
        forest.update(values)
        count = forest.entries_seen
        self._save(held)
        yield Row(key, score, count, event_time, grade, alert)
        if attribution is not None:
            explained = Row(
                [float(v) for v in attribution.high], [float(v) for v in attribution.low]
            )
            yield self.ANOMALIES, Row(key, score, count, event_time, values, grade, explained)


def _frame(forest: RandomCutForest, grader: Thresholder | None) -> bytes:
    """A key's state with ``state="bytes"``: header, forest length, forest, thresholder."""
    fb = forest.to_bytes()
    gb = b"" if grader is None else grader.to_bytes()
    return b"".join((_FRAME, _FRAME_LEN.pack(len(fb)), fb, gb))


def _unframe(data: bytes) -> tuple[RandomCutForest, Thresholder | None]:
    """Inverse of :func:`_frame`; bare forest bytes (state written before grading) load too."""
    if not data.startswith(_FRAME):
        return RandomCutForest.from_bytes(data), None
    start = len(_FRAME) + _FRAME_LEN.size
    if len(data) < start:
        raise ValueError(f"keyed state truncated: {len(data)} bytes, header needs {start}")
    (n,) = _FRAME_LEN.unpack_from(data, len(_FRAME))
    if n > len(data) - start:
        raise ValueError(
            f"keyed state truncated: forest of {n} bytes, {len(data) - start} bytes follow"
        )
    forest = RandomCutForest.from_bytes(data[start : start + n])
    rest = data[start + n :]
    return forest, (Thresholder.from_bytes(rest) if rest else None)
