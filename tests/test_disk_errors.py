"""A full disk or a read-only database folder during a run: one line, exit 1, the database unchanged.

On a real, small tmpfs when the tests run as root (as in CI here), and by injecting the OS error always.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import Config
from pipeline.errors import StoreError
from pipeline.runner import run

pytestmark = pytest.mark.usefixtures("fake_model")

FIRST = '{"id": "a1", "title": "Earthquake of magnitude 7 hits northern Chile", "text": "%s"}\n'
MORE = '{"id": "b1", "title": "Floods close roads in Valencia"}\n'


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name + ".") and p.suffix != ".lock")


def failing(code: int) -> Callable[..., None]:
    """A stand-in for an OS call that fails as a full or read-only disk makes it fail (`code`: an errno)."""

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path]:
    first, more = tmp_path / "first.jsonl", tmp_path / "more.jsonl"
    first.write_text(FIRST % "Tsunami warnings were lifted.")
    more.write_text(MORE)
    db = tmp_path / "db" / "news.duckdb"
    run([str(first)], Config(), db=db)
    return db, more


def test_no_space_while_copying_is_one_line_and_changes_nothing(
    stored: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, more = stored
    before = digest(db)
    monkeypatch.setattr(shutil, "copyfile", failing(errno.ENOSPC))
    result = CliRunner().invoke(main, ["run", str(more), "--db", str(db), "-q"])
    assert result.exit_code == 1
    assert (
        result.stderr == f"storyclust: error: cannot write {db}: No space left on device; the database is unchanged\n"
    )
    assert digest(db) == before and leftovers(db) == []


def test_a_read_only_folder_at_publish_is_one_line_and_changes_nothing(
    stored: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, more = stored
    before = digest(db)
    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", failing(errno.EROFS))
        with pytest.raises(StoreError, match="Read-only file system; the database is unchanged"):
            run([str(more)], Config(), db=db)
    assert digest(db) == before and leftovers(db) == []
    assert run([str(more)], Config(), db=db).articles_new == 1  # and the next run takes the same input


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 16 MB tmpfs (root only: mounting needs it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected-error tests above cover the logic")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_and_a_real_read_only_mount(small_disk: Path, tmp_path: Path) -> None:
    first, more = tmp_path / "first.jsonl", tmp_path / "more.jsonl"
    first.write_text(FIRST % "Tsunami warnings were lifted.")
    more.write_text(MORE)
    db = small_disk / "news.duckdb"
    run([str(first)], Config(), db=db)
    before = digest(db)
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (free - db.stat().st_size // 2))  # no room for a copy
    result = CliRunner().invoke(main, ["run", str(more), "--db", str(db), "-q"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"storyclust: error: cannot write {db}: ") and result.stderr.count("\n") == 1
    assert "the database is unchanged" in result.stderr
    assert digest(db) == before and leftovers(db) == []

    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = CliRunner().invoke(main, ["run", str(more), "--db", str(db), "-q"])
    assert result.exit_code == 1 and "Read-only file system" in result.stderr, result.stderr
    assert digest(db) == before
    assert CliRunner().invoke(main, ["stories", "--db", str(db)]).exit_code == 0  # reading still works

    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert run([str(more)], Config(), db=db).articles_new == 1
