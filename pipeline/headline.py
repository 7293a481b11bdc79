"""Headline stage: one canonical headline per story, chosen from its members, deterministically.

A real headline (a member's title) is preferred over a body sentence; among candidates the one whose item
sits closest to the story's centroid wins (it says what most reports say), ties broken by article id.
Without any title, the most central complete first sentence of a body is used; a cut sentence only as a
last resort. Candidates are already cleaned by the normalize stage (no source names, no "…").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])")
_MIN_WORDS, _MAX_WORDS = 4, 40
_FALLBACK_WORDS = 16


@dataclass(frozen=True)
class HeadlineCandidate:
    article_id: str
    title: str
    text: str
    truncated: bool


@dataclass(frozen=True)
class Headline:
    text: str
    article_id: str
    kind: str  # "title", "sentence" or "excerpt": how it was obtained, for people asking why


def first_sentence(text: str, truncated: bool) -> tuple[str, bool]:
    """The first sentence of a body and whether it is complete (ends before the text was cut)."""
    parts = _SENTENCE_END.split(text, maxsplit=1)
    sentence = parts[0].strip()
    complete = len(parts) > 1 or (not truncated and bool(re.search(r"[.!?][\"”’)]?$", sentence)))
    return sentence, complete


def choose_headline(candidates: list[HeadlineCandidate], vectors: np.ndarray) -> Headline:
    """Pick the story headline; `vectors` are the members' unit embeddings in the same order."""
    centroid = vectors.mean(axis=0)
    centrality = vectors @ centroid
    order = sorted(range(len(candidates)), key=lambda i: (-round(float(centrality[i]), 6), candidates[i].article_id))

    titled = [i for i in order if candidates[i].title]
    if titled:
        whole = [i for i in titled if not candidates[i].truncated or not candidates[i].text]
        best = (whole or titled)[0]
        return Headline(candidates[best].title, candidates[best].article_id, "title")

    sentences = []
    for i in order:
        sentence, complete = first_sentence(candidates[i].text, candidates[i].truncated)
        words = len(sentence.split())
        sentences.append((i, sentence, complete and _MIN_WORDS <= words <= _MAX_WORDS))
    for i, sentence, usable in sentences:
        if usable:
            return Headline(sentence, candidates[i].article_id, "sentence")
    i, sentence, _ = sentences[0]
    words = sentence.split()
    excerpt = " ".join(words[:_FALLBACK_WORDS]).rstrip(",;:")
    return Headline(excerpt, candidates[i].article_id, "excerpt")
