"""Store stage: the DuckDB file people query, and the Parquet segments beside it.

- `schema`: the numbered migrations (table and view names are the public interface) and the connection;
- `segments`: the archive, the append-only tables' older rows sealed into immutable Parquet files behind
  views of the same names, so that a run copies only what is recent;
- `writes`, `lookups`, `queries`: the run's writes, the run's reads, the readers' queries, all SQL of the
  pipeline; other modules get typed records (`rows`, `pipeline.records`), never rows to unpack by position;
- `publish`: one writer at a time on a private copy, renamed over the published file at the end.
"""

from pipeline.store.database import Store
from pipeline.store.lookups import article_from_row
from pipeline.store.publish import WorkingCopy, database_lock, disk_errors, prune
from pipeline.store.queries import COPY_OPTIONS, EXPORTS
from pipeline.store.rows import MemberEvidence, PruneCounts, SourceCount, StoryHead, Summary
from pipeline.store.schema import MIGRATIONS, STORAGE_VERSION, apply_migration

__all__ = [
    "COPY_OPTIONS",
    "EXPORTS",
    "MIGRATIONS",
    "apply_migration",
    "STORAGE_VERSION",
    "MemberEvidence",
    "PruneCounts",
    "SourceCount",
    "Store",
    "StoryHead",
    "Summary",
    "WorkingCopy",
    "article_from_row",
    "database_lock",
    "disk_errors",
    "prune",
]
