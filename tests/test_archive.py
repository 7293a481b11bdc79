"""The archive: rows sealed into Parquet segments behind views of the same names (issue 22).

A fake embedder stands in for the model: the store is what these test (real runs: test_readme_sql.py, the
acceptance tests, `make bench-archive`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import Config, StoreConfig
from pipeline.runner import run
from pipeline.store import MIGRATIONS, apply_migration, prune
from pipeline.store.segments import ARCHIVED, segment_folder
from tests.conftest import snapshot_reader

pytestmark = pytest.mark.usefixtures("fake_model")

# Three slices of a small stream: two events, each told again in a later slice, and a bad record.
SLICES = [
    [
        '{"id": "q1", "title": "Earthquake of magnitude 7 hits northern Chile", "published_at": "2024-03-01T10:00:00Z"}',
        '{"id": "q2", "title": "Magnitude 7 earthquake strikes northern Chile", "published_at": "2024-03-01T11:00:00Z"}',
        '{"id": "r1", "title": "Central bank raises rates by half a point", "published_at": "2024-03-01T12:00:00Z"}',
    ],
    [
        '{"id": "q3", "title": "Chile earthquake: rescuers search rubble in Antofagasta", "published_at": "2024-03-01T18:00:00Z"}',
        '{"id": "r2", "title": "Central bank lifts rates half a point, markets fall", "published_at": "2024-03-01T19:00:00Z"}',
        '{"id": "bad"}',
    ],
    [
        '{"id": "f1", "title": "Floods close roads in Valencia after record rain", "published_at": "2024-03-02T09:00:00Z"}',
        '{"id": "q4", "title": "Northern Chile earthquake death toll rises to 12", "published_at": "2024-03-02T10:00:00Z"}',
    ],
]


def config(segment_rows: int = 5000, keep_replaced_hours: float = 24.0) -> Config:
    return Config(
        store=StoreConfig(lock_wait_seconds=0.5, segment_rows=segment_rows, keep_replaced_hours=keep_replaced_hours)
    )


def write_slices(folder: Path) -> list[Path]:
    paths = []
    for number, lines in enumerate(SLICES):
        path = folder / f"slice-{number}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def state(db: Path) -> dict[str, list[tuple]]:
    """Everything a reader sees, without the columns that differ between two runs (run ids, times)."""
    return {
        "articles": rows(db, "SELECT article_id, title, text, source, published_at, content_hash, notes, input_line "
                         "FROM articles ORDER BY article_id"),
        "members": rows(db, "SELECT article_id, story_id, similarity, near_duplicate_group FROM story_members "
                        "ORDER BY article_id"),
        "stories": rows(db, "SELECT story_id, headline, size, sources, first_seen, last_seen, status FROM stories "
                        "ORDER BY story_id"),
        "vectors": rows(db, "SELECT model, text_hash, vector FROM embedding_cache ORDER BY ALL"),
        "signatures": rows(db, "SELECT scheme, text_hash, signature FROM minhash_cache ORDER BY ALL"),
        "rejects": rows(db, "SELECT file, line, reason, record FROM rejects ORDER BY ALL"),
    }  # fmt: skip


def test_sealed_rows_read_as_before_and_stories_are_the_same(tmp_path: Path) -> None:
    paths = write_slices(tmp_path)
    unsealed, sealed = tmp_path / "unsealed.duckdb", tmp_path / "sealed.duckdb"
    for path in paths:
        run([str(path)], config(), db=unsealed)
        run([str(path)], config(segment_rows=1), db=sealed)
    assert state(sealed) == state(unsealed)
    assert len(state(sealed)["articles"]) == 7 and len(state(sealed)["rejects"]) == 1
    for name in ARCHIVED:  # every row sealed, nothing left in the file's own tables
        assert rows(sealed, f"SELECT count(*) FROM hot_{name}") == [(0,)]
    files = rows(sealed, "SELECT file, segment_table, rows FROM segments WHERE replaced_at IS NULL ORDER BY file")
    assert sum(n for _, table, n in files if table == "articles") == 7
    on_disk = sorted(p.name for p in segment_folder(sealed).iterdir())
    keyed = [f"{file}.keys" for file, table, _ in files if table != "rejects"]  # each with its key filter
    assert on_disk == sorted([file for file, _, _ in files] + keyed)
    again = run([str(p) for p in paths], config(segment_rows=1), db=sealed)  # ids found in the segments
    assert (again.articles_new, again.already_stored) == (0, 7)


def test_a_database_from_before_the_archive_is_converted_by_the_next_run(tmp_path: Path) -> None:
    first, second, third = write_slices(tmp_path)
    reference = tmp_path / "reference.duckdb"
    run([str(first)], config(), db=reference)
    run([str(second)], config(), db=reference)
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:  # as storyclust wrote it before migration 6, with the same rows
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
        for version, (name, sql) in enumerate(MIGRATIONS[:5], start=1):
            apply_migration(con, sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
        con.execute(f"ATTACH '{reference}' AS reference (READ_ONLY)")
        tables = [
            t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'old'").fetchall()
        ]
        for table in tables:
            if table != "schema_migrations":
                con.execute(f"INSERT INTO {table} SELECT * FROM reference.{table}")
        assert con.execute("SELECT count(*) FROM articles").fetchone()[0] == 5
    before = state(old)
    run([str(third)], config(segment_rows=1), db=old)
    run([str(third)], config(segment_rows=1), db=reference)
    after = state(old)
    assert after == state(reference)
    for kind, found in before.items():  # nothing lost (members and stories may change: the run adds to them)
        if kind not in ("members", "stories"):
            assert all(row in after[kind] for row in found), kind
    assert rows(old, "SELECT max(version) FROM schema_migrations") == [(len(MIGRATIONS),)]
    assert rows(old, "SELECT count(*) FROM hot_articles") == [(0,)]
    assert rows(old, "SELECT table_type FROM information_schema.tables WHERE table_name = 'articles'") == [("VIEW",)]
    # Migration 7: the story tables without their key indexes, with their columns, NOT NULLs and comments.
    keys = (
        "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
        "AND table_name IN ('stories', 'story_members')"
    )
    assert rows(old, keys) == [(0,)]
    described = (
        "SELECT table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() "
        "WHERE table_name IN ('stories', 'story_members') ORDER BY table_name, column_index"
    )
    assert rows(old, described) == rows(reference, described)
    assert all(comment for *_, comment in rows(old, described) if _[1] in ("time_evidence", "event_first"))
    assert (
        rows(old, "SELECT count(*) FROM duckdb_tables() WHERE comment IS NOT NULL AND table_name LIKE 'stor%'")[0][0]
        >= 2
    )


def test_prune_writes_segments_anew_and_keeps_the_replaced_ones_for_older_readers(tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join(SLICES[0]) + "\n")
    recent = tmp_path / "recent.jsonl"  # published today: survives the prune
    today = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent.write_text(f'{{"id": "n1", "title": "Parliament passes the budget", "published_at": "{today}"}}\n')
    run([str(old), str(recent)], config(segment_rows=1), db=db)
    (replaced,) = rows(db, "SELECT file FROM segments WHERE segment_table = 'articles'")[0]
    reader = snapshot_reader(db)  # a reader that opened the store before the prune
    assert reader.stdout.readline().strip() == "4"
    counts = prune(db, older_than_days=30, wait_seconds=1.0)
    held, _ = reader.communicate("")
    assert counts.articles == 3 and counts.stories >= 2  # (the fake embedder may not join the two quake reports)
    assert held.strip() == "4"  # its snapshot still reads the replaced segment
    assert rows(db, "SELECT article_id FROM articles") == [("n1",)]
    folder = segment_folder(db)
    assert (folder / replaced).exists()
    assert rows(db, f"SELECT replaced_at IS NOT NULL FROM segments WHERE file = '{replaced}'") == [(True,)]
    run([str(recent)], config(keep_replaced_hours=0), db=db)  # the next writer deletes what is past its time
    assert not (folder / replaced).exists()
    assert rows(db, f"SELECT count(*) FROM segments WHERE file = '{replaced}'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM articles") == [(1,)]


def test_segments_left_by_a_killed_run_are_deleted_by_the_next(tmp_path: Path) -> None:
    first, second, _ = write_slices(tmp_path)
    db = tmp_path / "news.duckdb"
    run([str(first)], config(segment_rows=1), db=db)
    folder = segment_folder(db)
    kept = sorted(p.name for p in folder.iterdir())
    (folder / "articles-r-killed.parquet").write_bytes(b"PAR1 half written")  # named by no published file
    (folder / "articles-r-killed-2.parquet.partial").write_bytes(b"PAR1")
    run([str(second)], config(segment_rows=1), db=db)
    names = sorted(p.name for p in folder.iterdir())
    assert set(kept) <= set(names) and not any("killed" in name for name in names)
    assert rows(db, "SELECT count(*) FROM articles") == [(5,)]


def test_a_moved_database_finds_its_segments_after_the_next_run(tmp_path: Path) -> None:
    first, second, _ = write_slices(tmp_path)
    db = tmp_path / "a" / "news.duckdb"
    run([str(first)], config(segment_rows=1), db=db)
    moved = tmp_path / "b"
    (tmp_path / "a").rename(moved)
    run([str(second)], config(segment_rows=1), db=moved / "news.duckdb")
    assert rows(moved / "news.duckdb", "SELECT count(*) FROM articles") == [(5,)]


def test_a_run_that_fails_while_sealing_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    import pipeline.store.segments as segments
    from pipeline.errors import StoreError

    first, second, _ = write_slices(tmp_path)
    db = tmp_path / "news.duckdb"
    run([str(first)], config(), db=db)  # three rows in the file, none sealed
    before = state(db)

    def disk_gone(folder: Path) -> None:
        raise OSError(5, "Input/output error")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(StoreError, match="Input/output error; the database is"):
        patch.setattr(segments, "_sync_folder", disk_gone)  # after the segment files, before they are named
        run([str(second)], config(segment_rows=1), db=db)
    assert state(db) == before and rows(db, "SELECT count(*) FROM segments") == [(0,)]
    assert any(segment_folder(db).iterdir())  # the unpublished run's files, named by no database
    run([str(second)], config(segment_rows=1), db=db)
    named = {file for (file,) in rows(db, "SELECT file FROM segments")}
    assert {p.name for p in segment_folder(db).iterdir() if not p.name.endswith(".keys")} == named
    assert rows(db, "SELECT count(*) FROM articles") == [(5,)]


def test_a_file_grown_by_sealed_rows_is_written_anew_with_everything_in_it(tmp_path: Path) -> None:
    from pipeline.store import Store
    from pipeline.store.publish import rewrite_database

    db = tmp_path / "news.duckdb"
    with Store(db) as store:
        for k in range(6):  # as runs and prunes do: rows deleted, recent rows sealed, stories growing after them
            for prefix in ("a", "pruned"):
                store.db.execute(
                    "INSERT INTO hot_articles (article_id, title, text, content_hash, run_id, ingested_at) "
                    f"SELECT '{prefix}{k}-' || i, 'Title', repeat(md5(i::VARCHAR), 40) || i, md5(i::VARCHAR), 'r', "
                    "now() FROM range(5000) r(i)"
                )
            store.db.execute("DELETE FROM hot_articles WHERE article_id LIKE 'pruned%'")
            store.db.execute(f"INSERT INTO story_names SELECT 's{k}-' || i, 'name' || i FROM range(5000) r(i)")
            assert store.seal(f"r-{k}") == 5000
    large = db.stat().st_size
    assert large > 8 * 2**20  # DuckDB keeps the blocks of the deleted rows
    rewrite_database(db)
    assert db.stat().st_size < large / 4
    assert rows(db, "SELECT count(*), count(DISTINCT article_id) FROM articles") == [(30000, 30000)]
    assert rows(db, "SELECT count(*) FROM story_names") == [(30000,)]
    assert rows(db, "SELECT comment FROM duckdb_views() WHERE view_name = 'articles'")[0][0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=0, max_size=300, unique=True), st.data())
def test_a_key_filter_never_misses_a_key_it_holds(keys: list[str], data: st.DataObject) -> None:
    from pipeline.store.keyfilters import build_filter, key_hashes, may_hold_any

    bloom = build_filter(keys)
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=20)) if keys else []:
        assert may_hold_any(bloom, *key_hashes([key]))
    assert may_hold_any(bloom, *key_hashes(keys)) == bool(keys)


def test_a_key_filter_names_a_segment_without_the_key_rarely() -> None:
    from pipeline.store.keyfilters import build_filter, key_hashes, may_hold_any

    bloom = build_filter([f"held-{k}" for k in range(5000)])
    false = sum(may_hold_any(bloom, *key_hashes([f"other-{k}"])) for k in range(20000))
    assert false / 20000 < 0.02  # about 1% at 10 bits and 7 probes per key


def test_lookups_read_only_the_segments_that_may_hold_the_keys(tmp_path: Path) -> None:
    from pipeline.store import Store
    from pipeline.store.keyfilters import files_holding, filter_path

    db = tmp_path / "news.duckdb"
    for path in write_slices(tmp_path):
        run([str(path)], config(segment_rows=1), db=db)
    folder = segment_folder(db)
    files = [file for (file,) in rows(db, "SELECT file FROM segments WHERE segment_table = 'articles' ORDER BY file")]
    assert len(files) == 3 and all(filter_path(folder, file).exists() for file in files)
    holding_q3 = [
        f for f in files if rows(db, f"SELECT count(*) FROM read_parquet('{folder / f}') WHERE article_id = 'q3'")[0][0]
    ]
    assert files_holding(folder, files, ["q3"]) == holding_q3  # (the other two: no false positive here)
    with Store(db, read_only=True) as store:
        assert store.stored_hashes(["q3", "nope"]).keys() == {"q3"}
        assert store.story_of_articles(["q1", "q3", "nope"]).keys() == {"q1", "q3"}
        story = store.story_of_articles(["q3"])["q3"]
        assert "q3" in {row["article_id"] for row in store.story_members_of([story])}


def test_lookups_find_the_same_rows_with_keys_as_a_list_or_as_an_arrow_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few keys go to DuckDB as a list parameter (no pandas import), many as an Arrow table."""
    import pipeline.store.lookups as lookups
    from pipeline.store import Store

    db = tmp_path / "news.duckdb"
    for path in write_slices(tmp_path):
        run([str(path)], config(segment_rows=1), db=db)
    asked = [f"{prefix}{k}" for prefix in "pqr" for k in range(5)] + ["nope", "q1"]
    answers = []
    for most_listed in (10_000, 0):
        monkeypatch.setattr(lookups, "_LIST_PARAMETER_KEYS", most_listed)
        with Store(db, read_only=True) as store:
            (model,) = store.db.sql("SELECT model FROM embedding_cache LIMIT 1").fetchall()[0]
            texts = [row[0] for row in store.db.sql("SELECT text_hash FROM embedding_cache").fetchall()] + ["none"]
            hashes = store.stored_hashes(asked)
            answers.append((hashes, store.cached_keys("vectors", model, texts), store.cached_vectors(model, texts)))
    (listed, listed_keys, listed_vectors), (arrow, arrow_keys, arrow_vectors) = answers
    assert listed == arrow and len(listed) >= 6 and "nope" not in listed
    assert listed_keys == arrow_keys == set(texts[:-1]) and listed_vectors.keys() == arrow_vectors.keys() == listed_keys
    assert all((listed_vectors[key] == arrow_vectors[key]).all() for key in listed_vectors)


def test_segments_without_key_filters_are_read_whole_and_filtered_by_the_next_run(tmp_path: Path) -> None:
    from pipeline.store import Store

    first, second, third = write_slices(tmp_path)
    db = tmp_path / "news.duckdb"
    run([str(first)], config(segment_rows=1), db=db)
    run([str(second)], config(segment_rows=1), db=db)
    folder = segment_folder(db)
    for lost in folder.glob("*.keys"):  # as sealed before filters, or the filters lost
        lost.unlink()
    (folder / "articles-x.parquet.keys").write_bytes(b"SCKF")  # a torn filter of no segment
    with Store(db, read_only=True) as store:  # every segment read whole
        assert store.stored_hashes(["q1", "r2", "nope"]).keys() == {"q1", "r2"}
    repeat = run([str(first), str(second), str(third)], config(segment_rows=1), db=db)
    assert (repeat.articles_new, repeat.already_stored) == (2, 5)
    named = rows(db, "SELECT file FROM segments WHERE segment_table <> 'rejects' AND replaced_at IS NULL")
    assert sorted(p.name for p in folder.glob("*.keys")) == sorted(f"{file}.keys" for (file,) in named)


def test_a_database_copied_without_its_segments_folder_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    import shutil

    from pipeline.errors import StoreError

    first, second, _ = write_slices(tmp_path)
    db = tmp_path / "news.duckdb"
    run([str(first)], config(segment_rows=1), db=db)
    alone = tmp_path / "copy.duckdb"
    shutil.copyfile(db, alone)
    with pytest.raises(StoreError, match=r"segment files of .*copy.duckdb are missing .*keep that folder"):
        run([str(second)], config(segment_rows=1), db=alone)
    assert rows(alone, "SELECT count(*) FROM hot_articles") == [(0,)]  # unchanged: nothing published
