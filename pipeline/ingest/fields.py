"""Turn a mapping read from any structured format into a `RawRecord`, or explain why it cannot be one."""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.config import FieldMap
from pipeline.records import RawRecord, Reject

_TEXT_FIELDS = ("title", "text", "source", "url")


class RecordProblem(ValueError):
    """A record cannot be stored; the message is the reject reason."""


def parse_datetime(value: Any) -> datetime | None:
    """Parse ISO 8601, RFC 2822 or epoch seconds into naive UTC; raise ValueError when unparsable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        parsed = datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str):
        raw = value.strip()
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError):
                raise ValueError(f"unparsable date {raw[:40]!r}") from None
    else:
        raise ValueError(f"unparsable date of type {type(value).__name__}")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def record_from_mapping(row: Mapping[str, Any], fields: FieldMap, file: str, line: int) -> RawRecord:
    """Map and type-check one row; raise `RecordProblem` with the reject reason."""
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = row.get(getattr(fields, name))
        if value is not None and not isinstance(value, str):
            raise RecordProblem(f"wrong field type: {name} is {type(value).__name__}, expected string")
        if isinstance(value, float) and math.isnan(value):
            value = None
        values[name] = value
    raw_id = row.get(fields.id)
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int)):
        raise RecordProblem(f"wrong field type: id is {type(raw_id).__name__}, expected string or integer")
    record_id = str(raw_id).strip() if raw_id is not None and str(raw_id).strip() else None
    title = values["title"] or ""
    text = values["text"] or ""
    if not title.strip() and not text.strip():
        raise RecordProblem("neither title nor text")
    notes: list[str] = []
    published_at = None
    try:
        published_at = parse_datetime(row.get(fields.published_at))
    except ValueError as problem:
        notes.append(f"date dropped: {problem}")
    return RawRecord(
        file=file,
        line=line,
        id=record_id,
        title=title,
        text=text,
        source=values["source"],
        url=values["url"],
        published_at=published_at,
        notes=notes,
    )


def reject_row(file: str, line: int, reason: str, row: Any) -> Reject:
    """A reject carrying a readable copy of the offending row (cut to keep the table small)."""
    if isinstance(row, bytes):
        shown = row.decode("utf-8", "backslashreplace")
    elif isinstance(row, str):
        shown = row
    else:
        shown = json.dumps(row, default=str, ensure_ascii=False)
    return Reject(file=file, line=line, reason=reason, record=shown[:2000])
