"""Headline stage: one canonical headline per story, a real member title that says what happened.

A good canonical headline carries the facts most reports of the event share (who, what, where, how many)
and little that only one outlet says; it is not a question, a teaser, an opinion or a live-blog label.
So each titled member is scored by its **consensus**: the terms of its title (words and names, weighted
by their reference weight, see `pipeline.similarity.term_weights`) are weighed by how many members name
them (in title or body), giving

- `coverage`: how much of the story's shared facts (names and numbers that at least half of the members,
  two at least, give; shared words where no name is shared) the title carries, and
- `precision`: how much of the title is shared (a long title with one outlet's colour scores low),

combined as their harmonic mean, with a penalty for titles that are questions, teasers, opinion or
live-blog labels, cut or very short. The best score wins; ties go to the member nearest the story's
centroid, then to the smallest article id, so the choice is deterministic. `Headline.reason` says why in
one line (kept in `stories.headline_reason`).

Without any title, the most central complete first sentence of a body is used; a cut sentence only as a
last resort. Candidates are already cleaned by the normalize stage (no source names, no "…").
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

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


def first_sentence(text: str, truncated: bool) -> tuple[str, bool]:
    """The first sentence of a body and whether it is complete (ends before the text was cut)."""
    parts = _SENTENCE_END.split(text, maxsplit=1)
    sentence = parts[0].strip()
    complete = len(parts) > 1 or (not truncated and bool(re.search(r"[.!?][\"”’)]?$", sentence)))
    return sentence, complete


@functools.lru_cache(maxsize=1 << 18)
def title_terms(text: str) -> frozenset[str]:
    """The content terms of a text: lower-cased words and numbers without stop words."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    lowered = map(str.lower, _TERM.findall(text))
    return frozenset(token.replace(",", "") for token in lowered if token not in ENGLISH_STOP_WORDS)


_TERM = re.compile(r"[^\W_][\w'’.-]*[^\W_]|[^\W_]")


@functools.lru_cache(maxsize=1 << 16)
def style_penalty(title: str, truncated: bool) -> tuple[float, tuple[str, ...]]:
    """A factor in (0, 1] for what makes a title a poor canonical headline, and the reasons found."""
    reasons = []
    words = len(title.split())
    if title.rstrip().endswith("?"):
        reasons.append("a question")
    if _LABEL.search(title) or _LABEL_PREFIX.match(title):
        reasons.append("a label, teaser or opinion")
    if truncated:
        reasons.append("cut")
    if words < _SHORT_WORDS:
        reasons.append("too short")
    if words > _LONG_WORDS:
        reasons.append("too long")
    letters = sum(map(str.isalpha, title))
    if letters >= 8 and _capitals(title) > 0.6 * letters:
        reasons.append("all capitals")
    return 0.5 ** len(reasons), tuple(reasons)


def _capitals(title: str) -> int:
    """Upper-case letters: in ASCII every upper-case character is a letter, so no per-character test."""
    if title.isascii():
        return sum(map(str.isupper, title))
    return sum(1 for c in title if c.isalpha() and c.isupper())  # "Ⓐ" and "Ⅷ" are upper case but no letters


@dataclass(frozen=True)
class TitleScore:
    """How well one member's title says what the story's members say."""

    score: float
    coverage: float
    precision: float
    problems: tuple[str, ...]


def consensus_scores(candidates: list[HeadlineCandidate]) -> list[TitleScore]:
    """`TitleScore` of every candidate's title against all members (title and body) of the story."""
    from pipeline.similarity import entity_tokens, term_weights

    contents = [f"{c.title}\n{c.text}".strip() for c in candidates]
    counts: Counter[str] = Counter()
    name_counts: Counter[str] = Counter()
    for content, copies in Counter(contents).items():  # wire copies: count each text once, times its copies
        _add(counts, title_terms(content), copies)
        _add(name_counts, set(entity_tokens(content)), copies)
    vocabulary = sorted(counts)
    weight = dict(zip(vocabulary, term_weights(vocabulary).tolist(), strict=True))
    support = {term: counts[term] / len(candidates) for term in vocabulary}
    shared_names = {n for n, k in name_counts.items() if k >= max(2, _SHARED * len(candidates))}
    shared = [t for t in vocabulary if support[t] >= _SHARED and counts[t] >= 2 and weight[t] > 0]
    if shared_names:  # the facts: names and numbers most members give, where there are any
        shared = [t for t in shared if t in shared_names]
    shared_total = sum(weight[t] for t in shared)
    scored: dict[tuple[str, bool], TitleScore] = {}
    for key in dict.fromkeys((c.title, c.truncated) for c in candidates):  # each distinct title once
        title, truncated = key
        terms = title_terms(title) if title else frozenset()
        total = sum(weight.get(t, 0.0) for t in terms)
        precision = sum(weight.get(t, 0.0) * support.get(t, 0.0) for t in terms) / total if total else 0.0
        coverage = sum(weight[t] for t in shared if t in terms) / shared_total if shared_total else precision
        factor, problems = style_penalty(title, truncated)
        fit = 2 * coverage * precision / (coverage + precision) if coverage + precision else 0.0
        scored[key] = TitleScore(fit * factor, coverage, precision, tuple(problems))
    return [scored[(c.title, c.truncated)] for c in candidates]


def _add(counter: Counter[str], terms: frozenset[str] | set[str], copies: int) -> None:
    """Count each of `terms` `copies` times (distinct terms: a plain update when there is one copy)."""
    if copies == 1:
        counter.update(terms)
    else:
        for term in terms:
            counter[term] += copies


def choose_headline(candidates: list[HeadlineCandidate], vectors: np.ndarray) -> Headline:
    """Pick the story headline; `vectors` are the members' unit embeddings in the same order."""
    if len(candidates) == 1 and candidates[0].title:  # a story of one: its title, nothing to weigh
        return Headline(candidates[0].title, candidates[0].article_id, "title", "the only member's title")
    centrality = (vectors @ vectors.mean(axis=0)).tolist()
    titled = [i for i in range(len(candidates)) if candidates[i].title]
    if titled:
        scores = consensus_scores(candidates)
        best = min(
            titled,
            key=lambda i: (-round(scores[i].score, 6), -round(centrality[i], 6), candidates[i].article_id),
        )
        chosen = scores[best]
        skipped = sum(1 for i in titled if scores[i].problems)
        reason = (
            f"member title with the best consensus {chosen.score:.2f} of {len(titled)} titles: carries "
            f"{chosen.coverage:.0%} of the names and numbers most members give, {chosen.precision:.0%} of its words "
            "are shared"
        )
        if chosen.problems:
            reason += f"; is {', '.join(chosen.problems)} (no better title)"
        if skipped:
            reason += f"; {skipped} title(s) marked down as question, label, teaser, cut or length"
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
