"""JSON Lines reader: one object per line; bad lines become rejects, the rest of the file is still read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import FieldMap
from pipeline.ingest.fields import RecordProblem, record_from_mapping, reject_row
from pipeline.records import RawRecord, Reject


def read_jsonl(path: Path, fields: FieldMap) -> Iterator[RawRecord | Reject]:
    """Yield a record or a reject for every non-blank line of `path`."""
    name = str(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as problem:
                yield reject_row(name, number, f"invalid UTF-8 at byte {problem.start}", raw)
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as problem:
                yield reject_row(name, number, f"malformed JSON: {problem.msg}", line)
                continue
            if not isinstance(row, dict):
                yield reject_row(name, number, f"malformed record: a JSON {type(row).__name__}, not an object", line)
                continue
            try:
                yield record_from_mapping(row, fields, name, number)
            except RecordProblem as problem:
                yield reject_row(name, number, str(problem), row)
