"""Store stage: the DuckDB file people query. Table and column names here are the public interface.

All of the pipeline's SQL is here, so a schema change is made in one file: other modules get typed
records (frozen dataclasses with named fields), never rows to unpack by position.

Schema changes are numbered migrations recorded in `schema_migrations`, so an older file upgrades itself.
Every write of a run happens in one transaction (see `pipeline.runner`); a killed run leaves nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import LockedError, NotFoundError, StoreError
from pipeline.records import Article, Reject

if TYPE_CHECKING:
    from pipeline.assign import StoryPlan

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
]


# -- typed records the store returns: callers read named fields, never column positions -----------------


@dataclass(frozen=True)
class StoryOrigin:
    """When a stored story began: the older of two merged stories survives."""

    first_seen: datetime | None
    run_id: str


@dataclass(frozen=True)
class ClosedStoryProbes:
    """What a batch's new items look for among the closed stories (`Store.closed_story_context`): each item's
    names and dates, by its position in the batch."""

    names: list[tuple[int, str]]
    days: list[tuple[int, date]]
    reach_days: int
    min_names: int
    per_item: int


@dataclass(frozen=True)
class Reopening:
    """A closed story that took a new report, and on which evidence."""

    story_id: str
    article_id: str
    run_id: str
    gap_hours: float
    time_evidence: str | None
    story_similarity: float | None
    date_agreement: float | None


@dataclass(frozen=True)
class TopStory:
    story_id: str
    size: int
    sources: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    headline: str


@dataclass(frozen=True)
class StoryMember:
    article_id: str
    source: str | None
    published_at: datetime | None
    similarity: float | None
    near_duplicate_group: str | None
    title: str | None
    text: str | None


@dataclass(frozen=True)
class Story:
    """One story (a merged id already resolved to its survivor) and its members in time order."""

    story_id: str
    headline: str
    size: int
    sources: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    status: str
    members: list[StoryMember]


@dataclass(frozen=True)
class UnreadableFile:
    file: str
    size: int
    sha256: str
    reason: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class RejectReason:
    reason: str
    count: int
    example: str  # where one such record is: file:line


@dataclass(frozen=True)
class PruneCounts:
    stories: int
    articles: int


@dataclass(frozen=True)
class Summary:
    """The state of the database, so a reader knows how fresh and how big the picture is."""

    open_stories: int
    merged_stories: int
    articles: int
    sources: int
    runs: int
    rejected: int
    last_run_id: str | None
    last_run_status: str | None
    last_run_at: datetime | None
    last_run_new: int | None


@dataclass(frozen=True)
class StoryHead:
    """A story as the report heads it."""

    story_id: str
    headline: str
    headline_article_id: str | None
    headline_reason: str | None
    size: int
    sources: int


@dataclass(frozen=True)
class MemberEvidence:
    """A member as the report shows it: the start of its text and the evidence it joined on."""

    article_id: str
    title: str | None
    text_start: str | None
    source: str | None
    url: str | None
    published_at: datetime | None
    story_similarity: float | None
    date_agreement: float | None
    event_dates: list[date]
    shared_names: list[str]
    missing_names: list[str]
    near_duplicate_group: str | None
    time_evidence: str | None = None  # text, publication or none (None: a file from before migration 5)


@dataclass(frozen=True)
class SourceCount:
    source: str
    members: int


# Columns added by migration 3: an older file that no run has upgraded yet still gets a report, without them.
OPTIONAL_COLUMNS = {
    ("stories", "s"): ["headline_reason"],
    ("story_members", "m"): [
        "story_similarity",
        "date_agreement",
        "event_dates",
        "shared_names",
        "missing_names",
        "time_evidence",
    ],
}

# Exports: file name -> (table or view, row order); format -> COPY options.
EXPORTS: dict[str, tuple[str, str]] = {
    "stories": ("stories", "status <> 'open', size DESC, last_seen DESC NULLS LAST, story_id"),
    "story_members": ("story_articles", "story_id, published_at NULLS LAST, article_id"),
}
COPY_OPTIONS: dict[str, str] = {
    "parquet": "FORMAT parquet",
    "csv": "FORMAT csv, HEADER true",
    "jsonl": "FORMAT json",  # DuckDB writes one object per line unless ARRAY true
}


class Store:
    """A DuckDB database holding articles, stories and runs.

    Opened read-only by everything that only reads. Writers never open the published file for writing:
    they change a private copy and publish it atomically (`WorkingCopy`), so a reader that keeps the file
    open for hours never blocks a run and a run never blocks a reader.
    """

    def __init__(
        self, path: str | Path, read_only: bool = False, create: bool = True, wait_seconds: float = 0.0
    ) -> None:
        self.path = Path(path)
        if (read_only or not create) and not self.path.exists():
            raise StoreError(f"database not found: {self.path} (run `storyclust run` first or pass --db)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = _connect(self.path, read_only, wait_seconds)
        if read_only:
            if not self._has_table("schema_migrations"):
                self.db.close()
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
    def record_interrupted(self, runs: list[tuple[str, datetime]]) -> None:
        """Runs whose process ended before publishing (their copies were found): a trace, nothing else."""
        for run_id, started_at in runs:
            self.db.execute(
                "INSERT INTO runs (run_id, status, started_at, error) VALUES (?, 'failed', ?, ?) ON CONFLICT DO NOTHING",
                [run_id, started_at, "interrupted: the process ended before finishing"],
            )

    def start_run(self, run_id: str, inputs: list[str], config: dict[str, Any]) -> None:
        """Record a run as running (in the working copy: published only with its outcome)."""
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

    def write_run(
        self,
        run_id: str,
        articles: list[Article],
        plan: StoryPlan,
        rejects: list[Reject],
        vectors: dict[str, np.ndarray],
        signatures: dict[str, np.ndarray],
        model: str,
        scheme: str,
    ) -> None:
        """Everything a run adds: its new articles, the vectors and signatures it computed (cached by `model`
        and `scheme`), its merges, members and stories, and its rejects. The caller holds the transaction."""
        import pyarrow as pa

        db = self.db
        now = datetime.now()
        if articles:
            table = pa.table(
                {
                    "article_id": [a.article_id for a in articles],
                    "title": [a.title for a in articles],
                    "text": [a.text for a in articles],
                    "source": [a.source for a in articles],
                    "url": [a.url for a in articles],
                    "published_at": pa.array([a.published_at for a in articles], type=pa.timestamp("us")),
                    "title_raw": [a.title_raw for a in articles],
                    "text_raw": [a.text_raw for a in articles],
                    "content_hash": [a.content_hash for a in articles],
                    "notes": pa.array([a.notes for a in articles], type=pa.list_(pa.string())),
                    "input_file": [a.file for a in articles],
                    "input_line": pa.array([a.line for a in articles], type=pa.int32()),
                }
            )
            db.register("new_articles", table)
            db.execute("INSERT INTO articles SELECT *, ? AS run_id, ? AS ingested_at FROM new_articles", [run_id, now])
            db.unregister("new_articles")
        for cache, kind, values, dtype in (
            ("embedding_cache", model, vectors, np.float32),
            ("minhash_cache", scheme, signatures, np.uint32),
        ):
            if not values:
                continue
            keys = sorted(values)
            rows = pa.table(
                {"text_hash": keys, "value": _list_array(np.stack([values[k] for k in keys]).astype(dtype))}
            )
            db.register("new_cache_rows", rows)
            db.execute(
                f"INSERT INTO {cache} SELECT ?, text_hash, value FROM new_cache_rows ON CONFLICT DO NOTHING", [kind]
            )
            db.unregister("new_cache_rows")
        for old, survivor in sorted(plan.merges.items()):
            db.execute("UPDATE story_members SET story_id = ? WHERE story_id = ?", [survivor, old])
            db.execute("UPDATE story_merges SET story_id = ? WHERE story_id = ?", [survivor, old])
            db.execute("UPDATE story_reopenings SET story_id = ? WHERE story_id = ?", [survivor, old])
            db.execute("INSERT INTO story_merges VALUES (?, ?, ?, ?)", [old, survivor, run_id, now])
            db.execute(
                "UPDATE stories SET status = 'merged', merged_into = ?, updated_run_id = ?, updated_at = ? WHERE story_id = ?",
                [survivor, run_id, now, old],
            )
        if plan.members:
            members = pa.Table.from_pylist(plan.members, schema=_member_schema())
            db.register("new_members", members)
            columns = ", ".join(members.schema.names)  # the member schema names what is written
            db.execute(
                f"INSERT INTO story_members ({columns}, joined_run_id) SELECT {columns}, ? FROM new_members", [run_id]
            )
            db.unregister("new_members")
        if plan.stories:
            stories = pa.Table.from_pylist(plan.stories)
            db.register("touched_stories", stories)
            db.execute(
                """
                INSERT INTO stories (story_id, headline, headline_article_id, headline_kind, size, sources, first_seen,
                    last_seen, status, merged_into, created_run_id, updated_run_id, updated_at, headline_reason,
                    event_first, event_last)
                SELECT story_id, headline, headline_article_id, headline_kind, size, sources,
                    first_seen, last_seen, 'open', NULL, ?, ?, updated_at, headline_reason, event_first, event_last
                FROM touched_stories
                ON CONFLICT (story_id) DO UPDATE SET headline = excluded.headline,
                    headline_article_id = excluded.headline_article_id, headline_kind = excluded.headline_kind,
                    headline_reason = excluded.headline_reason,
                    size = excluded.size, sources = excluded.sources, first_seen = excluded.first_seen,
                    last_seen = excluded.last_seen, updated_run_id = excluded.updated_run_id,
                    updated_at = excluded.updated_at, event_first = excluded.event_first,
                    event_last = excluded.event_last
                """,
                [run_id, run_id],
            )
            db.unregister("touched_stories")
        if plan.stories:
            # The names of each touched story, anew; a merged story's go with it.
            names = pa.table(
                {
                    "story_id": [row["story_id"] for row in plan.stories for _ in row["names"]],
                    "name": [name for row in plan.stories for name in row["names"]],
                }
            )
            db.register("touched_names", names)
            db.execute(
                "DELETE FROM story_names WHERE list_contains(?, story_id)",
                [[row["story_id"] for row in plan.stories] + sorted(plan.merges)],
            )
            db.execute("INSERT INTO story_names SELECT story_id, name FROM touched_names")
            db.unregister("touched_names")
        if plan.reopenings:
            reopened = pa.Table.from_pylist(plan.reopenings)
            db.register("new_reopenings", reopened)
            db.execute(
                """
                INSERT INTO story_reopenings SELECT story_id, article_id, ?, ?, previous_last_seen,
                    report_published_at, gap_hours, time_evidence, story_similarity, date_agreement
                FROM new_reopenings
                """,
                [run_id, now],
            )
            db.unregister("new_reopenings")
        if rejects:
            table = pa.table(
                {
                    "file": [r.file for r in rejects],
                    "line": pa.array([r.line for r in rejects], type=pa.int32()),
                    "reason": [r.reason for r in rejects],
                    "record": [r.record for r in rejects],
                }
            )
            db.register("new_rejects", table)
            # A record rejected before (same file, line and content) is not listed again: re-reading a file, as
            # runs capped by run.max_items do, changes nothing (its first reason stays).
            db.execute(
                "INSERT INTO rejects SELECT ? AS run_id, n.file, n.line, n.reason, n.record FROM new_rejects n "
                "WHERE NOT EXISTS (SELECT 1 FROM rejects r WHERE r.file IS NOT DISTINCT FROM n.file AND "
                "r.line IS NOT DISTINCT FROM n.line AND r.record IS NOT DISTINCT FROM n.record)",
                [run_id],
            )
            db.unregister("new_rejects")

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
        return self._cached_arrays("vectors", model, hashes)

    def cached_signatures(self, scheme: str, hashes: list[str]) -> dict[str, np.ndarray]:
        return self._cached_arrays("signatures", scheme, hashes)

    def cached_keys(self, kind: str, name: str, hashes: list[str]) -> set[str]:
        """Which of these text hashes have cached `kind` ("vectors" or "signatures") under `name` (the model
        id or signature scheme), without reading the arrays."""
        found = self._cache_rows(kind, name, hashes, values=False)
        return set(found.column("text_hash").to_pylist()) if found is not None else set()

    def _cached_arrays(self, kind: str, name: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """Cached arrays of these text hashes, read through Arrow (not 77M Python floats at 200k items)."""
        found = self._cache_rows(kind, name, hashes, values=True)
        if found is None or not found.num_rows:
            return {}
        column = found.column("value").combine_chunks()
        matrix = column.flatten().to_numpy().astype(_CACHES[kind][3]).reshape(found.num_rows, -1)
        return dict(zip(found.column("text_hash").to_pylist(), matrix, strict=True))

    def _cache_rows(self, kind: str, name: str, hashes: list[str], values: bool) -> Any:
        """The cache rows of these text hashes under `name`, as an Arrow table (None: no hashes asked)."""
        if not hashes:
            return None
        table, name_column, value_column, _ = _CACHES[kind]
        selected = f"c.text_hash, c.{value_column} AS value" if values else "c.text_hash"
        self.db.register("wanted_hashes", _frame({"text_hash": hashes}))
        found = self.db.sql(
            f"SELECT {selected} FROM {table} c JOIN wanted_hashes w USING (text_hash) WHERE c.{name_column} = ?",
            params=[name],
        ).to_arrow_table()
        self.db.unregister("wanted_hashes")
        return found

    def open_story_context(self, oldest: datetime | None, window_hours: float) -> list[dict[str, Any]]:
        """Members of the stories a batch whose oldest dated item is `oldest` may still join: dated stories
        last seen within the window before it, and (undated stories, or any for an undated batch) stories
        updated within the window of now. The oldest item, not the newest, so that a time partition longer
        than the window still sees every story open at its start; not the updated time of dated stories,
        so that the partitions of one run do not all see each other."""
        return self._member_articles(
            """s.status = 'open' AND (
                (s.last_seen IS NOT NULL AND ?::TIMESTAMP IS NOT NULL AND s.last_seen >= ?::TIMESTAMP - to_microseconds(CAST(? * 3600e6 AS BIGINT)))
                OR ((s.last_seen IS NULL OR ?::TIMESTAMP IS NULL)
                    AND s.updated_at >= now()::TIMESTAMP - to_microseconds(CAST(? * 3600e6 AS BIGINT))))""",
            [oldest, oldest, window_hours, oldest, window_hours],
        )

    def closed_story_context(self, probes: ClosedStoryProbes, open_stories: set[str]) -> list[dict[str, Any]]:
        """Members of the closed stories that a batch's new items may continue (rows as `open_story_context`).

        A closed story is a candidate for an item when it shares at least `probes.min_names` of the item's
        names (`story_names`) and, for an item with dates, some member's event date lies within
        `probes.reach_days` of one of the item's dates: nothing further apart can agree enough to join
        (`pipeline.timeline.reach_days`). An undated item is neutral on time: names alone. Each item takes its
        `probes.per_item` best candidates (most names shared), so the context grows with the batch, not with
        the archive; the lookups are joins on the names and dates of the stored stories.
        """
        import pyarrow as pa

        if not probes.names:
            return []
        tables = {
            "probe_names": pa.table({"item": [i for i, _ in probes.names], "name": [n for _, n in probes.names]}),
            "probe_days": pa.table(
                {
                    "item": [i for i, _ in probes.days],
                    "low": pa.array([d - timedelta(days=probes.reach_days) for _, d in probes.days], pa.date32()),
                    "high": pa.array([d + timedelta(days=probes.reach_days) for _, d in probes.days], pa.date32()),
                }
            ),
            "probe_undated": pa.table({"item": sorted({i for i, _ in probes.names} - {i for i, _ in probes.days})}),
            "open_context": pa.table({"story_id": sorted(open_stories)}),
        }
        for name, table in tables.items():
            self.db.register(name, table)
        try:
            # Closed stories (not in the open context), and which of them each item meets: a dated item the
            # stories whose span of days comes within reach of one of its dates; an undated item, and any item
            # a story with an undated report (no bounds), by names alone. Separate statements: each is a small
            # join that DuckDB plans well, where one statement of all of them ran a range join for seconds.
            self.db.execute(
                "CREATE OR REPLACE TEMP TABLE closed_stories AS SELECT story_id, event_first, event_last "
                "FROM stories WHERE status = 'open' AND story_id NOT IN (SELECT story_id FROM open_context)"
            )
            meeting = self.db.sql(
                """
                SELECT DISTINCT p.item, c.story_id FROM probe_days p JOIN closed_stories c
                    ON c.event_first <= p.high AND c.event_last >= p.low
                UNION
                SELECT p.item, n.story_id FROM closed_stories c JOIN story_names n USING (story_id)
                    JOIN probe_names p USING (name) WHERE c.event_first IS NULL
                UNION
                SELECT p.item, n.story_id FROM probe_undated u JOIN probe_names p USING (item)
                    JOIN story_names n USING (name) JOIN closed_stories c USING (story_id)
                """
            ).to_arrow_table()
            self.db.register("meeting", meeting)
            found = self.db.execute(
                """
                WITH shared AS (
                    SELECT m.item, m.story_id, count(*) AS names FROM meeting m JOIN story_names n USING (story_id)
                    JOIN probe_names p ON p.item = m.item AND p.name = n.name
                    GROUP BY ALL HAVING count(*) >= ?),
                ranked AS (
                    SELECT story_id, row_number() OVER (PARTITION BY item ORDER BY names DESC, story_id) AS rank
                    FROM shared)
                SELECT DISTINCT story_id FROM ranked WHERE rank <= ? ORDER BY story_id
                """,
                [probes.min_names, probes.per_item],
            ).fetchall()
            self.db.unregister("meeting")
            self.db.execute("DROP TABLE closed_stories")
        finally:
            for name in tables:
                self.db.unregister(name)
        return self.story_members_of([story for (story,) in found]) if found else []

    def story_count(self) -> int:
        """How many stories there are (merged ones not counted)."""
        return int(self.db.execute("SELECT count(*) FROM stories WHERE status = 'open'").fetchall()[0][0])

    def reopenings_of(self, story_ids: list[str]) -> list[Reopening]:
        """When these stories took a report after being closed (none in a file from before migration 5)."""
        if not self._has_table("story_reopenings"):
            return []
        rows = self.db.execute(
            "SELECT story_id, article_id, run_id, gap_hours, time_evidence, story_similarity, date_agreement "
            "FROM story_reopenings WHERE list_contains(?, story_id) ORDER BY reopened_at, article_id",
            [story_ids],
        ).fetchall()
        return [Reopening(*row) for row in rows]

    def story_members_of(self, story_ids: list[str]) -> list[dict[str, Any]]:
        """Every member article of these stories, with its story id (rows as `open_story_context`)."""
        return self._member_articles("list_contains(?, s.story_id)", [story_ids])

    def _member_articles(self, where: str, params: list[Any]) -> list[dict[str, Any]]:
        result = self.db.execute(
            f"""
            SELECT a.article_id, a.title, a.text, a.title_raw, a.text_raw, a.source, a.url, a.published_at,
                   a.content_hash, a.notes, a.input_file, a.input_line, m.story_id
            FROM stories s JOIN story_members m USING (story_id) JOIN articles a USING (article_id)
            WHERE {where} ORDER BY a.article_id
            """,
            params,
        )
        names = [column[0] for column in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def story_of_articles(self, article_ids: list[str]) -> dict[str, str | None]:
        """The story of each stored article (None: stored but in no story); unknown ids are missing."""
        rows = self.db.execute(
            "SELECT a.article_id, m.story_id FROM articles a LEFT JOIN story_members m USING (article_id) "
            "WHERE list_contains(?, a.article_id)",
            [article_ids],
        ).fetchall()
        return dict(rows)

    def story_created(self, story_ids: list[str]) -> dict[str, StoryOrigin]:
        if not story_ids:
            return {}
        rows = self.db.execute(
            "SELECT story_id, first_seen, created_run_id FROM stories WHERE list_contains(?, story_id)", [story_ids]
        ).fetchall()
        return {story_id: StoryOrigin(first_seen, run_id) for story_id, first_seen, run_id in rows}

    def known_bad_file(self, path: Path, size: int) -> str | None:
        """The content hash recorded for this file when it could not be read at this size (None: not known)."""
        row = _first(
            self.db.execute(
                "SELECT sha256 FROM file_rejects WHERE file = ? AND size = ? AND sha256 <> '' ORDER BY last_seen DESC LIMIT 1",
                [str(path), size],
            )
        )
        return row[0] if row else None

    def record_file_rejects(self, run_id: str, rejects: list[Any], skipped: list[str]) -> None:
        """New unreadable files, and those skipped again unchanged (their last run moves on)."""
        for reject in rejects:  # an empty hash (unhashable, or changed while read): never skipped, kept per run
            self.db.execute(
                "INSERT INTO file_rejects VALUES (?, ?, ?, ?, ?, ?, now(), now()) ON CONFLICT (file, sha256) "
                "DO UPDATE SET reason = excluded.reason, last_run_id = excluded.last_run_id, last_seen = now()",
                [reject.file, reject.size, reject.sha256, reject.reason, run_id, run_id],
            )
        if skipped:
            self.db.execute(
                "UPDATE file_rejects SET last_run_id = ?, last_seen = now() WHERE list_contains(?, file)",
                [run_id, skipped],
            )

    def file_rejects(self) -> list[UnreadableFile]:
        rows = self.db.execute(
            "SELECT file, size, sha256, reason, first_seen, last_seen FROM file_rejects ORDER BY last_seen DESC, file"
        ).fetchall()
        return [UnreadableFile(*row) for row in rows]

    def reject_reasons(self, limit: int) -> list[RejectReason]:
        """Rejected records by reason: how many, and where one of them is (file:line)."""
        rows = self.db.execute(
            "SELECT reason, count(*) AS n, min(coalesce(file, '?') || ':' || coalesce(CAST(line AS VARCHAR), '?')) "
            "FROM rejects GROUP BY reason ORDER BY n DESC, reason LIMIT ?",
            [limit],
        ).fetchall()
        return [RejectReason(*row) for row in rows]

    def top_stories(self, limit: int) -> list[TopStory]:
        rows = self.db.execute(
            "SELECT story_id, size, sources, first_seen, last_seen, headline FROM top_stories LIMIT ?", [limit]
        ).fetchall()
        return [TopStory(*row) for row in rows]

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

    def story(self, story_id: str) -> Story:
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
        return Story(*head, [StoryMember(*row) for row in members])

    def memberships(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT article_id, story_id FROM story_members").fetchall())

    def prune_stories(self, older_than_days: float) -> PruneCounts:
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
            for table in ("story_reopenings", "story_names"):
                self.db.execute(f"DELETE FROM {table} WHERE story_id IN (SELECT story_id FROM doomed)")
            self.db.execute(
                "DELETE FROM stories WHERE story_id IN (SELECT story_id FROM doomed) OR merged_into IN (SELECT story_id FROM doomed)"
            )
        return PruneCounts(stories, articles)

    # -- the report -------------------------------------------------------------------------------------
    def _report_columns(self) -> dict[str, str]:
        """Each optional column as the report selects it: the column, or NULL in a file from before it."""
        present = set(self.db.execute("SELECT table_name, column_name FROM duckdb_columns()").fetchall())
        return {
            column: (f"{alias}.{column}" if (table, column) in present else "NULL")
            for (table, alias), columns in OPTIONAL_COLUMNS.items()
            for column in columns
        }

    def summary(self) -> Summary:
        counts = self.db.execute(
            """
            SELECT (SELECT count(*) FROM stories WHERE status = 'open'),
                   (SELECT count(*) FROM stories WHERE status = 'merged'),
                   (SELECT count(*) FROM articles),
                   (SELECT count(DISTINCT source) FROM articles),
                   (SELECT count(*) FROM runs),
                   (SELECT count(*) FROM rejects)
            """
        ).fetchall()[0]
        last = self.db.execute(
            "SELECT run_id, status, coalesce(finished_at, started_at), articles_new FROM runs "
            "ORDER BY started_at DESC, run_id DESC LIMIT 1"
        ).fetchall()
        return Summary(*counts, *(last[0] if last else (None, None, None, None)))

    def story_heads(self, limit: int) -> list[StoryHead]:
        """The biggest open stories, in the order of the `top_stories` view."""
        rows = self.db.execute(
            f"""
            SELECT t.story_id, t.headline, s.headline_article_id, {self._report_columns()["headline_reason"]}, t.size,
                   coalesce(t.sources, 0)
            FROM top_stories t JOIN stories s USING (story_id)
            ORDER BY t.size DESC, t.last_seen DESC NULLS LAST, t.story_id LIMIT ?
            """,
            [limit],
        ).fetchall()
        return [StoryHead(*row) for row in rows]

    def member_evidence(self, story_ids: list[str], per_story: int, text_chars: int) -> dict[str, list[MemberEvidence]]:
        """The first `per_story` members of each story in time order, with their evidence (and `text_chars`
        + 1 characters of text, so the caller knows whether it was cut)."""
        c = self._report_columns()
        rows = self.db.execute(
            f"""
            SELECT story_id, article_id, title, text_start, source, url, published_at, story_similarity,
                   date_agreement, event_dates, shared_names, missing_names, near_duplicate_group, time_evidence
            FROM (
                SELECT m.story_id, a.article_id, a.title, left(a.text, {int(text_chars) + 1}) AS text_start,
                       a.source, a.url, a.published_at, {c["story_similarity"]} AS story_similarity,
                       {c["date_agreement"]} AS date_agreement, {c["event_dates"]} AS event_dates,
                       {c["shared_names"]} AS shared_names, {c["missing_names"]} AS missing_names,
                       m.near_duplicate_group, {c["time_evidence"]} AS time_evidence,
                       row_number() OVER (PARTITION BY m.story_id ORDER BY a.published_at NULLS LAST, a.article_id) AS n
                FROM story_members m JOIN articles a USING (article_id)
                WHERE list_contains(?, m.story_id))
            WHERE n <= ? ORDER BY story_id, n
            """,
            [story_ids, per_story],
        ).fetchall()
        found: dict[str, list[MemberEvidence]] = {story_id: [] for story_id in story_ids}
        for story_id, *values in rows:
            values[8:11] = [list(v or []) for v in values[8:11]]
            found[story_id].append(MemberEvidence(*values))
        return found

    def member_times(self, story_ids: list[str]) -> dict[str, list[datetime]]:
        """Publication times of every member of these stories (undated ones left out)."""
        found: dict[str, list[datetime]] = {story_id: [] for story_id in story_ids}
        rows = self.db.execute(
            "SELECT m.story_id, a.published_at FROM story_members m JOIN articles a USING (article_id) "
            "WHERE list_contains(?, m.story_id) AND a.published_at IS NOT NULL",
            [story_ids],
        ).fetchall()
        for story_id, published_at in rows:
            found[story_id].append(published_at)
        return found

    def member_sources(self, story_ids: list[str]) -> dict[str, list[SourceCount]]:
        """The sources of each story's members, most members first."""
        found: dict[str, list[SourceCount]] = {story_id: [] for story_id in story_ids}
        rows = self.db.execute(
            "SELECT m.story_id, a.source, count(*) AS n FROM story_members m JOIN articles a USING (article_id) "
            "WHERE list_contains(?, m.story_id) AND coalesce(a.source, '') <> '' "
            "GROUP BY ALL ORDER BY m.story_id, n DESC, a.source",
            [story_ids],
        ).fetchall()
        for story_id, source, n in rows:
            found[story_id].append(SourceCount(source, n))
        return found

    # -- exports ----------------------------------------------------------------------------------------
    def export_relation(self, name: str, path: Path, fmt: str) -> int:
        """Write the export `name` (see `EXPORTS`) to `path` in `fmt` with DuckDB's COPY; returns its rows."""
        source, order = EXPORTS[name]
        columns = self.db.execute(f"DESCRIBE {source}").fetchall()
        select = ", ".join(_export_column(column[0], column[1], fmt) for column in columns)
        result = self.db.execute(
            f"COPY (SELECT {select} FROM {source} ORDER BY {order}) TO {_sql_string(path)} ({COPY_OPTIONS[fmt]})"
        ).fetchall()
        return int(result[0][0])


def _export_column(name: str, type_: str, fmt: str) -> str:
    """One column of an export's SELECT: CSV has no lists, so lists go as JSON arrays (["a","b"], readable by
    any JSON parser, unlike DuckDB's [a, b]); JSON gets REAL as its shortest decimal (0.55, not 0.550000011920929)."""
    quoted = '"' + name.replace('"', '""') + '"'
    if fmt == "csv" and type_.endswith("[]"):
        return f"to_json({quoted}) AS {quoted}"
    if fmt == "jsonl" and type_ == "FLOAT":
        return f"CAST(CAST({quoted} AS VARCHAR) AS DOUBLE) AS {quoted}"
    return quoted


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _member_schema() -> Any:
    """The columns of story_members a run writes from its plan (all but joined_run_id), with their Arrow types."""
    import pyarrow as pa

    return pa.schema(
        [
            ("story_id", pa.string()),
            ("article_id", pa.string()),
            ("similarity", pa.float32()),
            ("nearest_article_id", pa.string()),
            ("nearest_similarity", pa.float32()),
            ("near_duplicate_group", pa.string()),
            ("story_similarity", pa.float32()),
            ("date_agreement", pa.float32()),
            ("event_dates", pa.list_(pa.date32())),
            ("shared_names", pa.list_(pa.string())),
            ("missing_names", pa.list_(pa.string())),
            ("time_evidence", pa.string()),
        ]
    )


def _list_array(matrix: np.ndarray) -> Any:
    """Rows of a float32 matrix as an Arrow list column, without a Python float per element."""
    import pyarrow as pa

    rows, width = matrix.shape
    offsets = pa.array(np.arange(0, (rows + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))


# Files are written in the storage format of DuckDB 1.2, so every DuckDB from 1.2 on (CLIs, DBeaver,
# notebooks, R) opens them; DuckDB 2.x writes a format 1.x cannot read unless asked.
STORAGE_VERSION = "v1.2.0"


# The two caches: table, the column naming what made the values, the value column, the values' dtype.
_CACHES = {
    "vectors": ("embedding_cache", "model", "vector", np.float32),
    "signatures": ("minhash_cache", "scheme", "signature", np.uint32),
}


def _connect(path: Path, read_only: bool, wait_seconds: float) -> Any:
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


def _storage_version(db: Any) -> str:
    rows = db.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return str((rows[0][0] or {}).get("storage_version", "")) if rows else ""


def _file_state(path: Path) -> tuple[int, int, int, bool] | None:
    """What identifies one version of the published file (and whether a write-ahead log sits beside it)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, Path(f"{path}.wal").exists()


@contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """A full disk or a read-only folder while writing becomes one line; the published file is untouched
    (writers change only their copy, see `WorkingCopy`)."""
    import duckdb

    try:
        yield
    except (OSError, duckdb.IOException) as problem:
        reason = problem.strerror if isinstance(problem, OSError) and problem.strerror else str(problem).splitlines()[0]
        raise StoreError(f"cannot write {path}: {reason}; the database is unchanged") from None


@contextmanager
def database_lock(db: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock next to the database; the OS drops it when the process dies."""
    db.parent.mkdir(parents=True, exist_ok=True)
    handle = open(f"{db}.lock", "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise LockedError(f"another storyclust run is writing {db}; try again later") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class WorkingCopy:
    """Copy-on-write access for one writer (a run or a prune), which must hold `database_lock`.

    The published file is copied to `<db>.<run_id>.tmp` under a shared (read-only) DuckDB lock, the
    writer changes the copy, and `publish` renames it over the published file: readers see the old state
    or the new one, never a mix, and a reader holding the old file keeps reading it undisturbed. A killed
    writer leaves only its copy: the next writer empties it at once (the space comes back), records the run
    as interrupted, and deletes the empty marker once that record is published, so a chain of killed
    runs is recorded in full by the first one that finishes. If
    another program changed the published file meanwhile, nothing is published (`LockedError`, exit 75).
    """

    def __init__(self, path: Path, run_id: str, wait_seconds: float) -> None:
        self.path, self.run_id = path, run_id
        self.work = path.with_name(f"{path.name}.{run_id}.tmp")
        try:
            self.source_state, self.copy_seconds = self._copy_out(wait_seconds)
            self.stale, self.interrupted = self._sweep()
            self.store = Store(self.work)
            if _storage_version(self.store.db).startswith("v2"):
                self._convert()
            if self.interrupted:
                self.store.record_interrupted(self.interrupted)
        except BaseException:
            self.discard()  # a half-made copy (a full disk) must not stay behind
            raise

    def _sweep(self) -> tuple[list[Path], list[tuple[str, datetime]]]:
        """Copies left by killed writers, emptied to markers: the markers, and their run ids and start times."""
        markers, found = [], []
        for stale in sorted(self.path.parent.glob(f"{self.path.name}.*.tmp")):
            if stale == self.work:
                continue
            run_id = stale.name[len(self.path.name) + 1 : -len(".tmp")]
            stamp = re.search(r"(\d{8}T\d{6})", run_id)
            started = datetime.strptime(stamp.group(1), "%Y%m%dT%H%M%S") if stamp else datetime.now()
            found.append((run_id, started))
            os.truncate(stale, 0)
            Path(f"{stale}.wal").unlink(missing_ok=True)
            markers.append(stale)
        return markers, found

    def _copy_out(self, wait_seconds: float) -> tuple[tuple[int, int, int, bool] | None, float]:
        start = time.perf_counter()
        if not self.path.exists():
            return None, 0.0
        # The shared lock keeps out any writer while the bytes are copied; a write-ahead log left by
        # another writer is checkpointed first, so the copy is the whole state.
        if Path(f"{self.path}.wal").exists():
            _connect(self.path, False, wait_seconds).close()
        reader = _connect(self.path, True, wait_seconds)
        try:
            state = _file_state(self.path)
            shutil.copyfile(self.path, self.work)
        finally:
            reader.close()
        return state, time.perf_counter() - start

    def _convert(self) -> None:
        """Rewrite a file from DuckDB 2.x's default format into the one every 1.x reads."""
        self.store.close()
        legacy = self.work.with_name(self.work.name + ".legacy")
        os.replace(self.work, legacy)
        import duckdb

        db = duckdb.connect(str(self.work), config={"storage_compatibility_version": STORAGE_VERSION})
        quoted = str(legacy).replace("'", "''")
        db.execute(f"ATTACH '{quoted}' AS legacy (READ_ONLY)")
        target = db.execute("SELECT current_database()").fetchall()[0][0]
        db.execute(f'COPY FROM DATABASE legacy TO "{target}"')
        db.execute("DETACH legacy")
        db.close()
        legacy.unlink()
        self.store = Store(self.work)

    def publish(self) -> float:
        """Make the copy the published database; returns the seconds it took."""
        start = time.perf_counter()
        self.store.db.execute("CHECKPOINT")
        self.store.close()
        if _file_state(self.path) != self.source_state:
            self.discard()
            raise LockedError(
                f"{self.path} was changed by another program during this run; nothing was written, "
                "the next run takes the same input"
            )
        with open(self.work, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.work, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        for marker in self.stale:  # their runs are now on record
            marker.unlink(missing_ok=True)
        return time.perf_counter() - start

    def discard(self) -> None:
        with suppress(Exception):
            self.store.close()  # absent when the copy itself failed
        self.work.unlink(missing_ok=True)
        Path(f"{self.work}.wal").unlink(missing_ok=True)


def prune(path: str | Path, older_than_days: float, wait_seconds: float) -> PruneCounts:
    """Delete old stories through a working copy, like a run (exits 75 while a run holds the lock)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"database not found: {path} (run `storyclust run` first or pass --db)")
    with disk_errors(path), database_lock(path):
        copy = WorkingCopy(path, f"prune-{datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}", wait_seconds)
        try:
            counts = copy.store.prune_stories(older_than_days)
            copy.publish()
        finally:
            copy.discard()
    return counts


def article_from_row(row: dict[str, Any]) -> Article:
    """An `Article` record from a row of `open_story_context` or `story_members_of`."""
    return Article(
        article_id=row["article_id"],
        title=row["title"] or "",
        text=row["text"] or "",
        title_raw=row["title_raw"] or "",
        text_raw=row["text_raw"] or "",
        source=row["source"],
        url=row["url"],
        published_at=row["published_at"],
        file=row["input_file"] or "",
        line=row["input_line"] or 0,
        notes=list(row["notes"] or []),
    )


def _first(result: Any) -> tuple | None:
    """The first row or None, reading the result to its end (DuckDB refuses new work on an unfinished one)."""
    rows = result.fetchall()
    return rows[0] if rows else None


def _frame(columns: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(columns)
