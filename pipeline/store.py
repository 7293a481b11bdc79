"""Store stage: the DuckDB file people query. Table and column names here are the public interface.

Schema changes are numbered migrations recorded in `schema_migrations`, so an older file upgrades itself.
Every write of a run happens in one transaction (see `pipeline.runner`); a killed run leaves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import NotFoundError, StoreError

MIGRATIONS: list[tuple[str, str]] = [
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
]


@dataclass(frozen=True)
class StoredArticle:
    article_id: str
    content_hash: str


class Store:
    """A DuckDB database holding articles, stories and runs."""

    def __init__(self, path: str | Path, read_only: bool = False, create: bool = True) -> None:
        import duckdb

        self.path = Path(path)
        if (read_only or not create) and not self.path.exists():
            raise StoreError(f"database not found: {self.path} (run `storyclust run` first or pass --db)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as problem:
            message = str(problem).splitlines()[0]
            raise StoreError(f"cannot open database {self.path}: {message}") from None
        except duckdb.Error as problem:
            raise StoreError(f"{self.path} is not a DuckDB database: {str(problem).splitlines()[0]}") from None
        if read_only:
            if not self._has_table("schema_migrations"):
                raise StoreError(f"{self.path} is not a storyclust database")
        else:
            self.migrate()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _has_table(self, name: str) -> bool:
        return bool(
            self.db.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchall()[0][0]
        )

    def migrate(self) -> None:
        """Apply the migrations this file has not seen yet, each in its own transaction."""
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
        )
        done = {row[0] for row in self.db.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, (name, sql) in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self.transaction():
                self.db.execute(sql)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- runs -------------------------------------------------------------------------------------------
    def start_run(self, run_id: str, inputs: list[str], config: dict[str, Any]) -> None:
        """Record a run as running (committed at once, so a killed run leaves a trace)."""
        self.db.execute(
            "UPDATE runs SET status = 'failed', error = 'interrupted: the process ended before finishing' "
            "WHERE status = 'running'"
        )
        self.db.execute(
            "INSERT INTO runs (run_id, status, started_at, inputs, config) VALUES (?, 'running', now(), ?, ?)",
            [run_id, inputs, json.dumps(config)],
        )

    def finish_run(self, run_id: str, status: str, values: dict[str, Any]) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        self.db.execute(
            f"UPDATE runs SET status = ?, finished_at = now(){', ' + columns if columns else ''} WHERE run_id = ?",
            [status, *[json.dumps(v) if isinstance(v, dict) else v for v in values.values()], run_id],
        )

    # -- reads ------------------------------------------------------------------------------------------
    def stored_hashes(self, article_ids: list[str]) -> dict[str, str]:
        """Content hash of each of these ids that is already stored."""
        if not article_ids:
            return {}
        self.db.register("wanted_ids", _frame({"article_id": article_ids}))
        rows = self.db.execute(
            "SELECT a.article_id, a.content_hash FROM articles a JOIN wanted_ids w USING (article_id)"
        ).fetchall()
        self.db.unregister("wanted_ids")
        return dict(rows)

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        return self._cached_arrays("embedding_cache", "model", "vector", model, hashes, np.float32)

    def cached_signatures(self, scheme: str, hashes: list[str]) -> dict[str, np.ndarray]:
        return self._cached_arrays("minhash_cache", "scheme", "signature", scheme, hashes, np.uint32)

    def _cached_arrays(
        self, table: str, kind_column: str, value_column: str, kind: str, hashes: list[str], dtype: type
    ) -> dict[str, np.ndarray]:
        """Cached arrays of these text hashes, read through Arrow (not 77M Python floats at 200k items)."""
        if not hashes:
            return {}
        self.db.register("wanted_hashes", _frame({"text_hash": hashes}))
        found = self.db.sql(
            f"SELECT c.text_hash, c.{value_column} AS value FROM {table} c JOIN wanted_hashes w USING (text_hash) "
            f"WHERE c.{kind_column} = ?",
            params=[kind],
        ).to_arrow_table()
        self.db.unregister("wanted_hashes")
        if not found.num_rows:
            return {}
        column = found.column("value").combine_chunks()
        matrix = column.flatten().to_numpy().astype(dtype).reshape(found.num_rows, -1)
        return dict(zip(found.column("text_hash").to_pylist(), matrix, strict=True))

    def open_story_context(self, newest: datetime | None, window_hours: float) -> list[dict[str, Any]]:
        """Members of stories still open for new reports: last seen within the window of the newest new
        item, or (undated stories) updated within the window of now."""
        rows = self.db.execute(
            """
            SELECT a.article_id, a.title, a.text, a.title_raw, a.text_raw, a.source, a.url, a.published_at,
                   a.content_hash, a.notes, a.input_file, a.input_line, m.story_id
            FROM stories s JOIN story_members m USING (story_id) JOIN articles a USING (article_id)
            WHERE s.status = 'open' AND (
                (s.last_seen IS NOT NULL AND ?::TIMESTAMP IS NOT NULL AND s.last_seen >= ?::TIMESTAMP - to_microseconds(CAST(? * 3600e6 AS BIGINT)))
                OR (s.updated_at >= now()::TIMESTAMP - to_microseconds(CAST(? * 3600e6 AS BIGINT))))
            ORDER BY a.article_id
            """,
            [newest, newest, window_hours, window_hours],
        ).fetchall()
        names = [
            "article_id",
            "title",
            "text",
            "title_raw",
            "text_raw",
            "source",
            "url",
            "published_at",
            "content_hash",
            "notes",
            "input_file",
            "input_line",
            "story_id",
        ]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def story_created(self, story_ids: list[str]) -> dict[str, tuple[Any, str]]:
        if not story_ids:
            return {}
        rows = self.db.execute(
            "SELECT story_id, first_seen, created_run_id FROM stories WHERE list_contains(?, story_id)", [story_ids]
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def top_stories(self, limit: int) -> list[tuple]:
        return self.db.execute(
            "SELECT story_id, size, sources, first_seen, last_seen, headline FROM top_stories LIMIT ?", [limit]
        ).fetchall()

    def resolve_story(self, story_id: str) -> str:
        """The surviving id of a story, following recorded merges."""
        seen = set()
        while story_id not in seen:
            seen.add(story_id)
            row = _first(self.db.execute("SELECT story_id FROM story_merges WHERE old_story_id = ?", [story_id]))
            if row is None:
                break
            story_id = row[0]
        if not _first(self.db.execute("SELECT 1 FROM stories WHERE story_id = ?", [story_id])):
            raise NotFoundError(f"no story {story_id!r} in {self.path} (see `storyclust stories`)")
        return story_id

    def story(self, story_id: str) -> tuple[tuple, list[tuple]]:
        story_id = self.resolve_story(story_id)
        head = self.db.execute(
            "SELECT story_id, headline, size, sources, first_seen, last_seen, status FROM stories WHERE story_id = ?",
            [story_id],
        ).fetchall()[0]
        members = self.db.execute(
            "SELECT article_id, source, published_at, similarity, near_duplicate_group, title, text "
            "FROM story_members JOIN articles USING (article_id) WHERE story_id = ? "
            "ORDER BY published_at NULLS LAST, article_id",
            [story_id],
        ).fetchall()
        return head, members

    def memberships(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT article_id, story_id FROM story_members").fetchall())

    def prune(self, older_than_days: float) -> tuple[int, int]:
        """Delete closed stories whose last item is older than the cutoff, with their articles."""
        cutoff = f"now()::TIMESTAMP - to_microseconds(CAST({float(older_than_days)} * 86400e6 AS BIGINT))"
        with self.transaction():
            self.db.execute(
                f"CREATE OR REPLACE TEMP TABLE doomed AS SELECT story_id FROM stories WHERE status = 'open' AND "
                f"coalesce(last_seen, updated_at) < {cutoff}"
            )
            articles = self.db.execute(
                "SELECT count(*) FROM story_members WHERE story_id IN (SELECT story_id FROM doomed)"
            ).fetchall()[0][0]
            stories = self.db.execute("SELECT count(*) FROM doomed").fetchall()[0][0]
            self.db.execute(
                "DELETE FROM articles WHERE article_id IN (SELECT article_id FROM story_members "
                "WHERE story_id IN (SELECT story_id FROM doomed))"
            )
            self.db.execute("DELETE FROM story_members WHERE story_id IN (SELECT story_id FROM doomed)")
            self.db.execute("DELETE FROM story_merges WHERE story_id IN (SELECT story_id FROM doomed)")
            self.db.execute(
                "DELETE FROM stories WHERE story_id IN (SELECT story_id FROM doomed) OR merged_into IN (SELECT story_id FROM doomed)"
            )
        return stories, articles


def _first(result: Any) -> tuple | None:
    """The first row or None, reading the result to its end (DuckDB refuses new work on an unfinished one)."""
    rows = result.fetchall()
    return rows[0] if rows else None


def _frame(columns: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(columns)
