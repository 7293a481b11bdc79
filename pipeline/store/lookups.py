"""The run's reads: which input is stored already, cached vectors and signatures, and the stories new
items may join (open ones, and closed ones their names and dates point to). Through the archived views, so
hot rows and sealed segments alike."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.records import Article, ClosedStoryProbes, StoryOrigin
from pipeline.store.rows import Reopening
from pipeline.store.schema import CACHES, Database, first_row, sql_string
from pipeline.store.segments import active_files


class RunLookups(Database):
    """What a run reads from the store before it clusters."""

    segments: Path  # the folder of the archive's segments

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
        matrix = column.flatten().to_numpy().astype(CACHES[kind][3]).reshape(found.num_rows, -1)
        return dict(zip(found.column("text_hash").to_pylist(), matrix, strict=True))

    def _cache_rows(self, kind: str, name: str, hashes: list[str], values: bool) -> Any:
        """The cache rows of these text hashes under `name`, as an Arrow table (None: no hashes asked).

        From the hot rows and from only those segments that hold a wanted hash: finding them reads the hash
        column alone, so a run does not decode the vectors of a million sealed texts to find its thousand."""
        if not hashes:
            return None
        table, name_column, value_column, _ = CACHES[kind]
        selected = f"c.text_hash, c.{value_column} AS value" if values else "c.text_hash"
        self.db.register("wanted_hashes", _frame({"text_hash": hashes}))
        try:
            sources = [f"hot_{table}"] if self._has_table(f"hot_{table}") else [table]  # (a file before the archive)
            paths = self._segment_paths(table) if sources[0] != table else []
            if paths:
                holding = self.db.execute(
                    f"SELECT DISTINCT c.filename FROM read_parquet([{', '.join(map(sql_string, paths))}], "
                    f"filename = true) c JOIN wanted_hashes w USING (text_hash) WHERE c.{name_column} = ? "
                    "ORDER BY 1",
                    [name],
                ).fetchall()
                if holding:
                    sources.append(f"read_parquet([{', '.join(sql_string(path) for (path,) in holding)}])")
            query = " UNION ALL ".join(
                f"SELECT {selected} FROM {source} c JOIN wanted_hashes w USING (text_hash) WHERE c.{name_column} = ?"
                for source in sources
            )
            return self.db.sql(query, params=[name] * len(sources)).to_arrow_table()
        finally:
            self.db.unregister("wanted_hashes")

    def _segment_paths(self, view: str) -> list[Path]:
        """The segment files the view `view` reads now (none in a file from before the archive)."""
        if not self._has_table("segments"):
            return []
        return [self.segments / file for file in active_files(self.db, view)]

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
        row = first_row(
            self.db.execute(
                "SELECT sha256 FROM file_rejects WHERE file = ? AND size = ? AND sha256 <> '' ORDER BY last_seen DESC LIMIT 1",
                [str(path), size],
            )
        )
        return row[0] if row else None


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


def _frame(columns: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(columns)
