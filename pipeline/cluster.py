"""Cluster stage: turn the evidence graph into stories.

1. HDBSCAN on the sparse `density` distances, per connected component of the candidate graph: dense cores
   of reports of one event (copies, close rewrites).
2. A noise item joins the core of its most similar neighbour when that evidence is strong enough; else it
   stays alone (a one-item story, never dropped). Stored stories take no item this way.
3. Every member of a core must stand with the core as a whole: mean similarity to the other members at
   least `merge_similarity`, the merge rule. In a run of a handful of items HDBSCAN's density is no
   evidence, and this is what keeps a core from chaining two events of one kind.
4. Cores are merged by average linkage on `similarity` while the average over all their member pairs
   stays at or above `merge_similarity`, and two stories of full texts merge only if they are about as
   alike across as each is within (`merge_cohesion`): two halves of one event are, two events of one
   topic are not. Linkage runs per connected component of the thresholded group graph and stays small.
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
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from pipeline.arrays import unique_values
from pipeline.config import ClusterConfig
from pipeline.eventdates import CHANNELS, DateEvidence
from pipeline.similarity import EvidenceGraph, ItemFeatures, pair_cosines


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
    free_distance = distance[free_index][:, free_index].tocsr()
    count, component = connected_components(free_distance, directed=False)
    sizes = np.bincount(component, minlength=count)
    for inside in members_by_part(component, sizes > config.min_cluster_size):
        found = sparse_hdbscan(free_distance[inside][:, inside], config.min_cluster_size, config.min_samples)
        clustered = found >= 0
        labels[free_index[inside[clustered]]] = found[clustered] + next_label
        next_label += int(found.max(initial=-1) + 1)

    # Noise joins this run's cores only: a stored story takes a new item by the merge rule alone (its mean
    # similarity over all members), as a story built earlier in one run does.
    attached = _attach_noise(graph.matrix(graph.density), labels, config.attach_similarity, hosts=free)
    noise = np.flatnonzero(labels < 0)
    labels[noise] = next_label + np.arange(len(noise))
    return labels, attached


def _cohesive_cores(single: _GroupSums, labels: np.ndarray, fixed: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """Each free member of a core must stand with the rest of its core: mean similarity to them at least
    `merge_similarity`, the rule of the merge stage, so a core is never looser than a merge could make it
    and a pair of reports of two events cannot ride into a story on HDBSCAN's density alone (which, in a
    run of a handful of items, is no evidence). Members that do not leave as one-item groups."""
    labels = labels.copy()
    next_label = int(labels.max(initial=-1) + 1)
    for _ in range(5):
        sizes = np.bincount(labels)
        check = np.flatnonzero((fixed < 0) & (sizes[labels] > 1))
        if not len(check):
            break
        mean, _ = member_fit(single, labels, check, config)
        out = check[mean < config.merge_similarity]
        if not len(out):
            break
        labels[out] = next_label + np.arange(len(out))
        next_label += len(out)
    return labels


def member_fit(
    single: _GroupSums | ItemFeatures, labels: np.ndarray, items: np.ndarray, config: ClusterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Mean similarity, and mean date agreement, of each of `items` with the other members of its group
    (NaN for a group of one): exactly, from the group's sums less the item's own. `single`: the items'
    own sums (`_GroupSums.items`), or their features."""
    groups = int(labels.max(initial=-1) + 1)
    if isinstance(single, ItemFeatures):
        single = _GroupSums.items(single)
    needed, group_of_item = np.unique(labels[items], return_inverse=True)  # only the groups asked about
    rank = np.full(groups, -1, dtype=np.int64)
    rank[needed] = np.arange(len(needed))
    members = np.flatnonzero(rank[labels] >= 0)
    whole = single.combined(_indicator_of(rank[labels[members]], members, len(needed), len(labels)))
    own = single.select(items)
    sums = _GroupSums.stacked([own, whole.select(group_of_item).minus(own)])
    k = len(items)
    left, right = np.arange(k), np.arange(k) + k
    alone = sums.sizes[right] < 0.5
    sums.sizes[right] = np.maximum(sums.sizes[right], 1.0)  # a group of one: no rest, reported as NaN
    similarity, dates = _similarity_and_dates(sums, left, right, config)
    return np.where(alone, np.nan, similarity), np.where(alone, np.nan, dates)


def _indicator_of(groups_of: np.ndarray, items: np.ndarray, groups: int, n: int) -> sparse.csr_matrix:
    """Row g marks `items[k]` wherever `groups_of[k]` is g."""
    return sparse.csr_matrix((np.ones(len(items), dtype=np.float32), (groups_of, items)), shape=(groups, n))


def _indicator(labels: np.ndarray, groups: int) -> sparse.csr_matrix:
    """Row g marks the items of group g."""
    return _indicator_of(labels, np.arange(len(labels)), groups, len(labels))


def sparse_hdbscan(distance: sparse.csr_matrix, min_cluster_size: int, min_samples: int) -> np.ndarray:
    """HDBSCAN on a connected sparse distance graph, in O(edges · log).

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
    from hdbscan._hdbscan_linkage import label
    from hdbscan.hdbscan_ import _tree_to_labels

    edges = np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)
    edges = edges[np.argsort(edges[:, 2], kind="stable")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels, _, _ = _tree_to_labels(None, label(edges), min_cluster_size)[:3]
    return np.asarray(labels)


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
    included, and one product per block sums them (`_Layout.blocks`). Two sparse products per union
    instead of one per signal: the merge runs thousands of small steps.
    """

    sizes: np.ndarray
    vectors: np.ndarray
    richness_sums: np.ndarray
    dated: np.ndarray  # groups × date channels: how many members have a date there
    mentioned: np.ndarray  # the same for members whose dates are only mentions
    forward: sparse.csr_matrix
    backward: sparse.csr_matrix
    mention_forward: sparse.csr_matrix  # [date cover | date mass] of the members whose dates are mentions
    mention_backward: sparse.csr_matrix
    layout: _Layout

    @classmethod
    def of(cls, features: ItemFeatures, labels: np.ndarray) -> _GroupSums:
        return cls.items(features).combined(_indicator(labels, int(labels.max(initial=-1) + 1)))

    @classmethod
    def items(cls, features: ItemFeatures) -> _GroupSums:
        """Each item as a group of one."""
        dates = features.dates
        layout = _Layout(features.words.shape[1], features.entities.shape[1], dates)
        mentions = sparse.diags(dates.mention.astype(np.float32))
        cover, mass = (mentions @ dates.cover).tocsr(), (mentions @ dates.mass).tocsr()
        return cls(
            sizes=np.ones(len(features.richness), dtype=np.float32),
            vectors=features.vectors,
            richness_sums=features.richness,
            dated=dates.known.astype(np.float64),
            mentioned=(dates.known & dates.mention[:, None]).astype(np.float64),
            forward=sparse.hstack([features.words, features.entities, dates.cover, dates.mass]).tocsr(),
            backward=sparse.hstack([features.words, features.entities, dates.mass, dates.cover]).tocsr(),
            mention_forward=sparse.hstack([cover, mass]).tocsr(),
            mention_backward=sparse.hstack([mass, cover]).tocsr(),
            layout=layout,
        )

    @classmethod
    def stacked(cls, parts: list[_GroupSums]) -> _GroupSums:
        """The groups of several sums, one after the other."""
        joined: dict[str, Any] = {"layout": parts[0].layout}
        for name in (f.name for f in fields(cls) if f.name != "layout"):
            values = [getattr(part, name) for part in parts]
            joined[name] = sparse.vstack(values).tocsr() if sparse.issparse(values[0]) else np.concatenate(values)
        return cls(**joined)

    def row(self, k: int) -> tuple:
        """Group k's sums as plain arrays (see `from_rows`): cheap to keep, cheap to stack again."""
        sparse_parts = []
        for name in _SPARSE_FIELDS:
            matrix = getattr(self, name)
            start, end = matrix.indptr[k], matrix.indptr[k + 1]
            sparse_parts.append((matrix.indices[start:end], matrix.data[start:end]))
        return tuple(getattr(self, name)[k] for name in _DENSE_FIELDS) + tuple(sparse_parts)

    @classmethod
    def from_rows(cls, rows: list[tuple], like: _GroupSums) -> _GroupSums:
        """Sums whose groups are these `row`s (built straight from their arrays, no sparse indexing)."""
        values: dict[str, Any] = {}
        for number, name in enumerate(_DENSE_FIELDS):
            values[name] = np.stack([row[number] for row in rows]).astype(getattr(like, name).dtype, copy=False)
        for number, name in enumerate(_SPARSE_FIELDS, start=len(_DENSE_FIELDS)):
            template = getattr(like, name)
            lengths = [len(row[number][0]) for row in rows]
            indptr = np.r_[0, np.cumsum(lengths)].astype(template.indptr.dtype)
            indices = np.concatenate([row[number][0] for row in rows]).astype(template.indices.dtype, copy=False)
            data = np.concatenate([row[number][1] for row in rows]).astype(template.dtype, copy=False)
            values[name] = sparse.csr_matrix((data, indices, indptr), shape=(len(rows), template.shape[1]))
        return cls(**values, layout=like.layout)

    def minus(self, other: _GroupSums) -> _GroupSums:
        """Row by row, these sums less the other's (a group without some of its members)."""
        values = {f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self) if f.name != "layout"}
        return _GroupSums(**{k: v.tocsr() if sparse.issparse(v) else v for k, v in values.items()}, layout=self.layout)

    def select(self, groups: np.ndarray) -> _GroupSums:
        """The sums of these groups only, in this order."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layout"}
        return _GroupSums(**{name: value[groups] for name, value in values.items()}, layout=self.layout)

    def combined(self, membership: sparse.csr_matrix) -> _GroupSums:
        """Sums of unions of groups: row k of `membership` marks the groups of union k."""

        def total(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
            if not matrix.nnz:  # e.g. no mentions at all: skip the product
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
_SPARSE_FIELDS = ("forward", "backward", "mention_forward", "mention_backward")


class _Layout:
    """Which columns of `forward` ⊙ `backward` sum to which signal."""

    def __init__(self, words: int, names: int, dates: DateEvidence) -> None:
        self.channels = channels = len(CHANNELS)
        width = len(dates.channel)
        columns = words + names + 2 * width
        # Blocks of forward ⊙ backward: 0 words, 1 names, 2.. cover·mass per channel, 2+k.. mass·cover.
        block = np.r_[np.zeros(words), np.ones(names), 2 + dates.channel, 2 + channels + dates.channel]
        self.blocks = sparse.csr_matrix(
            (np.ones(columns, dtype=np.float32), (np.arange(columns), block.astype(np.int64))),
            shape=(columns, 2 + 2 * channels),
        )
        mention_block = np.r_[dates.channel, channels + dates.channel]
        self.mention_blocks = sparse.csr_matrix(
            (np.ones(2 * width, dtype=np.float32), (np.arange(2 * width), mention_block.astype(np.int64))),
            shape=(2 * width, 2 * channels),
        )


def block_products(
    left_matrix: sparse.csr_matrix,
    right_matrix: sparse.csr_matrix,
    blocks: sparse.csr_matrix,
    rows: np.ndarray,
    cols: np.ndarray,
    chunk: int = 262144,
) -> np.ndarray:
    """Pairs × blocks: `left_matrix[rows[k]] · right_matrix[cols[k]]` summed within each column block."""
    out = np.zeros((len(rows), blocks.shape[1]), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        r, c = rows[start : start + chunk], cols[start : start + chunk]
        out[start : start + len(r)] = (left_matrix[r].multiply(right_matrix[c]) @ blocks).toarray()
    return out


def _pair_signals(sums: _GroupSums, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean words and names TF-IDF products and mean date agreement over all member pairs of two groups."""
    layout = sums.layout
    k = layout.channels
    sizes = (sums.sizes[left] * sums.sizes[right]).astype(np.float64)
    products = block_products(sums.forward, sums.backward, layout.blocks, left, right)
    agree = (products[:, 2 : 2 + k] + products[:, 2 + k : 2 + 2 * k]) / 2
    compared = sums.dated[left] * sums.dated[right] - sums.mentioned[left] * sums.mentioned[right]
    if sums.mention_forward.nnz:
        both_mentions = block_products(sums.mention_forward, sums.mention_backward, layout.mention_blocks, left, right)
        agree -= (both_mentions[:, :k] + both_mentions[:, k:]) / 2
    dates = np.prod(1.0 - np.clip(compared - agree, 0.0, None) / sizes[:, None], axis=1)
    return products[:, 0] / sizes, products[:, 1] / sizes, dates


def _combine(
    embedding: np.ndarray,
    words: np.ndarray,
    entities: np.ndarray,
    richness: tuple[np.ndarray, np.ndarray],
    dates: np.ndarray,
    config: ClusterConfig,
) -> np.ndarray:
    """The pair similarity of `pipeline.similarity`, from group-averaged signals."""
    weight = config.lexical_weight * np.minimum(*richness)
    similarity = (1 - weight) * embedding + weight * (words + entities) / 2
    return similarity * dates


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
    return _pair_signals(sums, left, right)[2]


def group_similarity(sums: _GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """Mean pair similarity between groups `left[k]` and `right[k]`, exactly, from per-group sums.

    Cosine and TF-IDF products are bilinear, so the mean over all |A|·|B| pairs is the product of the
    groups' summed vectors divided by |A|·|B|: no pair needs to be in the candidate graph.
    """
    return _similarity_and_dates(sums, left, right, config)[0]


def _similarity_and_dates(
    sums: _GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """`group_similarity` and `group_date_agreement` of the same pairs, from one pass."""
    embedding = pair_cosines(sums.vectors, left, right) / (sums.sizes[left] * sums.sizes[right])
    words, entities, dates = _pair_signals(sums, left, right)
    return _combine(embedding, words, entities, (sums.richness[left], sums.richness[right]), dates, config), dates


def all_group_similarities(
    sums: _GroupSums, groups: np.ndarray, config: ClusterConfig, block_rows: int = 512
) -> np.ndarray:
    """`group_similarity` for every pair of the given groups, as a condensed vector (scipy's order).

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
        parts.append(group_similarity(sums, groups[left], groups[right], config))
    return np.concatenate(parts) if parts else np.zeros(0)


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
    sums = single.combined(_indicator(labels, groups))
    story = np.arange(groups)  # the story of each group, named by its smallest group id
    groups_of: dict[int, np.ndarray] = {}  # the groups of each story of more than one
    # The current sums of each story of several groups, as plain arrays: summing a big story's groups
    # again at every step is what would cost.
    kept: dict[int, tuple] = {}
    for pairs in members_by_part(pair_step, np.bincount(pair_step) > 0):
        a, b = story[left[pairs]], story[right[pairs]]
        opened = step_start[pair_step[pairs[0]]] - window_hours
        keep = (a != b) & (last_hours[a] >= opened) & (last_hours[b] >= opened)
        if not keep.any():
            continue
        involved, local = np.unique(np.r_[a[keep], b[keep]], return_inverse=True)
        grown = np.array([story_id in kept for story_id in involved.tolist()], dtype=bool)
        order = np.r_[np.flatnonzero(~grown), np.flatnonzero(grown)]
        position = np.empty(len(involved), dtype=np.int64)
        position[order] = np.arange(len(involved))
        parts = [sums.select(involved[~grown])]
        if grown.any():
            parts.append(_GroupSums.from_rows([kept[int(x)] for x in involved[grown]], sums))
        step_sums = _GroupSums.stacked(parts) if len(parts) > 1 else parts[0]
        pairs_kept = int(keep.sum())
        local = position[local]
        joined = _average_linkage(step_sums, local[:pairs_kept], local[pairs_kept:], config)
        sets = members_by_part(joined, np.bincount(joined) > 1)
        if not sets:
            continue
        rows = np.repeat(np.arange(len(sets)), [len(t) for t in sets])
        union = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, np.concatenate(sets))), shape=(len(sets), len(involved))
        )
        joined_sums = step_sums.combined(union)
        for number, together in enumerate(sets):
            stories_joined = involved[order[together]]
            survivor = int(stories_joined.min())
            merged = np.concatenate([groups_of.get(int(x), np.array([x])) for x in stories_joined])
            story[merged] = survivor
            groups_of[survivor] = merged
            last_hours[survivor] = last_hours[stories_joined].max()
            for absorbed in stories_joined:
                if int(absorbed) != survivor:
                    groups_of.pop(int(absorbed), None)
                    kept.pop(int(absorbed), None)
            kept[survivor] = joined_sums.row(number)
    merged = story[labels]
    return merged, groups - len(unique_values(merged))


def _average_linkage(sums: _GroupSums, left: np.ndarray, right: np.ndarray, config: ClusterConfig) -> np.ndarray:
    """A label per group of `sums`: average linkage up to `merge_similarity`, candidates `left`-`right`,
    where two groups of several members merge only if they are nearly as alike as each is within
    (`merge_cohesion`, see `_cohesive_linkage`)."""
    groups = len(sums.sizes)
    left, right = _distinct_pairs(left, right, groups)
    # One call for the candidate pairs and each group with itself (its within-similarity).
    everyone = np.arange(groups)
    scores = group_similarity(sums, np.r_[left, everyone], np.r_[right, everyone], config)
    pair_similarity, within = scores[: len(left)], _within_from_self(sums.sizes, scores[len(left) :])
    body = np.minimum(1.0, sums.richness * config.full_text_words / LEDE_WORDS)
    strong = pair_similarity >= config.merge_similarity
    linked = sparse.coo_matrix((np.ones(int(strong.sum())), (left[strong], right[strong])), shape=(groups, groups))
    count, component = connected_components(linked, directed=False)
    result = component.copy()
    next_label = count
    # Average linkage can only merge along a pair of groups whose own average passes the threshold, so it
    # runs per connected component of the strong pairs. A part of two groups is one decision, taken for
    # all such parts at once; larger small parts get their pair similarities from one vectorized call (a
    # call per part costs more in overhead than in arithmetic).
    sizes = np.bincount(component)
    if (sizes == 2).any():
        a, b = left[strong], right[strong]
        pairs_of_two = sizes[component[a]] == 2
        a, b, similarity = a[pairs_of_two], b[pairs_of_two], pair_similarity[strong][pairs_of_two]
        apart = _too_loose(similarity, within[a], within[b], body[a], body[b], config.merge_cohesion)
        result[b[apart]] = next_label + np.arange(int(apart.sum()))
        next_label += int(apart.sum())
    parts = members_by_part(component, sizes > 2)
    small = [part for part in parts if len(part) <= _SMALL_PART]
    large = [part for part in parts if len(part) > _SMALL_PART]
    pairs = [_upper_pairs(len(part)) for part in small]
    similarities = group_similarity(
        sums,
        np.concatenate([part[i] for part, (i, _) in zip(small, pairs, strict=True)] or [np.zeros(0, np.int64)]),
        np.concatenate([part[j] for part, (_, j) in zip(small, pairs, strict=True)] or [np.zeros(0, np.int64)]),
        config,
    )
    bounds = np.cumsum([0] + [len(i) for i, _ in pairs])
    condensed = [similarities[bounds[k] : bounds[k + 1]] for k in range(len(small))]
    condensed += [all_group_similarities(sums, part, config) for part in large]
    for members, part_similarity in zip(small + large, condensed, strict=True):
        flat = _cohesive_linkage(
            part_similarity,
            sums.sizes[members].astype(np.float64),
            within[members],
            body[members].astype(np.float64),
            config.merge_similarity,
            config.merge_cohesion,
        )
        if flat.max() > 0:
            result[members[flat > 0]] = flat[flat > 0] - 1 + next_label
            next_label += int(flat.max())
    return result


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
) -> np.ndarray:
    """Average linkage over m groups (`condensed`: their pair similarities in scipy's order), flat labels.

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
    labels = np.zeros(m, dtype=np.int64)
    if m < 2:
        return labels
    matrix = np.zeros((m, m))
    upper = np.triu_indices(m, 1)
    matrix[upper] = condensed
    matrix += matrix.T
    sizes, body = sizes.copy(), body.copy()
    weight = np.ones(m)
    internal_pairs = sizes * (sizes - 1) / 2
    internal_sum = np.where(internal_pairs > 0, np.nan_to_num(within) * internal_pairs, 0.0)
    active = np.ones(m, dtype=bool)
    version = np.zeros(m, dtype=np.int64)
    owner = np.arange(m)  # which surviving group each original group is in
    passing = np.flatnonzero(condensed >= threshold)
    heap = [(-condensed[k], int(upper[0][k]), int(upper[1][k]), 0, 0) for k in passing]
    heapq.heapify(heap)
    while heap:
        negative, i, j, version_i, version_j = heapq.heappop(heap)
        if not (active[i] and active[j]) or version[i] != version_i or version[j] != version_j:
            continue  # a stale entry: one side has changed since
        similarity = -negative
        inside_i, inside_j = (internal_sum[g] / internal_pairs[g] if internal_pairs[g] else np.nan for g in (i, j))
        if _too_loose(similarity, inside_i, inside_j, body[i], body[j], cohesion):
            continue
        # Merge j into i (Lance-Williams update for average linkage).
        total = sizes[i] + sizes[j]
        row = (weight[i] * matrix[i] + weight[j] * matrix[j]) / (weight[i] + weight[j])
        weight[i] += weight[j]
        matrix[i], matrix[:, i] = row, row
        matrix[i, i] = 0.0
        internal_sum[i] += internal_sum[j] + similarity * sizes[i] * sizes[j]
        body[i] = (sizes[i] * body[i] + sizes[j] * body[j]) / total
        internal_pairs[i] = total * (total - 1) / 2
        sizes[i] = total
        active[j] = False
        owner[owner == j] = i
        version[i] += 1
        for k in np.flatnonzero(active & (row >= threshold)):
            if k != i:
                a, b = (i, int(k)) if i < k else (int(k), i)
                heapq.heappush(heap, (-row[k], a, b, int(version[a]), int(version[b])))
    _, labels = np.unique(owner, return_inverse=True)
    return labels


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
    within: tuple[float, float]  # mean similarity inside each group (NaN for a group of one)
    cohesion_needed: float  # the cohesion rule: `similarity` must reach this (0: the rule does not apply)


def story_pair_evidence(features: ItemFeatures, labels: np.ndarray, config: ClusterConfig) -> StoryPairEvidence:
    """The linkage's view of groups 0 and 1 of `labels` (-1: items left out), with the same sums and rules."""
    keep = labels >= 0
    sums = _GroupSums.items(features).combined(_indicator_of(labels[keep], np.flatnonzero(keep), 2, len(labels)))
    similarity, dates = _similarity_and_dates(sums, np.array([0, 0, 1]), np.array([1, 0, 1]), config)
    within = _within_from_self(sums.sizes[:2], similarity[1:])
    body = np.minimum(1.0, sums.richness * config.full_text_words / LEDE_WORDS)
    needed = config.merge_cohesion * float(np.max(body)) * float(np.min(within)) if not np.isnan(within).any() else 0.0
    return StoryPairEvidence(float(similarity[0]), float(dates[0]), (float(within[0]), float(within[1])), needed)
