"""CSV and Parquet readers: one record per row, columns named by the config's field map.

Both stream: CSV through `csv.reader` over bounded, individually decoded lines (a bad line costs its
row, not the file; a compressed CSV is decompressed as it is read); Parquet one batch of rows at a time,
only the mapped columns (a corrupt row group costs its own rows, which the file reject then names, not the
groups after it). A field mapped to a nested path reads its top-level column (a Parquet struct).
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import FieldMap, InputConfig
from pipeline.ingest.compressed import compression_of, input_head, open_input
from pipeline.ingest.fields import FieldMapper, configured_fields, mapped_columns, reject_row
from pipeline.ingest.files import (
    MAX_LINE_BYTES,
    FileProblem,
    describe_start,
    display_name,
    first_line,
    iter_lines,
    line_too_long,
    read_head,
    read_tail,
    sniff_text,
)
from pipeline.records import FileWarning, RawRecord, Reject

PARQUET_BATCH_ROWS = 1024
_SHOWN_COLUMNS = 20


def missing_columns_reason(found: Sequence[str], fields: FieldMap) -> str | None:
    """Why a table cannot hold news (neither the title nor the text column), naming what it has."""
    if any(column in found for column in mapped_columns(fields, ("title", "text"))):
        return None
    names = [str(name)[:40] for name in found[:_SHOWN_COLUMNS]]
    more = f", … ({len(found)} in all)" if len(found) > _SHOWN_COLUMNS else ""
    listed = ", ".join(names) + more if names else "no columns"
    return f"no {fields.title} or {fields.text} column (found: {listed}); map them in [input.fields]"


def read_csv(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject | FileWarning]:
    """Yield a record or reject per CSV row; line numbers count the header as line 1 (a row: its first line)."""
    name = display_name(path)
    head = input_head(path)
    problem = sniff_text(head, "csv")
    if problem:
        raise FileProblem(problem)
    if first_line(head)[:1] in (b"{", b"["):
        raise FileProblem("JSON, not CSV; rename it .jsonl or use --format jsonl")
    if first_line(head)[:1] == b"<":
        raise FileProblem(f"XML or HTML, not CSV ({describe_start(first_line(head))})")
    # Fields may be long (they are cut later, with a note); the line limit still bounds memory.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    bad_lines: deque[tuple[int, str]] = deque()
    mapper = FieldMapper(config, name)
    with open_input(path) as handle:
        reader = csv.reader(_decoded_lines(handle, bad_lines), strict=True)
        header: list[str] | None = None
        previous_end = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                start, end = previous_end + 1, reader.line_num
                previous_end = end
                _take_problem(bad_lines, end)
                span = f" (lines {start}-{end})" if end > start else ""
                yield reject_row(name, start, f"malformed CSV: {error}{span}", "")
                continue
            start, end = previous_end + 1, reader.line_num
            previous_end = end
            line_problem = _take_problem(bad_lines, end)
            if header is None:
                if not row:
                    continue
                header = row
                reason = missing_columns_reason(header, configured_fields(config))
                if reason:
                    raise FileProblem(reason)
                index = {column: position for position, column in reversed(list(enumerate(header)))}
                continue
            if line_problem is not None:
                yield reject_row(name, start, line_problem, _row_preview(header, row))
                continue
            if not any(row):
                continue
            if len(row) > len(header) and any(row[len(header) :]):  # trailing empty fields are harmless
                yield reject_row(name, start, "malformed CSV row: more fields than the header", row)
                continue
            values: dict[str, Any] = {
                column: (row[position] or None) if position < len(row) else None for column, position in index.items()
            }
            yield mapper.item(values, start)
            yield from mapper.due()
        if header is None:
            raise FileProblem("no header row (the file holds no CSV rows)")
    yield from mapper.warnings()


def _decoded_lines(handle: Any, bad_lines: deque[tuple[int, str]]) -> Iterator[str]:
    """Lines for `csv.reader`, one per physical line; a line that cannot be decoded is added to `bad_lines`.

    A bad line is still given (decoded with replacement characters) so quoting stays in step; the row
    holding it becomes a reject.
    """
    for number, raw, length in iter_lines(handle):
        if length > len(raw):
            bad_lines.append((number, line_too_long(length)))
            yield "\n"
            continue
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as problem:
            bad_lines.append((number, f"invalid UTF-8 at byte {problem.start} of line {number}"))
            text = raw.decode("utf-8", "replace")
        yield text + "\n"


def _take_problem(bad_lines: deque[tuple[int, str]], end: int) -> str | None:
    """The first problem noted on lines up to `end` (the row just read), forgetting all of them."""
    first = None
    while bad_lines and bad_lines[0][0] <= end:
        reason = bad_lines.popleft()[1]
        first = first or reason
    return first


def _row_preview(header: list[str], row: list[str]) -> dict[str, str]:
    return dict(zip(header, row, strict=False))


def read_parquet(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject | FileWarning]:
    """Yield a record or reject per Parquet row (1-based row numbers), a batch of rows at a time.

    Row groups are read one by one: a corrupt group loses its rows (the file reject says which), not the
    groups after it. A compressed Parquet file is refused: Parquet is compressed inside, and reading it
    needs to seek, which a compressed stream cannot.
    """
    import pyarrow.parquet as pq

    name = display_name(path)
    head = read_head(path, 16)
    if compression_of(head):
        raise FileProblem(
            f"{compression_of(head)}-compressed Parquet; decompress it first (Parquet is compressed inside)"
        )
    head = head[:4]
    if head != b"PAR1":
        raise FileProblem(f"not a Parquet file (no PAR1 magic at the start; it {describe_start(read_head(path))})")
    if path.stat().st_size < 12 or read_tail(path, 4) != b"PAR1":
        raise FileProblem("truncated Parquet file (no PAR1 magic at the end: the footer is missing)")
    try:
        parquet = pq.ParquetFile(path)
        found = parquet.schema_arrow.names
    except Exception as problem:  # pyarrow raises several unrelated types for a bad file
        raise FileProblem(f"not a readable Parquet file ({_short(problem)})") from None
    fields = configured_fields(config)
    reason = missing_columns_reason(found, fields)
    if reason:
        raise FileProblem(reason)
    columns = [column for column in mapped_columns(fields) if column in found]
    mapper = FieldMapper(config, name)
    failures: list[str] = []
    try:
        groups = parquet.metadata.num_row_groups
        first_row = 1
        for group in range(groups):
            rows_in_group = parquet.metadata.row_group(group).num_rows
            number = first_row - 1
            try:
                for batch in parquet.iter_batches(
                    batch_size=PARQUET_BATCH_ROWS, row_groups=[group], columns=columns, use_threads=False
                ):
                    for row in _batch_rows(batch):
                        number += 1
                        yield reject_row(name, number, row, "") if isinstance(row, str) else mapper.item(row, number)
                        yield from mapper.due()
            except Exception as problem:  # this row group only: the next ones may still be fine
                last = first_row + rows_in_group - 1
                lost = f"rows {number + 1:,}-{last:,}" if number + 1 <= last else "no rows"
                failures.append(f"row group {group + 1} of {groups} unreadable, {lost} lost ({_short(problem)})")
            first_row += rows_in_group
    finally:
        parquet.close()
    if failures:
        more = f" (and {len(failures) - 1} more row groups)" if len(failures) > 1 else ""
        raise FileProblem(failures[0] + more)
    yield from mapper.warnings()


def _batch_rows(batch: Any) -> Iterator[dict[str, Any] | str]:
    """Rows of a record batch as dicts; a row whose values cannot be converted is its reject reason."""
    try:
        rows = batch.to_pylist()
    except Exception:
        rows = None
    if rows is not None:
        yield from rows
        return
    for position in range(batch.num_rows):  # find the bad rows one by one
        try:
            yield batch.slice(position, 1).to_pylist()[0]
        except Exception as problem:
            yield f"unreadable value: {_short(problem)}"


def _short(problem: BaseException) -> str:
    return f"{type(problem).__name__}: {problem}"[:300]
