"""The per-distinct-value fast paths of the evidence, near-duplicate and normalize stages give exactly what the
item-by-item code they stand for gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from scipy import sparse

from pipeline.eventdates import DateEvidence, _date_evidence, date_evidence


def _same_matrix(left: sparse.csr_matrix, right: sparse.csr_matrix) -> None:
    assert left.shape == right.shape
    for name in ("indptr", "indices", "data"):
        a, b = getattr(left, name), getattr(right, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def _same_evidence(fast: DateEvidence, slow: DateEvidence) -> None:
    _same_matrix(fast.cover, slow.cover)
    _same_matrix(fast.mass, slow.mass)
    for name in ("channel", "known", "mention", "kind"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert fast.item_dates == slow.item_dates
    assert fast.sources == slow.sources


BODIES = [
    "",
    "",
    "The shooting on Nov. 10 left two dead.",
    "Police said Tuesday that the suspect fled.",
    "Talks resume today after the May 25, 2016 accord.",
    "The 2019 report, revised in 2021, names 2019 twice.",
    "Nothing dated here at all.",
]
TITLES = ["Quake hits", "Summit in 2020", "Fire", "", "Vote 2018 results"]


def test_date_evidence_per_distinct_text_and_day_equals_item_by_item() -> None:
    rng = np.random.default_rng(3)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for trial in range(40):
        n = int(rng.integers(1, 80))
        bodies = [BODIES[int(k)] for k in rng.integers(0, len(BODIES), n)]
        titles = [TITLES[int(k)] for k in rng.integers(0, len(TITLES), n)]
        published = [
            None if rng.random() < 0.2 else start + timedelta(hours=float(rng.uniform(0, 24 * 20))) for _ in range(n)
        ]
        for tolerance in (2.0, 0.25, 0.0):
            with_titles = titles if trial % 2 else None
            fast = date_evidence(bodies, published, tolerance, with_titles)
            slow = _date_evidence(
                bodies if tolerance > 0 else [""] * n,
                published if tolerance > 0 else [None] * n,
                tolerance,
                with_titles or [""] * n,
            )
            _same_evidence(fast, slow)


def test_segment_minima_equal_reduceat_over_the_permuted_rows() -> None:
    from pipeline.dedup import _segment_minima

    rng = np.random.default_rng(5)
    a = rng.integers(1, 2**32, 16, dtype=np.uint32)
    b = rng.integers(0, 2**32, 16, dtype=np.uint32)
    for _ in range(50):
        lengths = rng.integers(1, 40, int(rng.integers(1, 30)))
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        values = rng.integers(0, 2**32, int(lengths.sum()), dtype=np.uint32)
        with np.errstate(over="ignore"):
            expected = np.minimum.reduceat(values[:, None] * a + b, starts, axis=0)
        assert np.array_equal(_segment_minima(values, starts, lengths, a, b), expected)


def test_normalize_records_cleans_each_distinct_record_once_as_one_at_a_time() -> None:
    from pipeline.normalize import normalize_record, normalize_records
    from pipeline.records import RawRecord

    titles = ["Quake hits Chile - Reuters", "Quake hits Chile...", "Reuters on MSNQuake hits", "<b>Fed</b> &amp; rates"]
    texts = ["", "WASHINGTON (Reuters) - The Fed said (Reuters)", "Body text \u2026"]
    sources = [None, "Reuters", "The Guardian"]
    records = [
        RawRecord(
            file="f.jsonl",
            line=k,
            id=None if k % 3 == 0 else f"id-{k}",
            title=titles[k % len(titles)],
            text=texts[k % len(texts)],
            source=sources[k % len(sources)],
            url=" https://example.com/a " if k % 2 else None,
            published_at=datetime(2024, 1, 1) + timedelta(hours=k) if k % 5 else None,
            notes=["date dropped: x"] if k % 7 == 0 else [],
        )
        for k in range(120)
    ]
    assert normalize_records(records) == [normalize_record(record) for record in records]


def test_symmetric_matrix_is_upper_plus_its_transpose() -> None:
    from pipeline.similarity import symmetric_matrix

    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(2, 40))
        upper = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64)
        pairs = upper[np.sort(rng.choice(len(upper), int(rng.integers(0, len(upper) + 1)), replace=False))]
        values = rng.random(len(pairs)).astype(np.float32)
        values[rng.random(len(pairs)) < 0.2] = 0.0  # left out, as a sum of 0 is
        values[rng.random(len(pairs)) < 0.05] = np.nan  # kept
        half = sparse.coo_matrix((values, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        expected = (half + half.T).tocsr()
        found = symmetric_matrix(n, pairs[:, 0], pairs[:, 1], values)
        for name in ("indptr", "indices", "data"):
            a, b = getattr(found, name), getattr(expected, name)
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), name
