"""Type stubs of the compiled module ``rcf_fast._rcf`` (mirrors the Rust docstrings)."""

from collections.abc import Sequence
from typing import Literal, SupportsFloat, final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from typing_extensions import TypeAlias

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
    def from_bytes(data: bytes) -> RandomCutForest:
        """Restores a forest from ``to_bytes()`` output."""
    @staticmethod
    def _from_bytes(data: bytes) -> RandomCutForest: ...
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
    def transform(self) -> str: ...
    def to_bytes(self) -> bytes:
        """The full state as versioned bytes."""
    @staticmethod
    def from_bytes(data: bytes) -> AnomalyDetector:
        """Restores a detector from ``to_bytes()`` output."""
    @staticmethod
    def _from_bytes(data: bytes) -> AnomalyDetector: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...
