"""Ingest stage: resolve input paths, pick a reader per file, collect records and rejects."""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import FORMATS, InputConfig
from pipeline.errors import InputError
from pipeline.ingest.digest import read_digest
from pipeline.ingest.feeds import read_feed
from pipeline.ingest.jsonl import read_jsonl
from pipeline.ingest.tables import read_csv, read_parquet
from pipeline.records import RawRecord, Reject

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".rss": "rss",
    ".atom": "rss",
    ".xml": "rss",
    ".txt": "digest",
}


@dataclass
class IngestResult:
    """Everything read from the inputs: good records, rejects, and the files they came from."""

    records: list[RawRecord] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return len(self.records) + len(self.rejects)


def resolve_inputs(inputs: Iterable[str]) -> list[Path]:
    """Expand files, folders and globs into a sorted list of files; a path matching nothing is an error."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
            if not found:
                raise InputError(f"no readable input files in folder {item}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(item):
            matched = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not matched:
                raise InputError(f"no files match {item}")
            files.extend(matched)
        else:
            raise InputError(f"input not found: {item}")
    unique = list(dict.fromkeys(files))
    for path in unique:
        try:
            with path.open("rb"):
                pass
        except OSError as problem:
            raise InputError(f"cannot read {path}: {problem.strerror}") from None
    return unique


def detect_format(path: Path, forced: str = "auto") -> str:
    """The reader for a file: `forced` when given, otherwise its extension."""
    if forced != "auto":
        if forced not in FORMATS:
            raise InputError(f"unknown format {forced!r} (choose from {', '.join(FORMATS)})")
        return forced
    try:
        return EXTENSIONS[path.suffix.lower()]
    except KeyError:
        raise InputError(f"{path}: cannot tell the format from the extension; use --format") from None


def read_file(path: Path, fmt: str, config: InputConfig) -> Iterator[RawRecord | Reject]:
    if fmt == "jsonl":
        return read_jsonl(path, config.fields)
    if fmt == "csv":
        return read_csv(path, config.fields)
    if fmt == "parquet":
        return read_parquet(path, config.fields)
    if fmt == "rss":
        return read_feed(path)
    return read_digest(path)


def ingest(inputs: Iterable[str], config: InputConfig, fmt: str | None = None) -> IngestResult:
    """Read every input file; a bad record becomes a reject, a bad path or file an `InputError`."""
    result = IngestResult()
    forced = fmt or config.format
    for path in resolve_inputs(inputs):
        reader_format = detect_format(path, forced)
        result.files.append(str(path))
        try:
            for item in read_file(path, reader_format, config):
                (result.rejects if isinstance(item, Reject) else result.records).append(item)
        except OSError as problem:
            raise InputError(f"cannot read {path}: {problem.strerror or problem}") from None
    return result
