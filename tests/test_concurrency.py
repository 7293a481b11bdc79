"""Readers and writers at once: runs work on a private copy and publish it atomically.

A fake embedder stands in for the model: the concurrency code is what these test (real runs: test_soak.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import Config, StoreConfig
from pipeline.errors import LockedError
from pipeline.runner import run
from pipeline.store import MIGRATIONS, STORAGE_VERSION, apply_migration
from tests.conftest import snapshot_reader

ITEMS = [
    '{"id": "a1", "title": "Earthquake of magnitude 7 hits northern Chile", "published_at": "2024-03-01T10:00:00Z"}',
    '{"id": "a2", "title": "Magnitude 7 earthquake strikes northern Chile", "published_at": "2024-03-01T11:00:00Z"}',
    '{"id": "b1", "title": "Central bank raises rates by half a point", "published_at": "2024-03-01T12:00:00Z"}',
]

# Holds the database open for writing (as a DuckDB shell opened without -readonly would) until stdin closes.
FOREIGN_WRITER = "import sys, duckdb; con = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "news.jsonl"
    path.write_text("\n".join(ITEMS) + "\n")
    return path


pytestmark = pytest.mark.usefixtures("fake_model")


def quick(wait_seconds: float = 0.5) -> Config:
    return Config(store=StoreConfig(lock_wait_seconds=wait_seconds))


def count(db: Path, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def leftovers(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name) and p.suffix != ".lock")


def foreign_writer(db: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", FOREIGN_WRITER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "open"
    return process


def test_a_run_publishes_a_file_every_duckdb_1_2_and_later_reads(source: Path, db: Path) -> None:
    run([str(source)], quick(), db=db)
    with duckdb.connect(str(db), read_only=True) as con:
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    assert tags["storage_version"].startswith(STORAGE_VERSION)
    assert leftovers(db) == [db.name]  # no working copy or write-ahead log left beside it


def test_a_file_in_duckdb_2_format_is_rewritten_in_the_compatible_one(source: Path, db: Path) -> None:
    with duckdb.connect(str(db)) as con:  # as storyclust before this change wrote it
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)")
        for version, (name, sql) in enumerate(MIGRATIONS, start=1):
            apply_migration(con, sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
        con.execute("INSERT INTO runs (run_id, status, started_at) VALUES ('r-old', 'ok', now())")
    run([str(source)], quick(), db=db)
    with duckdb.connect(str(db), read_only=True) as con:
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
        runs = sorted(r[0] for r in con.execute("SELECT status FROM runs").fetchall())
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'stories'").fetchone()[0]
    assert tags["storage_version"].startswith(STORAGE_VERSION)
    assert runs == ["ok", "ok"] and comment
    assert count(db, "articles") == 3


def test_a_reader_holding_the_file_never_blocks_a_run_and_keeps_its_snapshot(source: Path, db: Path) -> None:
    run([str(source)], quick(), db=db)
    more = source.with_name("more.jsonl")
    more.write_text('{"id": "c1", "title": "Floods close roads in Valencia", "published_at": "2024-03-02T09:00:00Z"}\n')
    reader = snapshot_reader(db)
    assert reader.stdout.readline().strip() == "3"
    report = run([str(more)], quick(), db=db)
    held, _ = reader.communicate("")
    assert report.articles_new == 1
    assert held.strip() == "3"  # the open session still reads the state it opened
    assert count(db, "articles") == 4  # a new connection reads the new one


def test_a_program_holding_the_file_for_writing_makes_the_run_wait_then_exit_75(source: Path, db: Path) -> None:
    run([str(source)], quick(), db=db)
    more = source.with_name("more.jsonl")
    more.write_text('{"id": "c1", "title": "Floods close roads in Valencia"}\n')
    writer = foreign_writer(db)
    try:
        start = time.monotonic()
        with pytest.raises(LockedError, match="held open for writing by process .*waited 1 s"):
            run([str(more)], quick(1.0), db=db)
        assert time.monotonic() - start >= 1.0
        result = CliRunner().invoke(main, ["stories", "--db", str(db), "--config", str(_config_file(db, 0.3))])
        assert result.exit_code == 75
        assert result.stderr.count("\n") == 1 and "held open for writing" in result.stderr
    finally:
        writer.communicate("")
    assert run([str(more)], quick(), db=db).articles_new == 1  # nothing lost: the next run takes it
    assert leftovers(db) == [db.name]


def test_a_file_changed_by_another_program_during_the_run_is_not_overwritten(source: Path, db: Path) -> None:
    run([str(source)], quick(), db=db)
    more = source.with_name("more.jsonl")
    more.write_text('{"id": "c1", "title": "Floods close roads in Valencia"}\n')

    def change_the_file(stage: str, seconds: float, counts: dict) -> None:
        if stage == "cluster":  # after the copy was taken, before it is published
            with duckdb.connect(str(db)) as con:
                con.execute("INSERT INTO runs (run_id, status, started_at) VALUES ('r-foreign', 'ok', now())")

    with pytest.raises(LockedError, match="changed by another program"):
        run([str(more)], quick(), db=db, log=change_the_file)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = 'r-foreign'").fetchone()[0] == 1
    assert count(db, "articles") == 3
    assert leftovers(db) == [db.name]
    assert run([str(more)], quick(), db=db).articles_new == 1


def test_a_killed_writers_copy_is_recorded_as_an_interrupted_run(source: Path, db: Path) -> None:
    run([str(source)], quick(), db=db)
    stale = db.with_name(f"{db.name}.r-killed.tmp")
    stale.write_bytes(db.read_bytes())
    run([str(source)], quick(), db=db)
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT status, error FROM runs WHERE run_id = 'r-killed'").fetchone()
    assert row == ("failed", "interrupted: the process ended before finishing")
    assert not stale.exists()


def test_prune_goes_through_a_copy_and_exits_75_while_a_run_holds_the_lock(source: Path, db: Path) -> None:
    import fcntl

    run([str(source)], quick(), db=db)
    stories = count(db, "stories")
    with open(f"{db}.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(main, ["prune", "--older-than-days", "0", "--db", str(db)])
    assert result.exit_code == 75, result.output
    result = CliRunner().invoke(main, ["prune", "--older-than-days", "0", "--db", str(db)])
    assert result.exit_code == 0 and result.output == f"pruned {stories} stories and 3 articles\n"
    assert count(db, "articles") == 0 and leftovers(db) == [db.name]


def _config_file(db: Path, wait_seconds: float) -> Path:
    path = db.with_name("wait.toml")
    path.write_text(f"[store]\nlock_wait_seconds = {wait_seconds}\n")
    return path
