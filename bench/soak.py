"""Readers and cron at once: consecutive runs while other processes keep the database open.

Two readers run the whole time: one holds a read-only DuckDB connection open from before the first run
to after the last (as a person's DuckDB shell would), the other opens the file, queries and closes it in
a loop (as `storyclust stories` or a dashboard would) and counts every failure. Each run is a whole
`storyclust run` process over the next time slice of a labelled set. Reported per run: its exit code,
its seconds, and how long it held the published file (a shared lock while copying it, then the atomic
replace) against the whole run.

    python -m bench.soak ../shared/data/uci-news-head --slices 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import machine, markdown_table, write_results
from bench.slices import memberships, split_by_time

# A reader that opens the database read-only, answers one query, and keeps the connection until stdin closes.
HOLDING_READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM runs").fetchone()[0], flush=True)
sys.stdin.read()
print(con.execute("SELECT count(*) FROM runs").fetchone()[0], flush=True)
"""

# A reader that opens, queries and closes the database in a loop until stdin closes; prints its tallies.
POLLING_READER = """
import sys, threading, time, duckdb
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
ok, failed, errors = 0, 0, set()
while not stop.is_set():
    try:
        with duckdb.connect(sys.argv[1], read_only=True) as con:
            con.execute("SELECT count(*) FROM story_articles").fetchone()
        ok += 1
    except Exception as problem:
        failed += 1
        errors.add(str(problem).splitlines()[0][:200])
    time.sleep(0.05)
print(ok, failed, *sorted(errors), sep="\\n", flush=True)
"""


@dataclass
class SoakResult:
    runs: list[dict[str, Any]] = field(default_factory=list)
    reader_queries: int = 0
    reader_failures: int = 0
    reader_errors: list[str] = field(default_factory=list)
    held_reader_saw: tuple[int, int] = (0, 0)  # runs counted by the holding reader at start and at the end

    @property
    def lock_share(self) -> float:
        held = sum(r["shared_lock_seconds"] + r["publish_seconds"] for r in self.runs)
        return held / max(sum(r["seconds"] for r in self.runs), 1e-9)


def storyclust_run(part: Path, db: Path, config: str | None = None) -> dict[str, Any]:
    """One whole `storyclust run` process; its exit code, seconds and lock timings from its JSON log."""
    command = [sys.executable, "-m", "pipeline.cli", "run", str(part), "--db", str(db), "-q", "--log-format", "json"]
    if config:
        command += ["--config", config]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_env())
    seconds = time.perf_counter() - start
    stages = {}
    for line in done.stderr.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            stages[entry["stage"]] = entry
    publish = stages.get("publish", {})
    return {
        "slice": part.name,
        "exit": done.returncode,
        "seconds": round(seconds, 3),
        "shared_lock_seconds": publish.get("copy_seconds", 0.0),
        "publish_seconds": publish.get("publish_seconds", 0.0),
        "error": "" if done.returncode == 0 else done.stderr.strip().splitlines()[-1],
    }


def soak(parts: list[Path], db: Path, config: str | None = None) -> SoakResult:
    """Run every part in turn while a holding and a polling reader keep the database open."""
    from pipeline.store import Store

    Store(db).close()  # an empty database, so the readers can open it before the first run
    holder = _reader(HOLDING_READER, db)
    poller = _reader(POLLING_READER, db)
    result = SoakResult()
    try:
        first = int(holder.stdout.readline())
        for part in parts:
            result.runs.append(storyclust_run(part, db, config))
    finally:
        held_out, _ = holder.communicate("", timeout=60)
        polled, _ = poller.communicate("", timeout=60)
    result.held_reader_saw = (first, int(held_out.split()[-1]))
    ok, failed, *errors = polled.splitlines()
    result.reader_queries, result.reader_failures, result.reader_errors = int(ok), int(failed), errors
    return result


def _reader(code: str, db: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a labelled set folder (docs.jsonl, gold.jsonl)")
    parser.add_argument("--slices", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        parts = split_by_time(args.data / "docs.jsonl", args.slices, work)
        result = soak(parts, work / "soak.duckdb")
        alone = work / "alone.duckdb"
        for part in parts:
            storyclust_run(part, alone)
        same = memberships(work / "soak.duckdb") == memberships(alone)
    rows = [
        [
            r["slice"],
            r["exit"],
            r["seconds"],
            r["shared_lock_seconds"],
            r["publish_seconds"],
            f"{(r['shared_lock_seconds'] + r['publish_seconds']) / r['seconds']:.1%}",
        ]
        for r in result.runs
    ]
    summary = (
        f"{len(result.runs)} runs over {args.data.name}; the polling reader answered {result.reader_queries} queries "
        f"with {result.reader_failures} failures; the holding reader kept its connection from run count "
        f"{result.held_reader_saw[0]} to {result.held_reader_saw[1]} (its snapshot); stories equal to the same runs "
        f"without readers: {same}; the published file was held {result.lock_share:.1%} of the run time "
        "(shared lock while copying, plus the atomic replace; no reader is ever locked out)."
    )
    table = markdown_table(["slice", "exit", "run s", "copy (shared lock) s", "publish s", "held"], rows)
    numbers = {
        "machine": machine(),
        "runs": result.runs,
        "reader_queries": result.reader_queries,
        "reader_failures": result.reader_failures,
        "same_stories": same,
        "lock_share": result.lock_share,
    }
    write_results(Path("bench/results"), "soak", numbers, f"# Readers during cron runs\n\n{summary}\n\n{table}")


if __name__ == "__main__":
    main()
