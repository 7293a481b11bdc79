"""Typed records passed between stages: the data contract of the pipeline.

Ingest yields `RawRecord`s, `Reject`s (a record not stored) and `FileReject`s (a file not read, or not to
its end); normalize turns records into `Article`s; later stages add columns as numpy arrays keyed by
position in the batch (see `pipeline.runner`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


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


def content_hash(title: str, text: str) -> str:
    """Stable hash of a record's title and body, used for exact duplicates and id conflicts."""
    digest = hashlib.sha1(f"{title}\x1f{text}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
