"""Reader for plain-text news digests: a search results page copied as text.

Such a page has a heading and chrome ("Digest more", "See more"), relative ages ("12h"), results that are
a headline followed by a snippet line, and results that are a snippet alone. Layout rules only; the text
itself is cleaned later by the normalize stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pipeline.ingest.fields import reject_row
from pipeline.normalize import split_glued_source
from pipeline.records import RawRecord, Reject, content_hash

_CHROME = re.compile(
    r"^(?:digest more|see more|show more|load more|more news|more stories|top stories|news|all|images|videos|"
    r"feedback|next|previous|page \d+|sort by:?.*|filter by:?.*|any time|past (?:hour|24 hours|week|month))$",
    re.IGNORECASE,
)
_AGE = re.compile(
    r"^(?:\d{1,3}\s*(?:s|sec|m|min|mins|h|hr|hrs|d|w|mo|y)|\d{1,3}\s+(?:second|minute|hour|day|week|month|year)s?"
    r"(?:\s+ago)?|yesterday|just now)$",
    re.IGNORECASE,
)
_ENDS_SENTENCE = re.compile(r"(?:[.!?…\"”’)]|\.\.\.)\s*$")
_HEADLINE_MAX_WORDS = 22
_HEADING_MAX_WORDS = 8


def is_chrome(line: str) -> bool:
    """Page furniture or a relative age: never a news item."""
    return bool(_CHROME.match(line) or _AGE.match(line))


def looks_like_headline(line: str) -> bool:
    """A headline is short and does not end like a sentence, or carries an aggregator badge."""
    if split_glued_source(line)[1] is not None:
        return True
    return len(line.split()) <= _HEADLINE_MAX_WORDS and not _ENDS_SENTENCE.search(line)


def looks_like_snippet(line: str) -> bool:
    """A snippet ends like a sentence (or a cut one) and is not chrome."""
    return not is_chrome(line) and bool(_ENDS_SENTENCE.search(line)) and len(line.split()) >= 6


def read_digest(path: Path) -> Iterator[RawRecord | Reject]:
    """Yield one record per search result in the digest."""
    name = str(path)
    lines: list[tuple[int, str]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as problem:
                yield reject_row(name, number, f"invalid UTF-8 at byte {problem.start}", raw)
                continue
            if text:
                lines.append((number, text))
    lines = _drop_page_heading(lines)
    index = 0
    while index < len(lines):
        number, line = lines[index]
        index += 1
        if is_chrome(line):
            continue
        title, text = "", line
        if index < len(lines) and looks_like_headline(line) and looks_like_snippet(lines[index][1]):
            title, text = line, lines[index][1]
            index += 1
        elif looks_like_headline(line):
            title, text = line, ""
        yield RawRecord(
            file=name,
            line=number,
            id=f"digest-{content_hash(title, text)[:16]}",
            title=title,
            text=text,
        )


def _drop_page_heading(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Drop the page's heading: short lines before the first chrome line at the top of the page."""
    for position, (_, line) in enumerate(lines[:4]):
        if is_chrome(line):
            heading = lines[:position]
            if all(len(text.split()) <= _HEADING_MAX_WORDS for _, text in heading):
                return lines[position:]
            break
    return lines
