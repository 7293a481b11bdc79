"""The vectorised paths of the cluster stage give exactly what the one-at-a-time code they replace gave."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from pipeline.cluster.cores import _attach_noise
from pipeline.cluster.groupsums import FlatRows, _products_of, _raw_rows_of, _sparse_product, block_products
from pipeline.similarity import _projection, _top_per_row


def _attach_noise_one_at_a_time(density, labels, threshold, hosts):
    """The rule as it was written first: each noise item in order."""
    attached = 0
    for item in np.flatnonzero(labels < 0):
        start, end = density.indptr[item], density.indptr[item + 1]
        neighbours, scores = density.indices[start:end], density.data[start:end]
        grouped = (labels[neighbours] >= 0) & hosts[neighbours]
        if grouped.any():
            best = int(np.argmax(np.where(grouped, scores, -np.inf)))
            if scores[best] >= threshold:
                labels[item] = labels[neighbours[best]]
                attached += 1
    return attached


def _symmetric(rng, n, density, levels=None):
    upper = sparse.random(n, n, density=density, random_state=rng, format="coo", dtype=np.float32)
    if levels:  # few distinct values: many ties
        upper.data = (np.floor(upper.data * levels) / levels).astype(np.float32)
    upper = sparse.triu(upper, k=1)
    return (upper + upper.T).tocsr()


def test_attach_noise_matches_the_one_at_a_time_rule():
    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(2, 60))
        density = _symmetric(
            rng, n, float(rng.uniform(0.02, 0.5)), levels=int(rng.integers(2, 6)) if trial % 2 else None
        )
        labels = np.where(rng.random(n) < rng.uniform(0.2, 0.9), -1, rng.integers(0, 5, n)).astype(np.int64)
        hosts = rng.random(n) < 0.8
        threshold = float(rng.choice([0.0, 0.3, 0.5, 0.8]))
        expected, mine = labels.copy(), labels.copy()
        count = _attach_noise_one_at_a_time(density, expected, threshold, hosts)
        assert _attach_noise(density, mine, threshold, hosts) == count
        assert np.array_equal(mine, expected)


def test_projection_is_the_product_row_by_row_and_equal_for_copies():
    rng = np.random.default_rng(2)
    for n in (1, 100, 8192, 20001):
        vectors = rng.normal(size=(n, 48)).astype(np.float32)
        direction = rng.normal(size=48)
        got = _projection(vectors, direction)
        assert np.array_equal(got, np.einsum("ij,j->i", vectors.astype(np.float64), direction))
        assert np.allclose(got, vectors.astype(np.float64) @ direction, rtol=0, atol=1e-9)
        # A copy projects exactly as its original, wherever the blocks put either (copies are found so).
        doubled = _projection(np.vstack([vectors, vectors[::-1]]), direction)
        assert np.array_equal(doubled[:n], doubled[n:][::-1])


def test_top_per_row_matches_one_sort_of_all_entries():
    rng = np.random.default_rng(3)
    full = _symmetric(rng, 300, 0.1, levels=4)
    rows = np.repeat(np.arange(full.shape[0]), np.diff(full.indptr))
    order = np.argsort(rows + (1.0 - np.clip(full.data.astype(np.float64), 0.0, 1.0)) * 0.5, kind="stable")
    rank = np.arange(len(order)) - full.indptr[rows[order]]
    top = order[rank < 5]
    import pipeline.similarity as similarity

    saved, similarity._TOP_ROWS = similarity._TOP_ROWS, 7  # many blocks
    try:
        got_rows, got_columns = _top_per_row(full, 5)
    finally:
        similarity._TOP_ROWS = saved
    assert np.array_equal(got_rows, rows[top]) and np.array_equal(got_columns, full.indices[top])


def test_raw_products_and_sums_are_scipys():
    rng = np.random.default_rng(4)
    left = sparse.random(40, 30, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    right = sparse.random(40, 30, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    right = (sparse.random(40, 40, density=0.2, random_state=rng, format="csr", dtype=np.float32) @ right).tocsr()
    rows, cols = rng.integers(0, 40, 500), rng.integers(0, 40, 500)
    expected = left[rows].multiply(right[cols])
    indptr, indices, data = _products_of(_raw_rows_of(left, rows, ()), _raw_rows_of(right, cols, ()), 30)
    reference = sparse.csr_matrix((data, indices, indptr), shape=(len(rows) + 1, 30))[:-1]
    assert (reference != expected).nnz == 0
    membership = sparse.random(25, 40, density=0.1, random_state=rng, format="csr", dtype=np.float32)
    product, scipys = _sparse_product(membership, right), (membership @ right).tocsr()
    for a, b in ((product.indptr, scipys.indptr), (product.indices, scipys.indices), (product.data, scipys.data)):
        assert np.array_equal(a, b)
    block_of = rng.integers(0, 3, 30).astype(np.intp)
    sums = block_products(left, right, block_of, 3, rows, cols)
    assert np.allclose(sums, np.stack([expected[:, block_of == b].sum(axis=1).A1 for b in range(3)], axis=1), atol=1e-5)


def test_flat_rows_grow_keeps_every_row():
    rng = np.random.default_rng(5)
    first = sparse.random(50, 20, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    rows = FlatRows([first, first.copy()])
    alive = np.ones(50, dtype=bool)
    alive[::3] = False
    replacement = sparse.random(4, 20, density=0.5, random_state=rng, format="csr", dtype=np.float32)
    import pipeline.cluster.groupsums as groupsums

    saved, groupsums._GROW_ROWS = groupsums._GROW_ROWS, 3
    try:
        rows.replace(np.array([1, 2, 4, 5]), [replacement, replacement.copy()], alive)
    finally:
        groupsums._GROW_ROWS = saved
    kept = np.array([7, 8, 10])
    for got in rows.take(kept):
        assert (got != first[kept]).nnz == 0
    for got in rows.take(np.array([1, 2, 4, 5])):
        assert (got != replacement).nnz == 0


def test_band_buckets_group_equal_rows_in_index_order():
    from pipeline.dedup import _band_buckets

    rng = np.random.default_rng(6)
    for rows in (0, 1, 2, 50, 500):
        keys = rng.integers(0, 4, size=(rows, 5)).astype(np.uint32)  # many equal rows
        order, bucket = _band_buckets(keys)
        _, expected = np.unique(keys.view(np.dtype((np.void, 20))).ravel(), return_inverse=True)
        assert len(order) == len(bucket) == rows
        assert np.all(np.diff(bucket) >= 0)
        # The same groups, each listed in index order.
        for number in np.unique(bucket):
            members = order[bucket == number]
            assert np.all(np.diff(members) > 0)
            assert len(np.unique(expected[members])) == 1
            assert len(members) == np.sum(expected == expected[members[0]])


def test_too_loose_of_plain_floats_is_numpys():
    from pipeline.cluster.cohesion import _too_loose_one, too_loose

    rng = np.random.default_rng(7)
    values = [float("nan"), 0.0, -0.0, 0.5, 1.0, 0.25, 0.75]
    for _ in range(3000):
        similarity, within_a, within_b = (float(rng.choice(values + [rng.random()])) for _ in range(3))
        body_a, body_b = (float(rng.choice([0.0, 0.3, 1.0, rng.random()])) for _ in range(2))
        cohesion = float(rng.choice([0.0, 0.74, 1.0]))
        expected = bool(too_loose(similarity, within_a, within_b, body_a, body_b, cohesion))
        assert _too_loose_one(similarity, within_a, within_b, body_a, body_b, cohesion) == expected


def test_story_rows_of_one_item_read_as_the_product_lists_them():
    from pipeline.cluster.groupsums import StoryRows, VectorRows, indicator

    rng = np.random.default_rng(8)
    items = sparse.random(60, 25, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    items.data[::7] = 0.0  # stored zeros, which a product leaves out
    items.data[::11] = -0.0
    other = sparse.csr_matrix((items.data * np.float32(3.0), items.indices, items.indptr), shape=items.shape)
    labels = np.concatenate([np.arange(40), rng.integers(40, 45, 20)])  # 40 groups of one, 5 of several
    membership = indicator(labels, 45)
    expected = [(membership @ items).tocsr(), (membership @ other).tocsr()]
    item = np.full(45, -1)
    item[:40] = np.arange(40)
    several = np.arange(40, 45)
    rows = FlatRows([expected[0][several], expected[1][several]], [items, other], item)
    stories = rng.permutation(45)
    for got, want in zip(rows.take(stories), expected, strict=True):
        want = want[stories]
        assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
        assert np.array_equal(got.data.view(np.uint32), want.data.view(np.uint32))
    vectors = rng.normal(size=(60, 4)).astype(np.float32)
    vectors[3, 1] = -0.0
    assert np.array_equal(
        VectorRows(vectors, membership).take(stories).view(np.uint32), (membership @ vectors)[stories].view(np.uint32)
    )
    assert StoryRows  # built from these by `StoryRows.of_groups`


def test_symmetric_components_number_the_components_as_the_undirected_search_does() -> None:
    from scipy.sparse.csgraph import connected_components

    from pipeline.cluster.cores import symmetric_components

    rng = np.random.default_rng(5)
    for size in (0, 1, 7, 60):
        for density in (0.0, 0.02, 0.1):
            upper = sparse.random(size, size, density=density, random_state=rng, format="csr")
            matrix = (upper + upper.T).tocsr()
            expected = connected_components(matrix, directed=False)[1] if size else np.zeros(0, dtype=np.int64)
            assert symmetric_components(matrix).tolist() == expected.tolist()
