"""The main job, wiring only: read → normalize → embed and MinHash → per time partition (near-duplicates →
evidence → cluster → headline) → store, on the engine the config names (`pipeline.engine`).

Each stage is timed and counted; the counts and seconds go to the `runs` table and, with a log callback,
to one JSON line per stage. A run holds an exclusive lock beside the database (a second run exits with
`LockedError`), works on a private copy of the database and publishes it atomically at the end
(`pipeline.store.WorkingCopy`): readers are never locked out, and a killed run changes nothing. A run
changes nothing when its input is already stored. New items are clustered in time partitions together with
the members of stories still open (within `stories.window_hours`), each stored story as one fixed group
(`pipeline.partition`); new items then join those stories, start new ones, or merge stories they prove to
be one. Existing memberships never move except through a recorded merge (`story_merges`), and the older id
survives.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.arrays import matrix_of
from pipeline.assign import StoryPlan
from pipeline.config import Config
from pipeline.dedup import SignatureStage
from pipeline.embed import EmbedStage
from pipeline.engine import Engine, open_engine
from pipeline.ingest import iter_ingest
from pipeline.ingest.take import take_new
from pipeline.partition import PartitionInput, time_partitions
from pipeline.records import Article, FileReject, FileWarning, Reject
from pipeline.stage import StageLog, StageTimer, text_hash


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
    warnings: list[FileWarning] = field(default_factory=list)  # files read, maybe not as meant (a field never matched)
    waiting: bool = False  # run.max_items was reached: more new input waits for the next run
    stage_seconds: dict[str, float] = field(default_factory=dict)
    shared_lock_seconds: float = 0.0  # holding the published file (read-only, shared) to copy it
    publish_seconds: float = 0.0  # checkpointing the copy and renaming it over the published file

    @property
    def reject_reasons(self) -> Counter[str]:
        return Counter(r.reason.split(":")[0] for r in self.rejects)


def run(
    inputs: list[str],
    config: Config,
    db: str | Path | None = None,
    fmt: str | None = None,
    progress: bool = False,
    log: StageLog | None = None,
) -> RunReport:
    """Run the whole job over `inputs` into the database (default: `config.store.db`)."""
    from pipeline.store import database_lock, disk_errors

    db_path = Path(db or config.store.db)
    run_id = f"r-{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    report = RunReport(run_id=run_id, db=str(db_path))
    timer = StageTimer(log)
    # Paths are resolved now: a missing input fails fast and never touches the database. Reading happens
    # in the run, streamed, so that it can stop at run.max_items new items and skip known-bad files.
    opened: list[Any] = []
    stream = iter_ingest(inputs, config.input, fmt, skip=lambda path, size: opened[0].known_bad_file(path, size))
    engine = open_engine(config)  # a cluster that cannot be joined fails here, before the database is touched
    try:
        with disk_errors(db_path), database_lock(db_path):
            _run_published(db_path, run_id, stream, opened, config, report, timer, engine, progress)
    finally:
        engine.close()
    return report


def _run_published(
    db_path: Path,
    run_id: str,
    stream: Any,
    opened: list[Any],
    config: Config,
    report: RunReport,
    timer: StageTimer,
    engine: Engine,
    progress: bool,
) -> None:
    """The run on a working copy of the database, published at the end (see `pipeline.store.WorkingCopy`)."""
    from pipeline.store import WorkingCopy

    copy = WorkingCopy(
        db_path, run_id, config.store.lock_wait_seconds, config.store.segment_rows, config.store.keep_replaced_hours
    )
    report.shared_lock_seconds = round(copy.copy_seconds, 3)
    opened.append(copy.store)
    try:
        copy.store.start_run(run_id, [str(p) for p in stream.paths], config.to_dict())
        try:
            _run_locked(copy.store, stream, config, report, timer, engine, progress)
        except Exception as problem:
            # The failure is recorded and published; the data of the run is not (rolled back). If even
            # that cannot be written (a full disk), the original error is what the user needs.
            with suppress(Exception):
                copy.store.finish_run(run_id, "failed", {"error": f"{type(problem).__name__}: {problem}"[:2000]})
                copy.publish()
            raise
        with timer.stage("publish") as counts:
            seconds = copy.publish()
            counts.update(
                copy_seconds=round(copy.copy_seconds, 3), publish_seconds=round(seconds, 3), sealed=copy.sealed_rows
            )
        report.publish_seconds = round(seconds, 3)
    finally:
        copy.discard()  # no-op once published


def _run_locked(
    store: Any, stream: Any, config: Config, report: RunReport, timer: StageTimer, engine: Engine, progress: bool
) -> None:
    with timer.stage("ingest") as counts:
        intake = take_new(stream, store.stored_hashes, config.run.max_items)
        report.lines_read, report.already_stored = intake.lines_read, intake.already_stored
        report.duplicates_in_input, report.waiting = intake.duplicates_in_input, intake.waiting
        report.file_rejects, report.skipped_files = intake.file_rejects, list(stream.skipped_files)
        report.warnings = intake.warnings
        counts.update(
            files=len(stream.files), records=report.lines_read, unreadable_files=len(report.file_rejects),
            skipped_files=len(stream.skipped_files), new=len(intake.records), already_stored=report.already_stored,
            duplicates_in_input=report.duplicates_in_input, waiting=report.waiting, warnings=len(report.warnings),
        )  # fmt: skip
    stages = _ItemStages(config, progress)
    with timer.stage("normalize", len(intake.records)) as counts:
        new = engine.normalize(intake.records)
        intake.records = []  # not kept through the run (80 MB at 200k items)
        counts.update(new=len(new))
    report.rejects = intake.rejects
    report.articles_new = len(new)

    # One transaction for all the run writes: a failure in any partition leaves nothing of the run, and each
    # partition reads the stories the previous ones wrote (same connection).
    ctx = _RunContext(store, config, report, timer, engine, stages)
    partitions = time_partitions(new, config.engine.partition_items) if new else []
    with store.transaction():
        known = _precomputed(ctx, new) if len(partitions) > 1 else {}
        plans = [_partition(ctx, [new[i] for i in positions], known) for positions in partitions]
        with timer.stage("store") as counts:
            store.write_run(report.run_id, [], StoryPlan(), intake.rejects, {}, {}, model="", scheme="")
            store.record_file_rejects(report.run_id, report.file_rejects, report.skipped_files)
            merged = {story for plan in plans for story in plan.merges}
            created = {story for plan in plans for story in plan.created} - merged
            report.stories_new = len(created)
            report.stories_updated = len({story for plan in plans for story in plan.touched} - created - merged)
            report.stories_merged = len(merged)
            report.stage_seconds = dict(timer.seconds)
            store.finish_run(
                report.run_id,
                "ok",
                {
                    "lines_read": report.lines_read,
                    "articles_new": report.articles_new,
                    "articles_already_stored": report.already_stored,
                    "duplicates_in_input": report.duplicates_in_input,
                    "rejected": len(intake.rejects),
                    "stories_new": report.stories_new,
                    "stories_updated": report.stories_updated,
                    "stories_merged": report.stories_merged,
                    "stage_seconds": report.stage_seconds,
                    "counters": {
                        "reject_reasons": dict(report.reject_reasons),
                        "embedded": report.embedded,
                        "unreadable_files": len(report.file_rejects),
                        "skipped_files": len(report.skipped_files),
                        "warnings": [f"{w.file}: {w.message}" for w in report.warnings],
                        "waiting_for_next_run": report.waiting,
                        "engine": engine.name,
                        "partitions": len(plans),
                    },
                },
            )
            counts.update(rejects=len(intake.rejects), partitions=len(plans))


def _precomputed(ctx: _RunContext, new: list[Article]) -> dict[str, np.ndarray]:
    """Before several partitions: the vectors and signatures of all new texts not cached, each computed once
    in one engine map (on Ray spread over the whole cluster, not one partition at a time) and cached, so
    the partitions find them there. Kept in memory only when `embed.cache` is off (then not read back)."""
    from pipeline.dedup import signature_scheme
    from pipeline.embed import model_id

    store, config = ctx.store, ctx.config
    model, scheme = model_id(config.embed), signature_scheme(config.near_duplicates)
    texts = {text_hash(a.content[: config.embed.max_chars]): a.content[: config.embed.max_chars] for a in new}
    with ctx.timer.stage("embed", len(texts)) as counts:
        cached = store.cached_keys("vectors", model, sorted(texts)) if config.embed.cache else set()
        vectors = _not_known(texts, cached, lambda todo: _computed(ctx.engine, ctx.stages.embed, todo))
        ctx.report.embedded += len(vectors)
        counts.update(items=len(new), cached=len(texts) - len(vectors), embedded=len(vectors))
    texts = {text_hash(a.content): a.content for a in new}
    with ctx.timer.stage("minhash", len(texts)) as counts:
        cached = store.cached_keys("signatures", scheme, sorted(texts))
        signatures = _not_known(texts, cached, lambda todo: _computed(ctx.engine, ctx.stages.minhash, todo))
        counts.update(cached=len(texts) - len(signatures), signed=len(signatures))
    store.write_run(ctx.report.run_id, [], StoryPlan(), [], vectors, signatures, model, scheme)
    return {} if config.embed.cache else vectors


def _partition(ctx: _RunContext, new: list[Article], known: dict[str, np.ndarray]) -> StoryPlan:
    """Cluster one time partition on the engine and write it, so the next partition sees its open stories."""
    plan, fresh = _cluster_partition(ctx, new, known)
    with ctx.timer.stage("store", len(new)) as counts:
        ctx.store.write_run(
            ctx.report.run_id, new, plan, [], fresh.vectors, fresh.signatures, fresh.model, fresh.scheme
        )
        counts.update(articles=len(new), stories=len(plan.touched))
    return plan


class _ItemStages:
    """The run's item stages, built once: the embedding model loads once per run (per worker on Ray)."""

    def __init__(self, config: Config, progress: bool) -> None:
        self.minhash = SignatureStage(config.near_duplicates)
        self.embed = EmbedStage(config.embed, progress)


@dataclass(frozen=True)
class _RunContext:
    """What every partition of a run works with, passed as one value rather than six parameters."""

    store: Any
    config: Config
    report: RunReport
    timer: StageTimer
    engine: Engine
    stages: _ItemStages


@dataclass
class _Fresh:
    """What this run computed for the caches: vectors and MinHash signatures by text hash."""

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    signatures: dict[str, np.ndarray] = field(default_factory=dict)
    model: str = ""  # what the vectors are cached under (`embed.model_id`)
    scheme: str = ""  # what the signatures are cached under (`dedup.signature_scheme`)


def _cluster_partition(ctx: _RunContext, new: list[Article], known: dict[str, np.ndarray]) -> tuple[StoryPlan, _Fresh]:
    """One time partition: its open stories from the store, vectors and signatures (cached, computed before
    the partitions, else computed by the engine now), then the partition stages on the engine."""
    from pipeline.dedup import signature_scheme
    from pipeline.embed import model_id
    from pipeline.store import article_from_row
    from pipeline.timeline import closed_story_probes

    store, config, timer, engine, stages = ctx.store, ctx.config, ctx.timer, ctx.engine, ctx.stages
    dates = [a.published_at for a in new if a.published_at is not None]
    context_rows = store.open_story_context(min(dates) if dates else None, config.stories.window_hours)
    with timer.stage("closed_stories", len(new)) as counts:
        # Closed stories that the new items' names and dates point to: a follow-up weeks later joins its event.
        open_ids = {row["story_id"] for row in context_rows}
        closed = store.story_count() - len(open_ids) if config.stories.reopen else 0
        reopenable = store.closed_story_context(closed_story_probes(new, config.cluster), open_ids) if closed else []
        context_rows += reopenable
        counts.update(stories=len({row["story_id"] for row in reopenable}), members=len(reopenable))
    context = [article_from_row(row) for row in context_rows]
    context_story = [row["story_id"] for row in context_rows]
    items = context + new
    texts = [a.content for a in items]

    with timer.stage("embed", len(items)) as counts:
        keys = [text_hash(t[: config.embed.max_chars]) for t in texts]
        cached = store.cached_vectors(model_id(config.embed), sorted(set(keys))) if config.embed.cache else {}
        cached |= known
        vectors, fresh = _cached_or_computed(keys, texts, cached, lambda todo: _computed(engine, stages.embed, todo))
        vectors = vectors.astype(np.float32, copy=False)
        ctx.report.embedded += len(fresh)
        counts.update(items=len(items), context=len(context), cached=len(set(keys)) - len(fresh), embedded=len(fresh))
        del cached  # its rows are in `vectors` now (300 MB at 200k items, not kept through the clustering)

    with timer.stage("minhash", len(items)) as counts:
        scheme = signature_scheme(config.near_duplicates)
        text_keys = [text_hash(t) for t in texts]
        stored = store.cached_signatures(scheme, sorted(set(text_keys)))
        matrix, fresh_signatures = _cached_or_computed(
            text_keys, texts, stored, lambda todo: _computed(engine, stages.minhash, todo)
        )
        counts.update(cached=len(stored), signed=len(fresh_signatures))
        del stored

    created = store.story_created(sorted(set(context_story)))
    part = PartitionInput(items, context_story, vectors, matrix, created)
    del vectors, matrix, texts, keys, text_keys  # the partition's now: it drops what its stages are done with
    result = engine.cluster(part, config)
    del part
    for name, seconds, counters, count in result.stages:
        timer.record(name, seconds, counters, count)
    return result.plan, _Fresh(fresh, fresh_signatures, model_id(config.embed), scheme)


def _computed(engine: Engine, stage: EmbedStage | SignatureStage, texts: list[str]) -> np.ndarray:
    """The rows an item stage adds (the last column: vectors, signatures) for `texts`, as a matrix."""
    embedding = isinstance(stage, EmbedStage)
    table = engine.map(stage, pa.table({"text": pa.array(texts, pa.string())}), model=embedding)
    return matrix_of(table.column(table.num_columns - 1), np.float32 if embedding else np.uint32)


def _cached_or_computed(
    keys: list[str],
    texts: list[str],
    cached: dict[str, np.ndarray],
    compute: Callable[[list[str]], np.ndarray],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One row per text: from the cache by key, else computed once per distinct key. Also returns the fresh rows."""
    fresh = _not_known(dict(zip(keys, texts, strict=True)), cached.keys(), compute)
    lookup = cached | fresh
    return np.stack([lookup[k] for k in keys]), fresh


def _not_known(texts: dict[str, str], known: Any, compute: Callable[[list[str]], np.ndarray]) -> dict[str, np.ndarray]:
    """The rows of the texts (by key) whose key is not in `known`, computed once each, in key order."""
    todo = sorted(key for key in texts if key not in known)
    return dict(zip(todo, compute([texts[key] for key in todo]), strict=True)) if todo else {}
