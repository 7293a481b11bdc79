"""The cluster stage on hand-made vectors: fixed groups (stored stories) stay whole, new items join them."""

from __future__ import annotations

import numpy as np

from pipeline.cluster import cluster
from pipeline.config import ClusterConfig, NearDuplicateConfig
from pipeline.dedup import find_near_duplicates
from pipeline.similarity import EvidenceGraph, build_graph


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def graph_of(vectors: np.ndarray, texts: list[str] | None = None, hours: np.ndarray | None = None) -> EvidenceGraph:
    """The default-config graph of `vectors` (texts and hours optional: plain names, undated)."""
    texts = texts or [f"item {i}" for i in range(len(vectors))]
    near = find_near_duplicates(texts, [str(i) for i in range(len(texts))], NearDuplicateConfig())
    return build_graph(texts, vectors, np.full(len(texts), np.nan) if hours is None else hours, near, ClusterConfig())


# Two tight topics (x and y axes) of three items each, far apart.
TOPICS = unit([[1, 0.05, 0], [1, 0, 0.05], [1, 0.03, 0.03], [0.05, 1, 0], [0, 1, 0.05], [0.03, 1, 0.03]])


def test_one_batch_finds_the_two_topics() -> None:
    labels = cluster(graph_of(TOPICS), ClusterConfig()).labels
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]


def test_new_items_join_the_fixed_group_of_their_topic() -> None:
    fixed = np.array([0, 0, -1, 1, 1, -1])
    labels = cluster(graph_of(TOPICS), ClusterConfig(), fixed).labels
    assert labels[2] == labels[0] == labels[1]
    assert labels[5] == labels[3] == labels[4]
    assert labels[0] != labels[3]


def test_a_fixed_group_is_never_split_even_when_its_members_differ() -> None:
    # Items 0 and 3 were stored as one story; clustering must keep them together.
    fixed = np.array([0, -1, -1, 0, -1, -1])
    labels = cluster(graph_of(TOPICS), ClusterConfig(), fixed).labels
    assert labels[0] == labels[3]


def test_sparse_hdbscan_matches_hdbscan_on_the_full_graph() -> None:
    import hdbscan
    from scipy import sparse

    from pipeline.cluster.cores import sparse_hdbscan

    rng = np.random.default_rng(1)
    points = np.vstack([rng.normal(c, 0.3, (15, 2)) for c in ((0, 0), (4, 0), (0, 4))])
    dense = np.linalg.norm(points[:, None] - points[None], axis=2)
    graph = sparse.csr_matrix(dense)  # every pair present, no zeros off the diagonal
    for min_samples in (1, 3):
        for selection in ("eom", "leaf"):
            reference = hdbscan.HDBSCAN(
                metric="precomputed", min_cluster_size=3, min_samples=min_samples, cluster_selection_method=selection
            )
            got, expected = sparse_hdbscan(graph, 3, min_samples, selection), reference.fit_predict(dense)
            # The same clusters and noise (leaves may be numbered in another order: our spanning tree's).
            assert ((got[:, None] == got[None, :]) == (expected[:, None] == expected[None, :])).all()
            assert ((got < 0) == (expected < 0)).all()
            if selection == "eom":
                assert list(got) == list(expected)


def test_approximate_neighbours_find_nearly_all_exact_ones() -> None:
    from pipeline.similarity import approximate_neighbours, exact_neighbours

    rng = np.random.default_rng(2)
    centres = rng.normal(size=(40, 32))
    vectors = (centres[rng.integers(0, 40, 3000)] + rng.normal(scale=0.4, size=(3000, 32))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact, _ = exact_neighbours(vectors, 10)
    approximate, sims = approximate_neighbours(vectors, 10)
    assert approximate.shape == exact.shape == (3000, 10)
    assert not (approximate == np.arange(3000)[:, None]).any()
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate, exact, strict=True)])
    assert recall > 0.95
    assert np.allclose(sims[:, 0], np.einsum("ij,ij->i", vectors, vectors[approximate[:, 0]]), atol=1e-4)


def test_all_group_similarities_in_blocks_equal_pairwise_group_averages() -> None:
    from pipeline.cluster.groupsums import GroupSums, all_group_similarities, group_similarity

    rng = np.random.default_rng(4)
    vectors = unit(rng.normal(size=(12, 5)).tolist())
    texts = [f"item {i} about {'markets' if i % 2 else 'Ukraine'} number {i % 3}" for i in range(12)]
    graph = graph_of(vectors, texts, np.where(np.arange(12) % 4 == 0, np.nan, np.arange(12) * 30.0))
    labels = np.array([0, 0, 1, 2, 2, 2, 3, 4, 4, 5, 6, 6])
    sums = GroupSums.of(graph.features, labels)
    groups = np.array([0, 2, 3, 4, 6])
    left, right = np.triu_indices(len(groups), 1)
    expected = group_similarity(sums, groups[left], groups[right], ClusterConfig())
    assert np.allclose(all_group_similarities(sums, groups, ClusterConfig(), block_rows=2), expected, atol=1e-5)


def test_merge_steps_put_stored_items_first_then_new_ones_by_time_and_undated_last() -> None:
    from pipeline.timeline import merge_steps

    hours = np.array([5.0, np.nan, 3.0, 1.0, np.nan, 2.0, 4.5])
    fixed = np.array([0, -1, -1, -1, -1, 0, -1])
    assert list(merge_steps(hours, fixed, 120.0)) == [0, 3, 1, 0, 3, 0, 2]  # clock slices 0-2 h, 2-4 h, 4-6 h
    assert list(merge_steps(hours, fixed, 0)) == [0] * 7


def test_time_is_evidence_not_a_gate_publication_gaps_split_undated_reports_join() -> None:
    vectors = unit([[1, 0.05, 0], [1, 0, 0.05], [1, 0.03, 0.03]] * 2 + [[1, 0.02, 0.02]])  # one topic
    texts = [f"item {i}" for i in range(7)]
    config = ClusterConfig(merge_step_minutes=60.0)

    def labels_for(hours: list[float]) -> np.ndarray:
        count = len(hours)
        near = find_near_duplicates(texts[:count], texts[:count], NearDuplicateConfig())
        graph = build_graph(texts[:count], vectors[:count], np.array(hours), near, config)
        return cluster(graph, config).labels

    # Reported twice, 100 days apart, with nothing but publication dates: two events. No window closes a story:
    # the dates' disagreement in the pair score keeps them apart.
    labels = labels_for([0.0, 1.0, 2.0, 2400.0, 2401.0, 2402.0])
    assert len(set(labels[:3])) == 1 and len(set(labels[3:6])) == 1 and labels[0] != labels[3]
    # A report without a date is neutral on time: it joins its story, not left alone as news of "now" that
    # every earlier story has closed against.
    labels = labels_for([0.0, 1.0, 2.0, 2400.0, 2401.0, 2402.0, np.nan])
    assert labels[6] in (labels[0], labels[3])
    # Without any dates, one story.
    assert len(set(labels_for([np.nan] * 7))) == 1


def test_tree_cut_equals_scipy_fcluster() -> None:
    from scipy.cluster.hierarchy import fcluster, linkage

    from pipeline.cluster.cohesion import cut_tree

    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        tree = linkage(rng.random(n * (n - 1) // 2), method="average")
        for height in (0.0, 0.3, 0.5, 0.7, 1.0):
            expected = fcluster(tree, height, criterion="distance")
            got = cut_tree(tree, height)
            # the same partition: labels map one to one
            assert len(set(zip(expected, got, strict=True))) == len(set(expected)) == len(set(got))


def test_approximate_neighbours_search_each_distinct_vector_once() -> None:
    from pipeline.similarity import approximate_neighbours

    rng = np.random.default_rng(4)
    distinct = rng.normal(size=(500, 16)).astype(np.float32)
    distinct /= np.linalg.norm(distinct, axis=1, keepdims=True)
    which = rng.integers(0, 500, 1500)
    found, sims = approximate_neighbours(distinct[which], 8)
    assert found.shape == (1500, 8)
    assert not (found == np.arange(1500)[:, None]).any()
    first_item = {}
    for item, vector in enumerate(which):
        first_item.setdefault(vector, item)
    for item, vector in enumerate(which):
        if first_item[vector] != item:  # a copy: its original first, at cosine 1
            assert found[item, 0] == first_item[vector] and abs(sims[item, 0] - 1.0) < 1e-5
        else:  # an original lists only other originals
            assert all(first_item[which[other]] == other for other in found[item])


def test_cohesive_linkage_without_the_rule_is_scipy_average_linkage() -> None:
    from scipy.cluster.hierarchy import linkage

    from pipeline.cluster.cohesion import cohesive_linkage, cut_tree

    rng = np.random.default_rng(5)
    for _ in range(200):
        m = int(rng.integers(2, 25))
        condensed = rng.random(m * (m - 1) // 2)
        expected = cut_tree(linkage(1.0 - condensed, method="average"), 1.0 - 0.6)
        got = cohesive_linkage(condensed, rng.integers(1, 5, m).astype(float), np.full(m, 0.9), np.ones(m), 0.6, 0.0)
        assert ((expected[:, None] == expected[None, :]) == (got[:, None] == got[None, :])).all()


def test_two_tight_groups_of_full_texts_stay_apart_when_they_are_less_alike_across_than_within() -> None:
    from pipeline.cluster.cohesion import cohesive_linkage

    condensed = np.array([0.5])  # two stories of three members, within 0.8 each, 0.5 across
    sizes, within = np.array([3.0, 3.0]), np.array([0.8, 0.8])
    apart = cohesive_linkage(condensed, sizes, within, np.ones(2), 0.35, 0.85)
    assert apart[0] != apart[1]
    headlines = cohesive_linkage(condensed, sizes, within, np.full(2, 0.3), 0.35, 0.85)  # bare headlines
    assert headlines[0] == headlines[1]
    loose = cohesive_linkage(condensed, sizes, np.array([0.55, 0.8]), np.ones(2), 0.35, 0.85)
    assert loose[0] == loose[1]  # as alike across as the looser one is within: one event


def test_single_linkage_tree_equals_hdbscans_label() -> None:
    from hdbscan._hdbscan_linkage import label
    from scipy import sparse
    from scipy.sparse.csgraph import minimum_spanning_tree

    from pipeline.cluster.cores import single_linkage_tree

    rng = np.random.default_rng(6)
    for n in (2, 3, 10, 300):
        weights = rng.random((n, n)).round(2) + 0.01  # rounded: ties in weight, kept in edge order
        tree = minimum_spanning_tree(sparse.csr_matrix(np.triu(weights, 1))).tocoo()
        edges = np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)
        edges = edges[np.argsort(edges[:, 2], kind="stable")]
        assert np.array_equal(single_linkage_tree(edges), label(edges))


def test_components_are_numbered_as_scipy_numbers_them() -> None:
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    from pipeline.cluster.linkage import components

    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        left, right = rng.integers(0, n, int(rng.integers(0, 2 * n))), rng.integers(0, n, int(rng.integers(0, 2 * n)))
        right = right[: len(left)]
        left = left[: len(right)]
        expected = connected_components(
            sparse.coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n)), directed=False
        )
        count, labels = components(left, right, n)
        assert count == expected[0] and np.array_equal(labels, expected[1])


def test_a_pair_of_groups_scores_the_same_whatever_else_is_in_the_call() -> None:
    from pipeline.cluster.groupsums import GroupSums, group_similarity

    rng = np.random.default_rng(8)
    vectors = unit(rng.normal(size=(30, 6)).tolist())
    texts = [f"item {i} about {'markets in Tokyo' if i % 3 else 'Ukraine and NATO'} number {i % 5}" for i in range(30)]
    graph = graph_of(vectors, texts, np.arange(30) * 7.0)
    sums = GroupSums.of(graph.features, rng.permutation(np.arange(30) % 10))
    left, right = np.triu_indices(10, 1)
    everything = group_similarity(sums, left, right, ClusterConfig())
    for k in range(len(left)):  # alone, the pair's sums are added in the same order: the same bits
        assert group_similarity(sums, left[k : k + 1], right[k : k + 1], ClusterConfig())[0] == everything[k]


def test_member_fit_is_the_similarity_of_the_member_with_the_rest_of_its_group() -> None:
    from pipeline.cluster.groupsums import GroupSums, group_similarity, member_fit

    rng = np.random.default_rng(9)
    vectors = unit(rng.normal(size=(24, 6)).tolist())
    texts = [f"report {i} on {'the Kokomo shooting' if i % 2 else 'Fed rates'} with {i % 4} names" for i in range(24)]
    graph = graph_of(vectors, texts, np.where(np.arange(24) % 5 == 0, np.nan, np.arange(24) * 20.0))
    labels = rng.integers(0, 4, 24)
    items = np.arange(0, 24, 3)
    fit, _ = member_fit(graph.features, labels, items, ClusterConfig())
    for item, value in zip(items, fit, strict=True):
        apart = np.where(np.arange(24) == item, 4, labels)  # the item alone, its group without it
        sums = GroupSums.of(graph.features, apart)
        if (apart == labels[item]).any():
            expected = group_similarity(sums, np.array([4]), np.array([labels[item]]), ClusterConfig())[0]
            assert np.isclose(value, expected, atol=1e-5)
        else:
            assert np.isnan(value)


def test_story_rows_keep_the_current_row_of_each_story_through_growth() -> None:
    from scipy import sparse

    from pipeline.cluster.groupsums import FlatRows

    rng = np.random.default_rng(10)
    first = sparse.random(6, 50, density=0.2, format="csr", random_state=1, dtype=np.float32)
    rows = FlatRows([first, first.copy()])
    current = {k: first[k].toarray() for k in range(6)}
    alive = np.ones(6, dtype=bool)
    for _ in range(40):  # enough new rows to grow the flat arrays several times
        stories = np.unique(rng.integers(0, 6, 2))
        new = sparse.random(len(stories), 50, density=0.5, format="csr", random_state=rng, dtype=np.float32)
        rows.replace(stories, [new, new], alive)
        current |= {int(s): new[k].toarray() for k, s in enumerate(stories)}
        taken, again = rows.take(np.arange(6)[::-1])
        assert all(np.array_equal(taken[5 - k].toarray(), current[k]) for k in range(6))
        assert (taken != again).nnz == 0


def test_cohesion_compares_the_names_signal_when_it_is_given() -> None:
    from pipeline.cluster.cohesion import cohesive_linkage

    # Alike by similarity (0.7 across, within 0.8), but naming other names across (0.2) than within (0.6).
    condensed, names = np.array([0.7]), np.array([0.2])
    sizes, within = np.array([3.0, 3.0]), np.array([0.6, 0.6])
    apart = cohesive_linkage(condensed, sizes, within, np.ones(2), 0.35, 0.74, names)
    assert apart[0] != apart[1]
    together = cohesive_linkage(condensed, sizes, within, np.ones(2), 0.35, 0.74, np.array([0.5]))
    assert together[0] == together[1]


def test_the_rest_of_a_group_is_empty_where_the_items_have_no_entries() -> None:
    """A chunk of items with no names (no entries on their side) once failed: scipy gives a sparse matrix,
    not an empty array, for an empty fancy index (all labelled sets in one batch hit it)."""
    from scipy import sparse

    from pipeline.cluster.groupsums import GroupSums, rest_where

    graph = graph_of(TOPICS)
    single = GroupSums.items(graph.features)
    whole = GroupSums.of(graph.features, np.array([0, 0, 0, 1, 1, 1]))
    empty = sparse.csr_matrix((3, single.backward.shape[1]), dtype=np.float32)
    rest = rest_where(empty, whole, single, "backward", np.arange(3), np.zeros(3, dtype=np.int64))
    assert rest.shape == empty.shape and rest.nnz == 0
