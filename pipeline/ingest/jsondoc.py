"""JSON documents: an array of records, records under a key, or JSON Lines saved as `.json`; streamed.

A news API response saved to a file is one document, `{"status": "ok", "articles": [{...}, ...]}`. The
records are the items of an array: the one `input.records_path` names (`articles`, `response.docs`), or else
the first array, at most three keys deep, whose first item has a title or text key (or NewsAPI's shape).
A top-level array holds the records itself. A file of several documents one after another (a spool of API
responses, one per line) gives the records of each. A `.json` file laid out as JSON Lines is read as JSON
Lines; a document whose top-level object is itself a record is one record.

The file is parsed as a stream of events (ijson's `basic_parse`: no per-event prefix, so memory does not
grow with nesting), and records are built from the events one at a time, with the limits of JSON Lines: a
record over `MAX_LINE_BYTES` or nested over `MAX_DEPTH` levels is a reject (its events are passed over,
never built), and a single value over `MAX_LINE_BYTES` without a break stops the file (`FileProblem`,
keeping what was read). Malformed JSON stops the file too: unlike JSON Lines, there is no next line to
start again from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.config import InputConfig
from pipeline.ingest import files
from pipeline.ingest.compressed import input_head, open_input
from pipeline.ingest.fields import FieldMapper, configured_fields, looks_like_newsapi, mapped_columns, reject_row
from pipeline.ingest.files import UTF8_BOM, FileProblem, describe_start, display_name, optional_import, sniff_text
from pipeline.ingest.jsonl import read_jsonl
from pipeline.records import FileWarning, RawRecord, Reject

LAYOUT_HEAD_BYTES = 1 << 16  # a first line longer than this is read as a document (which copes with lines)
MAX_DEPTH = 1000  # as deep as Python's json module goes before "nested too deeply"
_MAX_RECORDS_DEPTH = 3  # keys above a records array that `auto` looks through (response.docs, data.items)
_SHOWN_KEYS = 12
_STARTS = ("start_map", "start_array")
_ENDS = ("end_map", "end_array")


def read_json(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject | FileWarning]:
    """Records of a JSON file, laid out as a document or as JSON Lines; raise `FileProblem` for a non-JSON file."""
    head = input_head(path, LAYOUT_HEAD_BYTES)
    problem = sniff_text(head, "json")
    if problem:
        raise FileProblem(problem)
    start = head.removeprefix(UTF8_BOM).lstrip()
    if start[:1] == b"<":
        raise FileProblem(f"XML or HTML, not JSON ({describe_start(start)})")
    if start[:1] not in (b"{", b"["):
        raise FileProblem(f"not a JSON document or JSON Lines ({describe_start(start)})")
    if _is_lines(start):
        return read_jsonl(path, config)
    return read_document(path, config)


def _is_lines(start: bytes) -> bool:
    """Whether the file reads as JSON Lines: its first line is a whole JSON object, and holds no records."""
    line, newline, _ = start.partition(b"\n")
    if not newline:
        return False  # one line, or longer than the head: the document reader copes with both
    try:
        first = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(first, dict) and not any(_holds_records(value) for value in first.values())


def _holds_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def read_document(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject | FileWarning]:
    """The records of a JSON document (or of several in a row), each a record or a reject, in file order."""
    ijson = optional_import("ijson", "JSON documents")
    name = display_name(path)
    target = [*config.records_path.split("."), "item"] if config.records_path else _find_records(path, config)
    mapper = FieldMapper(config, name)
    number = 0
    found = _Found()
    with open_input(path) as raw:
        source = _Source(raw)
        cursor: list[str] = []  # the key of each open container's current value ("item" in an array)
        building: _Record | None = None
        try:
            for event, value in ijson.basic_parse(source, multiple_values=True, use_float=True):
                source.mark()
                if building is None:
                    found.note(cursor, event, value)
                    found.array = found.array or (event == "start_array" and cursor == target[:-1])
                    if event != "map_key" and event not in _ENDS and cursor == target:
                        if event in _STARTS:
                            building = _Record(source, len(cursor))
                        else:
                            number += 1
                            yield mapper.item(value, number)
                            yield from mapper.due()
                if building is not None:
                    building.event(event, value)
                _step(cursor, event, value)
                if building is not None and event in _ENDS and len(cursor) == building.depth:
                    number += 1
                    yield building.item(mapper, number)
                    yield from mapper.due()
                    building = None
        except ijson.JSONError as problem:
            raise FileProblem(f"malformed JSON after record {number:,}: {_parser_message(problem)}") from None
        except ValueError as problem:  # an integer over Python's 4,300-digit limit
            raise FileProblem(f"malformed JSON after record {number:,}: {str(problem)[:200]}") from None
    if not number and config.records_path and not found.array:
        raise FileProblem(f"no records at {config.records_path!r} ({found.describe()}); check --records-path")
    yield from mapper.warnings()


def _step(cursor: list[str], event: str, value: Any) -> None:
    """Move the cursor past one parser event."""
    if event == "map_key":
        cursor[-1] = value
    elif event == "start_map":
        cursor.append("")
    elif event == "start_array":
        cursor.append("item")
    elif event in _ENDS:
        cursor.pop()


def _parser_message(problem: Exception) -> str:
    """The first line of yajl's message (the rest draws an arrow under the bad bytes)."""
    message = " ".join(str(problem).split("\n", 1)[0].split())[:200]
    if "integer overflow" in message:  # yajl reads integers into 64 bits (JSON Lines have no such limit)
        return f"{message} (an integer beyond 64 bits; write it as a string, or the file as JSON Lines)"
    return message


class _Source:
    """The file as the parser reads it, counting bytes: a value too long without a parser event stops the file.

    A string token is held whole by the parser until it ends; this is what keeps that bounded.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.bytes = 0
        self.marked = 0
        start = raw.read(len(UTF8_BOM))
        self.pending = b"" if start == UTF8_BOM else start

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing to learn whether the source gives bytes or text
            return b""
        block = self.pending + self.raw.read(max(1, size - len(self.pending)) if size > 0 else size)
        self.pending = b""
        self.bytes += len(block)
        if self.bytes - self.marked > files.MAX_LINE_BYTES + len(block):
            raise FileProblem(
                f"a JSON value over {files.MAX_LINE_BYTES:,} bytes without a break (the limit for one record)"
            )
        return block

    def mark(self) -> None:
        self.marked = self.bytes


class _Record:
    """One record built from parser events, unless it grows past the limits (then only its end is awaited)."""

    def __init__(self, source: _Source, depth: int) -> None:
        from ijson.common import ObjectBuilder

        self.source = source
        self.depth = depth  # the cursor's depth where the record started: back there, it is complete
        self.start = source.bytes
        self.level = 0
        self.builder: Any = ObjectBuilder()
        self.problem = ""

    def event(self, event: str, value: Any) -> None:
        if event in _STARTS:
            self.level += 1
        elif event in _ENDS:
            self.level -= 1
        if self.builder is None:
            return
        if self.level > MAX_DEPTH:
            self.problem, self.builder = "malformed JSON: nested too deeply", None
        elif self.source.bytes - self.start > files.MAX_LINE_BYTES:
            self.problem, self.builder = f"record too long: over {files.MAX_LINE_BYTES:,} bytes (limit)", None
        else:
            self.builder.event(event, value)

    def item(self, mapper: FieldMapper, number: int) -> RawRecord | Reject:
        if self.builder is None:
            return reject_row(mapper.file, number, self.problem, "")
        return mapper.item(self.builder.value, number)


class _Found:
    """What the document holds where the records were looked for, to say why a records path found nothing."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.array = False
        self.top = ""

    def note(self, cursor: list[str], event: str, value: Any) -> None:
        if not cursor and not self.top:
            self.top = event
        elif len(cursor) == 1 and event == "map_key" and len(self.keys) <= _SHOWN_KEYS and value not in self.keys:
            self.keys.append(str(value)[:40])

    def describe(self) -> str:
        if self.top == "start_array":
            return "the document is an array"
        if not self.keys:
            return "the document holds no keys"
        more = ", …" if len(self.keys) > _SHOWN_KEYS else ""
        return f"top-level keys: {', '.join(self.keys[:_SHOWN_KEYS])}{more}"


def _find_records(path: Path, config: InputConfig) -> list[str]:
    """Where the records are, by a first look at the document: the cursor path of a record (`articles.item`
    as `["articles", "item"]`), `[]` when the top-level values are the records.

    The first array (at most three keys deep) whose first item looks like a record holds them; a top-level
    object with a title or text key is itself a record. Failing both, an empty array at the top (a response
    with no results) holds none; otherwise the file is a `FileProblem` naming what it holds.
    """
    ijson = optional_import("ijson", "JSON documents")
    roots = set(mapped_columns(configured_fields(config), ("title", "text")))
    cursor: list[str] = []
    found = _Found()
    empty: list[str] | None = None
    candidate: list[str] | None = None  # an array whose first item is being built
    first: _Record | None = None
    previous = ""
    with open_input(path) as raw:
        source = _Source(raw)
        try:
            for event, value in ijson.basic_parse(source, multiple_values=True, use_float=True):
                source.mark()
                found.note(cursor, event, value)
                if not cursor and event == "start_array":
                    return ["item"]
                if not cursor and event not in _STARTS:
                    return []  # a top-level scalar: the values are the records (and rejected as such)
                if len(cursor) == 1 and event == "map_key" and value in roots and first is None:
                    return []
                if first is None and event == "start_map" and candidate is not None and cursor == [*candidate, "item"]:
                    first = _Record(source, len(cursor))
                if first is not None:
                    first.event(event, value)
                if event == "end_array" and previous == "start_array" and len(cursor) == 2 and empty is None:
                    empty = list(cursor)
                candidate = None
                if event == "start_array" and 1 <= len(cursor) <= _MAX_RECORDS_DEPTH and "item" not in cursor:
                    candidate = list(cursor)
                _step(cursor, event, value)
                if first is not None and event == "end_map" and len(cursor) == first.depth:
                    if first.builder is not None and _looks_like_record(first.builder.value, roots):
                        return list(cursor)
                    first = None
                previous = event
        except (ijson.JSONError, ValueError):
            return empty or []  # the reading pass says what is wrong, after the records before the fault
    if empty is not None:
        return empty
    if found.keys:
        raise FileProblem(
            f"no records found: no array of objects with a {' or '.join(sorted(roots))} key ({found.describe()}); "
            "name the array with --records-path"
        )
    return []


def _looks_like_record(row: Any, roots: set[str]) -> bool:
    return isinstance(row, Mapping) and (any(key in row for key in roots) or looks_like_newsapi(row))
