"""JSON Lines reader: one object per line; bad lines become rejects, the rest of the file is still read.

Streams: one bounded line at a time (`iter_lines`), so neither a huge file nor a file without line breaks
is ever held whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import InputConfig
from pipeline.ingest.fields import RecordProblem, record_from_mapping, reject_row
from pipeline.ingest.files import (
    HEAD_BYTES,
    FileProblem,
    display_name,
    first_line,
    record_lines,
    sniff_text,
)
from pipeline.records import RawRecord, Reject


def read_jsonl(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject]:
    """Yield a record or a reject for every non-blank line of `path`; raise `FileProblem` for a non-JSONL file."""
    name = display_name(path)
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        problem = sniff_text(head, "jsonl")
        if problem:
            raise FileProblem(problem)
        start = first_line(head)
        if start in (b"[", b"{"):
            raise FileProblem("a pretty-printed JSON document, not JSON Lines (one JSON object per line)")
        if start[:1] == b"<":
            raise FileProblem(f"XML or HTML, not JSON Lines (starts with {start[:24].decode('utf-8', 'replace')!r})")
        handle.seek(0)
        for line in record_lines(handle, name):
            if isinstance(line, Reject):
                yield line
            elif line[1].strip():
                yield parse_line(line[1], line[0], name, config)


def parse_line(raw: bytes, number: int, name: str, config: InputConfig) -> RawRecord | Reject:
    """One JSON Lines line to a record, or a reject saying why not."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as problem:
        return reject_row(name, number, f"invalid UTF-8 at byte {problem.start}", raw)
    try:
        row = json.loads(line)
    except RecursionError:
        return reject_row(name, number, "malformed JSON: nested too deeply", line)
    except json.JSONDecodeError as problem:
        return reject_row(name, number, f"malformed JSON: {problem.msg}", line)
    except ValueError as problem:  # an integer over Python's 4,300-digit limit
        why = "number too long" if "digits" in str(problem) else str(problem)[:120]
        return reject_row(name, number, f"malformed JSON: {why}", line)
    if not isinstance(row, dict):
        return reject_row(name, number, f"malformed record: a JSON {type(row).__name__}, not an object", line)
    try:
        return record_from_mapping(row, config.fields, name, number, config.max_field_chars)
    except RecordProblem as problem:
        return reject_row(name, number, str(problem), row)
