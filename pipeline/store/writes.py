"""The run's writes: what a run adds (articles, cache rows, members, stories, merges, rejects), its own
record in `runs`, unreadable files, and prune. Rows of the append-only tables go to their `hot_` tables
(`pipeline.store.segments` seals them); every write of a run happens in one transaction (`pipeline.runner`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.records import Article, Reject
from pipeline.store.rows import PruneCounts
from pipeline.store.schema import CACHES, Database
from pipeline.store.segments import remove_rows

if TYPE_CHECKING:
    from pipeline.assign import StoryPlan


class RunWrites(Database):
    """The writes of a run or a prune, on the writer's private copy (see `pipeline.store.publish`)."""

    segments: Path

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
            db.execute(
                "INSERT INTO hot_articles SELECT *, ? AS run_id, ? AS ingested_at FROM new_articles", [run_id, now]
            )
            db.unregister("new_articles")
        self.add_cached("vectors", model, vectors)
        self.add_cached("signatures", scheme, signatures)
        if plan.merges:
            # All merges at once, each statement over the table of them: a statement per merged story cost
            # 27 s for the 3,254 merges of a 2,000-item run on a 218k-story store. The same rows as merge by
            # merge: no survivor is absorbed in the same plan (each stored story is in one cluster), so no
            # merge reads what another writes.
            absorbed = sorted(plan.merges)
            merged = pa.table({"old": absorbed, "survivor": [plan.merges[old] for old in absorbed]})
            db.register("merged_stories", merged)
            for table in ("story_members", "story_merges", "story_reopenings"):
                db.execute(
                    f"UPDATE {table} SET story_id = m.survivor FROM merged_stories m WHERE {table}.story_id = m.old"
                )
            db.execute(
                "INSERT INTO story_merges SELECT old, survivor, ?, ? FROM merged_stories ORDER BY old", [run_id, now]
            )
            db.execute(
                """UPDATE stories SET status = 'merged', merged_into = m.survivor, updated_run_id = ?, updated_at = ?
                   FROM merged_stories m WHERE stories.story_id = m.old""",
                [run_id, now],
            )
            db.unregister("merged_stories")
        if plan.members:
            members = plan.members.table()
            db.register("new_members", members)
            columns = ", ".join(members.schema.names)  # the member schema names what is written
            db.execute(
                f"INSERT INTO story_members ({columns}, joined_run_id) SELECT {columns}, ? FROM new_members", [run_id]
            )
            db.unregister("new_members")
        if plan.stories:
            stories = pa.Table.from_pylist(plan.stories)
            db.register("touched_stories", stories)
            # Stored stories updated, new ones added (the table has no key index to upsert on: see migration 7).
            db.execute(
                """
                UPDATE stories SET headline = t.headline, headline_article_id = t.headline_article_id,
                    headline_kind = t.headline_kind, headline_reason = t.headline_reason, size = t.size,
                    sources = t.sources, first_seen = t.first_seen, last_seen = t.last_seen, updated_run_id = ?,
                    updated_at = t.updated_at, event_first = t.event_first, event_last = t.event_last
                FROM touched_stories t WHERE stories.story_id = t.story_id
                """,
                [run_id],
            )
            db.execute(
                """
                INSERT INTO stories (story_id, headline, headline_article_id, headline_kind, size, sources, first_seen,
                    last_seen, status, merged_into, created_run_id, updated_run_id, updated_at, headline_reason,
                    event_first, event_last)
                SELECT story_id, headline, headline_article_id, headline_kind, size, sources,
                    first_seen, last_seen, 'open', NULL, ?, ?, updated_at, headline_reason, event_first, event_last
                FROM touched_stories WHERE story_id NOT IN (SELECT story_id FROM stories)
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
                "INSERT INTO hot_rejects SELECT ? AS run_id, n.file, n.line, n.reason, n.record FROM new_rejects n "
                "WHERE NOT EXISTS (SELECT 1 FROM rejects r WHERE r.file IS NOT DISTINCT FROM n.file AND "
                "r.line IS NOT DISTINCT FROM n.line AND r.record IS NOT DISTINCT FROM n.record)",
                [run_id],
            )
            db.unregister("new_rejects")

    def add_cached(self, kind: str, name: str, values: dict[str, np.ndarray]) -> None:
        """Cache `kind` ("vectors" or "signatures") of these text hashes under `name` (the model id or the
        signature scheme). A run computes only what `cached_keys` did not find, so none is stored twice."""
        if not values:
            return
        import pyarrow as pa

        table, _, _, dtype = CACHES[kind]
        keys = sorted(values)
        rows = pa.table({"text_hash": keys, "value": list_array(np.stack([values[k] for k in keys]).astype(dtype))})
        self.db.register("new_cache_rows", rows)
        self.db.execute(
            f"INSERT INTO hot_{table} SELECT ?, text_hash, value FROM new_cache_rows ON CONFLICT DO NOTHING", [name]
        )
        self.db.unregister("new_cache_rows")

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

    def prune_stories(self, older_than_days: float, run_id: str) -> PruneCounts:
        """Delete closed stories whose last item is older than the cutoff, with their articles (sealed ones by
        writing their segments anew without them)."""
        cutoff = f"now()::TIMESTAMP - to_microseconds(CAST({float(older_than_days)} * 86400e6 AS BIGINT))"
        with self.transaction():
            self.db.execute(
                f"CREATE OR REPLACE TEMP TABLE doomed AS SELECT story_id FROM stories WHERE status = 'open' AND "
                f"coalesce(last_seen, updated_at) < {cutoff}"
            )
            self.db.execute(
                "CREATE OR REPLACE TEMP TABLE doomed_articles AS SELECT article_id FROM story_members "
                "WHERE story_id IN (SELECT story_id FROM doomed)"
            )
            stories = self.db.execute("SELECT count(*) FROM doomed").fetchall()[0][0]
            articles = remove_rows(
                self.db, self.segments, "articles", "article_id IN (SELECT article_id FROM doomed_articles)", run_id
            )
            self.db.execute("DELETE FROM story_members WHERE story_id IN (SELECT story_id FROM doomed)")
            self.db.execute("DELETE FROM story_merges WHERE story_id IN (SELECT story_id FROM doomed)")
            for table in ("story_reopenings", "story_names"):
                self.db.execute(f"DELETE FROM {table} WHERE story_id IN (SELECT story_id FROM doomed)")
            self.db.execute(
                "DELETE FROM stories WHERE story_id IN (SELECT story_id FROM doomed) OR merged_into IN (SELECT story_id FROM doomed)"
            )
        return PruneCounts(stories, articles)


def list_array(matrix: np.ndarray) -> Any:
    """Rows of a float32 matrix as an Arrow list column, without a Python float per element."""
    import pyarrow as pa

    rows, width = matrix.shape
    offsets = pa.array(np.arange(0, (rows + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel()))
