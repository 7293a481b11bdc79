"""`Store`: one connection to a storyclust database with the run's writes, the run's reads and the readers'
queries (one module each)."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import StoreError
from pipeline.store.keyfilters import add_missing_filters
from pipeline.store.lookups import RunLookups
from pipeline.store.queries import ReaderQueries
from pipeline.store.schema import Database
from pipeline.store.segments import missing_segments, refresh_views, seal, segment_folder, views_current
from pipeline.store.writes import RunWrites


class Store(RunWrites, RunLookups, ReaderQueries, Database):
    """A DuckDB database holding articles, stories and runs.

    Opened read-only by everything that only reads. Writers never open the published file for writing:
    they change a private copy and publish it atomically (`pipeline.store.publish.WorkingCopy`), so a
    reader that keeps the file open for hours never blocks a run and a run never blocks a reader.
    `published` names the file the copy will become, whose segment folder the views read.
    """

    def __init__(
        self,
        path: str | Path,
        read_only: bool = False,
        create: bool = True,
        wait_seconds: float = 0.0,
        published: str | Path | None = None,
    ) -> None:
        super().__init__(path, read_only, create, wait_seconds)
        self.segments = segment_folder(Path(published or path))
        # A writer migrates first, checks that its segments are there, then points the views at them if they do
        # not read them yet (a new file, a migration, or a store moved with its folder), and filters the segments
        # sealed without one.
        if not read_only:
            migrated = self.migrate()
            missing = missing_segments(self.db, self.segments)
            if missing:
                self.close()
                raise StoreError(
                    f"{len(missing)} segment files of {published or path} are missing from {self.segments} "
                    f"(first: {missing[0]}); keep that folder with the database file, or restore it"
                )
            if migrated or not views_current(self.db, self.segments):
                refresh_views(self.db, self.segments)
            add_missing_filters(self.db, self.segments)

    def seal(self, run_id: str, at_rows: int = 1) -> int:
        """Seal the hot rows into Parquet segments once a hot table holds `at_rows` (see `segments.seal`)."""
        return seal(self.db, self.segments, run_id, at_rows)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
