"""Time partitions, and the partition stages: near-duplicate groups → evidence → cluster → headline.

New items are clustered in time partitions of at most `engine.partition_items` items. Each partition is
clustered together with the members of the stories still open before it (`stories.window_hours`) and of
the closed stories its items point to (`pipeline.timeline`), each such story one fixed group: exactly the rule that joins a cron run's new items to the stored stories. So
partition k sees partition k−1 only through its open stories, a worker needs one partition and its open
stories, never the whole archive, and a batch of any size gives the stories that runs over its time slices
would. The stages hand typed records to each other (`NearDuplicates`, `EvidenceGraph`, `Clustering`)
inside one process; what crosses a process boundary (`PartitionInput`, `PartitionResult`) pickles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from pipeline.assign import StoryPlan, assign_stories
from pipeline.config import Config
from pipeline.records import Article, StoryOrigin
from pipeline.stage import cpu_seconds_since, release_free_memory


def time_partitions(articles: list[Article], size: int) -> list[list[int]]:
    """Positions of `articles` in consecutive time partitions of at most `size` (undated items last), each in
    arrival order. One partition (arrival order) when all fit."""
    if len(articles) <= size:
        return [list(range(len(articles)))]
    order = sorted(
        range(len(articles)),
        key=lambda i: (articles[i].published_at is None, articles[i].published_at or datetime.min, i),
    )
    return [sorted(order[start : start + size]) for start in range(0, len(order), size)]


@dataclass
class PartitionInput:
    """One partition's items, the open stories' members first (`context_story` gives their story ids), with
    each item's vector and MinHash signature, and when and by which run each open story was created."""

    items: list[Article]
    context_story: list[str]
    vectors: np.ndarray
    signatures: np.ndarray
    created: dict[str, StoryOrigin]


@dataclass
class PartitionResult:
    """The story plan of a partition, and each stage's (name, seconds, counters, items)."""

    plan: StoryPlan
    stages: list[tuple[str, float, dict[str, Any], int]] = field(default_factory=list)


def cluster_partition(part: PartitionInput, config: Config) -> PartitionResult:
    """Run the partition stages on one partition (in this process, or as a Ray task)."""
    from pipeline.cluster import cluster
    from pipeline.dedup import find_near_duplicates
    from pipeline.similarity import item_evidence, neighbours_in_background

    result = PartitionResult(StoryPlan())
    items, n = part.items, len(part.items)

    def timed(name: str, counters: Any, compute: Any, *args: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        value = compute(*args)
        release_free_memory()
        result.stages.append(
            (name, time.perf_counter() - start, {**counters(value), "cpu_seconds": cpu_seconds_since(cpu)}, n)
        )
        return value

    # The neighbour search needs only the vectors: it runs on the other core through the near-duplicate search and
    # the evidence stage's word counts (`item_evidence` waits for it where the candidate pairs are made).
    neighbours = neighbours_in_background(part.vectors, config.cluster)
    near = timed(
        "near_duplicates",
        lambda found: {"pairs": len(found.pairs), "exact_groups": found.exact_groups},
        find_near_duplicates,
        [a.content for a in items],
        [a.content_hash for a in items],
        config.near_duplicates,
        part.signatures,
    )
    # What a stage is done with goes before the next: the signatures here, the pair signals the cluster stage
    # does not read after the evidence stage, the others after the cluster stage (350 MB at 200k items in all;
    # the run's memory peak is in those stages).
    part.signatures = np.zeros((0, part.signatures.shape[1]), dtype=part.signatures.dtype)
    graph = timed(
        "evidence",
        lambda found: {"candidate_pairs": len(found.rows)},
        item_evidence,
        items,
        part.vectors,
        near,
        config.cluster,
        neighbours,
    )
    del neighbours
    graph = graph.for_clustering()
    stored_story = {story: number for number, story in enumerate(sorted(set(part.context_story)))}
    fixed = np.array([stored_story[s] for s in part.context_story] + [-1] * (n - len(part.context_story)), np.int64)
    clustering = timed(
        "cluster",
        lambda found: {"cores": found.cores, "attached": found.attached, "merges": found.merges},
        cluster,
        graph,
        config.cluster,
        fixed,
    )
    features, near_group = graph.features, near.group
    del graph, near
    result.plan = timed(
        "headline",
        lambda plan: {"stories": len(plan.touched), "new_stories": len(plan.created), "merged": len(plan.merges)},
        assign_stories,
        items,
        part.context_story,
        clustering.labels,
        part.vectors,
        near_group,
        features,
        config,
        part.created,
    )
    return result
