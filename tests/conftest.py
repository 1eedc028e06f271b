"""Shared fixtures: seeded data, the bundled NYC taxi series, hypothesis profiles
(HYPOTHESIS_PROFILE=fast|slow). The suite needs nothing outside the repository."""

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
# NYC taxi from NAB, bundled in the repository: the series every test uses.
BUNDLED_TAXI = ROOT / "data" / "nyc_taxi.csv"
# The full NAB corpus is not in the repository. A test that needs more than the bundled series
# takes its files through `nab_file`, which names the path and skips when it is missing.
NAB = Path(os.environ.get("RCF_FAST_NAB", str(ROOT.parent / "shared" / "data" / "nab")))


def load_series(path: Path) -> np.ndarray:
    """The value column of a NAB CSV (timestamp,value)."""
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)


def nab_file(relative: str) -> Path:
    """A file of the NAB corpus (outside the repository), or a skip that names where it was
    looked for."""
    path = NAB / relative
    if not path.exists():
        pytest.skip(
            f"needs the NAB corpus file {path}, which is not part of the repository "
            "(set RCF_FAST_NAB to the corpus directory)"
        )
    return path


@pytest.fixture(scope="session")
def nyc_taxi() -> np.ndarray:
    """NAB's nyc_taxi values from the bundled copy (data/nyc_taxi.csv)."""
    return load_series(BUNDLED_TAXI)


@pytest.fixture
def sine() -> np.ndarray:
    t = np.arange(3000)
    return 10.0 * np.sin(2 * np.pi * t / 50.0)
