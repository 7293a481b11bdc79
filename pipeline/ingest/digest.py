"""Reader for plain-text news digests: a search results page copied as text.

Such a page has a heading and chrome ("Digest more", "See more"), relative ages ("12h"), results that are
a headline followed by a snippet line, and results that are a snippet alone. Layout rules only; the text
itself is cleaned later by the normalize stage.

Any `.txt` file could be named like a digest, so unless the format is forced the file must first look
like one (`looks_like_digest`): one item per line, most of them sentences of some length; not notes, lists,
markup or hard-wrapped prose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pipeline.config import InputConfig
from pipeline.ingest.compressed import input_head, open_input
from pipeline.ingest.fields import RecordProblem, finish_record, reject_row
from pipeline.ingest.files import UTF8_BOM, FileProblem, display_name, record_lines, sniff_text
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
_HEADING_LINES = 4

# Layout that news results do not have: list bullets, numbered or checkbox items, Markdown headings and
# quotes, tables, markup and code, `key = value` settings, comments.
_NOT_AN_ITEM = re.compile(
    r"^(?:[-*+•◦▪]\s|\d{1,3}[.)]\s|\[[ xX]?\]|#+\s|>|\||<[a-zA-Z!/?]|[{}\[\]]|//|/\*|--\s|;|"
    r"[\w.-]+\s*=|```|\t)"
)
DIGEST_HEAD_BYTES = 65536
_SAMPLE_LINES = 200
_MAX_ODD_SHARE = 0.25  # lines laid out unlike results (lists, markup, wrapped prose), at most
_MIN_SNIPPET_SHARE = 0.3  # lines that read as a result's snippet, at least


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


def looks_like_digest(head_text: str) -> bool:
    """Whether text (the start of a file) is laid out like a copied page of search results."""
    return not_a_digest_reason(head_text) is None


def not_a_digest_reason(head_text: str) -> str | None:
    """Why the text is not laid out like a digest, or None when it is.

    Structure only, no particular words: a digest is one item per line, each a headline or a snippet
    that starts like a sentence, and a good share of the lines are snippets (sentences of six or more
    words). Notes, lists, markup, settings and hard-wrapped prose (lines that continue a sentence start
    in lower case) fail one of the two shares.
    """
    lines = [line.strip() for line in head_text.splitlines()]
    lines = [line for line in lines if line][:_SAMPLE_LINES]
    items = [line for line in lines if not is_chrome(line)]
    if not items:
        return "no text" if not lines else "no items, only page furniture"
    odd = sum(1 for line in items if _NOT_AN_ITEM.match(line) or line[0].islower())
    snippets = sum(1 for line in items if looks_like_snippet(line) and not line[0].islower())
    if odd > _MAX_ODD_SHARE * len(items):
        return f"{odd} of the first {len(items)} lines look like notes, lists, markup or wrapped prose"
    if snippets < max(1, _MIN_SNIPPET_SHARE * len(items)):
        return f"only {snippets} of the first {len(items)} lines read like a news snippet (a sentence of 6+ words)"
    return None


def check_digest(path: Path) -> None:
    """Raise `FileProblem` unless the file starts like a digest (used when the format is not forced)."""
    head = input_head(path, DIGEST_HEAD_BYTES + 1)
    if len(head) > DIGEST_HEAD_BYTES:  # judge whole lines only
        head = head[:DIGEST_HEAD_BYTES].rpartition(b"\n")[0] or head[:DIGEST_HEAD_BYTES]
    problem = sniff_text(head, "digest")
    if problem:
        raise FileProblem(problem)
    why = not_a_digest_reason(head.removeprefix(UTF8_BOM).decode("utf-8", "replace"))
    if why:
        raise FileProblem(f"not a news digest: {why}; use --format digest to force")


def read_digest(path: Path, config: InputConfig | None = None) -> Iterator[RawRecord | Reject]:
    """Yield one record per search result in the digest, streaming with one line of look-ahead."""
    config = config or InputConfig()
    name = display_name(path)
    problem = sniff_text(input_head(path), "digest")
    if problem:  # binary or compressed data is no digest even when the format is forced
        raise FileProblem(problem)
    lines = _text_lines(path, name)
    heading: list[tuple[int, str]] = []
    for item in lines:
        if isinstance(item, Reject):
            yield item
            continue
        heading.append(item)
        if len(heading) == _HEADING_LINES:
            break
    rejects: list[Reject] = []  # bad lines met while looking ahead, yielded after the item before them

    def following() -> Iterator[tuple[int, str]]:
        yield from _drop_page_heading(heading)
        for item in lines:
            if isinstance(item, Reject):
                rejects.append(item)
            else:
                yield item

    stream = following()
    current = next(stream, None)
    while current is not None:
        number, line = current
        current = next(stream, None)
        if not is_chrome(line):
            title, text = "", line
            if current is not None and looks_like_headline(line) and looks_like_snippet(current[1]):
                title, text = line, current[1]
                current = next(stream, None)
            elif looks_like_headline(line):
                title, text = line, ""
            yield _record(name, number, title, text, config.max_field_chars)
        yield from rejects
        rejects.clear()


def _record(name: str, number: int, title: str, text: str, max_chars: int) -> RawRecord | Reject:
    record = RawRecord(file=name, line=number, id=f"digest-{content_hash(title, text)[:16]}", title=title, text=text)
    try:
        return finish_record(record, max_chars)
    except RecordProblem as problem:
        return reject_row(name, number, str(problem), f"{title}\n{text}")


def _text_lines(path: Path, name: str) -> Iterator[tuple[int, str] | Reject]:
    """Non-blank stripped lines of the file, or a reject for a line that is not UTF-8 or too long."""
    with open_input(path) as handle:
        for line in record_lines(handle, name):
            if isinstance(line, Reject):
                yield line
                continue
            number, raw = line
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as problem:
                yield reject_row(name, number, f"invalid UTF-8 at byte {problem.start}", raw)
                continue
            if text:
                yield number, text


def _drop_page_heading(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Drop the page's heading: short lines before the first chrome line at the top of the page."""
    for position, (_, line) in enumerate(lines[:_HEADING_LINES]):
        if is_chrome(line):
            heading = lines[:position]
            if all(len(text.split()) <= _HEADING_MAX_WORDS for _, text in heading):
                return lines[position:]
            break
    return lines
