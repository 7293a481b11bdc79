"""Every SQL recipe of the README runs, read-only, on a database from a real run: in the DuckDB 1.5 CLI
from PyPI (what most people open it with), in DuckDB 1.2 (the oldest release we promise), and in the
Python duckdb the project pins."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, SAMPLE

README = ROOT / "README.md"
OLDEST_DUCKDB = "1.2.2"
OLDEST_DIR = ROOT / ".venv" / f"duckdb-{OLDEST_DUCKDB}"  # installed once, beside the project's venv


def recipes(story_id: str) -> list[str]:
    """The statements of the README's SQL block, with the example story id replaced by a real one."""
    block = re.search(r"Or open the file in DuckDB.*?```sql\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "README lost its SQL recipes"
    lines = [line for line in block.group(1).splitlines() if not line.lstrip().startswith("--")]
    statements = [s.strip() for s in " ".join(lines).split(";") if s.strip()]
    assert len(statements) >= 6
    return [s.replace("s-562524dce669", story_id) for s in statements]


@pytest.fixture(scope="module")
def real_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("readme") / "news.duckdb"
    config = db.with_name("seal-everything.toml")  # so the recipes read the archive's Parquet segments too
    config.write_text("[store]\nsegment_rows = 1\n")
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(SAMPLE), "--db", str(db), "-q", "--config", str(config)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    with duckdb.connect(str(db), read_only=True) as con:
        story_id = con.execute("SELECT story_id FROM top_stories LIMIT 1").fetchone()[0]
        assert con.execute("SELECT count(*) FROM hot_articles").fetchone()[0] == 0  # all in segments
    return db, story_id


@pytest.mark.slow
def test_every_recipe_runs_in_the_duckdb_1_5_cli(real_db: tuple[Path, str]) -> None:
    db, story_id = real_db
    cli = shutil.which("duckdb", path=str(Path(sys.executable).parent))
    assert cli, "the DuckDB CLI is missing: `pip install 'duckdb-cli>=1.5,<1.6'` (in the test extras)"
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v1.5"), version
    for statement in recipes(story_id):
        done = subprocess.run([cli, "-readonly", "-csv", str(db), "-c", statement], capture_output=True, text=True)
        assert done.returncode == 0 and "Error" not in done.stderr, f"{statement}\n{done.stderr}"
    rows = subprocess.run(
        [cli, "-readonly", "-csv", "-noheader", str(db), "-c", "SELECT story_id FROM top_stories"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert story_id in rows


@pytest.mark.slow
def test_every_recipe_runs_in_duckdb_1_2_and_in_the_pinned_duckdb(real_db: tuple[Path, str]) -> None:
    db, story_id = real_db
    if not (OLDEST_DIR / "duckdb").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(OLDEST_DIR), f"duckdb=={OLDEST_DUCKDB}"],
            check=True,
        )  # fmt: skip
    script = (
        "import json, sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(duckdb.__version__, sum(len(con.execute(s).fetchall()) for s in json.loads(sys.argv[2])))"
    )
    statements = json.dumps(recipes(story_id))
    old = subprocess.run(
        [sys.executable, "-c", script, str(db), statements],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(OLDEST_DIR)},
    )
    assert old.returncode == 0, old.stderr
    assert old.stdout.split()[0] == OLDEST_DUCKDB
    with duckdb.connect(str(db), read_only=True) as con:
        rows = sum(len(con.execute(s).fetchall()) for s in recipes(story_id))
    assert int(old.stdout.split()[1]) == rows > 0
