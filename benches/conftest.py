"""Benchmark helpers: peers side by side, points/s and ratios against krcf from the same run."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TAXI = ROOT / "data" / "nyc_taxi.csv"
# rrcf's README programs live with the tests (tests/rrcf_readme.py); the benchmarks run them too.
sys.path.insert(0, str(ROOT / "tests"))


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): points processed per benchmark round")


@pytest.fixture(scope="session")
def taxi() -> np.ndarray:
    return np.loadtxt(TAXI, delimiter=",", skiprows=1, usecols=1)


@pytest.fixture(scope="session")
def points16() -> np.ndarray:
    rng = np.random.default_rng(0)
    walk = rng.normal(size=(20000, 16)).cumsum(axis=0) * 0.05
    return walk + rng.normal(size=(20000, 16))


def import_rrcf():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import rrcf
    return rrcf


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print points/s per group and each library's ratio to krcf in the same run."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or not bs.benchmarks:
        return
    rows: dict[str, dict[str, float]] = {}
    for b in bs.benchmarks:
        n = b.extra_info.get("points")
        if not n or b.stats is None:
            continue
        lib = b.extra_info.get("library", b.name)
        rows.setdefault(b.group or "", {})[lib] = n / b.stats.median
    if not rows:
        return
    tr = terminalreporter
    tr.write_sep("=", "points per second (median round) and ratio to krcf, same run")
    for group, libs in sorted(rows.items()):
        base = libs.get("krcf")
        tr.write_line(f"{group}")
        for lib, pps in sorted(libs.items(), key=lambda kv: -kv[1]):
            ratio = f"{pps / base:8.1f}x krcf" if base else ""
            tr.write_line(f"    {lib:28} {pps:12,.0f} points/s {ratio}")


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record the versions of every compared library in the JSON (benches/report.py shows them)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("rcf_fast", "krcf", "rcf3", "rrcf", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    machine_info["library_versions"] = found
    machine_info["load_average"] = list(os.getloadavg())  # other work on a shared machine
