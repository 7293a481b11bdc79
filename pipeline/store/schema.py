"""Schema of the DuckDB file people query: numbered migrations, the connection, and the base of `Store`.

Table and view names are the public interface (README). Schema changes are numbered migrations recorded in
`schema_migrations`, so an older file upgrades itself the next time a run opens it. Since migration 6 the
append-only tables (articles, the two caches, rejects) are views over a small table of recent rows
(`hot_<name>`) and immutable Parquet segments (`pipeline.store.segments`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import LockedError, StoreError

MIGRATIONS: list[tuple[str, str | Callable[[Any], None]]] = [
    (
        "initial schema",
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP, inputs VARCHAR[], lines_read INTEGER, articles_new INTEGER,
            articles_already_stored INTEGER, duplicates_in_input INTEGER, rejected INTEGER,
            stories_new INTEGER, stories_updated INTEGER, stories_merged INTEGER,
            stage_seconds JSON, counters JSON, config JSON, error VARCHAR);
        COMMENT ON TABLE runs IS 'One row per storyclust run: status, counts, seconds per stage and the config used';
        CREATE TABLE articles (
            article_id VARCHAR PRIMARY KEY, title VARCHAR, text VARCHAR, source VARCHAR, url VARCHAR,
            published_at TIMESTAMP, title_raw VARCHAR, text_raw VARCHAR, content_hash VARCHAR NOT NULL,
            notes VARCHAR[], input_file VARCHAR, input_line INTEGER, run_id VARCHAR NOT NULL,
            ingested_at TIMESTAMP NOT NULL);
        COMMENT ON TABLE articles IS 'Every stored news item, cleaned (title, text) and as read (title_raw, text_raw)';
        CREATE TABLE stories (
            story_id VARCHAR PRIMARY KEY, headline VARCHAR NOT NULL, headline_article_id VARCHAR,
            headline_kind VARCHAR, size INTEGER NOT NULL, sources INTEGER, first_seen TIMESTAMP,
            last_seen TIMESTAMP, status VARCHAR NOT NULL, merged_into VARCHAR, created_run_id VARCHAR,
            updated_run_id VARCHAR, updated_at TIMESTAMP);
        COMMENT ON TABLE stories IS 'One row per story; status merged means merged_into holds the surviving story';
        CREATE TABLE story_members (
            story_id VARCHAR NOT NULL, article_id VARCHAR PRIMARY KEY, similarity REAL,
            nearest_article_id VARCHAR, nearest_similarity REAL, near_duplicate_group VARCHAR,
            joined_run_id VARCHAR NOT NULL);
        COMMENT ON TABLE story_members IS 'Which story each article belongs to and the evidence: similarity to the story centroid, its most similar fellow member, its near-duplicate group';
        CREATE TABLE story_merges (
            old_story_id VARCHAR PRIMARY KEY, story_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
            merged_at TIMESTAMP NOT NULL);
        COMMENT ON TABLE story_merges IS 'Stories found to be one: old_story_id now resolves to story_id';
        CREATE TABLE rejects (
            run_id VARCHAR NOT NULL, file VARCHAR, line INTEGER, reason VARCHAR NOT NULL, record VARCHAR);
        COMMENT ON TABLE rejects IS 'Input records that were not stored, with file, line and reason';
        CREATE TABLE embedding_cache (
            model VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, vector FLOAT[] NOT NULL,
            PRIMARY KEY (model, text_hash));
        COMMENT ON TABLE embedding_cache IS 'Sentence vectors by model and text hash, so no text is embedded twice';
        CREATE VIEW top_stories AS
            SELECT story_id, headline, size, sources, first_seen, last_seen FROM stories
            WHERE status = 'open' ORDER BY size DESC, last_seen DESC NULLS LAST, story_id;
        CREATE VIEW story_articles AS
            SELECT m.story_id, s.headline, a.article_id, a.title, a.source, a.published_at, a.url,
                   m.similarity, m.nearest_article_id, m.nearest_similarity, m.near_duplicate_group
            FROM story_members m JOIN stories s USING (story_id) JOIN articles a USING (article_id)
            ORDER BY m.story_id, a.published_at NULLS LAST, a.article_id;
        CREATE VIEW source_coverage AS
            SELECT a.source, count(*) AS articles, count(DISTINCT m.story_id) AS stories
            FROM articles a JOIN story_members m USING (article_id) GROUP BY a.source ORDER BY articles DESC;
        """,
    ),
    (
        "minhash signature cache",
        """
        CREATE TABLE minhash_cache (
            scheme VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, signature UINTEGER[] NOT NULL,
            PRIMARY KEY (scheme, text_hash));
        COMMENT ON TABLE minhash_cache IS 'MinHash signatures by shingling scheme and text hash, so no text is hashed twice';
        """,
    ),
    (
        "evidence for and against each member, and why the headline",
        """
        ALTER TABLE stories ADD COLUMN headline_reason VARCHAR;
        COMMENT ON COLUMN stories.headline_reason IS 'Why this headline: how much of what most members say it carries';
        ALTER TABLE story_members ADD COLUMN story_similarity REAL;
        COMMENT ON COLUMN story_members.story_similarity IS 'Mean similarity to the other members when it joined: the merge rule needs cluster.merge_similarity';
        ALTER TABLE story_members ADD COLUMN date_agreement REAL;
        COMMENT ON COLUMN story_members.date_agreement IS 'How well its event dates agree with the other members (1: no conflict or no dates), when it joined';
        ALTER TABLE story_members ADD COLUMN event_dates DATE[];
        COMMENT ON COLUMN story_members.event_dates IS 'Dates its event may have: publication date and the dates its body names (for undated items: full dates named)';
        ALTER TABLE story_members ADD COLUMN shared_names VARCHAR[];
        COMMENT ON COLUMN story_members.shared_names IS 'Names and numbers it shares with at least half of the members: evidence for';
        ALTER TABLE story_members ADD COLUMN missing_names VARCHAR[];
        COMMENT ON COLUMN story_members.missing_names IS 'Names and numbers at least half of the members give and it does not: evidence against';
        CREATE OR REPLACE VIEW story_articles AS
            SELECT m.story_id, s.headline, a.article_id, a.title, a.source, a.published_at, a.url,
                   m.similarity, m.nearest_article_id, m.nearest_similarity, m.near_duplicate_group,
                   m.story_similarity, m.date_agreement, m.event_dates, m.shared_names, m.missing_names
            FROM story_members m JOIN stories s USING (story_id) JOIN articles a USING (article_id)
            ORDER BY m.story_id, a.published_at NULLS LAST, a.article_id;
        """,
    ),
    (
        "unreadable files",
        """
        CREATE TABLE file_rejects (
            file VARCHAR NOT NULL, size BIGINT NOT NULL, sha256 VARCHAR NOT NULL, reason VARCHAR NOT NULL,
            first_run_id VARCHAR NOT NULL, last_run_id VARCHAR NOT NULL, first_seen TIMESTAMP NOT NULL,
            last_seen TIMESTAMP NOT NULL, PRIMARY KEY (file, sha256));
        COMMENT ON TABLE file_rejects IS 'Input files that could not be read, with size, content hash and reason; an unchanged file (same hash) is not read again';
        """,
    ),
    (
        "time as evidence: which dates fixed each member's event, closed stories reopened, names to find them by",
        """
        ALTER TABLE stories ADD COLUMN event_first DATE;
        ALTER TABLE stories ADD COLUMN event_last DATE;
        COMMENT ON COLUMN stories.event_first IS 'The earliest day its reports are about (publication or named dates); NULL when a report has no date: no bounds in time';
        COMMENT ON COLUMN stories.event_last IS 'The latest day its reports are about; NULL when a report has no date';
        ALTER TABLE story_members ADD COLUMN time_evidence VARCHAR;
        COMMENT ON COLUMN story_members.time_evidence IS 'Which evidence fixed its event time: text (dates its text names), publication (its publication date alone) or none (no date: neutral on time)';
        CREATE TABLE story_reopenings (
            story_id VARCHAR NOT NULL, article_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
            reopened_at TIMESTAMP NOT NULL, previous_last_seen TIMESTAMP, report_published_at TIMESTAMP,
            gap_hours DOUBLE, time_evidence VARCHAR, story_similarity REAL, date_agreement REAL);
        COMMENT ON TABLE story_reopenings IS 'A closed story (no report for more than stories.window_hours) that took a new report: which, when, after how long and on which time evidence';
        CREATE TABLE story_names (story_id VARCHAR NOT NULL, name VARCHAR NOT NULL);
        COMMENT ON TABLE story_names IS 'The rarest names and numbers most of a story''s members give: how a run finds the closed stories a new report may continue';
        CREATE OR REPLACE VIEW story_articles AS
            SELECT m.story_id, s.headline, a.article_id, a.title, a.source, a.published_at, a.url,
                   m.similarity, m.nearest_article_id, m.nearest_similarity, m.near_duplicate_group,
                   m.story_similarity, m.date_agreement, m.event_dates, m.shared_names, m.missing_names,
                   m.time_evidence
            FROM story_members m JOIN stories s USING (story_id) JOIN articles a USING (article_id)
            ORDER BY m.story_id, a.published_at NULLS LAST, a.article_id;
        """,
    ),
    (
        "archive: articles, caches and rejects sealed into Parquet segments, behind views of the same names",
        """
        ALTER TABLE articles RENAME TO hot_articles;
        ALTER TABLE embedding_cache RENAME TO hot_embedding_cache;
        ALTER TABLE minhash_cache RENAME TO hot_minhash_cache;
        ALTER TABLE rejects RENAME TO hot_rejects;
        COMMENT ON TABLE hot_articles IS 'The articles of recent runs, not sealed into a segment yet: the articles view holds them all';
        COMMENT ON TABLE hot_embedding_cache IS 'Recent rows of the embedding cache: the embedding_cache view holds them all';
        COMMENT ON TABLE hot_minhash_cache IS 'Recent rows of the MinHash cache: the minhash_cache view holds them all';
        COMMENT ON TABLE hot_rejects IS 'Recent rejects, not sealed into a segment yet: the rejects view holds them all';
        CREATE TABLE segments (
            file VARCHAR PRIMARY KEY, segment_table VARCHAR NOT NULL, rows BIGINT NOT NULL, bytes BIGINT NOT NULL,
            run_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, replaced_at TIMESTAMP);
        COMMENT ON TABLE segments IS 'Parquet files (in the folder <database>.segments beside the file) holding the sealed rows of articles, embedding_cache, minhash_cache and rejects; replaced ones are deleted a day after replaced_at';
        """,
    ),
    (
        "story tables without primary-key indexes: each checkpoint wrote the whole index anew (0.2 s a run at 200k stories)",
        lambda db: _without_primary_key(db, ["stories", "story_members"]),
    ),
    (
        "time evidence lent: an undated report takes the dates of the dated report most like it",
        """
        COMMENT ON COLUMN story_members.time_evidence IS 'Which evidence fixed its event time: text (dates its text names), publication (its publication date alone), neighbour (no date of its own: the dates of the dated report most like it, as mentions) or none (no date: neutral on time)';
        """,
    ),
]


# Files are written in the storage format of DuckDB 1.2, so every DuckDB from 1.2 on (CLIs, DBeaver,
# notebooks, R) opens them; DuckDB 2.x writes a format 1.x cannot read unless asked.
STORAGE_VERSION = "v1.2.0"

# The two caches, by what they hold: the view (its recent rows in `hot_<view>`), the column naming what made
# the values (model id, signature scheme), the value column, the values' dtype.
CACHES = {
    "vectors": ("embedding_cache", "model", "vector", np.float32),
    "signatures": ("minhash_cache", "scheme", "signature", np.uint32),
}


def connect(path: Path, read_only: bool, wait_seconds: float) -> Any:
    """A connection, waiting up to `wait_seconds` while another process holds the file for writing."""
    import duckdb

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(
                str(path), read_only=read_only, config={"storage_compatibility_version": STORAGE_VERSION}
            )
        except duckdb.IOException as problem:
            message = str(problem).splitlines()[0]
            if "lock" not in message.lower():
                raise StoreError(f"cannot open database {path}: {message}") from None
            if time.monotonic() >= deadline:
                holder = re.search(r"PID (\d+)", message)
                who = f"process {holder.group(1)}" if holder else "another process"
                raise LockedError(
                    f"{path} is held open for writing by {who}; waited {wait_seconds:g} s, try again later "
                    "(open it with `duckdb -readonly` to let runs go on)"
                ) from None
            time.sleep(0.2)
        except duckdb.Error as problem:
            raise StoreError(f"{path} is not a DuckDB database: {str(problem).splitlines()[0]}") from None


def storage_version(db: Any) -> str:
    rows = db.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return str((rows[0][0] or {}).get("storage_version", "")) if rows else ""


def apply_migration(db: Any, step: str | Callable[[Any], None]) -> None:
    """One migration's change: its SQL, or its function of the connection."""
    if callable(step):
        step(db)
    else:
        db.execute(step)


def _without_primary_key(db: Any, tables: list[str]) -> None:
    """Each of `tables` written anew without its primary key: the same columns in the same order, their types,
    NOT NULL and comments, and every row. DuckDB cannot drop a constraint in place, and keeps a primary key
    as an index that every checkpoint writes out whole, so a run's cost grew with every story ever stored.
    The writers keep the keys unique themselves (`RunWrites.write_run`)."""
    for table in tables:
        columns = db.execute(
            "SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
        (comment,) = db.execute(
            "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?", [table]
        ).fetchall()[0]
        definition = ", ".join(f"{name} {kind}{'' if nullable else ' NOT NULL'}" for name, kind, nullable, _ in columns)
        db.execute(f"CREATE TABLE {table}_rewritten ({definition})")
        db.execute(f"INSERT INTO {table}_rewritten SELECT * FROM {table}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_rewritten RENAME TO {table}")
        if comment:
            db.execute(f"COMMENT ON TABLE {table} IS {sql_string(comment)}")
        for name, _, _, remark in columns:
            if remark:
                db.execute(f"COMMENT ON COLUMN {table}.{name} IS {sql_string(remark)}")


class Database:
    """One connection to a storyclust file: opened read-only by everything that only reads; opened for
    writing only on a run's private copy (`pipeline.store.publish.WorkingCopy`), where it migrates first."""

    def __init__(self, path: str | Path, read_only: bool, create: bool, wait_seconds: float) -> None:
        self.path = Path(path)
        if (read_only or not create) and not self.path.exists():
            raise StoreError(f"database not found: {self.path} (run `storyclust run` first or pass --db)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        self.db = connect(self.path, read_only, wait_seconds)
        if read_only and not self._has_table("schema_migrations"):
            self.db.close()
            raise StoreError(f"{self.path} is not a storyclust database")

    def close(self) -> None:
        self.db.close()

    def _has_table(self, name: str) -> bool:
        return bool(
            self.db.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchall()[0][0]
        )

    def migrate(self) -> int:
        """Apply the migrations this file has not seen yet, each in its own transaction; returns how many."""
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
        )
        done = {row[0] for row in self.db.execute("SELECT version FROM schema_migrations").fetchall()}
        applied = 0
        for version, (name, sql) in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self.transaction():
                apply_migration(self.db, sql)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
            applied += 1
        return applied

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def first_row(result: Any) -> tuple | None:
    """The first row or None, reading the result to its end (DuckDB refuses new work on an unfinished one)."""
    rows = result.fetchall()
    return rows[0] if rows else None


def sql_string(text: str | Path) -> str:
    """A string literal for SQL that DuckDB cannot take as a parameter (file names in COPY and views)."""
    return "'" + str(text).replace("'", "''") + "'"
