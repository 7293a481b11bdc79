"""Publishing: one writer at a time changes a private copy of the database and renames it over the published
file, so readers never wait for a run and a run never waits for a reader. The copy is small: the archive
lives in immutable Parquet segments beside the file (`pipeline.store.segments`), which the copy names but
does not hold, so a run's cost follows what it adds, not what was stored before.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import LockedError, StoreError
from pipeline.store.database import Store
from pipeline.store.rows import PruneCounts
from pipeline.store.schema import STORAGE_VERSION, connect, sql_string, storage_version
from pipeline.store.segments import sweep


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
    Before publishing, the copy's recent rows are sealed into segments once `segment_rows` have gathered
    (`pipeline.store.segments`): segments are written before the rename and named only by the new file, so
    a killed writer leaves at most files no database names, which the next writer deletes.
    """

    def __init__(
        self, path: Path, run_id: str, wait_seconds: float, segment_rows: int = 5000, keep_replaced_hours: float = 24.0
    ) -> None:
        self.path, self.run_id, self.segment_rows = path, run_id, segment_rows
        self.sealed_rows = 0
        self.work = path.with_name(f"{path.name}.{run_id}.tmp")
        self._written_back: threading.Thread | None = None
        try:
            self.source_state, self.copy_seconds = self._copy_out(wait_seconds)
            if self.source_state is not None:
                # The copied bytes go to disk while the run works, not in the checkpoint at its end (0.2 s
                # of a 1,000-item run at a million stored articles was the copy's pages reaching the disk).
                self._written_back = threading.Thread(target=_write_back, args=(self.work,), daemon=True)
                self._written_back.start()
            self.stale, self.interrupted = self._sweep()
            self.store = Store(self.work, published=path)
            if storage_version(self.store.db).startswith("v2"):
                self._rewrite()  # from DuckDB 2.x's default format into the one every 1.x reads
            sweep(self.store.db, self.store.segments, keep_replaced_hours)
            if self.interrupted:
                self.store.record_interrupted(self.interrupted)
        except BaseException:
            self.discard()  # a half-made copy (a full disk) must not stay behind
            raise

    def _sweep(self) -> tuple[list[Path], list[tuple[str, datetime]]]:
        """Copies left by killed writers, emptied to markers: the markers, and their run ids and start times."""
        markers, found = [], []
        for legacy in self.path.parent.glob(f"{self.path.name}.*.tmp.legacy"):  # killed while writing its copy anew
            copy = legacy.with_suffix("")
            if copy.exists():
                legacy.unlink()
            else:
                os.replace(legacy, copy)
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
            connect(self.path, False, wait_seconds).close()
        reader = connect(self.path, True, wait_seconds)
        try:
            state = _file_state(self.path)
            shutil.copyfile(self.path, self.work)
        finally:
            reader.close()
        return state, time.perf_counter() - start

    def _rewrite(self) -> None:
        """Write the copy anew (`rewrite_database`) and reopen it."""
        self.store.close()
        rewrite_database(self.work)
        self.store = Store(self.work, published=self.path)

    def publish(self, deleted: bool = False) -> float:
        """Make the copy the published database; returns the seconds it took. After rows were sealed or
        `deleted`, the copy is written anew first: DuckDB keeps the blocks of deleted rows in the file (75 MB
        of tables grew to 7.4 GB over 200 seals), and every later run would copy them."""
        start = time.perf_counter()
        if self._written_back is not None:
            self._written_back.join()
        self.sealed_rows = self.store.seal(self.run_id, self.segment_rows)
        self.store.db.execute("CHECKPOINT")
        if self.sealed_rows or deleted or mostly_free(self.store.db):
            self._rewrite()
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
        for left in (f"{self.work}.wal", f"{self.work}.legacy"):
            Path(left).unlink(missing_ok=True)


def _write_back(path: Path) -> None:
    """Flush a file's written pages to disk (in a thread: the wait is on the disk, not on this process).
    A failure here shows again, and is reported, in the checkpoint and the sync of the publish."""
    with suppress(OSError):
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def prune(
    path: str | Path, older_than_days: float, wait_seconds: float, keep_replaced_hours: float = 24.0
) -> PruneCounts:
    """Delete old stories through a working copy, like a run (exits 75 while a run holds the lock)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"database not found: {path} (run `storyclust run` first or pass --db)")
    with disk_errors(path), database_lock(path):
        run_id = f"prune-{datetime.now():%Y%m%dT%H%M%S}-{os.getpid()}"
        copy = WorkingCopy(path, run_id, wait_seconds, keep_replaced_hours=keep_replaced_hours)
        try:
            counts = copy.store.prune_stories(older_than_days, run_id)
            copy.publish(deleted=bool(counts.stories))
        finally:
            copy.discard()
    return counts


# A file is written anew once more than half of it is free blocks and it is bigger than this.
_REWRITE_ABOVE_BYTES = 32 * 2**20


def mostly_free(db: Any) -> bool:
    """Whether the database is mostly free blocks (blocks of deleted rows that DuckDB did not reuse)."""
    _, _, block_size, total, used, free, *_ = db.execute("PRAGMA database_size").fetchall()[0]
    return free > used and total * block_size > _REWRITE_ABOVE_BYTES


def rewrite_database(path: Path) -> None:
    """Write the database at `path` anew: in the storage format every DuckDB 1.x reads, without free blocks.
    Its size is what the tables hold (the archive is in segments), so this costs little."""
    import duckdb

    legacy = path.with_name(path.name + ".legacy")
    os.replace(path, legacy)
    db = duckdb.connect(str(path), config={"storage_compatibility_version": STORAGE_VERSION})
    db.execute(f"ATTACH {sql_string(legacy)} AS legacy (READ_ONLY)")
    target = db.execute("SELECT current_database()").fetchall()[0][0]
    db.execute(f'COPY FROM DATABASE legacy TO "{target}"')
    db.execute("DETACH legacy")
    db.close()
    legacy.unlink()
