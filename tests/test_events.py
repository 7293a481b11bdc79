"""A story is one event: real model, real DuckDB file, real readers, labelled news with its dates.

gvc-val is a dated stream of one kind of event (US shootings, 2014-2016) recurring in different places
over weeks; ECB+ and uci-news-head serve as unrelated company.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.slices import split_by_time
from pipeline.config import load_config
from pipeline.evaluate import read_gold, score
from pipeline.runner import run
from pipeline.store import Store
from tests.conftest import SHARED_DATA, needs_shared_data

GVC = SHARED_DATA / "gvc-val"

pytestmark = [pytest.mark.slow, needs_shared_data()]


def stories(db: Path) -> dict[str, str]:
    with Store(db, read_only=True) as store:
        return store.memberships()


def partition(memberships: dict[str, str], items: set[str]) -> set[frozenset[str]]:
    """The stories as sets of items, restricted to `items`."""
    groups: dict[str, set[str]] = {}
    for item, story in memberships.items():
        if item in items:
            groups.setdefault(story, set()).add(item)
    return {frozenset(group) for group in groups.values()}


def lines_where(path: Path, keep: callable) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and keep(json.loads(line))]


def test_no_story_spans_two_shootings_of_a_dated_stream(tmp_path: Path) -> None:
    db = tmp_path / "gvc.duckdb"
    run([str(GVC / "docs.jsonl")], load_config(), db=db)
    gold = read_gold(GVC / "gold.jsonl")
    events_per_story: dict[str, set[str]] = {}
    for item, story in stories(db).items():
        events_per_story.setdefault(story, set()).add(gold[item])
    assert max(len(events) for events in events_per_story.values()) == 1
    assert score(stories(db), gold).bcubed_recall >= 0.9


def test_reports_naming_different_cities_stay_apart_and_agreeing_ones_join(tmp_path: Path) -> None:
    # Knox County (Friday Nov 4, 2016) and Gary (Saturday Nov 5): one day apart, same kind, two places.
    # The Gary follow-up of Nov 9 names the same place, victim details and "Saturday": the same event.
    wanted = {
        "Knox County man dead after apparent accidental shooting",
        "Person found shot to death in Gary",
        "57-year - old man found shot to death in Gary",
    }
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(lines_where(GVC / "docs.jsonl", lambda r: r["title"] in wanted)) + "\n")
    db = tmp_path / "pair.duckdb"
    run([str(docs)], load_config(), db=db)
    with Store(db, read_only=True) as store:
        rows = store.db.execute("SELECT a.title, m.story_id FROM articles a JOIN story_members m USING (article_id)")
        story_of = dict(rows.fetchall())
    assert len(story_of) == 3
    gary, gary_later = "Person found shot to death in Gary", "57-year - old man found shot to death in Gary"
    assert story_of[gary] == story_of[gary_later]
    assert story_of["Knox County man dead after apparent accidental shooting"] != story_of[gary]


def test_a_labelled_batch_gets_the_same_stories_alone_and_with_unrelated_news(tmp_path: Path) -> None:
    alone = tmp_path / "alone.duckdb"
    run([str(GVC / "docs.jsonl")], load_config(), db=alone)
    company = tmp_path / "company.jsonl"
    unrelated = lines_where(SHARED_DATA / "uci-news-head" / "docs.jsonl", lambda r: True)[:600]
    unrelated += lines_where(SHARED_DATA / "ecbplus" / "docs.jsonl", lambda r: True)[:150]
    company.write_text("\n".join(unrelated) + "\n", encoding="utf-8")
    mixed = tmp_path / "mixed.duckdb"
    run([str(GVC / "docs.jsonl"), str(company)], load_config(), db=mixed)
    items = set(read_gold(GVC / "gold.jsonl"))
    assert partition(stories(mixed), items) == partition(stories(alone), items)
    # and no gvc item shares a story with the company
    mixed_stories = stories(mixed)
    gvc_stories = {mixed_stories[item] for item in items}
    assert all(story not in gvc_stories for item, story in mixed_stories.items() if item not in items)


def test_runs_of_a_handful_of_items_build_the_stories_of_one_run(tmp_path: Path) -> None:
    whole = tmp_path / "whole.duckdb"
    run([str(GVC / "docs.jsonl")], load_config(), db=whole)
    sliced = tmp_path / "sliced.duckdb"
    for part in split_by_time(GVC / "docs.jsonl", 12, tmp_path):  # six or seven items a run
        run([str(part)], load_config(), db=sliced)
    gold = read_gold(GVC / "gold.jsonl")
    one_run, slices = score(stories(whole), gold), score(stories(sliced), gold)
    assert abs(one_run.bcubed_f1 - slices.bcubed_f1) <= 0.02, (one_run, slices)
    assert slices.bcubed_precision >= 0.93
