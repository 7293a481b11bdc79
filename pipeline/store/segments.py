"""Sealed segments: the older rows of the append-only tables as immutable Parquet files, behind views.

Why: a run publishes by copying the database file (`pipeline.store.publish.WorkingCopy`); with every
article ever stored inside it, each run would copy the whole archive. Instead the rows a run adds go to
small `hot_<name>` tables, and once those hold `store.segment_rows` rows they are written once to a
Parquet file in the folder `<database>.segments` beside the file and leave the database. The views
`articles`, `embedding_cache`, `minhash_cache` and `rejects` join both, so readers query the same names as
before and see one consistent snapshot: a published segment never changes, and one that `prune` replaces
stays on disk for `store.keep_replaced_hours` for readers still holding an older snapshot. Each segment of
a keyed view has a Bloom filter of its keys beside it (`<segment>.keys`, `pipeline.store.keyfilters`), so a
run's lookups read only the segments that may hold what it looks for.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.store.keyfilters import SUFFIX, filter_path, write_filter
from pipeline.store.schema import sql_string

# View name -> what it holds (its comment; the hot table is `hot_<name>`).
ARCHIVED: dict[str, str] = {
    "articles": "Every stored news item, cleaned (title, text) and as read (title_raw, text_raw)",
    "embedding_cache": "Sentence vectors by model and text hash, so no text is embedded twice",
    "minhash_cache": "MinHash signatures by shingling scheme and text hash, so no text is hashed twice",
    "rejects": "Input records that were not stored, with file, line and reason",
}
# The cache tables are looked up by text hash: their segments are sorted by it.
_ORDER = {
    "articles": "",
    "embedding_cache": " ORDER BY text_hash",
    "minhash_cache": " ORDER BY text_hash",
    "rejects": "",
}


def segment_folder(published: Path) -> Path:
    """Where the segments of the database published at `published` live (absolute: views name the files)."""
    path = Path(os.path.abspath(published))
    return path.with_name(path.name + ".segments")


def active_files(db: Any, name: str) -> list[str]:
    """The segment files the views of `name` read, oldest first."""
    rows = db.execute(
        "SELECT file FROM segments WHERE segment_table = ? AND replaced_at IS NULL ORDER BY created_at, file", [name]
    ).fetchall()
    return [file for (file,) in rows]


def missing_segments(db: Any, folder: Path) -> list[str]:
    """The active segment files that are not in `folder` (a database copied or moved without its folder)."""
    files = db.execute("SELECT file FROM segments WHERE replaced_at IS NULL ORDER BY file").fetchall()
    return [file for (file,) in files if not (folder / file).exists()]


def refresh_views(db: Any, folder: Path) -> None:
    """(Re)create each archived view over its hot table and its segments at `folder`: after a seal, a prune,
    a migration, or a move of the database with its folder (the views hold absolute paths)."""
    for name, comment in ARCHIVED.items():
        select = f"SELECT * FROM hot_{name}"
        files = active_files(db, name)
        if files:
            paths = ", ".join(sql_string(folder / file) for file in files)
            select += f" UNION ALL BY NAME SELECT * FROM read_parquet([{paths}], union_by_name = true)"
        db.execute(f"CREATE OR REPLACE VIEW {name} AS {select}")
        db.execute(f"COMMENT ON VIEW {name} IS {sql_string(comment)}")


def views_current(db: Any, folder: Path) -> bool:
    """Whether each archived view reads exactly its active segments at `folder` (a run opening the store need
    not write the catalog anew: with hundreds of segments that, and its checkpoint, cost a tenth of a second)."""
    for name in ARCHIVED:
        found = db.execute("SELECT sql FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name]).fetchall()
        if not found:
            return False
        sql, files = found[0][0], active_files(db, name)
        if sql.count(".parquet") != len(files) or not all(str(folder / file) in sql for file in files):
            return False
    return True


def seal(db: Any, folder: Path, run_id: str, at_rows: int) -> int:
    """Once any hot table holds `at_rows` rows, write every non-empty hot table to a new segment and empty it.
    Returns the rows sealed. Runs on the writer's private copy: a segment written by a run that is killed
    before publishing is named by no published database, and the next writer deletes it (`sweep`)."""
    counts = {name: db.execute(f"SELECT count(*) FROM hot_{name}").fetchall()[0][0] for name in ARCHIVED}
    if max(counts.values()) < at_rows:
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in counts.items():
        if rows:
            file = f"{name}-{run_id}.parquet"
            _write_segment(db, folder / file, f"SELECT * FROM hot_{name}{_ORDER[name]}", name)
            written.append((file, name, rows))
    _sync_folder(folder)
    db.execute("BEGIN TRANSACTION")
    for file, name, rows in written:
        _register(db, folder, file, name, rows, run_id)
        _empty_table(db, f"hot_{name}")
    refresh_views(db, folder)
    db.execute("COMMIT")
    return sum(counts.values())


def _empty_table(db: Any, table: str) -> None:
    """Empty a table by making it anew from its own definition and comments (the views over it are made
    anew by the caller): deleting every row cost the commit 4.6 s at 200k articles and 100k cache rows (each
    key leaves the primary-key index one at a time), a new table nothing."""
    (definition, comment), *_ = db.execute(
        "SELECT sql, comment FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = current_schema() AND table_name = ?",
        [table],
    ).fetchall()
    columns = db.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = current_schema() AND table_name = ? AND comment IS NOT NULL",
        [table],
    ).fetchall()
    db.execute(f"DROP TABLE {table}")
    db.execute(definition)
    if comment:
        db.execute(f"COMMENT ON TABLE {table} IS {sql_string(comment)}")
    for column, text in columns:
        db.execute(f'COMMENT ON COLUMN {table}."{column}" IS {sql_string(text)}')


def remove_rows(db: Any, folder: Path, name: str, doomed: str, run_id: str) -> int:
    """Delete the rows of view `name` matching the SQL predicate `doomed`: from the hot table, and by writing
    each segment that holds some anew without them (the old file is marked replaced, deleted later). The
    caller holds the transaction and refreshes nothing: the views are refreshed here. Returns rows removed."""
    removed = db.execute(f"DELETE FROM hot_{name} WHERE {doomed}").fetchall()[0][0]
    for number, file in enumerate(active_files(db, name)):
        source = sql_string(folder / file)
        total, hit = db.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {doomed}) FROM read_parquet({source})"
        ).fetchall()[0]
        if not hit:
            continue
        if hit < total:
            kept = f"{name}-{run_id}-{number}.parquet"
            _write_segment(
                db, folder / kept, f"SELECT * FROM read_parquet({source}) WHERE ({doomed}) IS NOT TRUE", name
            )
            _register(db, folder, kept, name, total - hit, run_id)
        db.execute("UPDATE segments SET replaced_at = ? WHERE file = ?", [datetime.now(), file])
        removed += hit
    if folder.is_dir():
        _sync_folder(folder)
    refresh_views(db, folder)
    return removed


def sweep(db: Any, folder: Path, keep_replaced_hours: float) -> None:
    """Delete what no reader can need: files no published database names (left by killed writers) and
    segments replaced more than `keep_replaced_hours` ago. Only a writer holding the database lock calls it,
    on its copy of the published state."""
    if not folder.is_dir():
        return
    known = {file for (file,) in db.execute("SELECT file FROM segments").fetchall()}
    known |= {file + SUFFIX for file in known}
    for path in folder.iterdir():
        if path.name not in known:
            path.unlink(missing_ok=True)
    cutoff = datetime.now() - timedelta(hours=keep_replaced_hours)
    expired = db.execute("SELECT file FROM segments WHERE replaced_at < ?", [cutoff]).fetchall()
    for (file,) in expired:
        (folder / file).unlink(missing_ok=True)
        filter_path(folder, file).unlink(missing_ok=True)
        db.execute("DELETE FROM segments WHERE file = ?", [file])


def archive_bytes(folder: Path) -> int:
    """Bytes of the segment files on disk."""
    return sum(path.stat().st_size for path in folder.iterdir()) if folder.is_dir() else 0


def _write_segment(db: Any, path: Path, select: str, name: str) -> None:
    """Write the rows of `select` to a Parquet file of view `name`, durably, under its final name only once
    complete; then the filter of its keys (`pipeline.store.keyfilters`)."""
    partial = path.with_name(path.name + ".partial")
    db.execute(f"COPY ({select}) TO {sql_string(partial)} (FORMAT parquet, COMPRESSION zstd)")
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)
    write_filter(db, path.parent, path.name, name)


def _register(db: Any, folder: Path, file: str, name: str, rows: int, run_id: str) -> None:
    db.execute(
        "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, NULL)",
        [file, name, rows, (folder / file).stat().st_size, run_id, datetime.now()],
    )


def _sync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
