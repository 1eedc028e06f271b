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
    def from_bytes(data: bytes | bytearray | memoryview) -> RandomCutForest:
        """Restores a forest from ``to_bytes()`` output."""
    @staticmethod
    def _from_bytes(data: bytes | bytearray | memoryview) -> RandomCutForest: ...
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...
    def __copy__(self) -> RandomCutForest: ...
    def __deepcopy__(self, memo: object) -> RandomCutForest: ...
