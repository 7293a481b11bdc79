"""WARC files, as crawlers write them (the Common Crawl news crawl): one article per HTML response record.

warcio parses the records one at a time from the stream (decompressed by `open_input` when the file, or each
of its records, is gzip- or zstd-compressed), so a WARC of any size is never held: one page at a time, at
most `MAX_PAGE_BYTES`. Each response is extracted as an HTML page (`pipeline.ingest.html`). A response that
is no page (a redirect, an error status, an image) is a reject with its reason; requests, metadata and
the other record types carry no news and are passed over. `line` is the record's position in the file
(1-based, every record counted). A file that ends inside a record is a `FileProblem` after the records before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.config import InputConfig
from pipeline.ingest import html
from pipeline.ingest.compressed import input_head, open_input
from pipeline.ingest.fields import reject_row
from pipeline.ingest.files import CHUNK_BYTES, FileProblem, describe_start, display_name, optional_import, sniff_text
from pipeline.records import RawRecord, Reject

_HTML_TYPES = ("text/html", "application/xhtml+xml")


def read_warc(path: Path, config: InputConfig) -> Iterator[RawRecord | Reject]:
    """An article or a reject per response record; raise `FileProblem` for a file that is no (whole) WARC."""
    archive = optional_import("warcio.archiveiterator", "WARC files", "html")
    exceptions = optional_import("warcio.exceptions", "WARC files", "html")
    html.extractor()
    name = display_name(path)
    head = input_head(path, 16)
    if not head.startswith(b"WARC/"):
        raise FileProblem(
            sniff_text(head, "warc") or f"not a WARC file (no WARC/ version line; it {describe_start(head)})"
        )
    number = 0
    with open_input(path) as handle:
        try:
            for record in archive.ArchiveIterator(handle):
                number += 1
                item = _response_item(record, name, number, config) if record.rec_type == "response" else None
                _read_out(record, number)
                if item is not None:
                    yield item
        except exceptions.ArchiveLoadFailed as problem:
            raise FileProblem(
                f"unreadable WARC record after record {number:,} ({str(problem).strip()[:200]})"
            ) from None


def _response_item(record: Any, name: str, number: int, config: InputConfig) -> RawRecord | Reject:
    """The article of one response record, or why it has none."""
    url = record.rec_headers.get_header("WARC-Target-URI")
    http = record.http_headers
    if http is None:
        return reject_row(name, number, "not an HTTP response (no HTTP headers)", {"url": url})
    status = http.get_statuscode() or "?"
    content_type = (http.get_header("Content-Type") or "").split(";")[0].strip().lower()
    shown = {"url": url, "status": status, "content_type": content_type}
    if not status.startswith("2"):
        return reject_row(name, number, f"not a page: HTTP status {status}", shown)
    if content_type and content_type not in _HTML_TYPES:
        return reject_row(name, number, f"not an HTML page (content type {content_type})", shown)
    try:
        data = record.content_stream().read(html.MAX_PAGE_BYTES + 1)
    except Exception as problem:  # a broken chunked or compressed body: this record only
        return reject_row(name, number, f"unreadable HTTP body ({type(problem).__name__}: {str(problem)[:200]})", shown)
    if len(data) > html.MAX_PAGE_BYTES:
        return reject_row(name, number, html.page_too_large(), shown)
    return html.page_item(data, name, number, url, config)


def _read_out(record: Any, number: int) -> None:
    """Read the record to its end (what was not needed, unkept); a record the file cuts short stops the file.

    warcio itself takes a cut record for a short one.
    """
    stream = record.raw_stream
    while stream.read(CHUNK_BYTES):
        pass
    if getattr(stream, "limit", 0):
        url = record.rec_headers.get_header("WARC-Target-URI")
        raise FileProblem(f"truncated WARC file: it ends inside record {number:,} ({url}), which is not kept")
