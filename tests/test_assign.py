"""Incremental assignment: joins, new stories and recorded merges, without the model."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from pipeline.assign import assign_stories, story_id_for
from pipeline.config import Config, NearDuplicateConfig
from pipeline.dedup import find_near_duplicates
from pipeline.records import Article, StoryOrigin
from pipeline.similarity import build_graph


class FakeStore:
    """Only what `assign_stories` reads: when each existing story was first seen."""

    def story_created(self, story_ids: list[str]) -> dict[str, StoryOrigin]:
        first = {"s-a": datetime(2024, 1, 3), "s-b": datetime(2024, 1, 2), "s-c": datetime(2024, 1, 1)}
        return {s: StoryOrigin(first[s], "r-1") for s in story_ids}


def article(article_id: str, title: str) -> Article:
    return Article(article_id, title, "", title, "", "src", None, None, "f", 1)


def assign(items: list[Article], context: list[str], labels: np.ndarray):
    """`assign_stories` with the evidence of these items (one-hot vectors: no two items alike)."""
    config = Config()
    texts = [a.content for a in items]
    vectors = np.eye(len(items), dtype=np.float32)
    near = find_near_duplicates(texts, texts, NearDuplicateConfig())
    graph = build_graph(texts, vectors, np.full(len(items), np.nan), near, config.cluster)
    created = FakeStore().story_created(sorted(set(context)))
    return assign_stories(items, context, labels, vectors, np.arange(len(items)), graph.features, config, created)


def test_a_cluster_holding_two_stored_stories_merges_them_into_the_older_one() -> None:
    # {a1, a2, b1, n1}: the cluster stage kept s-a and s-b whole and still joined them, so they are one
    # story now: s-b is older and survives, the merge is recorded, n1 joins it; n2 starts its own story.
    items = [article(i, f"title {i}") for i in ("a1", "a2", "b1", "n1", "n2")]
    labels = np.array([0, 0, 0, 0, 1])
    plan = assign(items, ["s-a", "s-a", "s-b"], labels)
    assert plan.merges == {"s-a": "s-b"}
    assert {m["article_id"]: m["story_id"] for m in plan.members} == {"n1": "s-b", "n2": story_id_for("n2")}
    assert {row["story_id"]: row["size"] for row in plan.stories} == {"s-b": 4, story_id_for("n2"): 1}
    assert plan.created == {story_id_for("n2")}


def test_a_chain_of_merges_ends_in_the_oldest_story() -> None:
    items = [article(i, f"title {i}") for i in ("a1", "b1", "c1", "n1")]
    labels = np.array([0, 0, 0, 0])
    plan = assign(items, ["s-a", "s-b", "s-c"], labels)
    assert plan.merges == {"s-a": "s-c", "s-b": "s-c"}
    assert plan.touched == {"s-c"}
    assert [row["size"] for row in plan.stories] == [4]


def test_new_items_join_their_story_and_untouched_stories_stay() -> None:
    # {a1, n1}: n1 joins s-a; {b1} and {c1} have no new item, so they are not rewritten.
    items = [article(i, f"title {i}") for i in ("a1", "b1", "c1", "n1")]
    labels = np.array([0, 1, 2, 0])
    plan = assign(items, ["s-a", "s-b", "s-c"], labels)
    assert plan.touched == {"s-a"}
    assert plan.merges == {}
    assert {m["article_id"]: m["story_id"] for m in plan.members} == {"n1": "s-a"}
    (member,) = plan.members
    assert member["story_similarity"] is not None and member["date_agreement"] == 1.0  # undated: no conflict
