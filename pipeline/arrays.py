"""Array helpers shared by the stages."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def unique_values(values: np.ndarray) -> np.ndarray:
    """`np.unique(values)` by sorting: numpy 2's hash-based `unique` takes about 20× longer on millions of
    int64 pair keys (measured: 6.2 s vs 0.3 s for 5.2M keys)."""
    ordered = np.sort(np.asarray(values).ravel())
    if not len(ordered):
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def fixed_rows(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """Rows of a 2-d array as an Arrow fixed-size list column, without a Python object per element."""
    matrix = np.ascontiguousarray(matrix)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])


def matrix_of(column: pa.ChunkedArray | pa.Array, dtype: type) -> np.ndarray:
    """A fixed-size list column (as `fixed_rows` makes it) back as a 2-d array."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape(len(array), width)


def members_by_part(part_of: np.ndarray, wanted: np.ndarray) -> list[np.ndarray]:
    """The (sorted) indices of each wanted part, from one sort instead of a scan per part."""
    order = np.argsort(part_of, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(part_of, minlength=len(wanted)))]
    return [order[bounds[part] : bounds[part + 1]] for part in np.flatnonzero(wanted)]
