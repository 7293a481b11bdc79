"""RSS and Atom reader (feedparser): one record per entry."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import InputError
from pipeline.ingest.fields import reject_row
from pipeline.records import RawRecord, Reject


def read_feed(path: Path) -> Iterator[RawRecord | Reject]:
    """Yield a record per feed entry; entries with neither title nor summary are rejected."""
    import feedparser

    name = str(path)
    parsed = feedparser.parse(path.read_bytes())
    if parsed.bozo and not parsed.entries:
        raise InputError(f"{path}: not a readable RSS or Atom feed ({parsed.get('bozo_exception')})")
    feed_title = parsed.feed.get("title")
    for number, entry in enumerate(parsed.entries, start=1):
        title = entry.get("title", "") or ""
        text = entry.get("summary", "") or ""
        if not title.strip() and not text.strip():
            yield reject_row(name, number, "neither title nor text", dict(entry))
            continue
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        notes = []
        published_at = None
        if when:
            published_at = datetime.fromtimestamp(calendar.timegm(when), tz=UTC).replace(tzinfo=None)
        elif entry.get("published") or entry.get("updated"):
            notes.append(f"date dropped: unparsable date {entry.get('published') or entry.get('updated')!r}")
        source = entry.get("source", {}).get("title") if isinstance(entry.get("source"), dict) else None
        yield RawRecord(
            file=name,
            line=number,
            id=entry.get("id") or entry.get("link") or None,
            title=title,
            text=text,
            source=source or entry.get("author") or feed_title,
            url=entry.get("link"),
            published_at=published_at,
            notes=notes,
        )
