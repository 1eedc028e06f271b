"""rcf_fast: Robust Random Cut Forest anomaly detection for streams.

The forest lives in Rust (``rcf_fast._rcf``); this package adds the pure-Python helpers.
"""

from rcf_fast._rcf import Attribution, KeyedForests, RandomCutForest, StateError, __version__
from rcf_fast.shingle import shingle

__all__ = ["Attribution", "KeyedForests", "RandomCutForest", "StateError", "__version__", "shingle"]
