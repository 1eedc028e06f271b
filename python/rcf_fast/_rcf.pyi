"""Type stubs of the compiled module ``rcf_fast._rcf`` (mirrors the Rust docstrings)."""

import os
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from typing import Literal, SupportsFloat, final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from typing_extensions import TypeAlias

__all__ = [
    "AlertAttribution",
    "AnomalyDetector",
    "Attribution",
    "Branch",
    "DetectorResult",
    "DimensionError",
    "DuplicateIndexError",
    "KeyedForests",
    "Leaf",
    "RandomCutForest",
    "RrcfLeaves",
    "RrcfTree",
    "StateError",
    "Thresholder",
    "__version__",
]

__version__: str

class StateError(ValueError):
    """Saved forest bytes that are damaged, truncated, or not from rcf_fast."""

@final
class Attribution:
    """Per-dimension explanation of an anomaly score."""

    @property
    def high(self) -> NDArray[np.float64]: ...
    @property
    def low(self) -> NDArray[np.float64]: ...
    @property
    def total(self) -> float: ...

_Point: TypeAlias = SupportsFloat | Sequence[SupportsFloat] | NDArray[np.generic]

@final
class RandomCutForest:
    """Robust Random Cut Forest anomaly detector for streams."""

    def __new__(
        cls,
        dimensions: int = 1,
        shingle_size: int = 1,
        num_trees: int = 100,
        sample_size: int = 256,
        time_decay: float | None = None,
        sampler: Literal["decay", "window"] = "decay",
        scoring: Literal["rcf", "codisp"] = "rcf",
        output_after: int | None = None,
        seed: int | None = None,
        threads: int | None = None,
    ) -> RandomCutForest: ...
    def score(self, x: _Point) -> float:
        """Anomaly score of ``x`` without changing the forest (0.0 until ready)."""
    def update(self, x: _Point) -> None:
        """Learns observation ``x``."""
    def score_update(self, x: _Point) -> float:
        """Scores ``x``, then learns it: the streaming call."""
    def score_many(self, x: ArrayLike) -> NDArray[np.float64]:
        """Scores each row of ``X`` (shape ``(n, dimensions)``) without learning."""
    def score_update_many(self, x: ArrayLike) -> NDArray[np.float64]:
        """Scores then learns each row of ``X`` in turn, all trees in parallel."""
    def update_many(self, x: ArrayLike) -> None:
        """Learns each row of ``X`` in turn."""
    def attribution(self, x: _Point) -> Attribution:
        """Which input dimension made ``x`` anomalous, and in which direction."""
    @property
    def is_ready(self) -> bool: ...
    @property
    def entries_seen(self) -> int: ...
    @property
    def dimensions(self) -> int: ...
    @property
    def shingle_size(self) -> int: ...
    @property
    def num_trees(self) -> int: ...
    @property
    def sample_size(self) -> int: ...
    @property
    def time_decay(self) -> float: ...
    @property
    def sampler(self) -> str: ...
    @property
    def scoring(self) -> str: ...
    @property
    def output_after(self) -> int: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def threads(self) -> int | None: ...
    @threads.setter
    def threads(self, value: int | None) -> None: ...
    def memory_usage(self) -> int:
        """Approximate bytes of memory held by the forest."""
    def to_bytes(self) -> bytes:
        """The full state (generators included) as versioned bytes."""
    @staticmethod
    def from_bytes(data: bytes | bytearray | memoryview) -> RandomCutForest:
        """Restores a forest from ``to_bytes()`` output."""
    @staticmethod
    def _from_bytes(data: bytes | bytearray | memoryview) -> RandomCutForest: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...
    def __copy__(self) -> RandomCutForest: ...
    def __deepcopy__(self, memo: object) -> RandomCutForest: ...

@final
class AlertAttribution:
    """Which input dimension made an alert, and in which direction."""

    @property
    def high(self) -> NDArray[np.float64]: ...
    @property
    def low(self) -> NDArray[np.float64]: ...
    @property
    def total(self) -> float: ...

@final
class DetectorResult:
    """The outcome of ``AnomalyDetector.process`` for one observation."""

    @property
    def score(self) -> float: ...
    @property
    def grade(self) -> float: ...
    @property
    def is_anomaly(self) -> bool: ...
    @property
    def threshold(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def in_episode(self) -> bool: ...
    @property
    def start_of_anomaly(self) -> bool: ...
    @property
    def relative_index(self) -> int: ...
    @property
    def attribution(self) -> AlertAttribution | None: ...
    @property
    def scale(self) -> int:
        """1 for the fine forest's alerts and for observations without an alert, else the
        block size of the coarse scale that raised the alert."""
    @property
    def expected(self) -> NDArray[np.float64] | None: ...
    @property
    def timestamp(self) -> float | None: ...

@final
class AnomalyDetector:
    """A Random Cut Forest plus an online thresholder: graded alerts instead of raw scores."""

    def __new__(
        cls,
        dimensions: int = 1,
        shingle_size: int = 8,
        num_trees: int = 100,
        sample_size: int = 256,
        time_decay: float | None = None,
        sampler: Literal["decay", "window"] = "decay",
        scoring: Literal["rcf", "codisp"] = "rcf",
        output_after: int | None = None,
        seed: int | None = None,
        threads: int | None = 1,
        z_factor: float = 4.0,
        score_floor: float = 1.0,
        horizon: float = 2000.0,
        warmup: int = 100,
        episode_gap: int = 20,
        transform: Literal["none", "normalize", "difference", "normalize_difference"] = "none",
        transform_horizon: float = 1000.0,
        alert_spacing: int = 256,
        scales: Sequence[tuple[int, int]] = ((16, 4), (32, 8)),
    ) -> AnomalyDetector: ...
    def process(self, x: _Point, timestamp: float | None = None) -> DetectorResult:
        """Processes one observation ``x`` (``dimensions`` numbers): scores it, grades the
        score, explains an alert, then learns it. ``timestamp`` (a finite number) is echoed
        back."""
    def process_many(
        self, x: ArrayLike, timestamps: ArrayLike | None = None
    ) -> dict[str, NDArray[np.generic]]:
        """Processes each row of ``X`` (shape ``(n, dimensions)``) in turn, exactly as
        ``process`` would."""
    @property
    def entries_seen(self) -> int: ...
    @property
    def dimensions(self) -> int: ...
    @property
    def shingle_size(self) -> int: ...
    @property
    def z_factor(self) -> float: ...
    @property
    def score_floor(self) -> float: ...
    @property
    def horizon(self) -> float: ...
    @property
    def warmup(self) -> int: ...
    @property
    def episode_gap(self) -> int: ...
    @property
    def alert_spacing(self) -> int: ...
    @property
    def transform(self) -> str: ...
    @property
    def scales(self) -> tuple[tuple[int, int], ...]:
        """The coarse scales: (block, shingle_size) pairs (``()``: none)."""
    def to_bytes(self) -> bytes:
        """The full state as versioned bytes."""
    @staticmethod
    def from_bytes(data: bytes) -> AnomalyDetector:
        """Restores a detector from ``to_bytes()`` output."""
    @staticmethod
    def _from_bytes(data: bytes) -> AnomalyDetector: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

@final
class Thresholder:
    """The online thresholder of ``AnomalyDetector`` on its own: RCF scores in, graded alerts
    out (one per key next to each key's forest, for instance). Given the scores of an
    ``AnomalyDetector`` without input transform it decides exactly as that detector does;
    ``relative_index`` comes from the scores alone. A score of 0 means "forest not ready" and
    is neither graded nor learned; scores must be finite and >= 0."""

    def __new__(
        cls,
        z_factor: float = 4.0,
        score_floor: float = 1.0,
        horizon: float = 2000.0,
        warmup: int = 100,
        episode_gap: int = 20,
        alert_spacing: int = 256,
    ) -> Thresholder: ...
    def process(self, score: float) -> dict[str, float | bool | int]:
        """Grades one score, then learns it: ``grade``, ``is_anomaly``, ``threshold``,
        ``confidence``, ``in_episode``, ``start_of_anomaly``, ``relative_index``."""
    def process_many(self, scores: ArrayLike) -> dict[str, NDArray[np.generic]]:
        """Grades each score of a 1-D sequence in turn, exactly as ``process`` would; numpy
        arrays with the keys of ``process``. All scores are checked before any is learned."""
    @property
    def threshold(self) -> float: ...
    @property
    def scores_seen(self) -> int: ...
    @property
    def in_episode(self) -> bool: ...
    def can_alert_within(self, m: int) -> bool:
        """Whether any of the next ``m`` scores could raise an alert (False: certainly none:
        still warming up, too soon after the last alert, or inside an episode that cannot end
        before them)."""
    @property
    def z_factor(self) -> float: ...
    @property
    def score_floor(self) -> float: ...
    @property
    def horizon(self) -> float: ...
    @property
    def warmup(self) -> int: ...
    @property
    def episode_gap(self) -> int: ...
    @property
    def alert_spacing(self) -> int: ...
    def to_bytes(self) -> bytes:
        """The full state as versioned bytes."""
    @staticmethod
    def from_bytes(data: bytes | bytearray | memoryview) -> Thresholder:
        """Restores a thresholder from ``to_bytes()`` output; ``StateError`` for bad bytes."""
    @staticmethod
    def _from_bytes(data: bytes | bytearray | memoryview) -> Thresholder: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...

# ---- rrcf drop-in (rcf_fast.rrcf): the Rust tree, its node views and exceptions ----------------

from collections.abc import KeysView
from typing import Any

from typing_extensions import Self, disjoint_base

class DuplicateIndexError(KeyError, AssertionError):
    """insert_point with an index that is already in the tree."""

class DimensionError(ValueError, AssertionError):
    """A point whose length differs from the tree's dimension."""

@final
class Leaf:
    """A leaf of an rrcf tree: index `i`, depth `d`, mass `n`, point `x`, parent `u`, box `b`."""

    @property
    def i(self) -> Any: ...
    @property
    def d(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def x(self) -> NDArray[np.float64]: ...
    @property
    def b(self) -> NDArray[np.float64]: ...
    @property
    def u(self) -> Branch | None: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Branch:
    """A branch of an rrcf tree: cut dimension `q`, cut value `p`, mass `n`, box `b`, children `l`
    and `r`, parent `u`."""

    @property
    def q(self) -> int: ...
    @property
    def p(self) -> float: ...
    @property
    def n(self) -> int: ...
    @property
    def b(self) -> NDArray[np.float64]: ...
    @property
    def l(self) -> Leaf | Branch: ...
    @property
    def r(self) -> Leaf | Branch: ...
    @property
    def u(self) -> Branch | None: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class RrcfLeaves:
    """`tree.leaves`: a read-only mapping from point index to leaf view, in rrcf's dict order."""

    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __getitem__(self, key: Any, /) -> Leaf: ...
    def __iter__(self) -> Iterator[Any]: ...
    def get(self, key: Any, default: Any = None) -> Any: ...
    def keys(self) -> KeysView[Any]: ...
    def values(self) -> list[Leaf]: ...
    def items(self) -> list[tuple[Any, Leaf]]: ...

_Node: TypeAlias = Leaf | Branch

@disjoint_base
class RrcfTree:
    """The rrcf-compatible tree (base class of `rcf_fast.rrcf.RCTree`)."""

    def __new__(
        cls,
        *,
        data: NDArray[np.float64] | None = None,
        labels: list[Any] | None = None,
        precision: int | None = None,
        seed: int | None = None,
        seed_key: Sequence[int] | None = None,
        shared: np.random.RandomState | None = None,
        compat: bool = False,
    ) -> Self: ...
    def insert_point(
        self, point: ArrayLike, index: Any, tolerance: float | None = None
    ) -> Leaf: ...
    def forget_point(self, index: Any) -> Leaf: ...
    def codisp(self, leaf: Any) -> float: ...
    def codisp_with_cut_dimension(self, leaf: Any) -> tuple[float, int]: ...
    def disp(self, leaf: Any) -> int: ...
    def query(self, point: ArrayLike, node: _Node | None = None) -> Leaf: ...
    def find_duplicate(self, point: ArrayLike, tolerance: float | None = None) -> Leaf | None: ...
    def get_bbox(self, branch: _Node | None = None) -> NDArray[np.float64]: ...
    def _count_leaves(self, node: _Node) -> int: ...
    def _insert_point_cut(self, point: ArrayLike, bbox: ArrayLike) -> tuple[int, float]: ...
    def _random_sample(self) -> float: ...
    def _refresh_under(self, node: _Node) -> None: ...
    def _tighten_bbox_upwards(self, node: _Node) -> None: ...
    def _relax_bbox_upwards(self, node: _Node, point: ArrayLike) -> None: ...
    @property
    def leaves(self) -> RrcfLeaves: ...
    @property
    def root(self) -> _Node | None: ...
    @property
    def ndim(self) -> int | None: ...
    @property
    def compat(self) -> Literal["0.4.4"] | None: ...
    def _leaves_under(self, node: _Node | None = None) -> list[Leaf]: ...
    def _branches_under(self, node: _Node | None = None) -> list[Branch]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def load_dict(self, obj: dict[str, Any]) -> None: ...
    def _getstate(self) -> tuple[Any, ...]: ...
    def _setstate(self, state: tuple[Any, ...]) -> None: ...

@final
class KeyedForests:
    """Many streams, one forest per key, at full speed."""

    def __new__(
        cls,
        dimensions: int = 1,
        shingle_size: int = 1,
        num_trees: int = 100,
        sample_size: int = 256,
        time_decay: float | None = None,
        sampler: Literal["decay", "window"] = "decay",
        scoring: Literal["rcf", "codisp"] = "rcf",
        output_after: int | None = None,
        seed: int | None = None,
        threads: int | None = None,
        *,
        memory_limit: int | None = None,
        max_keys: int | None = None,
        store: str | os.PathLike[str] | MutableMapping[str, bytes] | None = None,
        idle_ttl: float | None = None,
    ) -> KeyedForests: ...
    @staticmethod
    def derive_seed(seed: int, key: str) -> int:
        """The seed of ``key``'s forest: ``splitmix64(seed ^ fnv1a64(key.encode("utf-8")))``."""
    def seed_of(self, key: str) -> int:
        """The seed of ``key``'s forest in this collection."""
    def score(self, key: str, x: _Point) -> float:
        """Anomaly score of ``x`` for ``key`` without learning it."""
    def update(self, key: str, x: _Point) -> None:
        """Learns observation ``x`` of ``key``."""
    def score_update(self, key: str, x: _Point) -> float:
        """Scores observation ``x`` of ``key``, then learns it."""
    def score_update_many(self, keys: Iterable[str], x: ArrayLike) -> NDArray[np.float64]:
        """Scores then learns each row of ``X`` for the key of that row."""
    def score_many(self, keys: Iterable[str], x: ArrayLike) -> NDArray[np.float64]:
        """Scores each row of ``X`` for its key without learning."""
    def score_update_explain(
        self, keys: Iterable[str], x: ArrayLike, min_score: float | Sequence[float] | ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """Like ``score_update_many`` (bit-identical scores), plus the attribution of exactly
        the rows scoring at least ``min_score`` (one number, or one per row), on the key's
        forest before the row is learned (shingle positions summed per input dimension):
        ``(scores, rows, high, low)`` with ``high``/``low`` of shape ``(len(rows),
        dimensions)``. ``-inf`` explains every row, ``inf`` none; NaN raises ``ValueError``."""
    def adopt(self, key: str, data: bytes) -> None:
        """Makes ``data`` (a ``RandomCutForest.to_bytes()`` with these parameters, any seed)
        the forest of ``key``; it continues exactly and keeps its seed."""
    def set_key_seed(self, key: str, seed: int) -> None:
        """Declares the seed of ``key``'s forest saved in the store (an adopted one)."""
    def keys_at_once(self) -> int | None:
        """Distinct keys a batch call runs in one wave (None: no limit)."""
    def seed_overrides(self) -> list[tuple[str, int]]:
        """Keys whose seed is not the derived one, with their seeds."""
    def update_many(self, keys: Iterable[str], x: ArrayLike) -> None:
        """Learns each row of ``X`` for its key."""
    def attribution(self, key: str, x: _Point) -> Attribution:
        """Which input dimension made ``x`` anomalous for ``key``."""
    def forest(self, key: str) -> RandomCutForest:
        """A copy of ``key``'s forest."""
    def keys(self) -> list[str]:
        """Every known key, sorted."""
    def resident_keys(self) -> list[str]:
        """Keys whose forests are in memory, sorted."""
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
    def memory_usage(self) -> int:
        """Approximate bytes of memory held by the resident forests."""
    def flush(self) -> int:
        """Saves every key changed since it was last saved; returns how many were written."""
    def to_bytes(self) -> bytes:
        """Every key's forest and the parameters, as versioned, checksummed bytes."""
    @staticmethod
    def from_bytes(
        data: bytes, store: str | os.PathLike[str] | MutableMapping[str, bytes] | None = None
    ) -> KeyedForests:
        """Restores a collection from ``to_bytes()`` output."""
    @staticmethod
    def _from_bytes(
        data: bytes, store: str | os.PathLike[str] | MutableMapping[str, bytes] | None = None
    ) -> KeyedForests: ...
    def __reduce__(self) -> tuple[object, tuple[bytes, object]]: ...
    @property
    def dimensions(self) -> int: ...
    @property
    def shingle_size(self) -> int: ...
    @property
    def num_trees(self) -> int: ...
    @property
    def sample_size(self) -> int: ...
    @property
    def time_decay(self) -> float: ...
    @property
    def sampler(self) -> str: ...
    @property
    def scoring(self) -> str: ...
    @property
    def output_after(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def threads(self) -> int | None: ...
    @property
    def memory_limit(self) -> int | None: ...
    @property
    def max_keys(self) -> int | None: ...
    @property
    def idle_ttl(self) -> float | None: ...
    @property
    def store(self) -> object | None: ...
