"""Incremental assignment: joins, new stories and chained merges, without the model."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from pipeline.records import Article
from pipeline.runner import _assign, story_id_for


class FakeStore:
    """Only what `_assign` reads: when each existing story was first seen."""

    def story_created(self, story_ids: list[str]) -> dict:
        first = {"s-a": datetime(2024, 1, 3), "s-b": datetime(2024, 1, 2), "s-c": datetime(2024, 1, 1)}
        return {s: (first[s], "r-1") for s in story_ids}


def article(article_id: str, title: str) -> Article:
    return Article(article_id, title, "", title, "", "src", None, None, "f", 1)


def test_story_touched_then_merged_by_another_cluster() -> None:
    # s-a has members in two clusters: {a1, n1} only touches it, {a2, b1, n2} merges it into older s-b.
    items = [article(i, f"title {i}") for i in ("a1", "a2", "b1", "n1", "n2")]
    labels = np.array([0, 1, 1, 0, 1])
    plan = _assign(FakeStore(), items, ["s-a", "s-a", "s-b"], labels, np.eye(5, dtype=np.float32), np.arange(5))
    assert plan.merges == {"s-a": "s-b"}
    assert plan.touched == {"s-b"}
    assert {m["article_id"]: m["story_id"] for m in plan.members} == {"n1": "s-b", "n2": "s-b"}
    assert [(row["story_id"], row["size"]) for row in plan.stories] == [("s-b", 5)]


def test_merges_chain_to_the_oldest_story_and_new_items_found_stories() -> None:
    # {a1, b1, n1} merges s-a into s-b; {b2, c1, n2} merges s-b into the oldest, s-c; n3 starts a story.
    items = [article(i, f"title {i}") for i in ("a1", "b1", "b2", "c1", "n1", "n2", "n3")]
    labels = np.array([0, 0, 1, 1, 0, 1, 2])
    context = ["s-a", "s-b", "s-b", "s-c"]
    plan = _assign(FakeStore(), items, context, labels, np.eye(7, dtype=np.float32), np.arange(7))
    assert plan.merges == {"s-a": "s-c", "s-b": "s-c"}
    assert plan.touched == {"s-c", story_id_for("n3")}
    assert {row["story_id"]: row["size"] for row in plan.stories} == {"s-c": 6, story_id_for("n3"): 1}
