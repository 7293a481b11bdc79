"""The lean paths of the cluster, headline and store stages give exactly what the code they stand for gives:
member rows kept as Arrow batches, text caches with room for one story, a hot table emptied by making it anew,
group sums of the right side of pairs only."""

from __future__ import annotations

import functools
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from pipeline import assign, headline
from pipeline.assign import MEMBER_SCHEMA, MemberRows
from pipeline.store.segments import _empty_table


def _row(k: int) -> tuple:
    """A member row with each kind of value a run writes: None, rounded floats, dates and shared name lists."""
    names = (["Kyiv", "NATO"], ["Biden"]) if k % 2 else ([], [])
    return (
        f"s-{k % 3}",
        f"a-{k}",
        round(0.1 * k + 1e-7, 4),
        None if k % 4 == 0 else f"a-{k - 1}",
        None if k % 4 == 0 else round(0.3333333 * k, 4),
        None if k % 5 else f"a-{k - k % 5}",
        None if k % 3 == 0 else round(1 / (k + 1), 4),
        None if k % 3 == 0 else 1.0,
        [date(2024, 1, 1 + k % 28)] if k % 6 else [],
        *names,
        ("text", "publication", "none")[k % 3],
    )


def test_member_rows_are_the_table_that_a_dict_per_row_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assign, "_BATCH_ROWS", 7)  # several batches and a partial one
    rows = [_row(k) for k in range(40)]
    members = MemberRows()
    for row in rows:
        members.append(row)
    as_dicts = [dict(zip(MEMBER_SCHEMA.names, row, strict=True)) for row in rows]
    expected = pa.Table.from_pylist(as_dicts, schema=MEMBER_SCHEMA)
    assert len(members) == 40 and members.table().equals(expected)
    assert list(members) == expected.to_pylist()
    assert not MemberRows() and MemberRows().table().num_rows == 0


def test_text_caches_with_room_for_one_story_give_what_unbounded_ones_give() -> None:
    titles = [f"Quake of {k} hits Kyiv, NATO says - Reuters" for k in range(50)] + ["BREAKING: Vote 2018?"] * 3
    cached = [headline.title_terms, headline.without_site_name, headline.entity_set, headline.word_set]
    for function in cached:
        function.cache_clear()
        plain = function.__wrapped__
        tiny = functools.lru_cache(maxsize=4)(plain)  # evicts all the time, as a story bigger than the cache would
        assert [function(t) for t in titles] == [tiny(t) for t in titles] == [plain(t) for t in titles]
    assert headline.style_penalty.cache_info().maxsize == headline._TEXT_CACHE
    assert [headline.style_penalty(t, k % 2 == 0) for k, t in enumerate(titles)] == [
        headline.style_penalty.__wrapped__(t, k % 2 == 0) for k, t in enumerate(titles)
    ]


def test_an_emptied_table_keeps_its_definition_comments_and_constraints() -> None:
    db = duckdb.connect()
    db.execute('CREATE TABLE hot_t (id VARCHAR PRIMARY KEY, "text" VARCHAR NOT NULL, v FLOAT[])')
    db.execute("COMMENT ON TABLE hot_t IS 'recent rows: the view holds them all'")
    db.execute("COMMENT ON COLUMN hot_t.\"text\" IS 'the body''s text'")
    db.execute("INSERT INTO hot_t VALUES ('a', 'x', [1.0]), ('b', 'y', NULL)")
    db.execute("CREATE VIEW t AS SELECT * FROM hot_t")

    def catalog() -> list:
        tables = db.execute("SELECT sql, comment FROM duckdb_tables() WHERE table_name = 'hot_t'").fetchall()
        columns = db.execute(
            "SELECT column_name, comment, data_type, is_nullable FROM duckdb_columns() WHERE table_name = 'hot_t'"
        ).fetchall()
        return tables + columns

    before = catalog()
    db.execute("BEGIN TRANSACTION")
    _empty_table(db, "hot_t")
    db.execute("CREATE OR REPLACE VIEW t AS SELECT * FROM hot_t")
    db.execute("COMMIT")
    assert catalog() == before
    assert db.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    db.execute("INSERT INTO hot_t VALUES ('a', 'z', NULL)")
    with pytest.raises(duckdb.ConstraintException):
        db.execute("INSERT INTO hot_t VALUES ('a', 'w', NULL)")


def test_sums_of_the_right_side_only_are_the_full_sums_without_forward() -> None:
    from pipeline.cluster.groupsums import _DENSE_FIELDS, GroupSums, indicator
    from tests.test_cluster import graph_of, unit

    rng = np.random.default_rng(3)
    texts = [f"report {i} on {'the Kokomo shooting' if i % 2 else 'Fed rates'} on Nov. {1 + i % 9}" for i in range(20)]
    graph = graph_of(unit(rng.normal(size=(20, 6)).tolist()), texts, np.arange(20) * 30.0)
    single, membership = GroupSums.items(graph.features), indicator(rng.integers(0, 5, 20), 5)
    full, right = single.combined(membership), single.combined(membership, left_side=False)
    assert right.forward is None and right.mention_forward is None
    for name in (*_DENSE_FIELDS, "backward", "mention_backward"):
        a, b = getattr(full, name), getattr(right, name)
        if name.endswith("backward"):
            assert (a is None) == (b is None)
            if a is None:
                continue
            assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("indptr", "indices", "data"))
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b), name
