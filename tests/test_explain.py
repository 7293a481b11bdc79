"""`storyclust explain`: the signals of a pair and the story-level rules, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import Config
from pipeline.runner import run

ITEMS = [
    '{"id": "q1", "title": "Earthquake of magnitude 7 hits northern Chile", "published_at": "2024-03-01T10:00:00Z"}',
    '{"id": "q2", "title": "Earthquake of magnitude 7 hits northern Chile", "published_at": "2024-03-01T11:00:00Z"}',
    '{"id": "b1", "title": "Central bank raises rates by half a point", "published_at": "2024-04-20T12:00:00Z"}',
]

pytestmark = pytest.mark.usefixtures("fake_model")


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    source = tmp_path / "news.jsonl"
    source.write_text("\n".join(ITEMS) + "\n")
    db = tmp_path / "news.duckdb"
    run([str(source)], Config(), db=db)
    return db


def explain(db: Path, *args: str) -> dict:
    result = CliRunner().invoke(main, ["explain", *args, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_copies_are_one_story_and_each_member_meets_the_merge_rule(stored: Path) -> None:
    found = explain(stored, "q1", "q2")
    assert found["same_story"] is True
    pair = {s["name"]: s for s in found["pair"]}
    assert pair["near-copy (MinHash Jaccard)"]["value"] == 1.0
    assert pair["pair similarity"]["met"] is True
    assert [s["met"] for s in found["story"] if "mean similarity" in s["name"]] == [True, True]
    assert found["decision"].startswith("one story")


def test_different_events_say_which_rules_kept_them_apart(stored: Path) -> None:
    found = explain(stored, "q1", "b1")
    assert found["same_story"] is False
    story = {s["name"]: s for s in found["story"]}
    assert story["hours between the stories"]["met"] is None  # time is evidence (the date agreement), not a gate
    assert story["hours between the stories"]["value"] > 168
    assert {s["name"]: s for s in found["pair"]}["date agreement"]["value"] < 0.05  # seven weeks apart
    assert story["stories' mean similarity across all pairs"]["met"] is False
    assert "kept apart by" in found["decision"] and "mean similarity" in found["decision"]
    assert [view["time_evidence"] for view in found["articles"]] == ["publication", "publication"]


def test_text_output_lists_every_signal(stored: Path) -> None:
    result = CliRunner().invoke(main, ["explain", "q1", "b1", "--db", str(stored)])
    assert result.exit_code == 0
    for line in ("embedding cosine", "date agreement", "pair similarity", "MISSED", "two stories"):
        assert line in result.output


def test_unknown_article_and_missing_database_are_one_line_errors(stored: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["explain", "q1", "nope", "--db", str(stored)])
    assert result.exit_code == 1 and result.stderr == f"storyclust: error: no article 'nope' in {stored}\n"
    result = CliRunner().invoke(main, ["explain", "q1", "q2", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1 and result.stderr.startswith("storyclust: error: database not found")
