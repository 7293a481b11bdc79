"""Array helpers shared by the stages."""

from __future__ import annotations

import numpy as np


def unique_values(values: np.ndarray) -> np.ndarray:
    """`np.unique(values)` by sorting: numpy 2's hash-based `unique` takes about 20× longer on millions of
    int64 pair keys (measured: 6.2 s vs 0.3 s for 5.2M keys)."""
    ordered = np.sort(np.asarray(values).ravel())
    if not len(ordered):
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
