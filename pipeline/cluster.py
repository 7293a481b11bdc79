"""Cluster stage: turn the evidence graph into stories.

1. HDBSCAN on the sparse `density` distances, per connected component of the candidate graph: dense cores
   of reports of one event (copies, close rewrites).
2. A noise item joins the core of its most similar neighbour when that evidence is strong enough; else it
   stays alone (a one-item story, never dropped). Stored stories take no item this way.
3. Every member of a core must stand with the core as a whole: mean similarity to the other members at
   least `merge_similarity`, the merge rule. In a run of a handful of items HDBSCAN's density is no
   evidence, and this is what keeps a core from chaining two events of one kind.
4. Cores are merged by average linkage on `similarity` while the average over all their member pairs
   stays at or above `merge_similarity`, and two stories of full texts merge only if they name about the
   same names across as each does within (`merge_cohesion`, on the names signal): two halves of one
   event do, two events of one topic do not. Linkage runs per connected component of the thresholded
   group graph and stays small. The cores are HDBSCAN's leaves, so that this rule decides every join.
5. Step 4 follows publication time: the items enter in clock slices of `merge_step_minutes`, cores cut
   at slice edges, and at each step the stories built so far take part as whole groups (closed after
   `window_hours` without a new report). A story grows as the news did, so one run over a day's file
   builds the stories that a run every few minutes would have built, whatever else the file holds.
   Undated items come last, in one step, as news of the batch's newest date.

In an incremental run the members of stories already stored come in as fixed groups (`fixed`): only the
new items go through steps 1 to 3, and steps 4 and 5 treat each stored story as one group. A new item
thus joins a story by the same rule that built the story in one run (the average over all its members),
and two stored stories join only when the new reports make their average pass the threshold.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from pipeline.arrays import unique_values
from pipeline.config import ClusterConfig
from pipeline.eventdates import CHANNELS, DateEvidence
from pipeline.similarity import EvidenceGraph, ItemFeatures, collector_paused, pair_cosines, pair_score


@dataclass
class Clustering:
    """A story label per item (0..k-1, in order of first appearance) and counters."""

    labels: np.ndarray
    cores: int
    attached: int
    merges: int


def cluster(
    graph: EvidenceGraph, config: ClusterConfig, fixed: np.ndarray | None = None, window_hours: float = np.inf
) -> Clustering:
    """Label every item; `fixed[i] >= 0` puts item i in a given group that stays whole (-1: free item).

    A story takes no new report more than `window_hours` after its last one.
    """
    fixed = np.full(graph.n, -1, dtype=np.int64) if fixed is None else np.asarray(fixed, dtype=np.int64)
    with collector_paused():
        cores, attached = _density_cores(graph, config, fixed)
        single = _GroupSums.items(graph.features)
        cores = _cohesive_cores(single, cores, fixed, config)
        steps = merge_steps(graph.features.timestamps, fixed, config.merge_step_minutes)
        _, pieces = np.unique(cores * (steps.max() + 1) + steps, return_inverse=True)  # cores cut at step edges
        merged, merges = _merge_in_time_order(graph, single, pieces, steps, config, window_hours)
    return Clustering(labels=_relabel(merged), cores=int(cores.max(initial=-1) + 1), attached=attached, merges=merges)


def _density_cores(graph: EvidenceGraph, config: ClusterConfig, fixed: np.ndarray) -> tuple[np.ndarray, int]:
    """HDBSCAN labels of the free items (noise gets its own label), noise attached to strong neighbours."""
    free = fixed < 0
    labels = fixed.copy()
    _, labels[~free] = np.unique(fixed[~free], return_inverse=True)
    next_label = int(labels.max(initial=-1) + 1)
    distance = graph.matrix(np.maximum(1e-6, 2.0 - 2.0 * np.clip(graph.density, 0.0, 1.0)))
    free_index = np.flatnonzero(free)
    free_distance = _among(distance, free_index)
    count, component = connected_components(free_distance, directed=False)
    sizes = np.bincount(component, minlength=count)
    for inside in members_by_part(component, sizes > config.min_cluster_size):
        found = sparse_hdbscan(
            _among(free_distance, inside), config.min_cluster_size, config.min_samples, selection="leaf"
        )
        clustered = found >= 0
        labels[free_index[inside[clustered]]] = found[clustered] + next_label
        next_label += int(found.max(initial=-1) + 1)

    # Noise joins this run's cores only: a stored story takes a new item by the merge rule alone (its mean
    # similarity over all members), as a story built earlier in one run does.
    attached = _attach_noise(graph.matrix(graph.density), labels, config.attach_similarity, hosts=free)
    noise = np.flatnonzero(labels < 0)
    labels[noise] = next_label + np.arange(len(noise))
    return labels, attached


def _among(matrix: sparse.csr_matrix, items: np.ndarray) -> sparse.csr_matrix:
    """The rows and columns of these (sorted, distinct) items; the matrix itself when they are all of them
    (a run of new items only, one connected batch: the copies cost a second at 200k items)."""
    return matrix if len(items) == matrix.shape[0] else matrix[items][:, items].tocsr()


def _cohesive_cores(single: _GroupSums, labels: np.ndarray, fixed: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """Each free member of a core must stand with the rest of its core: mean similarity to them at least
    `merge_similarity`, the rule of the merge stage, so a core is never looser than a merge could make it
    and a pair of reports of two events cannot ride into a story on HDBSCAN's density alone (which, in a
    run of a handful of items, is no evidence). Members that do not leave as one-item groups; then the
    members of the cores that lost some are checked again (a core that lost none stands as it did)."""
    labels = labels.copy()
    next_label = int(labels.max(initial=-1) + 1)
    changed = np.ones(next_label, dtype=bool)
    for _ in range(5):
        sizes = np.bincount(labels)
        check = np.flatnonzero((fixed < 0) & (sizes[labels] > 1) & changed[labels])
        if not len(check):
            break
        mean, _ = member_fit(single, labels, check, config)
        out = check[mean < config.merge_similarity]
        if not len(out):
            break
        changed = np.zeros(next_label + len(out), dtype=bool)
        changed[labels[out]] = True
        labels[out] = next_label + np.arange(len(out))
        next_label += len(out)
    return labels


def member_fit(
    single: _GroupSums | ItemFeatures, labels: np.ndarray, items: np.ndarray, config: ClusterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Mean similarity, and mean date agreement, of each of `items` with the other members of its group
    (NaN for a group of one): exactly, from the group's sums less the item's own. `single`: the items'
    own sums (`_GroupSums.items`), or their features.

    A chunk of items at a time: each item needs its own copy of the rest of its group, and 200k such
    rows at once cost more in fresh memory than in arithmetic.
    """
    groups = int(labels.max(initial=-1) + 1)
    if isinstance(single, ItemFeatures):
        single = _GroupSums.items(single)
    needed, group_of_item = np.unique(labels[items], return_inverse=True)  # only the groups asked about
    rank = np.full(groups, -1, dtype=np.int64)
    rank[needed] = np.arange(len(needed))
    members = np.flatnonzero(rank[labels] >= 0)
    whole = single.combined(_indicator_of(rank[labels[members]], members, len(needed), len(labels)))
    for rows in (whole.backward, whole.mention_backward):
        if rows is not None:
            rows.sort_indices()  # for the lookups of `_rest_where`
    similarity, dates = np.empty(len(items)), np.empty(len(items))
    for start in range(0, len(items), _FIT_CHUNK):
        part = slice(start, start + _FIT_CHUNK)
        own = single.select(items[part])
        rest = _rest_of_groups(single, whole, own, items[part], group_of_item[part])
        alone = rest.sizes < 0.5
        rest.sizes = np.maximum(rest.sizes, 1.0)  # a group of one: no rest, reported as NaN
        each = np.arange(len(own.sizes))
        fit, agreement = _similarity_and_dates(own, each, each, config, rest)
        similarity[part], dates[part] = np.where(alone, np.nan, fit), np.where(alone, np.nan, agreement)
    return similarity, dates


_FIT_CHUNK = 16384  # items: their arrays stay under 32 MB, which the allocator reuses instead of mapping anew


def _rest_of_groups(
    single: _GroupSums, whole: _GroupSums, own: _GroupSums, items: np.ndarray, group_of_item: np.ndarray
) -> _GroupSums:
    """Each item's group less the item, `whole.select(group_of_item).minus(own)`, as far as the pair of
    the item with it needs: its sparse sums on the right side of the pair only (`backward`), and only
    where the item's own left side has entries, since nothing else is multiplied. A big story's row,
    copied for each of its members, is what would cost."""
    values: dict[str, Any] = {name: getattr(whole, name)[group_of_item] - getattr(own, name) for name in _DENSE_FIELDS}
    for left_name, right_name in _SPARSE_PAIRS:
        left = getattr(own, left_name)
        values[left_name] = None
        values[right_name] = (
            None if left is None else _rest_where(left, whole, single, right_name, items, group_of_item)
        )
    return _GroupSums(**values, layout=single.layout)


def _rest_where(
    left: sparse.csr_matrix, whole: _GroupSums, single: _GroupSums, name: str, items: np.ndarray, groups: np.ndarray
) -> sparse.csr_matrix:
    """`whole.<name>[groups] − single.<name>[items]` (zeros dropped, as a subtraction drops them) at the
    entries of `left`, one row per item; values looked up by binary search in sorted rows."""
    if not left.nnz:  # scipy returns a sparse matrix, not an empty array, for an empty fancy index
        return sparse.csr_matrix(left.shape, dtype=left.dtype)
    rows = np.repeat(np.arange(left.shape[0]), np.diff(left.indptr))
    columns = left.indices
    rest = (
        np.asarray(getattr(whole, name)[groups[rows], columns]).ravel()
        - np.asarray(getattr(single, name)[items[rows], columns]).ravel()
    )
    kept = rest != 0
    indptr = np.zeros(left.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[kept], minlength=left.shape[0]), out=indptr[1:])
    return sparse.csr_matrix((rest[kept], columns[kept], indptr), shape=left.shape)


def _indicator_of(groups_of: np.ndarray, items: np.ndarray, groups: int, n: int) -> sparse.csr_matrix:
    """Row g marks `items[k]` wherever `groups_of[k]` is g."""
    return sparse.csr_matrix((np.ones(len(items), dtype=np.float32), (groups_of, items)), shape=(groups, n))


def _indicator(labels: np.ndarray, groups: int) -> sparse.csr_matrix:
    """Row g marks the items of group g."""
    return _indicator_of(labels, np.arange(len(labels)), groups, len(labels))


def sparse_hdbscan(
    distance: sparse.csr_matrix, min_cluster_size: int, min_samples: int, selection: str = "eom"
) -> np.ndarray:
    """HDBSCAN on a connected sparse distance graph, in O(edges · log).

    `selection`: hdbscan's cluster_selection_method. The cluster stage takes the leaves of the condensed
    tree: its cores are the densest groups, and whether two of them are one event is the merge's decision,
    under the cohesion rule. The excess-of-mass choice often takes a whole topic as one cluster (two
    events of one kind, dense enough between them), which no later rule undoes: on ECB+ 713 of the 981
    wrongly joined pairs were already inside such cores.

    HDBSCAN is single linkage on mutual reachability distances, so only their minimum spanning tree
    matters: we build it with scipy and run hdbscan's own tree condensation and cluster selection on it.
    `tests/test_cluster.py` checks the labels against `hdbscan.HDBSCAN` on the full matrix.
    """
    n = distance.shape[0]
    min_samples = max(1, min(min_samples, n - 1))
    core = _kth_smallest_per_row(distance, min_samples)
    upper = sparse.triu(distance, k=1).tocoo()
    reach = np.maximum(upper.data, np.maximum(core[upper.row], core[upper.col]))
    tree = minimum_spanning_tree(sparse.csr_matrix((reach, (upper.row, upper.col)), shape=(n, n))).tocoo()
    # From here on exactly what hdbscan's sparse path does after its own spanning tree (its per-edge loop
    # before that costs seconds at 200k items): edges by weight, single-linkage tree, condensed tree, labels.
    from hdbscan.hdbscan_ import _tree_to_labels

    edges = np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)
    edges = edges[np.argsort(edges[:, 2], kind="stable")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = single_linkage_tree(edges)
        labels, _, _ = _tree_to_labels(None, tree, min_cluster_size, cluster_selection_method=selection)[:3]
    return np.asarray(labels)


def single_linkage_tree(edges: np.ndarray) -> np.ndarray:
    """hdbscan's `label`: the single-linkage tree of spanning-tree edges sorted by weight, one row per edge,
    [cluster of one end, cluster of the other, weight, size of the union] (cluster n + k is edge k's union).

    The same union-find over plain lists: hdbscan's compiled loop indexes a numpy array through Python
    on every step (2.5 s at 200k items).
    """
    n = len(edges) + 1
    parent = list(range(2 * n - 1))
    size = [1] * n + [0] * (n - 1)
    one_end, other_end, union_size = edges[:, 0].astype(np.intp).tolist(), edges[:, 1].astype(np.intp).tolist(), []
    for step in range(n - 1):
        a, b = one_end[step], other_end[step]
        while parent[a] != a:  # halving the path on the way: later finds are short
            parent[a] = a = parent[parent[a]]
        while parent[b] != b:
            parent[b] = b = parent[parent[b]]
        one_end[step], other_end[step] = a, b
        parent[a] = parent[b] = n + step
        size[n + step] = size[a] + size[b]
        union_size.append(size[n + step])
    return np.column_stack([one_end, other_end, edges[:, 2], union_size]).astype(np.float64).reshape(-1, 4)


def _kth_smallest_per_row(matrix: sparse.csr_matrix, k: int) -> np.ndarray:
    """The k-th smallest stored value of each row (inf when a row has fewer), as HDBSCAN's core distance."""
    counts = np.diff(matrix.indptr)
    if k == 1:  # the common case (min_samples 1): a row minimum
        result = np.full(matrix.shape[0], np.inf)
        filled = counts > 0
        result[filled] = np.minimum.reduceat(matrix.data, matrix.indptr[:-1][filled])
        return result
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((matrix.data, rows))
    rank = np.arange(len(order)) - matrix.indptr[rows[order]]
    result = np.full(matrix.shape[0], np.inf)
    pick = order[rank == k - 1]
    result[rows[pick]] = matrix.data[pick]
    return result


def _attach_noise(density: sparse.csr_matrix, labels: np.ndarray, threshold: float, hosts: np.ndarray) -> int:
    """Each noise item, in batch order, joins the group of its densest grouped neighbour if that density
    passes; an item attached this way can take in later ones (measured: order-free variants that attach
    only to HDBSCAN's own groups lose 0.002 BCubed F1 on uci-news-head). Only `hosts` take items in."""
    attached = 0
    for item in np.flatnonzero(labels < 0):
        start, end = density.indptr[item], density.indptr[item + 1]
        neighbours, scores = density.indices[start:end], density.data[start:end]
        grouped = (labels[neighbours] >= 0) & hosts[neighbours]
        if grouped.any():
            best = int(np.argmax(np.where(grouped, scores, -np.inf)))
            if scores[best] >= threshold:
                labels[item] = labels[neighbours[best]]
                attached += 1
    return attached


@dataclass
class _GroupSums:
    """Per-group sums of the item features: enough to average any pair signal over two whole groups.

    Every field is a plain sum, so the sums of a union of groups are the sums of its groups (`combined`).
    The sparse features sit side by side in one matrix, `forward` = [words | names | date cover | date
    mass], and again in `backward` with the two date blocks swapped, so that one elementwise product of
    `forward[a]` and `backward[b]` holds every bilinear signal of the pair (a, b), both date directions
    included, and one sum per block adds them up (`_Layout.block_of`). Two sparse products per union
    instead of one per signal: the merge runs thousands of small steps.
    """

    sizes: np.ndarray
    vectors: np.ndarray
    richness_sums: np.ndarray
    dated: np.ndarray  # groups × date channels: how many members have a date there
    mentioned: np.ndarray  # the same for members whose dates are only mentions
    forward: sparse.csr_matrix | None  # None in sums that are only ever the right side of a pair
    backward: sparse.csr_matrix
    # [date cover | date mass] of the members whose dates are mentions (None: no item's are, as in a stream
    # of dated reports; then no step of the merge builds or multiplies them).
    mention_forward: sparse.csr_matrix | None
    mention_backward: sparse.csr_matrix | None
    layout: _Layout

    @classmethod
    def of(cls, features: ItemFeatures, labels: np.ndarray) -> _GroupSums:
        return cls.items(features).combined(_indicator(labels, int(labels.max(initial=-1) + 1)))

    @classmethod
    def items(cls, features: ItemFeatures) -> _GroupSums:
        """Each item as a group of one (made once, kept in `features.group_sums`)."""
        if features.group_sums is None:
            features.group_sums = cls._of_items(features)
        return features.group_sums

    @classmethod
    def _of_items(cls, features: ItemFeatures) -> _GroupSums:
        dates = features.dates
        layout = _Layout(features.words.shape[1], features.entities.shape[1], dates)
        mentions = sparse.diags(dates.mention.astype(np.float32))
        cover, mass = (mentions @ dates.cover).tocsr(), (mentions @ dates.mass).tocsr()
        mentioned = cover.nnz > 0
        return cls(
            sizes=np.ones(len(features.richness), dtype=np.float32),
            vectors=features.vectors,
            richness_sums=features.richness,
            dated=dates.known.astype(np.float64),
            mentioned=(dates.known & dates.mention[:, None]).astype(np.float64),
            forward=sparse.hstack([features.words, features.entities, dates.cover, dates.mass]).tocsr(),
            backward=sparse.hstack([features.words, features.entities, dates.mass, dates.cover]).tocsr(),
            mention_forward=sparse.hstack([cover, mass]).tocsr() if mentioned else None,
            mention_backward=sparse.hstack([mass, cover]).tocsr() if mentioned else None,
            layout=layout,
        )

    def _values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layout"}

    def minus(self, other: _GroupSums) -> _GroupSums:
        """Row by row, these sums less the other's (a group without some of its members)."""
        values = {k: v if v is None else v - getattr(other, k) for k, v in self._values().items()}
        return _GroupSums(**{k: v.tocsr() if sparse.issparse(v) else v for k, v in values.items()}, layout=self.layout)

    def select(self, groups: np.ndarray) -> _GroupSums:
        """The sums of these groups only, in this order."""
        values = {k: v if v is None else v[groups] for k, v in self._values().items()}
        return _GroupSums(**values, layout=self.layout)

    def combined(self, membership: sparse.csr_matrix) -> _GroupSums:
        """Sums of unions of groups: row k of `membership` marks the groups of union k."""

        def total(matrix: sparse.csr_matrix | None) -> sparse.csr_matrix | None:
            if matrix is None:
                return None
            if not matrix.nnz:  # e.g. no mentions among these groups: skip the product
                return sparse.csr_matrix((membership.shape[0], matrix.shape[1]), dtype=matrix.dtype)
            return (membership @ matrix).tocsr()

        return _GroupSums(
            sizes=membership @ self.sizes,
            vectors=membership @ self.vectors,
            richness_sums=membership @ self.richness_sums,
            dated=membership @ self.dated,
            mentioned=membership @ self.mentioned,
            forward=total(self.forward),
            backward=total(self.backward),
            mention_forward=total(self.mention_forward),
            mention_backward=total(self.mention_backward),
            layout=self.layout,
        )

    @property
    def richness(self) -> np.ndarray:
        return self.richness_sums / self.sizes


_DENSE_FIELDS = ("sizes", "vectors", "richness_sums", "dated", "mentioned")
# Sparse fields in pairs with the same entries in every row (the date blocks swapped), so the same row layout.
_SPARSE_PAIRS = (("forward", "backward"), ("mention_forward", "mention_backward"))


class _StoryRows:
    """The current sums of every story of the merge, one row per story (indexed by story id).

    A story starts with its group's row; a merge gives its survivor a new one. Dense rows are written in
    place; sparse rows go to the end of flat arrays that grow by doubling (the older row of a story stays
    behind until the next growth copies only current rows). A step takes its stories' rows in one gather:
    thousands of steps of a hundred stories each cost little more than the rows they read.
    """

    def __init__(self, sums: _GroupSums) -> None:
        self.layout = sums.layout
        self.dense = {name: getattr(sums, name) for name in _DENSE_FIELDS}  # taken over, written in place
        self.merged = np.zeros(len(sums.sizes), dtype=bool)  # has a row made by a merge
        self.alive = np.ones(len(sums.sizes), dtype=bool)  # not merged into another story
        self.sparse = {
            names: _FlatRows([getattr(sums, name) for name in names])
            for names in _SPARSE_PAIRS
            if getattr(sums, names[0]) is not None
        }

    def take(self, stories: np.ndarray) -> _GroupSums:
        """The sums of these stories, in this order."""
        values: dict[str, Any] = {name: dense[stories] for name, dense in self.dense.items()}
        for names in _SPARSE_PAIRS:
            rows = self.sparse.get(names)
            values |= dict(zip(names, (None, None) if rows is None else rows.take(stories), strict=True))
        return _GroupSums(**values, layout=self.layout)

    def merge(self, survivors: np.ndarray, absorbed: np.ndarray, sums: _GroupSums) -> None:
        """Row k of `sums` becomes the row of story `survivors[k]`; the `absorbed` stories are gone."""
        self.alive[absorbed] = False
        self.merged[survivors] = True
        for name, dense in self.dense.items():
            dense[survivors] = getattr(sums, name)
        for names, rows in self.sparse.items():
            rows.replace(survivors, [getattr(sums, name) for name in names], self.alive)


class _FlatRows:
    """Rows of sparse matrices that have the same row layout: row k of each at `[start[k] : start[k] +
    length[k]]` of its flat `indices` and `data` (see `_StoryRows`)."""

    def __init__(self, matrices: list[sparse.csr_matrix]) -> None:
        layout = matrices[0].indptr
        if any(not np.array_equal(matrix.indptr, layout) for matrix in matrices):
            raise ValueError("matrices of different row layouts")
        self.columns = matrices[0].shape[1]
        self.start = layout[:-1].astype(np.int64)
        self.length = np.diff(layout).astype(np.int64)
        self.flat = [(matrix.indices, matrix.data) for matrix in matrices]
        self.end = int(layout[-1])  # used part of the flat arrays

    def take(self, rows: np.ndarray) -> list[sparse.csr_matrix]:
        where, indptr = _row_positions(self.start[rows], self.length[rows])
        shape = (len(rows), self.columns)
        return [sparse.csr_matrix((data[where], indices[where], indptr), shape=shape) for indices, data in self.flat]

    def replace(self, rows: np.ndarray, matrices: list[sparse.csr_matrix], alive: np.ndarray) -> None:
        """New rows for `rows`: row k of each matrix (the others of `alive` keep theirs)."""
        added = matrices[0].nnz
        if self.end + added > len(self.flat[0][0]):
            self._grow(added, alive)
        for (indices, data), matrix in zip(self.flat, matrices, strict=True):
            indices[self.end : self.end + added] = matrix.indices
            data[self.end : self.end + added] = matrix.data
        self.start[rows] = self.end + matrices[0].indptr[:-1]
        self.length[rows] = np.diff(matrices[0].indptr)
        self.end += added

    def _grow(self, needed: int, alive: np.ndarray) -> None:
        """Copy the rows of `alive` to arrays of twice their size (and room for `needed` more)."""
        current = np.flatnonzero(alive)
        where, indptr = _row_positions(self.start[current], self.length[current])
        size = 2 * (len(where) + needed)
        grown = []
        for indices, data in self.flat:
            more_indices, more_data = np.empty(size, dtype=indices.dtype), np.empty(size, dtype=data.dtype)
            more_indices[: len(where)], more_data[: len(where)] = indices[where], data[where]
            grown.append((more_indices, more_data))
        self.flat = grown
        self.start[current] = indptr[:-1]
        self.end = len(where)


def _row_positions(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where rows of these starts and lengths lie in flat arrays, one after the other, and their indptr."""
    indptr = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1]), indptr


def _rows_of(matrix: sparse.csr_matrix, rows: np.ndarray, last: tuple[int, ...]) -> sparse.csr_matrix:
    """`matrix[rows]` and one row more, with entries in columns `last` and no values: gathered with numpy
    (scipy's row selection costs more in checks than in copying for the hundred rows of a merge step)."""
    starts = matrix.indptr[rows]
    where, indptr = _row_positions(starts, matrix.indptr[rows + 1] - starts)
    indices = np.concatenate([matrix.indices[where], np.array(last, dtype=matrix.indices.dtype)])
    data = np.concatenate([matrix.data[where], np.zeros(len(last), dtype=matrix.dtype)])
    indptr = np.append(indptr, len(indices))
    return sparse.csr_matrix((data, indices, indptr), shape=(len(rows) + 1, matrix.shape[1]))


class _Layout:
    """Which columns of `forward` ⊙ `backward` sum to which signal (`block_of`, of `blocks`)."""

    def __init__(self, words: int, names: int, dates: DateEvidence) -> None:
        self.channels = channels = len(CHANNELS)
        # Blocks of forward ⊙ backward: 0 words, 1 names, 2.. cover·mass per channel, 2+k.. mass·cover.
        blocks = [np.zeros(words), np.ones(names), 2 + dates.channel, 2 + channels + dates.channel]
        self.block_of, self.blocks = np.concatenate(blocks).astype(np.intp), 2 + 2 * channels
        self.mention_block_of = np.r_[dates.channel, channels + dates.channel].astype(np.intp)
        self.mention_blocks = 2 * channels


def block_products(
    left_matrix: sparse.csr_matrix,
    right_matrix: sparse.csr_matrix,
    block_of: np.ndarray,
    blocks: int,
    rows: np.ndarray,
    cols: np.ndarray,
    chunk: int = 262144,
) -> np.ndarray:
    """Pairs × blocks: `left_matrix[rows[k]] · right_matrix[cols[k]]` summed within each column block
    (`block_of[column]`), in float32 and in the order scipy lists the products.

    scipy multiplies two matrices whose rows are all sorted by merging rows, and any others by scattering
    them, which lists a row's products in the reverse order of its left row. So that a pair's sums never
    depend on the other pairs of the call, the right side gets one more row that is not sorted (and has no
    products): the scatter, always. It was the path of every call on real batches already (rows of merged
    groups are not sorted).
    """
    out = np.zeros((len(rows), blocks), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        r, c = rows[start : start + chunk], cols[start : start + chunk]
        products = _rows_of(left_matrix, r, ()).multiply(_rows_of(right_matrix, c, (1, 0)))
        pair = np.repeat(np.arange(len(r) + 1), np.diff(products.indptr))
        sums = np.zeros((len(r) + 1) * blocks, dtype=products.dtype)
        np.add.at(sums, pair * blocks + block_of[products.indices], products.data)  # in order, one at a time
        out[start : start + len(r)] = sums.reshape(len(r) + 1, blocks)[:-1]
    return out


def _pair_signals(sums: _GroupSums, left: np.ndarray, right: np.ndarray, other: _GroupSums) -> tuple[np.ndarray, ...]:
    """Mean words and names TF-IDF products and mean date agreement over all member pairs of two groups,
    groups `left` of `sums` and `right` of `other`."""
    layout = sums.layout
    k = layout.channels
    sizes = (sums.sizes[left] * other.sizes[right]).astype(np.float64)
    products = block_products(sums.forward, other.backward, layout.block_of, layout.blocks, left, right)
    agree = (products[:, 2 : 2 + k] + products[:, 2 + k : 2 + 2 * k]) / 2
    compared = sums.dated[left] * other.dated[right] - sums.mentioned[left] * other.mentioned[right]
    if sums.mention_forward is not None and sums.mention_forward.nnz:  # none: all products 0
        both_mentions = block_products(
            sums.mention_forward, other.mention_backward, layout.mention_block_of, layout.mention_blocks, left, right
        )
        agree -= (both_mentions[:, :k] + both_mentions[:, k:]) / 2
    dates = np.prod(1.0 - np.clip(compared - agree, 0.0, None) / sizes[:, None], axis=1)
    return products[:, 0] / sizes, products[:, 1] / sizes, dates


def group_date_agreement(sums: _GroupSums, left: np.ndarray, right: np.ndarray, dense: bool = False) -> np.ndarray:
    """Mean `date_agreement` over all member pairs of two groups, exactly per channel (channels multiply).

    A pair counts 1 unless it is compared (both dated, not both mentions), so the mean is
    1 − (compared pairs − their agreement)/|A||B|; compared pairs are all dated pairs less the pairs of two
    mentions, and the agreement of a pair is bilinear in the members' date vectors.
    `dense`: all pairs of `left` × `right` as a matrix instead of the listed pairs.
    """
    if dense:
        rows, cols = np.repeat(left, len(right)), np.tile(right, len(left))
        return group_date_agreement(sums, rows, cols).reshape(len(left), len(right))
    return _pair_signals(sums, left, right, sums)[2]


def _names_signal(
    embedding: np.ndarray,
    entities: np.ndarray,
    richness: tuple[np.ndarray, np.ndarray],
    dates: np.ndarray,
    config: ClusterConfig,
) -> np.ndarray:
    """The signal of the cohesion rule: how alike two groups are in the names and numbers they report
    (the entity TF-IDF products, `NAMES_WEIGHT` of it, the rest the embedding), for texts with a body;
    for bare headlines, which name too few to compare, mostly the embedding, in proportion to their words
    (`LEDE_WORDS`). Times the date agreement, as `similarity`.

    Two events of one topic share their topic's words and the sentence embedding sees the topic; what
    differs is who, where and how many. As a ratio of across to within, the names need no scale of their
    own: both sides are measured on the same texts (over the merge decisions of ECB+, across/within of
    the names separates same-event from other-event pairs of groups with AUC 0.92, of the embedding 0.80).
    """
    names = NAMES_WEIGHT * np.minimum(1.0, np.minimum(*richness) * config.full_text_words / LEDE_WORDS)
    return ((1 - names) * embedding + names * entities) * dates


def group_similarity_and_names(
    sums: _GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """`group_similarity` and the cohesion rule's signal (`_names_signal`) of the same pairs, in one pass."""
    similarity, _, names = _signals(sums, left, right, config)
    return similarity, names


def group_similarity(sums: _GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """Mean pair similarity between groups `left[k]` and `right[k]`, exactly, from per-group sums.

    Cosine and TF-IDF products are bilinear, so the mean over all |A|·|B| pairs is the product of the
    groups' summed vectors divided by |A|·|B|: no pair needs to be in the candidate graph.
    """
    return _similarity_and_dates(sums, left, right, config)[0]


def _similarity_and_dates(
    sums: _GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig, other: _GroupSums | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`group_similarity` and `group_date_agreement` of the same pairs, from one pass (`right` indexes
    `other` when given)."""
    similarity, dates, _ = _signals(sums, left, right, config, other)
    return similarity, dates


def _signals(
    sums: _GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig, other: _GroupSums | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity, date agreement and names signal of the pairs (`right` indexes `other` when given)."""
    other = sums if other is None else other
    embedding = pair_cosines(sums.vectors, left, right, col_vectors=other.vectors)
    embedding /= sums.sizes[left] * other.sizes[right]
    words, entities, dates = _pair_signals(sums, left, right, other)
    richness = (sums.richness[left], other.richness[right])
    similarity = pair_score(embedding, words, entities, richness, dates, config)
    return similarity, dates, _names_signal(embedding, entities, richness, dates, config)


def all_group_similarities(
    sums: _GroupSums, groups: np.ndarray, config: ClusterConfig, block_rows: int = 512, names: bool = False
) -> Any:
    """`group_similarity` for every pair of the given groups, as a condensed vector (scipy's order); with
    `names`, also the cohesion rule's signal (`_names_signal`), as a second one.

    The upper pairs of a block of rows at a time, so a part of m groups needs the m·(m-1)/2 results and
    no m×m temporaries.
    """
    m = len(groups)
    parts = []
    for start in range(0, m - 1, block_rows):
        rows = np.arange(start, min(m - 1, start + block_rows))
        counts = m - 1 - rows  # row r pairs with r+1 .. m-1: row-major, the condensed order
        left = np.repeat(rows, counts)
        right = np.arange(len(left)) - np.repeat(np.cumsum(counts) - counts, counts) + left + 1
        parts.append(group_similarity_and_names(sums, groups[left], groups[right], config))
    similarity = np.concatenate([part[0] for part in parts]) if parts else np.zeros(0)
    names_signal = np.concatenate([part[1] for part in parts]) if parts else np.zeros(0)
    return (similarity, names_signal) if names else similarity


def merge_steps(hours: np.ndarray, fixed: np.ndarray, step_minutes: float) -> np.ndarray:
    """The merge step of each item: stored items first, then the new ones by publication time in steps of
    `step_minutes` of the clock (0: all at once).

    Steps are slices of the clock, not counts of items, so the steps an item shares do not depend on what
    else arrived (in a firehose, 100 items are three minutes; alone, three months). Undated new items
    share one last step: without a date there is no order to follow.
    """
    steps = np.zeros(len(hours), dtype=np.int64)
    new = np.flatnonzero(fixed < 0)
    dated = new[~np.isnan(hours[new])]
    if step_minutes > 0 and len(dated):
        _, steps[dated] = np.unique(np.floor(hours[dated] * 60.0 / step_minutes), return_inverse=True)
        steps[new[np.isnan(hours[new])]] = steps[dated].max() + 1
    return steps


def _merge_in_time_order(
    graph: EvidenceGraph,
    single: _GroupSums,
    labels: np.ndarray,
    steps: np.ndarray,
    config: ClusterConfig,
    window_hours: float,
) -> tuple[np.ndarray, int]:
    """Average linkage over groups, one step at a time, each group entering at its step.

    At each step the stories built so far are whole groups and only the pairs touching the step's new
    groups are candidates, as in a run over that step alone on a stored database; a story whose last
    report is more than `window_hours` older than the step is closed, as there. So a story grows as the
    news did, and a late report can join it but not pull its early reports apart: measured on
    uci-news-head (100 items a step), BCubed F1 0.822 against 0.790 for one linkage over the whole batch.
    """
    groups = int(labels.max(initial=-1) + 1)
    if groups <= 1:
        return labels, 0
    hours = graph.features.timestamps
    group_step = np.zeros(groups, dtype=np.int64)
    np.maximum.at(group_step, labels, steps)
    last_hours = np.full(groups, -np.inf)
    np.fmax.at(last_hours, labels, np.where(np.isnan(hours), np.inf, hours))  # undated: never closes
    step_start = np.full(int(steps.max()) + 1, np.inf)
    np.fmin.at(step_start, steps, np.where(np.isnan(hours), np.inf, hours))
    # Undated items arrive with the newest dated one (they are news of now): stories closed by then take
    # none of them. Without any date in the batch, no story closes.
    newest = np.nanmax(hours) if (~np.isnan(hours)).any() else -np.inf
    step_start[np.isinf(step_start)] = newest

    left, right = _distinct_pairs(labels[graph.rows], labels[graph.cols], groups)
    pair_step = np.maximum(group_step[left], group_step[right])
    # The story of each group, named by its smallest group id: a group points to the story it joined, and
    # that one to the story it joined in turn, up to a story that joined none (`_stories`).
    story = np.arange(groups)
    # The current sums of each story: summing a big story's groups again at every step is what would cost.
    rows = _StoryRows(single.combined(_indicator(labels, groups)))
    for pairs in members_by_part(pair_step, np.bincount(pair_step) > 0):
        a, b = _stories(story, left[pairs]), _stories(story, right[pairs])
        opened = step_start[pair_step[pairs[0]]] - window_hours
        keep = (a != b) & (last_hours[a] >= opened) & (last_hours[b] >= opened)
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
        last_hours[survivors] = np.maximum.reduceat(last_hours[joined_stories], bounds[:-1])
        survivor_of = np.repeat(survivors, np.diff(bounds))
        absorbed = joined_stories != survivor_of
        story[joined_stories[absorbed]] = survivor_of[absorbed]
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


def _average_linkage(sums: _GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """A label per group of `sums`: average linkage up to `merge_similarity`, candidates `left`-`right`,
    where two groups of several members merge only if they are nearly as alike as each is within
    (`merge_cohesion`, see `_cohesive_linkage`)."""
    groups = len(sums.sizes)
    left, right = _distinct_pairs(left, right, groups)
    pair_similarity, pair_names = group_similarity_and_names(sums, left, right, config)
    strong = pair_similarity >= config.merge_similarity
    count, component = _components(left[strong], right[strong], groups)
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
    pairs = [_upper_pairs(len(part)) for part in small]
    linked_groups = np.flatnonzero((sizes[component] > 1) & (sums.sizes > 1))
    scores, names = group_similarity_and_names(
        sums,
        np.concatenate([linked_groups] + [part[i] for part, (i, _) in zip(small, pairs, strict=True)]),
        np.concatenate([linked_groups] + [part[j] for part, (_, j) in zip(small, pairs, strict=True)]),
        config,
    )
    within = np.full(groups, np.nan)  # of the names signal: the cohesion rule's
    within[linked_groups] = _within_from_self(sums.sizes[linked_groups], names[: len(linked_groups)])
    body = np.minimum(1.0, sums.richness * config.full_text_words / LEDE_WORDS)
    if (sizes == 2).any():
        a, b = left[strong], right[strong]
        pairs_of_two = sizes[component[a]] == 2
        a, b, across = a[pairs_of_two], b[pairs_of_two], pair_names[strong][pairs_of_two]
        apart = _too_loose(across, within[a], within[b], body[a], body[b], config.merge_cohesion)
        result[b[apart]] = next_label + np.arange(int(apart.sum()))
        next_label += int(apart.sum())
    bounds = len(linked_groups) + np.cumsum([0] + [len(i) for i, _ in pairs])
    condensed = [(scores[bounds[k] : bounds[k + 1]], names[bounds[k] : bounds[k + 1]]) for k in range(len(small))]
    condensed += [all_group_similarities(sums, part, config, names=True) for part in large]
    for members, (part_similarity, part_names) in zip(small + large, condensed, strict=True):
        flat = _cohesive_linkage(
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


def _components(left: np.ndarray, right: np.ndarray, nodes: int) -> tuple[int, np.ndarray]:
    """The connected components of a graph with these edges, numbered as scipy's `connected_components`
    numbers them (in the order of their first node): a union-find over the few edges of a merge step,
    where scipy's checks of the graph cost more than the walk."""
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


@functools.lru_cache(maxsize=256)
def _upper_pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    """`np.triu_indices(m, 1)`, kept: thousands of small parts share a few sizes."""
    return np.triu_indices(m, 1)


def _within_from_self(sizes: np.ndarray, with_self: np.ndarray) -> np.ndarray:
    """Mean similarity over the member pairs inside each group, from its mean over all ordered pairs with
    itself: the |A|² pairs less the |A| self-pairs, each taken as 1 (NaN for a group of one)."""
    sizes = sizes.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 1, (sizes**2 * with_self - sizes) / (sizes * (sizes - 1)), np.nan)


def _too_loose(similarity: Any, within_a: Any, within_b: Any, body_a: Any, body_b: Any, cohesion: float) -> Any:
    """The cohesion rule: two groups of several members are too loose to merge when they are less alike
    across than `cohesion` × the lower within-similarity (scaled by `body`, see `_cohesive_linkage`).
    A group of one has no within-similarity (NaN) and never makes a pair too loose."""
    with np.errstate(invalid="ignore"):
        return similarity < cohesion * np.maximum(body_a, body_b) * np.minimum(within_a, within_b)


def _cohesive_linkage(
    condensed: np.ndarray,
    sizes: np.ndarray,
    within: np.ndarray,
    body: np.ndarray,
    threshold: float,
    cohesion: float,
    cohesion_condensed: np.ndarray | None = None,
) -> np.ndarray:
    """Average linkage over m groups (`condensed`: their pair similarities in scipy's order), flat labels.

    `cohesion_condensed`: the signal the cohesion rule compares (`_names_signal`; `within` is of that
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
    upper_i, upper_j = (index.tolist() for index in _upper_pairs(m))
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
        if _too_loose(across, inside_i, inside_j, body[i], body[j], cohesion):
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


def _distinct_pairs(left: np.ndarray, right: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each unordered pair of different groups once, as (smaller, larger), sorted."""
    different = left != right
    keys = unique_values(np.minimum(left, right)[different] * groups + np.maximum(left, right)[different])
    return keys // groups, keys % groups


def _cut(tree: np.ndarray, height: float) -> np.ndarray:
    """Flat clusters 0..k-1 of a linkage tree cut at `height`, as `fcluster(criterion="distance")` gives
    (without its validation, which costs more than the cut for the thousands of tiny trees of a batch)."""
    leaves = len(tree) + 1
    root = np.arange(2 * leaves - 1)
    for row in range(len(tree) - 1, -1, -1):  # top down: a merge below the cut takes its parent's root
        if tree[row, 2] <= height:
            root[int(tree[row, 0])] = root[int(tree[row, 1])] = root[leaves + row]
    return np.unique(root[:leaves], return_inverse=True)[1]


LEDE_WORDS = 30  # words from which a text has a body: bare headlines (about 10 words) do not
# Share of the names (entity TF-IDF) in the cohesion rule's signal for texts with a body, the rest the
# embedding: a few names in common between snippets that name little are not yet one event. Measured with
# merge_cohesion 0.74, ECB+ BCubed F1: 0.929 at 0.75, 0.932 at 0.8, 0.930 at 0.85 and 0.9, 0.920 with
# names alone (which needs 0.74 to keep the digest sample's two NATO stories apart).
NAMES_WEIGHT = 0.8
_SMALL_PART = 64  # groups: up to this, a part's pair similarities are computed with the others of its step


def members_by_part(part_of: np.ndarray, wanted: np.ndarray) -> list[np.ndarray]:
    """The (sorted) indices of each wanted part, from one sort instead of a scan per part."""
    order = np.argsort(part_of, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(part_of, minlength=len(wanted)))]
    return [order[bounds[part] : bounds[part + 1]] for part in np.flatnonzero(wanted)]


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels 0..k-1 in order of each story's first item, so output is deterministic."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


@dataclass
class StoryPairEvidence:
    """The merge rules applied to two whole groups (for `storyclust explain`)."""

    similarity: float  # mean pair similarity across the groups: merging needs `merge_similarity`
    date_agreement: float  # mean date agreement across the groups (already inside `similarity`)
    within: tuple[float, float]  # mean names signal inside each group (NaN for a group of one)
    names: float  # mean names signal across the groups (`_names_signal`): what the cohesion rule compares
    cohesion_needed: float  # the cohesion rule: `names` must reach this (0: the rule does not apply)


def story_pair_evidence(features: ItemFeatures, labels: np.ndarray, config: ClusterConfig) -> StoryPairEvidence:
    """The linkage's view of groups 0 and 1 of `labels` (-1: items left out), with the same sums and rules."""
    keep = labels >= 0
    sums = _GroupSums.items(features).combined(_indicator_of(labels[keep], np.flatnonzero(keep), 2, len(labels)))
    similarity, dates, names = _signals(sums, np.array([0, 0, 1]), np.array([1, 0, 1]), config)
    within = _within_from_self(sums.sizes[:2], names[1:])
    body = np.minimum(1.0, sums.richness * config.full_text_words / LEDE_WORDS)
    needed = config.merge_cohesion * float(np.max(body)) * float(np.min(within)) if not np.isnan(within).any() else 0.0
    pair = (float(within[0]), float(within[1]))
    return StoryPairEvidence(float(similarity[0]), float(dates[0]), pair, float(names[0]), needed)
