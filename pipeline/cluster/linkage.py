"""Time-ordered linkage: groups merge by average linkage, a step of the clock at a time, with the stories built
so far as whole groups; the order comes from `pipeline.timeline.merge_steps`.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from pipeline.arrays import members_by_part, unique_values
from pipeline.cluster.cohesion import cohesive_linkage, too_loose, upper_pairs, within_from_self
from pipeline.cluster.groupsums import (
    LEDE_WORDS,
    GroupSums,
    StoryRows,
    all_group_similarities,
    group_similarity_and_names,
)
from pipeline.config import ClusterConfig
from pipeline.similarity import EvidenceGraph
from pipeline.timeline import DaySpans, reach_days


def merge_in_time_order(
    graph: EvidenceGraph,
    single: GroupSums,
    labels: np.ndarray,
    steps: np.ndarray,
    config: ClusterConfig,
) -> tuple[np.ndarray, int]:
    """Average linkage over groups, one step at a time, each group entering at its step.

    At each step the stories built so far are whole groups and only the pairs touching the step's new
    groups are candidates, as in a run over that step alone on a stored database. No story closes here:
    time is evidence in the pair score (`pipeline.timeline`), not a gate. So a story grows as the news did, and a late report can join it but not pull its early reports apart: measured on
    uci-news-head (100 items a step), BCubed F1 0.822 against 0.790 for one linkage over the whole batch.
    """
    groups = int(labels.max(initial=-1) + 1)
    if groups <= 1:
        return labels, 0
    group_step = np.zeros(groups, dtype=np.int64)
    np.maximum.at(group_step, labels, steps)
    left, right = _distinct_pairs(labels[graph.rows], labels[graph.cols], groups)
    pair_step = np.maximum(group_step[left], group_step[right])
    # The story of each group, named by its smallest group id: a group points to the story it joined, and
    # that one to the story it joined in turn, up to a story that joined none (`_stories`).
    story = np.arange(groups)
    # The current sums of each story: summing a big story's groups again at every step is what would cost.
    rows = StoryRows.of_groups(single, labels, groups)
    # Each story's span of dates: two stories of dated reports whose spans lie further apart than the dates
    # can agree for a join are not worth a linkage (`timeline.DaySpans`: it cannot pass, so nothing changes).
    spans = DaySpans.of(graph.features.dates, labels, groups, reach_days(config))
    for pairs in members_by_part(pair_step, np.bincount(pair_step) > 0):
        ends = _stories(story, np.concatenate([left[pairs], right[pairs]]))  # one walk for both ends
        a, b = ends[: len(pairs)], ends[len(pairs) :]
        keep = (a != b) & ~spans.apart(a, b)
        if not keep.any():
            continue
        involved, local = np.unique(np.r_[a[keep], b[keep]], return_inverse=True)
        order = np.argsort(rows.merged[involved], kind="stable")  # stories of one group first, then the others
        position = np.empty(len(involved), dtype=np.int64)
        position[order] = np.arange(len(involved))
        step_sums = rows.take(involved[order])
        pairs_kept = int(keep.sum())
        local = position[local]
        joined = _average_linkage(step_sums, local[:pairs_kept], local[pairs_kept:], config)
        sets = members_by_part(joined, np.bincount(joined) > 1)
        if not sets:
            continue
        together = np.concatenate(sets)  # each set's stories, as positions in the step's sums
        bounds = np.zeros(len(sets) + 1, dtype=np.int64)
        np.cumsum([len(stories) for stories in sets], out=bounds[1:])
        union = sparse.csr_matrix(
            (np.ones(len(together), dtype=np.float32), together, bounds), shape=(len(sets), len(involved))
        )
        joined_stories = involved[order[together]]
        survivors = np.minimum.reduceat(joined_stories, bounds[:-1])
        survivor_of = np.repeat(survivors, np.diff(bounds))
        absorbed = joined_stories != survivor_of
        story[joined_stories[absorbed]] = survivor_of[absorbed]
        spans.merge(survivors, joined_stories, bounds)
        rows.merge(survivors, joined_stories[absorbed], step_sums.combined(union))
    merged = _stories(story, labels)
    return merged, groups - len(unique_values(merged))


def _stories(story: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The current story of each of `groups`: follow the pointers of `story` up to a story that points to
    itself, and point the groups straight at it for the next time."""
    current = story[groups]
    while True:
        further = story[current]
        if np.array_equal(further, current):
            break
        current = further
    story[groups] = current
    return current


def _average_linkage(sums: GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """A label per group of `sums`: average linkage up to `merge_similarity`, candidates `left`-`right`,
    where two groups of several members merge only if they are nearly as alike as each is within
    (`merge_cohesion`, see `cohesive_linkage`)."""
    groups = len(sums.sizes)
    left, right = _distinct_pairs(left, right, groups)
    pair_similarity, pair_names = group_similarity_and_names(sums, left, right, config)
    strong = pair_similarity >= config.merge_similarity
    count, component = components(left[strong], right[strong], groups)
    result = component.copy()
    if count == groups:  # no pair passes: nothing merges
        return result
    next_label = count
    # Average linkage can only merge along a pair of groups whose own average passes the threshold, so it
    # runs per connected component of the strong pairs. It needs the within-similarity of each linked group
    # of several members (its pairs with itself; a group of one has none) and, in a part of more than two
    # groups, all their pair similarities: one vectorized call for all of them but the largest parts' (a
    # call per part costs more in overhead than in arithmetic). A part of two groups is one decision, taken
    # for all such parts at once.
    sizes = np.bincount(component)
    parts = members_by_part(component, sizes > 2)
    small = [part for part in parts if len(part) <= _SMALL_PART]
    large = [part for part in parts if len(part) > _SMALL_PART]
    pairs = [upper_pairs(len(part)) for part in small]
    linked_groups = np.flatnonzero((sizes[component] > 1) & (sums.sizes > 1))
    scores, names = group_similarity_and_names(
        sums,
        np.concatenate([linked_groups] + [part[i] for part, (i, _) in zip(small, pairs, strict=True)]),
        np.concatenate([linked_groups] + [part[j] for part, (_, j) in zip(small, pairs, strict=True)]),
        config,
    )
    within = np.full(groups, np.nan)  # of the names signal: the cohesion rule's
    within[linked_groups] = within_from_self(sums.sizes[linked_groups], names[: len(linked_groups)])
    body = np.minimum(1.0, sums.richness * config.full_text_words / LEDE_WORDS)
    if (sizes == 2).any():
        a, b = left[strong], right[strong]
        pairs_of_two = sizes[component[a]] == 2
        a, b, across = a[pairs_of_two], b[pairs_of_two], pair_names[strong][pairs_of_two]
        apart = too_loose(across, within[a], within[b], body[a], body[b], config.merge_cohesion)
        result[b[apart]] = next_label + np.arange(int(apart.sum()))
        next_label += int(apart.sum())
    bounds = len(linked_groups) + np.cumsum([0] + [len(i) for i, _ in pairs])
    condensed = [(scores[bounds[k] : bounds[k + 1]], names[bounds[k] : bounds[k + 1]]) for k in range(len(small))]
    condensed += [all_group_similarities(sums, part, config, names=True) for part in large]
    for members, (part_similarity, part_names) in zip(small + large, condensed, strict=True):
        flat = cohesive_linkage(
            part_similarity,
            sums.sizes[members].astype(np.float64),
            within[members],
            body[members].astype(np.float64),
            config.merge_similarity,
            config.merge_cohesion,
            part_names,
        )
        if flat.max() > 0:
            result[members[flat > 0]] = flat[flat > 0] - 1 + next_label
            next_label += int(flat.max())
    return result


def components(left: np.ndarray, right: np.ndarray, nodes: int) -> tuple[int, np.ndarray]:
    """The connected components of a graph with these edges, numbered as scipy's `connected_components`
    numbers them (in the order of their first node): a union-find over the few edges of a merge step,
    where scipy's checks of the graph cost more than the walk."""
    if not len(left):  # no edges (no pair of the step passes): each node alone, in order
        return nodes, np.arange(nodes, dtype=np.int32)
    parent = list(range(nodes))
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        while parent[a] != a:
            parent[a] = a = parent[parent[a]]
        while parent[b] != b:
            parent[b] = b = parent[parent[b]]
        parent[max(a, b)] = min(a, b)
    number: dict[int, int] = {}
    labels = []
    for node in range(nodes):
        root = node
        while parent[root] != root:
            root = parent[root]
        parent[node] = root
        labels.append(number.setdefault(root, len(number)))
    return len(number), np.array(labels, dtype=np.int32)


def _distinct_pairs(left: np.ndarray, right: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each unordered pair of different groups once, as (smaller, larger), sorted."""
    different = left != right
    keys = unique_values(np.minimum(left, right)[different] * groups + np.maximum(left, right)[different])
    return keys // groups, keys % groups


_SMALL_PART = 64  # groups: up to this, a part's pair similarities are computed with the others of its step
