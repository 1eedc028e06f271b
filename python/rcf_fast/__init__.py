"""rcf_fast: Robust Random Cut Forest anomaly detection for streams."""

from rcf_fast._rcf import __version__

__all__ = ["__version__"]
