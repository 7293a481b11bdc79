"""JSON Lines reader: one object per line; bad lines become rejects, the rest of the file is still read.

Streams: one bounded line at a time (`iter_lines`), so neither a huge file nor a file without line breaks
is ever held whole; a compressed file is decompressed as it is read (`open_input`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import InputConfig
from pipeline.ingest.compressed import input_head, open_input
from pipeline.ingest.fields import FieldMapper, reject_row
from pipeline.ingest.files import FileProblem, display_name, first_line, record_lines, sniff_text
from pipeline.records import FileWarning, RawRecord, Reject


def read_jsonl(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject | FileWarning]:
    """Yield a record or a reject for every non-blank line of `path`; raise `FileProblem` for a non-JSONL file."""
    name = display_name(path)
    head = input_head(path)
    problem = sniff_text(head, "jsonl")
    if problem:
        raise FileProblem(problem)
    start = first_line(head)
    if start in (b"[", b"{"):
        raise FileProblem(
            "a pretty-printed JSON document, not JSON Lines (one JSON object per line); "
            "rename it .json or use --format json"
        )
    if start[:1] == b"<":
        raise FileProblem(f"XML or HTML, not JSON Lines (starts with {start[:24].decode('utf-8', 'replace')!r})")
    mapper = FieldMapper(config, name)
    with open_input(path) as handle:
        for line in record_lines(handle, name):
            if isinstance(line, Reject):
                yield line
            elif line[1].strip():
                yield parse_line(line[1], line[0], mapper)
                yield from mapper.due()
    yield from mapper.warnings()


def parse_line(raw: bytes, number: int, mapper: FieldMapper) -> RawRecord | Reject:
    """One JSON Lines line to a record, or a reject saying why not."""
    name = mapper.file
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
    return mapper.item(row, number)
