"""File-level helpers shared by the readers: hashing, sniffing the first bytes, bounded line splitting.

A cron job meets whatever lands in its inbox: half-written Parquet, an HTML error page saved as `.xml`,
a gzip renamed `.jsonl`. These helpers let a reader say cheaply, before parsing, that a file is not what
its name claims (`FileProblem`, which becomes a `FileReject`), and read text line by line without ever
holding more than one bounded line in memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pipeline.records import Reject

CHUNK_BYTES = 1 << 20
HEAD_BYTES = 8192
# One JSON Lines, CSV or digest line. Longer lines are rejected and never held whole: memory stays bounded
# even for a file with no line breaks at all. Far above any real record (fields are cut much shorter).
MAX_LINE_BYTES = 64 << 20
UTF8_BOM = b"\xef\xbb\xbf"

FORMAT_NAMES = {
    "jsonl": "JSON Lines",
    "csv": "CSV",
    "parquet": "Parquet",
    "rss": "an RSS or Atom feed",
    "digest": "a news digest",
}

# Signatures of compressed files, by compressor: each gets the same advice.
_COMPRESSORS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"(\xb5/\xfd": "zstd"}
# Byte order marks of wide Unicode text; UTF-32 first, as its little-endian mark starts with UTF-16's.
_WIDE_TEXT = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
# Signatures of files that are plainly not text, checked before any parser sees them: (start, what, advice).
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"PAR1", "a Parquet file", "rename it .parquet or use --format parquet"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)", "extract it first"),
    (b"%PDF-", "a PDF document", ""),
    (b"SQLite format 3\x00", "an SQLite database", ""),
    *((magic, f"{name}-compressed data", "decompress it first") for magic, name in _COMPRESSORS.items()),
    *((mark, f"{name} text", "save it as UTF-8") for mark, name in _WIDE_TEXT.items()),
)
# Bytes that do not occur in text (tab, line breaks, form feed and escape do).
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\r\f\x1b") + b"\x7f"


class FileProblem(Exception):
    """The file as a whole cannot be read (any further); the message is the `FileReject` reason."""


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def safe_text(text: str) -> str:
    """`text` with lone surrogates spelled as escapes: storable as UTF-8 (file names may carry them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def one_line(text: str) -> str:
    """A reason as one storable line: control characters (parsers quote raw bytes) become spaces."""
    return " ".join(_CONTROL_CHARS.sub(" ", safe_text(text)).split())


def display_name(path: Path) -> str:
    """The path as stored with each record: `str(path)`, with undecodable bytes of the name escaped."""
    return safe_text(str(path))


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def read_tail(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        length = handle.tell()
        handle.seek(max(0, length - size))
        return handle.read(size)


def describe_start(head: bytes) -> str:
    """A short, printable description of how a file starts, for reasons."""
    start = head[:24].decode("utf-8", "backslashreplace")
    return f"starts with {start!r}"


def sniff_text(head: bytes, fmt: str) -> str | None:
    """Why a file meant to be text (JSON Lines, CSV, a feed, a digest) plainly is not; None if it may be."""
    if not head:
        return "empty file (0 bytes)"
    wanted = FORMAT_NAMES[fmt]
    for magic, what, hint in _MAGIC:
        if head.startswith(magic):
            return f"{what}, not {wanted} (starts with {magic!r})" + (f"; {hint}" if hint else "")
    # The first KB decides: a text file starts as text, and a crashed writer's NUL padding at the end
    # must not cost the good lines before it.
    sample = head[:1024]
    control = len(sample) - len(sample.translate(None, _CONTROL))
    if control > max(8, len(sample) // 20):  # over 5%, and not a stray few in a tiny file
        odd, even = sample[1::2], sample[0::2]
        if odd.count(0) * 2 > len(odd) or even.count(0) * 2 > len(even):
            return f"UTF-16 text without a byte order mark, not UTF-8 {wanted}; save it as UTF-8"
        return f"binary data, not {wanted} ({control} of the first {len(sample)} bytes are control characters)"
    return None


def line_too_long(length: int) -> str:
    """The reject reason for a line over the limit (read at call time, so tests can lower it)."""
    return f"line too long: {length:,} bytes (limit {MAX_LINE_BYTES:,})"


def record_lines(handle: BinaryIO, name: str) -> Iterator[tuple[int, bytes] | Reject]:
    """`iter_lines` for the line formats: a line over the limit becomes its reject, the first loses its BOM."""
    from pipeline.ingest.fields import reject_row

    for number, raw, length in iter_lines(handle):
        if length > len(raw):
            yield reject_row(name, number, line_too_long(length), raw)
        else:
            yield number, raw.removeprefix(UTF8_BOM) if number == 1 else raw


def first_line(head: bytes) -> bytes:
    """The first non-blank line of `head`, stripped (BOM removed)."""
    for line in head.removeprefix(UTF8_BOM).splitlines():
        if line.strip():
            return line.strip()
    return b""


def iter_lines(handle: BinaryIO, max_bytes: int | None = None) -> Iterator[tuple[int, bytes, int]]:
    """Yield `(number, line, length)` for each line, without its ending; lines end at LF, CRLF or CR.

    Numbers are 1-based and agree with `bytes.splitlines()`. A line longer than `max_bytes` (default
    `MAX_LINE_BYTES`) is cut to its first `max_bytes` bytes and `length` tells its real size; the rest is
    read past, never held.
    """
    limit = MAX_LINE_BYTES if max_bytes is None else max_bytes
    number = 0
    pending = bytearray()
    length = 0
    after_cr = False
    while block := handle.read(CHUNK_BYTES):
        if after_cr and block[:1] == b"\n":
            block = block[1:]  # the LF of a CRLF split across two reads
        after_cr = block.endswith(b"\r")
        for piece in block.splitlines(keepends=True):
            ended = piece[-1:] in (b"\n", b"\r")
            body = piece.rstrip(b"\r\n") if ended else piece
            if ended and not length and len(body) <= limit:
                number += 1
                yield number, body, len(body)
                continue
            if length < limit:
                pending += body[: limit - length]
            length += len(body)
            if ended:
                number += 1
                yield number, bytes(pending), length
                pending.clear()
                length = 0
    if length:
        yield number + 1, bytes(pending), length
