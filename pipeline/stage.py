"""The stage contract: what every stage takes and gives, and how a stage is timed.

The pipeline is read → normalize → near-duplicates → embed → evidence → cluster → headline → store, in
two kinds of stage:

- **Item stages** (`normalize.NormalizeStage`, `dedup.SignatureStage`, `embed.EmbedStage`) look at one item
  at a time. Each is a callable object built from its own config section that takes an Arrow table and
  returns a `StageResult` (the table with its columns added, counters, rejects). The same object runs
  in-process on a whole batch or inside Ray Data's `map_batches` on a block (`pipeline.engine`).
- **Partition stages** (near-duplicate groups, evidence, cluster, headline) need every item of a time
  partition at once, with the open stories before it. `pipeline.partition.cluster_partition` runs them
  in order on one partition, handing typed records (`NearDuplicates`, `EvidenceGraph`, `Clustering`) from
  one to the next, and returns the `StoryPlan` the store writes. A partition is the unit of work of a Ray
  task, so no worker needs the whole archive.

The runner (`pipeline.runner`) only wires these together; all SQL is in `pipeline.store`.
"""

from __future__ import annotations

import functools
import hashlib
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from pipeline.records import Reject

StageLog = Callable[[str, float, dict[str, Any]], None]


@dataclass
class StageResult:
    """What an item stage gives back: its output table, counters for the run log, and rejects."""

    table: pa.Table
    counters: dict[str, Any] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)


class ItemStage(Protocol):
    """An item stage: built from its config section, called on a table of items (any number of rows)."""

    name: str

    def __call__(self, table: pa.Table) -> StageResult: ...


def text_hash(text: str) -> str:
    """The cache key of a text (vectors and MinHash signatures are cached by it)."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def peak_memory_mb() -> float:
    """This process's resident high-water mark: VmHWM where /proc has it (ru_maxrss also counts what a
    parent shared with it before exec), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def release_free_memory() -> None:
    """Hand the memory freed by a stage back to the system: Arrow's pool (mimalloc keeps it) and the pages of
    the C heap (glibc's `malloc_trim`; elsewhere nothing).

    A stage frees millions of small objects (records, strings, lists) and the Arrow tables of what it read
    (the cached vectors: 160 MB at 200k items), and both allocators keep their pages: the next stage's
    arrays then come on top of them, and the process's peak with them. Called between stages; a few
    milliseconds each."""
    pa.default_memory_pool().release_unused()
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


# glibc's mallopt parameters (malloc.h); its dynamic mmap threshold stops rising at 32 MB on 64-bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DYNAMIC_CEILING = 32 << 20


@contextmanager
def large_blocks_reused() -> Iterator[None]:
    """Within: the C heap serves and keeps blocks up to 64 MB (glibc; elsewhere nothing).

    A transformer's forward allocates and frees activations of 10-50 MB per operation. By default glibc maps
    each block over 32 MB afresh and the kernel zeroes its pages: a million page faults and 1.1-1.4 s of system
    CPU per pass over 6,366 headlines, about 1 s of a cold run. From the heap they are reused. Afterwards the
    thresholds are those glibc's own would have reached (mmap over 32 MB, trim over 64 MB), and
    `release_free_memory` hands the free pages back after the stage."""
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 2 * _DYNAMIC_CEILING)
        mallopt(_M_TRIM_THRESHOLD, 8 * _DYNAMIC_CEILING)
    try:
        yield
    finally:
        if mallopt is not None:
            mallopt(_M_MMAP_THRESHOLD, _DYNAMIC_CEILING)
            mallopt(_M_TRIM_THRESHOLD, 2 * _DYNAMIC_CEILING)


@functools.cache
def _libc_function(name: str) -> Any:
    import ctypes

    try:
        return getattr(ctypes.CDLL(None), name, None)
    except OSError:
        return None


def cpu_seconds_since(start: float) -> float:
    """CPU seconds of this process, all its threads, since `time.process_time()` gave `start`: beside a stage's
    wall seconds, how much of the machine it kept busy (over its wall seconds: the cores it used)."""
    return round(time.process_time() - start, 3)


class StageTimer:
    """Times stages and sums their seconds per name; each stage's counters go to the log callback."""

    def __init__(self, log: StageLog | None = None) -> None:
        self.log = log
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, items: int | None = None) -> Iterator[dict[str, Any]]:
        """Time a stage; with `items`, the log also gets its rate (items per second)."""
        counts: dict[str, Any] = {}
        start, cpu = time.perf_counter(), time.process_time()
        yield counts
        release_free_memory()  # counted in the stage: what it freed
        counts["cpu_seconds"] = cpu_seconds_since(cpu)
        self.record(name, time.perf_counter() - start, counts, items)

    def record(self, name: str, seconds: float, counts: dict[str, Any], items: int | None = None) -> None:
        """Account a stage timed elsewhere (a Ray task reports its own stage seconds)."""
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 3)
        if items:
            counts["items_per_s"] = round(items / max(seconds, 1e-6))
        counts["peak_mb"] = peak_memory_mb()
        if self.log:
            self.log(name, seconds, counts)
