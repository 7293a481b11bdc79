"""The headline stage's ASCII fast paths give what the general (any-case, per-token) paths give."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from pipeline.headline import _ANY_CASE, _LOWER, _TERM, _WORD, _is_date_line, title_terms, word_set

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
