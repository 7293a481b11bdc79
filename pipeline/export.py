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
from pipeline.store import Store

# format name -> (file extension, COPY options)
FORMATS: dict[str, tuple[str, str]] = {
    "parquet": ("parquet", "FORMAT parquet"),
    "csv": ("csv", "FORMAT csv, HEADER true"),
    "jsonl": ("jsonl", "FORMAT json"),  # DuckDB writes one object per line unless ARRAY true
}

# file name -> (table or view, row order)
SOURCES: dict[str, tuple[str, str]] = {
    "stories": ("stories", "status <> 'open', size DESC, last_seen DESC NULLS LAST, story_id"),
    "story_members": ("story_articles", "story_id, published_at NULLS LAST, article_id"),
}


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    rows: int


def _column(name: str, type_: str, fmt: str) -> str:
    """One column of the SELECT: CSV has no lists, so lists go as JSON arrays (["a","b"], readable by any JSON
    parser, unlike DuckDB's [a, b]); JSON gets REAL as its shortest decimal (0.55, not 0.550000011920929)."""
    quoted = '"' + name.replace('"', '""') + '"'
    if fmt == "csv" and type_.endswith("[]"):
        return f"to_json({quoted}) AS {quoted}"
    if fmt == "jsonl" and type_ == "FLOAT":
        return f"CAST(CAST({quoted} AS VARCHAR) AS DOUBLE) AS {quoted}"
    return quoted


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


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def export(db_path: str | Path, out_dir: str | Path, fmt: str, wait_seconds: float = 0.0) -> list[ExportedFile]:
    """Write stories.<ext> and story_members.<ext> into `out_dir` (created if missing), replacing earlier ones.

    Both files are written before either is renamed into place, so a failed write leaves the earlier files.
    `wait_seconds`: how long to wait for another program that holds the database open for writing.
    """
    import duckdb

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    ext, options = FORMATS[fmt]
    out = Path(out_dir)
    written: list[tuple[Path, Path, int]] = []
    with Store(db_path, read_only=True, wait_seconds=wait_seconds) as store:
        try:
            if out.exists() and not out.is_dir():
                raise OutputError(f"cannot write into {out}: it is a file, not a folder")
            out.mkdir(parents=True, exist_ok=True)
            finals = [out / f"{name}.{ext}" for name in SOURCES]
            for final in finals:
                if final.is_dir():  # found before anything is written, so the renames below do not fail half-way
                    raise OutputError(f"cannot write into {out}: {final} is a folder")
            for final, (source, order) in zip(finals, SOURCES.values(), strict=True):
                temporary = out / f".{final.name}.{secrets.token_hex(4)}.tmp"
                columns = store.db.execute(f"DESCRIBE {source}").fetchall()
                select = ", ".join(_column(column[0], column[1], fmt) for column in columns)
                written.append((temporary, final, 0))
                result = store.db.execute(
                    f"COPY (SELECT {select} FROM {source} ORDER BY {order}) TO {_sql_string(temporary)} ({options})"
                ).fetchall()
                written[-1] = (temporary, final, int(result[0][0]))
            for temporary, final, _ in written:
                os.replace(temporary, final)
        except (OSError, duckdb.IOException, duckdb.PermissionException) as problem:
            raise OutputError(f"cannot write into {out}: {why_unwritable(out / 'x', problem)}") from None
        finally:
            for temporary, _, _ in written:
                with contextlib.suppress(OSError):
                    temporary.unlink(missing_ok=True)
    return [ExportedFile(final, rows) for _, final, rows in written]
