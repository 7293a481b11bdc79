"""Turn a mapping read from any structured format into a `RawRecord`, or explain why it cannot be one.

Every reader ends in `finish_record`, so the same limits hold for every format: an over-long title or
text is cut (with a note, the item is still news), an over-long id or text that cannot be stored as
UTF-8 is a reject. Nothing here raises anything but `RecordProblem`.
"""

from __future__ import annotations

import email.utils
import json
import math
import reprlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pipeline.config import FieldMap
from pipeline.ingest.files import one_line, safe_text
from pipeline.records import RawRecord, Reject

_TEXT_FIELDS = ("title", "text", "source", "url")
MAX_ID_CHARS = 1000
DEFAULT_MAX_FIELD_CHARS = 100_000
PREVIEW_CHARS = 2000
# Nested values in a reject's preview: bounded depth and length, so a deep or huge value is never walked.
_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel, _PREVIEW.maxstring, _PREVIEW.maxother = 4, 200, 200
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 20


class RecordProblem(ValueError):
    """A record cannot be stored; the message is the reject reason."""


def parse_datetime(value: Any) -> datetime | None:
    """Parse ISO 8601, RFC 2822, epoch seconds or a date into naive UTC; raise ValueError when unparsable."""
    if value is None or value == "":
        return None
    try:
        return _parse_datetime(value)
    except ValueError:
        raise
    except (OverflowError, OSError, TypeError, IndexError):
        # Epoch seconds or offsets beyond what datetime can hold, from any source: a value problem.
        raise ValueError(f"date out of range {str(value)[:40]!r}") from None


def _parse_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        parsed = datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str):
        raw = value.strip()
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError, OverflowError):
                raise ValueError(f"unparsable date {raw[:40]!r}") from None
    else:
        raise ValueError(f"unparsable date of type {type(value).__name__}")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def record_from_mapping(
    row: Mapping[str, Any], fields: FieldMap, file: str, line: int, max_chars: int = DEFAULT_MAX_FIELD_CHARS
) -> RawRecord:
    """Map and type-check one row; raise `RecordProblem` with the reject reason."""
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = row.get(getattr(fields, name))
        if isinstance(value, float) and math.isnan(value):
            value = None  # a missing string in a table written by pandas
        if value is not None and not isinstance(value, str):
            raise RecordProblem(f"wrong field type: {name} is {type(value).__name__}, expected string")
        values[name] = value
    raw_id = row.get(fields.id)
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int)):
        raise RecordProblem(f"wrong field type: id is {type(raw_id).__name__}, expected string or integer")
    if isinstance(raw_id, int) and raw_id.bit_length() > 3 * MAX_ID_CHARS:
        raise RecordProblem(f"id too long: an integer of {raw_id.bit_length():,} bits")
    record_id = str(raw_id).strip() if raw_id is not None and str(raw_id).strip() else None
    values["title"] = values["title"] or ""
    values["text"] = values["text"] or ""
    if not values["title"].strip() and not values["text"].strip():
        raise RecordProblem("neither title nor text")
    notes: list[str] = []
    published_at = None
    try:
        published_at = parse_datetime(row.get(fields.published_at))
    except ValueError as problem:
        notes.append(safe_text(f"date dropped: {problem}"))
    # `values` holds the text fields under RawRecord's own names.
    record = RawRecord(file=file, line=line, id=record_id, published_at=published_at, notes=notes, **values)
    return finish_record(record, max_chars)


def finish_record(record: RawRecord, max_chars: int = DEFAULT_MAX_FIELD_CHARS) -> RawRecord:
    """Apply the limits every reader shares; raise `RecordProblem` for a record that cannot be stored.

    Title, text and source longer than `max_chars` are cut with a note; so long a URL is no link any
    more and is dropped with a note. An id over `MAX_ID_CHARS` or a string with a lone surrogate (which
    the database cannot store) makes the record a reject.
    """
    if record.id is not None and len(record.id) > MAX_ID_CHARS:
        raise RecordProblem(f"id too long: {len(record.id):,} chars (limit {MAX_ID_CHARS:,})")
    for name in ("id", "title", "text", "source", "url"):
        value = getattr(record, name)
        if value and not _encodable(value):
            raise RecordProblem(f"bad encoding: {name} holds a lone surrogate (not valid Unicode)")
    for name in ("title", "text", "source"):
        value = getattr(record, name)
        if value is not None and len(value) > max_chars:
            setattr(record, name, value[:max_chars])
            record.notes.append(f"{name} truncated from {len(value):,} chars")
    if record.url is not None and len(record.url) > max_chars:
        record.notes.append(f"url dropped: {len(record.url):,} chars")
        record.url = None
    return record


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def reject_row(file: str, line: int | None, reason: str, row: Any) -> Reject:
    """A reject carrying a readable copy of the offending row (cut to keep the table small)."""
    if isinstance(row, bytes | bytearray):
        shown = bytes(row[: PREVIEW_CHARS * 4]).decode("utf-8", "backslashreplace")
    elif isinstance(row, str):
        shown = row[:PREVIEW_CHARS]
    else:
        shown = _dump_preview(row)
    return Reject(file=file, line=line, reason=one_line(reason), record=safe_text(shown[:PREVIEW_CHARS]))


def _dump_preview(row: Any) -> str:
    """JSON of a row with long strings cut first, so a huge row is never serialised whole."""
    if isinstance(row, Mapping):
        row = {str(key)[:200]: _cut(value) for key, value in list(row.items())[:100]}
    try:
        return json.dumps(row, default=str, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return _PREVIEW.repr(row)


def _cut(value: Any) -> Any:
    if isinstance(value, str | bytes) and len(value) > PREVIEW_CHARS:
        return value[:PREVIEW_CHARS]
    if isinstance(value, list | tuple | dict | set):
        return _PREVIEW.repr(value)
    return value
