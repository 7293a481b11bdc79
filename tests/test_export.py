"""Export: both files in each format with every row and column, lists kept, atomic replacement, and the
`storyclust export` command's messages and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import pipeline.store.queries
from pipeline.cli import main
from pipeline.export import FORMATS, export
from pipeline.store import Store
from tests.test_report import MEMBERS, STORIES, make_db

READERS = {"parquet": "read_parquet", "csv": "read_csv", "jsonl": "read_json"}


@pytest.fixture
def small_db(db: Path) -> Path:
    return make_db(db)


def read_back(path: Path, fmt: str) -> list[dict]:
    con = duckdb.connect()
    result = con.execute(f"SELECT * FROM {READERS[fmt]}(?)", [str(path)])
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def columns_of(db: Path, relation: str) -> list[str]:
    with Store(db, read_only=True) as store:
        return [row[0] for row in store.db.execute(f"DESCRIBE {relation}").fetchall()]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_export_writes_every_story_and_member_with_the_evidence(small_db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "exports"
    files = export(small_db, out, fmt)
    ext = FORMATS[fmt]
    assert [(f.path, f.rows) for f in files] == [
        (out / f"stories.{ext}", len(STORIES)),
        (out / f"story_members.{ext}", len(MEMBERS)),
    ]
    stories = read_back(files[0].path, fmt)
    assert list(stories[0]) == columns_of(small_db, "stories")
    assert [s["story_id"] for s in stories] == ["s-quake", "s-evil", "s-old"]  # open by size, then merged
    assert stories[2]["merged_into"] == "s-quake"

    members = read_back(files[1].path, fmt)
    assert list(members[0]) == columns_of(small_db, "story_articles")
    by_id = {m["article_id"]: m for m in members}
    a1 = by_id["a1"]
    lists = {name: a1[name] for name in ("event_dates", "shared_names", "missing_names")}
    if fmt == "csv":  # CSV has no lists: they are JSON arrays
        lists = {name: json.loads(value) for name, value in lists.items()}
    assert [str(d) for d in lists["event_dates"]] == ["2024-07-08"]
    assert lists["shared_names"] == ["chile", "quake"] and lists["missing_names"] == ["santiago"]
    assert a1["story_similarity"] == pytest.approx(0.61, abs=1e-6) and a1["headline"] == "Quake hits Chile"
    assert by_id["a4"]["title"] == by_id["a4"]["headline"]  # hostile text goes through as data, unchanged
    if fmt == "jsonl":
        raw = {row["article_id"]: row for row in map(json.loads, files[1].path.read_text().splitlines())}
        assert raw["a1"]["story_similarity"] == 0.61  # REAL as its shortest decimal, not 0.6100000143051147


def test_export_replaces_earlier_files_and_leaves_no_temporary_ones(small_db: Path, tmp_path: Path) -> None:
    (tmp_path / "stories.csv").write_text("old\n")
    export(small_db, tmp_path, "csv")
    export(small_db, tmp_path, "csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stories.csv", "stories.duckdb", "story_members.csv"]
    assert len(read_back(tmp_path / "stories.csv", "csv")) == len(STORIES)


def test_failed_export_keeps_the_earlier_files(small_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    export(small_db, out, "parquet")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = {**pipeline.store.queries.EXPORTS, "story_members": ("no_such_view", "1")}
    monkeypatch.setattr(pipeline.store.queries, "EXPORTS", broken)
    with pytest.raises(duckdb.CatalogException):  # fails after stories.parquet's temporary file is written
        export(small_db, out, "parquet")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_export_of_an_empty_database(db: Path, tmp_path: Path) -> None:
    make_db(db, with_stories=False)
    files = export(db, tmp_path / "out", "csv")
    assert [f.rows for f in files] == [0, 0]
    assert files[0].path.read_text().startswith("story_id,headline,")


def test_export_command(small_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", "--db", str(small_db), "--format", "jsonl", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {out}/stories.jsonl: 3 rows, {out}/story_members.jsonl: 5 rows\n"


def test_export_command_formats_are_the_library_formats() -> None:
    (option,) = [p for p in main.commands["export"].params if p.name == "fmt"]
    assert list(option.type.choices) == list(FORMATS)


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("missing-db", 1, "storyclust: error: database not found: "),
        ("file-in-the-way", 2, "storyclust: error: cannot write into {tmp}/blocker/out: {tmp}/blocker is a file"),
        (
            "folder-in-the-way",
            2,
            "storyclust: error: cannot write into {tmp}/out: {tmp}/out/stories.parquet is a folder",
        ),
    ],
)
def test_export_command_errors_are_one_line(small_db: Path, tmp_path: Path, case: str, code: int, message: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    (tmp_path / "out" / "stories.parquet").mkdir(parents=True)
    db, out = small_db, tmp_path / "out"
    if case == "missing-db":
        db = tmp_path / "none.duckdb"
    elif case == "file-in-the-way":
        out = blocker / "out"
    result = CliRunner().invoke(main, ["export", "--db", str(db), "--out", str(out)])
    assert result.exit_code == code
    assert result.stderr.startswith(message.format(tmp=tmp_path)) and result.stderr.count("\n") == 1, result.stderr
    assert not [p for p in tmp_path.rglob("*.tmp")]


@pytest.mark.parametrize("args", [["--format", "xlsx", "--out", "x"], [], ["--out", __file__]])
def test_export_command_bad_usage_exits_2(small_db: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["export", "--db", str(small_db), *args])
    assert result.exit_code == 2, result.output
