"""rcf_fast: Robust Random Cut Forest anomaly detection for streams.

The forest lives in Rust (``rcf_fast._rcf``); this package adds the pure-Python helpers.
"""

from rcf_fast._rcf import (
    AlertAttribution,
    AnomalyDetector,
    Attribution,
    DetectorResult,
    KeyedForests,
    RandomCutForest,
    StateError,
    Thresholder,
    __version__,
)
from rcf_fast.shingle import shingle

__all__ = [
    "AlertAttribution",
    "AnomalyDetector",
    "Attribution",
    "DetectorResult",
    "KeyedForests",
    "RandomCutForest",
    "StateError",
    "Thresholder",
    "__version__",
    "shingle",
]
