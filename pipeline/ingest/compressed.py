"""Compressed inputs, opened by their content: gzip, zstd, bzip2 or xz around any format but Parquet, streamed.

Spools and dumps are kept compressed (`news.jsonl.gz`, `CC-NEWS-….warc.gz`), and a name does not always say
so. `open_input` looks at the first bytes, not the name, and gives the decompressed bytes as a stream (a
plain file is opened as it is), so every reader reads a compressed file as it reads a plain one, a bounded
piece at a time. A file that ends inside its compressed data, or whose data is corrupt, stops with a
`FileProblem`: what was read before the fault is kept, as for any file that fails part way.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from pipeline.ingest.files import CHUNK_BYTES, HEAD_BYTES, FileProblem, compression_of, optional_import

# The name's last suffix that says "compressed"; the one before it names the format (`news.jsonl.gz`).
COMPRESSED_SUFFIXES = frozenset({".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz"})
# How much compressed input zstd decodes per call: its output for so little is bounded (a few MB at most),
# however much the data expands.
_ZSTD_INPUT_BYTES = 4096
# What the decompressors raise for a cut or corrupt stream (bzip2: an OSError without an errno; zstd adds its own).
_BROKEN: tuple[type[BaseException], ...] = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def format_suffix(path: Path) -> str:
    """The suffix that names the format: `.jsonl` for `news.jsonl.gz`, "" for `news.gz`, else the last one."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        return suffixes[-2] if len(suffixes) > 1 else ""
    return path.suffix.lower()


def open_input(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when its content is compressed; use it in a `with` block."""
    raw = path.open("rb")
    try:
        kind = compression_of(raw.read(16))
        raw.seek(0)
        if kind is None:
            return raw
        return Decompressed(raw, kind)  # type: ignore[return-value]
    except BaseException:
        raw.close()
        raise


def input_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of the file's content (decompressed), to sniff what it holds."""
    with open_input(path) as handle:
        return handle.read(size)


class Decompressed:
    """A read-only stream of decompressed bytes over a compressed file; a fault in the data is a `FileProblem`.

    The bytes before a fault are given first (the fault is raised by the next read), so a reader keeps the
    records before it.
    """

    def __init__(self, raw: BinaryIO, kind: str) -> None:
        self.raw = raw
        self.kind = kind
        self.stream, self.broken = _decompressor(raw, kind)
        self.fault: FileProblem | None = None

    def read(self, size: int = -1) -> bytes:
        if self.fault is not None:
            raise self.fault
        chunks: list[bytes] = []
        wanted = size
        while wanted != 0:
            try:
                block = self.stream.read1(wanted if wanted > 0 else CHUNK_BYTES)
            except self.broken as problem:
                self.fault = FileProblem(_broken(self.kind, problem))
            except OSError as problem:
                if problem.errno is not None:  # the disk, not the data: reported as such by the caller
                    raise
                self.fault = FileProblem(_broken(self.kind, problem))
            if self.fault is not None:
                if chunks:
                    break
                raise self.fault
            if not block:
                break
            chunks.append(block)
            wanted -= len(block) if wanted > 0 else 0
        return b"".join(chunks)

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            self.raw.close()

    def __enter__(self) -> Decompressed:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _broken(kind: str, problem: BaseException) -> str:
    if isinstance(problem, EOFError):
        return f"truncated {kind} data: the file ends inside the compressed stream"
    return f"corrupt {kind} data ({type(problem).__name__}: {str(problem)[:200]})"


def _decompressor(raw: BinaryIO, kind: str) -> tuple[Any, tuple[type[BaseException], ...]]:
    """A reader of the decompressed data (each `read(n)` gives at most n bytes) and the errors of bad data."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb"), _BROKEN
    if kind == "bzip2":
        return bz2.BZ2File(raw, mode="rb"), _BROKEN
    if kind == "xz":
        return lzma.LZMAFile(raw, mode="rb"), _BROKEN
    zstandard = optional_import("zstandard", "zstd-compressed files")
    return _ZstdFrames(raw, zstandard.ZstdDecompressor()), (*_BROKEN, zstandard.ZstdError)


class _ZstdFrames:
    """zstd frames one after another, like `gzip.GzipFile`: EOFError when the file ends inside a frame.

    zstandard's own stream reader takes a cut file for a whole one; its decompressobj knows where a frame
    ends, and fed a small piece of input at a time its output stays bounded.
    """

    def __init__(self, raw: BinaryIO, context: Any) -> None:
        self.raw = raw
        self.context = context
        self.frame: Any = None
        self.pending = b""
        self.buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            if not self.pending:
                self.pending = self.raw.read(_ZSTD_INPUT_BYTES)
                if not self.pending:
                    if self.frame is not None and not self.buffer:  # what came before the cut is given first
                        raise EOFError("the file ends inside a zstd frame")
                    break
            if self.frame is None:
                self.frame = self.context.decompressobj()
            self.buffer += self.frame.decompress(self.pending)
            self.pending = b""
            if self.frame.eof:
                self.pending, self.frame = self.frame.unused_data, None
        if size < 0:
            size = len(self.buffer)
        block = bytes(self.buffer[:size])
        del self.buffer[:size]
        return block

    read1 = read

    def close(self) -> None:
        self.buffer.clear()
