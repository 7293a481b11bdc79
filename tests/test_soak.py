"""Readers during cron runs, with real runs and the real model: the soak test of issue 10, and answers
from `stories` and `show` while a run computes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.config import Config
from pipeline.runner import run
from pipeline.store import Store
from tests.conftest import ROOT, SAMPLE


@pytest.mark.slow
def test_stories_and_show_answer_while_a_run_is_computing(tmp_path: Path, shared_data: Path) -> None:
    db = tmp_path / "news.duckdb"
    cli = [sys.executable, "-m", "pipeline.cli"]
    subprocess.run([*cli, "run", str(SAMPLE), "--db", str(db), "-q"], cwd=ROOT, check=True, capture_output=True)
    story = Store(db, read_only=True)
    story_id = story.top_stories(1)[0].story_id
    story.close()
    process = subprocess.Popen(
        [*cli, "run", str(shared_data / "uci-news-head" / "docs.jsonl"), "--db", str(db), "-q", "--log-format", "json"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert '"stage": "ingest"' in process.stderr.readline()  # the run has its copy and is computing
        for command in (["stories", "-n", "3"], ["show", story_id]):
            start = time.monotonic()
            answer = subprocess.run([*cli, *command, "--db", str(db)], cwd=ROOT, capture_output=True, text=True)
            seconds = time.monotonic() - start
            assert answer.returncode == 0, answer.stderr
            assert story_id in answer.stdout
            assert process.poll() is None, "the run ended before the readers were measured"
            print(f"{command[0]} answered in {seconds:.2f} s during a run")
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_soak_ten_runs_while_readers_hold_and_poll_the_database(tmp_path: Path, shared_data: Path) -> None:
    """Issue 10's soak: runs over consecutive slices while two readers keep the file open; nothing lost."""
    from bench.slices import memberships, split_by_time
    from bench.soak import soak

    lines = (shared_data / "uci-news-head" / "docs.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(lines[:1500]), encoding="utf-8")
    parts = split_by_time(docs, 10, tmp_path)
    result = soak(parts, tmp_path / "soak.duckdb")
    assert [r["exit"] for r in result.runs] == [0] * 10, [r["error"] for r in result.runs]
    assert result.reader_failures == 0 and result.reader_queries > 20, result.reader_errors
    with duckdb.connect(str(tmp_path / "soak.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM articles").fetchone()[0]
        rejected = con.execute("SELECT count(*) FROM rejects").fetchone()[0]
    assert stored + rejected == 1500
    alone = tmp_path / "alone.duckdb"
    for part in parts:
        run([str(part)], Config(), db=alone)
    assert memberships(tmp_path / "soak.duckdb") == memberships(alone)
    print(f"published file held {result.lock_share:.1%} of the run time")
