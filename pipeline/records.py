"""Typed records passed between stages: the data contract of the pipeline.

Ingest yields `RawRecord`s, `Reject`s (a record not stored), `FileReject`s (a file not read, or not to
its end) and `FileWarning`s (a file read, but maybe not as meant); normalize turns records into `Article`s. Between processes (a Ray Data block) records travel as
Arrow tables (`records_table`, `table_records`); see `pipeline.stage` for the stage contract.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, get_args, get_type_hints

import pyarrow as pa


@dataclass(frozen=True)
class Reject:
    """An input record that was not stored, and why."""

    file: str
    line: int | None
    reason: str
    record: str = ""


@dataclass(frozen=True)
class FileReject:
    """An input file that was not read, or only in part, and why.

    `size` and `sha256` let the next run recognise the same unchanged file and skip it. `sha256` is ""
    when the file could not be hashed (no permission) or changed while it was read: such a file is
    never taken for a known one and is read again next time.
    """

    file: str
    size: int
    sha256: str
    reason: str


@dataclass(frozen=True)
class FileWarning:
    """A file that was read, but maybe not as the user meant: say, a mapped field that matched no record.

    Nothing is lost (its records are stored or rejected as usual); the run reports the warning so that a
    mapping that is silently empty gets seen.
    """

    file: str
    message: str


@dataclass
class RawRecord:
    """One record as read from a file, before cleaning. `line` is 1-based (row number for tables)."""

    file: str
    line: int
    id: str | None
    title: str
    text: str
    source: str | None = None
    url: str | None = None
    published_at: datetime | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Article:
    """A cleaned news item ready for deduplication, embedding and clustering."""

    article_id: str
    title: str
    text: str
    title_raw: str
    text_raw: str
    source: str | None
    url: str | None
    published_at: datetime | None
    file: str
    line: int
    notes: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        """The text the clustering stages look at: cleaned title, then cleaned body."""
        return f"{self.title}\n{self.text}".strip()

    @property
    def content_hash(self) -> str:
        """Hash of the raw content: equal hashes mean an exact duplicate report."""
        return content_hash(self.title_raw, self.text_raw)


@dataclass(frozen=True)
class StoryOrigin:
    """When a stored story began: the older of two merged stories survives (the store gives it, assign reads it)."""

    first_seen: datetime | None
    run_id: str


@dataclass(frozen=True)
class ClosedStoryProbes:
    """What a batch's new items look for among the closed stories (`Store.closed_story_context`): each item's
    names and dates, by its position in the batch."""

    names: list[tuple[int, str]]
    days: list[tuple[int, date]]
    reach_days: int
    min_names: int
    per_item: int


def content_hash(title: str, text: str) -> str:
    """Stable hash of a record's title and body, used for exact duplicates and id conflicts."""
    digest = hashlib.sha1(f"{title}\x1f{text}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


# Arrow tables of records: what item stages take and give (a Ray Data block is such a table). Their schemas
# are the records' own fields, in order, so a field added to a record travels without a second list to edit.
_ARROW_TYPES: dict[Any, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    datetime: pa.timestamp("us"),
    list[str]: pa.list_(pa.string()),
}


def _record_schema(kind: type) -> pa.Schema:
    """The Arrow schema of a record dataclass: one nullable column per field, typed by its annotation."""
    hints = get_type_hints(kind)
    columns = []
    for name in (f.name for f in dataclasses.fields(kind)):
        hint = hints[name]
        if isinstance(hint, types.UnionType):  # `X | None`: nullable, as every column is
            hint = next(arg for arg in get_args(hint) if arg is not type(None))
        columns.append((name, _ARROW_TYPES[hint]))
    return pa.schema(columns)


RAW_RECORD_SCHEMA = _record_schema(RawRecord)
ARTICLE_SCHEMA = _record_schema(Article)


def records_table(records: list[Any], schema: pa.Schema) -> pa.Table:
    """Dataclass records (`RawRecord`s or `Article`s) as an Arrow table of `schema`, one column at a time."""
    return pa.table(
        {name: pa.array([getattr(r, name) for r in records], type=schema.field(name).type) for name in schema.names},
        schema=schema,
    )


def table_records(table: pa.Table, kind: type) -> list[Any]:
    """The rows of a `records_table` back as records of `kind` (`RawRecord` or `Article`)."""
    names = [name for name in table.schema.names if name in _FIELDS[kind]]
    columns = [table.column(name).to_pylist() for name in names]
    return [kind(**dict(zip(names, values, strict=True))) for values in zip(*columns, strict=True)]


_FIELDS = {RawRecord: set(RAW_RECORD_SCHEMA.names), Article: set(ARTICLE_SCHEMA.names)}
