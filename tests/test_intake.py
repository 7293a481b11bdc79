"""The run's intake: unreadable files recorded once and not retried until they change, record rejects
listed once however often a file is read, and run.max_items taking the input in arrival order."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import Config, RunConfig
from pipeline.runner import run
from tests.test_readers_hostile import EXPECTED, corpus  # noqa: F401 - the corpus fixture

pytestmark = pytest.mark.usefixtures("fake_model")


def rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_hostile_batch_ends_0_and_unchanged_bad_files_are_not_read_again(corpus: Path, tmp_path: Path) -> None:  # noqa: F811
    db = tmp_path / "stories.duckdb"
    first = run([str(corpus)], Config(), db=db)
    unreadable = {Path(r.file).name: r.reason for r in first.file_rejects}
    expected_bad = {name for name, (_, _, why) in EXPECTED.items() if why and (corpus / name).exists()}
    assert expected_bad <= set(unreadable)
    recorded = {Path(f).name for (f,) in rows(db, "SELECT file FROM file_rejects")}
    assert set(unreadable) <= recorded
    stored = rows(db, "SELECT count(*) FROM articles")[0][0]
    rejected = rows(db, "SELECT count(*) FROM rejects")[0][0]
    # nothing lost: every record read is stored, rejected, or a repeat of one stored (same id and content)
    assert stored + rejected + first.duplicates_in_input + first.already_stored == first.lines_read

    second = run([str(corpus)], Config(), db=db)
    hashed = {Path(f).name for (f,) in rows(db, "SELECT file FROM file_rejects WHERE sha256 <> ''")}
    assert {Path(f).name for f in second.skipped_files} == hashed and hashed
    assert second.articles_new == 0
    assert rows(db, "SELECT count(*) FROM rejects")[0][0] == rejected  # listed once, not once per run

    (corpus / "zero-bytes.jsonl").write_text('{"id": "late", "title": "A file that was empty is now fixed"}\n')
    third = run([str(corpus)], Config(), db=db)
    assert third.articles_new == 1  # a changed file is read again

    listing = CliRunner().invoke(main, ["rejects", "--db", str(db)])
    assert listing.exit_code == 0
    assert "unreadable files:" in listing.output and "notes.txt" in listing.output
    assert "rejected records:" in listing.output and "malformed JSON" in listing.output


def test_max_items_takes_the_input_in_arrival_order_over_several_runs(tmp_path: Path) -> None:
    source = tmp_path / "news.jsonl"
    lines = [f'{{"id": "n{i}", "title": "Report number {i} about event {i}"}}' for i in range(10)]
    lines.insert(4, "not json")
    source.write_text("\n".join(lines) + "\n")
    db = tmp_path / "stories.duckdb"
    capped = Config(run=RunConfig(max_items=3))
    taken = []
    for _ in range(5):
        report = run([str(source)], capped, db=db)
        taken.append((report.articles_new, report.waiting))
    assert taken == [(3, True), (3, True), (3, True), (1, False), (0, False)]
    order = [r[0] for r in rows(db, "SELECT article_id FROM articles ORDER BY ingested_at, input_line")]
    assert order == [f"n{i}" for i in range(10)]
    assert rows(db, "SELECT count(*) FROM rejects")[0][0] == 1  # the bad line, once
    assert rows(db, "SELECT count(*) FROM articles")[0][0] + 1 == len(lines)


def test_the_cli_says_when_input_waits_for_the_next_run(tmp_path: Path) -> None:
    source = tmp_path / "news.jsonl"
    source.write_text("".join(f'{{"id": "n{i}", "title": "Report {i}"}}\n' for i in range(3)))
    config = tmp_path / "cap.toml"
    config.write_text("[run]\nmax_items = 2\n")
    result = CliRunner().invoke(
        main, ["run", str(source), "--db", str(tmp_path / "db.duckdb"), "--config", str(config)]
    )
    assert result.exit_code == 0
    assert "run.max_items reached: the rest of the input waits for the next run" in result.output
