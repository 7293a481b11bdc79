"""HTML pages, as a crawler saves them: one article per page, extracted with trafilatura (the `html` extra).

trafilatura finds the main text and the metadata (title, publication date through htmldate, site name,
canonical URL) the way it was built and evaluated to. What it finds is not always an article: a cookie
wall, a 404 page, a section front of links. A page is an article only when its main text has
`MIN_ARTICLE_WORDS` words or more, most of them in sentences; any other page is a reject that says what
was found, never an article. The WARC reader (`pipeline.ingest.warc`) extracts each response the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType

from pipeline.config import InputConfig
from pipeline.ingest.compressed import open_input
from pipeline.ingest.fields import RecordProblem, dated, finish_record, reject_row
from pipeline.ingest.files import (
    HEAD_BYTES,
    UTF8_BOM,
    FileProblem,
    describe_start,
    display_name,
    optional_import,
    sniff_text,
)
from pipeline.records import RawRecord, Reject

# Above real pages (a few hundred KB, rarely a few MB). The parser holds one page whole, and extraction time
# grows faster than a page's size (2.5 MB of paragraphs take 3 s on this project's machine, 8.5 MB 24 s).
MAX_PAGE_BYTES = 5 << 20
MIN_ARTICLE_WORDS = 40
MIN_SENTENCE_SHARE = 0.5  # of the main text's words, in lines that end like a sentence (not lists of links)
_ENDS_SENTENCE = re.compile(r"[.!?…:;\"”’»)\]]\s*$")
_HTML_START = re.compile(rb"<(?:!doctype\s+html|html|head|body|meta|title)\b", re.IGNORECASE)
# Libraries whose complaints about a page would otherwise reach stderr; the reject reason says it instead.
_QUIET = ("trafilatura", "htmldate", "courlan", "justext", "readability", "charset_normalizer")


def extractor() -> ModuleType:
    """trafilatura, or the `InputError` that says how to install it."""
    module = optional_import("trafilatura", "HTML pages", "html")
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return module


def read_html(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject]:
    """The page's article (line 1), or its reject; raise `FileProblem` for a file that is no HTML page."""
    extractor()
    name = display_name(path)
    with open_input(path) as handle:
        data = handle.read(MAX_PAGE_BYTES + 1)
    if len(data) > MAX_PAGE_BYTES:
        raise FileProblem(page_too_large())
    problem = sniff_text(data[:HEAD_BYTES], "html")
    if problem:
        raise FileProblem(problem)
    if not looks_like_html(data):
        start = data.removeprefix(UTF8_BOM).lstrip()
        raise FileProblem(f"not an HTML page (no html, head or body element; it {describe_start(start)})")
    yield page_item(data, name, 1, None, config)


def page_too_large() -> str:
    """The reason for a page over the limit (read at call time, so tests can lower it)."""
    return f"page too large (over {MAX_PAGE_BYTES:,} bytes; the limit for one page)"


def looks_like_html(head: bytes) -> bool:
    """Whether bytes start as an HTML page: markup first, and an html, head, body, meta or title element."""
    start = head[: HEAD_BYTES * 8].removeprefix(UTF8_BOM).lstrip()
    return start.startswith(b"<") and bool(_HTML_START.search(start))


def page_item(data: bytes, name: str, number: int, url: str | None, config: InputConfig) -> RawRecord | Reject:
    """One page's article as a record, or a reject saying why it is none (`url`: where it was fetched from)."""
    trafilatura = extractor()
    dates = {
        "original_date": True,  # the publication date, not the last change
        "extensive_search": True,
        "max_date": date.today().isoformat(),
        "outputformat": "%Y-%m-%dT%H:%M:%S%z",  # the time of day too, where the page gives one
    }
    try:
        page = trafilatura.bare_extraction(
            data, url=url, with_metadata=True, include_comments=False, date_extraction_params=dates
        )
    except Exception as problem:  # a parser's failure on a hostile page: this page only
        return reject_row(
            name, number, f"extraction failed ({type(problem).__name__}: {str(problem)[:200]})", {"url": url}
        )
    text = (page.text if page is not None else "") or ""
    title = (page.title if page is not None else "") or ""
    first, _, rest = text.partition("\n")
    if title and " ".join(first.split()).casefold() == " ".join(title.split()).casefold():
        text = rest  # the headline, repeated as the body's first line
    why = not_an_article(text)
    if why:
        return reject_row(name, number, f"not an article: {why}", {"url": url, "title": title, "text": text[:500]})
    notes: list[str] = []
    record = RawRecord(
        file=name,
        line=number,
        id=None,
        title=title,
        text=text,
        source=page.sitename or page.hostname or None,
        url=page.url or url,
        published_at=dated(page.date, notes),
        notes=notes,
    )
    try:
        return finish_record(record, config.max_field_chars)
    except RecordProblem as problem:
        return reject_row(name, number, str(problem), {"url": url, "title": title})


def not_an_article(text: str) -> str | None:
    """Why an extracted main text is no article (too short, or mostly lines that are not sentences), or None."""
    lines = [line.split() for line in text.splitlines()]
    words = sum(len(line) for line in lines)
    if not words:
        return "no main text"
    if words < MIN_ARTICLE_WORDS:
        return f"a main text of {words} words (an article has {MIN_ARTICLE_WORDS} or more)"
    in_sentences = sum(len(line) for line in lines if line and _ENDS_SENTENCE.search(line[-1]))
    if in_sentences < MIN_SENTENCE_SHARE * words:
        return f"the main text reads like a list of links or headlines ({in_sentences} of {words} words in sentences)"
    return None
