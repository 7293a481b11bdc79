"""Crash safety with real runs: SIGKILL at several moments leaves the database as it was before the run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, SHARED_DATA, needs_shared_data

DOCS = SHARED_DATA / "uci-news-head" / "docs.jsonl"


def storyclust(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("articles", "story_members", "stories", "embedding_cache")
        }


@needs_shared_data()
@pytest.mark.slow
def test_sigkill_at_any_moment_changes_nothing_and_the_next_run_completes(tmp_path: Path) -> None:
    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join(DOCS.read_text(encoding="utf-8").splitlines(keepends=True)[:200]), encoding="utf-8")
    db = tmp_path / "stories.duckdb"
    subprocess.run(storyclust("run", str(seed), "--db", str(db), "-q"), cwd=ROOT, check=True, capture_output=True)
    before = counts(db)
    assert before["articles"] == 200

    for seconds in (1, 4, 9, 15):
        process = subprocess.Popen(
            storyclust("run", str(DOCS), "--db", str(db), "-q"),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(seconds)
        assert process.poll() is None, f"the run finished before the kill at {seconds} s; use a larger input"
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert counts(db) == before, f"killed at {seconds} s"

    # And once more just as the write transaction begins (the stage before it has reported).
    process = subprocess.Popen(
        storyclust("run", str(DOCS), "--db", str(db), "-q", "--log-format", "json"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in process.stderr:
        if json.loads(line).get("stage") == "headline":
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert counts(db) == before, "killed as the store stage began"

    finished = subprocess.run(
        storyclust("run", str(DOCS), "--db", str(db), "-q"), cwd=ROOT, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr
    after = counts(db)
    assert after["articles"] == after["story_members"] == 6366
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    assert statuses == {"ok": 2, "failed": 5}
