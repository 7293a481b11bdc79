"""CSV and Parquet readers: one record per row, columns named by the config's field map."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import FieldMap
from pipeline.errors import InputError
from pipeline.ingest.fields import RecordProblem, record_from_mapping, reject_row
from pipeline.records import RawRecord, Reject


def read_csv(path: Path, fields: FieldMap) -> Iterator[RawRecord | Reject]:
    """Yield a record or reject per CSV row; line numbers count the header as line 1."""
    name = str(path)
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    decoded: list[str] = []
    bad_lines: dict[int, bytes] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            decoded.append(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError:
            bad_lines[number] = raw
            decoded.append("\n")
    reader = csv.DictReader(io.StringIO("".join(decoded), newline=""))
    if reader.fieldnames is None:
        return
    for row in reader:
        number = reader.line_num
        if number in bad_lines:
            yield reject_row(name, number, "invalid UTF-8", bad_lines[number])
            continue
        if None in row:
            yield reject_row(name, number, "malformed CSV row: more fields than the header", row)
            continue
        if not any(value for value in row.values()):
            continue
        cleaned = {key: (value if value != "" else None) for key, value in row.items()}
        try:
            yield record_from_mapping(cleaned, fields, name, number)
        except RecordProblem as problem:
            yield reject_row(name, number, str(problem), row)


def read_parquet(path: Path, fields: FieldMap) -> Iterator[RawRecord | Reject]:
    """Yield a record or reject per Parquet row (1-based row numbers)."""
    import pyarrow.parquet as pq

    name = str(path)
    try:
        table = pq.read_table(path)
    except Exception as problem:  # pyarrow raises several unrelated types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({problem})") from problem
    for number, row in enumerate(table.to_pylist(), start=1):
        try:
            yield record_from_mapping(row, fields, name, number)
        except RecordProblem as problem:
            yield reject_row(name, number, str(problem), row)
