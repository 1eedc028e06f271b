"""Shared fixtures: seeded data, the NAB series, hypothesis profiles (HYPOTHESIS_PROFILE=fast|slow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "slow", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

ROOT = Path(__file__).resolve().parent.parent
NAB = ROOT.parent / "shared" / "data" / "nab"
BUNDLED_TAXI = ROOT / "data" / "nyc_taxi.csv"


def load_series(path: Path) -> np.ndarray:
    """The value column of a NAB CSV (timestamp,value)."""
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)


@pytest.fixture(scope="session")
def nyc_taxi() -> np.ndarray:
    path = NAB / "data" / "realKnownCause" / "nyc_taxi.csv"
    if not path.exists():
        path = BUNDLED_TAXI
    return load_series(path)


@pytest.fixture
def sine() -> np.ndarray:
    t = np.arange(3000)
    return 10.0 * np.sin(2 * np.pi * t / 50.0)
