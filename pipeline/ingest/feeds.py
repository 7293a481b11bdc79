"""RSS and Atom reader (feedparser): one record per entry.

Feeds are small, so the file is parsed whole (decompressed, if it is compressed), but only up to
`MAX_FEED_BYTES`. feedparser does not expand
entities declared in a DOCTYPE (a "billion laughs" file stays a few bytes of text) and never fetches
anything when given bytes. A file that is no feed is a `FileProblem`; a malformed feed from which the
lenient parser still recovered entries gives those entries, then a `FileProblem` saying later ones may
be missing.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import InputConfig
from pipeline.ingest.compressed import open_input
from pipeline.ingest.fields import RecordProblem, finish_record, reject_row
from pipeline.ingest.files import FileProblem, display_name, first_line, sniff_text
from pipeline.records import RawRecord, Reject

MAX_FEED_BYTES = 50 << 20
# feedparser's notes on a feed it read fine: a declared encoding it corrected, an undeclared namespace.
_HARMLESS_BOZO = ("CharacterEncodingOverride", "NonXMLContentType", "UndeclaredNamespace")


def read_feed(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject]:
    """Yield a record per feed entry; entries with neither title nor summary are rejected."""
    import feedparser

    name = display_name(path)
    with open_input(path) as handle:
        data = handle.read(MAX_FEED_BYTES + 1)
    if len(data) > MAX_FEED_BYTES:
        raise FileProblem(f"feed too large (over {MAX_FEED_BYTES:,} bytes; the limit for one feed)")
    problem = sniff_text(data[:8192], "rss")
    if problem:
        raise FileProblem(problem)
    if first_line(data[:8192])[:1] in (b"{", b"["):
        raise FileProblem("JSON, not an RSS or Atom feed; rename it .jsonl or use --format jsonl")
    try:
        parsed = feedparser.parse(data)
    except Exception as error:  # feedparser has its own failure modes on hostile input
        raise FileProblem(f"feed parser failed ({type(error).__name__}: {str(error)[:200]})") from None
    failure = _bozo(parsed)
    if not parsed.entries:
        if failure:
            raise FileProblem(f"not a readable RSS or Atom feed ({failure})")
        if not parsed.get("version"):
            raise FileProblem("not an RSS or Atom feed (no feed or channel element found)")
        return
    feed_title = parsed.feed.get("title")
    for number, entry in enumerate(parsed.entries, start=1):
        try:
            yield finish_record(_entry_record(entry, name, number, feed_title), config.max_field_chars)
        except RecordProblem as problem:
            yield reject_row(name, number, str(problem), dict(entry))
    if failure:
        raise FileProblem(f"malformed feed ({failure}); entries after the fault may be missing")


def _bozo(parsed: Any) -> str | None:
    """feedparser's complaint about the feed, unless it is only a note on a feed it read fine."""
    if not parsed.get("bozo"):
        return None
    error = parsed.get("bozo_exception")
    if type(error).__name__ in _HARMLESS_BOZO:
        return None
    return f"{type(error).__name__}: {str(error)[:200]}" if error is not None else "malformed XML"


def _entry_record(entry: Any, name: str, number: int, feed_title: Any) -> RawRecord:
    """One feed entry as a record; raise `RecordProblem` for an entry that holds no news."""
    title = _text(entry.get("title"))
    text = _text(entry.get("summary"))
    if not title.strip() and not text.strip():
        raise RecordProblem("neither title nor text")
    # Plain dict look-ups: feedparser's own map "updated" to "published" with a deprecation warning.
    when = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    stated = dict.get(entry, "published") or dict.get(entry, "updated")
    notes = []
    published_at = None
    if when:
        try:
            published_at = datetime.fromtimestamp(calendar.timegm(when), tz=UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError, TypeError):
            notes.append(
                f"date dropped: date out of range {str(entry.get('published') or entry.get('updated'))[:40]!r}"
            )
    elif stated:
        notes.append(f"date dropped: unparsable date {str(stated)[:40]!r}")
    source = entry.get("source", {}).get("title") if isinstance(entry.get("source"), dict) else None
    return RawRecord(
        file=name,
        line=number,
        id=_text(entry.get("id")) or _text(entry.get("link")) or None,
        title=title,
        text=text,
        source=_text(source) or _text(entry.get("author")) or _text(feed_title) or None,
        url=_text(entry.get("link")) or None,
        published_at=published_at,
        notes=notes,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
