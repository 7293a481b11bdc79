"""Evidence signals whose meaning does not depend on the batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st


def test_term_weights_come_from_a_fixed_reference_not_the_batch() -> None:
    from pipeline.similarity import _tfidf_matrices, term_weights

    common, rare = term_weights(["the", "police", "kokomo"])[[0, 1]], term_weights(["kokomo"])[0]
    assert common[0] == 0.0 and 0 < common[1] < rare
    pair = ["Shooting at Kokomo bar sends 4 to hospital", "Four people shot outside Kokomo nightclub"]
    alone = _tfidf_matrices(pair)
    crowd = _tfidf_matrices(pair + ["Kokomo council meets", "Markets fall in Tokyo"] * 20)
    for small, large in zip(alone, crowd, strict=True):
        assert np.isclose((small[0] @ small[1].T).toarray()[0, 0], (large[0] @ large[1].T).toarray()[0, 0])


def test_wire_copies_get_the_rows_of_their_text() -> None:
    from pipeline.similarity import _tfidf_matrices

    texts = ["Shooting at Kokomo bar sends 4 to hospital", "Four people shot outside Kokomo nightclub", "Fed holds"]
    once = _tfidf_matrices(texts)
    copied = _tfidf_matrices([texts[2], *texts, texts[0]])
    for alone, with_copies in zip(once, copied, strict=True):
        for row, text in ((0, 1), (1, 2), (2, 3), (0, 4), (2, 0)):  # (row of `texts`, row with the copies)
            assert (alone[row] != with_copies[text]).nnz == 0


def test_pairs_of_date_sets_looked_up_agree_as_computed_pair_by_pair() -> None:
    from datetime import datetime

    from pipeline.eventdates import date_evidence
    from pipeline.timeline import _date_kinds, _pair_agreement, date_agreement

    rng = np.random.default_rng(3)
    n = 300
    published = [None if rng.random() < 0.2 else datetime(2016, 5, int(rng.integers(1, 6))) for _ in range(n)]
    bodies = ["On Monday" if rng.random() < 0.3 else "May 2, 2016" if rng.random() < 0.3 else "" for _ in range(n)]
    dates = date_evidence(bodies, published, 2.0)
    rows, cols = rng.integers(0, n, 5000), rng.integers(0, n, 5000)
    assert 20 < len(_date_kinds(dates)[1]) ** 2 < 5000
    direct = _pair_agreement(dates, rows, cols)
    assert np.array_equal(date_agreement(dates, rows, cols), direct)  # few date sets: the looked-up path
    assert np.array_equal(date_agreement(dates, rows[:20], cols[:20]), direct[:20])  # few pairs: computed


def test_unique_first_is_numpys_unique_with_first_positions() -> None:
    from pipeline.similarity import _unique_first

    rng = np.random.default_rng(5)
    for keys in (rng.integers(0, 50, 1000), np.zeros(0, dtype=np.int64), np.array([2**62, 7, 2**62, 7, 3])):
        expected = np.unique(keys, return_index=True)
        got = _unique_first(keys.astype(np.int64))
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_exact_neighbours_are_the_brute_force_top_k_without_self_even_among_copies() -> None:
    from pipeline.similarity import exact_neighbours

    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors = np.concatenate([vectors, vectors[:5], vectors[:5]])  # three of each of the first five
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found, sims = exact_neighbours(vectors, 7)
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    assert found.shape == sims.shape == (310, 7)
    assert not (found == np.arange(310)[:, None]).any()
    np.testing.assert_allclose(sims, -np.sort(-scores, axis=1)[:, :7], atol=1e-6)
    np.testing.assert_allclose(sims, np.take_along_axis(scores, found, axis=1), atol=1e-6)
    for copy in (0, 300, 305):  # the copies of item 0: each one's two others come first
        assert set(found[copy, :2]) == {0, 300, 305} - {copy}
    assert exact_neighbours(vectors[:1], 7)[0].shape == (1, 0)


def test_a_neighbour_search_run_beside_other_work_gives_the_graph_of_one_run_in_line() -> None:
    from dataclasses import replace

    from pipeline.config import ClusterConfig, NearDuplicateConfig
    from pipeline.dedup import find_near_duplicates
    from pipeline.similarity import build_graph, neighbours_in_background

    rng = np.random.default_rng(6)
    vectors = rng.normal(size=(400, 24)).astype(np.float32)
    vectors = np.concatenate([vectors, vectors[:20]])  # wire copies: the HNSW path's copy rows too
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = ["fire", "vote", "storm", "trial", "match", "summit", "strike", "quake"]
    texts = [f"{words[i % 8]} in town {i % 50} on day {i % 7}" for i in range(420)]
    near = find_near_duplicates(texts, texts, NearDuplicateConfig())
    for config in (ClusterConfig(), replace(ClusterConfig(), exact_neighbours_up_to=100)):  # exact, then HNSW
        hours = np.full(len(texts), np.nan)
        in_line = build_graph(texts, vectors, hours, near, config)
        beside = build_graph(texts, vectors, hours, near, config, neighbours=neighbours_in_background(vectors, config))
        for field in ("rows", "cols", "embedding", "similarity", "density"):
            assert np.array_equal(getattr(in_line, field), getattr(beside, field)), field


def _same_counts(texts: list[str]) -> None:
    """`term_counts` gives scikit-learn's `CountVectorizer` matrices entry for entry, words and names."""
    from sklearn.feature_extraction.text import CountVectorizer

    from pipeline.similarity import entity_tokens, term_counts, word_tokens

    for tokens, vectorizer in (
        (word_tokens, CountVectorizer(stop_words="english", dtype=np.float32)),
        (entity_tokens, CountVectorizer(analyzer=entity_tokens, lowercase=False, dtype=np.float32)),
    ):
        counted = term_counts(map(tokens, texts))
        try:
            expected = vectorizer.fit_transform(texts).tocsr()
        except ValueError:  # its empty vocabulary
            assert counted is None
            continue
        assert counted is not None
        matrix, terms = counted
        assert terms == list(vectorizer.get_feature_names_out())
        assert matrix.shape == expected.shape and matrix.dtype == expected.dtype
        for part in ("indptr", "indices", "data"):  # the same order in each row: the same float sums after
            assert np.array_equal(getattr(matrix, part), getattr(expected, part)), part


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["Kokomo", "the", "shot", "Shot", "4", "2016", "Police", "police", "é", "Öl", "a b"])
        ).map(" ".join),
        max_size=12,
    )
)
def test_term_counts_are_scikit_learns_entry_for_entry(texts: list[str]) -> None:
    _same_counts(texts)


def test_term_counts_are_scikit_learns_on_real_news(shared_data: Path) -> None:
    import json

    for name in ("gvc-val", "ecbplus"):
        with (shared_data / name / "docs.jsonl").open() as lines:
            records = [json.loads(line) for line in lines]
        _same_counts(list(dict.fromkeys(f"{r.get('title') or ''}\n{r.get('text') or ''}".strip() for r in records)))


def test_the_stop_words_are_scikit_learns() -> None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from pipeline.stop_words import ENGLISH_STOP_WORDS as copied

    assert copied == ENGLISH_STOP_WORDS


def test_evidence_and_density_cores_do_not_import_scikit_learn() -> None:
    """A run pays no 1.75 s import for three compiled functions of hdbscan and a word count."""
    import subprocess
    import sys

    script = """
import sys
import numpy as np
from pipeline.config import ClusterConfig
from pipeline.dedup import NearDuplicates
from pipeline.similarity import build_graph
from pipeline.cluster import cluster
texts = ["Shooting at Kokomo bar sends 4 to hospital", "Four people shot outside Kokomo nightclub",
         "Kokomo bar shooting: 4 hurt", "Markets fall in Tokyo", "Tokyo markets slide", "Fed holds rates"]
vectors = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
near = NearDuplicates(pairs=np.zeros((0, 2), dtype=np.int64), jaccard=np.zeros(0, dtype=np.float32),
                      group=np.arange(len(texts)), exact_groups=len(texts))
graph = build_graph(texts, vectors, np.full(len(texts), np.nan), near, ClusterConfig())
print(cluster(graph, ClusterConfig()).labels.tolist(), "sklearn" in sys.modules, "hdbscan.hdbscan_" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["False", "False"], done.stdout
