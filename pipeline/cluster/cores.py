"""Density cores: HDBSCAN's leaves on the evidence graph, noise attached to strong neighbours, and every member
of a core standing with the core as a whole (the merge rule), so density alone never chains two events.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from pipeline.arrays import members_by_part
from pipeline.cluster.groupsums import GroupSums, member_fit
from pipeline.config import ClusterConfig
from pipeline.similarity import EvidenceGraph


def density_cores(graph: EvidenceGraph, config: ClusterConfig, fixed: np.ndarray) -> tuple[np.ndarray, int]:
    """HDBSCAN labels of the free items (noise gets its own label), noise attached to strong neighbours."""
    free = fixed < 0
    labels = fixed.copy()
    _, labels[~free] = np.unique(fixed[~free], return_inverse=True)
    next_label = int(labels.max(initial=-1) + 1)
    distance = graph.matrix(np.maximum(1e-6, 2.0 - 2.0 * np.clip(graph.density, 0.0, 1.0)))
    free_index = np.flatnonzero(free)
    free_distance = _among(distance, free_index)
    component = symmetric_components(free_distance)
    sizes = np.bincount(component)
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


def symmetric_components(matrix: sparse.csr_matrix) -> np.ndarray:
    """The connected components of a symmetric matrix's graph, numbered as `connected_components(matrix,
    directed=False)` numbers them (in order of their first item). As a directed graph its strong components
    are the same sets, and scipy finds those without the transposed copy it makes of an undirected graph
    (1.6 s of fresh memory at 200k items, for a transpose equal to the matrix)."""
    _, component = connected_components(matrix, directed=True, connection="strong")
    return relabel(component)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Labels 0..k-1 in order of each label's first item, so output is deterministic."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


def _among(matrix: sparse.csr_matrix, items: np.ndarray) -> sparse.csr_matrix:
    """The rows and columns of these (sorted, distinct) items; the matrix itself when they are all of them
    (a run of new items only, one connected batch: the copies cost a second at 200k items)."""
    return matrix if len(items) == matrix.shape[0] else matrix[items][:, items].tocsr()


def cohesive_cores(single: GroupSums, labels: np.ndarray, fixed: np.ndarray, config: ClusterConfig) -> np.ndarray:
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
    # before that costs seconds at 200k items): edges by weight, single-linkage tree, then its `_tree_to_labels`
    # with the default settings: condensed tree, stability, clusters.
    edges = np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)
    edges = edges[np.argsort(edges[:, 2], kind="stable")]
    hdbscan_tree = compiled_hdbscan_tree()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        condensed = hdbscan_tree.condense_tree(single_linkage_tree(edges), min_cluster_size)
        labels, _, _ = hdbscan_tree.get_clusters(condensed, hdbscan_tree.compute_stability(condensed), selection)
    return np.asarray(labels)


_TREE_MODULE = "hdbscan._hdbscan_tree"


def compiled_hdbscan_tree() -> ModuleType:
    """hdbscan's compiled tree module (condensation, stability, cluster selection: numpy only), loaded without
    the package: `import hdbscan` imports scikit-learn whole, 1.75 s of every run with new items. It is
    registered under its own name, so an `import hdbscan` later in the process takes this module rather than
    loading the extension twice; where it cannot be loaded alone, the package's import loads it."""
    if _TREE_MODULE in sys.modules:
        return sys.modules[_TREE_MODULE]
    try:
        folder = Path(importlib.util.find_spec("hdbscan").submodule_search_locations[0])
        path = next(
            folder / f"_hdbscan_tree{suffix}"
            for suffix in EXTENSION_SUFFIXES
            if (folder / f"_hdbscan_tree{suffix}").is_file()
        )
        spec = importlib.util.spec_from_file_location(_TREE_MODULE, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_TREE_MODULE] = module
        spec.loader.exec_module(module)
        return module
    except Exception:  # not where a wheel puts it: the package's own way
        sys.modules.pop(_TREE_MODULE, None)
        return importlib.import_module(_TREE_MODULE)


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
    only to HDBSCAN's own groups lose 0.002 BCubed F1 on uci-news-head). Only `hosts` take items in.

    An item none of whose earlier neighbours is noise that could host decides on the groups as they were
    before: those decisions are taken for all such items at once, and only the others go one at a time, in
    order (an item sees its earlier noise neighbours as they ended, its later ones still as noise)."""
    noise = np.flatnonzero(labels < 0)
    if not len(noise):
        return 0
    was_noise = labels < 0
    starts = density.indptr[noise]
    lengths = density.indptr[noise + 1] - starts
    bounds = np.zeros(len(noise) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    where = np.repeat(starts - bounds[:-1], lengths) + np.arange(bounds[-1])
    owner = np.repeat(np.arange(len(noise)), lengths)
    neighbours, scores = density.indices[where], density.data[where]
    waits = np.zeros(len(noise), dtype=bool)
    waits[owner[was_noise[neighbours] & hosts[neighbours] & (neighbours < noise[owner])]] = True
    grouped = ~was_noise[neighbours] & hosts[neighbours]
    masked = np.where(grouped, scores, -np.inf)
    # The first of the highest grouped neighbours of each item, as `np.argmax` picks it (a NaN is the highest).
    filled = lengths > 0
    best_score = np.full(len(noise), -np.inf, dtype=masked.dtype)
    best_score[filled] = np.maximum.reduceat(masked, bounds[:-1][filled])
    hit = np.flatnonzero((masked == best_score[owner]) | np.isnan(masked))
    first = np.full(len(noise), -1, dtype=np.int64)
    found, at = np.unique(owner[hit], return_index=True)
    first[found] = hit[at]
    passes = ~waits & (first >= 0) & (np.bincount(owner[grouped], minlength=len(noise)) > 0)
    passes &= best_score >= threshold  # a NaN never passes, as in the one-at-a-time rule
    labels[noise[passes]] = labels[neighbours[first[passes]]]
    attached = int(passes.sum())
    for item in noise[waits]:
        start, end = density.indptr[item], density.indptr[item + 1]
        neighbours, scores = density.indices[start:end], density.data[start:end]
        grouped = (labels[neighbours] >= 0) & hosts[neighbours] & ~(was_noise[neighbours] & (neighbours > item))
        if grouped.any():
            best = int(np.argmax(np.where(grouped, scores, -np.inf)))
            if scores[best] >= threshold:
                labels[item] = labels[neighbours[best]]
                attached += 1
    return attached
