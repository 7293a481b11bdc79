"""Turn a mapping read from any structured format into a `RawRecord`, or explain why it cannot be one.

Every reader ends in `finish_record`, so the same limits hold for every format: an over-long title or
text is cut (with a note, the item is still news), an over-long id or text that cannot be stored as
UTF-8 is a reject. Nothing here raises anything but `RecordProblem`.

Field names may be paths into nested values (`source.name`, `authors.0.name`) or two paths joined
(`description+content`). A `FieldMapper` maps one file's rows: it picks a preset for a known shape of news
API records (`input.preset`), and at the end of the file warns of each mapped path that matched no row,
naming the keys it found instead: a wrong path is seen, not silently stored as empty.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import math
import re
import reprlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from pipeline.config import FieldMap, InputConfig
from pipeline.ingest.files import one_line, safe_text
from pipeline.records import FileWarning, RawRecord, Reject

_TEXT_FIELDS = ("title", "text", "source", "url")
MAX_ID_CHARS = 1000
DEFAULT_MAX_FIELD_CHARS = 100_000
PREVIEW_CHARS = 2000
# Nested values in a reject's preview: bounded depth and length, so a deep or huge value is never walked.
_PREVIEW = reprlib.Repr()
_PREVIEW.maxlevel, _PREVIEW.maxstring, _PREVIEW.maxother = 4, 200, 200
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 20


# The records of news APIs shaped like NewsAPI's (`{"source": {"id", "name"}, "title", "description",
# "content", "publishedAt", "url", ...}`); only the fields left at their defaults take the preset's value.
PRESET_FIELDS = {"newsapi": FieldMap(text="description+content", source="source.name", published_at="publishedAt")}
# NewsAPI cuts `content` and says by how much: "… [+2345 chars]". The "…" is left for normalize to note.
_NEWSAPI_CUT = re.compile(r"\s*\[\+\d+ chars\]\s*$")
_SHOWN_KEYS = 12
WARN_AFTER_ROWS = 1000  # a path matching none of a file's first rows is warned of then, not only at the end
_MISSING = object()
Lookup = Callable[[Mapping[str, Any], str], Any]
Noted = Callable[[Mapping[str, Any], str, bool], None]


class RecordProblem(ValueError):
    """A record cannot be stored; the message is the reject reason."""


def path_value(row: Any, path: str) -> Any:
    """The value at a path of keys and list indexes (`source.name`, `authors.0`), or `_MISSING`.

    A key spelled exactly as the whole path (dots included) wins over the path.
    """
    if isinstance(row, Mapping) and path in row:
        return row[path]
    value, reached = _walk(row, path)
    return value if len(reached) == path.count(".") + 1 else _MISSING


def _walk(row: Any, path: str) -> tuple[Any, list[str]]:
    """How far a path leads into a row: the value where it stops, and the parts it got through."""
    value, reached = row, []
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            break
        reached.append(part)
    return value, reached


def field_value(row: Mapping[str, Any], path: str, noted: Noted | None = None) -> Any:
    """The value a mapped name gives for a row (None when missing); `a+b` joins two strings with a blank line.

    `noted(row, part, found)` hears of every path looked up, for the never-matched warning.
    """
    parts = [path] if path in row or "+" not in path else path.split("+")
    values = []
    for part in parts:
        value = path_value(row, part)
        if noted is not None:
            noted(row, part, value is not _MISSING)
        if value is not _MISSING and value is not None:
            values.append(value)
    wrong = next((value for value in values if not isinstance(value, str)), None)
    if wrong is not None or len(values) <= 1:
        return wrong if wrong is not None else (values[0] if values else None)  # a wrong type: the record's reject
    return "\n\n".join(value for value in values if value.strip())


def preset_fields(config: InputConfig, preset: str) -> FieldMap:
    """The config's field map with the preset's value for every field the config leaves at its default."""
    default, chosen = FieldMap(), PRESET_FIELDS[preset]
    return FieldMap(
        **{
            name: value if value != getattr(default, name) else getattr(chosen, name)
            for name, value in dataclasses.asdict(config.fields).items()
        }
    )


def configured_fields(config: InputConfig) -> FieldMap:
    """The field map before any row is seen: a preset named in the config applies, `auto` waits for a row."""
    return preset_fields(config, config.preset) if config.preset in PRESET_FIELDS else config.fields


def looks_like_newsapi(row: Mapping[str, Any]) -> bool:
    """A NewsAPI-shaped article: a `source` object and `publishedAt`, none of storyclust's own names."""
    return (
        isinstance(row.get("source"), Mapping)
        and "publishedAt" in row
        and ("description" in row or "content" in row)
        and "text" not in row
        and "published_at" not in row
    )


def mapped_columns(
    fields: FieldMap, names: tuple[str, ...] = ("id", "title", "text", "source", "url", "published_at")
) -> list[str]:
    """The columns the named fields may read: each path as spelled (a column `source.name`) and its top-level
    column (`source`, a struct), in order, once each."""
    parts = [part for name in names for part in getattr(fields, name).split("+")]
    return list(dict.fromkeys(column for part in parts for column in (part, part.split(".")[0])))


class FieldMapper:
    """Maps the rows of one file to records, and remembers which mapped paths matched no row.

    The field map is fixed at the first row: the config's, or with `preset = "auto"` the NewsAPI preset
    when that row has NewsAPI's shape. Paths the user (or a preset) chose that never match in the whole
    file become one `FileWarning` each, with the keys found where the path failed.
    """

    def __init__(self, config: InputConfig, file: str) -> None:
        self.config = config
        self.file = file
        self.fields: FieldMap | None = None
        self.preset = ""
        self.rows = 0
        self.matched: set[str] = set()
        self.missed: dict[str, str] = {}  # path -> the keys found where it failed, in the first row it missed
        self.warned: set[str] = set()
        self.lookup: Lookup = self._lookup

    def item(self, row: Any, line: int) -> RawRecord | Reject:
        """The row as a record, or the reject saying why it cannot be one."""
        if type(row) is not dict and not isinstance(row, Mapping):  # dict first: the ABC check costs per row
            return reject_row(self.file, line, f"malformed record: a JSON {type(row).__name__}, not an object", row)
        try:
            return self.record(row, line)
        except RecordProblem as problem:
            return reject_row(self.file, line, str(problem), row)

    def record(self, row: Mapping[str, Any], line: int) -> RawRecord:
        """The row as a record; raise `RecordProblem` with the reject reason."""
        if self.fields is None:
            self.fields = self._choose_fields(row)
            if self.fields == FieldMap():  # storyclust's own plain names, never warned of: a plain get will do
                self.lookup = _get
        self.rows += 1
        record = record_from_mapping(row, self.fields, self.file, line, self.config.max_field_chars, self.lookup)
        if self.preset == "newsapi":
            record.text = _NEWSAPI_CUT.sub("", record.text)
        return record

    def due(self) -> tuple[FileWarning, ...]:
        """The warnings known after the first `WARN_AFTER_ROWS` rows, once (else none): a run that stops
        part way through a big file (`run.max_items`) still hears of a path that is wrong. Readers call it
        after each row."""
        if self.rows != WARN_AFTER_ROWS or self.warned:
            return ()
        return tuple(self.warnings(early=True))

    def warnings(self, early: bool = False) -> Iterator[FileWarning]:
        """One warning per chosen path that matched no row of the file (none for a file without rows, and
        none again for a path already warned of after the first rows)."""
        if not self.rows or self.fields is None:
            return
        default = FieldMap()
        counted = f"the first {self.rows:,}" if early else f"{self.rows:,}"
        for name, path in dataclasses.asdict(self.fields).items():
            if path == getattr(default, name):
                continue  # storyclust's own names: absent is normal (no url, no source, headlines without text)
            for part in [path] if path in self.matched else path.split("+"):
                if part not in self.matched and part in self.missed and part not in self.warned:
                    self.warned.add(part)
                    which = f": {part!r}" if part != path else ""
                    yield FileWarning(
                        self.file,
                        f"field {name} = {path!r}{which} matched none of {counted} records ({self.missed[part]})",
                    )

    def _choose_fields(self, row: Mapping[str, Any]) -> FieldMap:
        if self.config.preset == "auto" and looks_like_newsapi(row):
            self.preset = "newsapi"
        elif self.config.preset in PRESET_FIELDS:
            self.preset = self.config.preset
        return preset_fields(self.config, self.preset) if self.preset else self.config.fields

    def _lookup(self, row: Mapping[str, Any], path: str) -> Any:
        if path in row:  # a plain key, as in most files: the quick way (a run reads millions of rows)
            self.matched.add(path)
            return row[path]
        return field_value(row, path, self._noted)

    def _noted(self, row: Mapping[str, Any], part: str, found: bool) -> None:
        if found:
            self.matched.add(part)
        elif part not in self.missed and part not in self.matched:
            self.missed[part] = keys_where_missing(row, part)


def _get(row: Mapping[str, Any], key: str) -> Any:
    return row.get(key)


def keys_where_missing(row: Mapping[str, Any], path: str) -> str:
    """What a row holds where `path` fails: the keys of the deepest object reached, for a warning."""
    value, reached = _walk(row, path)
    where = f" under {'.'.join(reached)!r}" if reached else ""
    if isinstance(value, Mapping):
        keys = [str(key)[:40] for key in list(value)[:_SHOWN_KEYS]]
        more = f", … ({len(value)} in all)" if len(value) > _SHOWN_KEYS else ""
        return f"keys found{where}: {', '.join(keys) + more if keys else 'none'}"
    if isinstance(value, list):
        return f"found{where}: a list of {len(value)}"
    return f"found{where}: a {type(value).__name__}, not an object"


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


def dated(value: Any, notes: list[str]) -> datetime | None:
    """`parse_datetime`, where a date that cannot be read is dropped with a note (the item is still news)."""
    try:
        return parse_datetime(value)
    except ValueError as problem:
        notes.append(safe_text(f"date dropped: {problem}"))
        return None


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
    row: Mapping[str, Any],
    fields: FieldMap,
    file: str,
    line: int,
    max_chars: int = DEFAULT_MAX_FIELD_CHARS,
    lookup: Lookup = field_value,
) -> RawRecord:
    """Map and type-check one row; raise `RecordProblem` with the reject reason."""
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = lookup(row, getattr(fields, name))
        if isinstance(value, float) and math.isnan(value):
            value = None  # a missing string in a table written by pandas
        if value is not None and not isinstance(value, str):
            raise RecordProblem(
                f"wrong field type: {name} is {type(value).__name__}, expected string{_hint(value, getattr(fields, name))}"
            )
        values[name] = value
    raw_id = lookup(row, fields.id)
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
    published_at = dated(lookup(row, fields.published_at), notes)
    # `values` holds the text fields under RawRecord's own names.
    record = RawRecord(file=file, line=line, id=record_id, published_at=published_at, notes=notes, **values)
    return finish_record(record, max_chars)


def _hint(value: Any, path: str) -> str:
    """For an object where a string was expected: its keys, and how to map one of them (one holding text)."""
    if not isinstance(value, Mapping) or not value:
        return ""
    keys = ", ".join(str(key)[:40] for key in list(value)[:_SHOWN_KEYS])
    example = next((key for key, item in value.items() if isinstance(item, str) and item), next(iter(value)))
    return f" (keys: {keys}); map a nested path such as {path}.{str(example)[:40]} in [input.fields]"


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
