"""One forest per series key, all built from one configuration, and their versioned state blob.

Two collections share one interface (``score_explain``, ``positions``, ``to_bytes`` /
``load_bytes``, iteration over ``(key, forest)``):

- ``EngineForests`` (what ``ScoringStep`` uses by default): the forests live in the Rust engine
  ``rcf_fast.KeyedForests``; a batch is one call, grouped per key by the engine, keys run in
  parallel on the engine's one pool (no per-forest threads). A new key's seed is the engine's
  ``KeyedForests.derive_seed(seed, key)`` = ``splitmix64(seed ^ fnv1a64(utf8(key)))``.
- ``KeyedForests``: the previous release's collection, a dict of Python-side forests built by a
  factory and seeded by BLAKE2b; kept for injected forest doubles (tests) and as the reference.

Both write the same whole-state blob (``RCFK`` format version 1: magic, version, JSON header with
config, positions and keys, then each key's ``RandomCutForest.to_bytes()``). A blob written by
the previous release loads into ``EngineForests``: its forests are adopted with their BLAKE2b
seeds (``rcf_fast.KeyedForests.adopt``) and continue exactly; keys first seen afterwards get the
engine's seeds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from collections.abc import Iterator, MutableMapping
from typing import Any, Callable

import numpy as np

from rcf_fast._rcf import StateError as _CoreStateError
from rcf_fast.kinesis.errors import ConfigError, StateError
from rcf_fast.kinesis.records import Position

MAGIC = b"RCFK"
FORMAT_VERSION = 1
FOREST_PARAMS = (
    "shingle_size",
    "num_trees",
    "sample_size",
    "time_decay",
    "sampler",
    "scoring",
    "output_after",
    "seed",
    "threads",
)
# Parameters that do not change what a forest learns; a state may be reloaded under other values.
_RUNTIME_ONLY = ("threads",)


def derive_seed(seed: int | None, key: str) -> int:
    """A 63-bit seed for ``key``'s forest, stable across processes and Python versions."""
    digest = hashlib.blake2b(
        f"{seed if seed is not None else ''}\x00{key}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown forest parameters early with the list of known ones."""
    unknown = sorted(set(params) - set(FOREST_PARAMS))
    if unknown:
        raise ConfigError(
            f"unknown forest parameter(s) {unknown}; expected some of {list(FOREST_PARAMS)}"
        )
    return dict(params)


ForestFactory = Callable[..., Any]


def default_factory(**kwargs: Any) -> Any:
    import rcf_fast

    return rcf_fast.RandomCutForest(**kwargs)


def _default_loader(data: bytes) -> Any:
    import rcf_fast

    return rcf_fast.RandomCutForest.from_bytes(data)


class KeyedForests:
    """The forests of every key, plus the per-shard positions they have learned up to."""

    def __init__(
        self,
        params: dict[str, Any],
        factory: ForestFactory | None = None,
        loader: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.params = check_params(params)
        self.factory = factory or default_factory
        self.loader = loader or _default_loader
        self.forests: dict[str, Any] = {}
        self.positions: dict[str, Position] = {}
        self.value_fields: list[str] | None = None
        self.schema_spec: str | None = None

    def get(self, key: str, dimensions: int) -> Any:
        forest = self.forests.get(key)
        if forest is None:
            kwargs = {k: v for k, v in self.params.items() if k != "seed"}
            forest = self.factory(
                dimensions=dimensions, seed=derive_seed(self.params.get("seed"), key), **kwargs
            )
            self.forests[key] = forest
        return forest

    def __len__(self) -> int:
        return len(self.forests)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(sorted(self.forests.items()))

    # -- state -------------------------------------------------------------------------------

    def _fingerprint(self) -> dict[str, Any]:
        return {k: v for k, v in sorted(self.params.items()) if k not in _RUNTIME_ONLY}

    def to_bytes(self) -> bytes:
        """Versioned blob: magic, version, JSON header (config, positions, keys), forest bytes."""
        blobs = [(key, forest.to_bytes()) for key, forest in sorted(self.forests.items())]
        header = {
            "config": self._fingerprint(),
            "positions": {s: [str(p[0]), p[1], p[2]] for s, p in sorted(self.positions.items())},
            "value_fields": self.value_fields,
            "schema": self.schema_spec,
            "keys": [[key, len(b)] for key, b in blobs],
        }
        head = json.dumps(header, sort_keys=True).encode()
        return b"".join(
            [MAGIC, struct.pack("<HI", FORMAT_VERSION, len(head)), head] + [b for _, b in blobs]
        )

    def load_bytes(self, data: bytes) -> None:
        """Replace this object's forests and positions with a blob from ``to_bytes``."""
        header, entries = parse_blob(data, self._fingerprint())
        forests: dict[str, Any] = {}
        for key, chunk in entries:
            try:
                forests[key] = self.loader(chunk)
            except (ValueError, TypeError) as exc:
                raise StateError(f"forest of key {key!r} does not load: {exc}") from None
        self.forests = forests
        self.positions = header_positions(header)
        self.value_fields = header.get("value_fields")
        self.schema_spec = header.get("schema")

    def score_explain(
        self,
        keys: list[str],
        points: np.ndarray,
        min_score: float,
        origins: list[tuple[str, Position]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Score-then-learn each row for its key, with attributions of rows >= ``min_score``
        (computed before the row is learned); rows in order, one forest call at a time."""
        dims = points.shape[1] if points.ndim == 2 else 0
        scores = np.zeros(len(keys))
        rows: list[int] = []
        high: list[np.ndarray] = []
        low: list[np.ndarray] = []
        for i, key in enumerate(keys):
            forest = self.get(key, dims)
            x = points[i]
            attribution = forest.attribution(x) if min_score != math.inf else None
            scores[i] = float(forest.score_update(x))
            if attribution is not None and scores[i] >= min_score:
                rows.append(i)
                high.append(_fold(attribution.high, dims))
                low.append(_fold(attribution.low, dims))
        shape = (len(rows), dims)
        return (
            scores,
            np.asarray(rows, dtype=np.int64),
            np.asarray(high, dtype=np.float64).reshape(shape),
            np.asarray(low, dtype=np.float64).reshape(shape),
        )


class _Alerts:
    """The ``min_score`` of ``EngineForests.score_explain`` that means "the rows that can be
    alerts of their key's thresholder" (``EngineForests.alert_bounds``, per engine call)."""


#: See ``_Alerts``.
ALERTS = _Alerts()


def _encode_grader(grader: Any) -> str:
    """A thresholder's state as base64 text (a record header or a blob header holds it)."""
    return base64.b64encode(grader.to_bytes()).decode("ascii")


def _rows_by_key(keys: list[str]) -> dict[str, list[int]]:
    """Row indices of each key, in order (keys in order of first appearance)."""
    rows: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    return rows


def _fold(values: Any, dims: int) -> np.ndarray:
    """Attribution per input dimension (a shingled one has one entry per slot and dimension)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size != dims and dims and arr.size % dims == 0:
        arr = arr.reshape(-1, dims).sum(axis=0)
    return arr


def parse_blob(data: bytes, fingerprint: dict[str, Any]) -> tuple[dict, list[tuple[str, bytes]]]:
    """The header and ``(key, forest bytes)`` entries of an ``RCFK`` v1 blob, checked."""
    if len(data) < 10 or not data.startswith(MAGIC):
        raise StateError("state blob does not start with the rcf_fast.kinesis magic; not our state")
    version, head_len = struct.unpack_from("<HI", data, 4)
    if version != FORMAT_VERSION:
        raise StateError(
            f"state format version {version}; this rcf_fast reads version {FORMAT_VERSION}"
        )
    if 10 + head_len > len(data):
        raise StateError(f"state header of {head_len} bytes runs past the blob ({len(data)} bytes)")
    try:
        header = json.loads(data[10 : 10 + head_len])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(f"state header is corrupt: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("keys"), list):
        raise StateError("state header is corrupt: expected an object with a list of keys")
    if header.get("config") != fingerprint:
        raise StateError(
            f"state was written with forest parameters {header.get('config')}, "
            f"now configured {fingerprint}; "
            "use a new --state path or the same parameters"
        )
    entries: list[tuple[str, bytes]] = []
    offset = 10 + head_len
    for item in header["keys"]:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], int)
            or item[1] < 0
        ):
            raise StateError(f"state header is corrupt: bad key entry {str(item)[:100]}")
        key, size = item
        chunk = data[offset : offset + size]
        if len(chunk) != size:
            raise StateError(f"state blob truncated in the forest of key {key!r}")
        entries.append((key, chunk))
        offset += size
    if offset != len(data):
        raise StateError(f"state blob has {len(data) - offset} trailing bytes")
    return header, entries


def header_positions(header: dict) -> dict[str, Position]:
    try:
        return {
            str(s): (int(p[0]), int(p[1]), int(p[2]))
            for s, p in (header.get("positions") or {}).items()
        }
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        raise StateError(f"state header has bad positions: {exc}") from None


def write_blob(
    fingerprint: dict[str, Any],
    positions: dict[str, Position],
    value_fields: list[str] | None,
    schema_spec: str | None,
    blobs: list[tuple[str, bytes]],
    graders: dict[str, str] | None = None,
) -> bytes:
    header: dict[str, Any] = {
        "config": fingerprint,
        "positions": {s: [str(p[0]), p[1], p[2]] for s, p in sorted(positions.items())},
        "value_fields": value_fields,
        "schema": schema_spec,
        "keys": [[key, len(b)] for key, b in blobs],
    }
    if graders:
        header["graders"] = graders
    head = json.dumps(header, sort_keys=True).encode()
    return b"".join(
        [MAGIC, struct.pack("<HI", FORMAT_VERSION, len(head)), head] + [b for _, b in blobs]
    )


class EngineForests:
    """The forests of every key in one ``rcf_fast.KeyedForests``, plus the per-shard positions.

    The engine is built when the dimension count is known (first batch or a loaded state).
    ``store``/``memory_limit``/``max_keys`` are the engine's: least recently used keys are saved
    to ``store`` (a ``MutableMapping[str, bytes]`` or a directory) and dropped, and come back
    exactly when touched.
    """

    def __init__(
        self,
        params: dict[str, Any],
        *,
        store: MutableMapping[str, bytes] | str | None = None,
        memory_limit: int | None = None,
        max_keys: int | None = None,
        state: Any = None,
        grading: dict[str, Any] | None = None,
    ) -> None:
        self.params = check_params(params)
        # Per key, a ``rcf_fast.Thresholder`` built with ``grading`` (None: no grades) grades
        # the key's scores in arrival order; saved with the key's forest.
        self.grading = None if grading is None else dict(grading)
        self.graders: dict[str, Any] = {}
        # The grades and alert flags of the rows of the last ``score_explain`` call.
        self.graded: tuple[np.ndarray, np.ndarray] | None = None
        if self.grading is not None:
            import rcf_fast

            try:
                rcf_fast.Thresholder(**self.grading)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"alert grading parameters {self.grading}: {exc}") from None
        self.store = store
        self.memory_limit = memory_limit
        self.max_keys = max_keys
        # A ``keystate.KeyedState``: per-key records (the engine's store) and key positions.
        self.state = state
        if state is not None and store is None:
            from rcf_fast.kinesis.keystate import EngineStore

            self.store = EngineStore(state)
        if state is not None:
            state.extra_header = self._grader_header
            state.on_read = self._grader_from_header
        self.seeds: dict[str, int] = {}  # keys adopted with a seed that is not the derived one
        self.engine: Any = None
        self.dims: int | None = None
        self.positions: dict[str, Position] = {}
        self.value_fields: list[str] | None = None
        self.schema_spec: str | None = None
        self.limit = math.inf

    def _fingerprint(self) -> dict[str, Any]:
        return {k: v for k, v in sorted(self.params.items()) if k not in _RUNTIME_ONLY}

    def ensure(self, dimensions: int) -> Any:
        """The engine, built for ``dimensions`` values per point if not built yet."""
        if self.engine is None:
            import rcf_fast

            self.engine = rcf_fast.KeyedForests(
                dimensions=dimensions,
                **self.params,
                memory_limit=self.memory_limit,
                max_keys=self.max_keys,
                store=self.store,
            )
            self.dims = dimensions
            shingle = self.engine.shingle_size
            # The engine's bound on a value's magnitude (rcf-core input::value_limit).
            self.limit = float(np.finfo(np.float32).max) / (2.0 * max(1, dimensions * shingle))
        elif self.dims != dimensions:
            raise ConfigError(f"forests score {self.dims} values per event, got {dimensions}")
        return self.engine

    def rejected_rows(self, points: np.ndarray) -> np.ndarray:
        """Mask of the rows the engine would reject: NaN, infinities, or a value beyond its
        magnitude limit (``float32 max / (2 * dimensions * shingle_size)``)."""
        self.ensure(points.shape[1])
        with np.errstate(invalid="ignore"):
            return ~np.isfinite(points).all(axis=1) | (np.abs(points) > self.limit).any(axis=1)

    def rejection(self, point: np.ndarray) -> str:
        """Why the engine rejects ``point`` (one of ``rejected_rows``)."""
        if not np.isfinite(point).all():
            return "forest rejected the point: values must be finite (no NaN or infinity)"
        return f"forest rejected the point: a value exceeds the magnitude limit {self.limit:.3g}"

    # -- alert grades -----------------------------------------------------------------------------

    def grader(self, key: str) -> Any:
        """``key``'s thresholder (created on first use)."""
        g = self.graders.get(key)
        if g is None:
            import rcf_fast

            g = self.graders[key] = rcf_fast.Thresholder(**(self.grading or {}))
        return g

    def grade(self, keys: list[str], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grades and alert flags of ``scores`` (row i of key ``keys[i]``), each key's scores
        fed to its thresholder in order."""
        rows = _rows_by_key(keys)
        grade = np.zeros(len(keys))
        alert = np.zeros(len(keys), dtype=bool)
        for key, idx in rows.items():
            out = self.grader(key).process_many(scores[idx])
            grade[idx] = out["grade"]
            alert[idx] = out["is_anomaly"]
        return grade, alert

    def alert_bounds(self, keys: list[str]) -> np.ndarray:
        """Per row, a score below which the row cannot be an alert of its key's thresholder in
        this call (so it needs no explanation): +inf when none of the key's rows of the call can
        be an alert (``Thresholder.can_alert_within``: warm-up, spacing after an alert, an
        episode going on), else a lower bound of every threshold its thresholder can have over
        them.

        Why it is a bound: the threshold is max(floor, mean + z * dev) of time-decayed score
        statistics, and each learned score (never negative) multiplies the mean and the variance
        by at least rho = keep * W / (keep * W + 1) (W the decayed weight, keep = 1 - 1/horizon;
        the weighted-variance update adds a non-negative term to keep * W * var). After m
        scores mean + z * dev >= r * (mean0 + z * dev0) with r the product of the m factors
        (sqrt(r) >= r). 0.999 absorbs rounding.
        """
        import rcf_fast

        # Every key's thresholder has the same parameters, hence this floor.
        floor = float(rcf_fast.Thresholder(**(self.grading or {})).score_floor)
        bound = np.full(len(keys), floor)
        for key, idx in _rows_by_key(keys).items():
            m = len(idx)
            g = self.graders.get(key)
            if g is None:
                # Not in memory: its thresholder may be in the store (read with the forest
                # during the call), so nothing is assumed about it but the floor. (Creating
                # one here would shadow the saved one.)
                continue
            seen = int(g.scores_seen)
            if not g.can_alert_within(m):  # warming up, spacing, or an episode going on
                bound[idx] = math.inf
                continue
            t0 = float(g.threshold)
            if not math.isfinite(t0) or t0 <= floor:
                continue
            keep = 1.0 - 1.0 / float(g.horizon)
            w = (1.0 - keep**seen) / (1.0 - keep)
            r = 1.0
            for _ in range(m):
                r *= keep * w / (keep * w + 1.0)
                w = keep * w + 1.0
            bound[idx] = max(floor, 0.999 * r * t0)
        return bound

    def grader_bytes(self) -> dict[str, str]:
        """Every key's thresholder state (base64), for a whole-state blob."""
        return {k: _encode_grader(g) for k, g in sorted(self.graders.items())}

    def load_graders(self, saved: Any) -> None:
        """Thresholders from ``grader_bytes`` output (a blob's header)."""
        self.graders = {}
        if saved is None or self.grading is None:
            return
        if not isinstance(saved, dict):
            raise StateError("state header has damaged alert graders: expected an object")
        for key, text in saved.items():
            self._grader_from_header(str(key), {"grader": text})

    def _grader_header(self, key: str) -> dict[str, Any]:
        g = self.graders.get(key)
        if g is None:
            return {}
        return {"grader": _encode_grader(g)}

    def _grader_from_header(self, key: str, header: dict[str, Any]) -> None:
        text = header.get("grader")
        if text is None or self.grading is None:
            return
        # The forest is being loaded from this record: its thresholder comes with it.
        import rcf_fast

        try:
            self.graders[key] = rcf_fast.Thresholder.from_bytes(base64.b64decode(text))
        except (TypeError, ValueError, _CoreStateError) as exc:
            raise StateError(f"saved alert grader of key {key!r} does not load: {exc}") from None

    def score_explain(
        self,
        keys: list[str],
        points: np.ndarray,
        min_score: float | _Alerts,
        origins: list[tuple[str, Position]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One engine call: score-then-learn every row for its key (a key's rows in order),
        attributions of the rows scoring >= ``min_score`` computed before they are learned.

        With a per-key state, ``origins`` (shard, position) of each row are recorded as the
        key's positions. Then the batch is cut into parts of at most ``keys_at_once()``
        distinct keys, so that the engine saves (evicts) a key of a part only after all its
        rows in that part were learned: a key's record then carries exactly the positions of
        what its forest learned (``KeyedState.inflight`` during the call, committed after).
        """
        try:
            return self._score_explain(keys, points, min_score, origins)
        except StateError:
            raise
        except _CoreStateError as exc:  # a key's saved forest (the engine read it) is damaged
            raise StateError(f"saved state does not load: {exc}") from None

    def _score_explain(
        self,
        keys: list[str],
        points: np.ndarray,
        min_score: float | _Alerts,
        origins: list[tuple[str, Position]] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        engine = self.ensure(points.shape[1])
        self.graded = None
        if self.state is None or origins is None:
            bounds = self.alert_bounds(keys) if min_score is ALERTS else min_score
            out = engine.score_update_explain(keys, points, bounds)
            if self.grading is not None:
                self.graded = self.grade(keys, out[0])
            return out  # type: ignore[no-any-return]
        limit = engine.keys_at_once() or len(keys) or 1
        parts: list[tuple[int, int]] = []
        begin, seen = 0, set[str]()
        for i, key in enumerate(keys):
            if key not in seen and len(seen) == limit:
                parts.append((begin, i))
                begin, seen = i, set()
            seen.add(key)
        parts.append((begin, len(keys)))
        outs = []
        graded: list[tuple[np.ndarray, np.ndarray] | None] = []
        for a, b in parts:
            inflight: dict[str, dict[str, Position]] = {}
            for key, (shard, pos) in zip(keys[a:b], origins[a:b]):
                kp = inflight.setdefault(key, {})
                if shard not in kp or pos > kp[shard]:
                    kp[shard] = pos
            for key in inflight:
                self.state.key_positions(key)  # known before the engine may save the key
            self.state.inflight = inflight
            bounds = self.alert_bounds(keys[a:b]) if min_score is ALERTS else min_score
            try:
                scores, rows, high, low = engine.score_update_explain(
                    keys[a:b], points[a:b], bounds
                )
            finally:
                self.state.inflight = {}
            for key, kp in inflight.items():
                for shard, pos in kp.items():
                    self.state.note(key, shard, pos)
            # Graded before the next part, which may evict (save) keys of this one.
            graded.append(self.grade(keys[a:b], scores) if self.grading is not None else None)
            outs.append((scores, rows + a, high, low))
        if self.grading is not None:
            done = [g for g in graded if g is not None]
            self.graded = (
                np.concatenate([g[0] for g in done]),
                np.concatenate([g[1] for g in done]),
            )
        if len(outs) == 1:
            return outs[0]
        return (
            np.concatenate([o[0] for o in outs]),
            np.concatenate([o[1] for o in outs]),
            np.concatenate([o[2] for o in outs]),
            np.concatenate([o[3] for o in outs]),
        )

    def __len__(self) -> int:
        return 0 if self.engine is None else len(self.engine)

    def __contains__(self, key: object) -> bool:
        return self.engine is not None and key in self.engine

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        if self.engine is None:
            return iter(())
        keys = set(self.engine.keys())
        if self.state is not None:  # keys saved by other processes too
            keys.update(iter(self.store))  # type: ignore[arg-type]
        return iter([(k, self.engine.forest(k)) for k in sorted(keys)])

    def to_bytes(self) -> bytes:
        """The whole state as one ``RCFK`` v1 blob (the previous release's format)."""
        blobs = [(key, forest.to_bytes()) for key, forest in self]
        return write_blob(
            self._fingerprint(),
            self.positions,
            self.value_fields,
            self.schema_spec,
            blobs,
            self.grader_bytes() if self.grading is not None else None,
        )

    def load_bytes(self, data: bytes) -> None:
        """Replace forests and positions with an ``RCFK`` blob (this release's or the previous
        one's, whose BLAKE2b-seeded forests are adopted and continue exactly)."""
        import rcf_fast

        header, entries = parse_blob(data, self._fingerprint())
        positions = header_positions(header)
        self.engine = None
        if entries:
            try:
                dims = rcf_fast.RandomCutForest.from_bytes(entries[0][1]).dimensions
            except (ValueError, TypeError) as exc:
                raise StateError(f"forest of key {entries[0][0]!r} does not load: {exc}") from None
            engine = self.ensure(dims)
            self.seeds = {}
            for key, chunk in entries:
                try:
                    engine.adopt(key, chunk)
                except (ValueError, TypeError) as exc:
                    self.engine = None
                    raise StateError(f"forest of key {key!r} does not load: {exc}") from None
                seed = engine.seed_of(key)
                if seed != engine.derive_seed(engine.seed, key):
                    self.seeds[key] = seed
        self.load_graders(header.get("graders"))
        self.positions = positions
        self.value_fields = header.get("value_fields")
        self.schema_spec = header.get("schema")

    # -- per-key state (keystate.KeyedState) ----------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return {
            "config": self._fingerprint(),
            # Not engine.dimensions: meta is also written from inside an engine call (before an
            # evicted key's record), where the engine's lock is held.
            "dimensions": self.dims,
            "value_fields": self.value_fields,
            "schema": self.schema_spec,
            "seeds": {k: str(s) for k, s in sorted(self.seeds.items())},
        }

    def save_meta(self) -> None:
        """Write the meta record if it changed (before any key record: it names the seeds of
        adopted keys, without which their records would not load)."""
        if self.state is not None and self.engine is not None:
            self.state.save_meta(self.meta())

    def save_keyed(self) -> int:
        """Meta, then every key changed since its last save, then the shard positions."""
        if self.state is None or self.engine is None:
            return 0
        self.save_meta()
        written = int(self.engine.flush())
        self.state.save_positions(self.positions)
        return written

    def load_keyed(self) -> bool:
        """Load meta and positions from the state's records (keys load when touched); False
        when the records hold no state yet."""
        assert self.state is not None
        meta = self.state.load_meta()
        if meta is None:
            return False
        if meta.get("config") != self._fingerprint():
            raise StateError(
                f"state was written with forest parameters {meta.get('config')}, "
                f"now configured {self._fingerprint()}; "
                "use a new --state path or the same parameters"
            )
        dims = meta.get("dimensions")
        self.value_fields = meta.get("value_fields")
        self.schema_spec = meta.get("schema")
        seeds = meta.get("seeds") or {}
        if not isinstance(seeds, dict):
            raise StateError("state record 'meta' has damaged seeds")
        if dims is not None:
            if not isinstance(dims, int) or not 1 <= dims <= 10_000:
                raise StateError(f"state record 'meta' has a bad dimension count {dims!r}")
            engine = self.ensure(dims)
            try:
                self.seeds = {str(k): int(v) for k, v in seeds.items()}
                for key, seed in self.seeds.items():
                    engine.set_key_seed(key, seed)
            except (ValueError, TypeError, OverflowError) as exc:
                raise StateError(f"state record 'meta' has damaged seeds: {exc}") from None
        self.positions = self.state.load_positions()
        return True
