"""Crash safety with real runs: SIGKILL at every stage boundary, and inside the embedding stage, leaves the
database as it was before the run; the next run records the killed ones and completes.

No fixed sleeps: the kills follow the run's own JSON stage log, and the one inside a stage is timed from
the embed stage of the same batch, as the run before it measured it.
"""

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
ITEMS = 2000
STAGES = ["ingest", "normalize", "embed", "minhash", "near_duplicates", "evidence", "cluster", "headline"]


def storyclust(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args, "-q", "--log-format", "json"]


def counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("articles", "story_members", "stories", "embedding_cache", "runs")
        }


def kill_after(db: Path, source: Path, stage: str, extra_seconds: float = 0.0) -> dict:
    """Start a run and SIGKILL it once `stage` has reported (plus `extra_seconds`); its log row."""
    process = subprocess.Popen(
        storyclust("run", str(source), "--db", str(db)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    row: dict = {}
    for line in process.stderr:
        if line.startswith("{") and json.loads(line).get("stage") == stage:
            row = json.loads(line)
            time.sleep(extra_seconds)
            break
    assert process.poll() is None, f"the run ended before the kill after {stage}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return row


@needs_shared_data()
@pytest.mark.slow
def test_sigkill_at_any_stage_changes_nothing_and_the_next_run_completes(tmp_path: Path) -> None:
    lines = DOCS.read_text(encoding="utf-8").splitlines(keepends=True)
    seed, batch = tmp_path / "seed.jsonl", tmp_path / "batch.jsonl"
    seed.write_text("".join(lines[:200]), encoding="utf-8")
    batch.write_text("".join(lines[:ITEMS]), encoding="utf-8")
    db = tmp_path / "stories.duckdb"
    subprocess.run(storyclust("run", str(seed), "--db", str(db)), cwd=ROOT, check=True, capture_output=True, text=True)
    before = counts(db)
    assert before["articles"] == 200

    embed_seconds = 0.0
    for stage in STAGES:
        row = kill_after(db, batch, stage)
        embed_seconds = row["seconds"] if stage == "embed" else embed_seconds
        assert counts(db) == before, f"killed after {stage}"
    # Inside the embedding stage: half the time it took on this batch a moment ago.
    kill_after(db, batch, "normalize", extra_seconds=0.5 * embed_seconds)
    assert counts(db) == before, "killed inside the embedding stage"

    finished = subprocess.run(storyclust("run", str(batch), "--db", str(db)), cwd=ROOT, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    after = counts(db)
    assert after["articles"] == after["story_members"] == ITEMS
    with duckdb.connect(str(db), read_only=True) as con:
        statuses = dict(con.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
        errors = {r[0] for r in con.execute("SELECT error FROM runs WHERE status = 'failed'").fetchall()}
    assert statuses == {"ok": 2, "failed": len(STAGES) + 1}
    assert errors == {"interrupted: the process ended before finishing"}
    assert not list(tmp_path.glob("stories.duckdb.*.tmp*"))  # the killed runs' copies are gone
