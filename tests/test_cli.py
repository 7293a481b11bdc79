"""The command line: help everywhere, exit codes, one-line errors, and the lock."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

COMMANDS = ["run", "stories", "show", "eval", "prune", "explain", "report", "export", "rejects"]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_missing_input_is_a_one_line_error(db: Path) -> None:
    result = CliRunner().invoke(main, ["run", "no/such/file.jsonl", "--db", str(db)])
    assert result.exit_code == 2
    assert result.stderr == "storyclust: error: input not found: no/such/file.jsonl\n"
    assert not db.exists()


def test_invalid_config_is_a_one_line_error(tmp_path: Path, db: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[cluster]\nmerge_similarity = -1\n")
    result = CliRunner().invoke(main, ["run", "samples", "--config", str(config), "--db", str(db)])
    assert result.exit_code == 2
    assert result.stderr.startswith("storyclust: error: cluster.merge_similarity: -1.0 is out of range")
    assert result.stderr.count("\n") == 1


def test_reading_commands_on_a_missing_database(db: Path) -> None:
    for args in (["stories"], ["show", "s-1"], ["eval", "--gold", __file__]):
        result = CliRunner().invoke(main, [*args, "--db", str(db)])
        assert result.exit_code == 1
        assert result.stderr.startswith("storyclust: error: database not found"), result.stderr


def test_second_writer_exits_75(tmp_path: Path, db: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text('{"id": "1", "title": "Quake hits Chile"}\n')
    with open(f"{db}.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(main, ["run", str(source), "--db", str(db)])
    assert result.exit_code == 75
    errors = [line for line in result.stderr.splitlines() if line.startswith("storyclust:")]
    assert errors == [f"storyclust: error: another storyclust run is writing {db}; try again later"]
