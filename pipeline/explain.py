"""Why two stored articles are, or are not, in one story: each signal, the rule it meets or misses.

The pair's signals come from the same code the run uses (`similarity.build_graph` on the two items: term
weights and dates do not depend on the batch, so a pair scores alone as it did in its run). The story-level
view applies the linkage's merge rules to the two stories as they are stored now
(`cluster.story_pair_evidence`, `cluster.member_fit`). Vectors come from the database's cache; an article
whose vector is not cached is embedded again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import Config
from pipeline.errors import NotFoundError
from pipeline.records import Article


@dataclass
class Signal:
    name: str
    value: float | None
    rule: str = ""  # the threshold it is held to, in words ("" when it only informs)
    met: bool | None = None
    detail: str = ""


@dataclass
class ArticleView:
    article_id: str
    title: str
    source: str | None
    published_at: str | None
    story_id: str | None
    event_dates: list[str]
    time_evidence: str  # which evidence fixed its event time: text, publication or none (neutral on time)


@dataclass
class Explanation:
    articles: tuple[ArticleView, ArticleView]
    same_story: bool
    pair: list[Signal] = field(default_factory=list)
    story: list[Signal] = field(default_factory=list)
    decision: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain(db: str | Path, id_a: str, id_b: str, config: Config) -> Explanation:
    """Explain the grouping of two stored articles."""
    from pipeline.store import Store, article_from_row

    with Store(db, read_only=True, wait_seconds=config.store.lock_wait_seconds) as store:
        stories = store.story_of_articles([id_a, id_b])
        missing = [i for i in (id_a, id_b) if i not in stories]
        if missing:
            raise NotFoundError(f"no article {missing[0]!r} in {db}")
        rows = store.story_members_of(sorted({s for s in stories.values() if s}))
        items = [article_from_row(row) for row in rows]
        story_of = [row["story_id"] for row in rows]
        vectors = _vectors(store, items, config)
        reopened = store.reopenings_of(sorted({s for s in stories.values() if s}))
    index = {a.article_id: k for k, a in enumerate(items)}
    a, b = index[id_a], index[id_b]
    explanation = _explain(items, story_of, vectors, a, b, config)
    if reopened:
        explanation.decision += "; " + "; ".join(
            f"{r.story_id} was reopened by {r.article_id} after {r.gap_hours:.0f} h without a report "
            f"(time evidence: {r.time_evidence}, mean similarity {r.story_similarity}, date agreement {r.date_agreement})"
            for r in reopened
        )
    return explanation


def _vectors(store: Any, items: list[Article], config: Config) -> np.ndarray:
    from pipeline.embed import Embedder, model_id
    from pipeline.stage import text_hash

    keys = [text_hash(a.content[: config.embed.max_chars]) for a in items]
    cached = store.cached_vectors(model_id(config.embed), sorted(set(keys)))
    missing = sorted(
        {k: a.content[: config.embed.max_chars] for k, a in zip(keys, items, strict=True) if k not in cached}.items()
    )
    if missing:
        cached |= dict(
            zip([k for k, _ in missing], Embedder(config.embed).encode([t for _, t in missing]), strict=True)
        )
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def _evidence(items: list[Article], vectors: np.ndarray, config: Config) -> Any:
    from pipeline.dedup import find_near_duplicates
    from pipeline.similarity import item_evidence

    near = find_near_duplicates([a.content for a in items], [a.content_hash for a in items], config.near_duplicates)
    return item_evidence(items, vectors, near, config.cluster)


def _explain(
    items: list[Article], story_of: list[str | None], vectors: np.ndarray, a: int, b: int, config: Config
) -> Explanation:
    from pipeline.cluster import member_fit, story_pair_evidence

    rules = config.cluster
    pair_graph = _evidence([items[a], items[b]], vectors[[a, b]], config)
    k = 0  # the one pair of a two-item graph
    weight = float(pair_graph.evidence_weight[k])
    pair_similarity = float(pair_graph.similarity[k])
    pair = [
        Signal("embedding cosine", _round(pair_graph.embedding[k]), f"weight {1 - weight:.2f} in the pair score"),
        Signal(
            "shared words (weighted)",
            _round(pair_graph.lexical[k]),
            f"weight {weight / 2:.2f} (both texts' length decides)",
        ),
        Signal(
            "shared names and numbers",
            _round(pair_graph.entity[k]),
            f"weight {weight / 2:.2f}",
            None,
            _names(items[a], items[b]),
        ),
        Signal(
            "near-copy (MinHash Jaccard)",
            _round(pair_graph.jaccard[k]),
            f"copies from {config.near_duplicates.threshold}: the score is at least this",
            True if pair_graph.jaccard[k] >= config.near_duplicates.threshold else None,
        ),
        Signal(
            "date agreement",
            _round(pair_graph.time_factor[k]),
            f"multiplies the score: how near each one's event lies to the other's dates (more than "
            f"{rules.time_scale_hours:g} h apart lowers it; no date, none borrowed: 1)",
        ),
        Signal(
            "pair similarity",
            _round(pair_similarity),
            f">= cluster.merge_similarity {rules.merge_similarity}",
            pair_similarity >= rules.merge_similarity,
        ),
    ]
    dates = pair_graph.features.dates
    view = tuple(_view(items[i], story_of[i], dates.item_dates[n], dates.sources[n]) for n, i in enumerate((a, b)))
    same = story_of[a] is not None and story_of[a] == story_of[b]
    graph = _evidence(items, vectors, config)
    story_number = {s: n for n, s in enumerate(dict.fromkeys(story_of))}
    labels = np.array([story_number[s] for s in story_of], dtype=np.int64)
    explanation = Explanation(view, same, pair)
    if same:
        fit, agreement = member_fit(graph.features, labels, np.array([a, b]), rules)
        for who, value, dates in zip((items[a].article_id, items[b].article_id), fit, agreement, strict=True):
            explanation.story.append(
                Signal(
                    f"{who}: mean similarity with the other members",
                    _round(value),
                    f">= cluster.merge_similarity {rules.merge_similarity}",
                    None if np.isnan(value) else bool(value >= rules.merge_similarity),
                )
            )
            explanation.story.append(Signal(f"{who}: mean date agreement with the other members", _round(dates)))
        explanation.decision = (
            f"one story ({story_of[a]}): every member stands with the story as a whole (mean similarity with the "
            f"others >= {rules.merge_similarity} when it joined); the pair itself scores {pair_similarity:.3f}"
        )
        return explanation

    # Two stories: the rules that kept them apart, on the stories as stored now.
    two = np.where(labels == labels[a], 0, np.where(labels == labels[b], 1, -1))
    stories = story_pair_evidence(graph.features, two, rules)
    with_b = np.where(np.arange(len(items)) == a, 1, two)  # a moved into b's story
    fit_a = member_fit(graph.features, np.where(with_b < 0, 2, with_b), np.array([a]), rules)[0][0]
    gap = _gap_hours(items, labels, labels[a], labels[b])
    explanation.story = [
        Signal("stories' mean similarity across all pairs", _round(stories.similarity), f">= cluster.merge_similarity {rules.merge_similarity}", stories.similarity >= rules.merge_similarity),
        Signal("stories' mean date agreement", _round(stories.date_agreement)),
        Signal(f"names signal within {story_of[a]}", _round(stories.within[0])),
        Signal(f"names signal within {story_of[b]}", _round(stories.within[1])),
        Signal(
            "cohesion: as alike in names across as within",
            _round(stories.names),
            f">= {stories.cohesion_needed:.3f} (cluster.merge_cohesion {rules.merge_cohesion} x the lower within)" if stories.cohesion_needed else "does not apply (a story of one, or bare headlines)",
            None if not stories.cohesion_needed else stories.names >= stories.cohesion_needed,
        ),
        Signal(
            f"{items[a].article_id}: mean similarity with {story_of[b]}",
            _round(fit_a),
            f">= cluster.merge_similarity {rules.merge_similarity}",
            None if np.isnan(fit_a) else bool(fit_a >= rules.merge_similarity),
        ),
        Signal("hours between the stories", None if gap is None else round(gap, 1), f"informs only: time enters as date agreement; past stories.window_hours {config.stories.window_hours:g} a run reopens a story for a report whose names and dates point to it"),
    ]  # fmt: skip
    missed = [s.name for s in explanation.story if s.met is False]
    explanation.decision = (
        f"two stories ({story_of[a]}, {story_of[b]}): kept apart by " + "; ".join(missed)
        if missed
        else f"two stories ({story_of[a]}, {story_of[b]}): they meet the merge rules now, but never met in one "
        "run's candidates (a later run that brings a report of both will merge them)"
    )
    return explanation


def _names(first: Article, second: Article) -> str:
    """Names and numbers both give (evidence for) and those only one gives (evidence against)."""
    from pipeline.similarity import entity_tokens

    one, two = set(entity_tokens(first.content)), set(entity_tokens(second.content))
    return (
        f"both: {', '.join(sorted(one & two)[:12]) or '-'}; only {first.article_id}: "
        f"{', '.join(sorted(one - two)[:8]) or '-'}; only {second.article_id}: {', '.join(sorted(two - one)[:8]) or '-'}"
    )


def _gap_hours(items: list[Article], labels: np.ndarray, first: int, second: int) -> float | None:
    """Hours between the two stories' spans (0 when they overlap; None when either is undated)."""
    spans = []
    for group in (first, second):
        times = [items[i].published_at for i in np.flatnonzero(labels == group) if items[i].published_at]
        if not times:
            return None
        spans.append((min(times), max(times)))
    (start_a, end_a), (start_b, end_b) = spans
    return max(0.0, (max(start_a, start_b) - min(end_a, end_b)).total_seconds() / 3600)


def _view(article: Article, story_id: str | None, dates: list[date], source: str) -> ArticleView:
    return ArticleView(
        article.article_id,
        article.title or article.text[:100],
        article.source,
        article.published_at.isoformat(sep=" ") if article.published_at else None,
        story_id,
        [d.isoformat() for d in dates],
        source,
    )


def _round(value: Any) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 3)
