"""The cohesion rule: two stories of full texts merge only if they name about the same names and numbers across
as each does within. Two halves of one event do; two events of one topic (two earthquakes, two summits) do not.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.cluster.groupsums import LEDE_WORDS, GroupSums, group_signals, indicator_of
from pipeline.config import ClusterConfig
from pipeline.similarity import ItemFeatures


@functools.lru_cache(maxsize=256)
def upper_pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    """`np.triu_indices(m, 1)`, kept: thousands of small parts share a few sizes."""
    return np.triu_indices(m, 1)


def within_from_self(sizes: np.ndarray, with_self: np.ndarray) -> np.ndarray:
    """Mean similarity over the member pairs inside each group, from its mean over all ordered pairs with
    itself: the |A|² pairs less the |A| self-pairs, each taken as 1 (NaN for a group of one)."""
    sizes = sizes.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 1, (sizes**2 * with_self - sizes) / (sizes * (sizes - 1)), np.nan)


def too_loose(similarity: Any, within_a: Any, within_b: Any, body_a: Any, body_b: Any, cohesion: float) -> Any:
    """The cohesion rule: two groups of several members are too loose to merge when they are less alike
    across than `cohesion` × the lower within-similarity (scaled by `body`, see `cohesive_linkage`).
    A group of one has no within-similarity (NaN) and never makes a pair too loose."""
    with np.errstate(invalid="ignore"):
        return similarity < cohesion * np.maximum(body_a, body_b) * np.minimum(within_a, within_b)


def _too_loose_one(
    similarity: float, within_a: float, within_b: float, body_a: float, body_b: float, cohesion: float
) -> bool:
    """`too_loose` of one pair of plain floats, the same IEEE arithmetic in the same order without numpy's
    scalar calls (a NaN anywhere, as in `np.minimum` and `np.maximum`, makes the comparison false)."""
    if within_a != within_a or within_b != within_b or body_a != body_a or body_b != body_b:
        return False
    return similarity < cohesion * (body_a if body_a >= body_b else body_b) * (
        within_a if within_a <= within_b else within_b
    )


def cohesive_linkage(
    condensed: np.ndarray,
    sizes: np.ndarray,
    within: np.ndarray,
    body: np.ndarray,
    threshold: float,
    cohesion: float,
    cohesion_condensed: np.ndarray | None = None,
) -> np.ndarray:
    """Average linkage over m groups (`condensed`: their pair similarities in scipy's order), flat labels.

    `cohesion_condensed`: the signal the cohesion rule compares (`names_signal`; `within` is of that
    signal), averaged over merged groups as `condensed` is; without it, `condensed` itself.

    The most similar pair merges first while its similarity reaches `threshold`, as in scipy's average
    linkage (each group weighing one) cut at 1 − threshold. One more rule: two groups of several members
    merge only if their similarity reaches `cohesion` × the lower of their own within-group similarities,
    scaled by `body` (1 for texts of `LEDE_WORDS` or more, less for bare headlines, whose within-group
    similarity measures copying rather than the event; the larger of the two counts, so a story of full
    texts holds to the rule against a story of headlines too). Two halves of one event are as alike across as
    within (ratio 0.98–1.0 on random halves of gold stories); two events of one topic are not (median
    0.75 on ECB+). The merged group's within-similarity is exact: both parts' internal pairs and the
    pairs across.
    """
    import heapq

    m = len(sizes)
    if m < 2:
        return np.zeros(m, dtype=np.int64)
    # Plain floats and lists: a part holds four groups on average, where numpy's cost per call is all of it.
    # The arithmetic is the same IEEE double arithmetic, operation for operation.
    upper_i, upper_j = (index.tolist() for index in upper_pairs(m))
    values = condensed.tolist()
    matrix = [[0.0] * m for _ in range(m)]
    for value, i, j in zip(values, upper_i, upper_j, strict=True):
        matrix[i][j] = matrix[j][i] = value
    if cohesion_condensed is None:
        signal = matrix  # the same rows: updated once
    else:
        signal = [[0.0] * m for _ in range(m)]
        for value, i, j in zip(cohesion_condensed.tolist(), upper_i, upper_j, strict=True):
            signal[i][j] = signal[j][i] = value
    sizes, body, within = sizes.tolist(), body.tolist(), within.tolist()
    weight = [1.0] * m
    internal_pairs = [size * (size - 1) / 2 for size in sizes]
    internal_sum = [
        (0.0 if math.isnan(w) else w) * p if p > 0 else 0.0 for w, p in zip(within, internal_pairs, strict=True)
    ]
    active = [True] * m
    version = [0] * m
    owner = list(range(m))  # which surviving group each original group is in
    heap = [(-v, i, j, 0, 0) for v, i, j in zip(values, upper_i, upper_j, strict=True) if v >= threshold]
    heapq.heapify(heap)
    while heap:
        negative, i, j, version_i, version_j = heapq.heappop(heap)
        if not (active[i] and active[j]) or version[i] != version_i or version[j] != version_j:
            continue  # a stale entry: one side has changed since
        across = signal[i][j]
        inside_i, inside_j = (internal_sum[g] / internal_pairs[g] if internal_pairs[g] else math.nan for g in (i, j))
        if _too_loose_one(across, inside_i, inside_j, body[i], body[j], cohesion):
            continue
        # Merge j into i (Lance-Williams update for average linkage).
        total = sizes[i] + sizes[j]
        weight_i, weight_j = weight[i], weight[j]
        row = [(weight_i * a + weight_j * b) / (weight_i + weight_j) for a, b in zip(matrix[i], matrix[j], strict=True)]
        weight[i] += weight_j
        row[i] = 0.0
        matrix[i] = row
        for k in range(m):
            matrix[k][i] = row[k]
        if signal is not matrix:
            signal_row = [
                (weight_i * a + weight_j * b) / (weight_i + weight_j) for a, b in zip(signal[i], signal[j], strict=True)
            ]
            signal_row[i] = 0.0
            signal[i] = signal_row
            for k in range(m):
                signal[k][i] = signal_row[k]
        internal_sum[i] += internal_sum[j] + across * sizes[i] * sizes[j]
        body[i] = (sizes[i] * body[i] + sizes[j] * body[j]) / total
        internal_pairs[i] = total * (total - 1) / 2
        sizes[i] = total
        active[j] = False
        owner = [i if o == j else o for o in owner]
        version[i] += 1
        for k in range(m):
            if k != i and active[k] and row[k] >= threshold:
                a, b = (i, k) if i < k else (k, i)
                heapq.heappush(heap, (-row[k], a, b, version[a], version[b]))
    rank = {group: number for number, group in enumerate(sorted(set(owner)))}
    return np.array([rank[group] for group in owner], dtype=np.int64)


def cut_tree(tree: np.ndarray, height: float) -> np.ndarray:
    """Flat clusters 0..k-1 of a linkage tree cut at `height`, as `fcluster(criterion="distance")` gives
    (without its validation, which costs more than the cut for the thousands of tiny trees of a batch)."""
    leaves = len(tree) + 1
    root = np.arange(2 * leaves - 1)
    for row in range(len(tree) - 1, -1, -1):  # top down: a merge below the cut takes its parent's root
        if tree[row, 2] <= height:
            root[int(tree[row, 0])] = root[int(tree[row, 1])] = root[leaves + row]
    return np.unique(root[:leaves], return_inverse=True)[1]


@dataclass
class StoryPairEvidence:
    """The merge rules applied to two whole groups (for `storyclust explain`)."""

    similarity: float  # mean pair similarity across the groups: merging needs `merge_similarity`
    date_agreement: float  # mean date agreement across the groups (already inside `similarity`)
    within: tuple[float, float]  # mean names signal inside each group (NaN for a group of one)
    names: float  # mean names signal across the groups (`names_signal`): what the cohesion rule compares
    cohesion_needed: float  # the cohesion rule: `names` must reach this (0: the rule does not apply)


def story_pair_evidence(features: ItemFeatures, labels: np.ndarray, config: ClusterConfig) -> StoryPairEvidence:
    """The linkage's view of groups 0 and 1 of `labels` (-1: items left out), with the same sums and rules."""
    keep = labels >= 0
    sums = GroupSums.items(features).combined(indicator_of(labels[keep], np.flatnonzero(keep), 2, len(labels)))
    similarity, dates, names = group_signals(sums, np.array([0, 0, 1]), np.array([1, 0, 1]), config)
    within = within_from_self(sums.sizes[:2], names[1:])
    body = np.minimum(1.0, sums.richness * config.full_text_words / LEDE_WORDS)
    needed = config.merge_cohesion * float(np.max(body)) * float(np.min(within)) if not np.isnan(within).any() else 0.0
    pair = (float(within[0]), float(within[1]))
    return StoryPairEvidence(float(similarity[0]), float(dates[0]), pair, float(names[0]), needed)
