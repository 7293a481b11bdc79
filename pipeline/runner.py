"""The main job: ingest → normalize → near-duplicates → embed → evidence → cluster → headline → store.

Each stage is timed and counted; the counts and seconds go to the `runs` table and, with a log callback,
to one JSON line per stage. A run holds an exclusive lock beside the database (a second run exits with
`LockedError`), works on a private copy of the database and publishes it atomically at the end
(`pipeline.store.WorkingCopy`): readers are never locked out, and a killed run changes nothing. A run
changes nothing when its input is already stored. New items are clustered together with the members of stories still open (within
`stories.window_hours`), each stored story as one fixed group; new items then join those stories, start
new ones, or merge stories they prove to be one. Existing memberships never move except through a
recorded merge (`story_merges`), and the older id survives.
"""

from __future__ import annotations

import hashlib
import resource
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.assign import StoryPlan, assign_stories
from pipeline.config import Config
from pipeline.ingest import iter_ingest
from pipeline.normalize import normalize_record
from pipeline.records import Article, FileReject, RawRecord, Reject, content_hash

StageLog = Callable[[str, float, dict[str, Any]], None]


@dataclass
class RunReport:
    """What a run did, for the CLI summary and for tests."""

    run_id: str
    db: str
    lines_read: int = 0
    articles_new: int = 0
    already_stored: int = 0
    duplicates_in_input: int = 0
    rejects: list[Reject] = field(default_factory=list)
    stories_new: int = 0
    stories_updated: int = 0
    stories_merged: int = 0
    embedded: int = 0
    file_rejects: list[FileReject] = field(default_factory=list)  # files that could not be read
    skipped_files: list[str] = field(default_factory=list)  # known-bad files, unchanged, not read again
    waiting: bool = False  # run.max_items was reached: more new input waits for the next run
    stage_seconds: dict[str, float] = field(default_factory=dict)
    shared_lock_seconds: float = 0.0  # holding the published file (read-only, shared) to copy it
    publish_seconds: float = 0.0  # checkpointing the copy and renaming it over the published file

    @property
    def reject_reasons(self) -> Counter[str]:
        return Counter(r.reason.split(":")[0] for r in self.rejects)


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


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class _Timer:
    def __init__(self, report: RunReport, log: StageLog | None) -> None:
        self.report, self.log = report, log

    @contextmanager
    def stage(self, name: str, items: int | None = None) -> Iterator[dict[str, Any]]:
        """Time a stage; with `items`, the log also gets its rate (items per second)."""
        counts: dict[str, Any] = {}
        start = time.perf_counter()
        yield counts
        seconds = time.perf_counter() - start
        self.report.stage_seconds[name] = round(self.report.stage_seconds.get(name, 0.0) + seconds, 3)
        if items:
            counts["items_per_s"] = round(items / max(seconds, 1e-6))
        counts["peak_mb"] = peak_memory_mb()
        if self.log:
            self.log(name, seconds, counts)


def run(
    inputs: list[str],
    config: Config,
    db: str | Path | None = None,
    fmt: str | None = None,
    progress: bool = False,
    log: StageLog | None = None,
) -> RunReport:
    """Run the whole job over `inputs` into the database (default: `config.store.db`)."""
    from pipeline.store import WorkingCopy, database_lock, disk_errors

    db_path = Path(db or config.store.db)
    run_id = f"r-{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    report = RunReport(run_id=run_id, db=str(db_path))
    timer = _Timer(report, log)
    # Paths are resolved now: a missing input fails fast and never touches the database. Reading happens
    # in the run, streamed, so that it can stop at run.max_items new items and skip known-bad files.
    opened: list[Any] = []
    stream = iter_ingest(inputs, config.input, fmt, skip=lambda path, size: opened[0].known_bad_file(path, size))
    with disk_errors(db_path), database_lock(db_path):
        copy = WorkingCopy(db_path, run_id, config.store.lock_wait_seconds)
        report.shared_lock_seconds = round(copy.copy_seconds, 3)
        opened.append(copy.store)
        try:
            copy.store.start_run(run_id, [str(p) for p in stream.paths], config.to_dict())
            try:
                _run_locked(copy.store, stream, config, report, timer, progress)
            except Exception as problem:
                # The failure is recorded and published; the data of the run is not (rolled back). If even
                # that cannot be written (a full disk), the original error is what the user needs.
                with suppress(Exception):
                    copy.store.finish_run(run_id, "failed", {"error": f"{type(problem).__name__}: {problem}"[:2000]})
                    copy.publish()
                raise
            with timer.stage("publish") as counts:
                seconds = copy.publish()
                counts.update(copy_seconds=round(copy.copy_seconds, 3), publish_seconds=round(seconds, 3))
            report.publish_seconds = round(seconds, 3)
        finally:
            copy.discard()  # no-op once published
    return report


def _run_locked(store: Any, stream: Any, config: Config, report: RunReport, timer: _Timer, progress: bool) -> None:
    with timer.stage("ingest") as counts:
        taken, rejects = _take_new(store, stream, config.run.max_items, report)
        counts.update(
            files=len(stream.files), records=report.lines_read, unreadable_files=len(report.file_rejects),
            skipped_files=len(stream.skipped_files), new=len(taken), already_stored=report.already_stored,
            duplicates_in_input=report.duplicates_in_input, waiting=report.waiting,
        )  # fmt: skip
    report.skipped_files = list(stream.skipped_files)
    with timer.stage("normalize", len(taken)) as counts:
        new = [normalize_record(record) for record in taken]
        counts.update(new=len(new))
    report.rejects = rejects
    report.articles_new = len(new)

    plan = StoryPlan()
    fresh = _Fresh()
    if new:
        plan, fresh = _cluster_new(store, new, config, report, timer, progress)

    from pipeline.embed import model_id

    with timer.stage("store", len(new)) as counts:
        with store.transaction():
            store.write_run(
                report.run_id, new, plan, rejects, fresh.vectors, fresh.signatures, model_id(config.embed), fresh.scheme
            )
            store.record_file_rejects(report.run_id, report.file_rejects, report.skipped_files)
            report.stories_new = len(plan.created)
            report.stories_updated = len(plan.touched - plan.created)
            report.stories_merged = len(plan.merges)
            store.finish_run(
                report.run_id,
                "ok",
                {
                    "lines_read": report.lines_read,
                    "articles_new": report.articles_new,
                    "articles_already_stored": report.already_stored,
                    "duplicates_in_input": report.duplicates_in_input,
                    "rejected": len(rejects),
                    "stories_new": report.stories_new,
                    "stories_updated": report.stories_updated,
                    "stories_merged": report.stories_merged,
                    "stage_seconds": report.stage_seconds,
                    "counters": {
                        "reject_reasons": dict(report.reject_reasons),
                        "embedded": report.embedded,
                        "unreadable_files": len(report.file_rejects),
                        "skipped_files": len(report.skipped_files),
                        "waiting_for_next_run": report.waiting,
                    },
                },
            )
        counts.update(articles=len(new), stories=len(plan.touched), rejects=len(rejects))


def _take_new(store: Any, stream: Any, max_items: int, report: RunReport) -> tuple[list[RawRecord], list[Reject]]:
    """Read the stream in arrival order and keep the records not stored yet, at most `max_items` of them.

    An id is compared with the stored one before any cleaning (both come from the raw record), so a file
    read again by the next run costs little. Once `max_items` are taken reading stops: the rest waits for
    the next run (`report.waiting` says whether some does). An id seen twice is a duplicate (same content)
    or a reject (different content), against the database and within the input alike.
    """
    rejects: list[Reject] = []
    taken: list[RawRecord] = []
    seen: dict[str, str] = {}  # ids taken this run, with their content hash
    pending: list[RawRecord] = []

    def settle() -> None:
        identities = [_identity(record) for record in pending]
        stored = store.stored_hashes(sorted({article_id for article_id, _ in identities}))
        for record, (article_id, digest) in zip(pending, identities, strict=True):
            known = stored.get(article_id, seen.get(article_id))
            if known is None:
                if len(taken) >= max_items:
                    report.waiting = True
                    continue  # read again, and taken, by the next run
                seen[article_id] = digest
                taken.append(record)
            elif article_id in stored and known == digest:
                report.already_stored += 1
            elif known == digest:
                report.duplicates_in_input += 1
            else:
                where = "already stored" if article_id in stored else "repeated in the input"
                rejects.append(Reject(record.file, record.line, f"id {where} with different content", article_id))
        pending.clear()

    for item in stream:
        report.lines_read += not isinstance(item, FileReject)
        if isinstance(item, FileReject):
            report.file_rejects.append(item)
        elif isinstance(item, Reject):
            rejects.append(item)
        else:
            pending.append(item)
            if len(pending) >= 4096:
                settle()
                if len(taken) >= max_items:
                    report.waiting = True
                    break
    settle()
    return taken, rejects


def _identity(record: RawRecord) -> tuple[str, str]:
    """The article id and content hash a record will have (`normalize_record` gives the same)."""
    digest = content_hash(record.title, record.text)
    return record.id or f"h-{digest[:16]}", digest


@dataclass
class _Fresh:
    """What this run computed for the caches: vectors and MinHash signatures by text hash."""

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    signatures: dict[str, np.ndarray] = field(default_factory=dict)
    scheme: str = ""


def _cluster_new(
    store: Any, new: list[Article], config: Config, report: RunReport, timer: _Timer, progress: bool
) -> tuple[StoryPlan, _Fresh]:
    from pipeline.cluster import cluster
    from pipeline.dedup import find_near_duplicates, signature_scheme, signatures
    from pipeline.embed import Embedder, model_id
    from pipeline.similarity import item_evidence
    from pipeline.store import article_from_row

    dates = [a.published_at for a in new if a.published_at is not None]
    context_rows = store.open_story_context(max(dates) if dates else None, config.stories.window_hours)
    context = [article_from_row(row) for row in context_rows]
    context_story = [row["story_id"] for row in context_rows]
    items = context + new
    texts = [a.content for a in items]

    with timer.stage("embed", len(items)) as counts:
        keys = [text_hash(t[: config.embed.max_chars]) for t in texts]
        cached = store.cached_vectors(model_id(config.embed), sorted(set(keys))) if config.embed.cache else {}
        vectors, fresh = _cached_or_computed(
            keys, texts, cached, lambda todo: Embedder(config.embed).encode(todo, progress=progress)
        )
        vectors = vectors.astype(np.float32)
        report.embedded = len(fresh)
        counts.update(items=len(items), context=len(context), cached=len(set(keys)) - len(fresh), embedded=len(fresh))

    with timer.stage("near_duplicates", len(items)) as counts:
        scheme = signature_scheme(config.near_duplicates)
        text_keys = [text_hash(t) for t in texts]
        known = store.cached_signatures(scheme, sorted(set(text_keys)))
        matrix, fresh_signatures = _cached_or_computed(
            text_keys, texts, known, lambda todo: signatures(todo, config.near_duplicates)[0]
        )
        near = find_near_duplicates(texts, [a.content_hash for a in items], config.near_duplicates, matrix)
        counts.update(
            pairs=len(near.pairs), exact_groups=near.exact_groups, cached=len(known), signed=len(fresh_signatures)
        )

    with timer.stage("evidence", len(items)) as counts:
        graph = item_evidence(items, vectors, near, config.cluster)
        counts.update(candidate_pairs=len(graph.rows))

    with timer.stage("cluster", len(items)) as counts:
        stored_story = {story: number for number, story in enumerate(sorted(set(context_story)))}
        fixed = np.array([stored_story[s] for s in context_story] + [-1] * len(new), dtype=np.int64)
        clustering = cluster(graph, config.cluster, fixed, config.stories.window_hours)
        counts.update(cores=clustering.cores, attached=clustering.attached, merges=clustering.merges)

    with timer.stage("headline", len(items)) as counts:
        plan = assign_stories(
            items,
            context_story,
            clustering.labels,
            vectors,
            near.group,
            graph.features,
            config,
            store.story_created(sorted(set(context_story))),
        )
        counts.update(stories=len(plan.touched), new_stories=len(plan.created), merged=len(plan.merges))
    return plan, _Fresh(vectors=fresh, signatures=fresh_signatures, scheme=scheme)


def _cached_or_computed(
    keys: list[str],
    texts: list[str],
    cached: dict[str, np.ndarray],
    compute: Callable[[list[str]], np.ndarray],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One row per text: from the cache by key, else computed once per distinct key. Also returns the fresh rows."""
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
    fresh: dict[str, np.ndarray] = {}
    if missing:
        fresh = dict(zip([k for k, _ in missing], compute([t for _, t in missing]), strict=True))
    lookup = cached | fresh
    return np.stack([lookup[k] for k in keys]), fresh
