"""The run's reads: which input is stored already, cached vectors and signatures, and the stories new
items may join (open ones, and closed ones their names and dates point to). From the hot rows and the sealed
segments alike: the lookups by key read only the segments whose key filter may hold a wanted key."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.records import Article, ClosedStoryProbes, StoryOrigin
from pipeline.store.keyfilters import KEY_COLUMNS, files_holding
from pipeline.store.rows import Reopening
from pipeline.store.schema import CACHES, Database, first_row, sql_string
from pipeline.store.segments import active_files

# Up to this many keys a lookup passes them as a list parameter rather than an Arrow table (`_keyed_rows`).
_LIST_PARAMETER_KEYS = 20_000


class RunLookups(Database):
    """What a run reads from the store before it clusters."""

    segments: Path  # the folder of the archive's segments

    def stored_hashes(self, article_ids: list[str]) -> dict[str, str]:
        """Content hash of each of these ids that is already stored."""
        found = self._keyed_rows("articles", "c.article_id, c.content_hash", article_ids)
        if found is None:
            return {}
        return dict(zip(found.column("article_id").to_pylist(), found.column("content_hash").to_pylist(), strict=True))

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
        """The cache rows of these text hashes under `name`, as an Arrow table (None: no hashes asked)."""
        table, name_column, value_column, _ = CACHES[kind]
        selected = f"c.text_hash, c.{value_column} AS value" if values else "c.text_hash"
        return self._keyed_rows(table, selected, hashes, f"c.{name_column} = ?", [name])

    def _keyed_rows(
        self, view: str, columns: str, keys: list[str], where: str = "", params: list[Any] | None = None
    ) -> Any:
        """The rows of the archived `view` whose key (`keyfilters.KEY_COLUMNS`) is one of `keys`, as an Arrow
        table of `columns` (SQL over the alias `c`), filtered by `where` (None: no keys asked).

        From the hot rows and from only the segments whose key filter may hold a wanted key, so a run
        reading its thousand keys does not read the key column of a million sealed rows; in a file from
        before the archive, from the table itself."""
        if not keys:
            return None
        key, wanted = KEY_COLUMNS[view], sorted(set(keys))
        # Few keys (a cron run's intake, a warm re-run) go as a list parameter, many as a registered Arrow
        # table: a list costs about 1 µs a key, the first Arrow table handed to DuckDB an import of pandas
        # (0.17 s, a quarter of a run with nothing new).
        registered = len(wanted) > _LIST_PARAMETER_KEYS
        if registered:
            self.db.register("wanted_keys", _frame({key: wanted}))
        keys_relation = "wanted_keys" if registered else f"(SELECT unnest(?::VARCHAR[]) AS {key})"
        try:
            sources = [view]
            if self._has_table(f"hot_{view}"):
                sources = [f"hot_{view}"]
                files = files_holding(self.segments, active_files(self.db, view), keys)
                if files:
                    paths = ", ".join(sql_string(self.segments / file) for file in files)
                    sources.append(f"read_parquet([{paths}], union_by_name = true)")
            condition = f" WHERE {where}" if where else ""
            query = " UNION ALL ".join(
                f"SELECT {columns} FROM {source} c JOIN {keys_relation} USING ({key}){condition}" for source in sources
            )
            per_source = ([] if registered else [wanted]) + (params or [])
            return self.db.sql(query, params=per_source * len(sources)).to_arrow_table()
        finally:
            if registered:
                self.db.unregister("wanted_keys")

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
        """The member articles of the stories matching `where` (over `stories s`), by article id: the ids
        from the story tables, then only those articles (`_keyed_rows`)."""
        members = self.db.sql(
            f"SELECT m.article_id, m.story_id FROM stories s JOIN story_members m USING (story_id) WHERE {where}",
            params=params,
        ).to_arrow_table()
        found = self._keyed_rows("articles", _ARTICLE_COLUMNS, members.column("article_id").to_pylist())
        if found is None:
            return []
        self.db.register("member_ids", members)
        self.db.register("member_rows", found)
        try:
            result = self.db.execute(
                "SELECT r.*, m.story_id FROM member_rows r JOIN member_ids m USING (article_id) ORDER BY r.article_id"
            )
            names = [column[0] for column in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        finally:
            self.db.unregister("member_ids")
            self.db.unregister("member_rows")

    def story_of_articles(self, article_ids: list[str]) -> dict[str, str | None]:
        """The story of each stored article (None: stored but in no story); unknown ids are missing."""
        found = self._keyed_rows("articles", "c.article_id", article_ids)
        if found is None:
            return {}
        self.db.register("stored_ids", found)
        try:
            rows = self.db.execute(
                "SELECT f.article_id, m.story_id FROM stored_ids f LEFT JOIN story_members m USING (article_id)"
            ).fetchall()
        finally:
            self.db.unregister("stored_ids")
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


# The columns of an article row (`article_from_row`).
_ARTICLE_COLUMNS = (
    "c.article_id, c.title, c.text, c.title_raw, c.text_raw, c.source, c.url, c.published_at, c.content_hash, "
    "c.notes, c.input_file, c.input_line"
)


def _frame(columns: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(columns)
