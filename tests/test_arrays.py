"""Array helpers against numpy's own results."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pipeline.arrays import unique_values


@given(st.lists(st.integers(min_value=-(2**62), max_value=2**62), max_size=200))
def test_unique_values_equals_numpy_unique(values: list[int]) -> None:
    array = np.array(values, dtype=np.int64)
    assert np.array_equal(unique_values(array), np.unique(array))
