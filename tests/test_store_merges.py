"""Story merges as the store writes them: every merge of a plan at once, chains resolved to the survivor."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.assign import StoryPlan
from pipeline.store import Store


def _story(story_id: str, size: int) -> dict:
    when = datetime(2026, 1, 1)
    return {
        "story_id": story_id, "headline": story_id, "headline_article_id": f"{story_id}-1", "headline_kind": "title",
        "headline_reason": "", "size": size, "sources": 1, "first_seen": when, "last_seen": when, "updated_at": when,
        "names": [], "event_first": None, "event_last": None,
    }  # fmt: skip


def _plan(members: dict[str, list[str]], merges: dict[str, str] | None = None) -> StoryPlan:
    plan = StoryPlan(merges=merges or {})
    for story, articles in members.items():
        for article in articles:
            plan.members.append((story, article, 1.0, None, None, None, None, None, [], [], [], "published"))
        plan.stories.append(_story(story, len(articles)))
        plan.touched.add(story)
    return plan


def test_merges_move_members_chain_earlier_merges_and_close_the_absorbed(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        store.write_run(
            "r1", [], _plan({"s-a": ["a1"], "s-b": ["b1"], "s-c": ["c1", "c2"], "s-d": ["d1"]}), [], {}, {}, "", ""
        )
        store.write_run("r2", [], _plan({"s-c": ["c3"]}, {"s-a": "s-c"}), [], {}, {}, "", "")
        # Several merges in one plan, one of them into a story that absorbed another before.
        store.write_run("r3", [], _plan({"s-d": ["d2"]}, {"s-c": "s-d", "s-b": "s-d"}), [], {}, {}, "", "")
        assert set(store.memberships().values()) == {"s-d"}
        merges = store.db.execute("SELECT old_story_id, story_id, run_id FROM story_merges ORDER BY ALL").fetchall()
        assert merges == [("s-a", "s-d", "r2"), ("s-b", "s-d", "r3"), ("s-c", "s-d", "r3")]
        stories = store.db.execute("SELECT story_id, status, merged_into FROM stories ORDER BY story_id").fetchall()
        assert stories == [
            ("s-a", "merged", "s-c"),
            ("s-b", "merged", "s-d"),
            ("s-c", "merged", "s-d"),
            ("s-d", "open", None),
        ]
        assert store.resolve_story("s-a") == "s-d"
