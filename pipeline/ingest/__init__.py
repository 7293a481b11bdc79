"""Ingest stage: resolve input paths, pick a reader per file, stream records, rejects and file rejects.

Nothing in an input file stops the batch: a bad record is a `Reject`, a file that cannot be read (or not to
its end) is a `FileReject`, and the other files are still read. Only a path named on the command line
that does not exist (or a folder with no input files in it) is an `InputError`, before anything is read.

A file that fails part way keeps everything read from it: its records and rejects are yielded as they
come, then a `FileReject` whose reason says what was lost and how many items were kept. An empty file
(0 bytes) is a file reject too: usually a writer that failed. The file reject carries the file's size
and SHA-256, so a later run can skip the same unchanged file (see `skip` in `iter_ingest`). A file read
to its end may add `FileWarning`s (a mapped field that matched no record).

The format comes from the extension (under a compression suffix: `news.jsonl.gz`), else, for a compressed
file, from its content; the readers check the content either way and decompress it by its first bytes. A
format whose library is an optional extra that is missing is an `InputError` (checked before reading
where the extension tells), not a file reject: the file must be read once the library is installed.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import FORMATS, InputConfig
from pipeline.errors import InputError, StoryclustError
from pipeline.ingest.compressed import COMPRESSED_SUFFIXES, format_suffix, input_head
from pipeline.ingest.digest import check_digest, looks_like_digest, read_digest
from pipeline.ingest.feeds import read_feed
from pipeline.ingest.files import (
    HEAD_BYTES,
    UTF8_BOM,
    FileProblem,
    describe_start,
    display_name,
    file_sha256,
    one_line,
    optional_import,
)
from pipeline.ingest.html import looks_like_html, read_html
from pipeline.ingest.jsondoc import read_json
from pipeline.ingest.jsonl import read_jsonl
from pipeline.ingest.tables import read_csv, read_parquet
from pipeline.ingest.warc import read_warc
from pipeline.records import FileReject, FileWarning, RawRecord, Reject

__all__ = [
    "EXTENSIONS",
    "IngestResult",
    "IngestStream",
    "Item",
    "SkipCheck",
    "detect_format",
    "file_sha256",
    "ingest",
    "iter_ingest",
    "looks_like_digest",
    "resolve_inputs",
]

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".rss": "rss",
    ".atom": "rss",
    ".xml": "rss",
    ".txt": "digest",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".warc": "warc",
}
MAX_REASON_CHARS = 1000
# The optional libraries a format needs (the `html` extra), and what the error calls the format.
_LIBRARIES = {"html": ("HTML pages", ("trafilatura",)), "warc": ("WARC files", ("warcio", "trafilatura"))}
_FEED_START = re.compile(rb"<(?:rss|feed|rdf:rdf)\b", re.IGNORECASE)

Item = RawRecord | Reject | FileReject | FileWarning
Reader = Callable[[Path, InputConfig], Iterator[RawRecord | Reject | FileWarning]]
_READERS: dict[str, Reader] = {
    "jsonl": read_jsonl,
    "json": read_json,
    "csv": read_csv,
    "parquet": read_parquet,
    "rss": read_feed,
    "digest": read_digest,
    "html": read_html,
    "warc": read_warc,
}
# skip(path, size) -> the SHA-256 of a known bad version of the file, or None to read it.
SkipCheck = Callable[[Path, int], str | None]


@dataclass
class IngestResult:
    """Everything read from the inputs: good records, rejects, and the files they came from.

    `files` lists every file opened for reading (including those rejected whole), `skipped_files` those
    left unread because `skip` knew them as unchanged bad files.
    """

    records: list[RawRecord] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    file_rejects: list[FileReject] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    warnings: list[FileWarning] = field(default_factory=list)

    @property
    def lines_read(self) -> int:
        return len(self.records) + len(self.rejects)


def resolve_inputs(inputs: Iterable[str]) -> list[Path]:
    """Expand files, folders and globs into a list of files, each folder and glob sorted.

    A path matching nothing is an `InputError`. Folders give only files with a known extension (under a
    compression suffix too: `news.jsonl.gz`); files named directly or by a glob are all kept (an unknown
    extension becomes a file reject when read).
    Whether a file can be opened is found out when it is read.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if format_suffix(p) in EXTENSIONS and p.is_file())
            if not found:
                raise InputError(f"no readable input files in folder {item}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(item):
            matched = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not matched:
                raise InputError(f"no files match {item}")
            files.extend(matched)
        else:
            raise InputError(f"input not found: {item}")
    return list(dict.fromkeys(files))


def detect_format(path: Path, forced: str = "auto") -> str:
    """The reader for a file: `forced` when given, otherwise its extension (the one before a compression
    suffix), or for a compressed file whose name names no format, its content.

    An unknown forced format is an `InputError` (a setting, wrong for every file); an extension that names
    no format is a `FileProblem` (this file only).
    """
    if forced != "auto":
        if forced not in FORMATS:
            raise InputError(f"unknown format {forced!r} (choose from {', '.join(FORMATS)})")
        return forced
    suffix = format_suffix(path)
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if path.suffix.lower() in COMPRESSED_SUFFIXES:
        head = input_head(path)
        sniffed = sniff_format(head)
        if sniffed is None:
            raise FileProblem(
                f"cannot tell the format of the decompressed content (it {describe_start(head)}); use --format"
            )
        return sniffed
    shown = path.suffix or "(none)"
    raise FileProblem(f"cannot tell the format from the extension {shown!r}; use --format")


def sniff_format(head: bytes) -> str | None:
    """The format the first bytes plainly show (JSON, a feed, an HTML page, a WARC file), or None."""
    start = head.removeprefix(UTF8_BOM).lstrip()
    if start.startswith(b"WARC/"):
        return "warc"
    if start.startswith(b"PAR1"):
        return "parquet"
    if start[:1] in (b"{", b"["):
        return "json"
    if start[:1] == b"<":
        if _FEED_START.search(start[:HEAD_BYTES]):
            return "rss"
        if looks_like_html(start):
            return "html"
    return None


def require_libraries(fmt: str) -> None:
    """Raise the `InputError` naming the install when a format's optional libraries are missing."""
    what, modules = _LIBRARIES.get(fmt, ("", ()))
    for module in modules:
        optional_import(module, what, "html")


def read_file(
    path: Path, fmt: str, config: InputConfig, forced: bool = False
) -> Iterator[RawRecord | Reject | FileWarning]:
    """The records and rejects of one file; raise `FileProblem` (or `OSError`) for the file as a whole.

    A `.txt` file is read as a digest only when it looks like one or the format is `forced`.
    """
    require_libraries(fmt)
    if fmt == "digest" and not forced:
        check_digest(path)
    return _READERS[fmt](path, config)


class IngestStream(Iterator[Item]):
    """Records, rejects and file rejects of all inputs, in file order then record order.

    Paths are resolved when the stream is made (a missing input fails at once, before any reading);
    `paths` lists them. `files` and `skipped_files` fill in as the stream is consumed.
    """

    def __init__(
        self, inputs: Iterable[str], config: InputConfig, fmt: str | None = None, skip: SkipCheck | None = None
    ) -> None:
        self.config = config
        self.forced = fmt or config.format
        if self.forced != "auto" and self.forced not in FORMATS:
            raise InputError(f"unknown format {self.forced!r} (choose from {', '.join(FORMATS)})")
        self.skip = skip
        self.paths: list[Path] = resolve_inputs(inputs)
        # A missing library fails now, before anything is read, where the format is known from the names.
        named = {self.forced} if self.forced != "auto" else {EXTENSIONS.get(format_suffix(p), "") for p in self.paths}
        for fmt in sorted(named):
            require_libraries(fmt)
        self.files: list[str] = []
        self.skipped_files: list[str] = []
        self._items = self._all_files()

    def __iter__(self) -> IngestStream:
        return self

    def __next__(self) -> Item:
        return next(self._items)

    def _all_files(self) -> Iterator[Item]:
        for path in self.paths:
            yield from self._one_file(path)

    def _one_file(self, path: Path) -> Iterator[Item]:
        """Read one file; whatever goes wrong with it ends as a `FileReject`, never an exception."""
        name = display_name(path)
        try:
            before = path.stat()
        except OSError as problem:
            self.files.append(name)
            yield FileReject(name, 0, "", one_line(f"cannot read: {problem.strerror or problem}"))
            return
        if self.skip is not None and _known_bad(self.skip, path, before.st_size):
            self.skipped_files.append(name)
            return
        self.files.append(name)
        count = 0
        try:
            if before.st_size == 0:
                raise FileProblem("empty file (0 bytes)")
            fmt = detect_format(path, self.forced)
            for item in read_file(path, fmt, self.config, forced=self.forced != "auto"):
                count += not isinstance(item, FileWarning)
                yield item
            return
        except StoryclustError:
            raise  # a missing library: the file is fine, and must be read once it is installed
        except FileProblem as problem:
            reason = str(problem)
        except OSError as problem:
            reason = f"cannot read: {problem.strerror or problem}"
        except MemoryError:
            reason = "out of memory while reading"
        except Exception as problem:  # a reader bug or a parser's own failure: this file only
            reason = f"reader failed ({type(problem).__name__}: {str(problem)[:300]})"
        if count:
            reason += f"; {count:,} records and rejects were read from it and are kept"
        sha256, changed = _stable_sha256(path, before)
        if changed:
            reason += "; the file changed while it was read"
        yield FileReject(name, before.st_size, sha256, one_line(reason)[:MAX_REASON_CHARS])


def _known_bad(skip: SkipCheck, path: Path, size: int) -> bool:
    """Whether `skip` knows this file as bad and its content is still the same (same SHA-256)."""
    known = skip(path, size)
    if not known:
        return False
    try:
        return file_sha256(path) == known
    except OSError:
        return False


def _stable_sha256(path: Path, before: os.stat_result) -> tuple[str, bool]:
    """The file's SHA-256 and whether it changed since `before`; "" when unreadable or changed.

    A file still being written must not be remembered as a known bad file: its next version is read.
    """
    try:
        sha256 = file_sha256(path)
        after = path.stat()
    except OSError:
        return "", False
    changed = (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)
    return ("" if changed else sha256), changed


def iter_ingest(
    inputs: Iterable[str], config: InputConfig, fmt: str | None = None, skip: SkipCheck | None = None
) -> IngestStream:
    """Stream every item of the inputs: `RawRecord`s, `Reject`s, `FileReject`s and `FileWarning`s, in arrival order.

    `skip(path, size)` is asked before each file is read; when it returns a SHA-256 equal to the file's,
    the file (a known bad one, unchanged) is not read and is listed in the stream's `skipped_files`.
    """
    return IngestStream(inputs, config, fmt, skip)


def ingest(
    inputs: Iterable[str], config: InputConfig, fmt: str | None = None, skip: SkipCheck | None = None
) -> IngestResult:
    """Read every input file into lists: records, rejects and file rejects (see `iter_ingest`)."""
    stream = iter_ingest(inputs, config, fmt, skip)
    result = IngestResult()
    for item in stream:
        if isinstance(item, RawRecord):
            result.records.append(item)
        elif isinstance(item, Reject):
            result.rejects.append(item)
        elif isinstance(item, FileWarning):
            result.warnings.append(item)
        else:
            result.file_rejects.append(item)
    result.files = stream.files
    result.skipped_files = stream.skipped_files
    return result
