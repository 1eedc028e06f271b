"""The bundled data: the suite's NYC taxi series is the repository's copy of NAB's file."""

from __future__ import annotations

import numpy as np
from conftest import BUNDLED_TAXI, load_series, nab_file


def test_bundled_taxi_series_is_complete(nyc_taxi):
    # NAB's nyc_taxi: 10,320 half-hourly passenger counts, July 2014 to January 2015.
    assert nyc_taxi.shape == (10320,)
    assert np.all(np.isfinite(nyc_taxi)) and nyc_taxi.min() > 0
    assert BUNDLED_TAXI.read_text().splitlines()[0] == "timestamp,value"


def test_bundled_taxi_equals_the_nab_corpus_copy(nyc_taxi):
    path = nab_file("data/realKnownCause/nyc_taxi.csv")
    assert np.array_equal(load_series(path), nyc_taxi)
