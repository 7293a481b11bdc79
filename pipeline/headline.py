"""Headline stage: one canonical headline per story, a real member title that says what happened.

A desk editor labels a story with the title that states the event in the words the reports share: short
and complete, naming who did what where. So each titled member is scored by

- `agreement`: how much its words and the other reports' titles and first sentences have in common (mean
  Dice coefficient of their word sets, the nearest `MAX_REFERENCES` members to the story's centre; its own
  first sentence counts half), and
- `consensus`: the facts it carries (terms weighted by their reference weight, see
  `pipeline.similarity.term_weights`, and by how many members name them): `coverage` of the names and numbers
  that most members give, and the `precision` of its words, combined as their harmonic mean,

weighted two to one, times a penalty for titles that are questions, teasers, opinion or live-blog labels,
date lines, dated (a full date glued to the headline), cut, very short or very long. The best score wins; ties
go to the member nearest the story's centroid, then to the smallest article id, so the choice is deterministic.
A site name trailing the title (" - KCTV5", " | Continuous News | Butte, Montana") is removed first.
`Headline.reason` says why in one line (kept in `stories.headline_reason`). Measured against human-style event
labels in `bench/labels.py`.

Without any title, the most central complete first sentence of a body is used; a cut sentence only as a
last resort. Candidates are already cleaned by the normalize stage (no source names, no "…").
"""

from __future__ import annotations

import functools
import heapq
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import chain
from typing import NamedTuple

import numpy as np

from pipeline.eventdates import CALENDAR_WORDS
from pipeline.similarity import entity_tokens, term_weights
from pipeline.stop_words import ENGLISH_STOP_WORDS

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])")
_MIN_WORDS, _MAX_WORDS = 4, 40
_FALLBACK_WORDS = 16
_SHARED = 0.5  # a term that this share of the members (two at least) name belongs to the story's shared vocabulary
# Titles that do not say what happened: labels of live blogs, teasers, opinion and formats.
_LABEL = re.compile(
    r"\b(live(?:\s+(?:updates?|blog|coverage|stream))?|as it happened|opinion|editorial|analysis|commentary|"
    r"explainer|watch|video|photos?|podcast|newsletter|quiz|review|the latest|what we know|"
    r"here'?s|you won'?t|this is why|everything you need)\b",
    re.IGNORECASE,
)
_LABEL_PREFIX = re.compile(r"^[^:|]{1,30}[:|]\s")  # "LIVE: ...", "Opinion | ...", "WATCH: ..."
_SHORT_WORDS, _LONG_WORDS = 4, 22
_CALENDAR = "(?:" + "|".join(sorted(CALENDAR_WORDS, key=len, reverse=True)) + ")"
# A title that is only a date and time ("Sunday, March 17, 2013 | 5:00 PM", "Last updated at 14:00 GMT").
_DATE_WORD = re.compile(
    rf"{_CALENDAR}\.?|"
    r"[\d/:.,-]+(?:st|nd|rd|th|am|pm)?,?|gmt|utc|[ecmp][sd]t|bst|cet|am|pm|last|updated|published|posted|at|on|[|:,/-]",
    re.IGNORECASE,
)
_DATE_MARK = re.compile(
    rf"\b{_CALENDAR}\b|"
    r"\d\s?:\s?\d\d|\d\s?/\s?\d+\s?/\s?\d|\b(?:gmt|utc)\b",
    re.IGNORECASE,
)
# A full date in a title that says more ("27 / 09 / 2013 - Turkmenistan to hold ...", "Seacom operations fully
# restored: 4 November 2011", "Stock Market News for March 10, 2014"): a dateline or a roundup's date glued to the
# headline. People label an event without its date, so such a title yields to an undated one. Day, month and year
# only: "since July 2012" or "Sept. 11 memorial" name no dateline.
_FULL_DATE = re.compile(
    rf"\b{_CALENDAR}\.?\s+[0-3]?\d(?:st|nd|rd|th)?,?\s+(?:19|20)\d\d\b"
    rf"|\b[0-3]?\d(?:st|nd|rd|th)?\s+(?:of\s+)?{_CALENDAR}\.?,?\s+(?:19|20)\d\d\b"
    r"|\b[0-3]?\d\s?[/.]\s?[0-3]?\d\s?[/.]\s?(?:19|20)?\d\d\b",
    re.IGNORECASE,
)
_TWO_DIGITS_END = re.compile(r"\d\d\b")


@dataclass(frozen=True)
class _Patterns:
    label: re.Pattern[str]
    date_mark: re.Pattern[str]
    date_word: re.Pattern[str]
    full_date: re.Pattern[str]
    has_digit: Callable[[str], object]


_ANY_CASE = _Patterns(_LABEL, _DATE_MARK, _DATE_WORD, _FULL_DATE, lambda text: any(map(str.isdigit, text)))
# The same patterns without IGNORECASE, for a lower-cased ASCII title: they spell their letters in lower case, and
# in ASCII lower-casing is what IGNORECASE matches (several times faster on the alternations of calendar words).
_LOWER = _Patterns(
    *(re.compile(p.pattern) for p in (_LABEL, _DATE_MARK, _DATE_WORD, _FULL_DATE)), re.compile("[0-9]").search
)
_ASCII_LETTERS = string.ascii_letters.encode("ascii")
_ASCII_CAPITALS = string.ascii_uppercase.encode("ascii")
# A trailing site name: a separator, then a segment naming an outlet (a domain, a broadcaster's call letters,
# or an outlet word), and everything after it: " - KXLF.com | Continuous News | Butte, Montana".
_SITE_SEPARATOR = re.compile(r"\s*:\s+|\s+(?:[-|–—]|::)\s+")
_SEPARATOR_MARKS = ":-|–—"
_SITE_SEGMENT = re.compile(
    r"[\w-]+\.(?:com|net|org|co\.uk|tv|news)\b|\b(?:News|Online|TV|Channel|Radio|Station)\b|^[KW][A-Z]{2,4}[A-Za-z]*\d{0,2}\b"
)
_MAX_SITE_WORDS = 12
MAX_REFERENCES = 16  # members a title is compared with: those nearest the story's centre
_AGREEMENT_WEIGHT = 2 / 3  # agreement against consensus
OWN_LEAD_WEIGHT = 0.5  # a member's own first sentence as a reference of its title: one outlet's word, half a report
_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")


@dataclass(frozen=True)
class HeadlineCandidate:
    article_id: str
    title: str
    text: str
    truncated: bool  # the title was cut ("…")
    text_truncated: bool = False  # the body was cut


@dataclass(frozen=True)
class Headline:
    text: str
    article_id: str
    kind: str  # "title", "sentence" or "excerpt": how it was obtained, for people asking why
    reason: str = ""  # one line: why this one


# Entries of each cache keyed by a text (a title or a content). A text is looked up by its own story (its member
# row, its headline, the story's names), and the stories go one at a time, so these need room for one story's
# texts; room for every text of the run (2^18) held 470 MB at 200k items, at the run's memory peak.
_TEXT_CACHE = 1 << 14


def first_sentence(text: str, truncated: bool) -> tuple[str, bool]:
    """The first sentence of a body and whether it is complete (ends before the text was cut)."""
    parts = _SENTENCE_END.split(text, maxsplit=1)
    sentence = parts[0].strip()
    complete = len(parts) > 1 or (not truncated and bool(re.search(r"[.!?][\"”’)]?$", sentence)))
    return sentence, complete


@functools.lru_cache(maxsize=_TEXT_CACHE)
def title_terms(text: str) -> frozenset[str]:
    """The content terms of a text: lower-cased words and numbers without stop words."""
    if text.isascii():  # lower-casing ASCII changes no word boundary: one call for the whole text
        return frozenset(_TERM.findall(text.lower())).difference(ENGLISH_STOP_WORDS)
    lowered = map(str.lower, _TERM.findall(text))
    return frozenset(token for token in lowered if token not in ENGLISH_STOP_WORDS)


_TERM = re.compile(r"[^\W_][\w'’.-]*[^\W_]|[^\W_]")


@functools.lru_cache(maxsize=_TEXT_CACHE)
def without_site_name(title: str) -> str:
    """`title` without a trailing site name (and a dangling separator); unchanged when under 3 words would remain."""
    # Most titles: no separator (each has a colon, a dash, a bar or "::"), so no trailing segment.
    if not any(map(title.__contains__, _SEPARATOR_MARKS)) or not _SITE_SEPARATOR.search(title):
        return title.rstrip(" -|–—").strip() or title
    parts = _SITE_SEPARATOR.split(title)
    end = 0
    for k, part in enumerate(parts):
        start = title.index(part, end)
        if k and len(part.split()) <= _MAX_SITE_WORDS and _SITE_SEGMENT.search(part):
            head = title[:start].rstrip(" -|–—:")
            if len(head.split()) >= 3:
                return head
        end = start + len(part)
    return title.rstrip(" -|–—").strip() or title


def is_date_line(title: str) -> bool:
    """A title that says when, not what: it names a date or time, and fewer than 3 (or a third) of its words are
    not date words."""
    if title.isascii():  # the same tests on the lower-cased text, without IGNORECASE (see `_LOWER`)
        return _is_date_line(title.lower(), _LOWER)
    return _is_date_line(title, _ANY_CASE)


def _is_date_line(title: str, patterns: _Patterns) -> bool:
    if not patterns.has_digit(title) or not patterns.date_mark.search(title):  # a date line has a number
        return False
    words = title.split()
    rest = sum(1 for word in words if not patterns.date_word.fullmatch(word))
    return rest < 3 or rest * 3 < len(words)


@functools.lru_cache(maxsize=_TEXT_CACHE)
def style_penalty(title: str, truncated: bool) -> tuple[float, tuple[str, ...]]:
    """A factor in (0, 1] for what makes a title a poor canonical headline, and the reasons found."""
    reasons = []
    words = len(title.split())
    if title.rstrip().endswith("?"):
        reasons.append("a question")
    ascii_title = title.isascii()
    text, patterns = (title.lower(), _LOWER) if ascii_title else (title, _ANY_CASE)
    if patterns.label.search(text) or _LABEL_PREFIX.match(title):
        reasons.append("a label, teaser or opinion")
    if _is_date_line(text, patterns):
        reasons.append("a date line")
    elif _TWO_DIGITS_END.search(title) and patterns.full_date.search(text):  # a full date ends in two digits
        reasons.append("dated")
    if truncated:
        reasons.append("cut")
    if words < _SHORT_WORDS:
        reasons.append("too short")
    if words > _LONG_WORDS:
        reasons.append("too long")
    if ascii_title:  # ASCII letters and capitals: what the bytes lose when they are deleted
        data = title.encode("ascii")
        letters = len(data) - len(data.translate(None, _ASCII_LETTERS))
        capitals = len(data) - len(data.translate(None, _ASCII_CAPITALS))
    else:
        letters = sum(map(str.isalpha, title))
        capitals = sum(1 for c in title if c.isalpha() and c.isupper())  # "Ⓐ" and "Ⅷ" are upper case but no letters
    if letters >= 8 and capitals > 0.6 * letters:
        reasons.append("all capitals")
    return 0.5 ** len(reasons), tuple(reasons)


class TitleScore(NamedTuple):
    """How well one member's title says what the story's members say (a tuple: one is made per distinct title
    of every story)."""

    score: float
    coverage: float
    precision: float
    problems: tuple[str, ...]
    fit: float = 0.0  # harmonic mean of coverage and precision, before the style penalty
    agreement: float = 0.0  # mean share of words with the other titles and the first sentences (its own: half)


def consensus_scores(candidates: list[HeadlineCandidate]) -> list[TitleScore]:
    """`TitleScore` of every candidate's title against all members (title and body) of the story."""
    scored = {}
    for key, (coverage, precision, fit) in _consensus(candidates).items():
        factor, problems = style_penalty(*key)
        scored[key] = TitleScore(fit * factor, coverage, precision, problems, fit)
    return [scored[(c.title, c.truncated)] for c in candidates]


def _consensus(candidates: list[HeadlineCandidate]) -> dict[tuple[str, bool], tuple[float, float, float]]:
    """Coverage, precision and fit (their harmonic mean) of each distinct (title, cut) of a story's candidates.

    Only what the scores read is computed: the counts of every term, the weights of the titles' terms and of
    the terms most members give (not of the whole vocabulary, nor sorted); a wire copy's terms are counted as
    often as it has copies, as every member's are.
    """
    n = len(candidates)
    contents = [f"{c.title}\n{c.text}".strip() for c in candidates]
    counts = Counter(chain.from_iterable(map(title_terms, contents)))
    names = Counter(chain.from_iterable(map(entity_set, contents)))
    shared_names = {name for name, k in names.items() if k >= max(2, _SHARED * n)}
    shared = sorted(t for t, k in counts.items() if k / n >= _SHARED and k >= 2 and term_weight(t) > 0)
    if shared_names:  # the facts: names and numbers most members give, where there are any
        shared = [t for t in shared if t in shared_names]
    shared_weights = [term_weight(t) for t in shared]
    shared_total = sum(shared_weights)
    scored: dict[tuple[str, bool], tuple[float, float, float]] = {}
    for key in dict.fromkeys((c.title, c.truncated) for c in candidates):  # each distinct title once
        # A title's terms are counted: its own member's content begins with it.
        terms = title_terms(key[0]) if key[0] else frozenset()
        weights = list(map(term_weight, terms))
        total = sum(weights)
        precision = sum([w * (counts[t] / n) for t, w in zip(terms, weights, strict=True)]) / total if total else 0.0
        if shared_total:
            coverage = sum([w for t, w in zip(shared, shared_weights, strict=True) if t in terms]) / shared_total
        else:
            coverage = precision
        fit = 2 * coverage * precision / (coverage + precision) if coverage + precision else 0.0
        scored[key] = (coverage, precision, fit)
    return scored


@functools.lru_cache(maxsize=_TEXT_CACHE)
def entity_set(content: str) -> frozenset[str]:
    """The distinct names and numbers of a text (`pipeline.similarity.entity_tokens`), kept for the run's
    stories: their headlines, names and member rows read them."""
    return frozenset(entity_tokens(content))


@functools.lru_cache(maxsize=1 << 20)
def term_weight(term: str) -> float:
    """`pipeline.similarity.term_weights` of one term, as the float32 it is there."""
    return term_weights([term]).item()


@functools.lru_cache(maxsize=_TEXT_CACHE)
def word_set(text: str) -> frozenset[str]:
    """The distinct lower-cased words of a text."""
    if text.isascii():  # lower-casing ASCII changes no word boundary: one call for the whole text
        return frozenset(_WORD.findall(text.lower()))
    return frozenset(word.lower() for word in _WORD.findall(text))


def agreement_scores(candidates: list[HeadlineCandidate], centrality: list[float]) -> dict[str, float]:
    """Each distinct title's weighted mean share of words with the other reports' titles and the first sentences:
    the Dice coefficient of their word sets (token F1 without repeats).

    The references are the titles and first sentences of the `MAX_REFERENCES` members nearest the story's
    centre (all members of a smaller story). A member's own title is not its reference; its own first sentence
    counts `OWN_LEAD_WEIGHT` of a reference: a news title states what its lead says, so a title that its own
    lead bears out reports the event, while a follow-up angle or teaser does not (in a story of two, the only
    other evidence there is).

    A large story's pairs at once (word-incidence matrices of titles and references, their product the shared
    words); a small one's by set intersections, where a dozen numpy calls cost more than its few pairs. Both
    give the same numbers (tests/test_headline_fastpaths.py): Dice as float32, summed in reference order.
    """
    nearest = heapq.nsmallest(
        MAX_REFERENCES, range(len(candidates)), key=lambda i: (-centrality[i], candidates[i].article_id)
    )
    references: list[tuple[frozenset[str], int, float]] = []  # words, owner, weight when the owner's own
    for i in nearest:
        candidate = candidates[i]
        if candidate.title:
            references.append((word_set(candidate.title), i, 0.0))
        if candidate.text:
            sentence = first_sentence(candidate.text, candidate.text_truncated)[0]
            if sentence:
                references.append((word_set(sentence), i, OWN_LEAD_WEIGHT))
    first_of: dict[str, int] = {}
    for i, candidate in enumerate(candidates):
        if candidate.title:
            first_of.setdefault(candidate.title, i)
    if len(first_of) * len(references) >= _MATRIX_PAIRS:
        return _agreement_matrices(first_of, references)
    means = {}
    for title, first in first_of.items():
        words = word_set(title)
        shared = total = 0.0
        for reference, owner, own_weight in references:
            weight = own_weight if owner == first else 1.0
            if weight:
                total += weight
                both = len(words) + len(reference)
                if both:
                    shared += _dice(len(words & reference), both) * weight
        means[title] = shared / total if total > 0 else 0.0
    return means


_MATRIX_PAIRS = 512  # title-reference pairs from which a story's agreement is computed with matrices


def _agreement_matrices(
    first_of: dict[str, int], references: list[tuple[frozenset[str], int, float]]
) -> dict[str, float]:
    """`agreement_scores` of the titles (each with its first member) by word-incidence matrices."""
    titles = list(first_of)
    # Columns: the references' words only; a title's other words count in its size, never as shared.
    vocabulary: dict[str, int] = {}
    reference_words = [[vocabulary.setdefault(w, len(vocabulary)) for w in words] for words, _, _ in references]
    known = frozenset(vocabulary)
    title_sets = [word_set(t) for t in titles]
    title_matrix = _incidence([[vocabulary[w] for w in words & known] for words in title_sets], len(vocabulary))
    reference_matrix = _incidence(reference_words, len(vocabulary))
    shared = title_matrix @ reference_matrix.T
    title_sizes = np.array([len(words) for words in title_sets], dtype=np.float32)
    sizes = title_sizes[:, None] + reference_matrix.sum(axis=1)[None, :]
    dice = np.divide(2 * shared, sizes, out=np.zeros_like(shared), where=sizes > 0)  # an empty side shares 0
    owners = np.array([owner for _, owner, _ in references])
    own = owners[None, :] == np.array([first_of[t] for t in titles])[:, None]
    own_weights = np.array([weight for _, _, weight in references])
    weights = np.where(own, own_weights[None, :], 1.0)
    total = weights.sum(axis=1)
    means = np.divide((dice * weights).sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
    return dict(zip(titles, means.tolist(), strict=True))


def _incidence(rows: list[list[int]], columns: int) -> np.ndarray:
    """A 0/1 float32 matrix with a one in row r at each column that `rows[r]` lists."""
    matrix = np.zeros((len(rows), columns), dtype=np.float32)
    lengths = [len(row) for row in rows]
    matrix[np.repeat(np.arange(len(rows)), lengths), [c for row in rows for c in row]] = 1.0
    return matrix


@functools.lru_cache(maxsize=1 << 12)
def _dice(shared: int, sizes: int) -> float:
    """2 · shared / sizes as the float32 it is in a float32 matrix product."""
    return float(np.float32(2 * shared) / np.float32(sizes))


def title_scores(candidates: list[HeadlineCandidate], centrality: list[float]) -> list[TitleScore]:
    """Agreement and consensus of every candidate's title, combined and marked down for style."""
    scored = _title_scores(candidates, centrality)
    return [scored[(c.title, c.truncated)] for c in candidates]


def _title_scores(candidates: list[HeadlineCandidate], centrality: list[float]) -> dict[tuple[str, bool], TitleScore]:
    """`title_scores` of each distinct (title, cut): a story's choice reads one of them."""
    agreement = agreement_scores(candidates, centrality)
    scored: dict[tuple[str, bool], TitleScore] = {}
    for key, (coverage, precision, fit) in _consensus(candidates).items():
        factor, problems = style_penalty(*key)
        agree = agreement.get(key[0], 0.0)
        score = (_AGREEMENT_WEIGHT * agree + (1 - _AGREEMENT_WEIGHT) * fit) * factor
        scored[key] = TitleScore(score, coverage, precision, problems, fit, agree)
    return scored


def choose_headline(
    candidates: list[HeadlineCandidate], vectors: np.ndarray, mean: np.ndarray | None = None
) -> Headline:
    """Pick the story headline; `vectors` are the members' unit embeddings in the same order (`mean`: their mean,
    where the caller has it)."""
    cleaned = [without_site_name(c.title) if c.title else c.title for c in candidates]
    site_removed = {c.article_id for c, title in zip(candidates, cleaned, strict=True) if title != c.title}
    if site_removed:  # a copy only of the candidates whose title changed
        candidates = [c if c.title == t else replace(c, title=t) for c, t in zip(candidates, cleaned, strict=True)]
    if len(candidates) == 1 and candidates[0].title:  # a story of one: its title, nothing to weigh
        reason = "the only member's title" + ("; site name removed" if site_removed else "")
        return Headline(candidates[0].title, candidates[0].article_id, "title", reason)
    centrality = (vectors @ (vectors.mean(axis=0) if mean is None else mean)).tolist()
    titled = [i for i in range(len(candidates)) if candidates[i].title]
    if titled:
        scores = _title_scores(candidates, centrality)
        keys = [(c.title, c.truncated) for c in candidates]
        rounded = {key: round(scored.score, 6) for key, scored in scores.items() if key[0]}
        top = max(rounded.values())  # the best score; ties go to the most central member, then the smallest id
        best = min(
            (i for i in titled if rounded[keys[i]] == top),
            key=lambda i: (-round(centrality[i], 6), candidates[i].article_id),
        )
        chosen = scores[keys[best]]
        skipped = sum(1 for i in titled if scores[keys[i]].problems)
        reason = (
            f"member title that agrees best with the reports, {chosen.score:.2f} of {len(titled)} titles: shares "
            f"{chosen.agreement:.0%} of its words with the other titles and the first sentences (its own counted "
            f"half), carries "
            f"{chosen.coverage:.0%} of the names and numbers most members give"
        )
        if candidates[best].article_id in site_removed:
            reason += "; site name removed"
        if chosen.problems:
            reason += f"; is {', '.join(chosen.problems)} (no better title)"
        if skipped:
            reason += f"; {skipped} title(s) marked down as question, label, date line, dated, teaser, cut or length"
        return Headline(candidates[best].title, candidates[best].article_id, "title", reason)

    order = sorted(range(len(candidates)), key=lambda i: (-round(centrality[i], 6), candidates[i].article_id))
    sentences = []
    for i in order:
        sentence, complete = first_sentence(candidates[i].text, candidates[i].text_truncated)
        words = len(sentence.split())
        sentences.append((i, sentence, complete and _MIN_WORDS <= words <= _MAX_WORDS))
    for i, sentence, usable in sentences:
        if usable:
            reason = "no member has a title: the complete first sentence of the member nearest the story's centre"
            return Headline(sentence, candidates[i].article_id, "sentence", reason)
    i, sentence, _ = sentences[0]
    words = sentence.split()
    excerpt = " ".join(words[:_FALLBACK_WORDS]).rstrip(",;:")
    reason = "no title and no complete first sentence: the start of the most central member's text"
    return Headline(excerpt, candidates[i].article_id, "excerpt", reason)
