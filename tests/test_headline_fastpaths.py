"""The headline stage's fast paths give what the general paths give: ASCII (any-case, per-token), and the per-story
scores (exactly the numbers of the plain computations, so the same picks)."""

from __future__ import annotations

from collections import Counter
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from pipeline import headline
from pipeline.headline import (
    _ANY_CASE,
    _LOWER,
    _TERM,
    _WORD,
    HeadlineCandidate,
    _is_date_line,
    agreement_scores,
    choose_headline,
    title_scores,
    title_terms,
    word_set,
)
from pipeline.similarity import entity_tokens, term_weights
from pipeline.timeline import rarest_names

PIECES = st.sampled_from(
    [
        "Live",
        "LIVE",
        "update",
        "Opinion",
        "WATCH",
        "March",
        "MAR.",
        "sunday",
        "Sept",
        "17,",
        "2013",
        "5:00",
        "PM",
        "GMT",
        "Last",
        "Updated",
        "at",
        "on",
        "|",
        "-",
        ":",
        "27/09/2013",
        "4th",
        "of",
        "Kokomo",
        "U.S.",
        "don't",
        "The",
        "Here's",
        "AS IT HAPPENED",
        "Review",
        "Photos",
        "3-year-old",
        "1,000",
        "utc",
    ]
)
TITLES = st.lists(PIECES, max_size=12).map(" ".join)


@given(TITLES)
def test_lower_cased_patterns_match_as_ignorecase_does(title: str) -> None:
    assert _is_date_line(title.lower(), _LOWER) == _is_date_line(title, _ANY_CASE)
    assert bool(_LOWER.label.search(title.lower())) == bool(_ANY_CASE.label.search(title))
    assert bool(_LOWER.full_date.search(title.lower())) == bool(_ANY_CASE.full_date.search(title))


@given(st.one_of(TITLES, st.text(alphabet=st.characters(max_codepoint=127), max_size=40)))
def test_ascii_terms_and_words_are_the_per_token_ones(text: str) -> None:
    assert title_terms(text) == {t.lower() for t in _TERM.findall(text)} - ENGLISH_STOP_WORDS
    assert word_set(text) == {w.lower() for w in _WORD.findall(text)}


# -- the headline stage's per-story fast paths give exactly the numbers of the plain computations ---------------------

WORDS = st.sampled_from(["Kokomo", "police", "shot", "four", "bar", "2013", "U.S.", "the", "Obama", "said", "Bar", "a"])
STORY = st.lists(
    st.tuples(
        st.lists(WORDS, max_size=7).map(" ".join),
        st.lists(WORDS, max_size=9).map(lambda words: " ".join(words) + "." if words else ""),
        st.booleans(),
    ),
    min_size=1,
    max_size=40,
)


def _story(members: list[tuple[str, str, bool]]) -> list[HeadlineCandidate]:
    return [HeadlineCandidate(f"a{i % 7}{i}", title, text, cut) for i, (title, text, cut) in enumerate(members)]


def _reference_consensus(candidates: list[HeadlineCandidate]) -> dict[tuple[str, bool], tuple[float, float, float]]:
    """The plain computation: every distinct content's terms weighted by its copies, the whole sorted vocabulary."""
    n = len(candidates)
    contents = Counter(f"{c.title}\n{c.text}".strip() for c in candidates).items()
    counts: Counter[str] = Counter()
    name_counts: Counter[str] = Counter()
    for content, copies in contents:
        for term in title_terms(content):
            counts[term] += copies
        for name in set(entity_tokens(content)):
            name_counts[name] += copies
    vocabulary = sorted(counts)
    weight = dict(zip(vocabulary, term_weights(vocabulary).tolist(), strict=True))
    support = {t: weight[t] * (counts[t] / n) for t in vocabulary}
    shared_names = {name for name, k in name_counts.items() if k >= max(2, 0.5 * n)}
    shared = [t for t in vocabulary if counts[t] / n >= 0.5 and counts[t] >= 2 and weight[t] > 0]
    if shared_names:
        shared = [t for t in shared if t in shared_names]
    shared_total = sum(weight[t] for t in shared)
    scored = {}
    for title, cut in dict.fromkeys((c.title, c.truncated) for c in candidates):
        terms = title_terms(title) if title else frozenset()
        total = sum(map(weight.__getitem__, terms))
        precision = sum(map(support.__getitem__, terms)) / total if total else 0.0
        coverage = sum(weight[t] for t in shared if t in terms) / shared_total if shared_total else precision
        fit = 2 * coverage * precision / (coverage + precision) if coverage + precision else 0.0
        scored[(title, cut)] = (coverage, precision, fit)
    return scored


@settings(deadline=None)  # the first example loads the word frequencies
@given(STORY)
def test_consensus_counts_only_what_the_scores_read(members: list[tuple[str, str, bool]]) -> None:
    candidates = _story(members)
    assert headline._consensus(candidates) == _reference_consensus(candidates)


@settings(deadline=None)  # the first example loads the word frequencies
@given(STORY, st.lists(st.floats(-1, 1), min_size=40, max_size=40))
def test_agreement_by_set_intersections_is_the_matrices_agreement(
    members: list[tuple[str, str, bool]], centrality: list[float]
) -> None:
    candidates = _story(members)
    with patch.object(headline, "_MATRIX_PAIRS", 10**9):
        by_sets = agreement_scores(candidates, centrality)
    with patch.object(headline, "_MATRIX_PAIRS", 0):
        by_matrices = agreement_scores(candidates, centrality)
    assert by_sets == by_matrices  # bit for bit: the same float32 Dice, summed in the same order


@settings(deadline=None)  # the first example loads the word frequencies
@given(STORY, st.lists(st.floats(-1, 1), min_size=40, max_size=40))
def test_the_choice_reads_the_title_scores(members: list[tuple[str, str, bool]], centrality: list[float]) -> None:
    candidates = _story(members)
    scores = title_scores(candidates, centrality[: len(candidates)])
    consensus = _reference_consensus(candidates)
    for candidate, scored in zip(candidates, scores, strict=True):
        coverage, precision, fit = consensus[(candidate.title, candidate.truncated)]
        assert (scored.coverage, scored.precision, scored.fit) == (coverage, precision, fit)
    titled = [i for i, c in enumerate(candidates) if c.title]
    vectors = np.eye(len(candidates), 8, dtype=np.float32)
    chosen = choose_headline(candidates, vectors)
    assert choose_headline(candidates, vectors, vectors.mean(axis=0)) == chosen  # the caller's mean, the same pick
    if titled and len(candidates) > 1:
        centre = (vectors @ vectors.mean(axis=0)).tolist()
        scores = title_scores(candidates, centre)
        best = min(titled, key=lambda i: (-round(scores[i].score, 6), -round(centre[i], 6), candidates[i].article_id))
        assert chosen.article_id == candidates[best].article_id


@settings(deadline=None)  # the first example loads the word frequencies
@given(st.lists(st.lists(WORDS, max_size=8).map(" ".join), min_size=1, max_size=6))
def test_rarest_names_as_the_plain_computation(contents: list[str]) -> None:
    found = [set(entity_tokens(text)) for text in dict.fromkeys(contents)]
    counts = Counter(name for names in found for name in names)
    common = sorted(name for name, count in counts.items() if 2 * count >= len(found))
    weights = term_weights(common)
    order = sorted(range(len(common)), key=lambda k: (-float(weights[k]), common[k]))
    assert rarest_names(contents, 3) == [common[k] for k in order[:3] if weights[k] > 0]


def test_member_rows_take_the_per_member_dot_products_and_the_norm() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 384)).astype(np.float32)
    centroid = vectors.mean(axis=0)
    assert np.vecdot(vectors, centroid).tolist() == [float(v @ centroid) for v in vectors]
    norms = [float(np.linalg.norm(v)) for v in vectors]  # of the centroid, in the rows
    assert [float(np.sqrt(v @ v)) for v in vectors] == norms
