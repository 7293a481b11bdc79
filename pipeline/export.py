"""Export: the stories and their members as Parquet, CSV or JSON Lines, for tools that do not read DuckDB.

Two files: `stories.<ext>` (every story, open and merged, all columns) and `story_members.<ext>` (the
`story_articles` view: one row per member with the story, the article and the evidence). DuckDB writes them
(`COPY ... TO`), each first under a temporary name and then renamed, so a half-written file never appears.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import OutputError
from pipeline.store import EXPORTS, Store

# format name -> file extension (the COPY options are `pipeline.store.COPY_OPTIONS`)
FORMATS: dict[str, str] = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    rows: int


def why_unwritable(path: Path, problem: Exception) -> str:
    """A short reason a path cannot be written: a file where a folder must be is named, the OS's words otherwise."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder"
            break
    if isinstance(problem, IsADirectoryError):
        return f"{problem.filename2 or problem.filename or path} is a folder"
    if isinstance(problem, OSError) and problem.strerror:
        return problem.strerror
    return str(problem).splitlines()[0]


def export(db_path: str | Path, out_dir: str | Path, fmt: str, wait_seconds: float = 0.0) -> list[ExportedFile]:
    """Write stories.<ext> and story_members.<ext> into `out_dir` (created if missing), replacing earlier ones.

    Both files are written before either is renamed into place, so a failed write leaves the earlier files.
    `wait_seconds`: how long to wait for another program that holds the database open for writing.
    """
    import duckdb

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    ext = FORMATS[fmt]
    out = Path(out_dir)
    written: list[tuple[Path, Path, int]] = []
    with Store(db_path, read_only=True, wait_seconds=wait_seconds) as store:
        try:
            if out.exists() and not out.is_dir():
                raise OutputError(f"cannot write into {out}: it is a file, not a folder")
            out.mkdir(parents=True, exist_ok=True)
            finals = [out / f"{name}.{ext}" for name in EXPORTS]
            for final in finals:
                if final.is_dir():  # found before anything is written, so the renames below do not fail half-way
                    raise OutputError(f"cannot write into {out}: {final} is a folder")
            for final, name in zip(finals, EXPORTS, strict=True):
                temporary = out / f".{final.name}.{secrets.token_hex(4)}.tmp"
                written.append((temporary, final, 0))  # listed first: a COPY that fails half-way leaves a file
                written[-1] = (temporary, final, store.export_relation(name, temporary, fmt))
            for temporary, final, _ in written:
                os.replace(temporary, final)
        except (OSError, duckdb.IOException, duckdb.PermissionException) as problem:
            raise OutputError(f"cannot write into {out}: {why_unwritable(out / 'x', problem)}") from None
        finally:
            for temporary, _, _ in written:
                with contextlib.suppress(OSError):
                    temporary.unlink(missing_ok=True)
    return [ExportedFile(final, rows) for _, final, rows in written]
