"""The readers' queries: the report, `stories`, `show`, `rejects` and `export`, read-only, on the published
file (a reader never blocks a run: see `pipeline.store.publish`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.errors import NotFoundError
from pipeline.store.rows import (
    MemberEvidence,
    RejectReason,
    SourceCount,
    Story,
    StoryHead,
    StoryMember,
    Summary,
    TopStory,
    UnreadableFile,
)
from pipeline.store.schema import Database, first_row, sql_string

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


class ReaderQueries(Database):
    """Queries of the published database, as typed records."""

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
            row = first_row(self.db.execute("SELECT story_id FROM story_merges WHERE old_story_id = ?", [story_id]))
            if row is None:
                break
            story_id = row[0]
        if not first_row(self.db.execute("SELECT 1 FROM stories WHERE story_id = ?", [story_id])):
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
            f"COPY (SELECT {select} FROM {source} ORDER BY {order}) TO {sql_string(path)} ({COPY_OPTIONS[fmt]})"
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
