"""File-level helpers shared by the readers: hashing, sniffing the first bytes, bounded line splitting.

A cron job meets whatever lands in its inbox: half-written Parquet, an HTML error page saved as `.xml`,
a Parquet file renamed `.jsonl`. These helpers let a reader say cheaply, before parsing, that a file is not
what its name claims (`FileProblem`, which becomes a `FileReject`), and read text line by line without ever
holding more than one bounded line in memory. (Compressed data is no such case: `pipeline.ingest.compressed`
opens it by its content, and the readers see the decompressed bytes.)
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

from pipeline.errors import InputError
from pipeline.records import Reject

CHUNK_BYTES = 1 << 20
HEAD_BYTES = 8192
# One JSON Lines, CSV or digest line. Longer lines are rejected and never held whole: memory stays bounded
# even for a file with no line breaks at all. Far above any real record (fields are cut much shorter).
MAX_LINE_BYTES = 64 << 20
UTF8_BOM = b"\xef\xbb\xbf"

FORMAT_NAMES = {
    "jsonl": "JSON Lines",
    "json": "JSON",
    "csv": "CSV",
    "parquet": "Parquet",
    "rss": "an RSS or Atom feed",
    "digest": "a news digest",
    "html": "an HTML page",
    "warc": "a WARC file",
}

# Signatures of compressed files, by compressor (`pipeline.ingest.compressed` opens them; inside a
# decompressed file, another compressed file is no text).
COMPRESSORS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"(\xb5/\xfd": "zstd"}
_BZIP2 = re.compile(rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)")
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
    *((mark, f"{name} text", "save it as UTF-8") for mark, name in _WIDE_TEXT.items()),
)
# Bytes that do not occur in text (tab, line breaks, form feed and escape do).
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\r\f\x1b") + b"\x7f"


class FileProblem(Exception):
    """The file as a whole cannot be read (any further); the message is the `FileReject` reason."""


def optional_import(module: str, what: str, extra: str | None = None) -> ModuleType:
    """Import a library that only some formats need; missing, it is an `InputError` naming the install.

    Not a file reject: the file is fine and must be read once the library is there, not skipped as bad.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        install = (
            f"the {extra} extra: pip install 'storyclust[{extra}]'" if extra else f"{module}: pip install {module}"
        )
        raise InputError(f"reading {what} needs {install}") from None


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


def compression_of(head: bytes) -> str | None:
    """The compressor whose signature starts `head` ("gzip", "zstd", ...), or None for plain data.

    gzip and bzip2 are checked past their short magic (deflate; a block or end-of-stream mark), so a
    text that happens to start with "BZh" is still read as text.
    """
    kind = next((name for magic, name in COMPRESSORS.items() if head.startswith(magic)), None)
    if kind == "gzip" and head[2:3] != b"\x08":
        return None
    if kind == "bzip2" and not _BZIP2.match(head):
        return None
    return kind


def sniff_text(head: bytes, fmt: str) -> str | None:
    """Why a file meant to be text (JSON Lines, CSV, a feed, a digest) plainly is not; None if it may be.

    Given decompressed bytes (`pipeline.ingest.compressed`), compressed data here is a file compressed twice.
    """
    if not head:
        return "empty file (0 bytes)"
    wanted = FORMAT_NAMES[fmt]
    compressed = compression_of(head)
    if compressed:
        return f"{compressed}-compressed data, not {wanted} (starts with {head[:4]!r}); decompress it first"
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
